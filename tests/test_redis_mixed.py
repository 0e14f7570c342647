"""A mixed cluster: Node socket.io servers and tornado-sio servers behind one Redis.

Two Node socket.io 4.8 servers on ``@socket.io/redis-adapter`` 8
(``tests/node/cluster_server.js``, driven over stdin) and two tornado-sio
servers in Node's format (``tests/redis_app.py --format node``) share a
throwaway ``redis-server``. Official clients sit on both sides (python-socketio's
``AsyncClient`` everywhere, node's ``socket.io-client`` too), and every operation
of Node's server API is made from each side for clients of both: each message
arrives exactly once, every request is answered by every server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import subprocess
import threading
from typing import Any, Iterator

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")
support.need_python_module("msgpack")

from tests.apps import async_test
from tests.nodeclient import NodeClient, from_wire, to_wire
from tests.redis_support import WAIT, AppProcess, Client, close_all, connect_all, redis_server, settle

pytestmark = pytest.mark.timeout(90)

SERVER_JS = support.ROOT / "tests" / "node" / "cluster_server.js"


class NodeServer:
    """``node tests/node/cluster_server.js PORT REDIS_URL``: a Node socket.io server on Redis.

    A thread reads its stdout lines into a queue, so it can be driven from any
    test's event loop; :meth:`run` sends one command and waits (bounded) for its result.
    """

    def __init__(self, redis_url: str) -> None:
        modules = support.need_node_module("@socket.io/redis-adapter")
        support.need_node_module("socket.io")
        node = support.need("node", support.NODE_HINT)
        self.port = support.free_port()
        self.proc = subprocess.Popen([node, str(SERVER_JS), str(self.port), redis_url], cwd=str(support.ROOT),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, "TORNADO_SIO_NODE_CACHE": str(modules.parent)})
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.held: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.refs = iter(range(1, 1_000_000))
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.lines.put(from_wire(json.loads(line)))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode("utf-8", "replace").rstrip())

    def take(self, timeout: float = WAIT, **wanted: Any) -> dict[str, Any]:
        """The first line whose fields equal *wanted* (blocking, bounded); the others are kept."""
        for i, line in enumerate(self.held):
            if all(line.get(k) == v for k, v in wanted.items()):
                return self.held.pop(i)
        try:
            while True:
                line = self.lines.get(timeout=timeout)
                if all(line.get(k) == v for k, v in wanted.items()):
                    return line
                self.held.append(line)
        except queue.Empty:
            raise AssertionError(f"node server {self.port}: nothing like {wanted}; stderr: {self.stderr[-10:]}") from None

    async def expect(self, **wanted: Any) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: self.take(**wanted))

    async def run(self, op: str, **fields: Any) -> Any:
        """Send one command; return its value, or raise AssertionError with its error."""
        ref = next(self.refs)
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(to_wire({"op": op, "ref": ref, **fields})) + "\n").encode())
        self.proc.stdin.flush()
        result = await self.expect(type="result", ref=ref)
        if "error" in result:
            raise NodeError(result["error"])
        return from_wire(result.get("value"))

    def stop(self) -> None:
        support.stop_process(self.proc)


class NodeError(AssertionError):
    """A Node server's command failed (its message is the error's)."""


#: Bound on a server's start: a loaded CI machine (and Flask's imports) can take longer than WAIT.
START_WAIT = 40.0


def started(proc: AppProcess) -> AppProcess:
    """Wait (bounded by START_WAIT) until *proc* listens; fail with its output if it does not."""
    return proc.wait_ready(START_WAIT)


@contextlib.contextmanager
def beside_node(redis_url: str, *tornado_args: str) -> Iterator[tuple[NodeServer, AppProcess]]:
    """(node, tornado): one Node server and one tornado-sio server (*tornado_args*) on
    *redis_url*, both ready; stopped by PID afterwards."""
    tornado = AppProcess(redis_url, *tornado_args).spawn()
    node = None
    try:
        node = NodeServer(redis_url)
        started(tornado)
        node.take(type="ready", timeout=START_WAIT)
        yield node, tornado
    finally:
        with contextlib.suppress(Exception):
            if node is not None:
                node.stop()
        tornado.stop()


@contextlib.contextmanager
def mixed_cluster(*tornado_args: str):
    """(redis, [node0, node1], [tornado0, tornado1]) on one redis-server; stopped by PID afterwards."""
    with redis_server() as redis:
        nodes: list[NodeServer] = []
        tornados = [AppProcess(redis.url, "--format", "node", *tornado_args).spawn() for _ in range(2)]
        try:
            nodes = [NodeServer(redis.url) for _ in range(2)]
            for proc in tornados:
                started(proc)
            for node in nodes:
                node.take(type="ready", timeout=START_WAIT)
            yield redis, nodes, tornados
        finally:
            for node in nodes:
                node.stop()
            for proc in tornados:
                proc.stop()


@pytest.fixture(scope="module")
def mixed():
    with mixed_cluster() as servers:
        yield servers


async def clients_on(nodes: list[NodeServer], tornados: list[AppProcess], namespaces: tuple[str, ...] = ("/",)
                     ) -> list[Client]:
    """One python-socketio client on each server: node0, node1, tornado0, tornado1."""
    return await connect_all([(server, list(namespaces)) for server in (*nodes, *tornados)])


def sids(clients: list[Client], namespace: str = "/") -> list[str]:
    return [c.sid[namespace] for c in clients]


def counts(clients: list[Client], event: str, namespace: str = "/") -> list[int]:
    return [len(c.got(event, namespace)) for c in clients]


@async_test(60)
async def test_both_sides_count_four_servers(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        assert await nodes[0].run("serverCount") == 4
        assert await clients[2].ask("server count") == 4
    finally:
        await close_all(clients)


@async_test(60)
async def test_broadcasts_from_either_side_reach_every_client_once(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    async with NodeClient() as js:
        for i, server in enumerate((nodes[1], tornados[1])):
            await js.send({"op": "connect", "id": f"js{i}", "url": server.url, "opts": {"transports": ["websocket"]}})
            await js.expect(type="connect", id=f"js{i}")
            await js.send({"op": "on", "id": f"js{i}", "event": "*"})
        await asyncio.gather(*(c.ask("my rooms") for c in clients))
        try:
            await nodes[0].run("emit", event="from node", args=[{"n": 1}, b"\x00\x01"])
            assert await clients[3].ask("broadcast", "from tornado", [{"n": 2}, b"\x02"]) == "ok"
            for c in clients:
                await c.expect("from node")
                await c.expect("from tornado")
            for i in range(2):
                first = await js.expect(type="event", id=f"js{i}", event="from node")
                assert first["args"] == [{"n": 1}, b"\x00\x01"]
                second = await js.expect(type="event", id=f"js{i}", event="from tornado")
                assert second["args"] == [[{"n": 2}, b"\x02"]]
            await settle()
            assert counts(clients, "from node") == [1, 1, 1, 1]
            assert counts(clients, "from tornado") == [1, 1, 1, 1]
            assert all(c.got("from node")[0] == [{"n": 1}, b"\x00\x01"] for c in clients)
            assert all(c.got("from tornado")[0] == [[{"n": 2}, b"\x02"]] for c in clients)
            assert not js.queued(type="event", event="from node") and not js.queued(type="event", event="from tornado")
        finally:
            await close_all(clients)


@async_test(60)
async def test_room_emits_with_except_from_either_side_reach_the_members_once(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        for c in clients:
            assert await c.ask("join", "room-a") == "joined"
        assert await clients[1].ask("join", "staff") == "joined"
        assert await clients[2].ask("join", "staff") == "joined"
        await nodes[0].run("emit", to=["room-a"], event="node room")
        await nodes[0].run("emit", to=["room-a"], event="node except", **{"except": ["staff"]})
        assert await clients[3].ask("to room", "room-a", "tornado room", "x") == "ok"
        assert await clients[3].ask("emit skip", "tornado skip", "y", [clients[0].sid["/"], clients[2].sid["/"]]) == "ok"
        for c in clients:
            await c.expect("node room")
            await c.expect("tornado room")
        for c in (clients[0], clients[3]):
            await c.expect("node except")
        for c in (clients[1], clients[3]):
            await c.expect("tornado skip")
        await settle()
        assert counts(clients, "node room") == [1, 1, 1, 1]
        assert counts(clients, "tornado room") == [1, 1, 1, 1]
        assert counts(clients, "node except") == [1, 0, 0, 1]
        assert counts(clients, "tornado skip") == [0, 1, 0, 1]
    finally:
        await close_all(clients)


def _listed(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in found}


@async_test(60)
async def test_fetch_sockets_from_either_side_lists_every_socket_with_its_data(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        for c in (clients[0], clients[2]):
            assert await c.ask("join", "fetched") == "joined"
        from_node = _listed(await nodes[1].run("fetchSockets", to=["fetched"]))
        from_tornado = _listed(await clients[3].ask("fetch", ["fetched"]))
        for found in (from_node, from_tornado):
            assert set(found) == {clients[0].sid["/"], clients[2].sid["/"]}
            assert found[clients[0].sid["/"]]["data"] == {"impl": "node", "port": nodes[0].port}
            assert found[clients[2].sid["/"]]["data"] == {"impl": "tornado", "port": tornados[0].port}
            assert found[clients[2].sid["/"]]["rooms"] == sorted([clients[2].sid["/"], "fetched"])
            assert found[clients[0].sid["/"]]["query"]["EIO"] == "4"
            assert found[clients[2].sid["/"]]["query"]["EIO"] == "4"
        everyone = _listed(await nodes[0].run("fetchSockets"))
        assert set(sids(clients)) <= set(everyone)
    finally:
        await close_all(clients)


@async_test(60)
async def test_sockets_join_and_leave_from_either_side_move_clients_of_both(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        await nodes[0].run("socketsJoin", to=[clients[1].sid["/"], clients[3].sid["/"]], rooms=["by-node"])
        assert await clients[2].ask("sockets join", [clients[0].sid["/"], clients[2].sid["/"]], ["by-tornado"]) \
            == "ok"
        await settle()
        rooms = [await c.ask("my rooms") for c in clients]
        assert ["by-node" in r for r in rooms] == [False, True, False, True]
        assert ["by-tornado" in r for r in rooms] == [True, False, True, False]
        await nodes[1].run("socketsLeave", to=["by-tornado"], rooms=["by-tornado"])
        assert await clients[2].ask("sockets leave", ["by-node"], ["by-node"]) == "ok"
        await settle()
        rooms = [await c.ask("my rooms") for c in clients]
        assert not any("by-node" in r or "by-tornado" in r for r in rooms)
    finally:
        await close_all(clients)


@async_test(60)
async def test_disconnect_sockets_from_either_side_disconnects_clients_of_both(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        await nodes[0].run("disconnectSockets", to=[clients[1].sid["/"], clients[2].sid["/"]], close=True)
        assert await clients[3].ask("disconnect sockets", [clients[0].sid["/"]], False) == "ok"
        for c in (clients[0], clients[1], clients[2]):
            for _ in range(int(WAIT / 0.05)):
                if c.disconnected:
                    break
                await asyncio.sleep(0.05)
        assert [bool(c.disconnected) for c in clients] == [True, True, True, False]
    finally:
        await close_all(clients)


@async_test(60)
async def test_server_side_emit_from_either_side_reaches_every_other_server(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        before = [len(await c.ask("sse seen")) for c in clients[2:]]
        await nodes[0].run("serverSideEmit", event="new-order", args=[{"id": 1}])
        assert await clients[2].ask("sse", "new-order", [{"id": 2}]) == "ok"
        got = await nodes[1].expect(type="sse", event="new-order")
        second = await nodes[1].expect(type="sse", event="new-order")
        assert sorted([got["args"], second["args"]], key=str) == [[{"id": 1}], [{"id": 2}]]
        await nodes[0].expect(type="sse", event="new-order")
        for _ in range(int(WAIT / 0.05)):
            seen = [await c.ask("sse seen") for c in clients[2:]]
            if [len(s) for s in seen] == [before[0] + 1, before[1] + 2]:
                break
            await asyncio.sleep(0.05)
        assert seen[0][before[0]:] == [[{"id": 1}]]
        assert sorted(seen[1][before[1]:], key=str) == [[{"id": 1}], [{"id": 2}]]
    finally:
        await close_all(clients)


@async_test(60)
async def test_server_side_emit_with_acks_from_either_side_gets_every_other_servers_answer(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        from_node = await nodes[0].run("serverSideEmitWithAck", event="new-order", args=[{"id": 3}], timeout=5000)
        from_tornado = await clients[2].ask("sse call", "new-order", [{"id": 4}], 5)
        answer = lambda impl, port: {"from": impl, "port": port}  # noqa: E731
        assert sorted(from_node, key=str) == sorted([answer("node", nodes[1].port), answer("tornado", tornados[0].port),
                                                     answer("tornado", tornados[1].port)], key=str)
        assert sorted(from_tornado, key=str) == sorted([answer("node", nodes[0].port), answer("node", nodes[1].port),
                                                        answer("tornado", tornados[1].port)], key=str)
    finally:
        await close_all(clients)


@async_test(60)
async def test_broadcasts_with_acks_from_either_side_collect_every_clients_answer(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        for i, c in enumerate(clients):
            c.answers[("/", "question")] = f"answer {i}"
        from_node = await nodes[0].run("emitWithAck", event="question", args=["?"], timeout=5000)
        from_tornado = await clients[3].ask("call many", [], "question", ["?"], 5)
        expected = sorted(f"answer {i}" for i in range(4))
        assert sorted(from_node) == expected
        assert sorted(from_tornado) == expected
        await settle()
        assert counts(clients, "question") == [2, 2, 2, 2]
    finally:
        await close_all(clients)


@async_test(60)
async def test_a_call_from_tornado_reaches_a_client_of_a_node_server(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        clients[0].answers[("/", "ping?")] = "pong from node client"
        assert await clients[2].ask("call", clients[0].sid["/"], "ping?", "x") == ["ok", "pong from node client"]
        assert await clients[2].ask("call", "no-such-sid", "ping?", "x") == ["disconnected"]
    finally:
        await close_all(clients)


@async_test(60)
async def test_an_emit_with_a_callback_from_tornado_gets_a_node_clients_answer(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        clients[1].answers[("/", "rate?")] = {"stars": 5}
        assert await clients[2].ask("emit cb", clients[1].sid["/"], "rate?", "x") == "ok"
        assert await clients[2].expect("callback") == [[[{"stars": 5}]]]  # the ack arguments, as one list
        await settle()
        assert counts(clients, "rate?") == [0, 1, 0, 0]
    finally:
        await close_all(clients)


@async_test(60)
async def test_all_rooms_from_either_side_lists_the_rooms_of_every_server(mixed):
    _, nodes, tornados = mixed
    clients = await clients_on(nodes, tornados)
    try:
        assert await clients[1].ask("join", "node-room") == "joined"
        assert await clients[3].ask("join", "tornado-room") == "joined"
        for rooms in (await nodes[0].run("allRooms"), await clients[2].ask("all rooms")):
            assert {"node-room", "tornado-room", *sids(clients)} <= set(rooms)
    finally:
        await close_all(clients)


@async_test(60)
async def test_malformed_messages_on_node_channels_are_ignored_and_logged_once(mixed):
    import redis as redis_py

    redis, nodes, tornados = mixed
    # (only what Node's own adapter survives: a REMOTE_FETCH without "opts" crashes a Node server)
    garbage = [b"{not json", b"\xc1\xc1", b'{"type": 99, "uid": "x"}', b'{"type": 5, "requestId": ["x"], "opts": {}}']
    publisher = redis_py.Redis.from_url(redis.url)
    try:
        for _ in range(20):
            for raw in garbage:
                publisher.publish("socket.io-request#/#", raw)
                publisher.publish("socket.io-response#/#", raw)
    finally:
        publisher.close()
    clients = await clients_on(nodes, tornados)
    try:
        await nodes[0].run("emit", event="still fine")
        assert await clients[2].ask("broadcast", "still fine too", 1) == "ok"
        for c in clients:
            await c.expect("still fine")
            await c.expect("still fine too")
        log = tornados[0].output()
        assert log.count("unknown request type 99") == 1, log
        assert await nodes[1].run("serverCount") == 4
    finally:
        await close_all(clients)
