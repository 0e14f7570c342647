"""Candidate optimisations of tornado-sio, applied as runtime patches to the bench
server only (``tornado_sio_server.py --patch NAME``), to measure what a change
to the library would gain before anyone makes it. Nothing here is imported by
the library or its tests; the lead ports what pays off into tornado_sio/.

    ws_direct_send   transports/websocket.py EngineWebSocketHandler.write_raw:
                     send ready frame bytes straight to the socket when Tornado's
                     write buffer is empty (no Future, no _StreamBuffer, no
                     done-callback per write); fall back to stream.write for the
                     unsent rest.
    ws_fast_read     transports/websocket.py: a WebSocketProtocol13 subclass whose
                     receive loop reads whatever is available (read_bytes(64 KiB,
                     partial=True)) and parses every complete frame in it, instead
                     of three awaited read_bytes() per frame.
    poll_no_etag     transports/polling.py PollingHandler.compute_etag -> None:
                     no SHA-1 of every polling response body.
    lean_queues      socket.py Socket.queue and engine.py EngineSession._queue as
                     plain lists (an empty deque costs ~624 B: it allocates its
                     first 64-slot block at once; an empty list 56 B). Both
                     queues are empty for almost every client almost always.
    all              every patch above.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Callable, Dict, List, Optional


def ws_direct_send() -> None:
    from tornado_sio.transports.websocket import EngineWebSocketHandler

    original = EngineWebSocketHandler.write_raw

    def write_raw(self: Any, data: bytes) -> bool:
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return False
        stream = conn.stream
        if not stream._write_buffer and not stream.closed():
            try:
                sent = stream.socket.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                return original(self, data)  # let Tornado see and report the error
            if sent == len(data):
                return True
            data = data[sent:]
        return original(self, data)

    EngineWebSocketHandler.write_raw = write_raw  # type: ignore[method-assign]


def ws_fast_read() -> None:
    from tornado.iostream import StreamClosedError
    from tornado.util import _websocket_mask
    from tornado.websocket import WebSocketProtocol13

    from tornado_sio.transports.websocket import EngineWebSocketHandler

    unpack_h = struct.Struct("!H").unpack_from
    unpack_q = struct.Struct("!Q").unpack_from
    yield_every = 256 * 1024

    class FastReadProtocol(WebSocketProtocol13):
        async def _receive_frame_loop(self) -> None:
            if self._decompressor is not None:
                return await super()._receive_frame_loop()
            stream = self.stream
            pending = b""
            max_size = self.params.max_message_size
            work = 0
            try:
                while not self.client_terminated:
                    chunk = await stream.read_bytes(65536, partial=True)
                    self._wire_bytes_in += len(chunk)
                    data = pending + chunk if pending else chunk
                    pos, end = 0, len(data)
                    while end - pos >= 2:
                        b0, b1 = data[pos], data[pos + 1]
                        length = b1 & 0x7F
                        head = pos + 2
                        if length == 126:
                            if end - head < 2:
                                break
                            length = unpack_h(data, head)[0]
                            head += 2
                        elif length == 127:
                            if end - head < 8:
                                break
                            length = unpack_q(data, head)[0]
                            head += 8
                        masked = b1 & 0x80
                        opcode = b0 & 0x0F
                        if b0 & 0x70 or (opcode & 0x8 and (length >= 126 or not b0 & 0x80)):
                            self._abort()  # reserved bits, or a long / fragmented control frame
                            return
                        if length > max_size:
                            self.close(1009, "message too big")
                            self._abort()
                            return
                        body = head + (4 if masked else 0)
                        if end - body < length:
                            break
                        payload = data[body:body + length]
                        if masked:
                            payload = _websocket_mask(data[head:head + 4], payload)
                        pos = body + length
                        if not self._dispatch(b0 & 0x80, opcode, payload):
                            return
                        if self.client_terminated:
                            return
                    pending = data[pos:] if pos < end else b""
                    work += len(chunk) + 1024
                    if work >= yield_every:
                        work = 0
                        await asyncio.sleep(0)
            except StreamClosedError:
                self._abort()
            finally:
                self.handler.on_ws_connection_close(self.close_code, self.close_reason)

        def _dispatch(self, final: int, opcode: int, data: bytes) -> bool:
            """Tornado's per-frame rules (fragments, control frames); False to stop."""
            if opcode & 0x8:
                self._handle_message(opcode, data)
                return True
            if opcode == 0:
                if self._fragmented_message_buffer is None:
                    self._abort()
                    return False
                self._fragmented_message_buffer.extend(data)
                if len(self._fragmented_message_buffer) > self.params.max_message_size:
                    self.close(1009, "message too big")
                    self._abort()
                    return False
                if not final:
                    return True
                opcode = self._fragmented_message_opcode
                data = bytes(self._fragmented_message_buffer)
                self._fragmented_message_buffer = None
            else:
                if self._fragmented_message_buffer is not None:
                    self._abort()
                    return False
                if not final:
                    self._fragmented_message_opcode = opcode
                    self._fragmented_message_buffer = bytearray(data)
                    return True
            handled = self._handle_message(opcode, data)
            if handled is not None:  # an async on_message: not used by tornado-sio
                asyncio.ensure_future(handled)
            return True

    original = EngineWebSocketHandler.get_websocket_protocol

    def get_websocket_protocol(self: Any) -> Any:
        proto = original(self)
        if type(proto) is WebSocketProtocol13:
            proto.__class__ = FastReadProtocol
        return proto

    EngineWebSocketHandler.get_websocket_protocol = get_websocket_protocol  # type: ignore[method-assign]


def poll_no_etag() -> None:
    from tornado_sio.transports.polling import PollingHandler

    PollingHandler.compute_etag = lambda self: None  # type: ignore[method-assign]


def lean_queues() -> None:
    import tornado_sio.engine as engine
    import tornado_sio.socket as socket_mod

    class ListQueue(list):
        """The deque methods the library uses, on a list (cheap when empty)."""

        __slots__ = ()

        def popleft(self) -> Any:
            return self.pop(0)

    socket_mod.deque = ListQueue  # type: ignore[attr-defined]
    engine.deque = ListQueue  # type: ignore[attr-defined]


PATCHES: Dict[str, Callable[[], None]] = {
    "ws_direct_send": ws_direct_send,
    "ws_fast_read": ws_fast_read,
    "poll_no_etag": poll_no_etag,
    "lean_queues": lean_queues,
}


def apply(names: List[str]) -> None:
    chosen: List[str] = []
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if part == "all":
                chosen.extend(PATCHES)
            elif part in PATCHES:
                chosen.append(part)
            elif part:
                raise SystemExit(f"unknown patch {part!r}; known: {', '.join(PATCHES)}, all")
    for name in dict.fromkeys(chosen):
        PATCHES[name]()
