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

import asyncio
import logging
import struct
from typing import Optional, Union

from tornado.iostream import IOStream, StreamBufferFullError, StreamClosedError
from tornado.util import _websocket_mask
from tornado.websocket import WebSocketHandler, WebSocketProtocol, WebSocketProtocol13

from ..engine import EngineSession, HandshakeRequest, origin_allowed
from ..exceptions import ProtocolError
from ..protocol import engineio as eio
from ..protocol.wsframe import OP_TEXT, build_frame
from .common import EngineRequestMixin

__all__ = ["EngineWebSocketHandler"]

log = logging.getLogger("tornado_sio.transports")


_READ_CHUNK = 65536
_YIELD_EVERY = 256 * 1024
_unpack_u16 = struct.Struct("!H").unpack_from
_unpack_u64 = struct.Struct("!Q").unpack_from


class _Protocol13(WebSocketProtocol13):
    """Tornado's protocol with a batched frame reader, and logging of its 1009 close.

    Reading: Tornado awaits three ``read_bytes()`` per frame and re-registers the
    socket with epoll after each message (about 45% of the CPU of an echo). This
    reader takes whatever bytes are available (up to 64 KiB) and parses every
    complete frame in them, applying Tornado's own rules frame by frame: reserved
    bits and long or fragmented control frames abort; a message (its fragments
    counted together) over ``max_message_size`` is refused at its header with
    1009, before its payload is buffered; control frames may interleave with
    fragments; each message goes to Tornado's ``_handle_message`` (UTF-8 check,
    ping/pong, close). With permessage-deflate negotiated, Tornado's reader is
    used unchanged. Like Tornado's, it yields to the event loop every 256 KiB
    (counting at least 1 KiB per frame).

    Tornado closes with 1009 when a message (or its fragments so far, or its
    decompressed form) passes ``max_message_size``; it logs nothing, so this
    says which session hit the limit, once, and marks the close a transport error.
    """

    async def _receive_frame_loop(self) -> None:
        if self._decompressor is not None:
            await super()._receive_frame_loop()
            return
        stream = self.stream
        buf = bytearray()
        work = 0
        try:
            while not self.client_terminated:
                chunk = await stream.read_bytes(_READ_CHUNK, partial=True)
                self._wire_bytes_in += len(chunk)
                buf += chunk
                pos = self._parse_frames(buf)
                if pos < 0:
                    return
                del buf[:pos]
                work += len(chunk) + 1024
                if work >= _YIELD_EVERY:
                    work = 0
                    await asyncio.sleep(0)
        except StreamClosedError:
            self._abort()
        finally:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    def _parse_frames(self, data: bytearray) -> int:
        """Handle every complete frame in *data*; return the bytes used, -1 to stop."""
        pos, end = 0, len(data)
        max_size = self.params.max_message_size
        while end - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if end - head < 2:
                    break
                length = _unpack_u16(data, head)[0]
                head += 2
            elif length == 127:
                if end - head < 8:
                    break
                length = _unpack_u64(data, head)[0]
                head += 8
            opcode = b0 & 0x0F
            if b0 & 0x70 or (opcode & 0x8 and (length >= 126 or not b0 & 0x80)):
                self._abort()  # reserved bits, or a long or fragmented control frame
                return -1
            fragments = self._fragmented_message_buffer
            if length + (len(fragments) if fragments is not None and not opcode & 0x8 else 0) > max_size:
                self.close(1009, "message too big")
                self._abort()
                return -1
            masked = b1 & 0x80
            body = head + (4 if masked else 0)
            if end - body < length:
                break
            payload = bytes(data[body:body + length])
            if masked:
                payload = _websocket_mask(bytes(data[head:head + 4]), payload)
            pos = body + length
            if not self._dispatch_frame(b0 & 0x80, opcode, payload) or self.client_terminated:
                return -1
        return pos

    def _dispatch_frame(self, final: int, opcode: int, data: bytes) -> bool:
        """Tornado's per-frame rules (fragments, control frames); False to stop reading."""
        if opcode & 0x8:
            self._handle_message(opcode, data)
            return True
        if opcode == 0:
            if self._fragmented_message_buffer is None:
                self._abort()  # nothing to continue
                return False
            self._fragmented_message_buffer.extend(data)
            if not final:
                return True
            opcode = self._fragmented_message_opcode
            data = bytes(self._fragmented_message_buffer)
            self._fragmented_message_buffer = None
        else:
            if self._fragmented_message_buffer is not None:
                self._abort()  # a new message before the last one finished
                return False
            if not final:
                self._fragmented_message_opcode = opcode
                self._fragmented_message_buffer = bytearray(data)
                return True
        handled = self._handle_message(opcode, data)
        if handled is not None:
            asyncio.ensure_future(handled)
        return True

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
