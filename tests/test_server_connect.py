"""Connecting to namespaces: auth, refusal, unknown namespaces, greeting order."""

import json

from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawWebSocket
from tornado_sio import ConnectionRefusedError, emit, request


class ConnectTest(SocketIOTestCase):
    def setup_handlers(self, sio):
        self.auths = []

        @sio.on("connect")
        def on_connect(auth):
            self.auths.append(auth)
            if auth == {"token": "bad"}:
                raise ConnectionRefusedError("unauthorized", {"reason": "bad token"})
            if auth == {"token": "false"}:
                return False
            emit("greeting", {"data": "Connected"})

        @sio.on("connect", namespace="/async")
        async def on_async_connect():
            await sio.sleep(0.01)
            emit("hello", request.namespace)

        @sio.on("connect", namespace="/plain")
        def plain_connect():
            pass

    @gen_test
    async def test_connect_handler_receives_auth(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect(auth={"token": "ok"})
        assert self.auths == [{"token": "ok"}]

    @gen_test
    async def test_connect_reply_comes_before_what_the_handler_emits(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect(auth={"token": "ok"})
        assert reply.startswith("40{")
        assert await ws.recv_event() == ["greeting", {"data": "Connected"}]

    @gen_test
    async def test_async_connect_handler_output_follows_connect_reply(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect("/async")
        assert reply.startswith("40/async,{")
        assert await ws.recv_event() == ["hello", "/async"]

    @gen_test
    async def test_refusal_by_exception_sends_connect_error_with_message_and_data(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect(auth={"token": "bad"})
        assert reply[:2] == "44"
        assert json.loads(reply[2:]) == {"message": "unauthorized", "data": {"reason": "bad token"}}
        assert not self.socketio.adapter.by_sid

    @gen_test
    async def test_refusal_by_returning_false_sends_connect_error(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect(auth={"token": "false"})
        assert reply[:2] == "44"
        assert json.loads(reply[2:])["message"] == "Connection rejected by server"

    @gen_test
    async def test_unknown_namespace_gets_invalid_namespace_error(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect("/nowhere")
        assert reply == '44/nowhere,{"message":"Invalid namespace"}'

    @gen_test
    async def test_connect_handler_without_parameters_is_called_without_auth(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect("/plain", auth={"x": 1})
        assert reply.startswith("40/plain,{")

    @gen_test
    async def test_two_namespaces_on_one_connection_get_distinct_sids(self):
        ws = await RawWebSocket.open(self.base_url)
        first = json.loads((await ws.connect(auth={"token": "ok"}))[2:])["sid"]
        await ws.recv_event()
        second = json.loads((await ws.connect("/plain")).split(",", 1)[1])["sid"]
        assert first != second
        assert len(self.socketio.engine.sessions) == 1


class OpenNamespacesTest(SocketIOTestCase):
    socketio_options = {"cors_allowed_origins": "*", "namespaces": "*"}

    @gen_test
    async def test_namespaces_star_accepts_any_namespace(self):
        ws = await RawWebSocket.open(self.base_url)
        assert (await ws.connect("/anything")).startswith("40/anything,")


class ConnectTimeoutTest(SocketIOTestCase):
    socketio_options = {"cors_allowed_origins": "*", "connect_timeout": 0.2}

    @gen_test
    async def test_session_that_never_connects_a_namespace_is_closed(self):
        ws = await RawWebSocket.open(self.base_url)
        assert await ws.closed(timeout=3)

    @gen_test
    async def test_connected_session_outlives_connect_timeout(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        assert not await ws.closed(timeout=0.6)
