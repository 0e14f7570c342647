"""permessage-deflate (RFC 7692) on the owned WebSocket connection, and ``emit(..., compress=False)``.

With ``websocket_compression=True`` and a client that offers it, the owned
connection answers ``permessage-deflate; server_no_context_takeover``, inflates
what the client compresses (its window carried over from message to message,
unless it promised ``client_no_context_takeover``) with the decompressed size
bounded by ``max_http_buffer_size``, and sends messages of 1 KiB and more
compressed, once per broadcast for every such client. ``compress=False`` on an
emit sends it uncompressed. Frames are built by hand here (zlib on the client
side); the last test uses Node's ``ws`` client as a browser would.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import zlib
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado.testing import gen_test

from tests.hardening_support import HardeningTestCase, RawFrames, client_frame
from tests.support import ROOT, need_node_module
from tornado_sio.http.owned import EngineWebSocket, negotiate_deflate
from tornado_sio.protocol.wsframe import FrameParser, Inflater, Message, WebSocketProtocolError

OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
TAIL = b"\x00\x00\xff\xff"


class ClientDeflater:
    """A client's compressor: context kept across messages unless *fresh*."""

    def __init__(self, fresh: bool = False) -> None:
        self.fresh = fresh
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, -15)

    def message(self, data: bytes) -> bytes:
        if self.fresh:
            self.compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        out = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(TAIL) else out


def inflate(payload: bytes) -> bytes:
    return zlib.decompressobj(-15).decompress(payload + TAIL)


@pytest.mark.parametrize(("offer", "answer"), [
    ("permessage-deflate; client_max_window_bits", ("permessage-deflate; server_no_context_takeover", False)),
    ("permessage-deflate", ("permessage-deflate; server_no_context_takeover", False)),
    ("permessage-deflate; client_no_context_takeover",
     ("permessage-deflate; server_no_context_takeover; client_no_context_takeover", True)),
    ("permessage-deflate; server_max_window_bits=15",
     ("permessage-deflate; server_no_context_takeover; server_max_window_bits=15", False)),
    ("permessage-deflate; server_max_window_bits=10, permessage-deflate",
     ("permessage-deflate; server_no_context_takeover", False)),
])
def test_an_acceptable_offer_is_answered_with_server_no_context_takeover(offer, answer):
    assert negotiate_deflate(offer) == answer


@pytest.mark.parametrize("offer", [
    "", "x-webkit-deflate-frame", "permessage-deflate; foo", "permessage-deflate; server_max_window_bits=9",
    "permessage-deflate; client_max_window_bits=7", "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
])
def test_an_offer_the_server_cannot_honour_is_declined(offer):
    assert negotiate_deflate(offer) is None


@st.composite
def compressed_stream(draw: Any) -> tuple[list[str], bytes]:
    """Text messages compressed with one client context, fragmented anywhere, as one byte stream."""
    texts = draw(st.lists(st.text(max_size=80), min_size=1, max_size=6))
    deflater = ClientDeflater(fresh=False)
    data = b""
    for text in texts:
        raw = deflater.message(text.encode())
        cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=3)))
        parts = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
        for i, part in enumerate(parts):
            first = i == 0
            frame = client_frame(part, 1 if first else 0, fin=i == len(parts) - 1, rsv=4 if first else 0)
            data += frame
    return texts, data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=compressed_stream(), piece=st.integers(1, 50))
def test_the_parser_inflates_fragmented_messages_with_the_context_carried_over(stream, piece):
    texts, data = stream
    parser = FrameParser(10_000, inflater=Inflater())
    got = []
    for i in range(0, len(data), piece):
        parser.feed(data[i:i + piece])
        got += [event.data for event in parser.events() if isinstance(event, Message)]
    assert got == texts


def test_rsv1_on_a_continuation_frame_is_a_protocol_error():
    parser = FrameParser(1000, inflater=Inflater())
    parser.feed(client_frame(b"a", 1, fin=False, rsv=4) + client_frame(b"b", 0, rsv=4))
    with pytest.raises(WebSocketProtocolError) as failure:
        list(parser.events())
    assert failure.value.code == 1002


class DeflateCase(HardeningTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "websocket_compression": True,
                                                  "max_http_buffer_size": 100_000}

    def setup_handlers(self, socketio):
        super().setup_handlers(socketio)

        @socketio.on("say")
        def say(text):
            return text

        @socketio.on("shout")
        def shout(text, compress):
            socketio.emit("heard", text, compress=compress)

    async def connected(self, headers: dict | None = None) -> RawFrames:
        ws = await RawFrames.open(self.port, headers=OFFER if headers is None else headers)
        await ws.send_frame("40")
        assert (await ws.recv_text()).startswith("40{")
        return ws

    async def raw_frame(self, ws: RawFrames) -> tuple[int, bytes]:
        """The next frame with its first byte (RSV1 visible), answering nothing."""
        assert await ws._fill(2, 5)
        first = ws.buffer[0]
        opcode, payload = await ws.recv_frame()
        return first, payload


class OwnedDeflateTest(DeflateCase):
    @gen_test
    async def test_the_101_accepts_the_offer_and_the_connection_stays_owned(self):
        ws = await self.connected()
        assert b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover" in ws.response_head
        session = self.socketio.engine.sessions[ws.handshake["sid"]]
        assert type(session._wire) is EngineWebSocket and session._wire.deflate
        ws.close()

    @gen_test
    async def test_compressed_messages_sharing_the_clients_context_are_inflated(self):
        ws = await self.connected()
        deflater = ClientDeflater()
        for i, text in enumerate(["hello " * 50, "hello " * 60, "über"]):
            packet = f'42{i}["say",{json.dumps(text, ensure_ascii=False)}]'.encode()
            await ws.send_raw(client_frame(deflater.message(packet), 1, rsv=4))
            first, payload = await self.raw_frame(ws)
            reply = inflate(payload) if first & 0x40 else payload
            assert reply.decode() == f"43{i}[{json.dumps(text, ensure_ascii=False)}]"
        ws.close()

    @gen_test
    async def test_a_reply_of_1_kib_or_more_is_compressed_and_a_short_one_is_not(self):
        ws = await self.connected()
        await ws.send_frame('42["shout","' + "y" * 2000 + '",true]')
        first, payload = await self.raw_frame(ws)
        assert first == 0xC1 and inflate(payload) == ('42["heard","' + "y" * 2000 + '"]').encode()
        await ws.send_frame('42["shout","short",true]')
        assert await self.raw_frame(ws) == (0x81, b'42["heard","short"]')
        ws.close()

    @gen_test
    async def test_emit_with_compress_false_is_sent_uncompressed(self):
        ws = await self.connected()
        await ws.send_frame('42["shout","' + "n" * 2000 + '",false]')
        first, payload = await self.raw_frame(ws)
        assert first == 0x81 and payload == ('42["heard","' + "n" * 2000 + '"]').encode()
        ws.close()

    @gen_test
    async def test_a_client_that_did_not_offer_compression_gets_plain_frames(self):
        ws = await self.connected(headers={})
        assert b"permessage-deflate" not in ws.response_head
        await ws.send_frame('42["shout","' + "p" * 2000 + '",true]')
        first, _ = await self.raw_frame(ws)
        assert first == 0x81
        ws.close()


class DeflateLimitsTest(DeflateCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "websocket_compression": True,
                                                  "max_http_buffer_size": 1000}

    @gen_test
    async def test_a_small_compressed_bomb_is_refused_with_1009_before_it_inflates(self):
        ws = await self.connected()
        bomb = ClientDeflater().message(b"4" + b"0" * 200_000)
        assert len(bomb) < 1000  # the frame header passes; its inflated size does not
        await ws.send_raw(client_frame(bomb, 1, rsv=4))
        assert await ws.close_frame() == (1009, b"")
        self.assert_logged_once("message too big")
        ws.close()
        await self.assert_healthy()

    @gen_test
    async def test_corrupt_compressed_data_closes_with_1007(self):
        ws = await self.connected()
        await ws.send_raw(client_frame(b"\xff\xff\xff\xff not deflate", 1, rsv=4))
        assert await ws.close_frame() == (1007, b"invalid compressed data")
        ws.close()
        await self.assert_healthy()

    @gen_test
    async def test_rsv1_without_negotiation_is_a_protocol_error(self):
        ws = await self.connected(headers={})
        await ws.send_raw(client_frame(ClientDeflater().message(b'42["say","x"]'), 1, rsv=4))
        assert await ws.close_code() == 1002
        ws.close()


NODE_WS_CLIENT = r"""
const WebSocket = require("ws");
const ws = new WebSocket(process.argv[process.argv.length - 1], {perMessageDeflate: {threshold: 0}});
const big = "z".repeat(5000);
ws.on("message", (data, isBinary) => {
  const text = data.toString();
  if (text.startsWith("0")) { ws.send("40"); }
  else if (text.startsWith("40")) { ws.send(`421["say","${big}"]`); }
  else if (text === "2") { ws.send("3"); }
  else {
    console.log(JSON.stringify({extensions: ws.extensions, reply: text.length, ok: text === `431["${big}"]`}));
    ws.close();
  }
});
ws.on("error", (e) => { console.log(JSON.stringify({error: String(e)})); process.exit(1); });
"""


class NodeWsClientTest(DeflateCase):
    @gen_test(timeout=30)
    async def test_nodes_ws_client_compresses_and_reads_compressed_replies(self):
        modules = need_node_module("ws")
        url = f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket"
        proc = await asyncio.create_subprocess_exec(
            "node", "-e", NODE_WS_CLIENT, url, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(modules)}, cwd=str(ROOT))
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        lines = out.decode().strip().splitlines()
        assert lines, err.decode()
        result = json.loads(lines[-1])
        assert result == {"extensions": "permessage-deflate", "reply": len('431[""]') + 5000, "ok": True}, (result, err)

