"""The WebSocket transport (Tornado's ``WebSocketHandler``).

Every check (protocol version, origin, ``allow_request``, a known sid for an
upgrade) runs in :meth:`EngineWebSocketHandler.get` before the 101 response, so
a refused client gets an HTTP error, not a socket that opens and closes. They do
not rely on Tornado's ``check_origin``, which Tornado skips for a request without
an ``Origin`` header: ``allow_request`` must run for those too.

Outgoing packets are written as ready frame bytes straight to the stream (see
``engine.Prepared``); the stream's write buffer is bounded by ``max_send_buffer``
so a client that does not read is cut off.
"""

from __future__ import annotations

import logging
from typing import Optional, Union

from tornado.iostream import IOStream, StreamBufferFullError, StreamClosedError
from tornado.websocket import WebSocketHandler, WebSocketProtocol, WebSocketProtocol13

from ..engine import EngineSession, HandshakeRequest, origin_allowed
from ..exceptions import ProtocolError
from ..protocol import engineio as eio
from ..protocol.wsframe import OP_TEXT, build_frame
from .common import EngineRequestMixin

__all__ = ["EngineWebSocketHandler"]

log = logging.getLogger("tornado_sio.transports")


class _Protocol13(WebSocketProtocol13):
    """Tornado's protocol, logging the one close it decides on its own: 1009.

    Tornado closes with 1009 when a message (or its fragments so far, or its
    decompressed form) passes ``max_message_size``; it logs nothing, so this
    says which session hit the limit, once, and marks the close a transport error.
    """

    def close(self, code: Optional[int] = None, reason: Optional[str] = None) -> None:
        handler = self.handler
        if code == 1009 and not self.server_terminated and isinstance(handler, EngineWebSocketHandler):
            session = handler.session or handler._upgrade_of
            log.info("session %s: websocket %s (max_http_buffer_size %d); closing",
                     getattr(session, "sid", "-"), reason or "message too big",
                     handler.engine.max_http_buffer_size)
            handler._close_reason = "transport error"
        super().close(code, reason)


class EngineWebSocketHandler(EngineRequestMixin, WebSocketHandler):
    """The ``transport=websocket`` side of the endpoint."""

    def initialize(self, engine) -> None:  # type: ignore[override]
        super().initialize(engine)
        self.session: Optional[EngineSession] = None
        self._upgrade_of: Optional[EngineSession] = None
        self._close_reason = "transport close"

    async def get(self, *args, **kwargs) -> None:
        code = self.engine.check_request(self.request, "websocket")
        if code is not None:
            self.engine_error(code)
            return
        sid = self.get_query_argument("sid", None)
        handshake = HandshakeRequest(self.request)
        if sid is not None:
            # An upgrade: the origin policy again (as for a polling request with a
            # sid); allow_request ran when the session was created.
            if not origin_allowed(self.engine.cors_allowed_origins, handshake):
                self.engine_error(eio.ErrorCode.FORBIDDEN, why=f"origin {handshake.origin!r} not allowed")
                return
            session = self.engine.sessions.get(sid)
            if session is None or session.closed:
                self.engine_error(eio.ErrorCode.UNKNOWN_SID)
                return
            if session.transport != "polling" or not self.engine.allow_upgrades:
                self.engine_error(eio.ErrorCode.BAD_REQUEST, why="session cannot upgrade")
                return
            self._upgrade_of = session
        else:
            if not self.engine.permit(self.request, handshake):
                self.engine_error(eio.ErrorCode.FORBIDDEN)
                return
            if self.engine.at_capacity():
                self.engine_error(eio.ErrorCode.BAD_REQUEST, 503, "max_connections reached")
                return
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        """Already decided in :meth:`get` (origin policy and ``allow_request``)."""
        return True

    def get_websocket_protocol(self) -> Optional[WebSocketProtocol]:
        protocol = super().get_websocket_protocol()
        if type(protocol) is WebSocketProtocol13:
            protocol.__class__ = _Protocol13
        return protocol

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
            self.session.transport_closed(self, self._close_reason)
        elif self._upgrade_of is not None:
            self._upgrade_of.end_probe(self)

    def write_raw(self, data: bytes) -> bool:
        """Write ready frame bytes; False when the client is gone or not reading.

        When nothing is waiting in Tornado's write buffer (the usual case), the
        bytes go straight to the socket: no Future, buffer entry or callback per
        write, which is most of the cost of a broadcast to many clients. What the
        kernel does not take, and every write on a TLS stream, goes through
        ``IOStream.write`` as usual, so ordering and the ``max_send_buffer`` bound
        hold.
        """
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return False
        stream = conn.stream
        if type(stream) is IOStream and not stream._write_buffer:
            try:
                sent = stream.socket.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # let IOStream.write meet the error and close the stream its way
            if sent == len(data):
                return True
            data = data[sent:]
        try:
            stream.write(data)
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
