"""msgpack servers on one Redis: what one process emits reaches every process's clients in msgpack.

Two server processes (``tests/redis_app.py --parser msgpack``) share a
throwaway ``redis-server``; python-socketio ``AsyncClient(serializer='msgpack')``
clients are spread across them. Between processes events travel in the
adapter's own format (its JSON body, binary as attachments; p1 publishes that
format as msgpack, p0 as JSON), and each process encodes them for its clients
in the parser they speak, so binary values arrive as bytes, in place.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")
support.need_python_module("msgpack")

from tests.apps import async_test
from tests.redis_support import AppProcess, Client, close_all, redis_server, running, settle

pytestmark = pytest.mark.timeout(60)

BLOB = {"bin": b"\x00\xff", "list": [b"abc", {"deep": bytes(range(16))}]}


@pytest.fixture(scope="module")
def cluster():
    """[p0, p1]: msgpack servers; p1 publishes the adapter format as msgpack, p0 as JSON."""
    with redis_server() as redis:
        with running([AppProcess(redis.url, "--parser", "msgpack", *extra).spawn()
                      for extra in ((), ("--serializer", "msgpack"))]) as procs:
            yield procs


async def msgpack_clients(procs: list[AppProcess], per_process: int = 2) -> list[Client]:
    clients = [Client(f"c{i}@{p.port}", serializer="msgpack") for p in procs for i in range(per_process)]
    for i, client in enumerate(clients):
        await client.connect(procs[i // per_process], ["/", "/test"])
        for ns in ("/", "/test"):  # "my rooms" awaits the adapter's sync: reachable from here on
            await client.ask("my rooms", namespace=ns)
    return clients


@async_test(40)
async def test_a_broadcast_with_binary_reaches_every_msgpack_client_of_both_processes_once(cluster):
    clients = await msgpack_clients(cluster)
    try:
        for sender in (clients[0], clients[2]):
            assert await sender.ask("broadcast", f"from {sender.name}", BLOB) == "ok"
            for client in clients:
                assert await client.expect(f"from {sender.name}") == [[BLOB]]
        await settle()
        assert [len(c.got(f"from {clients[0].name}")) for c in clients] == [1] * 4
    finally:
        await close_all(clients)


@async_test(40)
async def test_a_room_emit_in_a_namespace_crosses_processes_in_msgpack(cluster):
    clients = await msgpack_clients(cluster, per_process=1)
    try:
        for client in clients:
            assert await client.ask("join", "room b", namespace="/test") == "joined"
        assert await clients[0].ask("to room", "room b", "in room", [b"\x01", "x"], namespace="/test") == "ok"
        for client in clients:
            assert await client.expect("in room", namespace="/test") == [[[b"\x01", "x"]]]
        assert clients[0].got("in room") == []  # not in "/"
    finally:
        await close_all(clients)


@async_test(40)
async def test_a_call_to_a_client_of_the_other_process_returns_its_binary_ack(cluster):
    clients = await msgpack_clients(cluster, per_process=1)
    asker, answerer = clients
    answerer.answers[("/", "question")] = lambda data: {"echo": data, "raw": b"\x07"}
    try:
        target = answerer.sid["/"]
        result: Any = await asker.ask("call", target, "question", b"q?")
        assert result == ["ok", {"echo": b"q?", "raw": b"\x07"}]
    finally:
        await close_all(clients)


@async_test(40)
async def test_an_emit_with_callback_to_the_other_process_brings_the_ack_back(cluster):
    clients = await msgpack_clients(cluster, per_process=1)
    asker, answerer = clients
    answerer.answers[("/", "ping")] = lambda data: [data, b"\x08"]
    try:
        assert await asker.ask("emit cb", answerer.sid["/"], "ping", b"p") == "ok"
        assert await asker.expect("callback") == [[[[b"p", b"\x08"]]]]
    finally:
        await close_all(clients)
