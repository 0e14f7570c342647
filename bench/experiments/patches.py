"""Candidate optimisations of tornado-sio, applied as runtime patches to the bench
server only (``tornado_sio_server.py --patch NAME``), to measure what a change
to the library would gain before anyone makes it. Nothing here is imported by
the library or its tests; the lead ports what pays off into tornado_sio/.

    poll_no_etag     transports/polling.py PollingHandler.compute_etag -> None:
                     no SHA-1 of every polling response body.
    lean_dispatch    server.py SocketIO._invoke: skip inspect.isawaitable() when the
                     handler returned None (an ABC isinstance check per event);
                     context.py emit(): with no to/room/broadcast/namespace/skip/
                     callback, send straight to the current socket (no
                     SocketIO.emit thread check, skip set, manager, recipients).
    ws_raw_transport transports/websocket.py: after the handshake, take the socket
                     from Tornado's IOStream and drive it with one permanent
                     loop.add_reader() callback (recv, parse every frame, dispatch)
                     and direct sends (add_writer only for an unsent rest). No
                     Future, coroutine step or epoll_ctl per message. A prototype
                     for measuring: data, ping and close frames only, no
                     permessage-deflate (falls back to Tornado when negotiated).
    all              poll_no_etag, lean_dispatch.

ws_direct_send, ws_fast_read and lean_queues were ported into the library
(transports/websocket.py, engine.py, socket.py); see docs/performance.md.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Callable, Dict, List, Optional


def _swap_protocol(handler_cls: Any, mixin: type) -> None:
    """Make *handler_cls* use ``mixin`` over whatever WebSocketProtocol13 (subclass)
    it builds today (the library has its own subclass; the mixin goes in front)."""
    from tornado.websocket import WebSocketProtocol13

    original = handler_cls.get_websocket_protocol
    classes: Dict[type, type] = {}

    def get_websocket_protocol(self: Any) -> Any:
        proto = original(self)
        if isinstance(proto, WebSocketProtocol13):
            cls = type(proto)
            if cls not in classes:
                # the mixin's methods copied onto a plain subclass (a class with the
                # mixin as a base would not allow the __class__ assignment)
                methods = {k: v for k, v in vars(mixin).items() if not k.startswith("__")}
                classes[cls] = type(f"{mixin.__name__}_{cls.__name__}", (cls,), methods)
            proto.__class__ = classes[cls]
        return proto

    handler_cls.get_websocket_protocol = get_websocket_protocol


def poll_no_etag() -> None:
    from tornado_sio.transports.polling import PollingHandler

    PollingHandler.compute_etag = lambda self: None  # type: ignore[method-assign]


def lean_dispatch() -> None:
    import inspect

    import tornado_sio
    from tornado_sio import context
    from tornado_sio.protocol.socketio import SIOPacket, SIOType
    from tornado_sio.server import _SPECIAL, SocketIO
    from tornado_sio.socket import prepare

    current, current_event = context._current, context._current_event
    isawaitable = inspect.isawaitable

    def _invoke(self: Any, socket: Any, handler: Any, args: tuple, ack_id: Optional[int], event: str) -> None:
        token = current.set(socket)
        event_token = current_event.set(event if event not in _SPECIAL else None)
        try:
            result = handler(*args)
            if result is not None and isawaitable(result):
                if not self.async_handlers and event not in _SPECIAL:
                    socket.running = True
                self._spawn(self._finish_handler(socket, result, ack_id, event))
                return
        except Exception as exc:
            self._handler_failed(socket, event, exc)
            return
        finally:
            current_event.reset(event_token)
            current.reset(token)
        if ack_id is not None:
            self._send_ack(socket, ack_id, result)

    SocketIO._invoke = _invoke  # type: ignore[method-assign]

    original_emit = context.emit
    event_type = SIOType.EVENT

    def emit(event: str, *args: Any, to: Any = None, room: Any = None, include_self: bool = True,
             broadcast: bool = False, namespace: Optional[str] = None, callback: Any = None,
             skip_sid: Any = None) -> None:
        if (to is None and room is None and not broadcast and namespace is None and callback is None
                and skip_sid is None and type(event) is str):
            socket = current.get()
            if socket is not None:
                socket.send(prepare(SIOPacket(event_type, socket.namespace, [event, *args])))
                return
        original_emit(event, *args, to=to, room=room, include_self=include_self, broadcast=broadcast,
                      namespace=namespace, callback=callback, skip_sid=skip_sid)

    context.emit = emit  # type: ignore[assignment]
    tornado_sio.emit = emit  # type: ignore[attr-defined]


def ws_raw_transport() -> None:
    from tornado.util import _websocket_mask
    from tornado.websocket import WebSocketProtocol13

    from tornado_sio.protocol.wsframe import OP_CLOSE, OP_PONG, build_frame
    from tornado_sio.transports.websocket import EngineWebSocketHandler

    unpack_h = struct.Struct("!H").unpack_from
    unpack_q = struct.Struct("!Q").unpack_from

    class RawTransport:
        __slots__ = ("proto", "sock", "fd", "loop", "pending", "out", "done", "closed", "limit")

        def __init__(self, proto: Any) -> None:
            stream = proto.stream
            self.proto = proto
            self.sock = stream.socket
            self.fd = stream.fileno()
            self.loop = asyncio.get_running_loop()
            self.pending = bytes(stream._read_buffer[:stream._read_buffer_size])
            stream._read_buffer = bytearray()
            stream._read_buffer_size = 0
            stream.io_loop.remove_handler(self.fd)  # Tornado stops watching the socket
            stream._state = None
            self.out = bytearray()
            self.done = self.loop.create_future()
            self.closed = False
            self.limit = stream.max_write_buffer_size or (1 << 62)
            self.loop.add_reader(self.fd, self.on_readable)
            if self.pending:
                self.loop.call_soon(self.parse, b"")

        def on_readable(self) -> None:
            try:
                data = self.sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self.finish()
                return
            self.parse(data)

        def parse(self, data: bytes) -> None:
            if self.pending:
                data = self.pending + data
            pos, end = 0, len(data)
            proto = self.proto
            handler = proto.handler
            max_size = proto.params.max_message_size
            while end - pos >= 2 and not self.closed:
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
                if not b1 & 0x80 or b0 & 0x70 or not b0 & 0x80 or length > max_size:
                    self.finish()  # unmasked, reserved bits, fragments (not handled here), too big
                    return
                body = head + 4
                if end - body < length:
                    break
                payload = _websocket_mask(data[head:body], data[body:body + length])
                pos = body + length
                opcode = b0 & 0x0F
                if opcode == 1:
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError:
                        self.finish()
                        return
                    handler.on_message(text)
                elif opcode == 2:
                    handler.on_message(payload)
                elif opcode == 9:
                    self.write(build_frame(payload, OP_PONG))
                elif opcode == 8:
                    if len(payload) >= 2:
                        proto.close_code = struct.unpack(">H", payload[:2])[0]
                    self.write(build_frame(payload[:2], OP_CLOSE))
                    self.finish()
                    return
            self.pending = data[pos:] if pos < end else b""

        def write(self, data: bytes) -> bool:
            if self.closed:
                return False
            if not self.out:
                try:
                    sent = self.sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self.finish()
                    return False
                if sent == len(data):
                    return True
                data = data[sent:]
                self.loop.add_writer(self.fd, self.on_writable)
            if len(self.out) + len(data) > self.limit:
                self.finish()
                return False
            self.out += data
            return True

        def on_writable(self) -> None:
            try:
                sent = self.sock.send(self.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.finish()
                return
            del self.out[:sent]
            if not self.out:
                self.loop.remove_writer(self.fd)

        def finish(self) -> None:
            if self.closed:
                return
            self.closed = True
            self.loop.remove_reader(self.fd)
            self.loop.remove_writer(self.fd)
            if not self.done.done():
                self.done.set_result(None)

    class RawProtocol:
        __slots__ = ()

        async def _receive_frame_loop(self) -> None:
            if self._decompressor is not None:
                return await WebSocketProtocol13._receive_frame_loop(self)  # type: ignore[arg-type]
            raw = self.handler._raw = RawTransport(self)
            try:
                await raw.done
            finally:
                raw.finish()
                self.client_terminated = True
                self.server_terminated = True
                self.stream.close()
                self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    _swap_protocol(EngineWebSocketHandler, RawProtocol)
    original_write = EngineWebSocketHandler.write_raw
    original_close = EngineWebSocketHandler.close_transport

    def write_raw(self: Any, data: bytes) -> bool:
        raw = getattr(self, "_raw", None)
        if raw is not None:
            return raw.write(data)
        return original_write(self, data)

    def close_transport(self: Any) -> None:
        raw = getattr(self, "_raw", None)
        if raw is not None:
            raw.write(build_frame(b"\x03\xe8", OP_CLOSE))
            raw.finish()
            return
        original_close(self)

    EngineWebSocketHandler.write_raw = write_raw  # type: ignore[method-assign]
    EngineWebSocketHandler.close_transport = close_transport  # type: ignore[method-assign]


PATCHES: Dict[str, Callable[[], None]] = {
    "poll_no_etag": poll_no_etag,
    "lean_dispatch": lean_dispatch,
    "ws_raw_transport": ws_raw_transport,
}


def apply(names: List[str]) -> None:
    chosen: List[str] = []
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if part == "all":
                chosen.extend(["poll_no_etag", "lean_dispatch"])
            elif part in PATCHES:
                chosen.append(part)
            elif part:
                raise SystemExit(f"unknown patch {part!r}; known: {', '.join(PATCHES)}, all")
    for name in dict.fromkeys(chosen):
        PATCHES[name]()
