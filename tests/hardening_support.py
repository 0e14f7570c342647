"""Helpers for the hardening suites (this module holds no tests).

* :class:`RawFrames`: a WebSocket client on a bare socket. It sends exactly the
  frames a test asks for (fragments, RSV1 "compressed" frames, oversized
  frames) and can stop reading altogether, with a small receive buffer, to play
  a client that never reads.
* :func:`raw_http`: send raw bytes to the server (e.g. a chunked POST) and
  collect the answer until the server closes.
* :class:`LogRecorder`: collects log records at INFO and above from
  ``tornado_sio`` and ``tornado``, so a test can check that a bad input is logged
  once at a sensible level and never as an error.
* :class:`HardeningTestCase`: a :class:`~tests.base.SocketIOTestCase` with an
  ``echo`` handler, a log recorder, and :meth:`~HardeningTestCase.assert_healthy`,
  which checks that bystanders still echo and that a fresh client still connects
  (over WebSocket and over polling) and echoes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Sequence
from typing import Any, ClassVar

from tests.base import SocketIOTestCase
from tests.rawclient import RawPolling, RawWebSocket
from tornado_sio import emit

__all__ = ["HardeningTestCase", "LogRecorder", "RawFrames", "chunked_post", "client_frame", "nested", "raw_http"]


def nested(depth: int) -> str:
    """JSON text of *depth* nested arrays: ``[[[...]]]``."""
    return "[" * depth + "]" * depth


# ---------------------------------------------------------------- raw sockets


def _client_frame(payload: bytes, opcode: int, fin: bool = True, rsv1: bool = False) -> bytes:
    """One masked client-to-server frame."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, n)
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 65536 else _mask_big(payload, mask)
    return header + mask + body


def client_frame(payload: bytes, opcode: int, *, fin: bool = True, rsv: int = 0, masked: bool = True,
                 length_form: int | None = None, mask: bytes | None = None) -> bytes:
    """One client-to-server frame, shaped exactly as asked (RFC 6455 5.2), malformed ones included.

    *rsv* is the three reserved bits (0-7, RSV1 the highest); *masked* false
    sends the payload in the clear with the mask bit unset; *length_form* forces
    the length field: 7 (the payload length itself), 16 (126 and a 16-bit
    length) or 64 (127 and a 64-bit length), whatever the length; *mask* is the
    masking key (random by default).
    """
    first = (0x80 if fin else 0) | (rsv & 7) << 4 | opcode
    n = len(payload)
    form = length_form or (7 if n < 126 else 16 if n < 65536 else 64)
    bit = 0x80 if masked else 0
    if form == 7:
        header = struct.pack("!BB", first, bit | n)
    elif form == 16:
        header = struct.pack("!BBH", first, bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, bit | 127, n)
    if not masked:
        return header + payload
    key = mask if mask is not None else os.urandom(4)
    return header + key + _mask_big(payload, key)


def _mask_big(payload: bytes, mask: bytes) -> bytes:
    count = len(payload)
    if not count:
        return b""
    key = int.from_bytes((mask * (count // 4 + 1))[:count], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(count, "big")


class RawFrames:
    """A WebSocket client on a bare socket, frame by frame (see the module doc)."""

    def __init__(self, sock: socket.socket, buffered: bytes) -> None:
        self.sock = sock
        self.buffer = buffered
        self.handshake: dict = {}
        self.response_head = b""

    @classmethod
    async def open(cls, port: int, query: str = "EIO=4&transport=websocket",
                   headers: dict | None = None, rcvbuf: int | None = None,
                   read_open: bool = True, path: str = "/socket.io/") -> RawFrames:
        """Connect and upgrade; with *read_open*, read the Engine.IO OPEN packet too."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 5)
        key = base64.b64encode(os.urandom(16)).decode()
        target = f"{path}?{query}" if query else path
        lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
            if not chunk:
                sock.close()
                raise ConnectionError(f"closed during the upgrade: {data!r}")
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        self = cls(sock, rest)
        self.response_head = head
        if not head.startswith(b"HTTP/1.1 101"):
            sock.close()
            raise ConnectionError(head.split(b"\r\n")[0].decode())
        if read_open:
            opcode, payload = await self.recv_frame()
            assert opcode == 1 and payload[:1] == b"0", payload
            self.handshake = json.loads(payload[1:])
        return self

    async def send_frame(self, payload: str | bytes, opcode: int | None = None,
                         fin: bool = True, rsv1: bool = False) -> None:
        if isinstance(payload, str):
            payload, default = payload.encode(), 1
        else:
            default = 2
        frame = _client_frame(payload, default if opcode is None else opcode, fin, rsv1)
        await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(self.sock, frame), 10)

    async def send_raw(self, data: bytes, piece: int = 0) -> None:
        """Send *data* as it is; with *piece*, in pieces of that many bytes, a loop turn apart."""
        loop = asyncio.get_running_loop()
        if not piece:
            await asyncio.wait_for(loop.sock_sendall(self.sock, data), 10)
            return
        for i in range(0, len(data), piece):
            await asyncio.wait_for(loop.sock_sendall(self.sock, data[i:i + piece]), 10)
            await asyncio.sleep(0.001)

    async def close_frame(self, timeout: float = 5.0) -> tuple[int | None, bytes] | None:
        """Read until the server's close frame: ``(code, reason bytes)``, code None when empty; None at bare EOF."""
        while True:
            opcode, payload = await self.recv_frame(timeout)
            if opcode is None:
                return None
            if opcode == 8:
                if len(payload) < 2:
                    return None, payload
                return struct.unpack("!H", payload[:2])[0], payload[2:]

    async def _fill(self, need: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        while len(self.buffer) < need:
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
            except (ConnectionResetError, BrokenPipeError):
                return False
            if not chunk:
                return False
            self.buffer += chunk
        return True

    async def recv_frame(self, timeout: float = 5.0) -> tuple[int | None, bytes]:
        """The next server frame as ``(opcode, payload)``; ``(None, b"")`` at EOF."""
        if not await self._fill(2, timeout):
            return None, b""
        b0, b1 = self.buffer[0], self.buffer[1]
        n, pos = b1 & 0x7F, 2
        if n == 126:
            if not await self._fill(4, timeout):
                return None, b""
            n, pos = struct.unpack("!H", self.buffer[2:4])[0], 4
        elif n == 127:
            if not await self._fill(10, timeout):
                return None, b""
            n, pos = struct.unpack("!Q", self.buffer[2:10])[0], 10
        if not await self._fill(pos + n, timeout):
            return None, b""
        payload, self.buffer = self.buffer[pos:pos + n], self.buffer[pos + n:]
        return b0 & 0x0F, payload

    async def recv_text(self, timeout: float = 5.0) -> str | None:
        """The next text frame (answering pings); None when the server closed."""
        while True:
            opcode, payload = await self.recv_frame(timeout)
            if opcode is None or opcode == 8:
                return None
            if opcode == 1:
                text = payload.decode()
                if text == "2":
                    await self.send_frame("3")
                    continue
                return text

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Read until the server's close frame; its status code (None at bare EOF)."""
        while True:
            opcode, payload = await self.recv_frame(timeout)
            if opcode is None:
                return None
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    async def eof(self, timeout: float = 5.0) -> bool:
        """Whether the server closed the TCP connection within *timeout* (data discarded)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except asyncio.TimeoutError:
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


async def raw_http(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send *data*; return what the server answered and whether it closed the connection."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    out = b""
    closed = False
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                closed = True
                break
            out += chunk
    except asyncio.TimeoutError:
        pass
    except ConnectionError:
        closed = True
    finally:
        writer.close()
    return out, closed


def chunked_post(sid: str, chunks: Sequence[bytes], path: str = "/socket.io/") -> bytes:
    """A polling POST with ``Transfer-Encoding: chunked`` (one HTTP chunk per item)."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    return (f"POST {path}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n").encode() + body


# ---------------------------------------------------------------- logging


class LogRecorder(logging.Handler):
    """Collects records at INFO and above from ``tornado_sio`` and ``tornado``.

    Access-log lines (``tornado.access``) are left out: one per request, by design.
    """

    LOGGERS = ("tornado_sio", "tornado")

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []
        self._levels: dict = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != "tornado.access":
            self.records.append(record)

    def start(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            if logger.getEffectiveLevel() > self.level:
                logger.setLevel(self.level)
            logger.addHandler(self)

    def stop(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.setLevel(self._levels.get(name, logging.NOTSET))

    def clear(self) -> None:
        self.records.clear()

    def lines(self) -> list[str]:
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records]

    def errors(self) -> list[str]:
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records if r.levelno >= logging.ERROR]

    def matching(self, text: str) -> list[logging.LogRecord]:
        return [r for r in self.records if text in r.getMessage()]


# ---------------------------------------------------------------- the base case


class HardeningTestCase(SocketIOTestCase):
    """An echo server with a log recorder and a health check."""

    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*"}
    #: Records at this level and above are kept (and the loggers made to emit them).
    log_level = logging.INFO

    def setUp(self) -> None:
        self.log = LogRecorder(self.log_level)
        self.log.start()
        super().setUp()

    def tearDown(self) -> None:
        try:
            super().tearDown()
        finally:
            self.log.stop()

    def setup_handlers(self, socketio: Any) -> None:
        @socketio.on("echo")
        def echo(*args):
            emit("echo", *args)
            return args

    @property
    def port(self) -> int:
        return self.get_http_port()

    async def ws_client(self) -> RawWebSocket:
        """A well-behaved WebSocket client connected to ``/``."""
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect()
        assert reply.startswith("40{"), reply
        return ws

    async def polling_client(self) -> RawPolling:
        """A well-behaved long-polling client connected to ``/``."""
        client = await RawPolling(self.base_url).open()
        reply = await client.connect()
        assert reply.startswith("40{"), reply
        return client

    async def ws_echoes(self, ws: RawWebSocket, token: str) -> None:
        await ws.emit("echo", token)
        assert await ws.recv_event() == ["echo", token]

    async def polling_echoes(self, client: RawPolling, token: str) -> None:
        response = await client.post("42" + json.dumps(["echo", token]))
        assert response.code == 200, response.body
        packets: list[str] = []
        for _ in range(10):  # bounded: skip pings and noops until the echo
            for packet in await client.get():
                if packet == "2":
                    await client.post("3")
                packets.append(packet)
            if "42" + json.dumps(["echo", token], separators=(",", ":")) in packets:
                return
        raise AssertionError(f"no echo over polling: {packets}")

    async def assert_healthy(self, *bystanders: Any) -> None:
        """Bystanders still echo; fresh WebSocket and polling clients connect and echo.

        Also: nothing was logged at ERROR or above (a bad client never causes a
        traceback or an "uncaught exception").
        """
        for i, other in enumerate(bystanders):
            if isinstance(other, RawPolling):
                await self.polling_echoes(other, f"bystander-{i}")
            else:
                await self.ws_echoes(other, f"bystander-{i}")
        ws = await self.ws_client()
        await self.ws_echoes(ws, "fresh-ws")
        ws.close()
        client = await self.polling_client()
        await self.polling_echoes(client, "fresh-polling")
        await client.post("1")
        assert self.log.errors() == [], self.log.errors()

    def assert_logged_once(self, text: str, levels: Sequence[int] = (logging.INFO, logging.WARNING)) -> None:
        """Exactly one record mentions *text*, at one of *levels*."""
        found = self.log.matching(text)
        assert len(found) == 1, (text, self.log.lines())
        assert found[0].levelno in levels, (found[0].levelname, found[0].getMessage())

    async def gone(self, sid: str, timeout: float = 5.0) -> None:
        """Wait (bounded) until the engine forgot session *sid*."""
        await self.until(lambda: sid not in self.socketio.engine.sessions, timeout)

    def no_client_state(self) -> bool:
        """No session, socket, room or pending ack is left on the server."""
        sio = self.socketio
        store = sio.adapter
        return (not sio.engine.sessions and not store.by_sid and not store.room_members
                and not store.namespace_members and not sio.dispatcher.ack_waiting)
