"""The Redis adapter and its link against a real ``redis-server``, without HTTP:
two (or three) adapters in one process stand for processes of a cluster, and
each holds stand-in sockets (the ``Recipient`` protocol) that record what they get.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any, Callable

import pytest

from tests import support

support.need_python_module("redis")

from tests.apps import async_test
from tests.redis_support import redis_server
from tornado_sio.adapter.base import AckTarget, BroadcastOptions, SocketDetails
from tornado_sio.adapter.redis import RedisAdapter
from tornado_sio.adapter.redis.link import LinkSettings, RedisLink
from tornado_sio.exceptions import AckTimeout, DisconnectedError, MessageQueueError
from tornado_sio.options import Options
from tornado_sio.protocol.outgoing import Prepared, prepare
from tornado_sio.protocol.socketio import Decoder, SIOPacket, SIOType

pytestmark = pytest.mark.timeout(60)
FAST = {"reconnect_delay": 0.05, "reconnect_max_delay": 0.5, "health_interval": 0.5, "connect_timeout": 2.0}


class Sock:
    """A stand-in socket: decodes and records what it is sent, answers acks with *answer*."""

    def __init__(self, adapter: RedisAdapter, sid: str, namespace: str = "/",
                 answer: Callable[..., Any] | None = None) -> None:
        self.adapter = adapter
        self.sid = sid
        self.namespace = namespace
        self.answer = answer
        self.inbox: list[SIOPacket] = []
        self.disconnected: list[bool] = []
        self.acks: dict[int, AckTarget] = {}
        self.next_ack = 0
        self.arrived = asyncio.Event()
        adapter.add_socket(self)

    @property
    def connected(self) -> bool:
        return not self.disconnected

    @property
    def writable(self) -> bool:
        """A sid starting with ``busy`` stands for a transport that cannot write now."""
        return not self.sid.startswith("busy")

    def send(self, prepared: Prepared) -> None:
        decoder = Decoder()
        packet = None
        for item in [prepared.sio_text, *prepared.attachments]:
            packet = decoder.feed(item)
        assert packet is not None
        self.inbox.append(packet)
        self.arrived.set()

    def send_with_ack(self, packet: SIOPacket, target: AckTarget, timeout: float | None) -> int:
        ack_id = self.next_ack
        self.next_ack += 1
        packet.id = ack_id
        self.send(prepare(packet))
        self.acks[ack_id] = target
        if self.answer is not None:
            args = [self.answer(*packet.data[1:])]
            asyncio.get_running_loop().call_soon(self.resolve, ack_id, args)
        return ack_id

    def resolve(self, ack_id: int, args: list) -> None:
        target = self.acks.pop(ack_id)
        if isinstance(target, asyncio.Future):
            if not target.done():
                target.set_result(args)
        else:
            target(args)

    def forget_ack(self, ack_id: int) -> None:
        self.acks.pop(ack_id, None)

    def disconnect(self, close: bool = False) -> None:
        self.disconnected.append(close)
        for target in self.acks.values():
            if isinstance(target, asyncio.Future) and not target.done():
                target.set_exception(DisconnectedError("gone"))
        self.acks.clear()
        self.adapter.delete_all(self.sid)

    def details(self) -> SocketDetails:
        return SocketDetails(self.sid, self.namespace, self.adapter.socket_rooms(self.sid), {}, {})

    def events(self, name: str | None = None) -> list:
        return [p.data for p in self.inbox if p.type == SIOType.EVENT and (name is None or p.data[0] == name)]

    async def expect(self, name: str, count: int = 1) -> list:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(self.events(name)) < count:
            if loop.time() > deadline:
                raise AssertionError(f"{self.sid}: {len(self.events(name))} of {count} {name!r}: {self.inbox}")
            self.arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.2)
        return self.events(name)


def event(name: str, *args: Any, namespace: str = "/") -> SIOPacket:
    return SIOPacket(SIOType.EVENT, namespace, [name, *args])


def sel(namespace: str = "/", rooms: Any = (), skip: Any = (), local: bool = False) -> BroadcastOptions:
    return BroadcastOptions(namespace, frozenset(rooms), frozenset(skip), local=local)


@contextlib.asynccontextmanager
async def cluster(url: str, count: int = 2, **mq: Any) -> AsyncIterator[list[RedisAdapter]]:
    adapters = [RedisAdapter(Options(message_queue=url, message_queue_options={**FAST, **mq}))
                for _ in range(count)]
    try:
        for adapter in adapters:
            await adapter.start()
        yield adapters
    finally:
        for adapter in adapters:
            await adapter.stop()


async def synced(*adapters: RedisAdapter) -> None:
    for adapter in adapters:
        assert await adapter.sync()


async def settle() -> None:
    await asyncio.sleep(0.2)


# ---------------------------------------------------------------- start and the link


@async_test(20)
async def test_start_names_the_url_and_the_reason_when_nothing_listens() -> None:
    port = support.free_port()
    adapter = RedisAdapter(Options(message_queue=f"redis://:s3cret@127.0.0.1:{port}/0",
                                   message_queue_options={"connect_timeout": 1.0}))
    with pytest.raises(MessageQueueError) as info:
        await adapter.start()
    text = str(info.value)
    assert text.startswith(f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0: ") and "s3cret" not in text
    assert len(text.split(": ", 1)[1]) > 5 and not adapter.connected


@async_test(20)
async def test_start_names_the_reason_when_the_server_accepts_but_never_answers() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        link = RedisLink(LinkSettings(url=f"redis://127.0.0.1:{port}/0", connect_timeout=0.5),
                         lambda *message: None)
        with pytest.raises(MessageQueueError) as info:
            await link.start()
    finally:
        listener.close()
    text = str(info.value)
    assert text.startswith(f"cannot reach Redis at redis://127.0.0.1:{port}/0: "), text
    assert not text.endswith(": ") and ("no answer within 0.5s" in text or "Timeout" in text), text


@async_test(20)
async def test_unknown_message_queue_options_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="colour"):
        RedisAdapter(Options(message_queue="redis://127.0.0.1:1/0", message_queue_options={"colour": "red"}))
    with pytest.raises(ValueError, match="node_emitter_key"):
        RedisAdapter(Options(message_queue="redis://127.0.0.1:1/0", message_queue_options={"node_emitter_key": ""}))


@async_test(30)
async def test_link_counts_subscriptions_and_follows_them() -> None:
    with redis_server() as redis:
        got: list = []
        link = RedisLink(LinkSettings(url=redis.url, **FAST), lambda *message: got.append(message))
        link.want(b"x", "k", True)
        await link.start()
        try:
            link.want(b"x", "k", True)
            link.want(b"y", "k", True)
            assert await link.sync()
            assert await link.publish_counted(b"x", b"1") == 1
            link.want(b"x", "k", False)  # still wanted once
            assert await link.sync()
            assert await link.publish_counted(b"x", b"2") == 1
            link.want(b"x", "k", False)
            link.want(b"y", "k", False)
            assert await link.sync()
            assert await link.publish_counted(b"x", b"3") == 0
            assert [m[1:] for m in got] == [(b"x", b"1"), (b"x", b"2")] and got[0][0] == "k"
        finally:
            await link.stop()
        assert not link.connected and not link.tasks


# ---------------------------------------------------------------- routing


@async_test(30)
async def test_broadcasts_reach_each_selected_socket_of_every_process_once() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 3) as (p0, p1, p2):
            a, b, c, d = Sock(p0, "a"), Sock(p1, "b"), Sock(p1, "c"), Sock(p2, "d")
            p1.add_all("b", ["red"])
            p2.add_all("d", ["red", "blue"])
            p1.add_all("c", ["blue"])
            await synced(p0, p1, p2)
            p0.broadcast(event("all", 1, b"\x00"), sel())
            p0.broadcast(event("red", 2), sel(rooms=["red"]))
            p0.broadcast(event("both", 3), sel(rooms=["red", "blue"]))
            p2.broadcast(event("not blue", 4), sel(skip=["blue"]))
            p1.broadcast(event("not b", 5), sel(skip=["b"]))
            for s in (a, b, c, d):
                await s.expect("all")
            await d.expect("both")
            await settle()
            assert [len(s.events("all")) for s in (a, b, c, d)] == [1, 1, 1, 1]
            assert a.events("all") == [["all", 1, b"\x00"]]
            assert [len(s.events("red")) for s in (a, b, c, d)] == [0, 1, 0, 1]
            assert [len(s.events("both")) for s in (a, b, c, d)] == [0, 1, 1, 1]
            assert [len(s.events("not blue")) for s in (a, b, c, d)] == [1, 1, 0, 0]
            assert [len(s.events("not b")) for s in (a, b, c, d)] == [1, 0, 1, 1]


@async_test(30)
async def test_local_options_and_one_local_sid_never_publish() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 2) as (p0, p1):
            a, b = Sock(p0, "a"), Sock(p1, "b")
            p0.add_all("a", ["shared"])
            p1.add_all("b", ["shared"])
            await synced(p0, p1)
            p0.broadcast(event("local", 1), sel(rooms=["shared"], local=True))
            p0.broadcast(event("own sid", 2), sel(rooms=["a"]))
            p0.add_sockets(sel(local=True), ["local-room"])
            p0.broadcast(event("marker"), sel())
            await b.expect("marker")
            await settle()
            assert a.events("local") and a.events("own sid") and "local-room" in p0.socket_rooms("a")
            assert b.events("local") == b.events("own sid") == [] and "local-room" not in p1.socket_rooms("b")


@async_test(30)
async def test_call_and_broadcast_acks_cross_processes() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 2) as (p0, p1):
            Sock(p0, "a", answer=lambda x: -x)
            Sock(p1, "b", answer=lambda x: x * 2)
            Sock(p1, "c", answer=lambda x: x * 3)
            Sock(p1, "mute")
            p1.add_all("b", ["acks"])
            p1.add_all("c", ["acks"])
            await synced(p0, p1)
            assert await p0.call(event("double", 21), "b", 5) == [42]
            with pytest.raises(DisconnectedError, match="in any process"):
                await p0.call(event("double", 1), "nobody", 5)
            with pytest.raises(AckTimeout):
                await p0.call(event("double", 1), "mute", 0.3)
            answers: list = []
            p0.broadcast_with_ack(event("double", 10), sel(rooms=["acks", "a"]),
                                  lambda sid, args: answers.append((sid, args)), 5)
            for _ in range(100):
                if len(answers) == 3:
                    break
                await asyncio.sleep(0.02)
            assert sorted(answers) == [("a", [-10]), ("b", [20]), ("c", [30])]


@async_test(30)
async def test_a_remote_client_leaving_fails_the_call_at_once() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 2) as (p0, p1):
            leaver = Sock(p1, "leaver")
            await synced(p0, p1)
            call = asyncio.ensure_future(p0.call(event("q"), "leaver", 10))
            await leaver.expect("q")
            leaver.disconnect()
            with pytest.raises(DisconnectedError):
                await asyncio.wait_for(call, 5)


@async_test(30)
async def test_socket_operations_of_any_shape_reach_every_process() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 2) as (p0, p1):
            a, b, c = Sock(p0, "a"), Sock(p1, "b"), Sock(p1, "c")
            p1.add_all("c", ["staff"])
            await synced(p0, p1)
            p0.add_sockets(sel(skip=["staff"]), ["everyone but staff"])   # a new shape
            p0.add_sockets(sel(rooms=["b"]), ["vip"])                     # enter_room(b)
            p0.broadcast(event("marker"), sel())
            await c.expect("marker")
            assert p1.socket_rooms("b") == ["b", "everyone but staff", "vip"]
            assert p1.socket_rooms("c") == ["c", "staff"] and "everyone but staff" in p0.socket_rooms("a")
            p0.del_sockets(sel(rooms=["everyone but staff"]), ["everyone but staff"])  # close_room
            p0.del_sockets(sel(rooms=["b"]), ["vip"])                                  # leave_room(b)
            p0.disconnect_sockets(sel(rooms=["staff"]), close=True)                    # a new shape
            p0.disconnect_sockets(sel(rooms=["b"]))                                    # disconnect(b)
            for _ in range(100):
                if b.disconnected and c.disconnected:
                    break
                await asyncio.sleep(0.02)
            assert b.disconnected == [False] and c.disconnected == [True] and not a.disconnected
            assert p0.socket_rooms("a") == ["a"]


@async_test(30)
async def test_python_socketio_format_refuses_what_it_cannot_express_before_acting() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 1, format="python-socketio") as (p0,):
            Sock(p0, "a")
            with pytest.raises(NotImplementedError, match="python-socketio"):
                p0.add_sockets(sel(), ["everyone"])
            assert p0.socket_rooms("a") == ["a"]
            p0.add_sockets(sel(rooms=["a"]), ["vip"])  # one sid: fine
            assert p0.socket_rooms("a") == ["a", "vip"]


@async_test(30)
async def test_only_events_travel_across_processes() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 1) as (p0,):
            Sock(p0, "a")
            assert [s.sid for s in await p0.fetch_sockets(sel(local=True))] == ["a"]
            with pytest.raises(ValueError, match="only events"):
                p0.broadcast(SIOPacket(SIOType.DISCONNECT, "/"), sel())


@async_test(30)
async def test_publishing_before_start_starts_the_adapter(caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="tornado_sio.redis")
    with redis_server() as redis:
        async with cluster(redis.url, 1) as (p0,):
            a = Sock(p0, "a")
            await synced(p0)
            late = RedisAdapter(Options(message_queue=redis.url, write_only=True))
            try:
                late.broadcast(event("early", 1), sel(rooms=["a"]))
                await a.expect("early")
                await late.start()  # joins the start already under way
                assert late.connected and "starting the adapter now" in caplog.text
            finally:
                await late.stop()
