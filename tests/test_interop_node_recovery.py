"""Connection state recovery (issue #13) with node's official ``socket.io-client`` 4.8.

Both sides have recovery on (the client's ``connectionStateRecovery`` is the
default behaviour of socket.io-client >= 4.6: it sends ``pid`` and ``offset``
back as soon as the server gave it a ``pid``). Every test runs over websocket
only, polling only, and the client's default (polling, then the upgrade).
"""

from __future__ import annotations

import asyncio
from typing import Any, List

from tests.apps import async_test, until, with_transports
from tests.test_interop_node_client import session

RECOVERY = {"max_disconnection_duration": 30}
# reconnect by itself, after the server has seen the old transport go
RECONNECT = {"reconnection": True, "reconnectionDelay": 300, "reconnectionDelayMax": 300,
             "randomizationFactor": 0}


def values(n: Any, cid: str, event: str = "n") -> List[Any]:
    """The first argument of every queued *event* of *cid* (consumed)."""
    out = []
    while True:
        msg = n.node.pop(type="event", id=cid, event=event)
        if msg is None:
            return out
        out.append(msg["args"][0])


async def round_trip(n: Any, cid: str) -> None:
    """Echo a marker and wait for it (with recovery on, the echo carries an offset too)."""
    await n.emit(cid, "echo", "sync marker")
    args = await n.expect_event(cid, "echo")
    assert args[0] == "sync marker" and isinstance(args[1], str) and len(args) == 2


async def joined(n: Any, cid: str, **opts: Any) -> dict:
    """Connect *cid*, join room ``r`` and receive ``n 0`` (the client now holds an offset)."""
    first = await n.connect(cid, events=("n", "echo"), **opts)
    assert first["recovered"] is False
    assert await n.call(cid, "join", "r") == ["joined"]
    n.server.socketio.emit("n", 0, to="r")
    args = await n.expect_event(cid, "n")
    assert args[0] == 0 and isinstance(args[-1], str)  # the offset, last
    return first


async def emit_while_away(n: Any, count: int, kill: Any) -> None:
    """Emit ``n 1..count`` to room ``r`` every 10 ms; call *kill()* after the 5th."""
    for i in range(1, count + 1):
        n.server.socketio.emit("n", i, to="r")
        if i == 5:
            await kill()
        await asyncio.sleep(0.01)


@with_transports
@async_test(timeout=40)
async def test_killed_client_transport_is_recovered_with_every_missed_packet_once(transports):
    async with session(transports, connection_state_recovery=RECOVERY) as n:
        first = await joined(n, "c1", **RECONNECT)

        async def kill() -> None:
            await n.node.send({"op": "close_engine", "id": "c1"})

        await emit_while_away(n, 60, kill)
        again = await n.node.expect(type="connect", id="c1")
        assert (again["sid"], again["recovered"]) == (first["sid"], True)
        n.server.socketio.emit("n", 61, to="r")  # the room is kept
        await round_trip(n, "c1")
        assert values(n, "c1") == list(range(1, 62))
        assert [r for _, s, r in n.server.seen.disconnects if s == first["sid"]] == ["transport close"]


@with_transports
@async_test(timeout=40)
async def test_server_side_transport_close_is_recovered(transports):
    async with session(transports, connection_state_recovery=RECOVERY) as n:
        first = await joined(n, "c1", **RECONNECT)

        async def kill() -> None:
            socket = n.server.socketio.adapter.get_socket(first["sid"])
            socket.client.conn.close("forced close")

        await emit_while_away(n, 40, kill)
        again = await n.node.expect(type="connect", id="c1")
        assert (again["sid"], again["recovered"]) == (first["sid"], True)
        n.server.socketio.emit("n", 41, to="r")
        await round_trip(n, "c1")
        assert values(n, "c1") == list(range(1, 42))


@with_transports
@async_test(timeout=40)
async def test_client_disconnect_is_not_recovered(transports):
    async with session(transports, connection_state_recovery=RECOVERY) as n:
        first = await joined(n, "c1")
        await n.node.send({"op": "disconnect", "id": "c1"})
        await until(lambda: any(s == first["sid"] for _, s, _ in n.server.seen.disconnects))
        n.server.socketio.emit("n", 1, to="r")
        await n.node.send({"op": "reconnect", "id": "c1"})  # presents the old pid and offset
        again = await n.node.expect(type="connect", id="c1")
        assert again["recovered"] is False and again["sid"] != first["sid"]
        n.server.socketio.emit("n", 2, to="r")  # not in the room any more
        await round_trip(n, "c1")
        assert values(n, "c1") == []


@with_transports
@async_test(timeout=40)
async def test_not_recovered_after_max_disconnection_duration(transports):
    async with session(transports, connection_state_recovery={"max_disconnection_duration": 0.5}) as n:
        first = await joined(n, "c1")
        await n.node.send({"op": "close_engine", "id": "c1"})
        await until(lambda: any(s == first["sid"] for _, s, _ in n.server.seen.disconnects))
        n.server.socketio.emit("n", 1, to="r")
        await asyncio.sleep(0.8)
        await n.node.send({"op": "reconnect", "id": "c1"})
        again = await n.node.expect(type="connect", id="c1")
        assert again["recovered"] is False and again["sid"] != first["sid"]
        await round_trip(n, "c1")
        assert values(n, "c1") == []
