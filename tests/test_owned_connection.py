"""The owned WebSocket connection (``tornado_sio/http/owned.py``) against a live server.

After the 101 a WebSocket is carried by :class:`~tornado_sio.http.owned.EngineWebSocket`,
an asyncio protocol on the RFC 6455 parser, not by Tornado's handler. These
tests open real sockets and send the bytes by hand: fragments and control
frames between them, closing handshakes from either side, broken and oversized
frames, silent and slow clients; then the cases that stay on Tornado's handler
(TLS, ``websocket_owned=False``) and what an idle connection no longer holds.
The SIGTERM drain over the owned connection is ``tests/test_shutdown.py`` (the
demo app runs with the default, owned, path); the reader against the parser
for any byte stream is ``tests/test_owned_reader_model.py``.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import os
import socket
import ssl
import struct
from typing import Any, ClassVar

import pytest
import tornado.web
from tornado.httpclient import HTTPRequest
from tornado.iostream import IOStream
from tornado.testing import AsyncHTTPSTestCase, AsyncHTTPTestCase, gen_test
from tornado.websocket import websocket_connect

from tests.hardening_support import HardeningTestCase, LogRecorder, RawFrames, client_frame
from tornado_sio import SocketIO
from tornado_sio.http import owned
from tornado_sio.http.owned import EngineWebSocket, accept_key
from tornado_sio.http.websocket import EngineWebSocketHandler
from tornado_sio.protocol.wsframe import OP_BINARY, OP_TEXT, build_frame


class OwnedCase(HardeningTestCase):
    """An echo server with a small message limit; helpers for a raw client."""

    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_http_buffer_size": 1000}

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)
        self.reasons: list[str] = []

        @socketio.on("say")
        def say(text):
            return text

        @socketio.on("disconnect")
        def on_disconnect(reason):
            self.reasons.append(reason)

    async def connected(self, **kwargs: Any) -> RawFrames:
        ws = await RawFrames.open(self.port, **kwargs)
        await ws.send_frame("40")
        assert (await ws.recv_text()).startswith("40{")
        return ws

    def wire_of(self, ws: RawFrames) -> Any:
        return self.socketio.engine.sessions[ws.handshake["sid"]]._wire


class OwnedConnectionTest(OwnedCase):
    @gen_test
    async def test_a_websocket_is_carried_by_the_owned_connection(self):
        ws = await self.connected()
        assert type(self.wire_of(ws)) is EngineWebSocket
        ws.close()

    @gen_test
    async def test_the_101_accepts_the_key_as_rfc_6455_says(self):
        key = base64.b64encode(os.urandom(16)).decode()
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", self.port))
        await loop.sock_sendall(sock, (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
                                       f"Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        sock.close()
        lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 101 Switching Protocols"
        assert f"Sec-WebSocket-Accept: {accept_key(key)}" in lines
        assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3

    @gen_test
    async def test_a_message_in_fragments_with_control_frames_between_them_is_answered_in_order(self):
        ws = await self.connected()
        data = (client_frame(b'421["say",', 1, fin=False)
                + client_frame(b"p1", 0x9)
                + client_frame(b'"fr', 0, fin=False)
                + client_frame(b"", 0xA)
                + client_frame(b"p2", 0x9)
                + client_frame(b'ag"]', 0))
        await ws.send_raw(data, piece=5)
        assert await ws.recv_frame() == (0xA, b"p1")
        assert await ws.recv_frame() == (0xA, b"p2")
        assert await ws.recv_text() == '431["frag"]'
        ws.close()

    @gen_test
    async def test_frames_sent_right_behind_the_handshake_are_read(self):
        key = base64.b64encode(os.urandom(16)).decode()
        sock = socket.socket()
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", self.port))
        request = (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        await loop.sock_sendall(sock, request + client_frame(b"40", 1))  # against RFC 6455 4.1, but read
        ws = RawFrames(sock, b"")
        while b"\r\n\r\n" not in ws.buffer:
            ws.buffer += await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
        ws.buffer = ws.buffer.split(b"\r\n\r\n", 1)[1]
        assert (await ws.recv_text()).startswith("0{")
        assert (await ws.recv_text()).startswith("40{")
        ws.close()


class OwnedClosingTest(OwnedCase):
    @gen_test
    async def test_a_clients_close_is_echoed_then_the_tcp_connection_closed(self):
        ws = await self.connected()
        sid = ws.handshake["sid"]
        await ws.send_frame(struct.pack("!H", 1001) + b"bye", opcode=0x8)
        assert await ws.close_frame() == (1001, b"")
        assert await ws.eof()
        await self.gone(sid)
        assert self.reasons == ["transport close"]
        ws.close()

    @gen_test
    async def test_an_empty_close_is_echoed_empty(self):
        ws = await self.connected()
        await ws.send_frame(b"", opcode=0x8)
        assert await ws.close_frame() == (None, b"")
        assert await ws.eof()
        ws.close()

    @gen_test
    async def test_a_server_disconnect_sends_close_then_a_close_frame_and_ends_at_the_clients_echo(self):
        ws = await self.connected()
        sid = ws.handshake["sid"]
        self.socketio.engine.sessions[sid].close("server disconnect")
        assert await ws.recv_frame() == (0x1, b"1")  # the Engine.IO CLOSE packet
        assert await ws.recv_frame() == (0x8, b"")
        await ws.send_frame(b"", opcode=0x8)
        assert await ws.eof(timeout=2)
        await self.gone(sid)
        ws.close()

    @gen_test
    async def test_a_client_that_never_answers_the_servers_close_is_dropped_after_the_close_wait(self):
        saved = owned.CLOSE_WAIT
        owned.CLOSE_WAIT = 0.2
        try:
            ws = await self.connected()
            self.socketio.engine.sessions[ws.handshake["sid"]].close("server disconnect")
            assert await ws.close_frame() == (None, b"")
            assert await ws.eof(timeout=5)  # no echo from us: the server drops the connection itself
        finally:
            owned.CLOSE_WAIT = saved
        ws.close()

    @gen_test
    async def test_data_after_the_servers_close_is_dropped(self):
        ws = await self.connected()
        wire = self.wire_of(ws)
        wire.close()  # the transport alone: the session is still open until the client answers
        assert await ws.close_frame() == (None, b"")
        await ws.send_frame('421["say","late"]')
        await ws.send_frame(b"", opcode=0x8)
        assert await ws.eof()
        assert await ws.recv_frame() == (None, b"")  # no answer to the late message
        ws.close()


class OwnedFailureTest(OwnedCase):
    @gen_test
    async def test_a_frame_header_over_max_http_buffer_size_is_refused_before_any_payload(self):
        ws = await self.connected()
        sid = ws.handshake["sid"]
        await ws.send_raw(struct.pack("!BBQ", 0x82, 0x80 | 127, 10**9) + os.urandom(4))  # the header only
        assert await ws.close_frame() == (1009, b"")
        ws.sock.shutdown(socket.SHUT_WR)  # the client goes: the server had shut its side after the close frame
        assert await ws.eof()
        await self.gone(sid)
        assert self.reasons == ["transport error"]
        self.assert_logged_once("message too big")
        ws.close()
        await self.assert_healthy()

    @gen_test
    async def test_an_unmasked_frame_closes_with_1002(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b'42["say","x"]', 1, masked=False))
        assert await ws.close_frame() == (1002, b"unmasked client frame")
        ws.sock.shutdown(socket.SHUT_WR)
        assert await ws.eof()
        self.assert_logged_once("unmasked client frame")
        ws.close()
        await self.assert_healthy()

    @gen_test
    async def test_a_masked_frame_is_read_whatever_its_mask(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b'421["say","m"]', 1, mask=b"\x00\x00\x00\x00")
                          + client_frame(b'422["say","n"]', 1, mask=b"\xff\x10\x20\x30"))
        assert await ws.recv_text() == '431["m"]'
        assert await ws.recv_text() == '432["n"]'
        ws.close()

    @gen_test
    async def test_invalid_utf8_closes_with_1007(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b'42["say","\xff"]', 1))
        assert await ws.close_code() == 1007
        ws.close()
        await self.assert_healthy()


class SilentClientTest(OwnedCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "ping_interval": 0.2,
                                                  "ping_timeout": 0.3}

    @gen_test
    async def test_a_client_that_sends_nothing_is_pinged_then_dropped_at_the_ping_timeout(self):
        ws = await self.connected()
        sid = ws.handshake["sid"]
        assert await ws.recv_frame() == (0x1, b"2")  # a ping, never answered
        await self.gone(sid, timeout=10)
        assert self.reasons == ["ping timeout"]
        assert await ws.close_frame() == (None, b"")  # then the closing handshake, which it ignores too
        ws.close()


class SlowReaderTest(OwnedCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_send_buffer": 100_000}

    @gen_test(timeout=30)
    async def test_a_reader_more_than_max_send_buffer_behind_is_dropped_and_others_go_on(self):
        bystander = await self.ws_client()
        hog = await self.connected(rcvbuf=4096)
        sid = hog.handshake["sid"]
        blob = "z" * 65536
        for i in range(200):  # at most 13 MB, paced by the bystander's reading
            self.socketio.emit("blob", i, blob)
            assert await bystander.recv_event() == ["blob", i, blob]
            if sid not in self.socketio.engine.sessions:
                break
        assert sid not in self.socketio.engine.sessions
        assert self.reasons == ["transport error"]
        assert self.socketio.engine.stats.backpressure_closes == 1  # (logged at WARNING once per process)
        hog.close()
        await self.assert_healthy(bystander)


class HandshakeHeadersTest(OwnedCase):
    async def upgrade(self, **headers: str) -> bytes:
        lines = ["GET /socket.io/?EIO=4&transport=websocket HTTP/1.1", "Host: x", "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Version: 13"]
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", self.port))
        await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        sock.close()
        return head

    @gen_test
    async def test_an_upgrade_without_a_key_is_refused_with_400(self):
        head = await self.upgrade()
        assert head.startswith(b"HTTP/1.1 400")
        assert not self.socketio.engine.sessions

    @gen_test
    async def test_an_unknown_websocket_version_gets_426_naming_the_versions(self):
        head = await self.upgrade(Sec_WebSocket_Key="dGhlIHNhbXBsZSBub25jZQ==", Sec_WebSocket_Version="12")
        assert head.startswith(b"HTTP/1.1 426")
        assert b"Sec-Websocket-Version: 7, 8, 13" in head
        assert not self.socketio.engine.sessions


class IdleFootprintTest(OwnedCase):
    @gen_test
    async def test_an_open_websocket_keeps_no_handler_stream_or_tornado_connection(self):
        clients = [await self.connected() for _ in range(3)]
        await asyncio.sleep(0)
        gc.collect()
        assert not [o for o in gc.get_objects() if isinstance(o, EngineWebSocketHandler)]
        request = self.socketio.engine.sessions[clients[0].handshake["sid"]].request
        assert request.request.connection is None and request.request.server_connection is None
        assert request.request.query_arguments["transport"] == [b"websocket"]  # the summary stays
        assert request.remote_ip == "127.0.0.1"
        port = self.get_http_port()
        server_streams = [o for o in gc.get_objects() if type(o) is IOStream and not o.closed()
                          and o.socket is not None and o.socket.getsockname()[1] == port]
        assert server_streams == []  # (streams of earlier tests, or of clients, are not this server's)
        for ws in clients:
            ws.close()


class StockHandlerTest(OwnedCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "websocket_owned": False}

    @gen_test
    async def test_websocket_owned_false_keeps_tornados_handler(self):
        ws = await self.connected()
        assert isinstance(self.wire_of(ws), EngineWebSocketHandler)
        await ws.send_frame('421["say","stock"]')
        assert await ws.recv_text() == '431["stock"]'
        ws.close()


class TLSFallbackTest(AsyncHTTPSTestCase):
    """TLS terminated by Tornado stays on Tornado's handler, and says so once."""

    def get_app(self):
        self.socketio = SocketIO(cors_allowed_origins="*")
        return tornado.web.Application(self.socketio.routes())

    def setUp(self):
        self.log = LogRecorder(logging.INFO)
        self.log.start()
        owned._fallbacks_logged.discard("a TLS stream (or not a plain IOStream)")  # say it again in this test
        super().setUp()

    def tearDown(self):
        self.socketio.engine.stop()
        super().tearDown()
        self.log.stop()

    async def wss(self):
        url = self.get_url("/socket.io/?EIO=4&transport=websocket").replace("https", "wss")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = await websocket_connect(HTTPRequest(url, ssl_options=context))
        assert (await conn.read_message()).startswith("0{")
        return conn

    @gen_test
    async def test_a_tls_websocket_stays_on_tornados_handler_logged_once(self):
        first, second = await self.wss(), await self.wss()
        wires = [s._wire for s in self.socketio.engine.sessions.values()]
        assert len(wires) == 2 and all(isinstance(w, EngineWebSocketHandler) for w in wires)
        first.write_message("40")
        assert (await first.read_message()).startswith("40{")
        assert len(self.log.matching("a TLS stream")) == 1
        first.close()
        second.close()


class EchoWebSocket(owned.OwnedWebSocket):
    """The smallest owned connection: every message back as it came (``tools/autobahn.py`` runs one)."""

    __slots__ = ()

    def on_message(self, data: str | bytes) -> None:
        text = isinstance(data, str)
        self.send(build_frame(data.encode() if isinstance(data, str) else data, OP_TEXT if text else OP_BINARY))


class AdoptedEcho(tornado.web.RequestHandler):
    async def get(self) -> None:
        await owned.adopt(self, lambda head, leftover, inflater: EchoWebSocket(1000, 1 << 20, head, leftover,
                                                                              inflater), compression=False)


class AdoptTest(AsyncHTTPTestCase):
    """``owned.adopt``: the Engine.IO WebSocket's take-over, for any ``OwnedWebSocket``."""

    def get_app(self):
        return tornado.web.Application([(r"/echo", AdoptedEcho)])

    @gen_test
    async def test_adopt_hands_the_upgraded_connection_to_the_given_owned_websocket(self):
        ws = await RawFrames.open(self.get_http_port(), query="", path="/echo", read_open=False)
        await ws.send_frame("hello")
        await ws.send_frame(b"\x00\x01", fin=False)
        await ws.send_frame(b"\x02", opcode=0)
        assert await ws.recv_frame() == (1, b"hello")
        assert await ws.recv_frame() == (2, b"\x00\x01\x02")
        ws.close()

    @gen_test
    async def test_adopt_answers_a_request_that_is_no_websocket_upgrade_as_tornado_does(self):
        response = await self.http_client.fetch(self.get_url("/echo"), raise_error=False)
        assert response.code == 400
        assert response.body == b'Can "Upgrade" only to "WebSocket".'


@pytest.mark.parametrize("version", ["7", "8", "13"])
def test_the_versions_tornado_accepts_are_accepted(version):
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": version,
               "Host": "x", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    assert owned.handshake_refusal(headers) is None
