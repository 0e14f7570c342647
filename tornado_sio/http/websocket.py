"""The WebSocket transport (Tornado's ``WebSocketHandler``).

Every check (protocol version, exact transport name, origin, ``allow_request``,
capacity, a known sid for an upgrade) runs in :meth:`EngineWebSocketHandler.get`
before the 101 response, so a refused client gets an HTTP error, not a socket
that opens and closes. They do not rely on Tornado's ``check_origin``, which
Tornado skips for a request without an ``Origin`` header: ``allow_request`` must
run for those too.

A WebSocket naming a session that cannot take it (already on WebSocket, or
probing an upgrade) completes its 101 and is then closed, leaving the session
undisturbed: Node's engine.io does the same, and the spec says the server
closes such a WebSocket.

After the 101 a plain WebSocket is no longer this handler's: :func:`~tornado_sio.http.owned.take_over`
moves it to tornado-sio's own connection (``http/owned.py``), and the handler
is dropped. What follows is the path of the connections that stay here: TLS
terminated by Tornado, ``websocket_owned=False``, an
untested Tornado (each logged once).

Incoming frames are read by the strict, fair reader of ``_fastpath``
(``use_batched_reader``), which fails a connection that breaks RFC 6455 with
the RFC's close code and tells :meth:`EngineWebSocketHandler.websocket_failed`
first; the session then ends with ``transport error``.

Outgoing packets are written as ready frame bytes (see
:class:`~tornado_sio.protocol.outgoing.Prepared`); the stream's write buffer is
bounded by ``max_send_buffer`` so a client that does not read is cut off.
"""

from __future__ import annotations

import logging
from typing import Any

from tornado.iostream import StreamBufferFullError, StreamClosedError
from tornado.websocket import WebSocketHandler, WebSocketProtocol

from ..engine.connection import HandshakeRequest
from ..engine.session import EngineSession
from ..exceptions import ProtocolError
from ..protocol import engineio as eio
from ._fastpath import use_batched_reader, write_stream
from .endpoint import EndpointMixin
from .owned import owned_path_refusal, take_over
from .policy import handshake_headers, write_handshake_headers

__all__ = ["EngineWebSocketHandler"]

log = logging.getLogger("tornado_sio.http")


class EngineWebSocketHandler(EndpointMixin, WebSocketHandler):
    """The ``transport=websocket`` side of the endpoint; a ``FrameWriter`` for its session."""

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(**kwargs)
        #: The session this WebSocket carries (None while it only probes).
        self.session: EngineSession | None = None
        #: The polling session this WebSocket probes to upgrade.
        self.upgrade_of: EngineSession | None = None
        self.close_reason_for_session = "transport close"

    async def get(self, *args: Any, **kwargs: Any) -> None:
        code = self.query_error("websocket")
        if code is not None:
            self.engine_error(code)
            return
        sid = self.get_query_argument("sid", None)
        handshake = HandshakeRequest(self.request)
        extra_headers: list[tuple[str, str]] = []
        if sid is not None:
            # An upgrade: the origin policy again (as for a polling request with a
            # sid); allow_request ran when the session was created.
            if not self.gate.origin_ok(handshake):
                self.engine_error(eio.ErrorCode.FORBIDDEN, why=f"origin {handshake.origin!r} not allowed")
                return
            session = self.engine.sessions.get(sid)
            if session is None or session.closed:
                self.engine_error(eio.ErrorCode.UNKNOWN_SID)
                return
            if not self.config.upgrades:
                self.engine_error(eio.ErrorCode.BAD_REQUEST, why="upgrades are not allowed")
                return
            self.upgrade_of = session
        else:
            refusal = self.gate.check(self.request, handshake)
            if refusal is not None:
                self.refuse(refusal)
                return
            extra_headers = handshake_headers(self.config, self.request)
        if owned_path_refusal(self, self.config) is None:
            await take_over(self, self.engine, handshake, self.upgrade_of, extra_headers)
            return
        if sid is None:
            write_handshake_headers(self, self.config)
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        """Already decided in :meth:`get` (origin policy and ``allow_request``)."""
        return True

    def get_websocket_protocol(self) -> WebSocketProtocol | None:
        protocol = super().get_websocket_protocol()
        use_batched_reader(protocol)
        return protocol

    def get_compression_options(self) -> dict[str, Any] | None:
        return {} if self.config.websocket_compression else None

    @property
    def max_message_size(self) -> int:  # type: ignore[override, unused-ignore]
        """Tornado's own 10 MiB default would otherwise be the effective limit."""
        return self.config.max_http_buffer_size

    def websocket_failed(self, code: int, why: str) -> None:
        """The reader is failing the connection with close *code* (RFC 6455): log it once, with the sid.

        Called once per connection, before the close frame is sent: 1009 when a
        message passes ``max_http_buffer_size``, 1002 for a protocol error,
        1007 for invalid UTF-8. Each is a transport error for the session, as
        in Node's engine.io.
        """
        session = self.session or self.upgrade_of
        sid = session.sid if session is not None else "-"
        if code == 1009:
            log.info("session %s: websocket %s (max_http_buffer_size %d); closing with 1009",
                     sid, why, self.config.max_http_buffer_size)
        else:
            log.info("session %s: websocket protocol error (%s); closing with %d", sid, why, code)
        self.close_reason_for_session = "transport error"

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        conn = self.ws_connection
        stream = getattr(conn, "stream", None)
        if stream is not None:
            stream.max_write_buffer_size = self.config.max_send_buffer
        upgrade_of = self.upgrade_of
        if upgrade_of is not None:
            error = upgrade_of.begin_probe(self)
            if error is not None:
                log.info("session %s: websocket closed after its handshake: %s", upgrade_of.sid, error)
                self.upgrade_of = None
                self.close()
            return
        session = self.engine.open_session(HandshakeRequest(self.request), "websocket", self)
        if session is None:
            if self.ws_connection is not None and not self.ws_connection.is_closing():
                self.close(4403, "refused")
            return
        self.session = session

    def on_message(self, message: str | bytes) -> None:
        self.engine.stats.bytes_in += len(message)
        try:
            packet = eio.decode_packet(message)
            if self.session is not None:
                self.session.receive(packet)
            elif self.upgrade_of is not None and self.upgrade_of.probe_packet(self, packet):
                self.session, self.upgrade_of = self.upgrade_of, None
        except ProtocolError as exc:
            session = self.session or self.upgrade_of
            log.info("session %s: bad websocket packet (%s); closing", session.sid if session else "?", exc)
            if self.session is not None:
                self.session.abort("parse error")
            else:
                if self.upgrade_of is not None:
                    self.upgrade_of.end_probe(self)
                self.close()

    def on_close(self) -> None:
        if self.session is not None:
            self.session.transport_closed(self, self.close_reason_for_session)
        elif self.upgrade_of is not None:
            self.upgrade_of.end_probe(self)

    # -- FrameWriter -----------------------------------------------------

    def write_frames(self, data: bytes) -> bool:
        """Write ready frame bytes; False when the client is gone or not reading (then it is closed)."""
        conn: Any = self.ws_connection
        if conn is None or conn.is_closing():
            return False
        stream = conn.stream
        try:
            write_stream(stream, data)
        except StreamBufferFullError:
            session = self.session or self.upgrade_of
            self.engine.stats.warn_once(log, "websocket-overflow", "session %s: websocket send buffer over %d bytes "
                                        "(client not reading); closing (later ones at DEBUG)",
                                        session.sid if session else "?", self.config.max_send_buffer)
            self.engine.stats.overflowed(1)
            stream.close()
            return False
        except StreamClosedError:
            return False
        return True

    def write_pending(self) -> bool:
        """Whether bytes of earlier writes still wait in the stream's buffer (True once closing)."""
        conn: Any = self.ws_connection
        if conn is None or conn.is_closing():
            return True
        return bool(conn.stream.writing())

    def close_transport(self) -> None:
        """Close the WebSocket (a close frame, then the TCP connection)."""
        if self.ws_connection is not None and not self.ws_connection.is_closing():
            self.close()
