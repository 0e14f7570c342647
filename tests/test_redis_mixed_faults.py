"""Faults in a mixed cluster (Node socket.io + tornado-sio on one Redis): nothing is
duplicated, and what is lost is what ``docs/redis.md`` ("Faults and what is lost") says.

Each test builds its own cluster (two Node servers, two tornado-sio servers in
Node's format, one python-socketio client on each) since each breaks it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")
support.need_python_module("msgpack")

from tests.apps import async_test
from tests.redis_support import WAIT, Client, close_all, settle
from tests.test_redis_mixed import clients_on, counts, mixed_cluster

pytestmark = pytest.mark.timeout(120)


async def until_everyone_hears(senders: list[Any], clients: list[Client], tag: str) -> None:
    """Probe until one broadcast from each sender reaches every client (bounded): the cluster works again."""
    for attempt in range(int(2 * WAIT / 0.3)):
        event = f"{tag}-{attempt}"
        for send in senders:
            await send(event)
        await asyncio.sleep(0.3)
        if all(c.got(event) for c in clients):
            await asyncio.sleep(0.2)
            if all(len(c.got(event)) == len(senders) for c in clients):
                return
    raise AssertionError(f"the cluster did not recover: {[c.inbox[-3:] for c in clients]}")


def senders_of(nodes: list[Any], clients: list[Client]) -> list[Any]:
    """Broadcast senders: Node server 0 (its API) and tornado-sio server 0 (through its client)."""
    async def from_node(event: str) -> None:
        await nodes[0].run("emit", event=event, args=["n"])

    async def from_tornado(event: str) -> None:
        await clients[2].ask("broadcast", event, "t")

    return [from_node, from_tornado]


async def numbered_round(nodes: list[Any], clients: list[Client], tag: str, count: int = 5) -> None:
    """*count* broadcasts from each side; every client gets each exactly once."""
    for i in range(count):
        await nodes[0].run("emit", event=f"{tag}-node-{i}")
        assert await clients[2].ask("broadcast", f"{tag}-tornado-{i}", i) == "ok"
    for c in clients:
        await c.expect(f"{tag}-node-{count - 1}")
        await c.expect(f"{tag}-tornado-{count - 1}")
    await settle()
    for i in range(count):
        assert counts(clients, f"{tag}-node-{i}") == [1] * len(clients)
        assert counts(clients, f"{tag}-tornado-{i}") == [1] * len(clients)


@async_test(110)
async def test_a_redis_restart_loses_only_the_outage_window_and_duplicates_nothing():
    with mixed_cluster() as (redis, nodes, tornados):
        if redis.proc is None:
            pytest.skip("REDIS_URL points at a Redis these tests cannot restart")
        clients = await clients_on(nodes, tornados)
        try:
            await numbered_round(nodes, clients, "before")
            redis.kill()
            await nodes[0].run("emit", event="during-node")
            assert await clients[2].ask("broadcast", "during-tornado", "t") == "ok"
            await clients[0].expect("during-node")  # the emitting server's own clients: always
            await clients[2].expect("during-tornado")
            redis.start()
            await until_everyone_hears(senders_of(nodes, clients), clients, "probe")
            await numbered_round(nodes, clients, "after")
            # lost: what crossed Redis while it was down (node-redis may still send its
            # offline queue late); never twice
            assert all(n <= 1 for n in counts(clients, "during-node") + counts(clients, "during-tornado"))
            assert counts(clients, "during-tornado")[1] == 0  # a tornado-sio publish while down: dropped
            assert await nodes[1].run("serverCount") == 4
            assert await clients[3].ask("server count") == 4
        finally:
            await close_all(clients)


@async_test(110)
async def test_a_killed_node_server_leaves_the_others_counting_three_and_delivering_once():
    with mixed_cluster() as (_, nodes, tornados):
        clients = await clients_on(nodes, tornados)
        try:
            await numbered_round(nodes, clients, "before")
            nodes[1].proc.kill()
            nodes[1].proc.wait(5)
            for _ in range(int(WAIT / 0.1)):
                if await clients[2].ask("server count") == 3:
                    break
                await asyncio.sleep(0.1)
            assert await clients[2].ask("server count") == 3
            assert await nodes[0].run("serverCount") == 3
            alive = [clients[0], clients[2], clients[3]]
            await numbered_round(nodes, alive, "after")
            found = {item["id"] for item in await clients[3].ask("fetch", [])}  # no timeout: 3 servers answer
            assert {c.sid["/"] for c in alive} <= found and clients[1].sid["/"] not in found
            answers = await clients[2].ask("sse call", "new-order", [{"id": 9}], 5)
            assert len(answers) == 2
        finally:
            await close_all(clients)


@async_test(110)
async def test_a_stopped_tornado_server_catches_up_when_continued_without_duplicates():
    # health checks every 5 s: a stop shorter than 3 of them is not taken for a lost Redis
    with mixed_cluster("--health", "5") as (_, nodes, tornados):
        clients = await clients_on(nodes, tornados)
        try:
            await numbered_round(nodes, clients, "before")
            frozen = tornados[1].proc
            assert frozen is not None
            os.kill(frozen.pid, signal.SIGSTOP)
            try:
                for i in range(3):
                    await nodes[0].run("emit", event=f"frozen-node-{i}")
                    assert await clients[2].ask("broadcast", f"frozen-tornado-{i}", i) == "ok"
                for c in clients[:3]:
                    await c.expect("frozen-node-2")
                    await c.expect("frozen-tornado-2")
                assert counts([clients[3]], "frozen-node-0") == [0]
            finally:
                os.kill(frozen.pid, signal.SIGCONT)
            # Redis held the messages in the frozen subscriber's buffer: they arrive late, once each
            await clients[3].expect("frozen-node-2")
            await clients[3].expect("frozen-tornado-2")
            await settle()
            for i in range(3):
                assert counts(clients, f"frozen-node-{i}") == [1, 1, 1, 1]
                assert counts(clients, f"frozen-tornado-{i}") == [1, 1, 1, 1]
            await numbered_round(nodes, clients, "after")
        finally:
            await close_all(clients)
