"""Interop: node's official ``socket.io-client`` 4.x against tornado-sio.

The server (``tests/apps.py``) runs in-process; the clients run in one node
process driven through ``tests/node/client.js`` (see ``tests/nodeclient.py``).
Every test runs over websocket only, polling only, and the client's default
(polling, then the upgrade to websocket).
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

from tests.apps import BAD_AUTH, DemoServer, async_test, serve, until, with_transports
from tests.nodeclient import NodeClient

WAIT = 10.0  # bound on any single wait; never a timing assertion


class Node:
    """Small helpers over a :class:`NodeClient` for one test's server."""

    def __init__(self, node: NodeClient, server: DemoServer, transports: Optional[List[str]]) -> None:
        self.node = node
        self.server = server
        self.transports = transports
        self._ref = 0

    def opts(self, **extra: Any) -> Dict[str, Any]:
        opts = dict(extra)
        if self.transports is not None:
            opts["transports"] = self.transports
        return opts

    async def connect(self, cid: str, namespace: str = "/", events: tuple = ("*",),
                      share: Optional[str] = None, **opts: Any) -> Dict[str, Any]:
        """Open client *cid* (subscribed to *events*) and wait for its connect."""
        for event in events:
            await self.node.send({"op": "on", "id": cid, "event": event})
        cmd: Dict[str, Any] = {"op": "connect", "id": cid, "url": self.server.url + namespace,
                               "opts": self.opts(**opts)}
        if share:
            cmd["share"] = share
        await self.node.send(cmd)
        return await self.node.expect(id=cid, type="connect")

    async def emit(self, cid: str, event: str, *args: Any) -> None:
        await self.node.send({"op": "emit", "id": cid, "event": event, "args": list(args)})

    async def call(self, cid: str, event: str, *args: Any) -> List[Any]:
        """Emit with an ack; the ack's args."""
        self._ref += 1
        ref = f"r{self._ref}"
        await self.node.send({"op": "emit", "id": cid, "event": event, "args": list(args),
                              "ack": True, "ref": ref})
        return (await self.node.expect(type="ack", id=cid, ref=ref))["args"]

    async def expect_event(self, cid: str, event: str) -> List[Any]:
        return (await self.node.expect(type="event", id=cid, event=event))["args"]

    def count(self, cid: str, event: str) -> int:
        return len(self.node.queued(type="event", id=cid, event=event))

    async def round_trip(self, cid: str) -> None:
        """Echo a marker and wait for it: everything the server sent before is in."""
        await self.emit(cid, "echo", "sync marker")
        assert await self.expect_event(cid, "echo") == ["sync marker"]


class session:
    """``async with session(transports, **server_options) as n``: a server and a node driver."""

    def __init__(self, transports: Optional[List[str]], **server_options: Any) -> None:
        self.transports = transports
        self.server_options = server_options

    async def __aenter__(self) -> Node:
        self._serve = serve(**self.server_options)
        server = await self._serve.__aenter__()
        self._node = NodeClient(default_timeout=WAIT)
        try:
            node = await self._node.__aenter__()
        except BaseException as exc:
            await self._serve.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return Node(node, server, self.transports)

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self._node.__aexit__(*exc)
        finally:
            await self._serve.__aexit__(*exc)


# ---------------------------------------------------------------------------
# Connecting
# ---------------------------------------------------------------------------


@with_transports
@async_test()
async def test_connect_with_auth_reaches_the_connect_handler(transports):
    async with session(transports) as n:
        msg = await n.connect("c1", "/test", auth={"token": "good", "user": "ann"})
        assert n.server.seen.auth_of("/test", msg["sid"]) == {"token": "good", "user": "ann"}


@with_transports
@async_test()
async def test_refused_connect_delivers_message_and_data(transports):
    async with session(transports) as n:
        await n.node.send({"op": "connect", "id": "c1", "url": n.server.url + "/test",
                           "opts": n.opts(auth=BAD_AUTH)})
        msg = await n.node.expect(type="connect_error", id="c1")
        assert (msg["message"], msg["data"]) == ("unauthorized", {"reason": "bad token"})
        assert n.server.seen.connects == []
        assert n.node.queued(type="connect", id="c1") == []


@with_transports
@async_test()
async def test_transport_in_use_is_the_one_asked_for_or_upgraded(transports):
    async with session(transports) as n:
        connected = await n.connect("c1")
        if transports is None:
            # the default starts with polling and must upgrade to websocket
            assert (await n.node.expect(type="upgrade", id="c1"))["transport"] == "websocket"
        else:
            assert connected["transport"] == transports[0]
            await n.round_trip("c1")
            assert n.node.queued(type="upgrade", id="c1") == []


# ---------------------------------------------------------------------------
# Events and acknowledgements
# ---------------------------------------------------------------------------


@with_transports
@async_test()
async def test_emit_is_echoed_back_with_the_same_args(transports):
    async with session(transports) as n:
        await n.connect("c1")
        await n.emit("c1", "echo", "text", 42, {"k": [1, 2.5, None, True]})
        assert await n.expect_event("c1", "echo") == ["text", 42, {"k": [1, 2.5, None, True]}]


@with_transports
@async_test()
async def test_client_ack_gets_the_handler_return_value(transports):
    async with session(transports) as n:
        await n.connect("c1")
        assert await n.call("c1", "join", "room") == ["joined"]


@with_transports
@async_test()
async def test_client_ack_spreads_a_returned_tuple_into_several_args(transports):
    async with session(transports) as n:
        await n.connect("c1")
        assert await n.call("c1", "echo", 1, "two", [3]) == [1, "two", [3]]


@with_transports
@async_test()
async def test_server_call_returns_the_client_ack(transports):
    async with session(transports) as n:
        await n.node.send({"op": "answer", "id": "c1", "event": "question", "reply": [{"answer": 42}]})
        await n.connect("c1")
        await n.emit("c1", "ask", "the question")
        msg = await n.node.expect(type="event", id="c1", event="question")
        assert (msg["args"], msg["acked"]) == (["the question"], True)
        assert await n.expect_event("c1", "answer") == [{"answer": 42}]


@with_transports
@async_test()
async def test_server_emit_callback_gets_the_client_ack_args(transports):
    async with session(transports) as n:
        await n.node.send({"op": "answer", "id": "c1", "event": "question", "reply": ["yes", 2]})
        await n.connect("c1")
        await n.emit("c1", "ask cb", "q")
        assert await n.expect_event("c1", "question") == ["q"]
        assert await n.expect_event("c1", "answer") == ["yes", 2]


# ---------------------------------------------------------------------------
# Binary
# ---------------------------------------------------------------------------

BLOB = {"a": b"\x00\x01\x02", "list": [b"xyz", {"deep": bytes(range(256))}], "text": "t"}


@with_transports
@async_test()
async def test_binary_payload_nested_in_dicts_and_lists_is_echoed(transports):
    async with session(transports) as n:
        await n.connect("c1")
        await n.emit("c1", "echo", BLOB, b"\xff")
        assert await n.expect_event("c1", "echo") == [BLOB, b"\xff"]


@with_transports
@async_test()
async def test_binary_payload_in_a_client_ack(transports):
    async with session(transports) as n:
        await n.connect("c1")
        assert await n.call("c1", "echo", BLOB) == [BLOB]


@with_transports
@async_test()
async def test_binary_payload_in_a_client_answer_to_server_call(transports):
    async with session(transports) as n:
        await n.node.send({"op": "answer", "id": "c1", "event": "question", "reply": [{"bin": [b"\x10\x20"]}]})
        await n.connect("c1")
        await n.emit("c1", "ask", {"q": b"\x01"})
        assert await n.expect_event("c1", "question") == [{"q": b"\x01"}]
        assert await n.expect_event("c1", "answer") == [{"bin": [b"\x10\x20"]}]


# ---------------------------------------------------------------------------
# Namespaces, rooms, broadcast
# ---------------------------------------------------------------------------


@with_transports
@async_test()
async def test_two_namespaces_share_one_connection(transports):
    async with session(transports) as n:
        root = await n.connect("root", "/")
        test = await n.connect("test", "/test", share="root")
        assert root["sid"] != test["sid"]
        await n.emit("root", "echo", "to root")
        await n.emit("test", "echo", "to test")
        assert await n.expect_event("test", "echo") == ["to test"]
        assert await n.expect_event("root", "echo") == ["to root"]
        assert len(n.server.socketio.engine.sessions) == 1


@with_transports
@async_test()
async def test_room_emit_reaches_other_member_once_and_not_the_sender(transports):
    async with session(transports) as n:
        for cid in ("a", "b", "outsider"):
            await n.connect(cid)
        assert await n.call("a", "join", "r1") == ["joined"]
        assert await n.call("b", "join", "r1") == ["joined"]
        await n.emit("a", "to room", "r1", {"n": 1})
        assert await n.expect_event("b", "room message") == [{"n": 1}]
        # per-client order: anything the emit sent to a client precedes its echo
        for cid in ("a", "b", "outsider"):
            await n.round_trip(cid)
        assert n.count("b", "room message") == 0  # exactly once
        assert n.count("a", "room message") == 0  # include_self=False
        assert n.count("outsider", "room message") == 0


@with_transports
@async_test()
async def test_broadcast_reaches_every_client_once(transports):
    async with session(transports) as n:
        await n.connect("a")
        await n.connect("b")
        await n.emit("b", "broadcast", "hello all")
        assert await n.expect_event("a", "broadcast") == ["hello all"]
        assert await n.expect_event("b", "broadcast") == ["hello all"]
        for cid in ("a", "b"):
            await n.round_trip(cid)
            assert n.count(cid, "broadcast") == 0


@with_transports
@async_test()
async def test_broadcast_stays_in_its_namespace(transports):
    async with session(transports) as n:
        await n.connect("a")
        await n.connect("a-test", "/test", share="a")
        await n.connect("b-test", "/test")
        await n.emit("a", "broadcast", "only root")
        assert await n.expect_event("a", "broadcast") == ["only root"]
        for cid in ("a-test", "b-test"):
            await n.round_trip(cid)
            assert n.count(cid, "broadcast") == 0


# ---------------------------------------------------------------------------
# Server-side disconnect
# ---------------------------------------------------------------------------


@with_transports
@async_test()
async def test_disconnect_in_a_handler_disconnects_the_client(transports):
    async with session(transports) as n:
        sid = (await n.connect("c1"))["sid"]
        await n.emit("c1", "kick")
        msg = await n.node.expect(type="disconnect", id="c1")
        assert msg["reason"] == "io server disconnect"
        await until(lambda: any(s == sid for _, s, _ in n.server.seen.disconnects), WAIT,
                    "server disconnect handler")


@with_transports
@async_test()
async def test_server_disconnect_by_sid_disconnects_the_client(transports):
    async with session(transports) as n:
        await n.connect("root")
        sid = (await n.connect("test", "/test", share="root"))["sid"]
        n.server.socketio.disconnect(sid, namespace="/test")
        msg = await n.node.expect(type="disconnect", id="test")
        assert msg["reason"] == "io server disconnect"
        # the other namespace on the same connection keeps working
        await n.round_trip("root")
        assert n.node.queued(type="disconnect", id="root") == []


# ---------------------------------------------------------------------------
# Heartbeat
# ---------------------------------------------------------------------------


@with_transports
@async_test()
async def test_handshake_keeps_sub_second_ping_settings_exact(transports):
    async with session(transports, ping_interval=0.2, ping_timeout=0.4) as n:
        await n.connect("c1")
        data = (await n.node.expect(type="handshake", id="c1"))["data"]
        assert (data["pingInterval"], data["pingTimeout"]) == (200, 400)


@with_transports
@async_test()
async def test_heartbeat_keeps_an_idle_connection_alive_past_two_ping_intervals(transports):
    async with session(transports, ping_interval=0.2, ping_timeout=0.4) as n:
        await n.connect("c1")
        await asyncio.sleep(1.0)  # idle: five ping intervals, more than interval + timeout
        assert n.node.queued(type="disconnect", id="c1") == []
        await n.round_trip("c1")
        assert len(n.server.socketio.engine.sessions) == 1
