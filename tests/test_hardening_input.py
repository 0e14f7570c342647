"""Hostile and broken clients against a live server, one case per test.

Every case checks three things: the bad client gets a clear error or a clean
close; it is logged once at INFO or WARNING (never as an error or a
traceback); and afterwards the bystanders connected before it still echo and
a fresh client still connects and echoes, over WebSocket and over polling.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, ClassVar

from tornado.httpclient import HTTPClientError
from tornado.testing import gen_test

from tests.hardening_support import (
    HardeningTestCase,
    RawFrames,
    chunked_post,
    nested,
    raw_http,
)
from tests.rawclient import RawPolling, RawWebSocket, error_of

LIMIT = 10_000  # max_http_buffer_size for this suite: small, so oversized inputs are cheap
PLACEHOLDER = {"_placeholder": True, "num": 0}


class BadInputTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": ["https://good.example"], "max_http_buffer_size": LIMIT,
    }

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)
        self.reasons = []

        @socketio.on("disconnect")
        def on_disconnect(reason):
            self.reasons.append(reason)

    async def bystanders(self):
        return [await self.ws_client(), await self.polling_client()]

    async def bad_ws(self) -> RawWebSocket:
        return await self.ws_client()

    # -- invalid packets -------------------------------------------------

    @gen_test
    async def test_unknown_engine_packet_type_over_websocket_closes_only_that_client(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send("9")
        assert await bad.closed()
        self.assert_logged_once("bad websocket packet")
        assert self.reasons == ["parse error"]
        await self.assert_healthy(*others)

    @gen_test
    async def test_unknown_engine_packet_type_over_polling_is_400_and_closes_that_session(self):
        others = await self.bystanders()
        bad = await self.polling_client()
        response = await bad.post("9")
        assert response.code == 400
        assert error_of(response) == {"code": 3, "message": "Bad request"}
        assert bad.sid not in self.socketio.engine.sessions  # unknown from that moment, as in Node
        self.assert_logged_once("bad polling payload")
        assert self.reasons == ["parse error"]
        late = await bad.request()
        assert (late.code, error_of(late)["code"]) == (400, 1)
        await self.assert_healthy(*others)

    @gen_test
    async def test_unknown_socketio_packet_type_closes_that_client(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send("47[]")
        assert await bad.closed()
        self.assert_logged_once("invalid Socket.IO packet")
        await self.assert_healthy(*others)

    @gen_test
    async def test_connect_error_packet_from_a_client_closes_it(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send('44{"message":"spoofed"}')
        assert await bad.closed()
        self.assert_logged_once("unexpected CONNECT_ERROR")
        await self.assert_healthy(*others)

    @gen_test
    async def test_ping_or_upgrade_packet_from_a_client_closes_it(self):
        others = await self.bystanders()
        for packet in ("2", "5"):
            bad = await self.bad_ws()
            await bad.send(packet)
            assert await bad.closed(), packet
        assert len(self.log.matching("bad websocket packet")) == 2, self.log.lines()
        await self.assert_healthy(*others)

    @gen_test
    async def test_invalid_json_closes_that_client(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send('42["echo",')
        assert await bad.closed()
        self.assert_logged_once("invalid JSON")
        await self.assert_healthy(*others)

    @gen_test
    async def test_non_list_event_payloads_close_that_client(self):
        others = await self.bystanders()
        payloads = ['42{"event":"echo"}', '42"echo"', "42[]", "42[1]", "42null", "42true"]
        for payload in payloads:
            bad = await self.bad_ws()
            await bad.send(payload)
            assert await bad.closed(), payload
        assert len(self.log.matching("invalid Socket.IO packet")) == len(payloads), self.log.lines()
        await self.assert_healthy(*others)

    @gen_test
    async def test_reserved_event_name_closes_that_client(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send('42["disconnect"]')
        assert await bad.closed()
        self.assert_logged_once("is reserved")
        await self.assert_healthy(*others)

    @gen_test
    async def test_deeply_nested_json_closes_that_client(self):
        others = await self.bystanders()
        for depth in (40, 4900):  # just past max_depth, and deep enough to exhaust a recursive parser
            bad = await self.bad_ws()
            await bad.send('42["echo",' + nested(depth) + "]")
            assert await bad.closed(), depth
        assert len(self.log.matching("nested deeper")) == 2, self.log.lines()
        await self.assert_healthy(*others)

    @gen_test
    async def test_huge_number_closes_that_client(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send('42["echo",' + "9" * 5000 + "]")
        assert await bad.closed()
        self.assert_logged_once("invalid JSON")
        await self.assert_healthy(*others)

    @gen_test
    async def test_invalid_utf8_and_base64_in_a_polling_payload_close_that_session(self):
        others = await self.bystanders()
        for body in (b"42\xff\xfe", b"b!!!not-base64"):
            bad = await self.polling_client()
            response = await bad.request("POST", body=body)
            assert response.code == 400, body
            assert bad.sid not in self.socketio.engine.sessions  # unknown at once, as in Node
        assert len(self.log.matching("bad polling payload")) == 2, self.log.lines()
        await self.assert_healthy(*others)

    @gen_test
    async def test_binary_frame_with_no_attachment_announced_closes_that_client(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send(b"\x00\x01")
        assert await bad.closed()
        self.assert_logged_once("no binary packet was pending")
        await self.assert_healthy(*others)

    # -- oversized payloads ------------------------------------------------

    @gen_test
    async def test_oversized_websocket_message_is_refused_with_1009(self):
        others = await self.bystanders()
        bad = await RawFrames.open(self.port)
        await bad.send_frame("40")
        await bad.recv_text()
        await bad.send_frame("42" + json.dumps(["echo", "x" * LIMIT]))
        assert await bad.close_code() == 1009
        bad.close()
        self.assert_logged_once("message too big")
        await self.until(lambda: self.reasons == ["transport error"])
        await self.assert_healthy(*others)

    @gen_test
    async def test_oversized_fragmented_websocket_message_is_refused_before_it_completes(self):
        others = await self.bystanders()
        bad = await RawFrames.open(self.port)
        await bad.send_frame("40")
        await bad.recv_text()
        await bad.send_frame('42["echo","' + "x" * 4000, fin=False)
        await bad.send_frame("y" * 4000, opcode=0, fin=False)
        await bad.send_frame("z" * 4000, opcode=0, fin=False)  # past the limit; the message never finishes
        assert await bad.close_code() == 1009
        bad.close()
        self.assert_logged_once("message too big")
        await self.assert_healthy(*others)

    @gen_test
    async def test_oversized_polling_post_is_refused_with_413_and_the_session_left_to_the_client(self):
        others = await self.bystanders()
        bad = await self.polling_client()
        response = await bad.post("42" + json.dumps(["echo", "x" * LIMIT]))
        assert (response.code, response.body) == (413, b"")
        # As Node: the session stays; the official client closes itself ("transport error").
        assert not self.socketio.engine.sessions[bad.sid].closed
        assert self.reasons == []
        self.assert_logged_once("over max_http_buffer_size")
        await self.assert_healthy(bad, *others)

    @gen_test
    async def test_oversized_chunked_polling_post_is_cut_off_and_closes_that_session(self):
        others = await self.bystanders()
        bad = await self.polling_client()
        chunks = [b"42" + json.dumps(["echo", "x" * 6000]).encode(), b"y" * 6000]
        answer, closed = await raw_http(self.port, chunked_post(bad.sid, chunks))
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert closed
        await self.until(lambda: self.reasons == ["transport error"])
        self.assert_logged_once("POST connection closed before its body was complete")
        self.assert_logged_once("chunked body too large")  # Tornado's own line, at INFO
        await self.assert_healthy(*others)

    @gen_test
    async def test_small_chunked_polling_post_is_accepted(self):
        bad_or_not = await RawPolling(self.base_url).open()
        answer, _ = await raw_http(self.port, chunked_post(bad_or_not.sid, [b"4", b'0']))
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert answer.endswith(b"ok")
        assert (await bad_or_not.get())[0].startswith("40{")
        await self.assert_healthy()

    # -- binary attachments ---------------------------------------------

    @gen_test
    async def test_too_many_attachments_close_that_client(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send("4511-" + json.dumps(["echo"] + [{"_placeholder": True, "num": i} for i in range(11)]))
        assert await bad.closed()
        self.assert_logged_once("more than the limit of 10")
        await self.assert_healthy(*others)

    @gen_test
    async def test_absurd_attachment_count_closes_that_client(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send("45" + "9" * 400 + '-["echo"]')
        assert await bad.closed()
        self.assert_logged_once("attachments, more than the limit")
        await self.assert_healthy(*others)

    @gen_test
    async def test_oversized_attachments_close_that_client(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send("452-" + json.dumps(["echo", PLACEHOLDER, {"_placeholder": True, "num": 1}]))
        await bad.send(b"a" * 6000)
        await bad.send(b"b" * 6000)  # each frame fits; together they pass max_http_buffer_size
        assert await bad.closed()
        self.assert_logged_once("binary attachments exceed")
        await self.assert_healthy(*others)

    @gen_test
    async def test_attachments_announced_but_never_sent_are_dropped_when_text_follows(self):
        others = await self.bystanders()
        bad = await self.bad_ws()
        await bad.send("451-" + json.dumps(["echo", PLACEHOLDER]))
        await bad.send('42["echo","instead"]')
        assert await bad.closed()
        self.assert_logged_once("binary attachment(s) were expected")
        assert self.reasons == ["parse error"]
        await self.assert_healthy(*others)

    @gen_test
    async def test_attachments_announced_then_the_client_leaves_frees_everything(self):
        bad = await self.bad_ws()
        await bad.send("453-" + json.dumps(["echo", PLACEHOLDER, {"_placeholder": True, "num": 1},
                                            {"_placeholder": True, "num": 2}]))
        await bad.send(b"partial")
        session = next(iter(self.socketio.engine.sessions.values()))
        await self.until(lambda: session.data.decoder.pending)
        decoder = session.data.decoder
        bad.close()
        await self.until(self.no_client_state)
        assert not decoder.pending  # the half-built packet and its attachment are freed
        assert self.reasons == ["transport close"]
        await self.assert_healthy()

    # -- sessions and transports ---------------------------------------------

    @gen_test
    async def test_unknown_sid_is_refused_on_both_transports(self):
        others = await self.bystanders()
        stranger = RawPolling(self.base_url)
        stranger.sid = "not-a-session"
        for method in ("GET", "POST"):
            response = await stranger.request(method, body="40" if method == "POST" else None)
            assert response.code == 400
            assert error_of(response) == {"code": 1, "message": "Session ID unknown"}
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url, query="EIO=4&transport=websocket&sid=not-a-session")
        assert ctx.exception.code == 400
        assert len(self.log.matching("Session ID unknown")) == 3, self.log.lines()
        await self.assert_healthy(*others)

    @gen_test
    async def test_wrong_eio_version_is_refused_on_both_transports(self):
        others = await self.bystanders()
        client = RawPolling(self.base_url)
        for query in ("EIO=3&transport=polling", "transport=polling", "EIO=5&transport=polling"):
            response = await client.http.fetch(client.url + "?" + query, raise_error=False)
            assert response.code == 400, query
            assert error_of(response) == {"code": 5, "message": "Unsupported protocol version"}
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url, query="EIO=3&transport=websocket")
        assert ctx.exception.code == 400
        assert len(self.log.matching("Unsupported protocol version")) == 4, self.log.lines()
        assert len(self.socketio.engine.sessions) == 2  # the bystanders' only
        await self.assert_healthy(*others)

    @gen_test
    async def test_transport_mismatch_is_refused_without_closing_the_session(self):
        others = await self.bystanders()
        ws = await RawWebSocket.open(self.base_url)  # a websocket session ...
        await ws.connect()
        impostor = RawPolling(self.base_url)  # ... addressed over polling
        impostor.sid = ws.handshake["sid"]
        get = await impostor.request()
        post = await impostor.post('42["echo","hijack"]')
        assert (get.code, post.code) == (400, 400)
        second = await RawWebSocket.open(  # ... and "upgraded" again: its 101, then closed (as Node)
            self.base_url, query=f"EIO=4&transport=websocket&sid={ws.handshake['sid']}", handshake=False)
        assert await second.closed()
        plain_get = await RawPolling(self.base_url).http.fetch(  # websocket asked for without an Upgrade
            self.get_url("/socket.io/?EIO=4&transport=websocket"), raise_error=False)
        assert plain_get.code == 400
        await self.ws_echoes(ws, "still mine")  # the real owner is undisturbed
        await self.assert_healthy(*others)

    @gen_test
    async def test_concurrent_get_polls_close_that_session(self):
        others = await self.bystanders()
        bad = await self.polling_client()
        first = asyncio.ensure_future(bad.request())
        await self.until(lambda: self.socketio.engine.sessions[bad.sid].polling)
        second = await bad.request()
        assert second.code == 400
        assert error_of(second)["code"] == 3
        assert (await first).body.decode().split("\x1e")[-1] == "1"
        await self.gone(bad.sid)
        self.assert_logged_once("overlapping polling GET")
        assert self.reasons == ["transport error"]
        await self.assert_healthy(*others)

    @gen_test
    async def test_post_and_get_after_close_are_refused(self):
        others = await self.bystanders()
        bad = await self.polling_client()
        await bad.post("1")
        await self.gone(bad.sid)
        late_post = await bad.post('42["echo","too late"]')
        late_get = await bad.request()
        assert (late_post.code, late_get.code) == (400, 400)
        assert error_of(late_post)["code"] == 1
        await self.assert_healthy(*others)

    @gen_test
    async def test_post_while_closing_is_refused(self):
        others = await self.bystanders()
        bad = await self.polling_client()
        self.socketio.engine.sessions[bad.sid].close("server disconnect")  # CLOSE queued, not yet collected
        late = await bad.post('42["echo","too late"]')
        assert late.code == 400
        assert (await bad.get())[-1] == "1"
        await self.assert_healthy(*others)

    @gen_test
    async def test_handshake_by_post_is_refused(self):
        others = await self.bystanders()
        response = await RawPolling(self.base_url).request("POST", body="40")
        assert response.code == 400
        assert error_of(response) == {"code": 2, "message": "Bad handshake method"}
        await self.assert_healthy(*others)

    @gen_test
    async def test_disallowed_origin_is_refused_on_both_transports(self):
        others = await self.bystanders()
        evil = {"Origin": "https://evil.example"}
        handshake = await RawPolling(self.base_url).request(headers=evil)
        assert handshake.code == 403
        assert error_of(handshake) == {"code": 4, "message": "Forbidden"}
        with self.assertRaises(HTTPClientError) as ctx:  # cross-site WebSocket hijacking
            await RawWebSocket.open(self.base_url, headers=evil)
        assert ctx.exception.code == 403
        victim = others[1]  # a page on another site that learnt a sid still cannot use it
        hijack = await victim.request("POST", body='42["echo","x"]', headers=evil)
        assert hijack.code == 403
        with self.assertRaises(HTTPClientError) as ctx:
            await RawWebSocket.open(self.base_url, headers=evil,
                                    query=f"EIO=4&transport=websocket&sid={victim.sid}", handshake=False)
        assert ctx.exception.code == 403
        assert not self.socketio.engine.sessions[victim.sid].closed
        good = await RawPolling(self.base_url).request(headers={"Origin": "https://good.example"})
        assert good.code == 200
        await self.assert_healthy(*others)

    @gen_test
    async def test_repeated_ignored_packets_are_not_logged_once_each(self):
        others = await self.bystanders()
        spammer = await self.bad_ws()
        self.log.clear()
        for i in range(100):
            await spammer.send(f'42/nope,["echo",{i}]')  # a namespace it never joined
            await spammer.send("40/unknown,")  # refused each time (CONNECT_ERROR)
            await spammer.send("40")  # already connected
        await self.ws_echoes(spammer, "processed in order")
        assert len(self.log.records) <= 3, len(self.log.records)
        await self.assert_healthy(*others)

    @gen_test
    async def test_garbage_http_is_answered_400_by_tornado(self):
        others = await self.bystanders()
        answer, closed = await raw_http(self.port, b"\x16\x03\x01garbage\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400") and closed
        await self.assert_healthy(*others)


class _Pump:
    """Keeps a well-behaved WebSocket client reading (and answering pings) in the background."""

    def __init__(self, ws: RawWebSocket) -> None:
        self.ws = ws
        self.events: asyncio.Queue[list] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            frame = await self.ws.recv(timeout=60)  # answers pings
            if frame is None:
                return
            if isinstance(frame, str) and frame.startswith("42"):
                await self.events.put(json.loads(frame[2:]))

    async def echoes(self, token: str) -> None:
        await self.ws.emit("echo", token)
        for _ in range(100):  # bounded
            event = await asyncio.wait_for(self.events.get(), 5)
            if event == ["echo", token]:
                return
        raise AssertionError("no echo")

    def stop(self) -> None:
        self.task.cancel()
        self.ws.close()


class SilentClientTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": "*", "ping_interval": 0.2, "ping_timeout": 0.3,
    }

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)
        self.reasons = []

        @socketio.on("disconnect")
        def on_disconnect(reason):
            self.reasons.append(reason)

    @gen_test(timeout=20)
    async def test_clients_that_never_answer_pings_are_closed_and_others_are_not(self):
        bystander = _Pump(await self.ws_client())
        silent_ws = await self.ws_client()  # reads nothing, answers nothing
        silent_polling = await self.polling_client()  # never polls again
        await self.gone(silent_polling.sid)
        await self.until(lambda: len(self.socketio.engine.sessions) == 1)
        assert sorted(self.reasons) == ["ping timeout", "ping timeout"]
        assert len(self.log.matching("no pong")) == 2, self.log.lines()
        await bystander.echoes("alive")
        bystander.stop()
        silent_ws.close()
        await self.assert_healthy()

    @gen_test(timeout=20)
    async def test_a_client_that_never_connects_a_namespace_is_closed(self):
        # (connect_timeout is covered in test_hardening_limits; this one answers pings but stays idle)
        idle = await RawWebSocket.open(self.base_url)
        for _ in range(3):
            assert await idle.recv(skip_pings=False) == "2"
            await idle.send("3")
        assert len(self.socketio.engine.sessions) == 1
        idle.close()


class NeverReadTest(HardeningTestCase):
    """Clients that never read: their buffers are bounded; they are dropped; others keep getting data."""

    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_send_buffer": 200_000}

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)
        self.reasons = []

        @socketio.on("disconnect")
        def on_disconnect(reason):
            self.reasons.append(reason)

    @gen_test(timeout=60)
    async def test_websocket_client_that_never_reads_is_dropped_during_a_broadcast(self):
        import tracemalloc

        bystander = await self.ws_client()
        hog = await RawFrames.open(self.port, rcvbuf=4096)
        await hog.send_frame("40")  # connects, then never reads another byte
        await self.until(lambda: len(self.socketio.adapter.by_sid) == 2)
        hog_sid = hog.handshake["sid"]
        blob = "z" * 65536
        tracemalloc.start()
        try:
            sent = 0
            for i in range(512):  # at most 32 MiB, paced by the bystander's reading
                self.socketio.emit("blob", i, blob)
                sent += len(blob)
                assert await bystander.recv_event() == ["blob", i, blob]
                if hog_sid not in self.socketio.engine.sessions:
                    break
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert hog_sid not in self.socketio.engine.sessions, f"never dropped after {sent} bytes"
        assert self.reasons == ["transport error"]
        self.assert_logged_once("websocket send buffer over", levels=(logging.WARNING,))
        assert peak < 8 * 65536 + 2_000_000, peak  # bounded: not the megabytes broadcast
        self.socketio.emit("after", 1)
        assert await bystander.recv_event() == ["after", 1]
        hog.close()
        await self.assert_healthy(bystander)

    @gen_test(timeout=30)
    async def test_polling_client_that_never_polls_is_dropped_and_told_why(self):
        bystander = await self.polling_client()
        hog = await self.polling_client()  # never GETs again
        blob = "z" * 10_000
        for i in range(100):  # 1 MB, far over the 200 kB queue bound
            self.socketio.emit("blob", i, blob)
            bystander_packets = await bystander.get()
            assert any(p.startswith(f'42["blob",{i}') for p in bystander_packets)
            if self.socketio.engine.sessions[hog.sid].closed:
                break
        session = self.socketio.engine.sessions[hog.sid]
        assert session.closed and session._queued_bytes < 1000  # the queue was freed, CLOSE kept
        assert self.reasons == ["transport error"]
        self.assert_logged_once("polling queue over", levels=(logging.WARNING,))
        assert await hog.get() == ["1"]  # if it ever comes back, it learns it was closed
        await self.gone(hog.sid)
        await self.assert_healthy(bystander)
