"""Heavy connection churn leaves nothing behind.

10,000 WebSocket cycles (connect a namespace, join a room, emit to the room and
get it back, leave) with bounded concurrency, ending in every way a client
ends: a clean namespace DISCONNECT, an Engine.IO CLOSE, or the TCP connection
dropped. Then a smaller churn over long-polling, with upgrades and abandoned
probes. Afterwards there is no session, socket, room, pending ack, task or
timer left, and traced memory (tracemalloc) is back within a small bound.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import os
import struct
import tracemalloc
from typing import Tuple

from tornado.testing import gen_test

from tests.hardening_support import HardeningTestCase
from tests.rawclient import RawPolling, RawWebSocket
from tornado_sio import emit, join_room

CYCLES = 10_000
CONCURRENCY = 32
ROOMS = 50
#: Traced memory may end this much above where it started (caches, interned strings ...);
#: measured growth is under 200 kB, and a leak of 50 bytes a cycle would pass it.
MEMORY_SLACK = 512_000


def _frame(text: str) -> bytes:
    """A masked client text frame, with a zero mask (valid, and cheap to build)."""
    payload = text.encode()
    n = len(payload)
    header = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
    return header + b"\0\0\0\0" + payload


async def _read_frame(reader: asyncio.StreamReader) -> Tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    return b0 & 0x0F, await reader.readexactly(n)


async def ws_cycle(port: int, i: int) -> None:
    """One client's life over WebSocket; the way it ends depends on *i*."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        opcode, opening = await _read_frame(reader)
        assert opening[:1] == b"0", opening
        room = json.dumps(f"room-{i % ROOMS}")
        token = json.dumps(f"m{i}")
        writer.write(_frame("40") + _frame(f'421["join",{room}]') + _frame(f'42["shout",{room},{token}]'))
        seen = set()
        for _ in range(20):  # bounded: CONNECT reply, ack, own message, others' messages
            opcode, payload = await _read_frame(reader)
            text = payload.decode()
            if text.startswith("43"):
                seen.add("ack")
            elif text == f'42["heard",{token}]':
                seen.add("heard")
            if seen == {"ack", "heard"}:
                break
        assert seen == {"ack", "heard"}, seen
        ending = i % 4
        if ending == 0:
            writer.write(_frame("41") + _frame("1"))  # leave the namespace, then close the session
        elif ending == 1:
            writer.write(_frame("1"))  # Engine.IO CLOSE
        elif ending == 2:
            writer.write(_frame("41"))  # namespace DISCONNECT; the TCP close ends the session
        # ending == 3: the connection just drops
        if ending != 3:
            await writer.drain()
    finally:
        writer.close()


def _pending_timers(loop: asyncio.AbstractEventLoop) -> int:
    """Live timers in the asyncio loop (private, but the only way to count them)."""
    return sum(1 for handle in getattr(loop, "_scheduled", ()) if not handle.cancelled())


class ChurnTest(HardeningTestCase):
    # The raw polling clients never answer pings, and an upgrade's steps run under tracemalloc
    # with 8 workers: a cycle must fit in interval + timeout (2.5 s) and a probe in the upgrade
    # timeout (2 s) even on a loaded machine; abandoned clients are still gone within seconds.
    socketio_options = {"cors_allowed_origins": "*", "ping_interval": 0.5, "ping_timeout": 2.0,
                        "upgrade_timeout": 2.0}
    # Keep only warnings and errors: tens of thousands of INFO lines (access log,
    # expected ping timeouts) held by the log capture would be "memory growth".
    log_level = logging.WARNING

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)

        @socketio.on("join")
        def join(room):
            join_room(room)
            return "joined"

        @socketio.on("shout")
        def shout(room, text):
            emit("heard", text, to=room)

    async def settle(self) -> None:
        """Wait (bounded) until the server holds no client state; then collect garbage."""
        await self.until(self.no_client_state, timeout=15)
        await self.until(lambda: not self.socketio.dispatcher.tasks, timeout=5)
        await asyncio.sleep(0.05)  # let closed streams' callbacks run
        gc.collect()

    def assert_nothing_left(self) -> None:
        sio = self.socketio
        assert not sio.engine.sessions
        assert not sio.adapter.by_sid and not sio.adapter.room_members and not sio.adapter.namespace_members
        assert not sio.dispatcher.ack_waiting
        assert not sio.dispatcher.tasks
        assert self.log.errors() == [], self.log.errors()

    async def run_ws_cycles(self, first: int, count: int) -> None:
        async def worker(k: int) -> None:
            for i in range(first + k, first + count, CONCURRENCY):
                await asyncio.wait_for(ws_cycle(self.port, i), 10)

        await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))

    @gen_test(timeout=120)
    async def test_ten_thousand_websocket_cycles_leave_nothing_behind(self):
        loop = asyncio.get_running_loop()
        await self.run_ws_cycles(0, 400)  # warm-up: caches, the sweep timers, lazy imports
        await self.settle()
        timers = _pending_timers(loop)
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            await self.run_ws_cycles(400, CYCLES)
            await self.settle()
            grown = tracemalloc.get_traced_memory()[0] - start
            top = tracemalloc.take_snapshot().statistics("lineno")[:5] if grown > MEMORY_SLACK else []
        finally:
            tracemalloc.stop()
        self.assert_nothing_left()
        assert _pending_timers(loop) <= timers, (timers, _pending_timers(loop))
        assert grown < MEMORY_SLACK, (grown, [str(s) for s in top])
        await self.assert_healthy()

    @gen_test(timeout=90)
    async def test_polling_churn_with_upgrades_and_abandoned_clients_leaves_nothing_behind(self):
        loop = asyncio.get_running_loop()

        async def cycle(i: int) -> None:
            client = await RawPolling(self.base_url).open()
            room = json.dumps(f"room-{i % ROOMS}")
            response = await client.post("40", f'421["join",{room}]', f'42["shout",{room},"p{i}"]')
            assert response.code == 200
            packets = []
            for _ in range(10):  # bounded
                packets += await client.get()
                if f'42["heard","p{i}"]' in packets:
                    break
            assert f'42["heard","p{i}"]' in packets, packets
            ending = i % 5
            if ending == 0:
                await client.post("41", "1")
            elif ending == 1:  # upgrade to websocket, then close it
                ws = await RawWebSocket.open(self.base_url, handshake=False,
                                             query=f"EIO=4&transport=websocket&sid={client.sid}")
                await ws.send("2probe")
                assert await ws.recv() == "3probe"
                await client.get()  # the noop
                await ws.send("5")
                await ws.send("41")
                ws.close()
            elif ending == 2:  # a probe that is abandoned (upgrade_timeout), then the client leaves
                ws = await RawWebSocket.open(self.base_url, handshake=False,
                                             query=f"EIO=4&transport=websocket&sid={client.sid}")
                await ws.send("2probe")
                ws.close()
                await client.post("1")
            elif ending == 3:  # a GET left hanging when the client disappears
                pending = asyncio.ensure_future(client.request(timeout=0.2))
                await asyncio.sleep(0.01)
                await asyncio.gather(pending, return_exceptions=True)
            # ending == 4: just stops polling (ping timeout)

        async def worker(k: int, first: int, count: int) -> None:
            for i in range(first + k, first + count, 8):
                await asyncio.wait_for(cycle(i), 15)

        await asyncio.gather(*(worker(k, 0, 50) for k in range(8)))  # warm-up
        await self.settle()
        timers = _pending_timers(loop)
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            await asyncio.gather(*(worker(k, 50, 500) for k in range(8)))
            await self.settle()
            grown = tracemalloc.get_traced_memory()[0] - start
            top = tracemalloc.take_snapshot().statistics("lineno")[:5] if grown > MEMORY_SLACK else []
        finally:
            tracemalloc.stop()
        self.assert_nothing_left()
        assert _pending_timers(loop) <= timers, (timers, _pending_timers(loop))
        assert grown < MEMORY_SLACK, (grown, [str(s) for s in top])
        await self.assert_healthy()
