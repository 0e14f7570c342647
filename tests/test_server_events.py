"""Events, acks, handler errors and the per-client ordering guarantee."""

import asyncio
import json
import logging

from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawWebSocket
from tornado_sio import AckTimeout, EncodeError, Namespace, emit, request, send, session


class EventsTest(SocketIOTestCase):
    def setup_handlers(self, sio):
        self.seen = []
        self.errors = []

        @sio.on("echo")
        def echo(*args):
            emit("echo", *args)
            return args

        @sio.on("one")
        def one(x):
            return x

        @sio.on("none")
        def none():
            return None

        @sio.on("message")
        def message(data):
            send(data)

        @sio.on("boom")
        def boom():
            raise RuntimeError("handler failure")

        @sio.on("slow")
        async def slow(n):
            await asyncio.sleep(0.05)
            self.seen.append(("slow", n))

        @sio.on("fast")
        def fast(n):
            self.seen.append(("fast", n))

        @sio.on("ask")
        async def ask(question):
            answer = await sio.call("question", question, to=request.sid, timeout=5)
            return answer

        @sio.on("remember")
        def remember(value):
            session["value"] = value

        @sio.on("recall")
        def recall():
            return session.get("value")

        @sio.on("nan")
        def nan():
            try:
                emit("bad", float("nan"))
            except EncodeError as exc:
                return str(exc)[:20] and "refused"

        @sio.on("*")
        def catch_all(event, *args):
            self.seen.append(("*", event, args))

    async def client(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        return ws

    @gen_test
    async def test_handler_return_value_is_the_ack(self):
        ws = await self.client()
        await ws.emit("one", {"a": 1}, ack=7)
        assert await ws.recv() == '437[{"a":1}]'

    @gen_test
    async def test_tuple_return_becomes_several_ack_arguments(self):
        ws = await self.client()
        await ws.emit("echo", 1, "two", ack=3)
        assert await ws.recv_event() == ["echo", 1, "two"]
        assert await ws.recv() == '433[1,"two"]'

    @gen_test
    async def test_none_return_acks_with_no_arguments(self):
        ws = await self.client()
        await ws.emit("none", ack=1)
        assert await ws.recv() == "431[]"

    @gen_test
    async def test_send_from_client_reaches_message_handler(self):
        ws = await self.client()
        await ws.emit("message", "hi")
        assert await ws.recv_event() == ["message", "hi"]

    @gen_test
    async def test_handler_exception_is_logged_with_event_and_sid_and_connection_lives(self):
        ws = await self.client()
        with self.assertLogs("tornado_sio.server", logging.ERROR) as logs:
            await ws.emit("boom")
            await ws.emit("one", 1, ack=1)
            assert await ws.recv() == "431[1]"
        assert "'boom'" in logs.output[0]

    @gen_test
    async def test_events_of_one_client_are_handled_in_arrival_order(self):
        ws = await self.client()
        await ws.emit("slow", 1)
        await ws.emit("fast", 2)
        await ws.emit("slow", 3)
        await ws.emit("fast", 4)
        await self.until(lambda: len(self.seen) == 4)
        assert self.seen == [("slow", 1), ("fast", 2), ("slow", 3), ("fast", 4)]

    @gen_test
    async def test_call_inside_a_handler_gets_the_clients_ack_without_deadlock(self):
        ws = await self.client()
        await ws.emit("ask", "six times seven?", ack=9)
        frame = await ws.recv()
        assert frame.startswith("42")
        ack_id = frame[2:frame.index("[")]
        assert json.loads(frame[2 + len(ack_id):]) == ["question", "six times seven?"]
        await ws.send(f"43{ack_id}[42]")
        assert await ws.recv() == "439[42]"

    @gen_test
    async def test_session_storage_lives_as_long_as_the_connection(self):
        ws = await self.client()
        await ws.emit("remember", "blue")
        await ws.emit("recall", ack=2)
        assert await ws.recv() == '432["blue"]'

    @gen_test
    async def test_catch_all_receives_unhandled_events(self):
        ws = await self.client()
        await ws.emit("unknown thing", 1)
        await self.until(lambda: self.seen)
        assert self.seen == [("*", "unknown thing", (1,))]

    @gen_test
    async def test_emitting_nan_raises_encode_error_to_the_emitter(self):
        ws = await self.client()
        await ws.emit("nan", ack=4)
        assert await ws.recv() == '434["refused"]'

    @gen_test
    async def test_reserved_event_name_from_client_closes_connection(self):
        ws = await self.client()
        await ws.emit("disconnect")
        assert await ws.closed()

    @gen_test
    async def test_non_string_event_name_closes_connection(self):
        ws = await self.client()
        await ws.send("42[1,2]")
        assert await ws.closed()

    @gen_test
    async def test_event_for_unjoined_namespace_is_ignored(self):
        ws = await self.client()
        await ws.send('42/other,["x"]')
        await ws.emit("one", 5, ack=1)
        assert await ws.recv() == "431[5]"


class ServerCallTest(SocketIOTestCase):
    def setup_handlers(self, sio):
        self.sids = []

        @sio.on("connect")
        def on_connect():
            self.sids.append(request.sid)

    @gen_test
    async def test_call_returns_single_ack_argument(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        task = asyncio.ensure_future(self.socketio.call("q", 1, to=self.sids[0], timeout=5))
        frame = await ws.recv()
        assert frame == '420["q",1]'
        await ws.send('430["a"]')
        assert await task == "a"

    @gen_test
    async def test_call_times_out_with_ack_timeout(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        with self.assertRaises(AckTimeout):
            await self.socketio.call("q", to=self.sids[0], timeout=0.1)

    @gen_test
    async def test_emit_callback_receives_ack_arguments(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        got = []
        self.socketio.emit("q", to=self.sids[0], callback=lambda *a: got.append(a))
        assert await ws.recv() == '420["q"]'
        await ws.send('430[1,2]')
        await self.until(lambda: got)
        assert got == [(1, 2)]


class ErrorHandlerTest(SocketIOTestCase):
    def setup_handlers(self, sio):
        self.caught = []

        @sio.on("fail", namespace="/ns")
        def fail():
            raise ValueError("nope")

        @sio.on_error("/ns")
        def on_ns_error(exc):
            self.caught.append(("ns", type(exc).__name__, request.event))

        @sio.on("fail")
        def fail_default():
            raise KeyError("k")

        @sio.on_error_default
        def on_default(exc):
            self.caught.append(("default", type(exc).__name__))

    @gen_test
    async def test_on_error_gets_namespace_exceptions(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect("/ns")
        await ws.emit("fail", namespace="/ns")
        await self.until(lambda: self.caught)
        assert self.caught == [("ns", "ValueError", {"message": "fail", "args": ()})]

    @gen_test
    async def test_on_error_default_gets_the_rest(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("fail")
        await self.until(lambda: self.caught)
        assert self.caught == [("default", "KeyError")]


class ChatNamespace(Namespace):
    def __init__(self, ns):
        super().__init__(ns)
        self.events = []

    def on_connect(self, auth):
        self.events.append(("connect", auth))

    def on_disconnect(self, reason):
        self.events.append(("disconnect", reason))

    async def on_my_event(self, data):
        emit("my response", data)

    def on_broadcast(self, data):
        self.emit("all", data)


class ClassNamespaceTest(SocketIOTestCase):
    def setup_handlers(self, sio):
        self.ns = ChatNamespace("/chat")
        sio.on_namespace(self.ns)

    @gen_test
    async def test_on_methods_handle_events_with_spaces_mapped_to_underscores(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect("/chat", auth={"k": 1})
        await ws.emit("my event", {"x": 1}, namespace="/chat")
        assert await ws.recv() == '42/chat,["my response",{"x":1}]'
        assert self.ns.events == [("connect", {"k": 1})]

    @gen_test
    async def test_namespace_emit_broadcasts_to_the_namespace(self):
        a = await RawWebSocket.open(self.base_url)
        await a.connect("/chat")
        b = await RawWebSocket.open(self.base_url)
        await b.connect("/chat")
        await a.emit("broadcast", 5, namespace="/chat")
        assert await a.recv_event() == ["all", 5]
        assert await b.recv_event() == ["all", 5]

    @gen_test
    async def test_client_disconnect_runs_on_disconnect_with_reason(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect("/chat")
        await ws.send("41/chat,")
        await self.until(lambda: len(self.ns.events) == 2)
        assert self.ns.events[1] == ("disconnect", "client disconnect")


class OutgoingAttachmentsTest(SocketIOTestCase):
    @gen_test
    async def test_emit_with_more_attachments_than_clients_accept_raises_encode_error(self):
        with self.assertRaises(EncodeError):
            self.socketio.emit("many", [bytes([i]) for i in range(11)])

    @gen_test
    async def test_emit_with_ten_attachments_is_delivered(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        self.socketio.emit("ten", [bytes([i]) for i in range(10)])
        frame = await ws.recv()
        assert frame.startswith("4510-")
        assert [await ws.recv() for _ in range(10)] == [bytes([i]) for i in range(10)]
