"""tornado-sio and python-socketio on one Redis, in python-socketio's pub/sub format.

A tornado-sio process started with ``format='python-socketio'`` (channel
``'socketio'``) and a real python-socketio ``AsyncServer`` with its own
``AsyncRedisManager`` deliver to each other's clients, and python-socketio's
write-only manager (what a Celery worker uses) reaches tornado-sio clients.
"""

from __future__ import annotations

import asyncio

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")
support.need_python_module("aiohttp")

import socketio

from tests.apps import async_test
from tests.redis_support import AppProcess, close_all, connect_all, redis_server, running, settle

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def mixed():
    """(redis, tornado-sio process in python-socketio format, python-socketio server)."""
    with redis_server() as redis, running([AppProcess(redis.url, "--format", "python-socketio").spawn(),
                                           AppProcess(redis.url, "--impl", "python-socketio").spawn()]) as (
            tornado, psio):
        yield redis, tornado, psio


@async_test(40)
async def test_python_socketio_write_only_manager_reaches_tornado_clients(mixed):
    redis, tornado, psio = mixed
    t1, t2, p1 = await connect_all([(tornado, ["/", "/test"]), (tornado, ["/test"]), (psio, ["/test"])])
    try:
        assert await t1.ask("join", "workers", namespace="/test") == "joined"
        assert await p1.ask("join", "workers", namespace="/test") == "joined"
        manager = socketio.AsyncRedisManager(redis.url, write_only=True)
        try:
            await manager.emit("job done", {"id": 7}, room="workers", namespace="/test")
            await manager.emit("to all", (1, "two"), namespace="/test", skip_sid=t2.sid["/test"])
            await manager.emit("tornado only", "x", room=t2.sid["/test"], namespace="/test")
            await manager.emit("binary", b"\x00\xff", namespace="/")
        finally:
            if manager.redis is not None:
                await manager.redis.aclose()

        def celery_worker() -> None:  # python-socketio's synchronous manager, as Flask-SocketIO uses it
            sync_manager = socketio.RedisManager(redis.url, write_only=True)
            sync_manager.emit("from sync", [1, 2], room="workers", namespace="/test")

        await asyncio.to_thread(celery_worker)
        await t1.expect("job done", "/test")
        await p1.expect("job done", "/test")
        await t1.expect("from sync", "/test")
        await p1.expect("from sync", "/test")
        await t1.expect("to all", "/test")
        await p1.expect("to all", "/test")
        await t2.expect("tornado only", "/test")
        await t1.expect("binary", "/")
        await settle()
        assert t1.got("job done", "/test") == p1.got("job done", "/test") == [[{"id": 7}]]
        assert t1.got("from sync", "/test") == p1.got("from sync", "/test") == [[[1, 2]]]
        assert t2.got("job done", "/test") == [] and t2.got("to all", "/test") == []
        assert t1.got("to all", "/test") == [[1, "two"]]
        assert t2.got("tornado only", "/test") == [["x"]]
        assert t1.got("binary", "/") == [[b"\x00\xff"]]
    finally:
        await close_all([t1, t2, p1])


@async_test(40)
async def test_emits_cross_between_tornado_sio_and_python_socketio(mixed):
    _, tornado, psio = mixed
    t1, t2, p1, p2 = await connect_all([(tornado, ["/"]), (tornado, ["/"]), (psio, ["/"]), (psio, ["/"])])
    try:
        for c in (t1, p1, p2):
            assert await c.ask("join", "mixed") == "joined"
        # tornado-sio emits: python-socketio's clients get it through its own manager
        assert await t2.ask("to room", "mixed", "from tornado", {"n": 1}) == "ok"
        # python-socketio emits: tornado-sio's clients get it
        assert await p2.ask("to room", "mixed", "from psio", [2]) == "ok"
        assert await p1.ask("broadcast", "psio broadcast", "all") == "ok"
        assert await t1.ask("broadcast", "tornado broadcast", b"\x01\x02") == "ok"
        for c in (t1, p1, p2):
            await c.expect("from tornado")
            await c.expect("from psio")
        for c in (t1, t2, p1, p2):
            await c.expect("psio broadcast")
            await c.expect("tornado broadcast")
        await settle()
        for c in (t1, p1, p2):
            assert c.got("from tornado") == [[{"n": 1}]]
            assert c.got("from psio") == [[[2]]]
        for c in (t1, t2, p1, p2):
            assert c.got("psio broadcast") == [["all"]]
            assert c.got("tornado broadcast") == [[b"\x01\x02"]]
        assert t2.got("from tornado") == t2.got("from psio") == []
    finally:
        await close_all([t1, t2, p1, p2])


@async_test(40)
async def test_calls_cross_between_tornado_sio_and_python_socketio(mixed):
    _, tornado, psio = mixed
    t1, p1 = await connect_all([(tornado, ["/"]), (psio, ["/"])])
    try:
        p1.answers[("/", "square")] = lambda x: x * x
        t1.answers[("/", "square")] = lambda x: -x * x
        # tornado-sio's call() to a python-socketio client: the ack comes back as a "callback" message
        assert await t1.ask("call", p1.sid["/"], "square", 9) == ["ok", 81]
        # python-socketio's call() to a tornado-sio client
        assert await p1.ask("call", t1.sid["/"], "square", 4) == ["ok", -16]
    finally:
        await close_all([t1, p1])


@async_test(40)
async def test_room_operations_cross_between_tornado_sio_and_python_socketio(mixed):
    _, tornado, psio = mixed
    t1, t2, p1, p2 = await connect_all([(tornado, ["/"]), (tornado, ["/"]), (psio, ["/"]), (psio, ["/"])])
    try:
        # tornado-sio puts a python-socketio client in a room, python-socketio a tornado-sio one
        assert await t1.ask("enter", p1.sid["/"], "crossed") == "ok"
        assert await p2.ask("enter", t2.sid["/"], "crossed") == "ok"
        for member in (t2, p1):
            for _ in range(100):
                if "crossed" in await member.ask("my rooms"):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError(f"enter_room from the other side did not reach {member.name}")
        assert await t1.ask("to room", "crossed", "in crossed", 1) == "ok"
        await p1.expect("in crossed")
        await t2.expect("in crossed")
        # and each disconnects a client of the other
        assert await t1.ask("kick", p2.sid["/"]) == "ok"
        assert await p1.ask("kick", t2.sid["/"]) == "ok"
        for _ in range(250):
            if p2.disconnected and t2.disconnected:
                break
            await asyncio.sleep(0.02)
        assert p2.disconnected == ["/"] and t2.disconnected == ["/"]
        await settle()
        assert p1.got("in crossed") == t2.got("in crossed") == [[1]]
        assert not t1.disconnected and not p1.disconnected
    finally:
        await close_all([t1, t2, p1, p2])


@async_test(40)
async def test_sync_emitter_in_python_socketio_format(mixed):
    redis, tornado, psio = mixed
    from tornado_sio.emitter import Emitter

    t1, p1 = await connect_all([(tornado, ["/"]), (psio, ["/"])])
    try:
        def work() -> None:
            with Emitter(redis.url, format="python-socketio") as emitter:
                assert emitter.channel == "socketio"
                emitter.emit("celery says", {"ok": True}, 3)

        await asyncio.to_thread(work)
        await t1.expect("celery says")
        await p1.expect("celery says")
        await settle()
        assert t1.got("celery says") == p1.got("celery says") == [[{"ok": True}, 3]]
    finally:
        await close_all([t1, p1])
