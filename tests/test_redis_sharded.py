"""tornado-sio processes on a Redis Cluster with sharded pub/sub (SSUBSCRIBE/SPUBLISH).

A real cluster of 3 primaries and 3 replicas (``tests/redis_cluster_support.py``)
carries the message queue of three server processes (``tests/redis_app.py``
with ``--redis redis+cluster://...``); official python-socketio
``AsyncClient`` s are spread over them and every message is counted exactly
once. Channels hash to slots all over the cluster, so one test touches every
shard. The slot map following a moved slot is shown with two links in this
process; a primary killed mid-stream is ``test_redis_sharded_failover.py``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")

from tests.apps import async_test
from tests.redis_cluster_support import redis_cluster
from tests.redis_support import (
    AppProcess,
    Client,
    app_processes,
    close_all,
    connect_all,
    redis_server,
    running,
    settle,
)
from tornado_sio import MessageQueueError, SocketIO
from tornado_sio.adapter.redis.sharded import ClusterSettings, ShardedLink, key_slot, parse_cluster_url
from tornado_sio.emitter import Emitter

pytestmark = pytest.mark.timeout(90)

ROOMS = [f"room-{i}" for i in range(12)]  # their channels land on every shard


@pytest.fixture(scope="module")
def cluster():
    with redis_cluster() as redis:
        yield redis


@pytest.fixture(scope="module")
def servers(cluster):
    """Three servers on the cluster; the first two name only one seed node each (the rest is discovered)."""
    urls = (cluster.seed_url(1), cluster.seed_url(2), cluster.url)
    with running([AppProcess(url, "--quick").spawn() for url in urls]) as procs:
        yield procs


def counts(clients: list[Client], event: str, namespace: str = "/") -> list[int]:
    return [len(c.got(event, namespace)) for c in clients]


def room_channel(room: str, namespace: str = "/") -> bytes:
    return f"tornado-sio#{namespace}#{room}#".encode()


# -- the pure parts ---------------------------------------------------------------


def test_key_slot_is_crc16_mod_16384_and_honours_hash_tags() -> None:
    assert key_slot(b"foo") == 12182  # the value the Redis Cluster specification gives
    assert key_slot(b"{user1000}.following") == key_slot(b"{user1000}.followers") == key_slot(b"user1000")
    assert key_slot(b"foo{}{bar}") == key_slot(b"foo{}{bar}")  # an empty tag hashes the whole name
    assert key_slot(b"foo{}{bar}") != key_slot(b"bar")


def test_a_cluster_url_names_its_seed_nodes_and_credentials() -> None:
    seeds, auth = parse_cluster_url("rediss+cluster://app:s%3Acret@10.0.0.1:7000,10.0.0.2:7001/0")
    assert seeds == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert auth == {"username": "app", "password": "s:cret", "ssl": True}
    for bad in ("redis+cluster://", "redis+cluster://h:x", "redis+cluster://h:1/3"):
        with pytest.raises(ValueError):
            parse_cluster_url(bad)


def test_cluster_options_with_a_single_redis_url_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="need a Redis Cluster message_queue"):
        SocketIO(message_queue="redis://127.0.0.1:6379/0", message_queue_options={"sharded": False})


def test_the_password_of_a_cluster_url_is_masked_in_the_adapter() -> None:
    socketio = SocketIO(message_queue="redis+cluster://:hunter2@127.0.0.1:1,127.0.0.1:2")
    assert "hunter2" not in repr(socketio.adapter)
    assert "redis+cluster://:***@127.0.0.1:1,127.0.0.1:2" in repr(socketio.adapter)


@async_test(30)
async def test_start_names_the_url_and_reason_when_no_node_answers() -> None:
    port = support.free_port()
    socketio = SocketIO(message_queue=f"redis+cluster://127.0.0.1:{port}",
                        message_queue_options={"connect_timeout": 0.5})
    with pytest.raises(MessageQueueError, match=rf"cannot reach Redis Cluster at redis\+cluster://127.0.0.1:{port}: .+"):
        await socketio.start()


@async_test(30)
async def test_start_names_the_reason_when_a_node_accepts_but_never_answers() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        socketio = SocketIO(message_queue=f"redis+cluster://127.0.0.1:{port}",
                            message_queue_options={"connect_timeout": 0.5})
        with pytest.raises(MessageQueueError) as info:
            await socketio.start()
    finally:
        listener.close()
    text = str(info.value)
    assert text.startswith(f"cannot reach Redis Cluster at redis+cluster://127.0.0.1:{port}: "), text
    assert not text.rstrip().endswith(":") and ("Timeout" in text or "no answer" in text), text


@async_test(30)
async def test_start_says_a_single_redis_is_not_a_cluster() -> None:
    with redis_server() as redis:
        socketio = SocketIO(message_queue=f"redis+cluster://127.0.0.1:{redis.port}",
                            message_queue_options={"connect_timeout": 1.0})
        with pytest.raises(MessageQueueError, match="cluster support disabled.*not redis\\+cluster://"):
            await socketio.start()


# -- across processes ---------------------------------------------------------------


@async_test(40)
async def test_broadcast_from_each_process_reaches_every_client_once(servers) -> None:
    clients = await connect_all([(p, ["/", "/test"]) for p in servers for _ in range(2)])
    try:
        for i in range(3):
            assert await clients[i * 2].ask("broadcast", f"b{i}", {"from": i}) == "ok"
            assert await clients[i * 2].ask("broadcast", f"t{i}", i, namespace="/test") == "ok"
        for c in clients:
            for i in range(3):
                await c.expect(f"b{i}")
                await c.expect(f"t{i}", "/test")
        await settle()
        for i in range(3):
            assert counts(clients, f"b{i}") == [1] * 6
            assert counts(clients, f"t{i}", "/test") == [1] * 6
    finally:
        await close_all(clients)


@async_test(40)
async def test_room_emits_on_every_shard_reach_each_member_once(cluster, servers) -> None:
    primaries = {cluster.primary_of(key_slot(room_channel(room))) for room in ROOMS}
    assert len(primaries) == 3, "the rooms' channels should spread over the three shards"
    members = await connect_all([(servers[1], ["/"]), (servers[2], ["/"])])
    outsider, sender = await connect_all([(servers[2], ["/"]), (servers[0], ["/"])])
    try:
        for room in ROOMS:
            for member in members:
                assert await member.ask("join", room) == "joined"
        for room in ROOMS:
            assert await sender.ask("to room", room, "news", room) == "ok"
        for member in members:
            await member.expect("news", count=len(ROOMS))
        await settle()
        for member in members:
            assert sorted(args[0] for args in member.got("news")) == sorted(ROOMS)
        assert outsider.got("news") == [] and sender.got("news") == []
    finally:
        await close_all([*members, outsider, sender])


@async_test(40)
async def test_call_and_callback_reach_a_client_of_another_process(servers) -> None:
    asker, target = await connect_all([(servers[0], ["/"]), (servers[2], ["/"])])
    target.answers[("/", "question")] = lambda value: {"answer": value * 2}
    try:
        assert await asker.ask("call", target.sid["/"], "question", 21) == ["ok", {"answer": 42}]
        assert await asker.ask("emit cb", target.sid["/"], "question", 5) == "ok"
        assert await asker.expect("callback") == [[[{"answer": 10}]]]  # the callback's argument list
        # a sid nobody holds: SPUBLISH says no subscriber on its shard, so it fails at once
        assert await asker.ask("call", "no-such-sid-anywhere", "question", 1) == ["disconnected"]
    finally:
        await close_all([asker, target])


@async_test(40)
async def test_fetch_sockets_and_server_side_emit_span_the_processes(servers) -> None:
    clients = await connect_all([(p, ["/"]) for p in servers])
    try:
        assert await clients[0].ask("join", "vip") == "joined"
        assert await clients[2].ask("join", "vip") == "joined"
        for client in clients:
            await wait_server_count(client, 3)
        found = await clients[1].ask("fetch", ["vip"])
        assert sorted(s["id"] for s in found) == sorted([clients[0].sid["/"], clients[2].sid["/"]])
        assert {s["data"]["port"] for s in found} == {servers[0].port, servers[2].port}
        every = await clients[1].ask("fetch", None)
        assert sorted(s["id"] for s in every) == sorted(c.sid["/"] for c in clients)
        answers = await clients[0].ask("sse call", "new-order", [{"id": 7}], 5)
        assert sorted(a["port"] for a in answers) == sorted([servers[1].port, servers[2].port])
        for client in clients[1:]:
            assert [{"id": 7}] in await client.ask("sse seen")
    finally:
        await close_all(clients)


async def wait_server_count(client: Client, expected: int) -> None:
    """Heartbeats travel on the request channel; bounded wait until *expected* servers are counted."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while await client.ask("server count") != expected:
        assert loop.time() < deadline, f"server count never reached {expected}"
        await asyncio.sleep(0.1)


@async_test(60)
async def test_classic_publish_on_a_cluster_reaches_every_process_once(cluster) -> None:
    with app_processes(cluster.seed_url(1), 2, "--classic") as procs:
        clients = await connect_all([(p, ["/"]) for p in procs for _ in range(2)])
        try:
            assert await clients[3].ask("join", "classic-room") == "joined"
            assert await clients[0].ask("broadcast", "hello", 1) == "ok"
            assert await clients[0].ask("to room", "classic-room", "room news", 2) == "ok"
            for c in clients:
                await c.expect("hello")
            await clients[3].expect("room news")
            await settle()
            assert counts(clients, "hello") == [1] * 4
            assert counts(clients, "room news") == [0, 0, 0, 1]
        finally:
            await close_all(clients)


# -- the slot map ------------------------------------------------------------------------


@async_test(60)
async def test_a_moved_slot_is_followed_by_publisher_and_subscriber(cluster, caplog) -> None:
    caplog.set_level(logging.DEBUG, "tornado_sio.redis")
    channel = b"tornado-sio#/#moving-room#"
    slot = key_slot(channel)
    got: list[bytes] = []
    settings: dict[str, Any] = {"url": cluster.seed_url(1), "connect_timeout": 2.0, "reconnect_delay": 0.05,
                                "reconnect_max_delay": 0.5, "health_interval": 1.0}
    subscriber = ShardedLink(ClusterSettings(**settings), lambda kind, ch, data: got.append(data))
    publisher = ShardedLink(ClusterSettings(**settings), lambda kind, ch, data: None)
    subscriber.want(channel, "native", True)
    await subscriber.start()
    await publisher.start()
    try:
        before = cluster.primary_of(slot)
        assert await publisher.publish_counted(channel, b"before") == 1
        after = next(p for p in cluster.alive_primaries() if p != before)
        await asyncio.get_running_loop().run_in_executor(None, cluster.move_slot, slot, after)
        # the old node drops the subscription (SUNSUBSCRIBE): the subscriber re-reads the map and moves it
        assert await subscriber.sync(10)
        assert subscriber.subscriber.placed[channel] == f"127.0.0.1:{after}"
        # the publisher still has the old map: Redis answers MOVED, it learns the new owner and sends again
        assert publisher.map.node_for(channel) == f"127.0.0.1:{before}"
        assert await publisher.publish_counted(channel, b"after") == 1
        assert publisher.map.node_for(channel) == f"127.0.0.1:{after}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(got) < 2 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert got == [b"before", b"after"]
        assert publisher.dropped == 0 and subscriber.connected and publisher.connected
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "a migration is not an outage"
    finally:
        await subscriber.stop()
        await publisher.stop()


@async_test(40)
async def test_the_synchronous_emitter_spublishes_through_the_cluster(cluster, servers) -> None:
    member, other = await connect_all([(servers[0], ["/"]), (servers[1], ["/"])])
    emitter = Emitter(cluster.seed_url(1))
    try:
        assert await member.ask("join", "emitter-room") == "joined"
        loop = asyncio.get_running_loop()
        reached = await loop.run_in_executor(None, lambda: emitter.emit("from script", 1, to="emitter-room"))
        assert reached == 1  # SPUBLISH counts the one process subscribed on the room's shard
        await loop.run_in_executor(None, lambda: emitter.emit("to all", 2))
        assert await member.expect("from script") == [[1]]
        for c in (member, other):
            assert await c.expect("to all") == [[2]]
        await settle()
        assert other.got("from script") == []
    finally:
        await loop.run_in_executor(None, emitter.close)
        await close_all([member, other])
