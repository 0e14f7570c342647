"""``SocketIO(serializer='msgpack')`` with the real msgpack clients.

* node's ``socket.io-client`` 4.x with ``parser: require('socket.io-msgpack-parser')``
  (``tests/node/client.js`` with ``opts {"parser": "msgpack"}``), over
  websocket, polling and the upgrade;
* python-socketio's ``AsyncClient(serializer='msgpack')``, over websocket and polling;
* tornado-sio's own test client and raw Engine.IO clients, for what a real
  client never sends (hostile input) and what a server without the JSON
  parser does not serve (SockJS).

The server is the demo app of ``tests/apps.py`` (``echo``, ``join``, ``ask``,
``ask cb``, ``broadcast``, ``kick`` in ``/`` and ``/test``), run in-process.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
from typing import Any, Dict, List, Optional

import pytest

msgpack = pytest.importorskip("msgpack", reason="msgpack not found: pip install -e '.[test,msgpack]'")

from tests import support
from tests.apps import BAD_AUTH, REFUSAL, async_test, close_client, serve, until, with_transports
from tests.nodeclient import NodeClient
from tests.rawclient import RawPolling, RawWebSocket
from tests.test_interop_node_client import session
from tornado_sio import SocketIO, emit

WAIT = 10.0  # bound on any single wait; never a timing assertion
BLOB = {"a": b"\x00\x01\x02", "list": [b"xyz", {"deep": bytes(range(256))}], "text": "t"}


# ---------------------------------------------------------------------------
# node socket.io-client + socket.io-msgpack-parser
# ---------------------------------------------------------------------------


class NodeSession:
    """A msgpack demo server and a node driver whose clients use socket.io-msgpack-parser."""

    def __init__(self, transports: Optional[List[str]]) -> None:
        self.transports = transports
        self.ref = 0

    async def __aenter__(self) -> NodeSession:
        support.need_node_module("socket.io-msgpack-parser")
        self._serve = serve(serializer="msgpack")
        self.server = await self._serve.__aenter__()
        self._node = NodeClient(default_timeout=WAIT)
        try:
            self.node = await self._node.__aenter__()
        except BaseException as exc:
            await self._serve.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self._node.__aexit__(*exc)
        finally:
            await self._serve.__aexit__(*exc)

    async def open(self, cid: str, namespace: str = "/", **opts: Any) -> None:
        """Send the connect command for *cid* (subscribed to every event)."""
        await self.node.send({"op": "on", "id": cid, "event": "*"})
        opts["parser"] = "msgpack"
        if self.transports is not None:
            opts["transports"] = self.transports
        await self.node.send({"op": "connect", "id": cid, "url": self.server.url + namespace, "opts": opts})

    async def connect(self, cid: str, namespace: str = "/", **opts: Any) -> Dict[str, Any]:
        await self.open(cid, namespace, **opts)
        return await self.node.expect(id=cid, type="connect")

    async def call(self, cid: str, event: str, *args: Any) -> List[Any]:
        self.ref += 1
        ref = f"r{self.ref}"
        await self.node.send({"op": "emit", "id": cid, "event": event, "args": list(args), "ack": True, "ref": ref})
        return (await self.node.expect(type="ack", id=cid, ref=ref))["args"]

    async def event(self, cid: str, event: str) -> List[Any]:
        return (await self.node.expect(type="event", id=cid, event=event))["args"]


@with_transports
@async_test()
async def test_node_msgpack_client_connects_without_auth_on_each_transport(transports):
    async with NodeSession(transports) as n:
        connected = await n.connect("c1")  # its CONNECT carries notepack's `undefined` as data
        if transports is None:
            assert (await n.node.expect(type="upgrade", id="c1"))["transport"] == "websocket"
        else:
            assert connected["transport"] == transports[0]
        assert n.server.seen.connects == [("/", connected["sid"], None)]


@with_transports
@async_test()
async def test_node_msgpack_client_binary_event_is_echoed_and_acked(transports):
    async with NodeSession(transports) as n:
        await n.connect("c1")
        assert await n.call("c1", "echo", BLOB, b"\xff", 1.5) == [BLOB, b"\xff", 1.5]
        assert await n.event("c1", "echo") == [BLOB, b"\xff", 1.5]


@with_transports
@async_test()
async def test_node_msgpack_client_answers_a_server_call(transports):
    async with NodeSession(transports) as n:
        await n.node.send({"op": "answer", "id": "c1", "event": "question", "reply": [{"bin": b"\x01"}, 2]})
        await n.connect("c1")
        await n.node.send({"op": "emit", "id": "c1", "event": "ask cb", "args": [b"q"]})
        assert await n.event("c1", "question") == [b"q"]
        assert await n.event("c1", "answer") == [{"bin": b"\x01"}, 2]


@with_transports
@async_test()
async def test_node_msgpack_client_gets_auth_refusal_in_a_namespace(transports):
    async with NodeSession(transports) as n:
        await n.open("c1", "/test", auth=BAD_AUTH)
        refusal = await n.node.expect(type="connect_error", id="c1")
        assert (refusal["message"], refusal["data"]) == REFUSAL


@with_transports
@async_test()
async def test_node_msgpack_clients_in_a_namespace_get_a_broadcast_and_a_kick(transports):
    async with NodeSession(transports) as n:
        await n.connect("a", "/test", auth={"user": "a"})
        await n.connect("b", "/test", auth={"user": "b"})
        await n.node.send({"op": "emit", "id": "a", "event": "broadcast", "args": [[b"\x02", "x"]]})
        assert await n.event("a", "broadcast") == [[b"\x02", "x"]]
        assert await n.event("b", "broadcast") == [[b"\x02", "x"]]
        await n.node.send({"op": "emit", "id": "b", "event": "kick", "args": []})
        assert (await n.node.expect(type="disconnect", id="b"))["reason"] == "io server disconnect"


# ---------------------------------------------------------------------------
# python-socketio AsyncClient(serializer='msgpack')
# ---------------------------------------------------------------------------

pytest.importorskip("socketio", reason="python-socketio not found: pip install -e '.[test]'")
import socketio

python_transports = pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])


class PythonClient:
    """``socketio.AsyncClient(serializer='msgpack')`` queueing what it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False, serializer="msgpack")
        self.events: List[tuple] = []
        self.disconnects: List[str] = []

        @self.sio.on("*", namespace="*")
        def any_event(event: str, namespace: str, *args: Any) -> Any:
            self.events.append((namespace, event, list(args)))
            if event == "question":
                return {"answer": args[0]}, b"\x09"
            return None

        @self.sio.on("disconnect", namespace="*")
        def on_disconnect(namespace: str, *reason: Any) -> None:
            self.disconnects.append(namespace)

    async def got(self, event: str, namespace: str = "/") -> List[Any]:
        await until(lambda: any(e[:2] == (namespace, event) for e in self.events), WAIT, f"{event} in {namespace}")
        return next(e[2] for e in self.events if e[:2] == (namespace, event))


@python_transports
@async_test()
async def test_python_msgpack_client_acks_binary_in_two_namespaces(transports):
    async with serve(serializer="msgpack") as server:
        client = PythonClient()
        try:
            await client.sio.connect(server.url, namespaces=["/", "/test"], transports=transports,
                                     auth={"user": "ann"}, wait_timeout=WAIT)
            for namespace in ("/", "/test"):
                answer = await client.sio.call("echo", (BLOB, b"\xfe"), namespace=namespace, timeout=WAIT)
                assert answer == (BLOB, b"\xfe")
                assert await client.got("echo", namespace) == [BLOB, b"\xfe"]
            assert sorted(ns for ns, _, auth in server.seen.connects if auth == {"user": "ann"}) == ["/", "/test"]
        finally:
            await close_client(client.sio)


@python_transports
@async_test()
async def test_python_msgpack_client_answers_a_server_call_with_binary(transports):
    async with serve(serializer="msgpack") as server:
        client = PythonClient()
        try:
            await client.sio.connect(server.url, transports=transports, wait_timeout=WAIT)
            await client.sio.emit("ask", b"why")
            assert await client.got("answer") == [{"answer": b"why"}, b"\x09"]
        finally:
            await close_client(client.sio)


@async_test()
async def test_python_msgpack_client_is_disconnected_by_the_server():
    async with serve(serializer="msgpack") as server:
        client = PythonClient()
        try:
            await client.sio.connect(server.url, transports=["websocket"], wait_timeout=WAIT)
            await client.sio.emit("kick")
            await until(lambda: client.disconnects == ["/"], WAIT, "disconnect")
        finally:
            await close_client(client.sio)


# ---------------------------------------------------------------------------
# What a real client never sends; what is not served
# ---------------------------------------------------------------------------


def mp(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


async def raw_msgpack_client(url: str) -> RawWebSocket:
    raw = await RawWebSocket.open(url)
    await raw.send(mp({"type": 0, "nsp": "/"}))
    reply = msgpack.unpackb(await raw.recv())
    assert reply["type"] == 0 and "sid" in reply["data"], reply
    return raw


@pytest.mark.parametrize("hostile,reason", [
    (mp({"type": 2, "nsp": "/", "data": ["e", msgpack.ExtType(5, b"x")]}), "parse error"),
    (mp({"type": 2, "nsp": "/", "data": [7, "not a name"]}), "parse error"),
    (mp({"type": 2, "nsp": "/", "data": ["e", {1: "int key"}]}), "parse error"),
    (b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e" + b"\x91" * 40 + b"\xc0", "parse error"),
    (b"\xc1 not msgpack", "parse error"),
    ('42["a json client"]', "parse error"),
    (mp({"type": 2, "nsp": "/", "data": ["e", b"x" * 2000]}), "transport error"),
], ids=["extension type", "event name not a string", "int map key", "too deep", "garbage", "text", "too large"])
@async_test()
async def test_hostile_input_closes_that_client_once_logged_and_others_go_on(hostile, reason, caplog):
    caplog.set_level(logging.INFO, logger="tornado_sio")
    async with serve(serializer="msgpack", max_http_buffer_size=1000) as server:
        bystander = PythonClient()
        try:
            await bystander.sio.connect(server.url, transports=["websocket"], wait_timeout=WAIT)
            raw = await raw_msgpack_client(server.url)
            await raw.send(hostile)
            assert await raw.closed(WAIT)
            await until(lambda: len(server.seen.disconnects) == 1, WAIT, "the disconnect handler")
            assert server.seen.disconnects[0][2] == reason
            if reason == "parse error":
                lines = [r.getMessage() for r in caplog.records if "invalid Socket.IO packet" in r.getMessage()]
                assert len(lines) == 1, lines
            assert await bystander.sio.call("echo", "still here", timeout=WAIT) == "still here"
        finally:
            await close_client(bystander.sio)


@async_test()
async def test_binary_over_a_raw_polling_post_is_a_base64_record():
    async with serve(serializer="msgpack") as server:
        raw = await RawPolling(server.url).open()

        def record(obj: Any) -> str:
            return "b" + base64.b64encode(mp(obj)).decode("ascii")

        assert (await raw.post(record({"type": 0, "nsp": "/"}))).code == 200
        reply = (await raw.get())[0]
        assert reply.startswith("b") and msgpack.unpackb(base64.b64decode(reply[1:]))["type"] == 0
        await raw.post(record({"type": 2, "nsp": "/", "data": ["echo", b"\x01"], "id": 5}))
        packets = [msgpack.unpackb(base64.b64decode(p[1:])) for p in await raw.get() if p.startswith("b")]
        while len(packets) < 2:
            packets += [msgpack.unpackb(base64.b64decode(p[1:])) for p in await raw.get() if p.startswith("b")]
        assert {"type": 2, "nsp": "/", "data": ["echo", b"\x01"]} in packets
        assert {"type": 3, "nsp": "/", "data": [b"\x01"], "id": 5} in packets


@async_test()
async def test_sockjs_is_not_served_by_a_msgpack_server():
    async with serve(serializer="msgpack") as server:
        response = await RawPolling(server.url, path="/sockjs/info").request()
        assert response.code == 404


def test_the_test_client_speaks_msgpack_with_a_msgpack_server():
    socketio = SocketIO(serializer="msgpack")

    @socketio.on("echo")
    def echo(data):
        emit("echo", data)
        return data

    client = socketio.test_client()
    assert client.emit("echo", {"b": b"\x01"}, callback=True) == {"b": b"\x01"}
    assert client.get_received() == [{"name": "echo", "args": [{"b": b"\x01"}], "namespace": "/"}]


def test_on_any_outgoing_hears_msgpack_events_with_their_bytes():
    socketio = SocketIO(serializer="msgpack")
    heard = []
    socketio.on_any_outgoing(lambda sid, event, *args: heard.append((event, args)))

    @socketio.on("echo")
    def echo(data):
        emit("echo", data, b"\x02")

    client = socketio.test_client()
    client.emit("echo", b"\x01")
    assert heard == [("echo", (b"\x01", b"\x02"))]


def test_serializer_msgpack_without_the_package_is_an_error_at_start():
    code = ("import sys; sys.modules['msgpack'] = None\n"
            "from tornado_sio import SocketIO\n"
            "try:\n    SocketIO(serializer='msgpack')\n"
            "except ImportError as exc:\n    print('refused:', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(support.ROOT), capture_output=True, text=True,
                         timeout=60)
    assert "refused: serializer='msgpack' needs the msgpack package" in out.stdout, out.stderr


async def refused_connect(url: str, serializer: str, caplog: Any) -> List[str]:
    """Connect a python-socketio client speaking *serializer*; it must fail. The server's log lines."""
    caplog.set_level(logging.INFO, logger="tornado_sio.server")
    client = socketio.AsyncClient(reconnection=False, serializer=serializer)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(url, transports=["websocket"], wait_timeout=2)
        await until(lambda: any("invalid Socket.IO packet" in r.getMessage() for r in caplog.records), WAIT,
                    "the server's log line")
    finally:
        await close_client(client)
    return [r.getMessage() for r in caplog.records if "invalid Socket.IO packet" in r.getMessage()]


@async_test()
async def test_a_json_client_is_closed_by_a_msgpack_server(caplog):
    async with serve(serializer="msgpack") as server:
        (line,) = await refused_connect(server.url, "default", caplog)
        assert "text message on a msgpack connection" in line


@async_test()
async def test_a_msgpack_client_is_closed_by_a_json_server(caplog):
    async with serve() as server:
        (line,) = await refused_connect(server.url, "msgpack", caplog)
        assert "binary data received while no binary packet was pending" in line


# ---------------------------------------------------------------------------
# Connection state recovery: the offset rides in msgpack too
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
@async_test(timeout=40)
async def test_node_msgpack_client_recovers_the_packets_it_missed(transports):
    support.need_node_module("socket.io-msgpack-parser")
    reconnect = {"reconnection": True, "reconnectionDelay": 300, "reconnectionDelayMax": 300,
                 "randomizationFactor": 0, "parser": "msgpack"}
    async with session(transports, serializer="msgpack",
                       connection_state_recovery={"max_disconnection_duration": 30}) as n:
        first = await n.connect("c1", events=("n",), **reconnect)
        assert await n.call("c1", "join", "r") == ["joined"]
        n.server.socketio.emit("n", b"\x00", to="r")
        assert (await n.expect_event("c1", "n"))[0] == b"\x00"  # the client now holds an offset
        await n.node.send({"op": "close_engine", "id": "c1"})
        for i in range(1, 6):
            n.server.socketio.emit("n", bytes([i]), to="r")
        again = await n.node.expect(type="connect", id="c1")
        assert (again["sid"], again["recovered"]) == (first["sid"], True)
        received = [(await n.expect_event("c1", "n"))[0] for _ in range(5)]
        assert received == [bytes([i]) for i in range(1, 6)]
