"""The SockJS WebSocket transport, with the endpoint's gate, size and buffer limits.

Its frames are read by the same strict, fair reader as the Engine.IO
WebSocket's (:func:`~tornado_sio.http._fastpath.use_batched_reader`): a
protocol error closes with 1002, invalid UTF-8 with 1007, a frame past the
hard size bound with 1009, each logged once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tornado.iostream import StreamBufferFullError, StreamClosedError
from tornado.websocket import WebSocketProtocol

from ...engine.connection import HandshakeRequest
from ...protocol.wsframe import OP_TEXT, build_frame
from .._fastpath import use_batched_reader, write_stream
from .connection import ConnInfo, close_session
from .upstream import sockjs_transports

__all__ = ["WebSocket", "frames_of"]

log = logging.getLogger("tornado_sio.sockjs")


def frames_of(message: Any) -> tuple[list[str] | None, str]:
    """The SockJS messages of one WebSocket frame: ``(messages, "")`` or ``(None, why)``."""
    if isinstance(message, bytes):
        return None, "binary frame"
    try:
        decoded = json.loads(message)
    except (ValueError, RecursionError):
        return None, "broken JSON encoding"
    if isinstance(decoded, str):
        return [decoded], ""
    if isinstance(decoded, list) and all(isinstance(m, str) for m in decoded):
        return decoded, ""
    return None, "not a JSON string or array of strings"


class WebSocket(sockjs_transports.WebSocketTransport):  # type: ignore[misc, unused-ignore]
    """The SockJS WebSocket transport with the engine's origin, size and buffer limits."""

    def initialize(self, server: Any) -> None:  # type: ignore[override, unused-ignore]
        super().initialize(server.router)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        # Origin policy, allow_request and capacity before the 101 (upstream accepts
        # any origin); here rather than in check_origin, which Tornado skips when
        # the request has no Origin header.
        refusal = self.server.gate.check(self.request, HandshakeRequest(self.request))
        if refusal is not None:
            self.set_status(refusal.status)
            self.finish("Too many connections." if refusal.status == 503 else "Forbidden.")
            return
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        return True  # checked in get()

    def get_compression_options(self) -> dict[str, Any] | None:
        return None

    def get_websocket_protocol(self) -> WebSocketProtocol | None:
        protocol: WebSocketProtocol | None = super().get_websocket_protocol()
        use_batched_reader(protocol)
        return protocol

    def websocket_failed(self, code: int, why: str) -> None:
        """The reader is failing the connection with close *code* (RFC 6455): log it once; a transport error."""
        log.info("connection %s: sockjs websocket protocol error (%s); closing with %d",
                 self.connection_name(), why, code)
        session = self.session
        if session is not None and getattr(session, "sio_reason", "") is None:
            session.sio_reason = "transport error"

    def get_conn_info(self) -> ConnInfo:
        return ConnInfo(self)

    @property
    def max_message_size(self) -> int:  # type: ignore[override, unused-ignore]
        # A hard bound for the reader (close 1009 at the frame header, logged by
        # websocket_failed); on_message applies the real limit, on the decoded
        # SockJS message, with a clean SockJS close.
        return int(2 * self.server.config.max_http_buffer_size + 4096)

    @property
    def ping_interval(self) -> float | None:  # type: ignore[override, unused-ignore]
        return float(self.server.config.ping_interval)

    @property
    def ping_timeout(self) -> float | None:  # type: ignore[override, unused-ignore]
        return float(self.server.config.ping_timeout)

    def open(self, session_id: str) -> None:  # type: ignore[override, unused-ignore]
        stream = getattr(self.ws_connection, "stream", None)
        if stream is not None:
            stream.max_write_buffer_size = self.server.config.max_send_buffer
        super().open(session_id)

    def on_message(self, message: Any) -> None:
        session = self.session
        if not message or session is None:
            return  # SockJS: empty frames are ignored
        limit = self.server.config.max_http_buffer_size
        size = len(message) if isinstance(message, bytes) or message.isascii() else len(message.encode("utf-8"))
        if size > limit:
            log.info("connection %s: sockjs websocket message of %d bytes over max_http_buffer_size %d; closing",
                     self.connection_name(), size, limit)
            close_session(session, "transport error", 1009, "Message too big")
            return
        messages, why = frames_of(message)
        if messages is None:
            log.info("connection %s: invalid sockjs websocket frame (%s); closing", self.connection_name(), why)
            close_session(session, "parse error")
            return
        try:
            session.on_messages(messages)
        except Exception:
            log.exception("sockjs websocket %s: message handling failed; closing", session.session_id)
            close_session(session, "server disconnect")

    def connection_name(self) -> str:
        """The connection's sid for logs (the SockJS session id before it opened)."""
        session = self.session
        client = getattr(session, "client", None)
        if client is not None:
            return str(client.sid)
        return str(getattr(session, "session_id", "?"))

    def on_close(self) -> None:
        session = self.session
        if session is not None and getattr(session, "sio_reason", "") is None:
            session.sio_reason = "transport close"
        super().on_close()

    def send_pack(self, message: str, binary: bool = False) -> None:
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return
        stream: Any = getattr(conn, "stream", None)
        try:
            write_stream(stream, build_frame(message.encode("utf-8"), OP_TEXT))
        except StreamBufferFullError:
            log.warning("sockjs websocket %s: send buffer over %d bytes (client not reading); closing",
                        self.connection_name(), self.server.config.max_send_buffer)
            session = self.session
            if session is not None and getattr(session, "sio_reason", "") is None:
                session.sio_reason = "transport error"
            stream.close()
        except StreamClosedError:
            pass
