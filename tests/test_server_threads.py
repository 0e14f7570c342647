"""Where handlers run, and Flask-SocketIO's blocking helpers: ``sleep()``, ``call()``, ``handler_threads``.

Plain handlers run on the IOLoop by default (Tornado's model) and, with
``handler_threads=N``, in a pool of threads, where ``time.sleep``,
``socketio.sleep()`` and ``socketio.call()`` block as in Flask-SocketIO's
threading mode. Waits here are bounded and ordered by events, never by timing,
except where the duration itself is the behaviour.
"""

import asyncio
import json
import logging
import threading
import time

import pytest
from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawWebSocket
from tornado_sio import AckTimeout, SocketIO, call, emit, join_room, request, rooms

WAIT = 5.0

# -- sleep() ----------------------------------------------------------------------------


def test_sleep_blocks_in_a_thread_as_flask_socketios_threading_mode():
    sio = SocketIO()
    took = []

    def worker():
        started = time.monotonic()
        sio.sleep(0.2)
        took.append(time.monotonic() - started)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(WAIT)
    assert took and took[0] >= 0.2


def test_sleep_is_awaitable_on_the_loop():
    sio = SocketIO()

    async def main():
        started = time.monotonic()
        await sio.sleep(0.1)
        return time.monotonic() - started

    assert asyncio.run(main()) >= 0.1


def test_sleep_on_the_loop_without_await_warns_once(caplog, monkeypatch):
    sio = SocketIO()

    async def main():
        sio.sleep(0.01)  # not awaited: it cannot sleep (the object is freed here, and says so)
        sio.sleep(0.01)

    from tornado_sio import tasks

    monkeypatch.setattr(tasks, "_warned", set())  # start from "not warned yet"
    with caplog.at_level(logging.DEBUG, "tornado_sio"):
        asyncio.run(main())
    warnings = [r for r in caplog.records if "never awaited" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.DEBUG]


def test_sleep_in_a_plain_handler_on_the_loop_returns_at_once_and_says_why(caplog):
    sio = SocketIO()

    @sio.on("nap")
    def nap():
        started = time.monotonic()
        sio.sleep(5)
        return time.monotonic() - started

    with caplog.at_level(logging.DEBUG, "tornado_sio"):
        took = sio.test_client().emit("nap", callback=True)
    assert took < 1
    assert "handler_threads" in caplog.text


def test_a_plain_background_loop_with_sleep_ticks_at_its_pace_instead_of_spinning():
    sio = SocketIO()
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            sio.sleep(0.05)
            sio.emit("tick")

    client = sio.test_client()
    thread = sio.start_background_task(ticker)
    sio.sleep(0.3)  # the test client's loop runs meanwhile
    stop.set()
    thread.join(WAIT)
    sio.sleep(0.01)
    ticks = len(client.get_received())
    assert 2 <= ticks <= 8


def test_start_background_task_runs_a_plain_function_in_a_thread_with_join():
    sio = SocketIO()
    where = []
    thread = sio.start_background_task(lambda x: where.append((x, threading.current_thread().name)), 1)
    thread.join(WAIT)
    assert where and where[0][0] == 1 and where[0][1] != threading.current_thread().name


def test_start_background_task_runs_an_async_function_as_a_task_without_the_handlers_client():
    sio = SocketIO()
    seen = []

    async def background():
        from tornado_sio.context import current

        seen.append(current())

    @sio.on("start")
    def start():
        sio.start_background_task(background)

    sio.test_client().emit("start")
    sio.sleep(0.01)
    assert seen == [None]


# -- call() ---------------------------------------------------------------------------------


def test_ack_timeout_is_a_builtin_timeout_error():
    assert issubclass(AckTimeout, TimeoutError)
    assert issubclass(AckTimeout, asyncio.TimeoutError)


def test_call_in_a_plain_handler_on_the_loop_raises_a_runtime_error_naming_the_fixes():
    sio = SocketIO()

    @sio.on("ask")
    def ask():
        return call("question")

    @sio.on_error_default
    def on_error(exc):
        return [type(exc).__name__, str(exc)]

    kind, message = sio.test_client().emit("ask", callback=True)
    assert kind == "RuntimeError"
    assert "await socketio.call" in message and "handler_threads" in message


class CallTest(SocketIOTestCase):
    socketio_options = {"cors_allowed_origins": "*", "handler_threads": 2}

    def setup_handlers(self, sio):
        self.results = []

        @sio.on("ask in a thread")
        def ask(question):
            return call("question", question, timeout=WAIT)

        @sio.on("ask with timeout")
        def ask_timeout():
            try:
                call("question", timeout=0.1)
            except TimeoutError as exc:
                return type(exc).__name__

        @sio.on("connect")
        def on_connect():
            self.results.append(request.sid)

    async def answer_question(self, ws, answer):
        frame = await ws.recv()
        assert frame.startswith("42")
        ack_id = frame[2:frame.index("[")]
        await ws.send(f"43{ack_id}{json.dumps([answer])}")
        return json.loads(frame[2 + len(ack_id):])

    @gen_test
    async def test_call_in_a_plain_handler_under_handler_threads_blocks_until_the_ack(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("ask in a thread", "six times seven?", ack=1)
        assert await self.answer_question(ws, 42) == ["question", "six times seven?"]
        assert await ws.recv() == "431[42]"

    @gen_test
    async def test_call_timeout_raises_a_builtin_timeout_error_in_a_thread(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("ask with timeout", ack=2)
        assert (await ws.recv()).startswith("42")  # the question, left unanswered
        assert await ws.recv() == '432["AckTimeout"]'

    @gen_test
    async def test_call_from_a_plain_background_thread_blocks_until_the_ack(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        sid = self.results[0]
        answer = asyncio.get_running_loop().run_in_executor(
            None, lambda: self.socketio.call("question", "from a thread", to=sid, timeout=WAIT))
        assert await self.answer_question(ws, "yes") == ["question", "from a thread"]
        assert await answer == "yes"

    @gen_test
    async def test_call_stays_awaitable_on_the_loop(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        asking = asyncio.ensure_future(self.socketio.call("question", "awaited", to=self.results[0], timeout=WAIT))
        assert await self.answer_question(ws, "ok") == ["question", "awaited"]
        assert await asking == "ok"


# -- handler_threads ------------------------------------------------------------------------


class HandlerThreadsTest(SocketIOTestCase):
    socketio_options = {"cors_allowed_origins": "*", "handler_threads": 4}

    def setup_handlers(self, sio):
        self.release = threading.Event()
        self.order = []

        @sio.on("where")
        def where():
            return threading.current_thread().name

        @sio.on("hold")
        def hold():
            self.release.wait(WAIT)  # blocks its thread until the test releases it
            return "released"

        @sio.on("echo")
        def echo(data):
            return data

        @sio.on("step")
        def step(n, delay):
            time.sleep(delay)
            self.order.append(n)

        @sio.on("join")
        def join(room):
            join_room(room)
            emit("joined", rooms())

    @gen_test
    async def test_plain_handlers_run_in_the_pool(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("where", ack=1)
        assert (await ws.recv()).startswith('431["tornado-sio-handler')

    @gen_test
    async def test_a_blocked_handler_does_not_delay_other_clients_as_in_flask_socketio(self):
        blocked, other = await RawWebSocket.open(self.base_url), await RawWebSocket.open(self.base_url)
        await blocked.connect()
        await other.connect()
        await blocked.emit("hold", ack=1)
        await other.emit("echo", "still served", ack=2)
        assert await other.recv() == '432["still served"]'  # while "hold" still blocks its thread
        self.release.set()
        assert await blocked.recv() == '431["released"]'

    @gen_test
    async def test_one_clients_events_still_run_one_at_a_time_in_order(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("step", 1, 0.1)
        await ws.emit("step", 2, 0)
        await ws.emit("step", 3, 0.05)
        await ws.emit("echo", "done", ack=9)
        assert await ws.recv() == '439["done"]'
        assert self.order == [1, 2, 3]

    @gen_test
    async def test_context_helpers_work_in_a_handler_thread(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = await ws.connect()
        sid = json.loads(reply[2:])["sid"]
        await ws.emit("join", "lobby")
        assert await ws.recv_event() == ["joined", [sid, "lobby"]]


def test_plain_handlers_run_on_the_loop_thread_by_default():
    sio = SocketIO()

    @sio.on("where")
    def where():
        return threading.current_thread().name

    assert sio.test_client().emit("where", callback=True) == threading.current_thread().name


def test_handler_threads_must_not_be_negative():
    with pytest.raises(ValueError, match="handler_threads"):
        SocketIO(handler_threads=-1)


# -- the slow-handler warning ----------------------------------------------------------------


def test_a_plain_handler_holding_the_loop_logs_a_warning_naming_the_event(caplog):
    sio = SocketIO(slow_handler_warning=0.05)

    @sio.on("crunch numbers")
    def crunch():
        time.sleep(0.1)

    with caplog.at_level(logging.WARNING, "tornado_sio.server"):
        sio.test_client().emit("crunch numbers")
    assert "'crunch numbers' held the IOLoop" in caplog.text


def test_the_slow_handler_warning_defaults_to_100_ms():
    assert SocketIO().options.slow_handler_warning == 0.1


def test_slow_handler_warning_none_turns_it_off(caplog):
    sio = SocketIO(slow_handler_warning=None)

    @sio.on("crunch")
    def crunch():
        time.sleep(0.12)

    with caplog.at_level(logging.DEBUG, "tornado_sio.server"):
        sio.test_client().emit("crunch")
    assert "held the IOLoop" not in caplog.text
