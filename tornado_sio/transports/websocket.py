"""The WebSocket transport (Tornado's ``WebSocketHandler``).

Every check (protocol version, origin, ``allow_request``, a known sid for an
upgrade) runs before the 101 response, so a refused client gets an HTTP error,
not a socket that opens and closes. Outgoing packets are written as ready frame
bytes straight to the stream (see ``engine.Prepared``); the stream's write buffer
is bounded by ``max_send_buffer`` so a client that does not read is cut off.
"""

from __future__ import annotations

import logging
from typing import Optional, Union

from tornado.iostream import StreamBufferFullError, StreamClosedError
from tornado.websocket import WebSocketHandler

from ..engine import EngineSession
from ..exceptions import ProtocolError
from ..protocol import engineio as eio
from ..protocol.wsframe import OP_TEXT, build_frame
from .common import EngineRequestMixin

__all__ = ["EngineWebSocketHandler"]

log = logging.getLogger("tornado_sio.transports")


class EngineWebSocketHandler(EngineRequestMixin, WebSocketHandler):
    """The ``transport=websocket`` side of the endpoint."""

    def initialize(self, engine) -> None:  # type: ignore[override]
        super().initialize(engine)
        self.session: Optional[EngineSession] = None
        self._upgrade_of: Optional[EngineSession] = None

    async def get(self, *args, **kwargs) -> None:
        code = self.engine.check_request(self.request, "websocket")
        if code is not None:
            self.engine_error(code)
            return
        sid = self.get_query_argument("sid", None)
        if sid is not None:
            session = self.engine.sessions.get(sid)
            if session is None or session.closed:
                self.engine_error(eio.ErrorCode.UNKNOWN_SID)
                return
            if session.transport != "polling" or not self.engine.allow_upgrades:
                self.engine_error(eio.ErrorCode.BAD_REQUEST, why="session cannot upgrade")
                return
            self._upgrade_of = session
        elif self.engine.at_capacity():
            self.engine_error(eio.ErrorCode.BAD_REQUEST, 503, "max_connections reached")
            return
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        """Origin policy and ``allow_request``; False makes Tornado answer 403 before the 101."""
        from ..engine import HandshakeRequest

        return self.engine.permit(self.request, HandshakeRequest(self.request))

    def get_compression_options(self) -> Optional[dict]:
        return {} if self.engine.websocket_compression else None

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        """Tornado's own 10 MiB default would otherwise be the effective limit."""
        return self.engine.max_http_buffer_size

    def open(self, *args, **kwargs) -> None:
        self.set_nodelay(True)
        conn = self.ws_connection
        stream = getattr(conn, "stream", None)
        if stream is not None:
            stream.max_write_buffer_size = self.engine.max_send_buffer
        upgrade_of = self._upgrade_of
        if upgrade_of is not None:
            error = upgrade_of.begin_probe(self)
            if error is not None:
                log.info("session %s: websocket refused: %s", upgrade_of.sid, error)
                self.close()
            return
        from ..engine import HandshakeRequest

        session = self.engine.open_session(HandshakeRequest(self.request), "websocket")
        if session is None:
            self.close(4403, "refused")
            return
        self.session = session
        session._ws = self
        self.write_raw(build_frame(self.engine.open_packet(session).encode("utf-8"), OP_TEXT))

    def on_message(self, message: Union[str, bytes]) -> None:
        try:
            packet = eio.decode_packet(message)
            if self.session is not None:
                self.session.receive(packet)
            elif self._upgrade_of is not None:
                self._upgrade_of.probe_packet(self, packet)
                if self._upgrade_of._ws is self:
                    self.session, self._upgrade_of = self._upgrade_of, None
        except ProtocolError as exc:
            session = self.session or self._upgrade_of
            log.info("session %s: bad websocket packet (%s); closing", getattr(session, "sid", "?"), exc)
            if self.session is not None:
                self.session.close("parse error")
            else:
                if self._upgrade_of is not None:
                    self._upgrade_of.end_probe(self)
                self.close()

    def on_close(self) -> None:
        if self.session is not None:
            self.session.transport_closed(self)
        elif self._upgrade_of is not None:
            self._upgrade_of.end_probe(self)

    def write_raw(self, data: bytes) -> bool:
        """Write ready frame bytes; False when the client is gone or not reading."""
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return False
        try:
            conn.stream.write(data)
        except StreamBufferFullError:
            log.warning("session %s: websocket send buffer over %d bytes (client not reading); closing",
                        getattr(self.session, "sid", "?"), self.engine.max_send_buffer)
            conn.stream.close()
            return False
        except StreamClosedError:
            return False
        return True

    def close_transport(self) -> None:
        """Close the WebSocket (a close frame, then the TCP connection)."""
        if self.ws_connection is not None and not self.ws_connection.is_closing():
            self.close()
