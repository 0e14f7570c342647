"""Interop: python-socketio's official ``socketio.AsyncClient`` against tornado-sio.

The server (``tests/apps.py``) runs in-process, in the same asyncio loop as the
client (aiohttp). Every test runs over websocket only, polling only, and the
default (polling, then the upgrade to websocket).
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import pytest

from tests import support
from tests.apps import BAD_AUTH, DemoServer, async_test, close_client, serve, until, with_transports

try:
    import aiohttp  # noqa: F401  (python-socketio's AsyncClient runs on it)
    import socketio
except ImportError:
    if support.IN_CI:
        raise
    pytest.skip("python-socketio[asyncio-client] not found: pip install -e '.[test,redis,fast]'",
                allow_module_level=True)

WAIT = 10.0  # bound on any single wait; never a timing assertion


class PyClient:
    """A ``socketio.AsyncClient`` that queues every event it receives, by namespace."""

    def __init__(self, transports: Optional[List[str]]) -> None:
        self.transports = transports
        self.sio = socketio.AsyncClient(reconnection=False)
        self.inbox: List[Dict[str, Any]] = []
        self.log: List[Dict[str, Any]] = []
        #: (namespace, event) -> what to acknowledge with (a tuple: several args)
        self.answers: Dict[tuple, Any] = {}
        self._arrived = asyncio.Event()

        @self.sio.on("*", namespace="*")
        def any_event(event: str, namespace: str, *args: Any) -> Any:
            self._put(event, namespace, args)
            return self.answers.get((namespace, event))

        @self.sio.on("connect", namespace="*")
        def on_connect(namespace: str) -> None:
            self._put("connect", namespace, ())

        @self.sio.on("connect_error", namespace="*")
        def on_connect_error(namespace: str, *data: Any) -> None:
            self._put("connect_error", namespace, data)

        @self.sio.on("disconnect", namespace="*")
        def on_disconnect(namespace: str, *reason: Any) -> None:
            self._put("disconnect", namespace, reason)

    def _put(self, event: str, namespace: str, args: tuple) -> None:
        msg = {"event": event, "namespace": namespace, "args": list(args)}
        self.inbox.append(msg)
        self.log.append(msg)
        self._arrived.set()

    async def connect(self, server: DemoServer, namespaces: Any = "/", auth: Any = None) -> None:
        await self.sio.connect(server.url, namespaces=namespaces, auth=auth,
                               transports=self.transports, wait_timeout=WAIT)

    def count(self, event: str, namespace: str = "/") -> int:
        return sum(1 for m in self.inbox if m["event"] == event and m["namespace"] == namespace)

    async def expect(self, event: str, namespace: str = "/", timeout: float = WAIT) -> List[Any]:
        """The args of the first queued *event* in *namespace* (removed from the queue)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, msg in enumerate(self.inbox):
                if msg["event"] == event and msg["namespace"] == namespace:
                    del self.inbox[i]
                    return msg["args"]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} in {namespace}; received: {self.log[-20:]}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def round_trip(self, namespace: str = "/") -> None:
        """Echo a marker and wait for it: everything the server sent before is in."""
        await self.sio.emit("echo", "sync marker", namespace=namespace)
        assert await self.expect("echo", namespace) == ["sync marker"]

    async def close(self) -> None:
        await close_client(self.sio)


class clients:
    """``async with clients(n, transports) as (a, b, ...)``: closed at the end."""

    def __init__(self, n: int, transports: Optional[List[str]]) -> None:
        self.items = [PyClient(transports) for _ in range(n)]

    async def __aenter__(self) -> List[PyClient]:
        return self.items

    async def __aexit__(self, *exc: Any) -> None:
        for c in self.items:
            await c.close()


# ---------------------------------------------------------------------------
# Connecting
# ---------------------------------------------------------------------------


@with_transports
@async_test()
async def test_connect_with_auth_reaches_the_connect_handler(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        await c.connect(srv, namespaces="/test", auth={"token": "good", "user": "ann"})
        sid = c.sio.get_sid("/test")
        assert sid
        assert srv.seen.auth_of("/test", sid) == {"token": "good", "user": "ann"}


@with_transports
@async_test()
async def test_refused_connect_delivers_message_and_data(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await c.connect(srv, namespaces="/test", auth=BAD_AUTH)
        assert await c.expect("connect_error", "/test") == [
            {"message": "unauthorized", "data": {"reason": "bad token"}}
        ]
        assert srv.seen.connects == []


@with_transports
@async_test()
async def test_transport_in_use_is_the_one_asked_for_or_upgraded(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        await c.connect(srv)
        await c.round_trip()
        # the default (polling first) must have upgraded to websocket
        assert c.sio.transport() == (transports[0] if transports else "websocket")


# ---------------------------------------------------------------------------
# Events and acknowledgements
# ---------------------------------------------------------------------------


@with_transports
@async_test()
async def test_emit_is_echoed_back_with_the_same_args(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        await c.connect(srv)
        await c.sio.emit("echo", ("text", 42, {"k": [1, 2.5, None, True]}))
        assert await c.expect("echo") == ["text", 42, {"k": [1, 2.5, None, True]}]


@with_transports
@async_test()
async def test_client_ack_gets_the_handler_return_value(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        await c.connect(srv)
        assert await c.sio.call("echo", {"x": 1}, timeout=WAIT) == {"x": 1}


@with_transports
@async_test()
async def test_client_ack_spreads_a_returned_tuple_into_several_args(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        await c.connect(srv)
        got: asyncio.Future = asyncio.get_running_loop().create_future()
        await c.sio.emit("echo", (1, "two", [3]), callback=lambda *args: got.set_result(args))
        assert await asyncio.wait_for(got, WAIT) == (1, "two", [3])


@with_transports
@async_test()
async def test_server_call_returns_the_client_ack(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        c.answers[("/", "question")] = {"answer": 42}
        await c.connect(srv)
        await c.sio.emit("ask", "the question")
        assert await c.expect("question") == ["the question"]
        assert await c.expect("answer") == [{"answer": 42}]


@with_transports
@async_test()
async def test_server_emit_callback_gets_the_client_ack_args(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        c.answers[("/", "question")] = ("yes", 2)
        await c.connect(srv)
        await c.sio.emit("ask cb", "q")
        assert await c.expect("question") == ["q"]
        assert await c.expect("answer") == ["yes", 2]


# ---------------------------------------------------------------------------
# Binary
# ---------------------------------------------------------------------------

BLOB = {"a": b"\x00\x01\x02", "list": [b"xyz", {"deep": bytes(range(256))}], "text": "t"}


@with_transports
@async_test()
async def test_binary_payload_nested_in_dicts_and_lists_is_echoed(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        await c.connect(srv)
        await c.sio.emit("echo", (BLOB, b"\xff"))
        assert await c.expect("echo") == [BLOB, b"\xff"]


@with_transports
@async_test()
async def test_binary_payload_in_a_client_ack(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        await c.connect(srv)
        assert await c.sio.call("echo", BLOB, timeout=WAIT) == BLOB


@with_transports
@async_test()
async def test_binary_payload_in_a_client_answer_to_server_call(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        c.answers[("/", "question")] = {"bin": [b"\x10\x20"]}
        await c.connect(srv)
        await c.sio.emit("ask", {"q": b"\x01"})
        assert await c.expect("question") == [{"q": b"\x01"}]
        assert await c.expect("answer") == [{"bin": [b"\x10\x20"]}]


# ---------------------------------------------------------------------------
# Namespaces, rooms, broadcast
# ---------------------------------------------------------------------------


@with_transports
@async_test()
async def test_two_namespaces_share_one_connection(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        await c.connect(srv, namespaces=["/", "/test"])
        root, test = c.sio.get_sid("/"), c.sio.get_sid("/test")
        assert root and test and root != test
        await c.sio.emit("echo", "to root", namespace="/")
        await c.sio.emit("echo", "to test", namespace="/test")
        assert await c.expect("echo", "/test") == ["to test"]
        assert await c.expect("echo", "/") == ["to root"]
        assert len(srv.socketio.engine.sessions) == 1


@with_transports
@async_test()
async def test_room_emit_reaches_other_member_once_and_not_the_sender(transports):
    async with serve() as srv, clients(3, transports) as (a, b, outsider):
        for c in (a, b, outsider):
            await c.connect(srv)
        assert await a.sio.call("join", "r1", timeout=WAIT) == "joined"
        assert await b.sio.call("join", "r1", timeout=WAIT) == "joined"
        await a.sio.emit("to room", ("r1", {"n": 1}))
        assert await b.expect("room message") == [{"n": 1}]
        # per-client order: anything the emit sent to a client precedes its echo
        for c in (a, b, outsider):
            await c.round_trip()
        assert b.count("room message") == 0  # exactly once
        assert a.count("room message") == 0  # include_self=False
        assert outsider.count("room message") == 0


@with_transports
@async_test()
async def test_broadcast_reaches_every_client_once(transports):
    async with serve() as srv, clients(2, transports) as (a, b):
        await a.connect(srv)
        await b.connect(srv)
        await b.sio.emit("broadcast", "hello all")
        assert await a.expect("broadcast") == ["hello all"]
        assert await b.expect("broadcast") == ["hello all"]
        for c in (a, b):
            await c.round_trip()
            assert c.count("broadcast") == 0


@with_transports
@async_test()
async def test_broadcast_stays_in_its_namespace(transports):
    async with serve() as srv, clients(2, transports) as (a, b):
        await a.connect(srv, namespaces=["/", "/test"])
        await b.connect(srv, namespaces=["/test"])
        await a.sio.emit("broadcast", "only root")
        assert await a.expect("broadcast", "/") == ["only root"]
        await a.round_trip("/test")
        await b.round_trip("/test")
        assert a.count("broadcast", "/test") == 0
        assert b.count("broadcast", "/test") == 0


# ---------------------------------------------------------------------------
# Server-side disconnect
# ---------------------------------------------------------------------------


@with_transports
@async_test()
async def test_disconnect_in_a_handler_disconnects_the_client(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        await c.connect(srv)
        sid = c.sio.get_sid("/")
        await c.sio.emit("kick")
        assert await c.expect("disconnect") == [socketio.AsyncClient.reason.SERVER_DISCONNECT]
        await until(lambda: any(s == sid for _, s, _ in srv.seen.disconnects), WAIT, "server disconnect handler")


@with_transports
@async_test()
async def test_server_disconnect_by_sid_disconnects_the_client(transports):
    async with serve() as srv, clients(1, transports) as (c,):
        await c.connect(srv, namespaces=["/", "/test"])
        sid = c.sio.get_sid("/test")
        srv.socketio.disconnect(sid, namespace="/test")
        assert await c.expect("disconnect", "/test") == [socketio.AsyncClient.reason.SERVER_DISCONNECT]
        # the other namespace on the same connection keeps working
        await c.round_trip("/")
        assert c.sio.connected


# ---------------------------------------------------------------------------
# Heartbeat
# ---------------------------------------------------------------------------


@with_transports
@async_test()
async def test_handshake_keeps_sub_second_ping_settings_exact(transports):
    async with serve(ping_interval=0.2, ping_timeout=0.4) as srv, clients(1, transports) as (c,):
        await c.connect(srv)
        assert (c.sio.eio.ping_interval, c.sio.eio.ping_timeout) == (0.2, 0.4)


@with_transports
@async_test()
async def test_heartbeat_keeps_an_idle_connection_alive_past_two_ping_intervals(transports):
    async with serve(ping_interval=0.2, ping_timeout=0.4) as srv, clients(1, transports) as (c,):
        await c.connect(srv)
        await asyncio.sleep(1.0)  # idle: five ping intervals, more than interval + timeout
        assert c.count("disconnect") == 0
        await c.round_trip()
        assert c.sio.connected
        assert len(srv.socketio.engine.sessions) == 1
