"""One room, three transports: python-socketio over WebSocket, python-socketio over
long-polling, and a raw SockJS client (xhr-polling or the SockJS WebSocket).

Every broadcast, room emit and server emit must reach each member exactly once,
whichever transport sent it. "Exactly once" is checked after a round trip on
every client, so a duplicate would already have arrived; no timing assertions.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("aiohttp")

import socketio

from tests.apps import async_test, close_client, serve
from tests.test_sockjs import WAIT, SockJSClient, open_client, sio_packet

MARKER = "sync marker"


class PyPeer:
    """The official ``socketio.AsyncClient``, recording every event."""

    def __init__(self, transports: list[str]) -> None:
        self.transports = transports
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[list[Any]] = []
        self._arrived = asyncio.Event()

        @self.sio.on("*")
        def any_event(event: str, *args: Any) -> None:
            self.events.append([event, *args])
            self._arrived.set()

    async def connect(self, url: str) -> PyPeer:
        await self.sio.connect(url, transports=self.transports, wait_timeout=WAIT)
        return self

    async def emit(self, event: str, *args: Any) -> None:
        # python-socketio: a tuple is several arguments
        await self.sio.emit(event, args[0] if len(args) == 1 else args)

    async def call(self, event: str, *args: Any) -> Any:
        return await self.sio.call(event, args[0] if len(args) == 1 else args, timeout=WAIT)

    async def wait_until(self, predicate: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not predicate(self.events):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.transports}: not received; got {self.events}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def sync(self) -> None:
        """A round trip: everything the server sent us before is in ``events``."""
        await self.sio.emit("echo", MARKER)
        await self.wait_until(lambda events: ["echo", MARKER] in events)
        self.events.remove(["echo", MARKER])

    async def close(self) -> None:
        await close_client(self.sio)


class SockJSPeer:
    """A raw SockJS client with the same interface (binary attachments rebuilt)."""

    def __init__(self, raw: SockJSClient) -> None:
        self.raw = raw
        self.events: list[list[Any]] = []
        self.acks: dict[int, list[Any]] = {}
        self._next_id = 0

    async def connect(self) -> SockJSPeer:
        reply = await self.raw.connect()
        assert reply.startswith('0{"sid":'), reply
        return self

    async def _read_one(self) -> None:
        text = await self.raw.recv(WAIT)
        kind, _, ack_id, data = sio_packet(text)
        if kind in (5, 6):
            count = int(text[1:].split("-", 1)[0])
            buffers = []
            for _ in range(count):
                attachment = await self.raw.recv(WAIT)
                assert attachment.startswith("b"), attachment
                buffers.append(base64.b64decode(attachment[1:]))
            data = _rebuild(data, buffers)
        if kind in (2, 5):
            self.events.append(data)
        elif kind in (3, 6):
            self.acks[ack_id] = data
        else:
            raise AssertionError(f"unexpected packet {text!r}")

    async def emit(self, event: str, *args: Any) -> None:
        await self.raw.send(*_encode(event, args, None))

    async def call(self, event: str, *args: Any) -> Any:
        ack_id = self._next_id
        self._next_id += 1
        await self.raw.send(*_encode(event, args, ack_id))
        while ack_id not in self.acks:
            await self._read_one()
        result = self.acks.pop(ack_id)
        return result[0] if len(result) == 1 else result

    async def wait_until(self, predicate: Any) -> None:
        while not predicate(self.events):
            await self._read_one()

    async def sync(self) -> None:
        await self.emit("echo", MARKER)
        await self.wait_until(lambda events: ["echo", MARKER] in events)
        self.events.remove(["echo", MARKER])

    async def close(self) -> None:
        self.raw.close()


def _encode(event: str, args: tuple, ack_id: Any) -> list[str]:
    """A Socket.IO EVENT as SockJS messages: text, then ``b``+base64 attachments."""
    buffers: list[bytes] = []

    def walk(value: Any) -> Any:
        if isinstance(value, bytes):
            buffers.append(value)
            return {"_placeholder": True, "num": len(buffers) - 1}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    body = json.dumps([event, *[walk(a) for a in args]])
    ack = "" if ack_id is None else str(ack_id)
    if not buffers:
        return ["2" + ack + body]
    return [f"5{len(buffers)}-{ack}{body}"] + ["b" + base64.b64encode(b).decode() for b in buffers]


def _rebuild(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, dict):
        if value.get("_placeholder") is True:
            return buffers[value["num"]]
        return {k: _rebuild(v, buffers) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebuild(v, buffers) for v in value]
    return value


async def _peers(url: str, sockjs_kind: str) -> dict[str, Any]:
    raw = await open_client(sockjs_kind, url)
    return {
        "websocket": await PyPeer(["websocket"]).connect(url),
        "polling": await PyPeer(["polling"]).connect(url),
        "sockjs": await SockJSPeer(raw).connect(),
    }


async def _close(peers: dict[str, Any], srv: Any) -> None:
    for peer in peers.values():
        await peer.close()
    srv.socketio.sockjs_endpoint.close_all()
    srv.socketio.sockjs_endpoint.stop()


@pytest.mark.parametrize("sockjs_kind", ["xhr", "websocket"])
@async_test(timeout=60)
async def test_one_room_every_transport_each_message_exactly_once(sockjs_kind):
    async with serve(ping_interval=1.0, ping_timeout=3.0) as srv:
        peers = await _peers(srv.url, sockjs_kind)
        try:
            transports = sorted(s.transport for s in srv.socketio.engine.sessions.values())
            assert transports == ["polling", "websocket"]
            assert [c.transport for c in srv.socketio.sockjs_endpoint.connections()] == [
                "sockjs-" + sockjs_kind]
            for peer in peers.values():
                assert await peer.call("join", "r") == "joined"

            for name, peer in peers.items():
                await peer.emit("to room", "r", f"room from {name}")
                await peer.emit("broadcast", f"all from {name}")
            srv.socketio.emit("news", "from the server", to="r")

            for name, peer in peers.items():
                expected = [["room message", f"room from {other}"] for other in peers if other != name]
                expected += [["broadcast", f"all from {other}"] for other in peers]
                expected += [["news", "from the server"]]
                await peer.wait_until(lambda events, e=expected: all(x in events for x in e))
            for name, peer in peers.items():
                await peer.sync()
                expected = [["room message", f"room from {other}"] for other in peers if other != name]
                expected += [["broadcast", f"all from {other}"] for other in peers]
                expected += [["news", "from the server"]]
                assert sorted(map(json.dumps, peer.events)) == sorted(map(json.dumps, expected)), name
        finally:
            await _close(peers, srv)


@pytest.mark.parametrize("sockjs_kind", ["xhr", "websocket"])
@async_test(timeout=60)
async def test_binary_broadcast_crosses_transports_both_ways(sockjs_kind):
    async with serve(ping_interval=1.0, ping_timeout=3.0) as srv:
        peers = await _peers(srv.url, sockjs_kind)
        try:
            payloads = {name: bytes([i]) * 300 + name.encode() for i, name in enumerate(peers)}
            for name, peer in peers.items():
                await peer.emit("broadcast", {"from": name, "blob": payloads[name]})
            expected = [["broadcast", {"from": n, "blob": payloads[n]}] for n in peers]
            for peer in peers.values():
                await peer.wait_until(lambda events: all(x in events for x in expected))
            for name, peer in peers.items():
                await peer.sync()
                assert len(peer.events) == 3, (name, peer.events)
                for item in expected:
                    assert peer.events.count(item) == 1, (name, item)
        finally:
            await _close(peers, srv)


@async_test(timeout=60)
async def test_sockjs_client_leaving_the_room_gets_nothing_more():
    async with serve(ping_interval=1.0, ping_timeout=3.0) as srv:
        peers = await _peers(srv.url, "xhr")
        try:
            for peer in peers.values():
                assert await peer.call("join", "r") == "joined"
            sj = peers["sockjs"]
            sockjs_sid = srv.seen.connects[-1][1]
            srv.socketio.leave_room(sockjs_sid, "r")
            await peers["websocket"].emit("to room", "r", "after leave")
            await peers["polling"].wait_until(lambda events: ["room message", "after leave"] in events)
            await sj.sync()
            assert sj.events == []
            await sj.emit("kick")
            await _until(lambda: any(sid == sockjs_sid for _, sid, _ in srv.seen.disconnects))
            assert [r for _, sid, r in srv.seen.disconnects if sid == sockjs_sid] == ["server disconnect"]
        finally:
            await _close(peers, srv)


async def _until(predicate: Any) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not predicate():
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.01)
