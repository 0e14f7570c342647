"""The raw Engine.IO endpoint (no Socket.IO), against python-engineio's own client."""

import asyncio

import tornado.web
from tornado.testing import AsyncHTTPTestCase, gen_test

from tests.rawclient import RawPolling, RawWebSocket
from tests.support import need_python_module
from tornado_sio.engine_app import EngineIOApp


class EngineAppTest(AsyncHTTPTestCase):
    def get_app(self):
        self.eio = EngineIOApp(cors_allowed_origins="*", ping_interval=0.2, ping_timeout=0.4)
        self.events = []

        @self.eio.on("connect")
        def on_connect(sid, request):
            self.events.append(("connect", request.args.get("name")))
            return request.args.get("name") != "mallory"

        @self.eio.on("message")
        async def on_message(sid, data):
            await asyncio.sleep(0)
            self.eio.send(sid, data)

        @self.eio.on("disconnect")
        def on_disconnect(sid, reason):
            self.events.append(("disconnect", reason))

        return tornado.web.Application(self.eio.routes("/engine.io"))

    def tearDown(self):
        self.eio.stop()
        super().tearDown()

    @gen_test
    async def test_text_message_echoes_over_websocket(self):
        ws = await RawWebSocket.open(self.get_url(""), path="/engine.io/")
        await ws.send("4hello")
        assert await ws.recv() == "4hello"

    @gen_test
    async def test_binary_message_echoes_as_binary_frame(self):
        ws = await RawWebSocket.open(self.get_url(""), path="/engine.io/")
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"

    @gen_test
    async def test_binary_message_echoes_over_polling_as_base64(self):
        client = await RawPolling(self.get_url(""), path="/engine.io/").open()
        await client.post("bAP8=")
        assert await client.get() == ["bAP8="]

    @gen_test
    async def test_connect_handler_returning_false_refuses_handshake(self):
        response = await RawPolling(self.get_url(""), path="/engine.io/").request(query="name=mallory")
        assert response.code == 403
        assert ("connect", "mallory") in self.events

    @gen_test
    async def test_disconnect_handler_gets_reason(self):
        ws = await RawWebSocket.open(self.get_url(""), path="/engine.io/")
        ws.close()
        for _ in range(200):
            if ("disconnect", "transport close") in self.events:
                break
            await asyncio.sleep(0.01)
        assert ("disconnect", "transport close") in self.events

    @gen_test(timeout=20)
    async def test_python_engineio_client_round_trips_over_each_transport(self):
        need_python_module("engineio")
        import engineio

        for transports in (["websocket"], ["polling"], None):
            client = engineio.AsyncClient()
            got = asyncio.get_running_loop().create_future()
            client.on("message", lambda data, got=got: got.done() or got.set_result(data))
            await client.connect(self.get_url("/"), engineio_path="engine.io", transports=transports)
            await client.send("ping")
            assert await asyncio.wait_for(got, 5) == "ping"
            if transports is None:
                for _ in range(100):
                    if client.transport() == "websocket":
                        break
                    await asyncio.sleep(0.02)
                assert client.transport() == "websocket"
            await asyncio.sleep(0.5)  # over two ping intervals: the heartbeat keeps it open
            assert client.state == "connected"
            await client.disconnect()


class ConnectHandlerSendsTest(AsyncHTTPTestCase):
    """What the ``connect`` handler sends reaches the client, whatever the transport."""

    def get_app(self):
        self.eio = EngineIOApp(cors_allowed_origins="*")

        @self.eio.on("connect")
        def on_connect(sid, request):
            self.eio.send(sid, "welcome")
            self.eio.send(sid, b"\x01\x02")

        return tornado.web.Application(self.eio.routes("/engine.io"))

    def tearDown(self):
        self.eio.stop()
        super().tearDown()

    @gen_test
    async def test_message_sent_from_connect_reaches_a_websocket_only_session_after_the_open_packet(self):
        ws = await RawWebSocket.open(self.get_url(""), path="/engine.io/")  # reads the OPEN packet first
        assert ws.handshake["sid"]
        assert await ws.recv() == "4welcome"
        assert await ws.recv() == b"\x01\x02"

    @gen_test
    async def test_message_sent_from_connect_reaches_a_polling_session_on_its_first_get(self):
        client = await RawPolling(self.get_url(""), path="/engine.io/").open()
        assert await client.get() == ["4welcome", "bAQI="]
