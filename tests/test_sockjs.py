"""The SockJS fallback router, byte for byte: raw SockJS framing carrying Socket.IO packets.

The raw clients below speak the SockJS protocol by hand (``o``, ``h``,
``a[...]``, ``c[code,"reason"]``; xhr-polling with ``xhr``/``xhr_send``, and the
SockJS WebSocket), so the tests send exactly the bytes they mean, malformed
ones included. The server runs the demo handlers of ``tests/apps.py``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import secrets
import socket
import subprocess
import sys
import urllib.request
from collections import deque
from typing import Any, ClassVar

import pytest
from tornado.httpclient import (
    AsyncHTTPClient,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
)
from tornado.iostream import StreamClosedError
from tornado.testing import gen_test
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests import support
from tests.apps import BAD_AUTH, make_demo
from tests.base import SocketIOTestCase
from tests.rawclient import RawPolling, RawWebSocket
from tornado_sio import SocketIO, request
from tornado_sio.http.sockjs import (
    DEFAULT_SOCKJS_INTEGRITY,
    DEFAULT_SOCKJS_URL,
    SOCKJS_CLIENT_VERSION,
    ClientScript,
    client_script,
)
from tornado_sio.http.sockjs.handlers import sockjs_origin
from tornado_sio.options import Options

WAIT = 10.0  # bound on any single wait; never a timing assertion

#: SockJS WebSockets opened by a test; SockJSCase.tearDown closes the ones left open.
OPENED: list[SockJSWebSocket] = []


# ---------------------------------------------------------------------------
# Raw SockJS clients (also used by tests/test_sockjs_mixed.py)
# ---------------------------------------------------------------------------


def sio_packet(text: str) -> tuple[int, str, int | None, Any]:
    """Split a Socket.IO packet's text: ``(type, namespace, ack id, data)``."""
    kind = int(text[0])
    rest = text[1:]
    if kind in (5, 6):
        rest = rest.split("-", 1)[1]
    namespace = "/"
    if rest.startswith("/"):
        namespace, _, rest = rest.partition(",")
    digits = ""
    while rest and rest[0].isdigit():
        digits, rest = digits + rest[0], rest[1:]
    return kind, namespace, int(digits) if digits else None, json.loads(rest) if rest else None


class SockJSClient:
    """Socket.IO over raw SockJS framing; subclasses move the frames."""

    def __init__(self) -> None:
        self.inbox: deque[str] = deque()
        self.close_frame: list | None = None
        self.frames: list[str] = []

    def take(self, frame: str) -> None:
        self.frames.append(frame)
        if frame in ("o", "h"):
            return
        if frame.startswith("a"):
            self.inbox.extend(json.loads(frame[1:]))
        elif frame.startswith("c"):
            self.close_frame = json.loads(frame[1:])
        else:
            raise AssertionError(f"not a SockJS frame: {frame!r}")

    async def next_frames(self, timeout: float) -> None:
        raise NotImplementedError

    async def send(self, *messages: str) -> Any:
        raise NotImplementedError

    async def recv(self, timeout: float = WAIT) -> str:
        """The next SockJS message (a Socket.IO packet text or a ``b...`` attachment)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.inbox:
            if self.close_frame is not None:
                raise ConnectionError(f"session closed: {self.close_frame}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError("no message")
            await self.next_frames(remaining)
        return self.inbox.popleft()

    async def closed(self, timeout: float = WAIT) -> list:
        """Read until the close frame; return it (``[code, reason]``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.close_frame is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError("no close frame")
            await self.next_frames(remaining)
        return self.close_frame

    async def connect(self, namespace: str = "/", auth: Any = None) -> str:
        ns = "" if namespace == "/" else namespace + ","
        await self.send("0" + ns + (json.dumps(auth) if auth is not None else ""))
        return await self.recv()

    async def emit(self, event: str, *args: Any, namespace: str = "/", ack: int | None = None) -> None:
        ns = "" if namespace == "/" else namespace + ","
        await self.send("2" + ns + ("" if ack is None else str(ack)) + json.dumps([event, *args]))

    async def recv_event(self, timeout: float = WAIT) -> list[Any]:
        """The next EVENT's ``[event, *args]`` (other packets are an error)."""
        text = await self.recv(timeout)
        kind, _, _, data = sio_packet(text)
        assert kind == 2, text
        return data

    async def quiet(self, namespace: str = "/") -> bool:
        """True when nothing was sent to us before a fresh round trip completes."""
        await self.emit("join", "quiet-check", namespace=namespace, ack=999)
        text = await self.recv()
        return sio_packet(text)[:3] == (3, namespace, 999)


class SockJSXhr(SockJSClient):
    """The xhr-polling transport: POST .../xhr receives, POST .../xhr_send sends."""

    transport = "xhr"

    def __init__(self, base_url: str, prefix: str = "/sockjs", session: str | None = None,
                 headers: dict | None = None) -> None:
        super().__init__()
        self.session = session or secrets.token_hex(4)
        self.url = base_url.rstrip("/") + prefix + "/000/" + self.session
        self.headers = headers or {}
        self.http = AsyncHTTPClient()

    async def request(self, suffix: str, body: Any = b"", method: str = "POST", headers: dict | None = None,
                      timeout: float = WAIT + 5) -> HTTPResponse:
        req = HTTPRequest(self.url + "/" + suffix, method=method, body=body if method == "POST" else None,
                          headers={**self.headers, **(headers or {})}, request_timeout=timeout,
                          allow_nonstandard_methods=True)
        try:
            return await self.http.fetch(req)
        except HTTPClientError as exc:
            assert exc.response is not None, exc
            return exc.response

    async def open(self) -> SockJSXhr:
        response = await self.request("xhr")
        assert response.code == 200, (response.code, response.body)
        assert response.body == b"o\n", response.body
        self.frames.append("o")
        return self

    async def next_frames(self, timeout: float) -> None:
        response = await self.request("xhr", timeout=timeout + 5)
        assert response.code == 200, (response.code, response.body)
        for line in response.body.decode().splitlines():
            self.take(line)

    async def send(self, *messages: str) -> HTTPResponse:
        response = await self.request("xhr_send", json.dumps(list(messages)))
        assert response.code == 204, (response.code, response.body)
        return response

    def close(self) -> None:
        pass


class SockJSWebSocket(SockJSClient):
    """The SockJS WebSocket transport: each frame is one SockJS frame."""

    transport = "websocket"

    def __init__(self, base_url: str, prefix: str = "/sockjs", session: str | None = None,
                 headers: dict | None = None) -> None:
        super().__init__()
        self.session = session or secrets.token_hex(4)
        self.url = base_url.replace("http://", "ws://").rstrip("/") + prefix + "/000/" + self.session + "/websocket"
        self.headers = headers or {}
        self.conn: WebSocketClientConnection | None = None
        self.eof = False

    async def open(self) -> SockJSWebSocket:
        self.conn = await websocket_connect(HTTPRequest(self.url, headers=self.headers))
        OPENED.append(self)
        first = await asyncio.wait_for(self.conn.read_message(), WAIT)
        assert first == "o", first
        self.frames.append("o")
        return self

    async def next_frames(self, timeout: float) -> None:
        assert self.conn is not None
        if self.eof:
            raise ConnectionError(f"websocket closed without a close frame; frames: {self.frames[-5:]}")
        frame = await asyncio.wait_for(self.conn.read_message(), timeout)
        if frame is None:
            self.eof = True
            return
        self.take(frame)

    async def send(self, *messages: str) -> None:
        assert self.conn is not None
        await self.conn.write_message(json.dumps(list(messages)))

    async def send_raw(self, frame: Any) -> None:
        assert self.conn is not None
        await self.conn.write_message(frame, binary=isinstance(frame, bytes))

    async def eof_after_close(self, timeout: float = WAIT) -> bool:
        """Read to the end of the stream after the close frame (True when it ended)."""
        assert self.conn is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.eof and loop.time() < deadline:
            frame = await asyncio.wait_for(self.conn.read_message(), deadline - loop.time())
            if frame is None:
                self.eof = True
            else:
                self.take(frame)
        return self.eof

    def close(self) -> None:
        if self in OPENED:
            OPENED.remove(self)
        if self.conn is not None:
            self.conn.close()


def dechunk(response: bytes) -> bytes:
    """The body received so far of a chunked HTTP response (headers dropped)."""
    _, _, rest = response.partition(b"\r\n\r\n")
    body = b""
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line, 16)
        body += rest[:size]
        rest = rest[size + 2:]
    return body


async def open_client(kind: str, base_url: str, **kwargs: Any) -> SockJSClient:
    cls = SockJSXhr if kind == "xhr" else SockJSWebSocket
    return await cls(base_url, **kwargs).open()


def sockjs_clients(socketio: SocketIO) -> list:
    endpoint = socketio.sockjs_endpoint
    return endpoint.connections() if endpoint is not None else []


# ---------------------------------------------------------------------------
# Test cases
# ---------------------------------------------------------------------------


class SockJSCase(SocketIOTestCase):
    """The demo handlers (tests/apps.py) plus a few for SockJS checks."""

    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": "*", "ping_interval": 1.0, "ping_timeout": 3.0,
    }

    def make_socketio(self) -> SocketIO:
        socketio, self.seen = make_demo(**self.socketio_options)
        return socketio

    def setup_handlers(self, sio: SocketIO) -> None:
        self.requests: list = []

        @sio.on("whoami")
        def whoami():
            conn = request.eio_sid
            return {"sid": request.sid, "conn": conn, "ip": request.remote_ip,
                    "ua": request.headers.get("User-Agent"), "x": request.args.get("x")}

        @sio.on("bytes")
        def send_bytes(n):
            return bytes(range(n))

    def tearDown(self) -> None:
        while OPENED:
            OPENED.pop().close()
        if self.socketio.sockjs_endpoint is not None:
            self.socketio.sockjs_endpoint.stop()
        super().tearDown()

    @property
    def origin(self) -> str:
        return self.get_url("").rstrip("/")

    async def client(self, kind: str = "xhr", connect: bool = True, **kwargs: Any) -> SockJSClient:
        client = await open_client(kind, self.base_url, **kwargs)
        if connect:
            reply = await client.connect()
            assert reply.startswith('0{"sid":'), reply
        return client

    def disconnect_reasons(self) -> list[Any]:
        return [reason for _, _, reason in self.seen.disconnects]


class RouterTest(SockJSCase):
    @gen_test
    async def test_info_answers_json_without_cookie_and_with_websocket(self):
        response = await AsyncHTTPClient().fetch(self.get_url("/sockjs/info"))
        info = json.loads(response.body)
        assert info["websocket"] is True
        assert info["cookie_needed"] is False
        assert isinstance(info["entropy"], int)
        assert "Set-Cookie" not in response.headers
        assert response.headers["Cache-Control"].startswith("no-store")

    @gen_test
    async def test_greeting_and_iframe_page(self):
        response = await AsyncHTTPClient().fetch(self.get_url("/sockjs"))
        assert response.body == b"Welcome to SockJS!\n"
        response = await AsyncHTTPClient().fetch(self.get_url("/sockjs/iframe.html"))
        assert b"SockJS.bootstrap_iframe" in response.body
        assert DEFAULT_SOCKJS_URL.encode() in response.body

    @gen_test
    async def test_xhr_open_send_receive_carries_socketio_packets(self):
        client = SockJSXhr(self.base_url)
        await client.open()
        await client.send("0")
        reply = await client.recv()
        kind, namespace, _, data = sio_packet(reply)
        assert (kind, namespace) == (0, "/") and len(data["sid"]) >= 16
        await client.emit("echo", "hi", {"n": 1})
        assert await client.recv_event() == ["echo", "hi", {"n": 1}]

    @gen_test
    async def test_heartbeat_frame_arrives_on_an_idle_poll(self):
        client = await self.client("xhr")
        await client.next_frames(WAIT)
        assert client.frames[-1] == "h"

    @gen_test
    async def test_streaming_transports_get_heartbeats(self):
        loop = asyncio.get_running_loop()
        wanted = {"xhr_streaming": ("POST", b"o\nh\n"), "eventsource": ("GET", b"data: o\r\n\r\ndata: h\r\n\r\n")}
        for transport, (method, frames) in wanted.items():
            stream = socket.create_connection(("127.0.0.1", self.get_http_port()))
            stream.setblocking(False)
            try:
                await loop.sock_sendall(stream, (
                    f"{method} /sockjs/000/{secrets.token_hex(4)}/{transport} HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{self.get_http_port()}\r\nContent-Length: 0\r\n\r\n").encode())
                data = b""
                while frames not in dechunk(data):
                    chunk = await asyncio.wait_for(loop.sock_recv(stream, 65536), WAIT)
                    assert chunk, data
                    data += chunk
            finally:
                stream.close()

    @gen_test
    async def test_websocket_open_send_receive(self):
        client = await self.client("websocket")
        await client.emit("echo", "hi")
        assert await client.recv_event() == ["echo", "hi"]
        client.close()

    @gen_test
    async def test_websocket_accepts_a_single_json_string_frame(self):
        client = await self.client("websocket", connect=False)
        await client.send_raw(json.dumps("0"))
        assert (await client.recv()).startswith('0{"sid":')
        client.close()

    @gen_test
    async def test_several_messages_in_one_xhr_send_are_handled_in_order(self):
        client = await self.client("xhr")
        await client.send('2["echo",1]', '2["echo",2]', '2["echo",3]')
        assert [await client.recv_event() for _ in range(3)] == [["echo", 1], ["echo", 2], ["echo", 3]]

    @gen_test
    async def test_request_context_is_the_sockjs_request(self):
        client = await self.client("xhr", headers={"User-Agent": "raw-sockjs"})
        await client.emit("whoami", ack=1)
        kind, _, ack_id, data = sio_packet(await client.recv())
        assert (kind, ack_id) == (3, 1)
        info = data[0]
        assert info["ip"] == "127.0.0.1" and info["ua"] == "raw-sockjs"
        assert info["conn"].startswith("sockjs-")
        (conn,) = sockjs_clients(self.socketio)
        assert conn.sid == info["conn"] and conn.transport == "sockjs-xhr"

    @gen_test
    async def test_unicode_survives_every_frame_as_ascii_json(self):
        client = await self.client("xhr")
        text = "h\u00e9llo \u2028 \u2029 \U0001f600 </script>"
        await client.emit("echo", text)
        assert await client.recv_event() == ["echo", text]
        assert all(ord(ch) < 128 for frame in client.frames for ch in frame)


class ProtocolTests:
    """Namespaces, auth, acks, rooms, binary and disconnects over one SockJS transport."""

    kind = "xhr"

    @gen_test(timeout=30)
    async def test_namespace_connect_with_auth_reaches_the_connect_handler(self):
        client = await self.client(self.kind, connect=False)
        reply = await client.connect("/test", {"token": "good"})
        kind, namespace, _, data = sio_packet(reply)
        assert (kind, namespace) == (0, "/test")
        assert self.seen.auth_of("/test", data["sid"]) == {"token": "good"}
        await client.emit("echo", "in test", namespace="/test")
        kind, namespace, _, data = sio_packet(await client.recv())
        assert (kind, namespace, data) == (2, "/test", ["echo", "in test"])
        client.close()

    @gen_test(timeout=30)
    async def test_refused_auth_gets_connect_error_and_the_session_stays(self):
        client = await self.client(self.kind, connect=False)
        kind, namespace, _, data = sio_packet(await client.connect("/test", BAD_AUTH))
        assert (kind, namespace) == (4, "/test")
        assert data == {"message": "unauthorized", "data": {"reason": "bad token"}}
        assert self.seen.connects == []
        reply = await client.connect("/")
        assert reply.startswith('0{"sid":')
        client.close()

    @gen_test(timeout=30)
    async def test_unknown_namespace_is_refused(self):
        client = await self.client(self.kind, connect=False)
        kind, namespace, _, data = sio_packet(await client.connect("/nowhere"))
        assert (kind, namespace, data) == (4, "/nowhere", {"message": "Invalid namespace"})
        client.close()

    @gen_test(timeout=30)
    async def test_client_ack_is_answered(self):
        client = await self.client(self.kind)
        await client.emit("echo", "a", 2, ack=12)
        assert await client.recv_event() == ["echo", "a", 2]
        assert sio_packet(await client.recv()) == (3, "/", 12, ["a", 2])
        client.close()

    @gen_test(timeout=30)
    async def test_server_call_gets_the_clients_ack(self):
        client = await self.client(self.kind)
        await client.emit("ask", "what?")
        kind, _, ack_id, data = sio_packet(await client.recv())
        assert (kind, data) == (2, ["question", "what?"]) and ack_id is not None
        await client.send(f"3{ack_id}" + json.dumps(["42"]))
        assert await client.recv_event() == ["answer", "42"]
        client.close()

    @gen_test(timeout=30)
    async def test_rooms_reach_members_only(self):
        a, b, c = [await self.client(self.kind) for _ in range(3)]
        for member in (a, b):
            await member.emit("join", "r", ack=1)
            assert sio_packet(await member.recv()) == (3, "/", 1, ["joined"])
        await a.emit("to room", "r", "hello")
        assert await b.recv_event() == ["room message", "hello"]
        assert await a.quiet()
        assert await c.quiet()
        for client in (a, b, c):
            client.close()

    @gen_test(timeout=30)
    async def test_binary_attachments_are_base64_messages_both_ways(self):
        client = await self.client(self.kind)
        payload = bytes(range(256))
        b64 = "b" + base64.b64encode(payload).decode()
        await client.send('51-3["echo","x",{"_placeholder":true,"num":0}]', b64)
        assert await client.recv() == '51-["echo","x",{"_placeholder":true,"num":0}]'
        assert await client.recv() == b64
        assert await client.recv() == '61-3["x",{"_placeholder":true,"num":0}]'
        assert await client.recv() == b64
        client.close()

    @gen_test(timeout=30)
    async def test_server_disconnect_sends_disconnect_packet(self):
        client = await self.client(self.kind)
        await client.emit("kick")
        assert sio_packet(await client.recv())[:2] == (1, "/")
        await self.until(lambda: self.disconnect_reasons() == ["server disconnect"])
        client.close()

    @gen_test(timeout=30)
    async def test_invalid_socketio_packet_closes_this_session_only(self):
        bystander = await self.client(self.kind)
        client = await self.client(self.kind)
        with self.assertLogs("tornado_sio", logging.INFO) as logs:
            await client.send('2["connect"]')  # a reserved event name
            assert await client.closed() == [3001, "parse error"]
        assert len([r for r in logs.records if r.levelno >= logging.INFO]) == 1, logs.output
        await self.until(lambda: self.disconnect_reasons() == ["parse error"])
        await bystander.emit("echo", "still here")
        assert await bystander.recv_event() == ["echo", "still here"]
        client.close()
        bystander.close()

    @gen_test(timeout=30)
    async def test_bad_base64_attachment_closes_the_session(self):
        client = await self.client(self.kind)
        await client.send('51-["echo",{"_placeholder":true,"num":0}]', "b***")
        assert await client.closed() == [3001, "parse error"]
        await self.until(lambda: self.disconnect_reasons() == ["parse error"])
        client.close()

    @gen_test(timeout=30)
    async def test_unexpected_attachment_closes_the_session(self):
        client = await self.client(self.kind)
        await client.send("bAAEC")
        assert await client.closed() == [3001, "parse error"]
        client.close()


class XhrProtocolTest(ProtocolTests, SockJSCase):
    kind = "xhr"


class WebSocketProtocolTest(ProtocolTests, SockJSCase):
    kind = "websocket"


class SessionEndTest(SockJSCase):
    """Disconnect detection comes from SockJS's own timeouts (ping_interval/ping_timeout)."""

    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": "*", "ping_interval": 0.3, "ping_timeout": 0.6,
        "connect_timeout": 1.0,
    }

    @gen_test(timeout=20)
    async def test_xhr_session_that_stops_polling_expires_with_ping_timeout(self):
        await self.client("xhr")
        await self.until(lambda: self.disconnect_reasons() == ["ping timeout"], timeout=WAIT)
        await self.until(lambda: not sockjs_clients(self.socketio))

    @gen_test(timeout=20)
    async def test_closed_websocket_is_transport_close(self):
        client = await self.client("websocket")
        client.close()
        await self.until(lambda: self.disconnect_reasons() == ["transport close"], timeout=WAIT)

    @gen_test(timeout=20)
    async def test_aborted_xhr_streaming_is_transport_close(self):
        client = await self.client("xhr")
        stream = socket.create_connection(("127.0.0.1", self.get_http_port()))
        try:
            path = f"/sockjs/000/{client.session}/xhr_streaming"
            stream.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
            await self.until(lambda: sockjs_clients(self.socketio)[0].transport == "sockjs-xhr_streaming")
        finally:
            stream.close()
        await self.until(lambda: self.disconnect_reasons() == ["transport close"], timeout=WAIT)

    @gen_test(timeout=20)
    async def test_session_without_namespace_is_closed_after_connect_timeout(self):
        client = await self.client("websocket", connect=False)
        assert await client.closed() == [3000, "connect timeout"]
        assert await client.eof_after_close()
        assert not sockjs_clients(self.socketio)

    @gen_test(timeout=20)
    async def test_queued_messages_then_the_close_frame_reach_a_polling_client(self):
        client = await self.client("xhr")
        (conn,) = sockjs_clients(self.socketio)
        await client.emit("kick")  # DISCONNECT packet is queued for the next poll
        await self.until(lambda: self.disconnect_reasons() == ["server disconnect"])
        conn.close("server disconnect")
        assert sio_packet(await client.recv())[:2] == (1, "/")
        assert await client.closed() == [3000, "server disconnect"]


class ShutdownTest(SockJSCase):
    @gen_test(timeout=20)
    async def test_close_all_delivers_what_is_queued_then_the_close_frame(self):
        polling = await self.client("xhr")
        ws = await self.client("websocket")
        self.socketio.emit("news", "bye")  # queued for the polling client until it polls
        await self.socketio.shutdown(timeout=0)
        assert self.disconnect_reasons() == ["server shutting down"] * 2
        self.socketio.sockjs_endpoint.close_all()
        assert not sockjs_clients(self.socketio)
        assert self.socketio.sockjs_endpoint.undelivered()
        for client in (polling, ws):
            assert await client.recv_event() == ["news", "bye"]
            assert await client.closed() == [3000, "server shutting down"]
        assert not self.socketio.sockjs_endpoint.undelivered()
        ws.close()


class BadInputTest(SockJSCase):
    """Each bad request gets the SockJS error or closes its own session, logged once."""

    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": "*", "ping_interval": 1.0, "ping_timeout": 3.0,
        "max_http_buffer_size": 2000,
    }

    def assert_logged_once(self, logs: Any) -> None:
        assert len(logs.records) == 1, logs.output

    async def still_works(self, client: SockJSXhr) -> None:
        await client.emit("echo", "ok")
        assert await client.recv_event() == ["echo", "ok"]

    @gen_test
    async def test_xhr_send_with_broken_json(self):
        client = await self.client("xhr")
        with self.assertLogs("tornado_sio", logging.INFO) as logs:
            response = await client.request("xhr_send", b'["2[\\"echo\\"')
        assert (response.code, response.body) == (500, b"Broken JSON encoding.")
        self.assert_logged_once(logs)
        await self.still_works(client)

    @gen_test
    async def test_xhr_send_with_invalid_utf8(self):
        client = await self.client("xhr")
        response = await client.request("xhr_send", b'["\xff"]')
        assert (response.code, response.body) == (500, b"Broken JSON encoding.")
        await self.still_works(client)

    @gen_test
    async def test_xhr_send_with_a_json_string_is_not_split_into_characters(self):
        client = await self.client("xhr")
        for body in (b'"2[\\"echo\\",1]"', b"[1,2]", b'{"a":"b"}', b"null", b'[["0"]]'):
            with self.assertLogs("tornado_sio", logging.INFO) as logs:
                response = await client.request("xhr_send", body)
            assert (response.code, response.body) == (500, b"Payload expected."), body
            self.assert_logged_once(logs)
        await self.still_works(client)

    @gen_test
    async def test_xhr_send_with_an_empty_body(self):
        client = await self.client("xhr")
        response = await client.request("xhr_send", b"")
        assert (response.code, response.body) == (500, b"Payload expected.")
        await self.still_works(client)

    @gen_test
    async def test_xhr_send_with_deep_nesting_is_broken_json(self):
        client = await self.client("xhr")
        response = await client.request("xhr_send", b"[" * 999 + b"]" * 999)
        assert response.code == 500
        await self.still_works(client)

    @gen_test
    async def test_xhr_send_to_an_unknown_session_is_404_logged_once(self):
        client = SockJSXhr(self.base_url)
        with self.assertLogs("tornado_sio", logging.INFO) as logs:
            response = await client.request("xhr_send", b'["0"]')
        assert response.code == 404
        self.assert_logged_once(logs)
        assert not sockjs_clients(self.socketio)

    @gen_test
    async def test_invalid_session_id_is_not_routed(self):
        client = SockJSXhr(self.base_url, session="a" * 200)
        assert (await client.request("xhr")).code == 404

    @gen_test
    async def test_oversized_xhr_send_is_413_and_closes_that_session(self):
        bystander = await self.client("xhr")
        client = await self.client("xhr")
        with self.assertLogs("tornado_sio", logging.INFO) as logs:
            response = await client.request("xhr_send", json.dumps(['2["echo","' + "x" * 3000 + '"]']))
        assert response.code == 413
        self.assert_logged_once(logs)
        assert await client.closed() == [1009, "Message too big"]
        await self.until(lambda: self.disconnect_reasons() == ["transport error"])
        await self.still_works(bystander)

    @gen_test
    async def test_oversized_chunked_xhr_send_closes_that_session(self):
        client = await self.client("xhr")

        def body_producer(write):
            async def produce():
                for _ in range(10):
                    await write(b"x" * 500)
            return produce()

        req = HTTPRequest(client.url + "/xhr_send", method="POST", body_producer=body_producer,
                          request_timeout=WAIT)
        try:
            response = await AsyncHTTPClient().fetch(req, raise_error=False)
            assert response.code in (400, 413, 599)
        except (OSError, HTTPClientError, StreamClosedError):
            logging.getLogger(__name__).debug("the server cut the connection off mid-body")
        assert await client.closed() == [1009, "Message too big"]
        await self.until(lambda: self.disconnect_reasons() == ["transport error"])

    @gen_test
    async def test_oversized_websocket_message_closes_that_session(self):
        bystander = await self.client("websocket")
        client = await self.client("websocket")
        with self.assertLogs("tornado_sio", logging.INFO) as logs:
            await client.emit("echo", "x" * 3000)
            assert await client.closed() == [1009, "Message too big"]
        self.assert_logged_once(logs)
        assert await client.eof_after_close()
        await self.until(lambda: self.disconnect_reasons() == ["transport error"])
        await bystander.emit("echo", "ok")
        assert await bystander.recv_event() == ["echo", "ok"]
        bystander.close()

    @gen_test
    async def test_websocket_frame_that_is_not_sockjs_json_closes_the_session(self):
        for frame in ('["2[\\"echo\\"', "{}", "[1]", b"\x00binary"):
            client = await self.client("websocket")
            with self.assertLogs("tornado_sio", logging.INFO) as logs:
                await client.send_raw(frame)
                assert await client.closed() == [3001, "parse error"], frame
            self.assert_logged_once(logs)
            assert await client.eof_after_close()
        await self.until(lambda: self.disconnect_reasons() == ["parse error"] * 4)

    @gen_test
    async def test_empty_websocket_frame_is_ignored(self):
        client = await self.client("websocket")
        await client.send_raw("")
        await client.emit("echo", "ok")
        assert await client.recv_event() == ["echo", "ok"]
        client.close()

    @gen_test
    async def test_second_receiving_request_gets_another_connection_still_open(self):
        client = await self.client("xhr")
        other = SockJSXhr(self.base_url, session=client.session)
        pending = asyncio.ensure_future(client.next_frames(WAIT))
        await asyncio.sleep(0.05)
        response = await other.request("xhr")
        assert response.body == b'c[2010,"Another connection still open"]\n'
        await pending
        await self.still_works(client)


class CallbackTest(SockJSCase):
    """JSONP and htmlfile: a strict callback name, Referer-checked like an Origin."""

    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": None, "ping_interval": 0.5, "ping_timeout": 3.0,
    }

    def referer(self) -> dict:
        return {"Referer": self.origin + "/page.html"}

    @gen_test
    async def test_jsonp_rejects_a_callback_that_is_not_a_dotted_identifier(self):
        client = SockJSXhr(self.base_url, headers=self.referer())
        for bad in ("alert(1)//", "a b", "_jp.a;b", "x" * 200, "1abc", "a..b"):
            with self.assertLogs("tornado_sio", logging.INFO) as logs:
                response = await client.request("jsonp?c=" + bad.replace(" ", "%20"), method="GET")
            assert (response.code, response.body) == (500, b'invalid "callback" parameter'), bad
            assert len(logs.records) == 1
        response = await client.request("jsonp", method="GET")
        assert (response.code, response.body) == (500, b'"callback" parameter required')
        assert not sockjs_clients(self.socketio)

    @gen_test
    async def test_jsonp_round_trip_with_a_good_callback(self):
        client = SockJSXhr(self.base_url, headers=self.referer())
        response = await client.request("jsonp?c=_jp.a1b2c3", method="GET")
        assert response.code == 200
        assert response.body == b'/**/_jp.a1b2c3("o");\r\n'
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        response = await client.request("jsonp_send", b"d=" + json.dumps(["0"]).encode(),
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert (response.code, response.body) == (200, b"ok")
        response = await client.request("jsonp?c=_jp.a1b2c3", method="GET")
        assert response.body.startswith(b'/**/_jp.a1b2c3("a[\\"0{')

    @gen_test
    async def test_jsonp_without_origin_or_referer_is_refused(self):
        client = SockJSXhr(self.base_url)
        response = await client.request("jsonp?c=_jp.a1", method="GET")
        assert response.code == 403
        assert not sockjs_clients(self.socketio)

    @gen_test
    async def test_jsonp_from_a_foreign_page_is_refused(self):
        client = SockJSXhr(self.base_url, headers={"Referer": "http://evil.example/x.html"})
        response = await client.request("jsonp?c=_jp.a1", method="GET")
        assert response.code == 403
        assert not sockjs_clients(self.socketio)

    @gen_test
    async def test_htmlfile_escapes_script_end_tags(self):
        session = secrets.token_hex(4)
        loop = asyncio.get_running_loop()
        stream = socket.create_connection(("127.0.0.1", self.get_http_port()))
        stream.setblocking(False)
        try:
            await loop.sock_sendall(stream, (
                f"GET /sockjs/000/{session}/htmlfile?c=_jp.h1 HTTP/1.1\r\nHost: 127.0.0.1:{self.get_http_port()}\r\n"
                f"Referer: {self.origin}/page.html\r\n\r\n").encode())
            data = b""

            async def read_until(marker: bytes) -> None:
                nonlocal data
                while marker not in data:
                    chunk = await asyncio.wait_for(loop.sock_recv(stream, 65536), WAIT)
                    assert chunk, data
                    data += chunk

            await read_until(b'p("o");')
            assert b"var c = parent._jp.h1;" in data
            sender = SockJSXhr(self.base_url, session=session, headers={"Origin": self.origin})
            await sender.send("0")
            await read_until(b"sid")
            await sender.emit("echo", "</script><script>alert(1)</script>")
            await read_until(b"alert(1)")
        finally:
            stream.close()
        assert b"</script><script>alert" not in data
        assert b"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in data


class OriginTest(SockJSCase):
    """The default origin policy (same origin) on every SockJS transport."""

    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": None, "ping_interval": 1.0, "ping_timeout": 3.0,
    }

    @gen_test
    async def test_websocket_from_a_foreign_origin_is_403_before_the_upgrade(self):
        with self.assertRaises(HTTPClientError) as caught:
            await SockJSWebSocket(self.base_url, headers={"Origin": "http://evil.example"}).open()
        assert caught.exception.code == 403
        client = await SockJSWebSocket(self.base_url, headers={"Origin": self.origin}).open()
        assert (await client.connect()).startswith("0{")
        client.close()

    @gen_test
    async def test_xhr_from_a_foreign_origin_is_403_and_opens_nothing(self):
        client = SockJSXhr(self.base_url, headers={"Origin": "http://evil.example"})
        response = await client.request("xhr")
        assert response.code == 403
        assert "Access-Control-Allow-Origin" not in response.headers
        assert not sockjs_clients(self.socketio)

    @gen_test
    async def test_same_origin_xhr_gets_its_origin_reflected_with_credentials(self):
        client = SockJSXhr(self.base_url, headers={"Origin": self.origin})
        response = await client.request("xhr")
        assert response.body == b"o\n"
        assert response.headers["Access-Control-Allow-Origin"] == self.origin
        assert response.headers["Access-Control-Allow-Credentials"] == "true"

    @gen_test
    async def test_xhr_send_from_a_foreign_origin_is_refused_and_the_session_is_untouched(self):
        client = await open_client("xhr", self.base_url, headers={"Origin": self.origin})
        foreign = SockJSXhr(self.base_url, session=client.session, headers={"Origin": "http://evil.example"})
        with self.assertLogs("tornado_sio", logging.INFO) as logs:
            response = await foreign.request("xhr_send", json.dumps(["0"]))
        assert response.code == 403 and len(logs.records) == 1
        await client.send("0")
        assert (await client.recv()).startswith("0{")

    @gen_test
    async def test_preflight_allows_same_origin_and_refuses_a_foreign_one(self):
        client = SockJSXhr(self.base_url)
        response = await client.request("xhr", method="OPTIONS", headers={
            "Origin": self.origin, "Access-Control-Request-Headers": "content-type"})
        assert response.code == 204
        assert response.headers["Access-Control-Allow-Origin"] == self.origin
        assert response.headers["Access-Control-Allow-Headers"] == "content-type"
        response = await client.request("xhr", method="OPTIONS", headers={"Origin": "http://evil.example"})
        assert response.code == 403

    @gen_test
    async def test_info_reflects_only_allowed_origins(self):
        http = AsyncHTTPClient()
        ok = await http.fetch(self.get_url("/sockjs/info"), headers={"Origin": self.origin})
        assert ok.headers["Access-Control-Allow-Origin"] == self.origin
        bad = await http.fetch(self.get_url("/sockjs/info"), headers={"Origin": "http://evil.example"},
                               raise_error=False)
        assert bad.code == 403 and "Access-Control-Allow-Origin" not in bad.headers

    @gen_test
    async def test_iframe_page_may_only_be_framed_by_the_same_origin(self):
        response = await AsyncHTTPClient().fetch(self.get_url("/sockjs/iframe.html"))
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


class AllowListTest(SockJSCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": ["http://app.example"], "ping_interval": 1.0,
                        "ping_timeout": 3.0}

    @gen_test
    async def test_listed_origin_is_allowed_and_others_refused(self):
        ok = await SockJSXhr(self.base_url, headers={"Origin": "http://app.example"}).request("xhr")
        assert ok.body == b"o\n"
        assert ok.headers["Access-Control-Allow-Origin"] == "http://app.example"
        bad = await SockJSXhr(self.base_url, headers={"Origin": "http://other.example"}).request("xhr")
        assert bad.code == 403

    @gen_test
    async def test_iframe_page_lists_the_allowed_origins_as_frame_ancestors(self):
        response = await AsyncHTTPClient().fetch(self.get_url("/sockjs/iframe.html"))
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self' http://app.example"


class LimitsTest(SockJSCase):
    """allow_request, max_connections and max_send_buffer apply to SockJS sessions."""

    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": "*", "ping_interval": 1.0, "ping_timeout": 3.0,
        "max_connections": 2, "max_send_buffer": 20_000,
        "allow_request": lambda req: req.headers.get("X-Deny") is None,
    }

    @gen_test
    async def test_allow_request_refuses_new_sessions(self):
        response = await SockJSXhr(self.base_url, headers={"X-Deny": "1"}).request("xhr")
        assert response.code == 403
        with self.assertRaises(HTTPClientError) as caught:
            await SockJSWebSocket(self.base_url, headers={"X-Deny": "1"}).open()
        assert caught.exception.code == 403

    @gen_test
    async def test_max_connections_counts_engine_and_sockjs_sessions(self):
        engine_client = await RawWebSocket.open(self.base_url)
        sockjs_client = await self.client("xhr", connect=False)
        response = await SockJSXhr(self.base_url).request("xhr")
        assert response.code == 503
        with self.assertRaises(HTTPClientError) as caught:
            await SockJSWebSocket(self.base_url).open()
        assert caught.exception.code == 503
        assert len(sockjs_clients(self.socketio)) == 1
        engine_client.close()
        sockjs_client.close()

    @gen_test
    async def test_a_client_that_does_not_poll_is_cut_off_at_max_send_buffer(self):
        client = await self.client("xhr")
        (conn,) = sockjs_clients(self.socketio)
        sid = next(iter(self.socketio.adapter.by_sid))
        for _ in range(30):
            self.socketio.emit("flood", "x" * 1000, to=sid)
        await self.until(lambda: self.disconnect_reasons() == ["transport error"])
        assert conn.closed
        assert await client.closed() == [3002, "transport error"]


class DisabledTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"sockjs": False}

    @gen_test
    async def test_sockjs_false_mounts_nothing(self):
        response = await AsyncHTTPClient().fetch(self.get_url("/sockjs/info"), raise_error=False)
        assert response.code == 404
        assert (await RawPolling(self.base_url).open()).sid


class PrefixTest(SockJSCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "sockjs_prefix": "/rt/fallback/"}

    @gen_test
    async def test_router_is_mounted_at_the_configured_prefix(self):
        assert (await AsyncHTTPClient().fetch(self.get_url("/sockjs/info"), raise_error=False)).code == 404
        client = await self.client("xhr", prefix="/rt/fallback")
        await client.emit("echo", 1)
        assert await client.recv_event() == ["echo", 1]


class SettingsTest(SocketIOTestCase):
    """sockjs_settings for custom sockjs-tornado settings; sockjs_prefix for the mount point;
    sockjs_client_url for the iframe page's script."""

    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "sockjs_prefix": "/sj",
                                                  "sockjs_settings": {"disabled_transports": ["websocket"]},
                                                  "sockjs_client_url": "/static/sockjs.js"}

    def tearDown(self) -> None:
        self.socketio.sockjs_endpoint.stop()
        super().tearDown()

    @gen_test
    async def test_disabled_websocket_and_custom_iframe_script(self):
        info = json.loads((await AsyncHTTPClient().fetch(self.get_url("/sj/info"))).body)
        assert info["websocket"] is False
        page = await AsyncHTTPClient().fetch(self.get_url("/sj/iframe.html"))
        assert b'<script src="/static/sockjs.js"></script>' in page.body
        with self.assertRaises(HTTPClientError):
            await SockJSWebSocket(self.base_url, prefix="/sj").open()


# ---------------------------------------------------------------------------
# sockjs-client: one script for the page and the iframe page, pinned by SRI
# ---------------------------------------------------------------------------

#: The iframe page of the SockJS protocol (sockjs-protocol's IframePage test), with the
#: SRI attributes this server adds to its script tag.
IFRAME_BODY = re.compile(r"""^<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="(?P<src>[^"]*)"(?: integrity="(?P<integrity>[^"]*)" crossorigin="anonymous")?></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe\(\);
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>$""")
OTHER_CDN = "https://unpkg.com/sockjs-client@1.6.1/dist/sockjs.min.js"
SOME_HASH = "sha384-" + base64.b64encode(hashlib.sha384(b"some other build").digest()).decode()


def test_default_integrity_is_the_sha384_of_sockjs_min_js_in_the_npm_package():
    modules = support.need_node_module("sockjs-client")
    if support.node_package_version("sockjs-client") != SOCKJS_CLIENT_VERSION:
        support.missing(f"npm package sockjs-client {SOCKJS_CLIENT_VERSION} is not in {support.NODE_CACHE} "
                        f"(found {support.node_package_version('sockjs-client')}): "
                        f"npm install --prefix {support.NODE_CACHE} sockjs-client@{SOCKJS_CLIENT_VERSION}")
    script = (modules / "sockjs-client" / "dist" / "sockjs.min.js").read_bytes()
    assert DEFAULT_SOCKJS_INTEGRITY == "sha384-" + base64.b64encode(hashlib.sha384(script).digest()).decode()
    assert f"sockjs-client@{SOCKJS_CLIENT_VERSION}/dist/sockjs.min.js" in DEFAULT_SOCKJS_URL


def test_client_script_defaults_to_the_pinned_cdn_copy():
    assert client_script(Options()) == ClientScript(DEFAULT_SOCKJS_URL, DEFAULT_SOCKJS_INTEGRITY)
    assert client_script(Options(sockjs_client_url=DEFAULT_SOCKJS_URL)).integrity == DEFAULT_SOCKJS_INTEGRITY


def test_client_script_on_this_server_needs_no_integrity():
    script = client_script(Options(sockjs_client_url="/static/sockjs.min.js"))
    assert script == ClientScript("/static/sockjs.min.js", None)
    assert script.tag() == '<script src="/static/sockjs.min.js"></script>'
    assert script.origin is None


def test_client_script_on_another_origin_carries_its_integrity_and_crossorigin():
    script = client_script(Options(sockjs_client_url=OTHER_CDN, sockjs_client_integrity=SOME_HASH))
    assert script.tag() == f'<script src="{OTHER_CDN}" integrity="{SOME_HASH}" crossorigin="anonymous"></script>'
    assert script.origin == "https://unpkg.com"


def test_client_script_on_another_origin_without_integrity_is_refused():
    for url in (OTHER_CDN, "//cdn.example/sockjs.min.js"):
        with pytest.raises(ValueError, match="sockjs_client_integrity"):
            client_script(Options(sockjs_client_url=url))


def test_client_script_refuses_relative_paths_other_schemes_and_malformed_hashes():
    for url in ("static/sockjs.min.js", "javascript:alert(1)", "", "/a b.js", "/\\evil.example/sockjs.js"):
        with pytest.raises(ValueError, match="sockjs_client_url"):
            client_script(Options(sockjs_client_url=url))
    with pytest.raises(ValueError, match="sockjs_client_url must be http"):
        client_script(Options(sockjs_client_url="ftp://cdn.example/sockjs.js", sockjs_client_integrity=SOME_HASH))
    for bad in ("md5-abc", "sha384-not base64!", 'sha384-x" onload="alert(1)'):
        with pytest.raises(ValueError, match="sockjs_client_integrity"):
            client_script(Options(sockjs_client_url="/s.js", sockjs_client_integrity=bad))
    with pytest.raises(ValueError, match="give the URL too"):
        client_script(Options(sockjs_client_integrity=SOME_HASH))


def test_client_script_attributes_are_html_escaped():
    assert ClientScript('/s.js?a="b"&c').attributes() == 'src="/s.js?a=&quot;b&quot;&amp;c"'


def test_sockjs_url_in_sockjs_settings_is_refused_for_sockjs_client_url():
    with pytest.raises(ValueError, match="sockjs_client_url"):
        SocketIO(sockjs_settings={"sockjs_url": "/static/sockjs.min.js"}).routes()


def test_sockjs_origin_is_host_and_port():
    assert sockjs_origin("https://App.example") == "app.example:443"
    assert sockjs_origin("http://app.example") == "app.example:80"
    assert sockjs_origin("http://app.example:8080") == "app.example:8080"
    assert sockjs_origin("http://[::1]:5000") == "[::1]:5000"
    assert sockjs_origin("null") == "null"


class SockJSPageCase(SocketIOTestCase):
    def tearDown(self) -> None:
        self.socketio.sockjs_endpoint.stop()
        super().tearDown()

    async def iframe(self, path: str = "/sockjs/iframe.html", **kwargs: Any) -> tuple[HTTPResponse, Any]:
        response = await AsyncHTTPClient().fetch(self.get_url(path), raise_error=False, **kwargs)
        return response, IFRAME_BODY.match(response.body.decode())

    async def info(self) -> dict:
        return json.loads((await AsyncHTTPClient().fetch(self.get_url("/sockjs/info"))).body)


class DefaultClientScriptTest(SockJSPageCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*"}

    @gen_test
    async def test_iframe_page_loads_the_pinned_cdn_copy_with_sri(self):
        response, page = await self.iframe()
        assert page, response.body
        assert page["src"] == DEFAULT_SOCKJS_URL
        assert page["integrity"] == DEFAULT_SOCKJS_INTEGRITY

    @gen_test
    async def test_iframe_page_is_the_same_for_versioned_urls_and_strongly_cached(self):
        response, page = await self.iframe("/sockjs/iframe-0.1.2abc-dirty.2144.html?t=1")
        assert page and page["src"] == DEFAULT_SOCKJS_URL
        assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
        assert re.search(r"public", response.headers["Cache-Control"])
        assert re.search(r"max-age=[1-9][0-9]{6}", response.headers["Cache-Control"])
        assert response.headers["Expires"] and "Last-Modified" not in response.headers
        again, _ = await self.iframe(headers={"If-None-Match": response.headers["Etag"]})
        assert again.code == 304 and again.body == b""

    @gen_test
    async def test_info_reports_any_origin_as_star_colon_star(self):
        info = await self.info()
        assert info["origins"] == ["*:*"]
        assert 0 <= info["entropy"] < 2**32


class CdnClientScriptTest(SockJSPageCase):
    socketio_options: ClassVar[dict[str, Any]] = {"sockjs_client_url": OTHER_CDN,
                                                  "sockjs_client_integrity": SOME_HASH}

    @gen_test
    async def test_iframe_page_carries_the_configured_url_and_integrity(self):
        response, page = await self.iframe()
        assert page, response.body
        assert (page["src"], page["integrity"]) == (OTHER_CDN, SOME_HASH)

    @gen_test
    async def test_info_reports_the_same_origin_policy_as_the_requests_host(self):
        assert (await self.info())["origins"] == [f"127.0.0.1:{self.get_http_port()}"]


class LocalClientScriptTest(SockJSPageCase):
    socketio_options: ClassVar[dict[str, Any]] = {
        "sockjs_client_url": "/assets/sockjs.min.js",
        "cors_allowed_origins": ["https://app.example", "http://app.example:8080", "https://app.example:443"]}

    @gen_test
    async def test_iframe_page_loads_a_local_copy_without_integrity(self):
        response, page = await self.iframe()
        assert page, response.body
        assert (page["src"], page["integrity"]) == ("/assets/sockjs.min.js", None)
        assert b"integrity" not in response.body and b"crossorigin" not in response.body

    @gen_test
    async def test_info_reports_the_allowed_origins_as_host_and_port(self):
        assert (await self.info())["origins"] == ["app.example:443", "app.example:8080"]


class PredicateOriginsTest(SockJSPageCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": lambda origin: origin.endswith(".example")}

    @gen_test
    async def test_info_leaves_origins_out_for_a_policy_that_cannot_be_listed(self):
        info = await self.info()
        assert "origins" not in info
        assert set(info) == {"websocket", "cookie_needed", "entropy"}


def _fetch(url: str) -> tuple[str, Any]:
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        return response.read().decode(), response.headers


def test_demo_flag_reaches_the_page_and_the_iframe_page():
    with support.run_app(["--sockjs-client-url", "/static/sockjs.min.js"]) as port:
        page, headers = _fetch(f"http://127.0.0.1:{port}/?transport=sockjs")
        iframe, _ = _fetch(f"http://127.0.0.1:{port}/sockjs/iframe.html")
    tag = '<script src="/static/sockjs.min.js"></script>'
    assert tag in page
    assert IFRAME_BODY.match(iframe)["src"] == "/static/sockjs.min.js"
    assert "script-src 'self';" in headers["Content-Security-Policy"]


def test_demo_loads_the_pinned_cdn_copy_by_default_and_its_csp_allows_only_that_origin():
    with support.run_app() as port:
        page, headers = _fetch(f"http://127.0.0.1:{port}/?transport=sockjs")
        plain, plain_headers = _fetch(f"http://127.0.0.1:{port}/")
        iframe, _ = _fetch(f"http://127.0.0.1:{port}/sockjs/iframe.html")
    tag = f'<script src="{DEFAULT_SOCKJS_URL}" integrity="{DEFAULT_SOCKJS_INTEGRITY}" crossorigin="anonymous">'
    assert tag in page and tag in iframe
    assert "script-src 'self' https://cdn.jsdelivr.net;" in headers["Content-Security-Policy"]
    assert "sockjs" not in plain and "script-src 'self';" in plain_headers["Content-Security-Policy"]


def test_demo_refuses_a_cdn_url_without_its_integrity():
    proc = subprocess.run([sys.executable, str(support.ROOT / "run.py"), "--port", str(support.free_port()),
                           "--sockjs-client-url", OTHER_CDN], cwd=str(support.ROOT), capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 1
    assert "cannot start" in proc.stderr and "sockjs_client_integrity" in proc.stderr
