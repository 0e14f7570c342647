"""The Redis adapter over Redis Streams, with three real processes and the official clients.

Three tornado-sio processes (``tests/redis_app.py --transport streams``) share one
throwaway ``redis-server``; python-socketio ``AsyncClient`` s and node's
``socket.io-client`` are spread across them. Every cluster operation of issue #13
is checked here across processes (broadcasts, rooms, except, acks from every
recipient, ``fetch_sockets`` with data, ``sockets_join``/``sockets_leave``,
``disconnect_sockets``, ``server_side_emit`` with acks, the server count, the
``volatile`` and ``local`` flags, a refusing connection middleware), every
message counted exactly once. The same tests run over pub/sub too. Then the stream itself: a reader resuming after a
lost connection misses nothing, a slow reader reads in bounded batches, and a
Redis restart is survived.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import Any

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")

from tests.apps import async_test
from tests.nodeclient import NodeClient
from tests.redis_support import (
    AppProcess,
    Client,
    RedisServer,
    close_all,
    connect_all,
    once_each,
    redis_server,
    running,
    settle,
)
from tornado_sio.adapter.redis.link import LinkSettings
from tornado_sio.adapter.redis.streams import StreamLink, StreamSettings, entry_id

pytestmark = pytest.mark.timeout(90)

FLAGS = ("--quick", "--plugin", "tests.test_redis_streams_app")


@pytest.fixture(scope="module", params=["streams", "pubsub"])
def cluster(request):
    """(redis, [p0, p1, p2]): three servers on one stream (or, the same tests, over pub/sub);
    the Redis is ours to restart."""
    if os.environ.get("REDIS_URL"):
        pytest.skip("these tests restart their own redis-server; REDIS_URL names a shared one")
    redis = RedisServer().start()
    try:
        with running([AppProcess(redis.url, "--transport", request.param, *FLAGS).spawn()
                      for _ in range(3)]) as procs:
            yield redis, procs
    finally:
        redis.stop()


async def two_each(procs: list[AppProcess]) -> list[Client]:
    """Six python-socketio clients, two on each process (c0, c1 on p0; c2, c3 on p1; ...)."""
    return await connect_all([(p, ["/"]) for p in procs for _ in range(2)])


# ---------------------------------------------------------------- delivery


@async_test(40)
async def test_every_process_is_on_the_transport_asked_for_and_counts_three_servers(cluster, request):
    _, procs = cluster
    clients = await connect_all([(p, ["/"]) for p in procs])
    try:
        for c in clients:
            assert (await c.ask("adapter"))["transport"] == request.node.callspec.params["cluster"]
            assert await c.ask("server count") == 3
    finally:
        await close_all(clients)


@async_test(40)
async def test_broadcast_from_each_process_reaches_every_client_once(cluster):
    _, procs = cluster
    clients = await two_each(procs)
    try:
        for i in range(3):
            assert await clients[i * 2].ask("broadcast", f"b{i}", {"from": i}) == "ok"
        for c in clients:
            for i in range(3):
                await c.expect(f"b{i}")
        sender = clients[3]
        assert await sender.ask("broadcast", "not me", "x", False) == "ok"  # include_self=False
        others = [c for c in clients if c is not sender]
        for c in others:
            await c.expect("not me")
        await settle()
        for i in range(3):
            assert once_each(clients, f"b{i}") == [[{"from": i}]] * 6
        once_each(others, "not me")
        assert sender.got("not me") == []
    finally:
        await close_all(clients)


@async_test(40)
async def test_rooms_and_except_across_processes(cluster):
    _, procs = cluster
    a, b, c, d = await connect_all([(procs[0], ["/"]), (procs[1], ["/"]), (procs[1], ["/"]), (procs[2], ["/"])])
    try:
        for client, room in ((b, "red"), (d, "red"), (c, "blue"), (d, "blue")):
            assert await client.ask("join", room) == "joined"
        assert await a.ask("to room", "red", "to red", 1) == "ok"
        assert await a.ask("to room", ["red", "blue"], "to both", 2) == "ok"
        assert await a.ask("emit skip", "all but b", 3, [b.sid["/"]]) == "ok"
        assert await d.ask("to room", "blue", "bin", b"\x00\xff", False) == "ok"
        for client, event in ((b, "to red"), (d, "to red"), (b, "to both"), (c, "to both"), (d, "to both"),
                              (a, "all but b"), (c, "all but b"), (d, "all but b"), (c, "bin")):
            await client.expect(event)
        await settle()
        once_each([b, d], "to red")
        once_each([b, c, d], "to both")
        once_each([a, c, d], "all but b")
        assert once_each([c], "bin") == [[b"\x00\xff"]]
        assert a.got("to red") == c.got("to red") == b.got("all but b") == d.got("bin") == []
    finally:
        await close_all([a, b, c, d])


@async_test(40)
async def test_node_clients_receive_every_broadcast_once_in_order(cluster):
    _, procs = cluster
    (sender,) = await connect_all([(procs[0], ["/"])])
    try:
        async with NodeClient() as node:
            for i, proc in enumerate(procs):
                await node.send({"op": "on", "id": f"n{i}", "event": "seq"})
                await node.send({"op": "connect", "id": f"n{i}", "url": proc.url,
                                 "opts": {"transports": ["websocket"]}})
                await node.expect(type="connect", id=f"n{i}")
            assert await sender.ask("emit many", None, "seq", 30) == "ok"
            for i in range(3):
                got = [(await node.expect(type="event", id=f"n{i}", event="seq"))["args"][0] for _ in range(30)]
                assert got == list(range(30))
            await settle()
            assert [len(node.queued(type="event", id=f"n{i}", event="seq")) for i in range(3)] == [0, 0, 0]
    finally:
        await close_all([sender])


@async_test(40)
async def test_volatile_reaches_every_idle_client_once_and_local_stays_in_its_process(cluster):
    _, procs = cluster
    clients = await two_each(procs)
    try:
        assert await clients[0].ask("emit flagged", None, "vol", 1, {"volatile": True}) == "ok"
        assert await clients[2].ask("emit flagged", None, "loc", 2, {"local": True}) == "ok"
        assert await clients[4].ask("broadcast", "barrier", 3) == "ok"  # appended after both
        for c in clients:
            await c.expect("barrier")
            await c.expect("vol")
        await settle()
        once_each(clients, "vol")
        once_each(clients[2:4], "loc")
        assert [len(c.got("loc")) for c in clients] == [0, 0, 1, 1, 0, 0]
    finally:
        await close_all(clients)


@async_test(40)
async def test_an_emitter_and_a_script_reach_every_client_once(cluster, request):
    redis, procs = cluster
    from tornado_sio import SocketIO
    from tornado_sio.emitter import Emitter

    streams = request.node.callspec.params["cluster"] == "streams"
    clients = await connect_all([(p, ["/"]) for p in procs])

    def from_outside() -> None:
        with Emitter(redis.url, stream="tornado-sio" if streams else None) as emitter:
            assert emitter.emit("from emitter", 1) >= 1
        script = SocketIO(message_queue=redis.url,  # a script: no event loop, it publishes at once
                          message_queue_options={"transport": "streams" if streams else "pubsub"})
        script.emit("from script", 2)

    try:
        await asyncio.to_thread(from_outside)
        for c in clients:
            await c.expect("from emitter")
            await c.expect("from script")
        await settle()
        assert once_each(clients, "from emitter") == [[1]] * 3
        assert once_each(clients, "from script") == [[2]] * 3
    finally:
        await close_all(clients)


# ---------------------------------------------------------------- Node's server API across processes


@async_test(40)
async def test_a_connection_middleware_refuses_with_its_data_on_every_process(cluster):
    _, procs = cluster
    async with NodeClient() as node:
        for i, proc in enumerate(procs):
            await node.send({"op": "connect", "id": f"m{i}", "url": proc.url,
                             "opts": {"transports": ["websocket"], "auth": {"refuse": True}}})
            refused = await node.expect(type="connect_error", id=f"m{i}")
            assert (refused["message"], refused["data"]) == ("refused by middleware", {"port": proc.port})


@async_test(40)
async def test_call_to_a_room_collects_one_answer_per_member_on_every_process(cluster):
    _, procs = cluster
    clients = await two_each(procs)
    try:
        members = clients[1::2]  # one on each process
        for i, c in enumerate(members):
            c.answers[("/", "q")] = lambda x, i=i: {"member": i, "x": x}
            assert await c.ask("join", "askme") == "joined"
        answers = await clients[0].ask("call many", ["askme"], "q", [7], 5)
        assert sorted(a["member"] for a in answers) == [0, 1, 2] and {a["x"] for a in answers} == {7}
        await settle()
        assert [len(c.got("q")) for c in clients] == [0, 1, 0, 1, 0, 1]
    finally:
        await close_all(clients)


@async_test(40)
async def test_call_to_one_client_of_another_process_returns_its_answer(cluster):
    _, procs = cluster
    asker, answerer = await connect_all([(procs[0], ["/"]), (procs[2], ["/"])])
    try:
        answerer.answers[("/", "ping")] = lambda x: {"pong": x}
        assert await asker.ask("call", answerer.sid["/"], "ping", 5) == ["ok", {"pong": 5}]
        await settle()
        assert len(answerer.got("ping")) == 1
    finally:
        await close_all([asker, answerer])


@async_test(40)
async def test_fetch_sockets_sees_every_process_with_its_data(cluster):
    _, procs = cluster
    clients = await connect_all([(p, ["/"]) for p in procs])
    try:
        for i, c in enumerate(clients):
            assert await c.ask("set data", "n", i) == "ok"
            assert await c.ask("join", "fetched") == "joined"
        found = await clients[1].ask("fetch", ["fetched"])
        by_sid = {f["id"]: f for f in found}
        assert set(by_sid) == {c.sid["/"] for c in clients}
        for i, (c, proc) in enumerate(zip(clients, procs)):
            assert by_sid[c.sid["/"]]["data"] == {"impl": "tornado", "port": proc.port, "n": i}
            assert sorted(by_sid[c.sid["/"]]["rooms"]) == sorted(["fetched", c.sid["/"]])
    finally:
        await close_all(clients)


async def rooms_settled(clients: list[Client], room: str, inside: bool) -> None:
    """Wait (bounded) until each client is (or is not) in *room*, its subscriptions active on Redis."""
    deadline = asyncio.get_running_loop().time() + 10
    while any([(room in await c.ask("my rooms")) != inside for c in clients]):
        assert asyncio.get_running_loop().time() < deadline, f"{room} membership did not settle"
        await asyncio.sleep(0.02)


@async_test(40)
async def test_sockets_join_and_leave_act_on_every_process(cluster, request):
    _, procs = cluster
    pubsub = request.node.callspec.params["cluster"] == "pubsub"
    clients = await connect_all([(p, ["/"]) for p in procs])
    try:
        a, b, c = clients
        assert await b.ask("join", "src") == "joined"
        assert await c.ask("join", "src") == "joined"
        assert await a.ask("sockets join", ["src"], ["dst"]) == "ok"
        if pubsub:  # a room channel is subscribed one round trip after the join; a stream needs no wait
            await rooms_settled([b, c], "dst", True)
        assert await a.ask("to room", "dst", "in dst", 1) == "ok"  # over Streams: after the join, in stream order
        await b.expect("in dst")
        await c.expect("in dst")
        assert await a.ask("sockets leave", [c.sid["/"]], ["dst"]) == "ok"
        if pubsub:
            await rooms_settled([c], "dst", False)
        assert await a.ask("to room", "dst", "still in dst", 2) == "ok"
        await b.expect("still in dst")
        await settle()
        once_each([b, c], "in dst")
        once_each([b], "still in dst")
        assert a.got("in dst") == c.got("still in dst") == []
    finally:
        await close_all(clients)


@async_test(40)
async def test_disconnect_sockets_disconnects_the_members_of_every_process(cluster):
    _, procs = cluster
    clients = await connect_all([(p, ["/"]) for p in procs])
    try:
        a, b, c = clients
        assert await b.ask("join", "doomed") == "joined"
        assert await c.ask("join", "doomed") == "joined"
        assert await a.ask("disconnect sockets", ["doomed"], False) == "ok"
        for client in (b, c):
            deadline = asyncio.get_running_loop().time() + 10
            while "/" not in client.disconnected:
                assert asyncio.get_running_loop().time() < deadline, "not disconnected"
                await asyncio.sleep(0.02)
        assert a.disconnected == [] and a.sio.connected
    finally:
        await close_all(clients)


@async_test(40)
async def test_server_side_emit_with_acks_answers_from_every_other_process(cluster):
    _, procs = cluster
    clients = await connect_all([(p, ["/"]) for p in procs])
    try:
        answers = await clients[0].ask("sse call", "new-order", [{"id": 1}], 5)
        assert sorted(a["port"] for a in answers) == sorted([procs[1].port, procs[2].port])
        assert await clients[1].ask("sse", "new-order", [{"id": 2}]) == "ok"
        for other in (clients[0], clients[2]):
            deadline = asyncio.get_running_loop().time() + 10
            while [{"id": 2}] not in await other.ask("sse seen"):
                assert asyncio.get_running_loop().time() < deadline, "server-side event not seen"
                await asyncio.sleep(0.05)
        assert [{"id": 2}] not in await clients[1].ask("sse seen")  # not to itself
    finally:
        await close_all(clients)


# ---------------------------------------------------------------- the stream itself


async def link_pair(url: str, **stream: Any) -> tuple[StreamLink, StreamLink, list[tuple[bytes, str | None]]]:
    """Two stream links on *url* (writer, reader); what the reader receives on channel ``c``."""
    name = f"unit-{uuid.uuid4().hex}"
    settings = StreamSettings(stream_name=name, **stream)
    got: list[tuple[bytes, str | None]] = []
    fast = LinkSettings(url=url, reconnect_delay=0.05, reconnect_max_delay=0.2, connect_timeout=2.0,
                        redis_options={"client_name": name})
    writer = StreamLink(fast, settings, lambda *args: None, "w" * 32)
    reader = StreamLink(fast, settings, lambda kind, ch, payload, offset: got.append((payload, offset)), "r" * 32)
    reader.want(b"c", "native", True)
    await writer.start()
    await reader.start()
    return writer, reader, got


async def arrived(got: list[Any], count: int) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while len(got) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{len(got)} of {count} entries read"
        await asyncio.sleep(0.02)


@async_test(40)
async def test_a_slow_reader_reads_a_backlog_in_bounded_batches_in_order_once():
    with redis_server() as redis:
        await slow_reader(redis.url)


async def slow_reader(url: str) -> None:
    writer, reader, got = await link_pair(url, stream_read_count=7, stream_maxlen=5000)
    try:
        paused = reader.tasks.pop("reader")  # the reader falls behind ...
        paused.cancel()
        await asyncio.gather(paused, return_exceptions=True)
        for i in range(300):
            writer.publish(b"c", b"%d" % i)
        assert await writer.flush()
        xread, batches = reader.reader.xread, []

        async def counted_xread(*args: Any, **kwargs: Any) -> Any:
            answer = await xread(*args, **kwargs)
            batches.append(sum(len(entries) for _, entries in answer or []))
            return answer

        reader.reader.xread = counted_xread
        reader.spawn("reader", reader.read_forever)  # ... and catches up, 7 entries per XREAD
        await arrived(got, 300)
        await settle(0.2)
        assert [payload for payload, _ in got] == [b"%d" % i for i in range(300)]
        assert max(batches) == 7 and sum(batches) == 300
    finally:
        await writer.stop()
        await reader.stop()


@async_test(40)
async def test_a_lost_reader_connection_resumes_from_its_position_missing_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="tornado_sio.redis")
    with redis_server() as redis:
        await lost_reader(redis.url, caplog)


async def lost_reader(url: str, caplog: Any) -> None:
    import redis.asyncio as redis_asyncio

    writer, reader, got = await link_pair(url)
    admin = redis_asyncio.Redis.from_url(url)
    try:
        writer.publish(b"c", b"before")
        await arrived(got, 1)
        for client in await admin.client_list():  # every connection of both links drops
            if client["name"] == reader.stream.stream_name:
                await admin.client_kill_filter(_id=client["id"])
        for i in range(50):
            writer.publish(b"c", b"%d" % i)
            await asyncio.sleep(0.002)
        await writer.flush()
        await arrived(got, 51 - writer.dropped)
        await settle(0.3)
        payloads = [payload for payload, _ in got]
        assert payloads[0] == b"before" and len(payloads) == len(set(payloads))  # nothing twice
        assert len(payloads) == 51 - writer.dropped  # every entry appended was read
        lost = [r.getMessage() for r in caplog.records if "lost the connection" in r.getMessage()]
        assert len(lost) <= 2  # at most once per link
    finally:
        await admin.aclose()
        await writer.stop()
        await reader.stop()


@async_test(60)
async def test_a_redis_restart_is_survived_and_logged_once(cluster):
    redis, procs = cluster
    clients = await connect_all([(p, ["/"]) for p in procs])
    try:
        redis.kill()
        await asyncio.sleep(0.5)
        redis.start()  # same port, empty: a new stream
        deadline = asyncio.get_running_loop().time() + 20
        while not all([(await c.ask("status"))["connected"] for c in clients]):
            assert asyncio.get_running_loop().time() < deadline, "not reconnected"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # heartbeats on the new stream
        assert await clients[0].ask("broadcast", "after restart", 1) == "ok"
        for c in clients:
            await c.expect("after restart")
        await settle()
        once_each(clients, "after restart")
        assert await clients[1].ask("server count") == 3
        for proc in procs:
            log = proc.output()
            assert log.count("lost the connection to Redis") == 1, log
            assert log.count("reconnected to Redis") == 1, log
    finally:
        await close_all(clients)


def test_entry_ids_sort_by_time_then_sequence():
    assert entry_id("0-0") < entry_id("5-1") < entry_id("5-10") < entry_id("10-0")
