"""Rooms, broadcast, include_self/skip_sid, disconnect and cleanup."""

import asyncio

from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawWebSocket
from tornado_sio import close_room, disconnect, emit, join_room, leave_room, rooms


class RoomsTest(SocketIOTestCase):
    def setup_handlers(self, sio):
        self.disconnects = []

        @sio.on("join")
        def on_join(room):
            join_room(room)
            return rooms()

        @sio.on("leave")
        def on_leave(room):
            leave_room(room)

        @sio.on("close")
        def on_close(room):
            close_room(room)

        @sio.on("to room")
        def to_room(room, data, include_self=True):
            emit("room message", data, to=room, include_self=include_self)

        @sio.on("to rooms")
        def to_rooms(names, data):
            emit("rooms message", data, to=names)

        @sio.on("shout")
        def shout(data):
            emit("shouted", data, broadcast=True, include_self=False)

        @sio.on("kick me")
        def kick_me():
            disconnect()

        @sio.on("disconnect")
        def on_disconnect(reason):
            self.disconnects.append(reason)

    async def client(self):
        ws = await RawWebSocket.open(self.base_url)
        await ws.connect()
        return ws

    async def quiet(self, ws, timeout=0.2):
        """True when *ws* receives no event within *timeout*."""
        try:
            await ws.recv_event(timeout)
        except asyncio.TimeoutError:
            return True
        return False

    @gen_test
    async def test_every_client_is_in_its_own_sid_room(self):
        ws = await self.client()
        await ws.emit("join", "lobby", ack=1)
        frame = await ws.recv()
        sid = next(iter(self.socketio.adapter.by_sid))
        assert frame == f'431[["lobby","{sid}"]]' or frame == f'431[["{sid}","lobby"]]'

    @gen_test
    async def test_room_emit_reaches_members_only(self):
        a, b, c = await self.client(), await self.client(), await self.client()
        await a.emit("join", "r", ack=1)
        await a.recv()
        await b.emit("join", "r", ack=1)
        await b.recv()
        await a.emit("to room", "r", "hi")
        assert await a.recv_event() == ["room message", "hi"]
        assert await b.recv_event() == ["room message", "hi"]
        assert await self.quiet(c)

    @gen_test
    async def test_include_self_false_skips_the_sender(self):
        a, b = await self.client(), await self.client()
        for ws in (a, b):
            await ws.emit("join", "r", ack=1)
            await ws.recv()
        await a.emit("to room", "r", "hi", False)
        assert await b.recv_event() == ["room message", "hi"]
        assert await self.quiet(a)

    @gen_test
    async def test_client_in_two_target_rooms_gets_the_message_once(self):
        a = await self.client()
        for room in ("x", "y"):
            await a.emit("join", room, ack=1)
            await a.recv()
        await a.emit("to rooms", ["x", "y"], 1)
        assert await a.recv_event() == ["rooms message", 1]
        assert await self.quiet(a)

    @gen_test
    async def test_broadcast_without_self(self):
        a, b = await self.client(), await self.client()
        await a.emit("shout", "yo")
        assert await b.recv_event() == ["shouted", "yo"]
        assert await self.quiet(a)

    @gen_test
    async def test_leave_room_stops_room_messages(self):
        a, b = await self.client(), await self.client()
        for ws in (a, b):
            await ws.emit("join", "r", ack=1)
            await ws.recv()
        await b.emit("leave", "r")
        await a.emit("to room", "r", 1)
        assert await a.recv_event() == ["room message", 1]
        assert await self.quiet(b)

    @gen_test
    async def test_close_room_empties_and_frees_it(self):
        a = await self.client()
        await a.emit("join", "r", ack=1)
        await a.recv()
        await a.emit("close", "r")
        await self.until(lambda: not self.socketio.adapter.has_room("/", "r"))

    @gen_test
    async def test_server_emit_skip_sid(self):
        a, b = await self.client(), await self.client()
        sid_a = list(self.socketio.adapter.by_sid)[0]
        self.socketio.emit("news", 1, skip_sid=sid_a)
        assert await b.recv_event() == ["news", 1]
        assert await self.quiet(a)

    @gen_test
    async def test_disconnect_in_handler_sends_disconnect_packet_and_runs_handler(self):
        ws = await self.client()
        await ws.emit("kick me")
        assert await ws.recv() == "41"
        await self.until(lambda: self.disconnects)
        assert self.disconnects == ["server disconnect"]

    @gen_test
    async def test_server_disconnect_by_sid(self):
        ws = await self.client()
        sid = next(iter(self.socketio.adapter.by_sid))
        self.socketio.disconnect(sid)
        assert await ws.recv() == "41"

    @gen_test
    async def test_transport_close_frees_rooms_and_runs_disconnect(self):
        ws = await self.client()
        await ws.emit("join", "r", ack=1)
        await ws.recv()
        ws.close()
        await self.until(lambda: self.disconnects)
        assert self.disconnects == ["transport close"]
        assert not self.socketio.adapter.by_sid
        assert not self.socketio.adapter.has_room("/", "r")
        await self.until(lambda: not self.socketio.engine.sessions)

    @gen_test
    async def test_emit_from_another_thread_is_delivered(self):
        ws = await self.client()
        await asyncio.get_running_loop().run_in_executor(None, lambda: self.socketio.emit("from thread", 1))
        assert await ws.recv_event() == ["from thread", 1]
