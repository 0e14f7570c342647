"""Engine.IO v4 over WebSocket, direct and by upgrade from polling (raw clients)."""

import asyncio
import json
from typing import Any, ClassVar

from tornado.httpclient import HTTPClientError
from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawPolling, RawWebSocket, error_of


class WebSocketTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": "*", "ping_interval": 0.2, "ping_timeout": 0.4,
    }

    @gen_test
    async def test_direct_websocket_handshake_has_no_upgrades(self):
        ws = await RawWebSocket.open(self.base_url)
        assert ws.handshake["upgrades"] == []
        assert ws.handshake["pingInterval"] == 200

    @gen_test
    async def test_direct_websocket_connects_a_namespace(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect()
        assert reply.startswith("40{\"sid\":")

    @gen_test
    async def test_server_pings_over_websocket(self):
        ws = await RawWebSocket.open(self.base_url)
        assert await ws.recv(skip_pings=False) == "2"

    @gen_test
    async def test_missed_pong_closes_websocket(self):
        ws = await RawWebSocket.open(self.base_url)
        assert await ws.recv(skip_pings=False) == "2"
        assert await ws.closed(timeout=3)

    @gen_test
    async def test_answered_pings_keep_connection_past_two_intervals(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        for _ in range(4):
            assert await ws.recv(skip_pings=False) == "2"
            await ws.send("3")
        assert len(self.socketio.engine.sessions) == 1

    @gen_test
    async def test_invalid_engine_packet_closes_only_that_client(self):
        good = await RawWebSocket.open(self.base_url)
        await good.connect()
        bad = await RawWebSocket.open(self.base_url)
        await bad.send("x")
        assert await bad.closed()
        await good.emit("nobody-listens")
        assert len(self.socketio.engine.sessions) == 1

    @gen_test
    async def test_unknown_sid_websocket_is_400_before_upgrade(self):
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url, query="EIO=4&transport=websocket&sid=unknown")
        assert ctx.exception.code == 400

    @gen_test
    async def test_permessage_deflate_is_off_by_default(self):
        ws = await RawWebSocket.open(self.base_url)
        assert "Sec-WebSocket-Extensions" not in ws.conn.headers


class UpgradeTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "upgrade_timeout": 0.3}

    async def _probe(self, client):
        ws = await RawWebSocket.open(self.base_url, query=f"EIO=4&transport=websocket&sid={client.sid}",
                                     handshake=False)
        await ws.send("2probe")
        assert await ws.recv() == "3probe"
        return ws

    @gen_test
    async def test_probe_flushes_pending_get_with_noop_and_upgrade_switches_transport(self):
        client = await RawPolling(self.base_url).open()
        await client.connect()
        pending = asyncio.ensure_future(client.get())
        await asyncio.sleep(0.05)
        ws = await self._probe(client)
        assert await pending == ["6"]
        await ws.send("5")
        await self.until(lambda: self.socketio.engine.sessions[client.sid].transport == "websocket")
        await ws.emit("ping-me")

    @gen_test
    async def test_polling_after_upgrade_is_refused(self):
        client = await RawPolling(self.base_url).open()
        ws = await self._probe(client)
        await client.get()  # the noop
        await ws.send("5")
        await self.until(lambda: self.socketio.engine.sessions[client.sid].transport == "websocket")
        response = await client.request()
        assert response.code == 400
        assert error_of(response)["code"] == 3

    @gen_test
    async def test_messages_queued_during_upgrade_arrive_on_websocket(self):
        @self.socketio.on("later")
        def later():
            return "done"

        client = await RawPolling(self.base_url).open()
        await client.connect()
        ws = await self._probe(client)
        await client.get()
        self.socketio.emit("queued", 1)
        await ws.send("5")
        event = await ws.recv_event()
        assert event == ["queued", 1]

    @gen_test
    async def test_upgrade_that_never_completes_leaves_polling_working(self):
        client = await RawPolling(self.base_url).open()
        await client.connect()
        ws = await self._probe(client)
        await client.get()  # noop
        assert await ws.closed(timeout=3)
        self.socketio.emit("still here")
        packets = await client.get()
        assert packets == ['42["still here"]']


class WebSocketOriginTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": ["https://good.example"]}

    @gen_test
    async def test_disallowed_origin_is_403_before_101(self):
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url, headers={"Origin": "https://evil.example"})
        assert ctx.exception.code == 403

    @gen_test
    async def test_allowed_origin_connects(self):
        ws = await RawWebSocket.open(self.base_url, headers={"Origin": "https://good.example"})
        assert ws.handshake["sid"]


class WebSocketLimitsTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_http_buffer_size": 1000}

    @gen_test
    async def test_message_over_max_http_buffer_size_closes_connection(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.send("42" + json.dumps(["big", "x" * 5000]))
        assert await ws.closed()
        await self.until(lambda: not self.socketio.engine.sessions)


class CompressionTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "websocket_compression": True}

    @gen_test
    async def test_permessage_deflate_is_a_setting(self):
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = self.get_url("/socket.io/?EIO=4&transport=websocket").replace("http", "ws")
        conn = await websocket_connect(HTTPRequest(url), compression_options={})
        assert "permessage-deflate" in conn.headers.get("Sec-WebSocket-Extensions", "")
        conn.close()
