"""The observer seam (tornado_sio/observe.py): what a registered Observer is told, and what
an observer that overrides nothing (or fails) costs the server and its clients."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, List, Tuple

import pytest
from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawWebSocket
from tornado_sio import join_room, leave_room
from tornado_sio.observe import Observer, Observers


class Recorder(Observer):
    """Keeps every call, in order, as (hook, details...)."""

    def __init__(self) -> None:
        self.calls: List[Tuple[Any, ...]] = []

    def socket_connected(self, socket: Any) -> None:
        self.calls.append(("connected", socket.namespace, socket.sid, list(socket.rooms)))

    def socket_disconnected(self, socket: Any, reason: str) -> None:
        self.calls.append(("disconnected", socket.namespace, socket.sid, reason))

    def room_joined(self, namespace: str, room: str, sid: str) -> None:
        self.calls.append(("joined", namespace, room, sid))

    def room_left(self, namespace: str, room: str, sid: str) -> None:
        self.calls.append(("left", namespace, room, sid))

    def event_received(self, namespace: str, sid: str, event: str, args: List[Any]) -> None:
        self.calls.append(("received", namespace, sid, event, args))

    def event_sent(self, namespace: str, sid: str, event: str, args: List[Any]) -> None:
        self.calls.append(("sent", namespace, sid, event, args))

    def handler_failed(self, namespace: str, event: str, exc: BaseException) -> None:
        self.calls.append(("failed", namespace, event, type(exc).__name__))

    def handler_slow(self, namespace: str, event: str, seconds: float) -> None:
        self.calls.append(("slow", namespace, event))

    def of(self, hook: str) -> List[Tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == hook]


class OnlyEvents(Observer):
    def __init__(self) -> None:
        self.events: List[str] = []

    def event_received(self, namespace: str, sid: str, event: str, args: List[Any]) -> None:
        self.events.append(event)


class Broken(Observer):
    def event_received(self, namespace: str, sid: str, event: str, args: List[Any]) -> None:
        raise RuntimeError("observer bug")


class ObserveTest(SocketIOTestCase):
    socketio_options = {"cors_allowed_origins": "*", "slow_handler_threshold": 0.05}

    def setup_handlers(self, sio: Any) -> None:
        self.recorder = Recorder()
        sio.observe(self.recorder)

        @sio.on("join")
        def on_join(room: str) -> None:
            join_room(room)

        @sio.on("leave")
        def on_leave(room: str) -> None:
            leave_room(room)

        @sio.on("echo")
        def on_echo(*args: Any) -> Any:
            return args

        @sio.on("fail")
        def on_fail() -> None:
            raise ValueError("handler bug")

        @sio.on("slow")
        async def on_slow() -> None:
            await asyncio.sleep(0.2)

    async def client(self) -> Tuple[RawWebSocket, str]:
        ws = await RawWebSocket.open(self.base_url)
        sid = json.loads((await ws.connect())[2:])["sid"]
        await self.until(lambda: any(c[2] == sid for c in self.recorder.of("connected")))
        return ws, sid

    @gen_test
    async def test_socket_connected_is_told_once_the_socket_is_accepted(self) -> None:
        ws, sid = await self.client()
        assert self.recorder.of("connected") == [("connected", "/", sid, [sid])]
        ws.close()

    @gen_test
    async def test_socket_disconnected_carries_the_reason(self) -> None:
        ws, sid = await self.client()
        ws.close()
        await self.until(lambda: self.recorder.of("disconnected"))
        assert self.recorder.of("disconnected") == [("disconnected", "/", sid, "transport close")]

    @gen_test
    async def test_room_joined_and_left_skip_the_sid_room(self) -> None:
        ws, sid = await self.client()
        await ws.emit("join", "lobby")
        await ws.emit("leave", "lobby")
        await self.until(lambda: self.recorder.of("left"))
        assert self.recorder.of("joined") == [("joined", "/", "lobby", sid)]
        assert self.recorder.of("left") == [("left", "/", "lobby", sid)]
        ws.close()

    @gen_test
    async def test_rooms_are_left_when_the_socket_disconnects(self) -> None:
        ws, sid = await self.client()
        await ws.emit("join", "lobby")
        await self.until(lambda: self.recorder.of("joined"))
        ws.close()
        await self.until(lambda: self.recorder.of("disconnected"))
        assert self.recorder.of("left") == [("left", "/", "lobby", sid)]
        hooks = [call[0] for call in self.recorder.calls]
        assert hooks.index("left") < hooks.index("disconnected")

    @gen_test
    async def test_event_received_carries_the_event_and_its_arguments(self) -> None:
        ws, sid = await self.client()
        await ws.emit("echo", 1, {"a": 2})
        await self.until(lambda: self.recorder.of("received"))
        assert self.recorder.of("received") == [("received", "/", sid, "echo", [1, {"a": 2}])]
        ws.close()

    @gen_test
    async def test_event_sent_is_told_once_per_recipient(self) -> None:
        first, sid1 = await self.client()
        second, sid2 = await self.client()
        self.socketio.emit("news", "hello")
        await first.recv_event()
        await second.recv_event()
        sent = sorted(self.recorder.of("sent"))
        assert sent == sorted([("sent", "/", sid1, "news", ["hello"]), ("sent", "/", sid2, "news", ["hello"])])
        first.close()
        second.close()

    @gen_test
    async def test_handler_failed_names_the_event_and_the_exception(self) -> None:
        ws, _ = await self.client()
        await ws.emit("fail")
        await self.until(lambda: self.recorder.of("failed"))
        assert self.recorder.of("failed") == [("failed", "/", "fail", "ValueError")]
        ws.close()

    @gen_test
    async def test_handler_slow_is_told_past_the_threshold(self) -> None:
        ws, _ = await self.client()
        await ws.emit("slow")
        await self.until(lambda: self.recorder.of("slow"))
        assert self.recorder.of("slow") == [("slow", "/", "slow")]
        ws.close()

    @gen_test
    async def test_a_failing_observer_is_logged_once_and_the_client_is_still_served(self) -> None:
        self.socketio.observe(Broken())
        ws, _ = await self.client()
        logger = logging.getLogger("tornado_sio.server")
        records: List[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        logger.addHandler(handler)
        try:
            await ws.emit("echo", "a", ack=1)
            assert await ws.recv() == '431["a"]'
            await ws.emit("echo", "b", ack=2)
            assert await ws.recv() == '432["b"]'
        finally:
            logger.removeHandler(handler)
        failures = [r for r in records if r.levelno == logging.ERROR and "observer" in r.getMessage()]
        assert len(failures) == 1
        ws.close()

    @gen_test
    async def test_unobserve_stops_the_calls(self) -> None:
        self.socketio.unobserve(self.recorder)
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        await ws.emit("echo", "x", ack=1)
        assert await ws.recv() == '431["x"]'
        assert self.recorder.calls == []
        ws.close()


class RefusingTest(SocketIOTestCase):
    """Namespace /picky refuses everyone; /broken's connect handler raises."""

    def setup_handlers(self, sio: Any) -> None:
        self.recorder = Recorder()
        sio.observe(self.recorder)

        @sio.on("connect", namespace="/picky")
        def picky() -> bool:
            return False

        @sio.on("connect", namespace="/broken")
        def broken() -> None:
            raise KeyError("connect bug")

    @gen_test
    async def test_a_refused_socket_is_never_reported(self) -> None:
        ws = await RawWebSocket.open(self.base_url)
        assert (await ws.connect("/picky")).startswith("44/picky,")
        ws.close()
        await self.until(lambda: not self.socketio.engine.sessions)
        assert self.recorder.of("connected") == [] and self.recorder.of("disconnected") == []

    @gen_test
    async def test_a_failing_connect_handler_is_reported_failed(self) -> None:
        ws = await RawWebSocket.open(self.base_url)
        assert (await ws.connect("/broken")).startswith("44/broken,")
        assert self.recorder.of("failed") == [("failed", "/broken", "connect", "KeyError")]
        ws.close()


def test_only_overridden_hooks_get_a_caller() -> None:
    observers = Observers()
    watcher = OnlyEvents()
    observers.add(watcher)
    assert observers.event_received == [watcher.event_received]
    assert observers.event_sent == [] and observers.socket_connected == [] and observers.room_joined == []


def test_registering_twice_registers_once() -> None:
    observers = Observers()
    watcher = OnlyEvents()
    observers.add(watcher)
    observers.add(watcher)
    assert observers.event_received == [watcher.event_received]


def test_observe_refuses_what_is_not_an_observer() -> None:
    with pytest.raises(TypeError):
        Observers().add(object())  # type: ignore[arg-type]


def test_the_adapter_is_told_of_membership_only_while_someone_watches_rooms() -> None:
    from tornado_sio import SocketIO

    sio = SocketIO()
    assert sio.adapter.membership_listener is None
    sio.observe(OnlyEvents())
    assert sio.adapter.membership_listener is None
    recorder = Recorder()
    sio.observe(recorder)
    assert sio.adapter.membership_listener is not None
    sio.unobserve(recorder)
    assert sio.adapter.membership_listener is None


def test_a_negative_slow_handler_threshold_is_refused() -> None:
    from tornado_sio import Options

    with pytest.raises(ValueError, match="slow_handler_threshold"):
        Options(slow_handler_threshold=-1)
