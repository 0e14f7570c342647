"""Server-to-client WebSocket frames (tornado_sio.protocol.wsframe)."""

from __future__ import annotations

import struct

import pytest

from tornado_sio.protocol.wsframe import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, build_frame


def parse_frame(frame: bytes):
    """A small RFC 6455 5.2 parser: return (fin, rsv, opcode, masked, payload) of one whole frame."""
    first, second = frame[0], frame[1]
    length = second & 0x7F
    offset = 2
    if length == 126:
        (length,) = struct.unpack_from("!H", frame, offset)
        offset += 2
    elif length == 127:
        (length,) = struct.unpack_from("!Q", frame, offset)
        offset += 8
    masked = bool(second & 0x80)
    payload = frame[offset:]
    assert len(payload) == length, "frame length does not match its header"
    return bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F, masked, payload


def test_rfc_example_unmasked_hello_text_frame():
    # RFC 6455 5.7: "A single-frame unmasked text message".
    assert build_frame(b"Hello") == bytes.fromhex("810548656c6c6f")


def test_binary_opcode_sets_the_low_nibble():
    assert build_frame(b"\x01\x02", OP_BINARY) == b"\x82\x02\x01\x02"


def test_empty_payload_is_a_two_byte_frame():
    assert build_frame(b"") == b"\x81\x00"


@pytest.mark.parametrize(
    "length, header",
    [
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (256, b"\x81\x7e\x01\x00"),  # RFC 6455 5.7: 256 bytes in the 16-bit form
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),  # RFC 6455 5.7: 64-bit form
    ],
)
def test_length_uses_the_shortest_form(length, header):
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    frame = build_frame(payload)
    assert frame[: len(header)] == header
    assert frame[len(header):] == payload


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_frame_parses_back_final_unmasked_with_the_payload(length, opcode):
    payload = b"\xab" * length
    assert parse_frame(build_frame(payload, opcode)) == (True, 0, opcode, False, payload)


def test_bytes_like_payloads_are_accepted():
    assert build_frame(bytearray(b"ab"), OP_BINARY) == b"\x82\x02ab"
    assert build_frame(memoryview(b"abc")[1:]) == b"\x81\x02bc"


def test_control_frame_up_to_125_bytes_is_built():
    assert build_frame(b"\x03\xe8", OP_CLOSE) == b"\x88\x02\x03\xe8"
    assert parse_frame(build_frame(b"p" * 125, OP_PING))[2] == OP_PING


def test_control_frame_over_125_bytes_is_refused():
    with pytest.raises(ValueError):
        build_frame(b"p" * 126, OP_PING)


@pytest.mark.parametrize("opcode", [-1, 16, 0x80])
def test_invalid_opcode_is_refused(opcode):
    with pytest.raises(ValueError):
        build_frame(b"x", opcode)


def test_str_payload_is_refused():
    with pytest.raises(TypeError):
        build_frame("text")  # type: ignore[arg-type]


class _Stream:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data


@pytest.mark.parametrize("length", [0, 5, 125, 126, 65535, 65536])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_frame_matches_tornados_own_server_frame(length, opcode):
    """Cross-check with the frame Tornado's WebSocket server writes (private API: skipped if it moved)."""
    websocket = pytest.importorskip("tornado.websocket")
    protocol_class = getattr(websocket, "WebSocketProtocol13", None)
    if protocol_class is None or not hasattr(protocol_class, "_write_frame"):
        pytest.skip("tornado's WebSocketProtocol13._write_frame is not available")
    protocol = object.__new__(protocol_class)
    protocol.mask_outgoing = False
    protocol._wire_bytes_out = 0
    protocol.stream = _Stream()
    payload = b"z" * length
    try:
        protocol._write_frame(True, opcode, payload)
    except AttributeError as exc:  # pragma: no cover - a different tornado internals layout
        pytest.skip(f"tornado internals changed: {exc}")
    assert build_frame(payload, opcode) == protocol.stream.written
