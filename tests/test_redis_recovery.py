"""Connection state recovery across processes (issue #13), over Redis Streams.

Three tornado-sio processes (``tests/redis_app.py --recovery``) share one throwaway
``redis-server``; the client is node's official ``socket.io-client`` 4.8 with its
``connectionStateRecovery`` (on by default since 4.6), over WebSocket through a
small TCP switch standing for a load balancer, so that a reconnect can land on
ANOTHER process. Events are emitted from a third process by a python-socketio
client. Hostile clients present forged, foreign or stale ``pid``/``offset`` pairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")

from tests.apps import async_test
from tests.nodeclient import NodeClient
from tests.rawclient import RawWebSocket
from tests.redis_support import AppProcess, Client, close_all, connect_all, redis_server, running

pytestmark = pytest.mark.timeout(90)

MAX_PACKETS = 50
STREAM_MAXLEN = 500
#: The child servers: Streams (chosen by recovery), recovery for 30 s, bounded replay.
FLAGS = ("--recovery", "30", "--max-packets", str(MAX_PACKETS), "--stream-maxlen", str(STREAM_MAXLEN),
         "--plugin", "tests.test_redis_streams_app")
#: The client reconnects by itself, after the server has seen the old transport go.
RECONNECT = {"transports": ["websocket"], "reconnection": True, "reconnectionDelay": 300,
             "reconnectionDelayMax": 300, "randomizationFactor": 0}


@pytest.fixture(scope="module")
def cluster():
    """(redis, [p0, p1, p2]): three servers with connection state recovery over Redis Streams."""
    with redis_server() as redis:
        with running([AppProcess(redis.url, *FLAGS).spawn() for _ in range(3)]) as procs:
            yield redis, procs


class Switch:
    """A TCP proxy standing for a load balancer: each new connection goes to the port
    :attr:`target` names now; :meth:`cut` drops every open one at once (the client's
    transport is killed: both sides see the TCP connection go)."""

    def __init__(self, target: int) -> None:
        self.target = target
        #: New connections wait while it is clear (:meth:`hold`), as behind a draining balancer.
        self.gate = asyncio.Event()
        self.gate.set()
        self.port = 0
        self.server: asyncio.AbstractServer | None = None
        self.open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    async def __aenter__(self) -> Switch:
        self.server = await asyncio.start_server(self.accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.cut()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.gate.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        pair = (writer, up_writer)
        self.open.add(pair)
        try:
            await asyncio.gather(self.pipe(reader, up_writer), self.pipe(up_reader, writer))
        finally:
            self.open.discard(pair)

    @staticmethod
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        writer.close()

    def hold(self) -> None:
        """New connections wait (the client's reconnect waits) until :meth:`release`."""
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def cut(self) -> None:
        for pair in list(self.open):
            for writer in pair:
                writer.transport.abort()
        self.open.clear()


class Node:
    """node's socket.io-client through :class:`~tests.nodeclient.NodeClient`: small verbs."""

    def __init__(self, node: NodeClient) -> None:
        self.node = node
        self.refs = itertools.count(1)

    async def connect(self, cid: str, url: str, **opts: Any) -> dict[str, Any]:
        await self.node.send({"op": "on", "id": cid, "event": "n"})
        await self.node.send({"op": "connect", "id": cid, "url": url, "opts": {"transports": ["websocket"], **opts}})
        return await self.node.expect(id=cid, type="connect")

    async def call(self, cid: str, event: str, *args: Any) -> Any:
        ref = f"r{next(self.refs)}"
        await self.node.send({"op": "emit", "id": cid, "event": event, "args": list(args), "ack": True, "ref": ref})
        answer = (await self.node.expect(type="ack", id=cid, ref=ref))["args"]
        return answer[0] if len(answer) == 1 else answer

    def values(self, cid: str) -> list[Any]:
        """The ``n`` events *cid* received so far, in order: their first argument (consumed).
        Each one's last argument is its offset, a stream entry id, increasing."""
        out, offsets = [], []
        while (msg := self.node.pop(type="event", id=cid, event="n")) is not None:
            out.append(msg["args"][0])
            offsets.append(msg["args"][-1])
        ids = [tuple(int(part) for part in offset.split("-")) for offset in offsets]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), offsets
        return out

    async def last_offset(self, cid: str, value: Any, timeout: float = 10.0) -> str:
        """Wait (bounded) until ``n value`` has arrived and return its offset (all stay queued)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for msg in self.node.queued(type="event", id=cid, event="n"):
                if msg["args"][0] == value:
                    return str(msg["args"][-1])
            if loop.time() > deadline:
                raise AssertionError(f"{cid} did not get n {value}; got {self.node.queued(id=cid)}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def scene(procs: list[AppProcess]):
    """(node client driver, python-socketio emitter connected to p2)."""
    async with NodeClient() as node:
        (emitter,) = await connect_all([(procs[2], ["/"])])
        try:
            yield Node(node), emitter
        finally:
            await close_all([emitter])


async def kept(redis_url: str, sid: str, timeout: float = 10.0) -> dict[str, Any]:
    """Wait (bounded) until some process has kept the session of *sid* in Redis; return it.

    A client reconnects on its own schedule; the test lets it through once the
    server that lost it has written its state, so no timing decides the outcome."""
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(redis_url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async for key in client.scan_iter(match="tornado-sio:session:*"):
                raw = await client.get(key)
                if raw is not None and json.loads(raw)["sid"] == sid:
                    return dict(json.loads(raw))
            assert asyncio.get_running_loop().time() < deadline, f"no session kept for {sid}"
            await asyncio.sleep(0.02)
    finally:
        await client.aclose()


def emit_from_outside(redis_url: str, values: range, room: str = "r") -> None:
    """Emit ``n <value>`` to *room* with the synchronous :class:`~tornado_sio.emitter.Emitter` (a script)."""
    from tornado_sio.emitter import Emitter

    with Emitter(redis_url, stream="tornado-sio") as emitter:
        for value in values:
            emitter.emit("n", value, to=room)


async def send_n(emitter: Client, values: range, room: str = "r") -> None:
    """Emit ``n <value>`` to *room* from the emitter's process, one after another."""
    for value in values:
        assert await emitter.ask("to room", room, "n", value) == "ok"


async def joined(n: Node, emitter: Client, cid: str, url: str, room: str = "r") -> dict[str, Any]:
    """Connect *cid*, join *room*, set data, and receive ``n 0`` (it now holds an offset)."""
    first = await n.connect(cid, url, **RECONNECT)
    assert first["recovered"] is False
    assert await n.call(cid, "join", room) == "joined"
    assert await n.call(cid, "set data", "color", "red") == "ok"
    await send_n(emitter, range(1), room)
    await n.last_offset(cid, 0)
    assert n.values(cid) == [0]
    return first


async def whereabouts(n: Node, emitter: Client, cid: str, sid: str) -> dict[str, Any]:
    """Where *cid* is now (port), its rooms, and its data as fetch_sockets sees it from p2."""
    me = await n.call(cid, "whoami")
    (found,) = await emitter.ask("fetch", [sid])
    return {"port": me["port"], "sid": me["sid"], "rooms": found["rooms"], "data": found["data"]}


# ---------------------------------------------------------------- recovered


@async_test(60)
async def test_reconnect_to_another_process_recovers_sid_rooms_data_and_every_missed_packet_once(cluster):
    redis, (p0, p1, p2) = cluster
    async with Switch(p0.port) as switch, scene([p0, p1, p2]) as (n, emitter):
        first = await joined(n, emitter, "c1", switch.url)
        assert (await n.call("c1", "whoami"))["port"] == p0.port
        await send_n(emitter, range(1, 6))
        switch.target = p1.port  # the load balancer sends the reconnect elsewhere
        switch.hold()
        switch.cut()
        await send_n(emitter, range(6, 41))
        await kept(redis.url, first["sid"])
        switch.release()
        again = await n.node.expect(type="connect", id="c1")
        assert (again["sid"], again["recovered"]) == (first["sid"], True)
        await send_n(emitter, range(41, 42))
        await n.last_offset("c1", 41)
        assert n.values("c1") == list(range(1, 42))
        where = await whereabouts(n, emitter, "c1", first["sid"])
        assert where["port"] == p1.port and where["sid"] == first["sid"]
        assert sorted(where["rooms"]) == sorted(["r", first["sid"]])
        assert where["data"]["color"] == "red"


@async_test(60)
async def test_killed_client_transport_is_recovered_with_every_missed_packet_once(cluster):
    redis, procs = cluster
    async with Switch(procs[0].port) as switch, scene(procs) as (n, emitter):
        first = await joined(n, emitter, "c1", switch.url)
        await send_n(emitter, range(1, 4))
        switch.hold()
        await n.node.send({"op": "close_engine", "id": "c1"})
        await send_n(emitter, range(4, 21))
        await asyncio.to_thread(emit_from_outside, redis.url, range(21, 31))  # replayed too
        await kept(redis.url, first["sid"])
        switch.release()
        again = await n.node.expect(type="connect", id="c1")
        assert (again["sid"], again["recovered"]) == (first["sid"], True)
        await send_n(emitter, range(31, 32))
        await n.last_offset("c1", 31)
        assert n.values("c1") == list(range(1, 32))


@async_test(60)
async def test_server_side_transport_close_is_recovered_on_another_process(cluster):
    redis, (p0, p1, p2) = cluster
    async with Switch(p1.port) as switch, scene([p0, p1, p2]) as (n, emitter):
        first = await joined(n, emitter, "c1", switch.url)
        switch.target = p0.port
        switch.hold()
        assert await n.call("c1", "close my transport") == "closing"
        await send_n(emitter, range(1, 21))
        await kept(redis.url, first["sid"])
        switch.release()
        again = await n.node.expect(type="connect", id="c1")
        assert (again["sid"], again["recovered"]) == (first["sid"], True)
        await send_n(emitter, range(21, 22))
        await n.last_offset("c1", 21)
        assert n.values("c1") == list(range(1, 22))
        assert (await n.call("c1", "whoami"))["port"] == p0.port


@async_test(60)
async def test_a_server_shutting_down_hands_its_clients_to_another_process(cluster):
    redis, (p0, p1, p2) = cluster
    leaving = AppProcess(redis.url, *FLAGS).spawn().wait_ready()  # a rolling restart takes it away
    try:
        async with Switch(leaving.port) as switch, scene([p0, p1, p2]) as (n, emitter):
            first = await joined(n, emitter, "c1", switch.url)
            switch.target = p1.port
            switch.hold()
            await asyncio.to_thread(leaving.stop)  # SIGTERM: sessions are kept before the link closes
            await send_n(emitter, range(1, 11))
            await kept(redis.url, first["sid"])
            switch.release()
            again = await n.node.expect(type="connect", id="c1")
            assert (again["sid"], again["recovered"]) == (first["sid"], True)
            await send_n(emitter, range(11, 12))
            await n.last_offset("c1", 11)
            assert n.values("c1") == list(range(1, 12))
            assert (await n.call("c1", "whoami"))["port"] == p1.port
    finally:
        leaving.stop()


@async_test(60)
async def test_client_disconnect_is_not_recovered_anywhere(cluster):
    _, (p0, p1, p2) = cluster
    async with Switch(p0.port) as switch, scene([p0, p1, p2]) as (n, emitter):
        first = await joined(n, emitter, "c1", switch.url)
        await n.node.send({"op": "disconnect", "id": "c1"})
        await n.node.expect(type="disconnect", id="c1")
        switch.target = p1.port
        await send_n(emitter, range(1, 3))
        await n.node.send({"op": "reconnect", "id": "c1"})  # presents the old pid and offset
        again = await n.node.expect(type="connect", id="c1")
        assert again["recovered"] is False and again["sid"] != first["sid"]
        await send_n(emitter, range(3, 4))  # not in the room any more
        assert await n.call("c1", "whoami")
        assert n.values("c1") == []


# ---------------------------------------------------------------- hostile input


async def raw_session(redis_url: str, proc: AppProcess, emitter: Client,
                      room: str = "r") -> tuple[dict[str, Any], str]:
    """A raw client on *proc* joins *room*, gets ``n 0`` (its offset), and loses its transport:
    ``({sid, pid}, offset)`` of a session kept in Redis."""
    ws = await RawWebSocket.open(proc.url)
    reply = await ws.connect()
    assert reply.startswith("40"), reply
    hello = json.loads(reply[2:])
    await ws.emit("join", room, ack=1)
    while True:  # the ack of "join"
        frame = await ws.recv(timeout=10)
        assert frame is not None
        if isinstance(frame, str) and frame.startswith("431"):
            break
    await send_n(emitter, range(1), room)
    event = await ws.recv_event(timeout=10)
    assert event[:2] == ["n", 0]
    ws.close()
    await kept(redis_url, hello["sid"])  # the server saw the transport go and kept the session
    return hello, event[-1]


async def present(n: Node, cid: str, url: str, pid: Any, offset: Any) -> dict[str, Any]:
    """A node client whose first CONNECT carries *pid* and *offset* (as a recovering one's does)."""
    return await n.connect(cid, url, auth={"pid": pid, "offset": offset})


@async_test(60)
async def test_a_forged_pid_or_offset_is_a_fresh_connection(cluster):
    redis, procs = cluster
    async with scene(procs) as (n, emitter):
        kept, offset = await raw_session(redis.url, procs[0], emitter)
        for i, (pid, forged) in enumerate([("no-such-pid", offset), (kept["pid"], "abc"),
                                           (kept["pid"], "1-0;DEL x"), (kept["pid"], "9" * 200)]):
            got = await present(n, f"f{i}", procs[1].url, pid, forged)
            assert got["sid"] != kept["sid"]
        # the malformed offsets never reached Redis: the session is still there, once
        got = await present(n, "owner", procs[1].url, kept["pid"], offset)
        assert got["sid"] == kept["sid"]


@async_test(60)
async def test_an_offset_not_in_the_stream_costs_the_session(cluster):
    redis, procs = cluster
    async with scene(procs) as (n, emitter):
        kept, offset = await raw_session(redis.url, procs[0], emitter)
        got = await present(n, "f", procs[1].url, kept["pid"], "99999999999999-0")
        assert got["sid"] != kept["sid"]
        again = await present(n, "g", procs[2].url, kept["pid"], offset)  # taken once, like a password tried
        assert again["sid"] != kept["sid"]


@async_test(60)
async def test_the_pid_of_a_connected_client_takes_nothing_over(cluster):
    _, procs = cluster
    async with scene(procs) as (n, emitter):
        owner = await RawWebSocket.open(procs[0].url)  # a raw client knows its own pid
        reply = json.loads((await owner.connect())[2:])
        await owner.emit("join", "r")
        await send_n(emitter, range(1))
        offset = (await owner.recv_event(timeout=10))[-1]
        thief = await present(n, "thief", procs[1].url, reply["pid"], offset)
        assert thief["sid"] != reply["sid"] and thief["recovered"] is False
        await send_n(emitter, range(1, 2))  # the owner is undisturbed, still in its room
        assert (await owner.recv_event(timeout=10))[:2] == ["n", 1]
        owner.close()


@async_test(60)
async def test_a_session_is_restored_only_once_across_processes(cluster):
    redis, procs = cluster
    async with scene(procs) as (n, emitter):
        kept, offset = await raw_session(redis.url, procs[0], emitter)
        await send_n(emitter, range(1, 4))
        first = await present(n, "a", procs[1].url, kept["pid"], offset)
        assert first["sid"] == kept["sid"]
        await n.last_offset("a", 3)
        assert n.values("a") == [1, 2, 3]
        second = await present(n, "b", procs[2].url, kept["pid"], offset)
        assert second["sid"] != kept["sid"]
        assert n.values("b") == []


@async_test(60)
async def test_more_missed_packets_than_max_packets_is_a_fresh_connection(cluster):
    redis, procs = cluster
    async with scene(procs) as (n, emitter):
        kept, offset = await raw_session(redis.url, procs[0], emitter, room="busy")
        assert await emitter.ask("emit many", "busy", "n", MAX_PACKETS + 10) == "ok"  # on Redis
        got = await present(n, "late", procs[1].url, kept["pid"], offset)
        assert got["sid"] != kept["sid"]
        assert await n.call("late", "whoami")
        assert n.values("late") == []  # nothing replayed, not even a part


@async_test(60)
async def test_an_offset_trimmed_from_the_stream_is_a_fresh_connection(cluster):
    redis, procs = cluster
    async with scene(procs) as (n, emitter):
        kept, offset = await raw_session(redis.url, procs[0], emitter, room="quiet")
        assert await emitter.ask("emit many", "elsewhere", "n", STREAM_MAXLEN * 3) == "ok"  # trimmed past it
        got = await present(n, "late", procs[1].url, kept["pid"], offset)
        assert got["sid"] != kept["sid"]


# ---------------------------------------------------------------- refused at start-up


@pytest.mark.parametrize("options, why", [
    ({"transport": "pubsub"}, "needs the Redis Streams transport"),
    ({"format": "python-socketio"}, "native message queue format"),
    ({"node_emitter_key": "socket.io"}, "node_emitter_key"),
    ({"transport": "kafka"}, "must be one of"),
    ({"stream_maxlen": 0}, "at least 1"),
])
def test_recovery_with_a_message_queue_that_cannot_keep_it_is_refused_when_built(options, why):
    from tornado_sio import SocketIO

    with pytest.raises(ValueError, match=why):
        SocketIO(message_queue="redis://127.0.0.1:1/0", connection_state_recovery=True, message_queue_options=options)


def test_stream_options_without_the_streams_transport_are_refused():
    from tornado_sio import SocketIO

    with pytest.raises(ValueError, match="transport='streams' only"):
        SocketIO(message_queue="redis://127.0.0.1:1/0", message_queue_options={"stream_maxlen": 100})


def test_recovery_with_a_message_queue_chooses_streams_by_itself():
    from tornado_sio import SocketIO
    from tornado_sio.adapter.redis.streams import StreamLink

    socketio = SocketIO(message_queue="redis://127.0.0.1:1/0", connection_state_recovery=True)
    assert isinstance(socketio.adapter.link, StreamLink)
    assert socketio.adapter.link.stream.session_key_prefix == "tornado-sio:session:"
