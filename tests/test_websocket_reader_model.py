"""The live WebSocket reader agrees with the sans-I/O parser it is built on, for any frame sequence.

Hypothesis draws sequences of client frames, valid and broken (reserved bits
and opcodes, unmasked frames, extended lengths on control frames, invalid
UTF-8, invalid close codes, oversized messages, fragments), and cuts the bytes
into random pieces. The same bytes go

* to :class:`~tornado_sio.protocol.wsframe.FrameParser` in one piece: the
  model, giving the events and the error the connection must end with;
* over a real socket pair to Tornado's ``WebSocketProtocol13`` running the
  reader of ``tornado_sio/http/_fastpath.py``, with a small fairness budget in
  half the examples so that it stops and yields in the middle of its buffer.

The outcomes must be identical: the handler sees the same messages, pings and
pongs in the same order; the wire carries a pong for each ping and then the
close frame the model calls for (the echo of a client's close, or the error's
code and reason), or nothing when the bytes simply end.

The reader gives the parser Tornado's C masking function; the last test shows
that a parser given any masking function parses exactly as with its own, fed
in pieces and drained through both ``events`` and ``next_event``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tornado.iostream import IOStream
from tornado.websocket import _WebSocketParams

from tests.hardening_support import client_frame
from tornado_sio.http import _fastpath
from tornado_sio.protocol.wsframe import Close, FrameParser, Message, Ping, Pong, WebSocketProtocolError

MAX_MESSAGE = 48  # small, so 1009 is drawn often

VALID_CLOSE_CODES = [1000, 1001, 1002, 1007, 1011, 1014, 3000, 3999, 4000, 4999]
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
BROKEN_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]


@st.composite
def utf8_payload(draw: Any, rough: bool, max_size: int = 30) -> bytes:
    """Text as UTF-8; when *rough*, now and then with an invalid sequence spliced in."""
    text = draw(st.text(max_size=max_size)).encode("utf-8")
    if rough and draw(st.integers(0, 6)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(BROKEN_UTF8)) + text[at:]
    return text


@st.composite
def close_payload(draw: Any, rough: bool) -> bytes:
    """An empty close, or a code and a reason; when *rough*, also 1 byte, invalid codes, broken reasons."""
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return b""
    if rough and shape == 1:
        return draw(st.binary(min_size=1, max_size=1))
    codes = VALID_CLOSE_CODES + (INVALID_CLOSE_CODES if rough else [])
    return struct.pack("!H", draw(st.sampled_from(codes))) + draw(utf8_payload(rough, max_size=10))


def shaped(draw: Any, rough: bool, payload: bytes, opcode: int, fin: bool = True) -> bytes:
    """A client frame; when *rough*, now and then with reserved bits, no mask or an extended length field."""
    if not rough:
        return client_frame(payload, opcode, fin=fin, length_form=draw(st.sampled_from([None] * 8 + [16, 64]))
                            if opcode < 8 else None)
    return client_frame(payload, opcode, fin=fin,
                        rsv=draw(st.sampled_from([0] * 30 + [1, 4])),
                        masked=draw(st.sampled_from([True] * 30 + [False])),
                        length_form=draw(st.sampled_from([None] * 15 + [16, 64])))


@st.composite
def control_frame(draw: Any, rough: bool) -> bytes:
    """A ping or a pong; when *rough*, now and then over 125 bytes or fragmented."""
    opcode = draw(st.sampled_from([0x9, 0x9, 0xA]))
    size = draw(st.sampled_from([20] * 10 + [126])) if rough else 20
    fin = draw(st.sampled_from([True] * 15 + [False])) if rough else True
    return shaped(draw, rough, draw(st.binary(max_size=size)), opcode, fin=fin)


@st.composite
def message(draw: Any, rough: bool) -> list[bytes]:
    """A text or binary message in 1 to 4 fragments, with pings and pongs between them."""
    text = draw(st.booleans())
    parts = draw(st.lists(utf8_payload(rough) if text else st.binary(max_size=40), min_size=1, max_size=4))
    if text and len(parts) > 1:
        whole = b"".join(parts)  # recut the text anywhere, in the middle of characters too
        cuts = sorted(draw(st.lists(st.integers(0, len(whole)), min_size=len(parts) - 1, max_size=len(parts) - 1)))
        parts = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)])]
    frames = []
    for i, part in enumerate(parts):
        opcode = (0x1 if text else 0x2) if i == 0 else 0x0
        frames.append(shaped(draw, rough, part, opcode, fin=i == len(parts) - 1))
        if i < len(parts) - 1:
            frames += draw(st.lists(control_frame(rough), max_size=2))
    return frames


@st.composite
def odd_frame(draw: Any, rough: bool) -> bytes:
    """A close; when *rough*, also a continuation with nothing to continue or a reserved opcode."""
    kind = draw(st.sampled_from(["close", "close", "continuation", "reserved"])) if rough else "close"
    if kind == "close":
        return shaped(draw, rough, draw(close_payload(rough)), 0x8)
    if kind == "continuation":
        return shaped(draw, rough, draw(st.binary(max_size=10)), 0x0, fin=draw(st.booleans()))
    return shaped(draw, rough, b"", draw(st.sampled_from([3, 7, 0xB, 0xF])))


@st.composite
def frame_sequence(draw: Any) -> bytes:
    """Mostly whole messages and control frames, now and then a close; half the sequences rough."""
    rough = draw(st.booleans())
    frames: list[bytes] = []
    for _ in range(draw(st.integers(0, 10))):
        pick = draw(st.integers(0, 15))
        if pick < 11:
            frames += draw(message(rough))
        elif pick < 14:
            frames.append(draw(control_frame(rough)))
        else:
            frames.append(draw(odd_frame(rough)))
    return b"".join(frames)


def model(data: bytes) -> tuple[list[tuple[Any, ...]], list[tuple[int, bytes]], WebSocketProtocolError | None]:
    """What the parser alone says: the handler's calls, the server's frames, and the failure."""
    parser = FrameParser(MAX_MESSAGE)
    parser.feed(data)
    calls: list[tuple[Any, ...]] = []
    wire: list[tuple[int, bytes]] = []
    try:
        for event in parser.events():
            if isinstance(event, Message):
                calls.append(("message", event.data))
            elif isinstance(event, Ping):
                calls.append(("ping", event.data))
                wire.append((0xA, event.data))
            elif isinstance(event, Pong):
                calls.append(("pong", event.data))
            elif isinstance(event, Close):
                wire.append((0x8, b"" if event.code is None else struct.pack("!H", event.code)))
    except WebSocketProtocolError as exc:
        wire.append((0x8, struct.pack("!H", exc.code) + exc.reason.encode()))
        return calls, wire, exc
    return calls, wire, None


class RecordingHandler:
    """The parts of a ``WebSocketHandler`` the protocol object calls, recording each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.failures: list[tuple[int, str]] = []
        self.connection_closes = 0

    def on_message(self, message: str | bytes) -> None:
        self.calls.append(("message", message))

    def on_ping(self, data: bytes) -> None:
        self.calls.append(("ping", data))

    def on_pong(self, data: bytes) -> None:
        self.calls.append(("pong", data))

    def websocket_failed(self, code: int, why: str) -> None:
        self.failures.append((code, why))

    def on_ws_connection_close(self, code: int | None = None, reason: str | None = None) -> None:
        self.connection_closes += 1

    def log_exception(self, *exc_info: Any) -> None:
        raise AssertionError(f"the handler raised: {exc_info!r}")


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split the server's unmasked output into ``(opcode, payload)`` frames."""
    frames, pos = [], 0
    while pos < len(data):
        first, length = data[pos], data[pos + 1] & 0x7F
        assert length < 126 and data[pos + 1] < 0x80, data
        frames.append((first & 0x0F, data[pos + 2 : pos + 2 + length]))
        pos += 2 + length
    return frames


async def read_to_eof(sock: socket.socket) -> bytes:
    """All the client socket receives until the server ends the connection."""
    loop = asyncio.get_running_loop()
    received = b""
    while True:
        try:
            chunk = await loop.sock_recv(sock, 65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


async def live(data: bytes, cuts: list[int]) -> tuple[RecordingHandler, list[tuple[int, bytes]]]:
    """Run the fast-path reader over a socket pair on *data* sent in pieces; the handler and the wire.

    The client half-closes only once the server has read every byte and waits
    for more (or has ended the connection itself): Tornado closes its stream
    at EOF, and a close frame could not be written after that.
    """
    loop = asyncio.get_running_loop()
    server_sock, client_sock = socket.socketpair()
    client_sock.setblocking(False)
    handler = RecordingHandler()
    protocol = _fastpath._ParsedProtocol13(handler, False, _WebSocketParams(max_message_size=MAX_MESSAGE))
    stream = protocol.stream = IOStream(server_sock)
    reading = asyncio.ensure_future(protocol._receive_frame_loop())
    receiving = asyncio.ensure_future(read_to_eof(client_sock))
    pos = 0
    for size in [*cuts, len(data)]:
        piece = data[pos : pos + size]
        pos += len(piece)
        if piece:
            try:
                await loop.sock_sendall(client_sock, piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server closed after a client Close: the rest is unsent, as it is unread
        await asyncio.sleep(0)
    for _ in range(100_000):  # bounded: a few turns of the loop in practice
        idle = protocol._wire_bytes_in == len(data) and stream.reading()
        if idle or receiving.done() or reading.done():
            break
        await asyncio.sleep(0)
    else:
        raise AssertionError("the reader neither consumed the input nor ended the connection")
    try:
        client_sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    received = await asyncio.wait_for(receiving, 10)
    await asyncio.wait_for(reading, 10)
    client_sock.close()
    return handler, server_frames(received)


@pytest.mark.parametrize("threshold", [2 * 1024, 256 * 1024], ids=["small-budget", "tornado-budget"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=frame_sequence(), cuts=st.lists(st.integers(1, 60), max_size=16))
def test_the_live_reader_and_the_parser_agree_on_any_frame_sequence(threshold, data, cuts):
    calls, wire, error = model(data)
    event(f"ends with {error.code if error else 'close' if wire and wire[-1][0] == 8 else 'eof'}")
    saved = _fastpath._YIELD_THRESHOLD
    _fastpath._YIELD_THRESHOLD = threshold
    try:
        handler, sent = asyncio.run(live(data, cuts))
    finally:
        _fastpath._YIELD_THRESHOLD = saved
    assert handler.calls == calls
    assert sent == wire
    assert handler.failures == ([] if error is None else [(error.code, str(error))])
    assert handler.connection_closes == 1


def python_unmask(mask: bytes, data: bytes) -> bytes:
    """A plain masking function, the shape of Tornado's C ``websocket_mask``."""
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=frame_sequence(), cuts=st.lists(st.integers(1, 60), max_size=16))
def test_a_parser_given_a_masking_function_parses_exactly_as_the_built_in_one(data, cuts):
    parser = FrameParser(MAX_MESSAGE, unmask=python_unmask)
    got: list[tuple[Any, ...]] = []
    failure = None
    pos = 0
    try:
        for size in [*cuts, len(data)]:
            parser.feed(data[pos : pos + size])
            pos += size
            for event in parser.events(max_frames=3):
                got.append(event)
            while parser.buffered and (event := parser.next_event()) is not None:
                got.append(event)
    except WebSocketProtocolError as exc:
        failure = exc
    expected = FrameParser(MAX_MESSAGE)
    expected.feed(data)
    wanted: list[Any] = []
    try:
        wanted.extend(expected.events())
    except WebSocketProtocolError as exc:
        assert failure is not None and (failure.code, failure.reason) == (exc.code, exc.reason)
    else:
        assert failure is None
    assert got == wanted
