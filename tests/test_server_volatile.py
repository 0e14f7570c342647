"""``emit(..., volatile=True)`` (Node's ``io.volatile.emit``): dropped for a client whose
transport cannot write right now, never queued; a normal emit is queued."""

import asyncio
import json
from typing import Any, ClassVar, Dict

from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.hardening_support import RawFrames
from tests.rawclient import RawPolling, RawWebSocket


def events(packets):
    return [json.loads(p[2:]) for p in packets if p.startswith("42")]


class VolatileTest(SocketIOTestCase):
    socketio_options: ClassVar[Dict[str, Any]] = {"cors_allowed_origins": "*", "max_send_buffer": 32_000_000}

    def only_socket(self):
        (socket,) = self.socketio.adapter.by_sid.values()
        return socket

    @gen_test
    async def test_volatile_to_polling_client_without_pending_get_is_dropped_not_queued(self):
        client = await RawPolling(self.base_url).open()
        await client.connect()
        socket = self.only_socket()
        assert not socket.client.conn.polling and socket.writable is False
        self.socketio.emit("v", 1, volatile=True)
        assert socket.client.conn._queue is None  # never queued
        self.socketio.emit("n", 2)
        assert events(await client.get()) == [["n", 2]]

    @gen_test
    async def test_volatile_to_polling_client_with_pending_get_is_sent(self):
        client = await RawPolling(self.base_url).open()
        await client.connect()
        socket = self.only_socket()
        pending = asyncio.ensure_future(client.get())
        await self.until(lambda: socket.client.conn.polling)
        assert socket.writable is True
        self.socketio.emit("v", 1, volatile=True)
        assert events(await pending) == [["v", 1]]

    @gen_test
    async def test_volatile_to_websocket_client_with_nothing_buffered_is_sent(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        socket = self.only_socket()
        assert socket.writable is True
        self.socketio.emit("v", 1, volatile=True)
        assert await ws.recv_event() == ["v", 1]

    @gen_test(timeout=30)
    async def test_websocket_with_data_still_buffered_is_not_writable(self):
        ws = await RawFrames.open(self.get_http_port(), rcvbuf=4096)  # a slow reader: it reads only later
        await ws.send_frame("40")
        assert (await ws.recv_text()).startswith("40{")
        conn = self.only_socket().client.conn
        blob = "z" * 262144
        sent = 0
        while conn.writable and sent < 60:  # at most 15.7 MB, under this test's max_send_buffer
            self.socketio.emit("blob", sent, blob)
            sent += 1
            await asyncio.sleep(0.01)  # the emit is written on a later turn of the loop
        assert conn.writable is False, "the kernel took 60 blobs of 256 KiB that nobody read"
        self.socketio.emit("v", 1, volatile=True)  # dropped: nothing written
        self.socketio.emit("n", 2)
        received = [json.loads((await ws.recv_text())[2:]) for _ in range(sent + 1)]
        assert received == [["blob", i, blob] for i in range(sent)] + [["n", 2]]
        ws.close()
