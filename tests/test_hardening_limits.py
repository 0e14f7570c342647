"""Every limit of docs/limits.md, each verified against a live server.

Payload sizes per transport, connections, handshake and upgrade deadlines,
pending acks and events, strict outgoing JSON, permessage-deflate bombs,
origin and identity. Slow readers and hostile input are in
``test_hardening_input.py``.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import json
import logging
import re
import string
import tracemalloc
import zlib
from pathlib import Path
from typing import Any, ClassVar

import tornado
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.testing import gen_test
from tornado.websocket import WebSocketClosedError, websocket_connect

from tests.hardening_support import HardeningTestCase, RawFrames
from tests.rawclient import RawPolling, RawWebSocket
from tornado_sio import (
    AckTimeout,
    DisconnectedError,
    EncodeError,
    TornadoSIOError,
    emit,
    request,
    send,
)
from tornado_sio.options import Options

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- the table


def _limits_table():
    """The rows of docs/limits.md: (setting, default) for rows whose default is a literal."""
    rows = []
    for line in (ROOT / "docs" / "limits.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        setting = cells[0].strip("`")
        default = cells[1].strip("`")
        try:
            value = ast.literal_eval(default.replace("_", "") if default[:1].isdigit() else default)
        except (ValueError, SyntaxError):
            continue
        rows.append((setting, value))
    return rows


def test_every_default_in_docs_limits_table_is_the_real_default():
    defaults = Options()
    rows = _limits_table()
    assert len(rows) >= 15, rows
    for setting, documented in rows:
        assert hasattr(defaults, setting), setting
        assert getattr(defaults, setting) == documented, (setting, getattr(defaults, setting), documented)


def test_every_option_is_in_docs_limits():
    text = (ROOT / "docs" / "limits.md").read_text(encoding="utf-8")
    missing = [f.name for f in dataclasses.fields(Options) if f"`{f.name}`" not in text]
    assert not missing, missing


def test_installed_tornado_meets_the_floor_in_pyproject_and_docs_security():
    floors = set(re.findall(r'"tornado>=([0-9.]+)', (ROOT / "pyproject.toml").read_text()))
    assert len(floors) == 1, floors
    floor = floors.pop()
    assert tornado.version_info[:3] >= tuple(int(p) for p in floor.split(".")), (tornado.version, floor)
    assert f"tornado>={floor}" in (ROOT / "docs" / "security.md").read_text()


# ---------------------------------------------------------------- payload sizes


class DefaultMessageSizeTest(HardeningTestCase):
    """With the defaults, the WebSocket limit is max_http_buffer_size (1 MB), not Tornado's 10 MiB."""

    def setup_handlers(self, socketio):
        @socketio.on("size")
        def size(data):
            return len(data)

    @gen_test(timeout=20)
    async def test_message_just_under_one_megabyte_is_accepted(self):
        ws = await self.ws_client()
        data = "x" * (1_000_000 - 40)
        await ws.send('421["size",' + json.dumps(data) + "]")
        assert await ws.recv() == f"431[{len(data)}]"

    @gen_test(timeout=20)
    async def test_message_just_over_one_megabyte_is_refused(self):
        bad = await RawFrames.open(self.port)
        await bad.send_frame("40")
        await bad.recv_text()
        await bad.send_frame('42["size",' + json.dumps("x" * 1_000_000) + "]")
        assert await bad.close_code() == 1009
        bad.close()


class LargeMessageSizeTest(HardeningTestCase):
    """A setting above Tornado's own 10 MiB default is honoured, not capped by it."""

    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_http_buffer_size": 12 * 1024 * 1024}

    def setup_handlers(self, socketio):
        @socketio.on("size")
        def size(data):
            return len(data)

    @gen_test(timeout=30)
    async def test_eleven_mebibyte_message_is_accepted_when_the_limit_is_twelve(self):
        url = self.get_url("/socket.io/?EIO=4&transport=websocket").replace("http", "ws")
        conn = await websocket_connect(HTTPRequest(url), max_message_size=32 * 1024 * 1024)
        await conn.read_message()  # OPEN
        await conn.write_message("40")
        await conn.read_message()  # CONNECT reply
        data = "x" * (11 * 1024 * 1024)
        await conn.write_message('421["size",' + json.dumps(data) + "]")
        while True:
            frame = await asyncio.wait_for(conn.read_message(), 10)
            if frame != "2":
                break
        assert frame == f"431[{len(data)}]"
        conn.close()


class AttachmentLimitsTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_attachments": 3}

    def setup_handlers(self, socketio):
        @socketio.on("count")
        def count(*blobs):
            return len(blobs)

    @gen_test
    async def test_max_attachments_is_a_setting(self):
        ws = await self.ws_client()
        placeholders = [{"_placeholder": True, "num": i} for i in range(3)]
        await ws.send("453-1" + json.dumps(["count", *placeholders]))  # 3 attachments, ack id 1
        for i in range(3):
            await ws.send(bytes([i]))
        assert await ws.recv() == "431[3]"
        await ws.send("454-" + json.dumps(["count", *placeholders, {"_placeholder": True, "num": 3}]))
        assert await ws.closed()
        self.assert_logged_once("more than the limit of 3")

    @gen_test
    async def test_server_refuses_to_send_more_attachments_than_clients_accept(self):
        await self.ws_client()
        with self.assertRaises(EncodeError):
            self.socketio.emit("many", *[b"x"] * 11)


# ---------------------------------------------------------------- connections and deadlines


class MaxConnectionsTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_connections": 2}

    @gen_test
    async def test_connections_past_the_limit_are_refused_with_503_on_both_transports(self):
        first = await self.ws_client()
        second = await self.polling_client()
        refused = await RawPolling(self.base_url).request()
        assert refused.code == 503
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url)
        assert ctx.exception.code == 503
        assert len(self.socketio.engine.sessions) == 2
        await self.ws_echoes(first, "still served")
        await self.polling_echoes(second, "still served")
        first.close()
        await self.until(lambda: len(self.socketio.engine.sessions) == 1)
        third = await self.ws_client()  # room again
        await self.ws_echoes(third, "admitted")
        assert len(self.log.matching("max_connections reached")) == 2

    @gen_test(timeout=20)
    async def test_a_burst_of_handshakes_never_exceeds_the_limit(self):
        async def attempt():
            try:
                return await RawWebSocket.open(self.base_url)
            except HTTPClientError as exc:
                return exc.code

        results = await asyncio.gather(*(attempt() for _ in range(30)))
        admitted = [r for r in results if isinstance(r, RawWebSocket)]
        assert len(admitted) == 2
        assert sorted({r for r in results if not isinstance(r, RawWebSocket)}) == [503]
        assert len(self.socketio.engine.sessions) == 2
        for ws in admitted:
            ws.close()


class MaxConnectionsAcrossTransportsTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_connections": 2}

    @gen_test
    async def test_sockjs_and_engineio_connections_count_toward_one_limit(self):
        assert self.socketio.options.sockjs, "SockJS is on by default"
        sockjs = []
        for i in range(2):
            url = self.get_url(f"/sockjs/000/limit{i}/websocket").replace("http", "ws")
            conn = await websocket_connect(HTTPRequest(url))
            assert await conn.read_message() == "o"
            sockjs.append(conn)
        refused = await RawPolling(self.base_url).request()
        for conn in sockjs:
            conn.close()
        assert refused.code == 503


class ConnectTimeoutTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "connect_timeout": 0.3}

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)
        self.reasons = []

        @socketio.on("disconnect")
        def on_disconnect(reason):
            self.reasons.append(reason)

    @gen_test(timeout=15)
    async def test_sessions_that_never_connect_a_namespace_are_closed(self):
        ws = await RawWebSocket.open(self.base_url)  # handshake only
        polling = await RawPolling(self.base_url).open()
        connected = await self.ws_client()
        assert await ws.recv() == "1"  # told why: an Engine.IO CLOSE
        assert await ws.closed()
        assert await polling.get() == ["1"]
        await self.gone(polling.sid)
        assert len(self.log.matching("no namespace connected")) == 2, self.log.lines()
        await self.ws_echoes(connected, "connected clients stay")
        assert len(self.socketio.engine.sessions) == 1

    @gen_test(timeout=15)
    async def test_a_client_that_leaves_its_last_namespace_must_connect_again_in_time(self):
        ws = await self.ws_client()
        await ws.send("41")
        await self.until(lambda: self.reasons == ["client disconnect"])
        assert await ws.closed()
        assert not self.socketio.engine.sessions


class UpgradeTimeoutTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "upgrade_timeout": 0.3}

    async def probe(self, client, send_probe=True):
        ws = await RawWebSocket.open(self.base_url, query=f"EIO=4&transport=websocket&sid={client.sid}",
                                     handshake=False)
        if send_probe:
            await ws.send("2probe")
            assert await ws.recv() == "3probe"
        return ws

    @gen_test(timeout=15)
    async def test_a_probe_that_never_says_anything_is_closed_and_polling_goes_on(self):
        client = await self.polling_client()
        ws = await self.probe(client, send_probe=False)
        assert await ws.closed(timeout=3)
        await self.polling_echoes(client, "still polling")
        assert self.socketio.engine.sessions[client.sid].transport == "polling"
        self.assert_logged_once("upgrade did not complete")

    @gen_test(timeout=15)
    async def test_an_upgrade_that_never_completes_does_not_stall_polling(self):
        client = await self.polling_client()
        ws = await self.probe(client)
        assert await client.get() == ["6"]  # the pending GET is released for the upgrade
        self.socketio.emit("during", 1)  # queued while UPGRADING: must still reach polling
        packets = await client.get()
        assert packets == ['42["during",1]']
        assert await ws.closed(timeout=3)
        await self.polling_echoes(client, "after the timeout")
        self.assert_logged_once("upgrade did not complete")

    @gen_test(timeout=15)
    async def test_a_second_probe_while_one_is_in_progress_is_refused(self):
        client = await self.polling_client()
        first = await self.probe(client)
        second = await RawWebSocket.open(self.base_url, query=f"EIO=4&transport=websocket&sid={client.sid}",
                                         handshake=False)
        assert await second.closed()
        await first.send("5")
        await self.until(lambda: self.socketio.engine.sessions[client.sid].transport == "websocket")


# ---------------------------------------------------------------- acks and events


class AckLimitsTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": "*", "max_pending_acks": 3, "ack_timeout": 0.3,
    }

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)
        self.sids = []

        @socketio.on("connect")
        def on_connect():
            self.sids.append(request.sid)

    def socket(self):
        return self.socketio.adapter.by_sid[self.sids[-1]]

    @gen_test(timeout=15)
    async def test_pending_acks_are_bounded_and_expire(self):
        await self.ws_client()  # never answers
        answered = []
        for i in range(3):
            self.socketio.emit("question", i, to=self.sids[-1], callback=answered.append)
        with self.assertRaises(TornadoSIOError):
            self.socketio.emit("question", 3, to=self.sids[-1], callback=answered.append)
        assert len(self.socket().acks) == 3
        await self.until(lambda: not self.socket().acks and not self.socketio.dispatcher.ack_waiting, timeout=5)
        self.socketio.emit("question", 4, to=self.sids[-1], callback=answered.append)  # room again
        assert answered == []
        assert len(self.log.matching("not answered in time")) == 3

    @gen_test(timeout=15)
    async def test_call_without_an_answer_times_out_and_forgets_its_ack(self):
        await self.ws_client()
        with self.assertRaises(AckTimeout):
            await self.socketio.call("question", to=self.sids[-1], timeout=0.2)
        assert not self.socket().acks

    @gen_test(timeout=15)
    async def test_pending_calls_fail_when_the_client_leaves(self):
        ws = await self.ws_client()
        pending = asyncio.ensure_future(self.socketio.call("question", to=self.sids[-1], timeout=10))
        await self.until(lambda: self.socket().acks)
        ws.close()
        with self.assertRaises(DisconnectedError):
            await pending
        await self.until(self.no_client_state)

    @gen_test(timeout=15)
    async def test_an_emit_refused_by_the_encoder_leaves_no_pending_ack(self):
        await self.ws_client()
        with self.assertRaises(EncodeError):
            self.socketio.emit("bad", float("nan"), to=self.sids[-1], callback=lambda *a: None)
        assert not self.socket().acks

    @gen_test(timeout=15)
    async def test_a_call_refused_by_the_encoder_leaves_no_pending_ack(self):
        await self.ws_client()
        with self.assertRaises(EncodeError):
            await self.socketio.call("bad", float("inf"), to=self.sids[-1], timeout=5)
        assert not self.socket().acks
        assert self.socket() not in self.socketio.dispatcher.ack_waiting


class PendingEventsTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_pending_events": 5}

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)
        self.reasons = []
        self.release = asyncio.Event()

        @socketio.on("slow")
        async def slow(i):
            await asyncio.wait_for(self.release.wait(), 10)

        @socketio.on("disconnect")
        def on_disconnect(reason):
            self.reasons.append(reason)

    @gen_test(timeout=15)
    async def test_a_client_flooding_a_busy_handler_is_disconnected(self):
        bystander = await self.ws_client()
        flooder = await self.ws_client()
        for i in range(50):
            try:
                await flooder.emit("slow", i)
            except WebSocketClosedError:  # the server cut it off mid-flood
                break
        assert await flooder.closed()
        assert self.reasons == ["transport error"]
        self.assert_logged_once("max_pending_events", levels=(logging.WARNING,))
        self.release.set()
        await self.assert_healthy(bystander)


# ---------------------------------------------------------------- outgoing JSON


class StrictJsonTest(HardeningTestCase):
    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)
        self.refusals = []

        @socketio.on("emit bad")
        def emit_bad(kind):
            value = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"), "set": {1}}[kind]
            try:
                emit("bad", {"value": value})
            except EncodeError as exc:
                self.refusals.append(str(exc))
            try:
                send([value])
            except EncodeError as exc:
                self.refusals.append(str(exc))
            emit("done", kind)

    @gen_test
    async def test_nan_infinity_and_non_json_are_refused_to_the_emitting_code(self):
        ws = await self.ws_client()
        for kind in ("nan", "inf", "-inf", "set"):
            await ws.emit("emit bad", kind)
            assert await ws.recv() == f'42["done","{kind}"]'  # nothing invalid came before it
        assert len(self.refusals) == 8
        assert all("JSON" in r for r in self.refusals), self.refusals

    @gen_test
    async def test_deeply_nested_outgoing_data_is_refused_not_a_crash(self):
        ws = await self.ws_client()
        for depth in (2_000, 200_000):
            deep = []
            for _ in range(depth):
                deep = [deep]
            with self.assertRaises(EncodeError):
                self.socketio.emit("deep", deep)
            deep = {}
            for _ in range(depth):
                deep = {"a": deep}
            with self.assertRaises(EncodeError):
                self.socketio.emit("deep", deep)
        await self.ws_echoes(ws, "still here")

    @gen_test
    async def test_a_broadcast_with_nan_is_refused_before_anyone_gets_it(self):
        ws = await self.ws_client()
        with self.assertRaises(EncodeError):
            self.socketio.emit("bad", [1.0, float("nan")])
        self.socketio.emit("good", 1)
        assert await ws.recv() == '42["good",1]'


# ---------------------------------------------------------------- compression


class CompressionBombTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "websocket_compression": True,
                        "max_http_buffer_size": 100_000}

    @gen_test(timeout=20)
    async def test_compressed_messages_work_when_compression_is_on(self):
        url = self.get_url("/socket.io/?EIO=4&transport=websocket").replace("http", "ws")
        conn = await websocket_connect(HTTPRequest(url), compression_options={})
        assert "permessage-deflate" in conn.headers.get("Sec-WebSocket-Extensions", "")
        await conn.read_message()
        await conn.write_message("40")
        await conn.read_message()
        await conn.write_message('42["echo","' + "a" * 50_000 + '"]')
        assert await conn.read_message() == '42["echo","' + "a" * 50_000 + '"]'
        conn.close()

    @gen_test(timeout=20)
    async def test_a_decompression_bomb_is_refused_at_max_http_buffer_size(self):
        bad = await RawFrames.open(self.port, headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
        assert b"permessage-deflate" in bad.response_head
        await bad.send_frame("40")
        await bad.recv_text()
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = deflate.compress(b'42["echo","' + b"a" * 50_000_000) + deflate.flush(zlib.Z_SYNC_FLUSH)
        bomb = bomb[:-4]  # permessage-deflate drops the sync-flush tail
        assert len(bomb) < 100_000  # the frame itself is within the limit
        tracemalloc.start()
        try:
            await bad.send_frame(bomb, opcode=1, rsv1=True)
            code = await bad.close_code()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert code == 1009
        assert peak < 5_000_000, peak  # nowhere near the 50 MB it would inflate to
        bad.close()
        self.assert_logged_once("too big after decompression")
        await self.until(self.no_client_state)
        await self.assert_healthy()


# ---------------------------------------------------------------- origin and identity


class IdentityTest(HardeningTestCase):
    @gen_test(timeout=20)
    async def test_session_ids_are_long_random_and_unique(self):
        sids = set()
        alphabet = set(string.ascii_letters + string.digits + "-_")
        for _ in range(200):
            client = await RawPolling(self.base_url).open()
            assert len(client.sid) >= 20 and set(client.sid) <= alphabet
            sids.add(client.sid)
            await client.post("1")
        assert len(sids) == 200
        ws = await self.ws_client()
        socket_sid = next(iter(self.socketio.adapter.by_sid))
        assert socket_sid != ws.handshake["sid"]  # the namespace sid is a second secret


class AllowRequestTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*",
                        "allow_request": lambda req: req.headers.get("X-Token") == "letmein"}

    @gen_test
    async def test_allow_request_runs_for_a_websocket_without_an_origin_header(self):
        # Tornado calls check_origin only when there is an Origin header.
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url)
        assert ctx.exception.code == 403
        ws = await RawWebSocket.open(self.base_url, headers={"X-Token": "letmein"})
        assert ws.handshake["sid"]
        assert len(self.socketio.engine.sessions) == 1

    @gen_test
    async def test_allow_request_runs_for_a_websocket_with_an_origin_header(self):
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url, headers={"Origin": "https://any.example"})
        assert ctx.exception.code == 403

    @gen_test
    async def test_allow_request_runs_for_a_sockjs_websocket_without_an_origin_header(self):
        assert self.socketio.options.sockjs, "SockJS is on by default"
        url = self.get_url("/sockjs/000/abcdefgh/websocket").replace("http", "ws")
        with self.assertRaises(HTTPClientError) as ctx:
            await websocket_connect(HTTPRequest(url))
        assert ctx.exception.code == 403


class AllowRequestFailureTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "allow_request": lambda req: 1 / 0}

    @gen_test
    async def test_an_allow_request_hook_that_raises_refuses_and_the_server_goes_on(self):
        assert (await RawPolling(self.base_url).request()).code == 403
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url)
        assert ctx.exception.code == 403
        assert len(self.log.matching("allow_request failed")) == 2
        self.log.clear()  # the hook's traceback is the application's error, logged as such


class CrossSiteWebSocketTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {}  # the default policy: same origin only

    @gen_test
    async def test_cross_site_websocket_is_refused_by_default(self):
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url, headers={"Origin": "https://evil.example"})
        assert ctx.exception.code == 403
        same = await RawWebSocket.open(self.base_url, headers={"Origin": self.base_url.rstrip("/")})
        assert same.handshake["sid"]

    @gen_test
    async def test_cross_site_upgrade_of_a_polling_session_is_refused_by_default(self):
        client = await RawPolling(self.base_url).open()
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url, headers={"Origin": "https://evil.example"},
                                    query=f"EIO=4&transport=websocket&sid={client.sid}", handshake=False)
        assert ctx.exception.code == 403
        assert not self.socketio.engine.sessions[client.sid].closed
