"""Several tornado-sio processes on one Redis: every emit, room operation and call
reaches the right clients of every process, exactly once.

Three server processes (``tests/redis_app.py``) share a throwaway ``redis-server``
(or ``REDIS_URL``); official python-socketio ``AsyncClient`` s are spread across
them. Writers outside the servers: the synchronous :class:`Emitter`, a
write-only ``SocketIO``, and the npm ``@socket.io/redis-emitter``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import Any

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")

from tests.apps import async_test
from tests.redis_support import (
    AppProcess,
    Client,
    close_all,
    connect_all,
    once_each,
    redis_server,
    running,
    settle,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def cluster():
    """(redis, [p0, p1, p2]): three servers, also accepting @socket.io/redis-emitter broadcasts.

    p2 publishes msgpack, p0 and p1 JSON: every test also checks that the two mix.
    """
    with redis_server() as redis:
        with running([AppProcess(redis.url, "--node-key", "socket.io", *extra).spawn()
                      for extra in ((), (), ("--serializer", "msgpack"))]) as procs:
            yield redis, procs


@async_test(40)
async def test_broadcast_from_each_process_reaches_every_client_once(cluster):
    _, procs = cluster
    clients = await connect_all([(p, ["/"]) for p in procs for _ in range(2)])
    try:
        for i, proc_index in enumerate((0, 1, 2)):
            sender = clients[proc_index * 2]
            assert await sender.ask("broadcast", f"b{i}", {"from": proc_index}) == "ok"
            for c in clients:
                await c.expect(f"b{i}")
        # include_self=False holds across processes: everybody but the sender
        sender = clients[3]
        assert await sender.ask("broadcast", "not me", "x", False) == "ok"
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
async def test_room_emits_across_processes_and_only_member_processes_are_woken(cluster):
    redis, procs = cluster
    from tornado_sio.emitter import Emitter

    p0, p1, p2 = procs
    a, b, c, d = await connect_all([(p0, ["/"]), (p1, ["/"]), (p1, ["/"]), (p2, ["/"])])
    try:
        assert await b.ask("join", "red") == "joined"
        assert await d.ask("join", "red") == "joined"
        assert await c.ask("join", "blue") == "joined"
        assert await d.ask("join", "blue") == "joined"
        # a (process 0, in no room) emits to "red": b and d, on two other processes
        assert await a.ask("to room", "red", "to red", {"n": 1}) == "ok"
        await b.expect("to red")
        await d.expect("to red")
        # several rooms: each member once, even d who is in both
        assert await a.ask("to room", ["red", "blue"], "to both", [1, 2]) == "ok"
        for member in (b, c, d):
            await member.expect("to both")
        # binary data and include_self=False from inside the room
        assert await d.ask("to room", "blue", "bin", b"\x00\x01\xff", False) == "ok"
        await c.expect("bin")
        await settle()
        once_each([b, d], "to red")
        once_each([b, c, d], "to both")
        assert a.got("to red") == a.got("to both") == [] and c.got("to red") == []
        assert once_each([c], "bin") == [[b"\x00\x01\xff"]] and d.got("bin") == []
        # a room channel has a subscriber only in processes holding a member:
        # PUBLISH reports 2 for "red" (p1, p2), 1 for a sid, 0 for an empty room
        with Emitter(redis.url) as emitter:
            assert await asyncio.to_thread(emitter.emit, "count", 1, to="red") == 2
            assert await asyncio.to_thread(emitter.emit, "count", 2, to=a.sid["/"]) == 1
            assert await asyncio.to_thread(emitter.emit, "count", 3, to="nobody's room") == 0
        await a.expect("count")
        assert await b.ask("leave", "red") == "left"
        assert await c.ask("leave", "blue") == "left"  # p1 holds no "red" or "blue" member now
        with Emitter(redis.url) as emitter:
            assert await asyncio.to_thread(emitter.emit, "count", 4, to="red") == 1
    finally:
        await close_all([a, b, c, d])


@async_test(40)
async def test_skip_sid_across_processes(cluster):
    _, procs = cluster
    clients = await connect_all([(p, ["/"]) for p in procs])
    try:
        a, b, c = clients
        assert await a.ask("emit skip", "skipped", 7, [b.sid["/"], c.sid["/"]]) == "ok"
        assert await c.ask("emit skip", "marker", 8, []) == "ok"  # published after: a barrier
        for x in clients:
            await x.expect("marker")
        await settle()
        assert a.got("skipped") == [[7]] and b.got("skipped") == [] and c.got("skipped") == []
    finally:
        await close_all(clients)


@async_test(40)
async def test_call_and_callbacks_reach_clients_of_other_processes(cluster):
    _, procs = cluster
    a, b, c, d = await connect_all([(procs[0], ["/", "/test"]), (procs[1], ["/"]), (procs[2], ["/"]),
                                    (procs[2], ["/test"])])
    try:
        b.answers[("/", "double")] = lambda x: x * 2
        c.answers[("/", "double")] = lambda x: x * 3
        assert await a.ask("call", b.sid["/"], "double", 21) == ["ok", 42]
        assert await a.ask("call", c.sid["/"], "double", 5) == ["ok", 15]
        # a binary answer travels back through Redis
        c.answers[("/", "bytes")] = lambda x: x + b"!"
        assert await a.ask("call", c.sid["/"], "bytes", b"\x01") == ["ok", b"\x01!"]
        # nobody holds the sid: known at once, not after the timeout
        assert await a.ask("call", "no-such-sid", "double", 1) == ["disconnected"]
        # a client that does not answer in time

        async def never(*args: Any) -> None:
            await asyncio.sleep(5)

        d.sio.on("slow", never, namespace="/test")
        assert await a.ask("call", d.sid["/test"], "slow", 1, 0.5, namespace="/test") == ["timeout"]
        # callback= on a room emit: each remote member's ack comes back to process 0
        assert await b.ask("join", "acks") == "joined"
        assert await c.ask("join", "acks") == "joined"
        assert await a.ask("emit cb", "acks", "double", 10) == "ok"
        answers = await a.expect("callback", count=2)
        assert sorted(answers) == [[[20]], [[30]]]
        await settle()
        assert len(a.got("callback")) == 2
    finally:
        await close_all([a, b, c, d])


@async_test(40)
async def test_room_operations_on_clients_of_other_processes(cluster):
    _, procs = cluster
    a, b, c = await connect_all([(p, ["/"]) for p in procs])
    try:
        # enter_room from process 0 on a client of process 1
        assert await a.ask("enter", b.sid["/"], "vip") == "ok"
        for _ in range(100):
            if "vip" in await b.ask("my rooms"):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("remote enter_room did not take effect")
        assert await c.ask("to room", "vip", "for vips", 1) == "ok"
        await b.expect("for vips")
        # leave_room from process 2
        assert await c.ask("leave other", b.sid["/"], "vip") == "ok"
        for _ in range(100):
            if "vip" not in await b.ask("my rooms"):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("remote leave_room did not take effect")
        # close_room from a process holding nobody in the room
        assert await b.ask("join", "doomed") == "joined"
        assert await c.ask("join", "doomed") == "joined"
        assert await a.ask("close room", "doomed") == "ok"
        for member in (b, c):
            for _ in range(100):
                if "doomed" not in await member.ask("my rooms"):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("remote close_room did not take effect")
        # disconnect(sid) from another process
        assert await a.ask("kick", c.sid["/"]) == "ok"
        for _ in range(250):
            if c.disconnected:
                break
            await asyncio.sleep(0.02)
        assert c.disconnected == ["/"]
    finally:
        await close_all([a, b, c])


@async_test(40)
async def test_sync_emitter_reaches_rooms_and_namespaces(cluster):
    redis, procs = cluster
    from tornado_sio.emitter import Emitter

    a, b, c = await connect_all([(procs[0], ["/test"]), (procs[1], ["/test"]), (procs[2], ["/", "/test"])])
    try:
        assert await a.ask("join", "news", namespace="/test") == "joined"
        assert await b.ask("join", "news", namespace="/test") == "joined"

        def work() -> None:
            with Emitter(redis.url, channel="tornado-sio") as emitter:
                emitter.emit("headline", {"t": 1}, to="news", namespace="/test")
                emitter.emit("everyone", 2, namespace="/test", skip_sid=a.sid["/test"])
                emitter.send("hello /", namespace="/")
                emitter.emit("binary", b"\x00\x01", to=["news"], namespace="/test")

        await asyncio.to_thread(work)
        await a.expect("headline", "/test")
        await b.expect("headline", "/test")
        await b.expect("everyone", "/test")
        await c.expect("everyone", "/test")
        await c.expect("message", "/")
        await a.expect("binary", "/test")
        await b.expect("binary", "/test")
        await settle()
        assert once_each([a, b], "headline", "/test") == [[{"t": 1}]] * 2
        once_each([b, c], "everyone", "/test")
        assert a.got("everyone", "/test") == [] and c.got("headline", "/test") == []
        assert once_each([c], "message", "/") == [["hello /"]]
        assert once_each([a, b], "binary", "/test") == [[b"\x00\x01"]] * 2
    finally:
        await close_all([a, b, c])


@async_test(40)
async def test_write_only_async_socketio_reaches_rooms_and_calls(cluster):
    redis, procs = cluster
    from tornado_sio import SocketIO

    a, b = await connect_all([(procs[0], ["/", "/test"]), (procs[2], ["/test"])])
    writer = SocketIO(message_queue=redis.url, write_only=True)
    try:
        await writer.start()
        assert await a.ask("join", "room-x", namespace="/test") == "joined"
        assert await b.ask("join", "room-x", namespace="/test") == "joined"
        writer.emit("from worker", {"job": 1}, to="room-x", namespace="/test")
        writer.emit("to all /", 1)
        await a.expect("from worker", "/test")
        await b.expect("from worker", "/test")
        await a.expect("to all /", "/")
        b.answers[("/test", "ping")] = lambda x: ["pong", x]
        assert await writer.call("ping", 3, to=b.sid["/test"], namespace="/test", timeout=5) == ["pong", 3]
        # emitting before start(): the adapter starts by itself and sends it
        late = SocketIO(message_queue=redis.url, write_only=True)
        try:
            late.emit("without start", 2, to="room-x", namespace="/test")
            await b.expect("without start", "/test")
        finally:
            await asyncio.wait_for(late.shutdown(), 10)
        await settle()
        once_each([a, b], "from worker", "/test")
        once_each([a, b], "without start", "/test")
    finally:
        await asyncio.wait_for(writer.shutdown(), 10)
        await close_all([a, b])


def node_emit(redis_url: str, ops: list[dict]) -> None:
    modules = support.need_node_module("@socket.io/redis-emitter")
    support.need_node_module("redis")
    env = {**os.environ, "NODE_PATH": str(modules)}
    proc = subprocess.run(["node", str(support.ROOT / "tests" / "node" / "redis_emit.js"), redis_url,
                           json.dumps(ops)], env=env, capture_output=True, timeout=20, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


@async_test(40)
async def test_node_redis_emitter_broadcasts_reach_tornado_clients(cluster):
    redis, procs = cluster
    support.need_node_module("@socket.io/redis-emitter")
    a, b, c = await connect_all([(procs[0], ["/"]), (procs[1], ["/", "/test"]), (procs[2], ["/test"])])
    try:
        assert await a.ask("join", "node-room") == "joined"
        assert await b.ask("join", "node-room") == "joined"
        assert await b.ask("join", "muted", namespace="/test") == "joined"
        await asyncio.to_thread(node_emit, redis.url, [
            {"ns": "/", "event": "from node", "args": [{"hello": "world"}, 2], "date": True},
            {"ns": "/", "to": ["node-room"], "event": "node room", "args": ["r"], "binary": True},
            {"ns": "/test", "except": ["muted"], "event": "node except", "args": []},
        ])
        await a.expect("from node")
        await b.expect("from node")
        await a.expect("node room")
        await b.expect("node room")
        await c.expect("node except", "/test")
        await settle()
        assert once_each([a, b], "from node") == [[{"hello": "world"}, 2, "1970-01-01T00:00:01.000Z"]] * 2
        assert once_each([a, b], "node room") == [["r", b"\x01\x02\x03"]] * 2
        assert once_each([c], "node except", "/test") == [[]]
        assert b.got("node except", "/test") == []
    finally:
        await close_all([a, b, c])


@async_test(40)
async def test_node_redis_emitter_sockets_join_leave_and_disconnect(cluster):
    redis, procs = cluster
    support.need_node_module("@socket.io/redis-emitter")
    a, b, c = await connect_all([(procs[0], ["/test"]), (procs[1], ["/test"]), (procs[2], ["/test"])])
    try:
        assert await c.ask("join", "staff", namespace="/test") == "joined"
        # everyone in /test but the staff joins "joined-by-node"; then a's whole connection closes
        await asyncio.to_thread(node_emit, redis.url, [
            {"ns": "/test", "kind": "socketsJoin", "except": ["staff"], "rooms": ["joined-by-node"]},
        ])
        for x in (a, b):
            for _ in range(100):
                if "joined-by-node" in await x.ask("my rooms", namespace="/test"):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("socketsJoin did not take effect")
        assert "joined-by-node" not in await c.ask("my rooms", namespace="/test")
        await asyncio.to_thread(node_emit, redis.url, [
            {"ns": "/test", "kind": "socketsLeave", "to": [b.sid["/test"]], "rooms": ["joined-by-node"]},
            {"ns": "/test", "kind": "disconnectSockets", "to": [a.sid["/test"]], "close": True},
        ])
        for _ in range(250):
            if a.disconnected:
                break
            await asyncio.sleep(0.02)
        assert a.disconnected == ["/test"]
        assert "joined-by-node" not in await b.ask("my rooms", namespace="/test")
        assert not b.disconnected and not c.disconnected
    finally:
        await close_all([a, b, c])


@async_test(40)
async def test_killed_process_leaves_the_others_unaffected(cluster):
    redis, procs = cluster
    doomed = AppProcess(redis.url).spawn().wait_ready()
    try:
        clients = await connect_all([(p, ["/"]) for p in procs])
        victim = Client("victim")
        await victim.connect(doomed)
        try:
            victim_sid = victim.sid["/"]
            assert await victim.ask("join", "shared") == "joined"
            assert await clients[1].ask("join", "shared") == "joined"
            doomed.kill()  # SIGKILL: no goodbye to Redis or to the clients
            # Redis drops a dead subscriber's channels when its socket closes
            for _ in range(200):
                if await clients[0].ask("call", victim_sid, "x", 1) == ["disconnected"]:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the dead process's client still looks reachable")
            assert await clients[0].ask("broadcast", "after kill", 1) == "ok"
            assert await clients[2].ask("to room", "shared", "room after kill", 2) == "ok"
            for c in clients:
                await c.expect("after kill")
            await clients[1].expect("room after kill")
            await settle()
            once_each(clients, "after kill")
            once_each([clients[1]], "room after kill")
        finally:
            await victim.close()
            await close_all(clients)
    finally:
        doomed.stop()
