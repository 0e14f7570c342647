"""The batched WebSocket frame reader (transports/websocket.py ``_Protocol13``).

It parses every complete frame of each read; these tests feed it frames split,
batched and interleaved in the ways a network can deliver them.
"""

import asyncio

from tornado.testing import gen_test

from tests.hardening_support import HardeningTestCase, RawFrames, _client_frame


class FrameReaderTest(HardeningTestCase):
    socketio_options = {"cors_allowed_origins": "*", "max_http_buffer_size": 1000}

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
