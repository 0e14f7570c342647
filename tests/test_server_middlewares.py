"""Connection middlewares (Node's ``io.use``) and packet middlewares (Node's ``socket.use``)."""

import asyncio
import json

from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawWebSocket
from tornado_sio import ConnectionRefusedError, PacketRejected, request


class ConnectionMiddlewareTest(SocketIOTestCase):
    socketio_options = {"cors_allowed_origins": "*", "connect_timeout": 0.5}

    def setup_handlers(self, sio):
        self.calls = []

        @sio.use
        def first(sid, auth, req):
            self.calls.append(("first", auth, req.remote_ip is not None))
            if auth == {"token": "bad"}:
                raise ConnectionRefusedError("unauthorized", {"retry": False})
            if auth == {"token": "false"}:
                return False

        async def second(sid, auth, req):
            await asyncio.sleep(0.01)
            self.calls.append(("second", request.sid == sid))
            if auth == {"token": "late"}:
                raise ConnectionRefusedError("too late")

        sio.use(second)

        @sio.on("connect")
        def connect():
            self.calls.append(("connect",))

        async def never(sid, auth, req):
            await asyncio.Event().wait()

        sio.use(never, namespace="/stuck")

        def boom(sid, auth, req):
            raise KeyError("secret internals")

        sio.use(boom, namespace="/boom")
        sio.on("connect", namespace="/stuck")(lambda: None)
        sio.on("connect", namespace="/boom")(lambda: None)

    @gen_test
    async def test_middlewares_run_in_registration_order_before_connect(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect(auth={"token": "ok"})
        assert reply.startswith("40{")
        assert self.calls == [("first", {"token": "ok"}, True), ("second", True), ("connect",)]

    @gen_test
    async def test_refusal_sends_connect_error_with_message_and_data(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect(auth={"token": "bad"})
        assert reply[:2] == "44" and json.loads(reply[2:]) == {"message": "unauthorized", "data": {"retry": False}}
        assert self.calls == [("first", {"token": "bad"}, True)]
        assert not self.socketio.adapter.by_sid

    @gen_test
    async def test_returning_false_refuses_with_the_default_message(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect(auth={"token": "false"})
        assert json.loads(reply[2:]) == {"message": "Connection rejected by server"}

    @gen_test
    async def test_async_middleware_refusal_skips_the_connect_handler(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect(auth={"token": "late"})
        assert json.loads(reply[2:]) == {"message": "too late"}
        assert ("connect",) not in self.calls

    @gen_test
    async def test_middleware_that_never_returns_is_refused_after_connect_timeout(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect("/stuck")
        assert reply.startswith("44/stuck,") and json.loads(reply.split(",", 1)[1])["message"] == "middleware timeout"

    @gen_test
    async def test_middleware_that_raises_refuses_without_leaking_the_exception(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect("/boom")
        assert reply == '44/boom,{"message":"Connection rejected by server"}'


class PacketMiddlewareTest(SocketIOTestCase):
    def setup_handlers(self, sio):
        self.seen = []
        self.errors = []

        def packets(sid, event, args):
            if event == "drop":
                return False
            if event == "secret":
                raise PacketRejected("unauthorized event", {"event": event})
            if event == "double":
                return [a * 2 for a in args]
            return None

        sio.use_packet(packets)

        async def slow_packets(sid, event, args):
            await asyncio.sleep(0.01)
            return [*args, "checked"]

        sio.use_packet(slow_packets, namespace="/slow")

        @sio.on_error()
        def on_error(exc):
            self.errors.append(exc.message)

        @sio.on("*")
        def anything(event, *args):
            self.seen.append((event, args))
            return "ok"

        @sio.on("*", namespace="/slow")
        def slow_anything(event, *args):
            self.seen.append((event, args))
            return list(args)

    @gen_test
    async def test_middleware_may_change_the_arguments(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("double", 2, 5)
        await self.until(lambda: self.seen)
        assert self.seen == [("double", (4, 10))]

    @gen_test
    async def test_dropped_packet_reaches_no_handler(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("drop", 1)
        await ws.emit("keep", 2)
        await self.until(lambda: self.seen)
        assert self.seen == [("keep", (2,))]

    @gen_test
    async def test_rejection_answers_the_ack_and_tells_the_error_handler(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("secret", 1, ack=7)
        frame = await ws.recv()
        assert frame == '437[{"message":"unauthorized event","data":{"event":"secret"}}]'
        assert self.errors == ["unauthorized event"] and self.seen == []

    @gen_test
    async def test_rejection_without_ack_is_an_error_event(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("secret")
        assert await ws.recv_event() == ["error", {"message": "unauthorized event", "data": {"event": "secret"}}]

    @gen_test
    async def test_async_middleware_keeps_arrival_order_and_the_ack(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect("/slow")
        for n in range(5):
            await ws.emit("n", n, namespace="/slow", ack=n)
        answers = [await ws.recv() for _ in range(5)]
        assert answers == [f'43/slow,{n}[[{n},"checked"]]' for n in range(5)]
        assert [args[0] for _, args in self.seen] == list(range(5))
