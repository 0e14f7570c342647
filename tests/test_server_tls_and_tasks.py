"""Same-origin under TLS terminated by Tornado, and no task per plain-handler event."""

import asyncio
import ssl

import tornado.web
from tornado.httpclient import HTTPRequest
from tornado.testing import AsyncHTTPSTestCase, gen_test
from tornado.websocket import websocket_connect

from tests.base import SocketIOTestCase
from tests.rawclient import RawPolling, RawWebSocket
from tornado_sio import SocketIO


class TLSSameOriginTest(AsyncHTTPSTestCase):
    def get_app(self):
        self.socketio = SocketIO()  # default policy: same origin only
        return tornado.web.Application(self.socketio.routes())

    def tearDown(self):
        self.socketio.engine.stop()
        super().tearDown()

    def _origin(self):
        return f"https://127.0.0.1:{self.get_http_port()}"

    @gen_test
    async def test_https_origin_is_same_origin_when_tornado_terminates_tls(self):
        response = await self.http_client.fetch(
            self.get_url("/socket.io/?EIO=4&transport=polling"),
            headers={"Origin": self._origin()}, validate_cert=False, raise_error=False)
        assert response.code == 200

    @gen_test
    async def test_http_origin_is_cross_origin_on_a_tls_server(self):
        response = await self.http_client.fetch(
            self.get_url("/socket.io/?EIO=4&transport=polling"),
            headers={"Origin": f"http://127.0.0.1:{self.get_http_port()}"}, validate_cert=False,
            raise_error=False)
        assert response.code == 403

    @gen_test
    async def test_secure_websocket_from_same_origin_connects(self):
        url = self.get_url("/socket.io/?EIO=4&transport=websocket").replace("https", "wss")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = await websocket_connect(HTTPRequest(url, headers={"Origin": self._origin()},
                                                   ssl_options=context))
        opening = await conn.read_message()
        assert opening.startswith("0{")
        conn.close()


class ForwardedSchemeTest(SocketIOTestCase):
    socketio_options = {}

    def get_httpserver_options(self):
        return {"xheaders": True}

    @gen_test
    async def test_forwarded_proto_sets_the_scheme_for_the_origin_check(self):
        origin = self.get_url("").replace("http://", "https://")
        response = await RawPolling(self.base_url).request(
            headers={"Origin": origin, "X-Forwarded-Proto": "https"})
        assert response.code == 200


class PlainHandlerTaskTest(SocketIOTestCase):
    def setup_handlers(self, sio):
        @sio.on("plain")
        def plain(x):
            return x

    @gen_test
    async def test_plain_handler_events_create_no_tasks(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("plain", 0, ack=0)
        await ws.recv()
        created = []
        loop = asyncio.get_running_loop()
        original = loop.get_task_factory()

        def factory(loop, coro, **kwargs):
            created.append(coro)
            task = asyncio.Task(coro, loop=loop, **kwargs)
            return task

        loop.set_task_factory(factory)
        try:
            for i in range(1, 20):
                await ws.emit("plain", i, ack=i)
                assert await ws.recv() == f"43{i}[{i}]"
        finally:
            loop.set_task_factory(original)
        server_tasks = [c for c in created if "tornado_sio" in getattr(c, "__qualname__", "") or
                        "_finish_handler" in getattr(c, "__qualname__", "")]
        assert server_tasks == []
