"""Connection state recovery (socket.io >= 4.6) on one process, with a raw client."""

import json

import pytest
from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawWebSocket
from tornado_sio import SocketIO, join_room, request, socket_data


def connect_reply(frame):
    assert frame.startswith("40"), frame
    return json.loads(frame[2:])


class RecoveryTest(SocketIOTestCase):
    socketio_options = {"cors_allowed_origins": "*",
                        "connection_state_recovery": {"max_disconnection_duration": 30}}

    def setup_handlers(self, sio):
        self.connects = []
        self.middleware_calls = []

        @sio.use
        def middleware(sid, auth, req):
            self.middleware_calls.append(sid)

        @sio.on("connect")
        def on_connect():
            self.connects.append((request.sid, request.recovered, dict(socket_data)))

        @sio.on("join")
        def on_join(room):
            join_room(room)
            socket_data["room"] = room

    async def joined(self):
        ws = await RawWebSocket.open(self.base_url)
        reply = connect_reply(await ws.connect())
        await ws.emit("join", "r")
        await self.until(lambda: "r" in self.socketio.adapter.room_members.get("/", {}))
        return ws, reply

    @gen_test
    async def test_connect_reply_carries_a_pid(self):
        _, reply = await self.joined()
        assert set(reply) == {"sid", "pid"}

    @gen_test
    async def test_reconnect_restores_sid_rooms_data_and_missed_packets_in_order(self):
        ws, reply = await self.joined()
        self.socketio.emit("news", 1, to="r")
        event = await ws.recv_event()
        assert event[:2] == ["news", 1] and isinstance(event[2], str)
        offset = event[2]
        ws.close()
        await self.until(lambda: not self.socketio.adapter.by_sid)
        self.socketio.emit("news", 2, to="r")
        self.socketio.emit("news", 3, to="r")
        ws2 = await RawWebSocket.open(self.base_url)
        again = connect_reply(await ws2.connect(auth={"pid": reply["pid"], "offset": offset}))
        assert again["sid"] == reply["sid"]
        assert [(await ws2.recv_event())[:2] for _ in range(2)] == [["news", 2], ["news", 3]]
        assert self.connects[-1] == (reply["sid"], True, {"room": "r"})
        assert "r" in self.socketio.rooms(reply["sid"])
        assert len(self.middleware_calls) == 1  # skip_middlewares

    @gen_test
    async def test_forged_pid_or_offset_connects_afresh(self):
        ws, reply = await self.joined()
        ws.close()
        await self.until(lambda: not self.socketio.adapter.by_sid)
        ws2 = await RawWebSocket.open(self.base_url)
        forged = connect_reply(await ws2.connect(auth={"pid": reply["pid"], "offset": "x" * 100}))
        assert forged["sid"] != reply["sid"]
        assert self.connects[-1][1] is False
        ws3 = await RawWebSocket.open(self.base_url)
        huge = connect_reply(await ws3.connect(auth={"pid": "p" * 10000, "offset": "o" * 10000}))
        assert huge["sid"] not in (reply["sid"], forged["sid"])

    @gen_test
    async def test_client_disconnect_is_not_recoverable(self):
        ws, reply = await self.joined()
        self.socketio.emit("news", 1, to="r")
        offset = (await ws.recv_event())[2]
        await ws.send("41")
        await self.until(lambda: not self.socketio.adapter.by_sid)
        ws2 = await RawWebSocket.open(self.base_url)
        again = connect_reply(await ws2.connect(auth={"pid": reply["pid"], "offset": offset}))
        assert again["sid"] != reply["sid"]

    @gen_test
    async def test_a_session_is_restored_once(self):
        ws, reply = await self.joined()
        self.socketio.emit("news", 1, to="r")
        offset = (await ws.recv_event())[2]
        ws.close()
        await self.until(lambda: not self.socketio.adapter.by_sid)
        first = await RawWebSocket.open(self.base_url)
        assert connect_reply(await first.connect(auth={"pid": reply["pid"], "offset": offset}))["sid"] == reply["sid"]
        second = await RawWebSocket.open(self.base_url)
        assert connect_reply(await second.connect(auth={"pid": reply["pid"], "offset": offset}))["sid"] != reply["sid"]


def test_recovery_with_the_redis_message_queue_over_pubsub_is_refused_at_start():
    # Pub/sub keeps nothing to replay: say so once, at construction, rather than as a
    # warning at every disconnect (recovery across processes runs on Redis Streams).
    with pytest.raises(ValueError, match="needs the Redis Streams transport"):
        SocketIO(connection_state_recovery=True, message_queue="redis://127.0.0.1:1/0",
                 message_queue_options={"transport": "pubsub"})
