"""Node's server API on one process: acks from many clients, socket operations by room,
socket.data, disconnecting, catch-all listeners, dynamic namespaces, emit flags."""

import asyncio
import json
import re

from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawWebSocket
from tornado_sio import BroadcastAckTimeout, join_room, request, rooms, socket_data


async def answer_acks(ws, answer, count=1):
    """Read *count* EVENTs with ack ids and answer each with *answer*."""
    for _ in range(count):
        frame = await ws.recv()
        body = frame[2:]
        ack_id = int(re.match(r"\d+", body).group())
        await ws.send(f"43{ack_id}{json.dumps([answer])}")


class NodeApiTest(SocketIOTestCase):
    def setup_handlers(self, sio):
        self.log = []

        @sio.on("join")
        def on_join(room, value):
            join_room(room)
            socket_data["value"] = value

        @sio.on("disconnecting")
        def on_disconnecting(reason):
            self.log.append(("disconnecting", reason, sorted(rooms())))

        @sio.on("disconnect")
        def on_disconnect(reason):
            self.log.append(("disconnect", reason))

        @sio.on_any
        def anything(event, *args):
            self.log.append(("any", event, args))

        @sio.on_any_outgoing
        def outgoing(sid, event, *args):
            self.log.append(("out", event, args))

        @sio.on("connect", namespace=re.compile(r"/room-\d+"))
        def dynamic_connect():
            self.log.append(("dynamic", request.namespace))

        @sio.on("ping", namespace=re.compile(r"/room-\d+"))
        def dynamic_ping():
            return request.namespace

    async def clients(self, count, room="r"):
        sockets = []
        for n in range(count):
            ws = await RawWebSocket.open(self.base_url)
            await ws.connect()
            await ws.emit("join", room, n)
            sockets.append(ws)
        await self.until(lambda: len(self.socketio.adapter.room_members.get("/", {}).get(room, {})) == count)
        return sockets

    @gen_test
    async def test_call_to_a_room_returns_every_answer(self):
        clients = await self.clients(3)
        asking = asyncio.ensure_future(self.socketio.call("q", 1, to=["r"], timeout=5))
        await asyncio.gather(*(answer_acks(ws, f"a{n}") for n, ws in enumerate(clients)))
        assert sorted(await asking) == ["a0", "a1", "a2"]

    @gen_test
    async def test_call_timeout_carries_the_answers_received(self):
        clients = await self.clients(3)
        asking = asyncio.ensure_future(self.socketio.call("q", to="r", broadcast=True, timeout=0.5))
        await answer_acks(clients[0], "only")
        try:
            await asking
        except BroadcastAckTimeout as exc:
            assert exc.responses == ["only"] and exc.expected == 3
        else:
            raise AssertionError("no timeout")

    @gen_test
    async def test_call_callback_form_gets_error_and_responses(self):
        clients = await self.clients(2)
        got = []
        self.socketio.call("q", to=["r"], timeout=5, callback=lambda err, responses: got.append((err, responses)))
        await asyncio.gather(*(answer_acks(ws, 1) for ws in clients))
        await self.until(lambda: got)
        assert got == [(None, [1, 1])]

    @gen_test
    async def test_call_to_an_empty_room_returns_an_empty_list(self):
        assert await self.socketio.call("q", to=["nobody"], timeout=1) == []

    @gen_test
    async def test_fetch_sockets_reports_rooms_data_and_handshake(self):
        await self.clients(2)
        found = await self.socketio.fetch_sockets(to="r")
        assert sorted(s.data["value"] for s in found) == [0, 1]
        assert all("r" in s.rooms and s.sid in s.rooms and s.namespace == "/" for s in found)
        assert all("headers" in s.handshake for s in found)

    @gen_test
    async def test_remote_socket_handle_emits_joins_and_leaves(self):
        (ws,) = await self.clients(1)
        (handle,) = await self.socketio.fetch_sockets(to="r")
        handle.join(["x", "y"])
        handle.leave("r")
        handle.emit("hello", 1)
        assert await ws.recv_event() == ["hello", 1]
        assert self.socketio.rooms(handle.sid) == [handle.sid, "x", "y"]

    @gen_test
    async def test_sockets_join_leave_and_disconnect_by_room(self):
        clients = await self.clients(2)
        self.socketio.sockets_join("vip", to="r")
        assert len(await self.socketio.fetch_sockets(to="vip")) == 2
        self.socketio.sockets_leave("vip", to="r")
        assert await self.socketio.fetch_sockets(to="vip") == []
        self.socketio.disconnect_sockets(to="r")
        for ws in clients:
            assert await ws.recv() == "41"
        assert ("disconnect", "server disconnect") in self.log

    @gen_test
    async def test_disconnecting_runs_before_disconnect_with_the_rooms(self):
        (ws,) = await self.clients(1)
        sid = next(iter(self.socketio.adapter.by_sid))
        await ws.send("41")
        await self.until(lambda: any(e[0] == "disconnect" for e in self.log))
        ends = [e for e in self.log if e[0] in ("disconnecting", "disconnect")]
        assert ends == [("disconnecting", "client disconnect", sorted([sid, "r"])),
                        ("disconnect", "client disconnect")]

    @gen_test
    async def test_on_any_hears_every_incoming_event_and_outgoing_hook_every_emit(self):
        (ws,) = await self.clients(1)
        self.socketio.emit("news", 5, to="r")
        assert await ws.recv_event() == ["news", 5]
        assert ("any", "join", ("r", 0)) in self.log
        assert ("out", "news", (5,)) in self.log

    @gen_test
    async def test_dynamic_namespace_handlers_get_the_concrete_namespace(self):
        ws = await RawWebSocket.open(self.base_url)
        assert (await ws.connect("/room-42")).startswith("40/room-42,")
        await ws.emit("ping", namespace="/room-42", ack=1)
        assert await ws.recv() == '43/room-42,1["/room-42"]'
        assert ("dynamic", "/room-42") in self.log
        assert (await ws.connect("/room-x")).startswith("44/room-x,")

    @gen_test
    async def test_local_flag_is_carried_to_the_adapter(self):
        seen = []
        original = self.socketio.adapter.broadcast
        self.socketio.adapter.broadcast = lambda packet, opts: (seen.append(opts), original(packet, opts))
        self.socketio.emit("e", local=True, volatile=True, compress=False)
        assert seen[0].local and seen[0].volatile and not seen[0].compress
