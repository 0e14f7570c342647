"""Node's cluster operations over Redis, without HTTP: heartbeats and ``server_count``,
broadcast acks counted per process, ``fetch_sockets``, ``server_side_emit``, and
what a forged or malformed cluster message does (nothing, one log line).

Two or three adapters in one process stand for the processes of a cluster, each
holding stand-in sockets (``tests/test_redis_adapter.Sock``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from tests import support

support.need_python_module("redis")

from tests.apps import async_test
from tests.redis_support import redis_server
from tests.test_redis_adapter import Sock, cluster, event, sel, settle, synced
from tornado_sio.adapter.base import BroadcastOptions, SocketDetails
from tornado_sio.adapter.redis import RedisAdapter
from tornado_sio.adapter.redis.wire import NativeCodec, dump
from tornado_sio.exceptions import AckTimeout
from tornado_sio.options import Options

pytestmark = pytest.mark.timeout(60)
QUICK = {"heartbeat_interval": 0.2, "heartbeat_timeout": 0.6, "requests_timeout": 1.0}


async def until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)


async def known(adapters: list[RedisAdapter], count: int) -> None:
    """Wait until every adapter counts *count* servers."""
    async def counts() -> list[int]:
        return [await adapter.server_count() for adapter in adapters]

    deadline = time.monotonic() + 10
    while await counts() != [count] * len(adapters):
        if time.monotonic() > deadline:
            raise AssertionError(f"server counts {await counts()}, expected {count}")
        await asyncio.sleep(0.02)


def codec(adapter: RedisAdapter) -> NativeCodec:
    assert isinstance(adapter.codec, NativeCodec)
    return adapter.codec


def raw(adapter: RedisAdapter, channel: bytes, message: dict[str, Any]) -> None:
    """Publish a hand-made native message through *adapter*'s link."""
    adapter.link.publish(channel, dump({"v": 1, "ch": adapter.channel, **message}))


# ---------------------------------------------------------------- heartbeats


@async_test(40)
async def test_server_count_follows_heartbeats_and_a_closing_process() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 3, **QUICK) as (p0, p1, p2):
            await known([p0, p1, p2], 3)
            await p2.stop()
            await known([p0, p1], 2)


@async_test(40)
async def test_a_silent_process_is_forgotten_after_the_heartbeat_timeout() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 2, **QUICK) as (p0, p1):
            await known([p0, p1], 2)
            assert p1.cluster.beat is not None
            p1.cluster.silence()  # as if SIGSTOPped: no more heartbeats, no goodbye
            await known([p0], 1)


@async_test(30)
async def test_a_write_only_process_counts_the_others_but_is_not_counted() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 2, **QUICK) as (p0, p1):
            writer = RedisAdapter(Options(message_queue=redis.url, write_only=True, message_queue_options=QUICK))
            await writer.start()
            try:
                await known([writer], 3)  # itself and the two others
                await asyncio.sleep(0.5)  # a few heartbeats: still only the two that answer requests
                assert [await p0.server_count(), await p1.server_count()] == [2, 2]
            finally:
                await writer.stop()


# ---------------------------------------------------------------- broadcast acks


@async_test(40)
async def test_broadcast_acks_come_with_one_count_per_process() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 3, **QUICK) as (p0, p1, p2):
            Sock(p0, "a", answer=lambda x: -x)
            Sock(p1, "b", answer=lambda x: x * 2)
            Sock(p1, "c", answer=lambda x: x * 3)
            Sock(p1, "mute")
            Sock(p2, "elsewhere", answer=lambda x: x)
            for sid in ("b", "c", "mute"):
                p1.add_all(sid, ["acks"])
            await synced(p0, p1, p2)
            await known([p0, p1, p2], 3)
            answers: list = []
            counts: list = []
            p0.broadcast_with_ack(event("double", 10), sel(rooms=["acks", "a"]),
                                  lambda sid, args: answers.append((sid, args)), 5, counts.append)
            await until(lambda: len(counts) == 3 and len(answers) == 3, "three counts and three answers")
            await settle()
            assert counts[0] == 1 and sorted(counts) == [0, 1, 3]  # p0 first: its own, at once
            assert sorted(answers) == [("a", [-10]), ("b", [20]), ("c", [30])]


@async_test(30)
async def test_a_local_broadcast_with_acks_counts_this_process_only() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 3, **QUICK) as (p0, p1, p2):
            Sock(p0, "a", answer=lambda: "here")
            Sock(p1, "b", answer=lambda: "there")
            await synced(p0, p1, p2)
            await known([p0, p1, p2], 3)
            answers: list = []
            counts: list = []
            p0.broadcast_with_ack(event("who"), sel(local=True), lambda sid, args: answers.append(sid), 5,
                                  counts.append)
            await until(lambda: answers, "the local answer")
            await settle()
            assert counts == [1] and answers == ["a"]
            counts.clear()
            p0.broadcast_with_ack(event("who"), sel(rooms=["a"]), lambda sid, args: answers.append(sid), 5,
                                  counts.append)  # one sid of this process: not published
            assert counts == [1, 0, 0]


# ---------------------------------------------------------------- fetch_sockets


@async_test(40)
async def test_fetch_sockets_lists_every_selected_socket_of_every_process_once() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 3, **QUICK) as (p0, p1, p2):
            a, b, c = Sock(p0, "a"), Sock(p1, "b"), Sock(p2, "c")
            Sock(p2, "other-ns", namespace="/chat")
            p1.add_all("b", ["red"])
            p2.add_all("c", ["red", "staff"])
            await known([p0, p1, p2], 3)
            everyone = await p0.fetch_sockets(sel())
            assert sorted(s.sid for s in everyone) == ["a", "b", "c"]
            red = {s.sid: s for s in await p0.fetch_sockets(sel(rooms=["red"], skip=["staff"]))}
            assert list(red) == ["b"] and red["b"].rooms == ["b", "red"] and red["b"].namespace == "/"
            assert [s.sid for s in await p1.fetch_sockets(sel("/chat"))] == ["other-ns"]
            assert [s.sid for s in await p0.fetch_sockets(sel(local=True))] == ["a"]
            assert not p0.cluster.requests and not p1.cluster.requests
            del a, b, c


@async_test(40)
async def test_fetch_sockets_reports_data_and_handshake_of_remote_sockets() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 2, **QUICK) as (p0, p1):
            remote = Sock(p1, "r")
            remote.details = lambda: SocketDetails(  # type: ignore[method-assign]
                "r", "/", ["r", "room"], {"user": "ann", "n": [1, 2]}, {"address": "10.0.0.1", "query": {"t": "1"}})
            await known([p0, p1], 2)
            (found,) = await p0.fetch_sockets(sel())
            assert (found.sid, found.rooms, found.data, found.handshake) == (
                "r", ["r", "room"], {"user": "ann", "n": [1, 2]}, {"address": "10.0.0.1", "query": {"t": "1"}})


@async_test(40)
async def test_fetch_sockets_times_out_when_a_counted_process_never_answers(caplog: Any) -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 2, **QUICK) as (p0, p1):
            Sock(p1, "b")
            await known([p0, p1], 2)
            raw(p1, codec(p1).request_channel(), {"src": "ghost", "op": "heartbeat", "init": False})  # forged peer
            await known([p0], 3)
            with pytest.raises(AckTimeout, match="1 of 2 servers answered"):
                await p0.fetch_sockets(sel())
            assert not p0.cluster.requests


# ---------------------------------------------------------------- server_side_emit


@async_test(40)
async def test_server_side_emit_reaches_every_other_process_once() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 3, **QUICK) as (p0, p1, p2):
            got: dict[int, list] = {0: [], 1: [], 2: []}
            for i, p in enumerate((p0, p1, p2)):
                p.on_server_event(lambda ns, data, reply, i=i: got[i].append((ns, data, reply)))
            await known([p0, p1, p2], 3)
            p0.server_side_emit("/chat", ["hello", 1, b"\x01\x02"])
            await until(lambda: got[1] and got[2], "both other processes")
            await settle()
            assert got[0] == []
            assert got[1] == got[2] == [("/chat", ["hello", 1, b"\x01\x02"], None)]


@async_test(40)
async def test_server_side_emit_with_replies_gets_each_other_process_answer() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 3, **QUICK) as (p0, p1, p2):
            def answer(name: str) -> Any:
                def handler(ns: str, data: list, reply: Any) -> None:
                    reply([name, data[1] + 1])
                    reply(["twice"])  # a second answer is not sent
                return handler

            p1.on_server_event(answer("p1"))
            p2.on_server_event(answer("p2"))
            await known([p0, p1, p2], 3)
            replies: list = []
            p0.server_side_emit("/", ["ping", 41], replies.append)
            await until(lambda: len(replies) == 2, "two replies")
            await settle()
            assert sorted(replies) == [["p1", 42], ["p2", 42]]


@async_test(30)
async def test_python_socketio_format_refuses_cluster_requests() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 1, format="python-socketio") as (p0,):
            Sock(p0, "a")
            assert await p0.server_count() == 1
            with pytest.raises(NotImplementedError, match="native"):
                await p0.fetch_sockets(sel())
            with pytest.raises(NotImplementedError, match="native"):
                p0.server_side_emit("/", ["hello"])
            with pytest.raises(NotImplementedError, match="native"):
                p0.broadcast_with_ack(event("x"), sel(), lambda sid, args: None, 1, lambda n: None)
            with pytest.raises(RuntimeError, match="Redis Streams"):
                p0.persist_session({"pid": "p", "sid": "a", "namespace": "/", "rooms": [], "data": {}})


# ---------------------------------------------------------------- hostile and malformed input


@async_test(40)
async def test_malformed_cluster_messages_are_ignored_with_one_log_line(caplog: Any) -> None:
    caplog.set_level(logging.DEBUG, logger="tornado_sio.redis")
    with redis_server() as redis:
        async with cluster(redis.url, 2, **QUICK) as (p0, p1):
            Sock(p1, "b")
            await known([p0, p1], 2)
            request_channel = codec(p0).request_channel()
            p0_channel = codec(p0).process_channel(p0.uid)
            raw(p1, request_channel, {"src": "x", "op": "fetch", "ns": "/", "rid": "one"})
            raw(p1, request_channel, {"src": "x", "op": "sse", "ns": "/", "data": "not a list"})
            raw(p1, p0_channel, {"src": "x", "op": "sockets", "rid": 1, "sockets": "nope"})
            raw(p1, p0_channel, {"src": "x", "op": "sockets", "rid": 1, "sockets": [{"sid": 5}]})
            raw(p1, p0_channel, {"src": "x", "op": "count", "rid": 1, "n": -3})
            raw(p1, p0_channel, {"src": "x", "op": "count", "rid": 999, "n": 3})  # well-formed, unknown id
            raw(p1, p0_channel, {"src": "x", "op": "sse_reply", "rid": 999, "args": []})
            assert await p1.flush()
            # one line per message and process: both read the request channel, only p0 its own
            await until(lambda: caplog.text.count("ignored a message") >= 2 * 2 + 3, "seven warnings")
            await settle()
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 2 * 2 + 3, [r.getMessage() for r in warnings]
            assert "matches nothing pending" in caplog.text
            assert [s.sid for s in await p0.fetch_sockets(sel())] == ["b"]  # and everything still works


@async_test(40)
async def test_forged_and_repeated_answers_count_once_per_process() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 2, **QUICK) as (p0, p1):
            await known([p0, p1], 2)
            replies: list = []
            p0.server_side_emit("/", ["ping"], replies.append)
            rid = 1  # the first request of this process
            p0_channel = codec(p0).process_channel(p0.uid)
            for _ in range(3):
                raw(p1, p0_channel, {"src": "forger", "op": "sse_reply", "rid": rid, "args": ["forged"]})
            await until(lambda: replies, "the forged reply")
            await settle()
            assert replies == [["forged"]]


@async_test(30)
async def test_stop_is_prompt_after_the_rooms_were_unsubscribed() -> None:
    with redis_server() as redis:
        adapter = RedisAdapter(Options(message_queue=redis.url))
        await adapter.start()
        Sock(adapter, "x")
        adapter.add_all("x", ["room"])
        assert await adapter.sync()
        adapter.delete_all("x")
        started = time.monotonic()
        await adapter.stop()
        assert time.monotonic() - started < 3, "stop() waited for the subscriber's health check"
        assert not adapter.link.tasks


@async_test(30)
async def test_stop_is_prompt_after_a_test_client_left() -> None:
    from tornado_sio import SocketIO

    with redis_server() as redis:
        socketio = SocketIO(message_queue=redis.url)
        await socketio.adapter.start()
        client = socketio.test_client()
        await client.settle()
        assert client.is_connected() and await socketio.adapter.sync()
        client.disconnect()
        await client.settle()
        started = time.monotonic()
        await socketio.adapter.stop()
        assert time.monotonic() - started < 3


@async_test(30)
async def test_a_volatile_broadcast_skips_busy_transports_on_every_process() -> None:
    with redis_server() as redis:
        async with cluster(redis.url, 2, **QUICK) as (p0, p1):
            here, there, busy = Sock(p0, "here"), Sock(p1, "there"), Sock(p1, "busy-1")
            await synced(p0, p1)
            p0.broadcast(event("v"), BroadcastOptions("/", volatile=True))
            p0.broadcast(event("marker"), sel())
            await busy.expect("marker")
            assert here.events("v") == there.events("v") == [["v"]] and busy.events("v") == []
