"""The synchronous ``Emitter`` in Node's format reaches a mixed Node / tornado-sio cluster.

``Emitter(url, format='node')`` publishes as the npm package
``@socket.io/redis-emitter`` 5 does. One Node socket.io 4.8 server on
``@socket.io/redis-adapter`` 8 (``tests/node/cluster_server.js``) and one
tornado-sio server in Node's format (``tests/redis_app.py --format node``) share
a throwaway ``redis-server``; python-socketio's official ``AsyncClient`` sits on
both. Each emit must reach every selected client exactly once: the counts are
taken after a last broadcast (``end``) has arrived, which Redis delivers to each
server after everything published before it, so no sleep decides a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from typing import Any

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")
support.need_python_module("msgpack")

from tests.apps import async_test
from tests.redis_support import WAIT, AppProcess, Client, close_all, connect_all, redis_server
from tests.test_redis_mixed import NodeServer, beside_node
from tornado_sio.emitter import Emitter

pytestmark = pytest.mark.timeout(60)

EMIT_JS = support.ROOT / "tests" / "node" / "redis_emit.js"


@pytest.fixture(scope="module")
def mixed():
    """(redis, node, tornado): one Node server and one tornado-sio server in Node's format."""
    with redis_server() as redis, beside_node(redis.url, "--format", "node") as (node, tornado):
        yield redis, node, tornado


@contextlib.asynccontextmanager
async def four_clients(node: NodeServer, tornado: AppProcess, namespaces: tuple[str, ...] = ("/",)):
    """[node a, node b, tornado a, tornado b]: two python-socketio clients on each server."""
    clients = await connect_all([(server, list(namespaces)) for server in (node, node, tornado, tornado)])
    try:
        yield clients
    finally:
        await close_all(clients)


@contextlib.contextmanager
def emitter_of(redis_url: str):
    with Emitter(redis_url, format="node") as emitter:
        yield emitter


async def publish(redis_url: str, *emits: tuple[tuple[Any, ...], dict[str, Any]]) -> list[int]:
    """Emit each ``(args, kwargs)`` with a Node-format Emitter (in a thread: it blocks), then ``end``
    to every client of the namespaces used; return what each emit returned."""

    def run() -> list[int]:
        with emitter_of(redis_url) as emitter:
            counts = [emitter.emit(*args, **kwargs) for args, kwargs in emits]
            for namespace in sorted({kwargs.get("namespace") or "/" for _, kwargs in emits}):
                emitter.emit("end", namespace=namespace)
            return counts

    return await asyncio.to_thread(run)


async def received(clients: list[Client], event: str, namespace: str = "/") -> list[list[list[Any]]]:
    """Once ``end`` has reached every client: each client's *event*s (the args of each)."""
    await asyncio.gather(*(c.expect("end", namespace) for c in clients))
    return [c.got(event, namespace) for c in clients]


async def join(client: Client, room: str, namespace: str = "/") -> None:
    assert await client.ask("join", room, namespace=namespace) == "joined"


# ---------------------------------------------------------------- emits


@async_test(40)
async def test_a_broadcast_reaches_every_client_of_both_servers_once(mixed):
    redis, node, tornado = mixed
    async with four_clients(node, tornado) as clients:
        (count,) = await publish(redis.url, (("news", {"title": "hello"}, b"\x00\x01"), {}))
        assert count == 2  # both servers are subscribed
        assert await received(clients, "news") == [[[{"title": "hello"}, b"\x00\x01"]]] * 4


@async_test(40)
async def test_a_room_emit_reaches_only_the_rooms_members_on_both_servers(mixed):
    redis, node, tornado = mixed
    async with four_clients(node, tornado) as clients:
        await join(clients[0], "room1")
        await join(clients[2], "room1")
        await publish(redis.url, (("update", 1), {"to": "room1"}))
        assert await received(clients, "update") == [[[1]], [], [[1]], []]


@async_test(40)
async def test_an_emit_to_several_rooms_reaches_a_member_of_both_once(mixed):
    redis, node, tornado = mixed
    async with four_clients(node, tornado) as clients:
        for client in (clients[0], clients[2]):
            await join(client, "a")
            await join(client, "b")
        await join(clients[1], "b")
        await publish(redis.url, (("update", 2), {"to": ["a", "b"]}))
        assert await received(clients, "update") == [[[2]], [[2]], [[2]], []]


@async_test(40)
async def test_skip_sid_with_a_room_leaves_out_its_members_as_nodes_except_does(mixed):
    redis, node, tornado = mixed
    async with four_clients(node, tornado) as clients:
        await join(clients[1], "muted")
        await join(clients[3], "muted")
        await publish(redis.url, (("update", 3), {"skip_sid": "muted"}))
        assert await received(clients, "update") == [[[3]], [], [[3]], []]


@async_test(40)
async def test_a_room_emit_skipping_one_sid_reaches_the_other_members(mixed):
    redis, node, tornado = mixed
    async with four_clients(node, tornado) as clients:
        for client in clients:
            await join(client, "team")
        skipped = [clients[0].sid["/"], clients[3].sid["/"]]
        await publish(redis.url, (("update", 4), {"to": "team", "skip_sid": skipped}))
        assert await received(clients, "update") == [[], [[4]], [[4]], []]


@async_test(40)
async def test_an_emit_to_a_sid_reaches_that_client_only(mixed):
    redis, node, tornado = mixed
    async with four_clients(node, tornado) as clients:
        await publish(redis.url, (("direct", "to node b"), {"to": clients[1].sid["/"]}),
                      (("direct", "to tornado a"), {"to": clients[2].sid["/"]}))
        assert await received(clients, "direct") == [[], [["to node b"]], [["to tornado a"]], []]


@async_test(40)
async def test_an_emit_in_another_namespace_stays_in_it(mixed):
    redis, node, tornado = mixed
    async with four_clients(node, tornado, ("/", "/test")) as clients:
        await join(clients[0], "room1", "/test")
        await join(clients[3], "room1", "/test")
        await publish(redis.url, (("in test", 5), {"to": "room1", "namespace": "/test"}),
                      (("in root", 6), {}))
        assert await received(clients, "in test", "/test") == [[[5]], [], [], [[5]]]
        assert await received(clients, "in test") == [[], [], [], []]
        assert await received(clients, "in root", "/test") == [[], [], [], []]


# ---------------------------------------------------------------- room operations


@async_test(40)
async def test_enter_room_puts_a_client_of_either_server_in_the_room(mixed):
    redis, node, tornado = mixed
    async with four_clients(node, tornado) as clients:
        with emitter_of(redis.url) as emitter:
            assert emitter.enter_room(clients[1].sid["/"], "vip") == 2
            assert emitter.enter_room(clients[2].sid["/"], "vip") == 2
        for client in (clients[1], clients[2]):
            for _ in range(100):  # a request is applied when each server reads it
                if "vip" in await client.ask("my rooms"):
                    break
                await asyncio.sleep(0.02)
        assert ["vip" in await c.ask("my rooms") for c in clients] == [False, True, True, False]
        await publish(redis.url, (("vip news", 7), {"to": "vip"}))
        assert await received(clients, "vip news") == [[], [[7]], [[7]], []]


@async_test(40)
async def test_disconnect_closes_a_client_of_either_server(mixed):
    redis, node, tornado = mixed
    async with four_clients(node, tornado) as clients:
        with emitter_of(redis.url) as emitter:
            emitter.disconnect(clients[0].sid["/"])
            emitter.disconnect(clients[3].sid["/"])
        for _ in range(int(WAIT / 0.02)):
            if clients[0].disconnected and clients[3].disconnected:
                break
            await asyncio.sleep(0.02)
        assert [c.disconnected for c in clients] == [["/"], [], [], ["/"]]


# ---------------------------------------------------------------- the wire


def node_emit(redis_url: str, ops: list[dict[str, Any]]) -> None:
    """Publish *ops* with the npm package ``@socket.io/redis-emitter`` (``tests/node/redis_emit.js``)."""
    modules = support.need_node_module("@socket.io/redis-emitter")
    support.need_node_module("redis")
    node = support.need("node", support.NODE_HINT)
    proc = subprocess.run([node, str(EMIT_JS), redis_url, json.dumps(ops)], env={**os.environ, "NODE_PATH": str(modules)},
                          capture_output=True, timeout=20, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


def captured(redis_url: str, publish: Any, count: int) -> list[tuple[str, Any]]:
    """``(channel, decoded message)`` of the first *count* messages published on ``socket.io*``
    while ``publish()`` runs (a pattern subscription of its own, made before)."""
    import msgpack
    import redis

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    try:
        pubsub.psubscribe("socket.io*")
        confirmed = pubsub.get_message(timeout=WAIT)  # Redis has the subscription before anything is published
        assert confirmed is not None and confirmed["type"] == "psubscribe", confirmed
        publish()
        out: list[tuple[str, Any]] = []
        for _ in range(count * 100):
            message = pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "pmessage":
                out.append((message["channel"].decode(), msgpack.unpackb(message["data"], raw=False)))
            if len(out) == count:
                break
        return out
    finally:
        pubsub.close()
        client.close()


OPS = [
    {"event": "news", "args": [{"title": "hello"}, 1.5, None, True], "binary": True},
    {"to": ["room1"], "event": "update", "args": [1]},
    {"ns": "/test", "to": ["a", "b"], "except": ["muted"], "event": "update", "args": ["x"]},
]


def python_emit(redis_url: str) -> None:
    """:data:`OPS`, with the Node-format Emitter."""
    with emitter_of(redis_url) as emitter:
        emitter.emit("news", {"title": "hello"}, 1.5, None, True, b"\x01\x02\x03")
        emitter.emit("update", 1, to="room1")
        emitter.emit("update", "x", to=["a", "b"], skip_sid="muted", namespace="/test")


def test_the_emitter_publishes_what_nodes_redis_emitter_publishes(mixed):
    redis, _, _ = mixed
    from_node = captured(redis.url, lambda: node_emit(redis.url, OPS), len(OPS))
    from_python = captured(redis.url, lambda: python_emit(redis.url), len(OPS))
    assert [channel for channel, _ in from_node] == ["socket.io#/#", "socket.io#/#room1#", "socket.io#/test#"]
    assert from_python == from_node


# ---------------------------------------------------------------- refused


@pytest.mark.parametrize("url, options, why", [
    ("redis://127.0.0.1:1/0", {"stream": "tornado-sio"}, "pub/sub"),
    ("redis+cluster://127.0.0.1:1,127.0.0.1:2", {}, "one Redis"),
])
def test_node_format_refuses_what_nodes_adapter_cannot_read(url, options, why):
    with pytest.raises(ValueError, match=why):
        Emitter(url, format="node", **options)


def test_node_format_refuses_a_reserved_event_name_as_nodes_emitter_does():
    emitter = Emitter("redis://127.0.0.1:1/0", format="node")  # nothing is sent: Redis is never reached
    try:
        with pytest.raises(ValueError, match="reserved"):
            emitter.emit("disconnect")
    finally:
        emitter.close()


def test_node_format_defaults_to_nodes_key_as_its_channel():
    emitter = Emitter("redis://127.0.0.1:1/0", format="node")
    try:
        assert (emitter.format, emitter.channel) == ("node", "socket.io")
    finally:
        emitter.close()
