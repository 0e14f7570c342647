"""The WebSocket frame reader (``tornado_sio/http/_fastpath.py``), and the stock fallback.

It feeds each read to ``FrameParser`` and handles every complete frame; these
tests feed it frames split, batched and interleaved in the ways a network can
deliver them, and run again on Tornado's own reader (an untested Tornado
version) and with permessage-deflate, where Tornado's reader stays. The RFC 6455
edge cases are in ``test_websocket_rfc6455.py``, fairness in
``test_websocket_fairness.py``, and the reader against the parser, for random
frame sequences, in ``test_websocket_reader_model.py``.
"""

import asyncio
import logging
from typing import Any, ClassVar

from tornado.testing import gen_test

from tests.hardening_support import HardeningTestCase, RawFrames, _client_frame
from tornado_sio.http import _fastpath


class FrameReaderTest(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_http_buffer_size": 1000}

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)

        @socketio.on("say")
        def say(text):
            return text

    async def ws(self):
        ws = await RawFrames.open(self.get_http_port())
        await ws.send_frame("40")
        assert (await ws.recv_text()).startswith("40{")
        return ws

    async def send_raw(self, ws, data: bytes, piece: int = 0):
        loop = asyncio.get_running_loop()
        if not piece:
            await loop.sock_sendall(ws.sock, data)
            return
        for i in range(0, len(data), piece):
            await loop.sock_sendall(ws.sock, data[i:i + piece])
            await asyncio.sleep(0.001)

    @gen_test
    async def test_a_frame_arriving_one_byte_at_a_time_is_handled(self):
        ws = await self.ws()
        await self.send_raw(ws, _client_frame(b'421["say","slow"]', 1, True, False), piece=1)
        assert await ws.recv_text() == '431["slow"]'

    @gen_test
    async def test_many_frames_in_one_read_are_all_handled_in_order(self):
        ws = await self.ws()
        frames = b"".join(_client_frame(f'42{i}["say",{i}]'.encode(), 1, True, False) for i in range(50))
        await self.send_raw(ws, frames)
        assert [await ws.recv_text() for _ in range(50)] == [f"43{i}[{i}]" for i in range(50)]

    @gen_test
    async def test_a_ping_between_fragments_is_answered_and_the_message_completes(self):
        ws = await self.ws()
        data = (_client_frame(b'421["say",', 1, False, False)
                + _client_frame(b"hi", 0x9, True, False)
                + _client_frame(b'"frag"]', 0, True, False))
        await self.send_raw(ws, data, piece=3)
        opcode, payload = await ws.recv_frame()
        assert (opcode, payload) == (0xA, b"hi")
        assert await ws.recv_text() == '431["frag"]'

    @gen_test
    async def test_fragments_adding_up_past_the_limit_are_refused_at_the_header(self):
        ws = await self.ws()
        await ws.send_frame("4" + "x" * 600, fin=False)
        await ws.send_frame(b"y" * 600, opcode=0, fin=True)
        assert await ws.close_code() == 1009
        await self.assert_healthy()

    @gen_test
    async def test_a_continuation_without_a_start_closes_that_client(self):
        ws = await self.ws()
        await ws.send_frame(b"orphan", opcode=0)
        assert await ws.eof()
        await self.assert_healthy()


class StockPathTest(FrameReaderTest):
    """On a Tornado outside the tested range, Tornado's own reader and writer do the same job."""

    def setUp(self):
        self.saved = (_fastpath._ENABLED, _fastpath._warned)
        _fastpath._ENABLED, _fastpath._warned = False, False
        super().setUp()

    def tearDown(self):
        super().tearDown()
        _fastpath._ENABLED, _fastpath._warned = self.saved

    @gen_test
    async def test_the_fallback_is_logged_once(self):
        await self.ws()
        await self.ws()
        self.assert_logged_once("outside the range tornado-sio was tested with", levels=(logging.WARNING,))
        self.log.clear()

    async def assert_healthy(self, *bystanders):
        self.log.clear()  # the fallback's own warning is expected here
        await super().assert_healthy(*bystanders)


def test_the_tested_range_covers_the_installed_tornado():
    import tornado

    low, high = _fastpath.TESTED_TORNADO
    assert low <= tornado.version_info[:3] < high, tornado.version
    assert _fastpath.enabled()


class DeflateFallbackTest(HardeningTestCase):
    """On Tornado's handler (``websocket_owned=False``) with permessage-deflate, Tornado's own reader
    runs; its 1009 still has no reason. (The owned connection's deflate: ``test_owned_deflate.py``.)"""

    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "websocket_compression": True,
                                                  "max_http_buffer_size": 1000, "websocket_owned": False}

    @gen_test
    async def test_tornados_reader_closes_an_oversized_message_with_1009_and_no_reason(self):
        ws = await RawFrames.open(self.get_http_port(), headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
        assert b"permessage-deflate" in ws.response_head
        await ws.send_frame("40")
        assert (await ws.recv_text()).startswith("40{")
        await ws.send_frame("4" + "x" * 2000)  # not compressed (RSV1 clear), over the limit
        assert await ws.close_frame() == (1009, b"")
        ws.close()
        self.assert_logged_once("message too big")
