"""RFC 6455 at the edges, against a live server: what a strict peer, a proxy or an attacker meets first.

Each test speaks raw frames on a bare socket (``RawFrames``) to the Engine.IO
WebSocket endpoint and checks the server's close frame, as RFC 6455 asks:
1002 for a protocol error (section 7.4.1), 1007 for text that is not UTF-8
(section 8.1, failed as soon as it is known), 1009 for a message over the size
limit. The cases follow the RFC sections the Autobahn|Testsuite groups them by
(framing, pings, reserved bits, opcodes, fragmentation, UTF-8, closing); the
tests are written from the RFC, not taken from any suite.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from tornado.testing import gen_test

from tests.hardening_support import HardeningTestCase, RawFrames, client_frame

LIMIT = 10_000  # max_http_buffer_size here: small, so an oversized message is cheap

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


class RFC6455Test(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_http_buffer_size": LIMIT}

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)
        self.reasons: list[str] = []

        @socketio.on("disconnect")
        def on_disconnect(reason):
            self.reasons.append(reason)

    async def connected(self) -> RawFrames:
        """A raw WebSocket client with its Socket.IO namespace connected."""
        ws = await RawFrames.open(self.port)
        await ws.send_frame("40")
        assert (await ws.recv_text()).startswith("40{")
        return ws

    async def assert_closed_with(self, ws: RawFrames, code: int | None) -> bytes:
        """The server's next close frame has *code*; then the server ends the TCP connection. Its reason."""
        frame = await ws.close_frame()
        assert frame is not None, "the server dropped the connection without a close frame"
        assert frame[0] == code, frame
        assert await ws.eof()
        ws.close()
        return frame[1]

    # -- closing (RFC 6455 5.5.1, 7.4) -------------------------------------------

    @gen_test(timeout=30)
    async def test_close_frames_with_invalid_codes_are_answered_with_1002(self):
        for code in (0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535):
            ws = await self.connected()
            await ws.send_raw(client_frame(close_payload(code), OP_CLOSE))
            await self.assert_closed_with(ws, 1002)
        await self.assert_healthy()

    @gen_test
    async def test_a_close_frame_with_a_one_byte_payload_is_answered_with_1002(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"\x03", OP_CLOSE))
        await self.assert_closed_with(ws, 1002)
        await self.assert_healthy()

    @gen_test(timeout=30)
    async def test_close_frames_with_valid_codes_are_echoed(self):
        for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999):
            ws = await self.connected()
            await ws.send_raw(client_frame(close_payload(code, b"bye"), OP_CLOSE))
            await self.assert_closed_with(ws, code)
        assert self.log.matching("message too big") == []  # an echoed 1009 is not a size failure
        await self.assert_healthy()

    @gen_test
    async def test_an_empty_close_frame_is_answered_with_an_empty_close_frame(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"", OP_CLOSE))
        await self.assert_closed_with(ws, None)
        await self.until(lambda: self.reasons == ["transport close"])

    @gen_test
    async def test_a_close_reason_that_is_not_utf8_is_answered_with_1007(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(close_payload(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"),
                                       OP_CLOSE))
        await self.assert_closed_with(ws, 1007)
        await self.assert_healthy()

    @gen_test
    async def test_frames_after_the_clients_close_are_ignored(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(close_payload(1000), OP_CLOSE) + client_frame(b'42["echo","late"]', OP_TEXT))
        await self.assert_closed_with(ws, 1000)
        await self.until(lambda: self.reasons == ["transport close"])
        assert self.log.matching("late") == []

    # -- UTF-8 (RFC 6455 8.1): fail fast ---------------------------------------------

    @gen_test
    async def test_invalid_utf8_fails_at_the_fragment_that_breaks_it_before_the_message_completes(self):
        ws = await self.connected()
        await ws.send_raw(client_frame('42["echo","κόσμε'.encode(), OP_TEXT, fin=False))
        await ws.send_raw(client_frame(b"\xce\xba\xed\xa0\x80", OP_CONT, fin=False))  # a UTF-16 surrogate
        # The final fragment is never sent: the server must not wait for it.
        await self.assert_closed_with(ws, 1007)
        await self.until(lambda: self.reasons == ["transport error"])
        await self.assert_healthy()

    @gen_test
    async def test_invalid_utf8_inside_one_large_frame_fails_before_the_frame_completes(self):
        ws = await self.connected()
        payload = b'42["echo","' + b"a" * 3000 + b"\xf4\x90\x80\x80" + b"b" * 5000 + b'"]'  # past U+10FFFF
        frame = client_frame(payload, OP_TEXT)
        await ws.send_raw(frame[:3100])  # the header, and the payload up to just past the bad bytes
        await self.assert_closed_with(ws, 1007)
        await self.assert_healthy()

    @gen_test
    async def test_a_text_message_ending_in_a_truncated_sequence_is_refused_with_1007(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b'42["echo","x"]\xe2\x82', OP_TEXT))
        await self.assert_closed_with(ws, 1007)
        await self.assert_healthy()

    @gen_test
    async def test_valid_utf8_split_mid_character_across_fragments_is_delivered(self):
        ws = await self.connected()
        text = '42["echo","κόσμε 𝄞"]'.encode()
        cut = text.index("𝄞".encode()) + 2  # inside the 4-byte character
        await ws.send_raw(client_frame(text[:cut], OP_TEXT, fin=False) + client_frame(text[cut:], OP_CONT))
        assert await ws.recv_text() == '42["echo","κόσμε 𝄞"]'

    # -- framing (RFC 6455 5.2, 5.5) ---------------------------------------------------

    @gen_test
    async def test_a_control_frame_with_a_16_bit_length_field_is_refused_with_1002(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"hello", OP_PING, length_form=16))
        await self.assert_closed_with(ws, 1002)
        await self.assert_healthy()

    @gen_test
    async def test_a_control_frame_with_a_64_bit_length_field_is_refused_with_1002(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"", OP_PONG, length_form=64))
        await self.assert_closed_with(ws, 1002)
        await self.assert_healthy()

    @gen_test
    async def test_a_control_frame_longer_than_125_bytes_is_refused_with_1002(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"p" * 126, OP_PING))
        await self.assert_closed_with(ws, 1002)
        await self.assert_healthy()

    @gen_test
    async def test_an_unmasked_client_frame_is_refused_with_1002(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b'42["echo","clear"]', OP_TEXT, masked=False))
        await self.assert_closed_with(ws, 1002)
        await self.until(lambda: self.reasons == ["transport error"])
        await self.assert_healthy()

    @gen_test(timeout=20)
    async def test_frames_with_reserved_bits_set_are_refused_with_1002(self):
        for rsv in range(1, 8):
            ws = await self.connected()
            await ws.send_raw(client_frame(b'42["echo","rsv"]', OP_TEXT, rsv=rsv))
            await self.assert_closed_with(ws, 1002)
        await self.assert_healthy()

    @gen_test(timeout=20)
    async def test_frames_with_reserved_opcodes_are_refused_with_1002(self):
        for opcode in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
            ws = await self.connected()
            await ws.send_raw(client_frame(b"", opcode))
            await self.assert_closed_with(ws, 1002)
        await self.assert_healthy()

    @gen_test
    async def test_a_data_frame_with_a_non_minimal_length_field_is_accepted(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b'42["echo","long form"]', OP_TEXT, length_form=64))
        assert await ws.recv_text() == '42["echo","long form"]'

    # -- fragmentation (RFC 6455 5.4) ----------------------------------------------------

    @gen_test
    async def test_a_fragmented_message_with_pings_between_its_fragments_is_delivered_whole(self):
        ws = await self.connected()
        data = (client_frame(b'42["echo",', OP_TEXT, fin=False)
                + client_frame(b"first", OP_PING)
                + client_frame(b'"frag', OP_CONT, fin=False)
                + client_frame(b"second", OP_PING)
                + client_frame(b'mented"]', OP_CONT))
        await ws.send_raw(data, piece=5)
        assert await ws.recv_frame() == (OP_PONG, b"first")
        assert await ws.recv_frame() == (OP_PONG, b"second")
        assert await ws.recv_text() == '42["echo","fragmented"]'

    @gen_test
    async def test_a_continuation_frame_without_a_message_to_continue_is_refused_with_1002(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"orphan", OP_CONT))
        await self.assert_closed_with(ws, 1002)
        await self.assert_healthy()

    @gen_test
    async def test_a_new_message_inside_a_fragmented_one_is_refused_with_1002(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b'42["echo",', OP_TEXT, fin=False) + client_frame(b'"x"]', OP_TEXT))
        await self.assert_closed_with(ws, 1002)
        await self.assert_healthy()

    @gen_test
    async def test_a_fragmented_control_frame_is_refused_with_1002(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"half", OP_PING, fin=False))
        await self.assert_closed_with(ws, 1002)
        await self.assert_healthy()

    # -- pings (RFC 6455 5.5.2, 5.5.3) ----------------------------------------------------

    @gen_test
    async def test_a_ping_is_answered_with_a_pong_carrying_its_payload(self):
        ws = await self.connected()
        payload = bytes(range(125))  # the largest a control frame may carry
        await ws.send_raw(client_frame(payload, OP_PING))
        assert await ws.recv_frame() == (OP_PONG, payload)

    @gen_test
    async def test_an_unsolicited_pong_is_ignored(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"heartbeat", OP_PONG) + client_frame(b'42["echo","after"]', OP_TEXT))
        assert await ws.recv_text() == '42["echo","after"]'

    # -- message size: 1009 ----------------------------------------------------------------

    @gen_test
    async def test_a_message_over_the_limit_is_closed_with_1009_and_no_reason(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b'42["echo","' + b"x" * LIMIT + b'"]', OP_TEXT))
        assert await self.assert_closed_with(ws, 1009) == b""  # as Node's ws: no reason text
        await self.until(lambda: self.reasons == ["transport error"])
        await self.assert_healthy()

    @gen_test
    async def test_a_message_over_the_limit_is_refused_at_its_header_before_its_payload(self):
        ws = await self.connected()
        frame = client_frame(b"x" * (LIMIT + 1), OP_BINARY)
        await ws.send_raw(frame[:14])  # only the header (64-bit length field) and the mask
        assert await self.assert_closed_with(ws, 1009) == b""

    # -- what the server does about it -------------------------------------------------------

    @gen_test
    async def test_a_protocol_error_is_logged_once_at_info_with_the_sid(self):
        ws = await self.connected()
        sid = ws.handshake["sid"]
        await ws.send_raw(client_frame(close_payload(1005), OP_CLOSE))
        await self.assert_closed_with(ws, 1002)
        self.assert_logged_once("websocket protocol error", levels=(logging.INFO,))
        assert sid in self.log.matching("websocket protocol error")[0].getMessage()

    @gen_test
    async def test_a_failed_connection_is_a_transport_error_for_its_session(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"\xff", OP_TEXT))
        await self.assert_closed_with(ws, 1007)
        await self.until(lambda: self.reasons == ["transport error"])
        await self.until(self.no_client_state)

    @gen_test
    async def test_a_protocol_error_on_an_upgrade_probe_closes_the_probe_and_polling_goes_on(self):
        client = await self.polling_client()
        probe = await RawFrames.open(self.port, query=f"EIO=4&transport=websocket&sid={client.sid}",
                                     read_open=False)
        await probe.send_raw(client_frame(b"2probe", OP_TEXT, masked=False))
        await self.assert_closed_with(probe, 1002)
        await self.polling_echoes(client, "still polling")
        assert self.reasons == []

    @gen_test(timeout=30)
    async def test_a_failed_client_that_never_closes_is_cut_off_by_the_close_timeout(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"", 0x3) + client_frame(json.dumps(["echo", "x" * 100]).encode(), OP_TEXT) * 50)
        frame = await ws.close_frame()
        assert frame is not None and frame[0] == 1002
        # The client neither answers the close nor closes its socket: Tornado's close timeout (5 s) ends it.
        await self.until(lambda: self.reasons == ["transport error"], timeout=20)
        ws.close()
        assert self.log.matching("late") == []
        await self.assert_healthy()


class SockJSWebSocketRFC6455Test(HardeningTestCase):
    """The SockJS WebSocket transport reads its frames with the same strict reader."""

    def tearDown(self) -> None:
        if self.socketio.sockjs_endpoint is not None:
            self.socketio.sockjs_endpoint.stop()
        super().tearDown()

    async def sockjs_ws(self) -> RawFrames:
        assert self.socketio.options.sockjs, "SockJS is on by default"
        ws = await RawFrames.open(self.port, query="", read_open=False, path="/sockjs/000/abcdefgh/websocket")
        assert await ws.recv_frame() == (OP_TEXT, b"o")
        return ws

    @gen_test
    async def test_an_invalid_close_code_is_answered_with_1002(self):
        ws = await self.sockjs_ws()
        await ws.send_raw(client_frame(close_payload(1005), OP_CLOSE))
        frame = await ws.close_frame()
        assert frame is not None and frame[0] == 1002, frame
        self.assert_logged_once("sockjs websocket protocol error")

    @gen_test
    async def test_invalid_utf8_is_answered_with_1007(self):
        ws = await self.sockjs_ws()
        await ws.send_raw(client_frame(b'["\xc0\xaf"]', OP_TEXT))
        frame = await ws.close_frame()
        assert frame is not None and frame[0] == 1007, frame
