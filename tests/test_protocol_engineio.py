"""Engine.IO v4 packet and long-polling payload encoding (tornado_sio.protocol.engineio)."""

from __future__ import annotations

import json

import pytest

from tornado_sio.exceptions import EncodeError, PayloadTooLarge, ProtocolError
from tornado_sio.options import Options
from tornado_sio.protocol.engineio import (
    CLOSE,
    ERROR_CODES,
    NOOP,
    OPEN,
    PING,
    PING_PROBE,
    PONG,
    PROBE_PING,
    PROBE_PONG,
    RECORD_SEPARATOR,
    UPGRADE,
    ErrorCode,
    Packet,
    PacketType,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
    error_body,
    handshake_payload,
)

# (packet, wire form) for every packet type, both directions.
ROUND_TRIPS = [
    pytest.param(Packet(PacketType.OPEN, '{"sid":"abc"}'), '0{"sid":"abc"}', id="open"),
    pytest.param(Packet(PacketType.CLOSE), "1", id="close"),
    pytest.param(Packet(PacketType.PING), "2", id="ping"),
    pytest.param(Packet(PacketType.PING, PING_PROBE), "2probe", id="ping-probe"),
    pytest.param(Packet(PacketType.PONG), "3", id="pong"),
    pytest.param(Packet(PacketType.PONG, PING_PROBE), "3probe", id="pong-probe"),
    pytest.param(Packet(PacketType.MESSAGE, "HelloWorld"), "4HelloWorld", id="message"),
    pytest.param(Packet(PacketType.MESSAGE, ""), "4", id="empty-message"),
    pytest.param(Packet(PacketType.MESSAGE, "héllo ☃ 😀"), "4héllo ☃ 😀", id="unicode-message"),
    pytest.param(Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04"), b"\x01\x02\x03\x04", id="binary"),
    pytest.param(Packet(PacketType.MESSAGE, b""), b"", id="empty-binary"),
    pytest.param(Packet(PacketType.UPGRADE), "5", id="upgrade"),
    pytest.param(Packet(PacketType.NOOP), "6", id="noop"),
]


@pytest.mark.parametrize("packet, wire", ROUND_TRIPS)
def test_every_packet_type_encodes_to_its_wire_form(packet, wire):
    assert encode_packet(packet) == wire


@pytest.mark.parametrize("packet, wire", ROUND_TRIPS)
def test_every_packet_type_decodes_from_its_wire_form(packet, wire):
    decoded = decode_packet(wire)
    assert decoded == packet
    assert type(decoded.type) is PacketType


def test_packet_type_values_follow_the_spec():
    assert [(t.name, int(t)) for t in PacketType] == [
        ("OPEN", 0), ("CLOSE", 1), ("PING", 2), ("PONG", 3),
        ("MESSAGE", 4), ("UPGRADE", 5), ("NOOP", 6),
    ]


def test_packet_is_frozen():
    packet = Packet(PacketType.PING)
    with pytest.raises(AttributeError):
        packet.data = "x"  # type: ignore[misc]


def test_binary_message_encodes_bytes_like_as_bytes():
    assert encode_packet(Packet(PacketType.MESSAGE, bytearray(b"ab"))) == b"ab"  # type: ignore[arg-type]
    assert encode_packet(Packet(PacketType.MESSAGE, memoryview(b"cd"))) == b"cd"  # type: ignore[arg-type]


def test_decode_packet_accepts_bytearray_as_binary_message():
    assert decode_packet(bytearray(b"\x00\xff")) == Packet(PacketType.MESSAGE, b"\x00\xff")  # type: ignore[arg-type]


def test_message_text_that_looks_like_another_packet_stays_message_data():
    assert decode_packet("42probe") == Packet(PacketType.MESSAGE, "2probe")


def test_bytes_data_on_a_text_only_packet_type_refuses_to_encode():
    with pytest.raises(EncodeError):
        encode_packet(Packet(PacketType.PING, b"probe"))


MALFORMED_PACKETS = [
    pytest.param("", id="empty"),
    pytest.param("7", id="type-7"),
    pytest.param("9hello", id="type-9"),
    pytest.param("x", id="letter-type"),
    pytest.param("b4AQID", id="unpadded-base64"),
    pytest.param("b!!!!", id="invalid-base64"),
    pytest.param("\u0664hello", id="non-ascii-digit-type"),
    pytest.param(" 4hello", id="leading-space"),
    pytest.param("1bye", id="data-on-close"),
    pytest.param("5x", id="data-on-upgrade"),
    pytest.param("6noop", id="data-on-noop"),
    pytest.param("2ping", id="non-probe-data-on-ping"),
    pytest.param("3probe ", id="probe-with-trailing-space-on-pong"),
    pytest.param("2PROBE", id="probe-wrong-case"),
]


@pytest.mark.parametrize("wire", MALFORMED_PACKETS)
def test_malformed_packet_raises_protocol_error(wire):
    with pytest.raises(ProtocolError):
        decode_packet(wire)


@pytest.mark.parametrize("value", [None, 4, ["4"]], ids=["none", "int", "list"])
def test_decode_packet_of_a_non_str_non_bytes_raises_protocol_error(value):
    with pytest.raises(ProtocolError):
        decode_packet(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------- payloads


def test_payload_with_mixed_text_and_binary_round_trips():
    packets = [
        Packet(PacketType.MESSAGE, "hello"),
        Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04"),
        Packet(PacketType.PING),
        Packet(PacketType.MESSAGE, b""),
        Packet(PacketType.MESSAGE, "2[\"é\"]"),
    ]
    body = encode_payload(encode_packet(p) for p in packets)
    assert body == '4hello\x1ebAQIDBA==\x1e2\x1eb\x1e42["é"]'
    assert decode_payload(body) == packets


def test_spec_sample_payload_of_two_events_decodes():
    assert decode_payload('42["hello"]\x1e42["world"]') == [
        Packet(PacketType.MESSAGE, '2["hello"]'),
        Packet(PacketType.MESSAGE, '2["world"]'),
    ]


def test_single_packet_payload_has_no_separator():
    assert encode_payload(["4hello"]) == "4hello"
    assert decode_payload("6") == [Packet(PacketType.NOOP)]


def test_empty_item_list_encodes_to_empty_body():
    assert encode_payload([]) == ""


def test_payload_bytes_body_is_read_as_utf8():
    body = '4héllo\x1ebAQ=='.encode()
    assert decode_payload(body) == [
        Packet(PacketType.MESSAGE, "héllo"),
        Packet(PacketType.MESSAGE, b"\x01"),
    ]


def test_payload_at_the_packet_limit_is_accepted():
    body = RECORD_SEPARATOR.join(["3"] * 5)
    assert len(decode_payload(body, max_packets=5)) == 5


def test_payload_over_the_packet_limit_raises_payload_too_large():
    body = RECORD_SEPARATOR.join(["3"] * 6)
    with pytest.raises(PayloadTooLarge):
        decode_payload(body, max_packets=5)


def test_payload_over_the_options_default_of_1000_packets_is_refused():
    limit = Options().max_packets
    assert limit == 1000
    with pytest.raises(PayloadTooLarge):
        decode_payload(RECORD_SEPARATOR.join(["6"] * (limit + 1)), max_packets=limit)


def test_payload_without_a_packet_limit_takes_any_count():
    assert len(decode_payload(RECORD_SEPARATOR.join(["6"] * 1500))) == 1500


def test_base64_text_packet_decodes_as_a_binary_message():
    # engine.io-client's forceBase64 sends binary over WebSocket as "b" + base64 text.
    assert decode_packet("bAQID") == Packet(PacketType.MESSAGE, b"\x01\x02\x03")
    assert decode_packet("b") == Packet(PacketType.MESSAGE, b"")


def test_named_control_packets_are_their_wire_text():
    assert [OPEN, CLOSE, PING, PONG, UPGRADE, NOOP] == ["0", "1", "2", "3", "5", "6"]
    assert (PROBE_PING, PROBE_PONG) == ("2probe", "3probe")
    assert decode_packet(PROBE_PING) == Packet(PacketType.PING, PING_PROBE)


MALFORMED_PAYLOADS = [
    pytest.param("", id="empty-body"),
    pytest.param(b"", id="empty-bytes-body"),
    pytest.param("\x1e", id="only-separator"),
    pytest.param("4a\x1e", id="trailing-separator"),
    pytest.param("\x1e4a", id="leading-separator"),
    pytest.param("4a\x1e\x1e4b", id="empty-packet-in-the-middle"),
    pytest.param("bAQID!", id="base64-bad-character"),
    pytest.param("bAQI", id="base64-missing-padding"),
    pytest.param("bA", id="base64-truncated"),
    pytest.param("bAQ==\x0a", id="base64-trailing-newline"),
    pytest.param("bAQ é", id="base64-non-ascii"),
    pytest.param(b"4\xff\xfe", id="invalid-utf8"),
    pytest.param(b"4\xed\xa0\x80", id="utf8-encoded-surrogate"),
    pytest.param("4a\x1e7", id="unknown-type-in-second-packet"),
    pytest.param("1close", id="data-on-close"),
    pytest.param(None, id="none"),
]


@pytest.mark.parametrize("body", MALFORMED_PAYLOADS)
def test_malformed_payload_raises_protocol_error(body):
    with pytest.raises(ProtocolError):
        decode_payload(body)


# ---------------------------------------------------------------- handshake and errors


def test_handshake_payload_is_compact_json_in_spec_key_order():
    text = handshake_payload("lv_VI97HAXpY6yYWAAAC", ["websocket"], 25000, 5000, 1000000)
    assert text == (
        '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
        '"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}'
    )
    assert encode_packet(Packet(PacketType.OPEN, text)).startswith('0{"sid":')


def test_handshake_payload_with_no_upgrades_has_an_empty_list():
    assert json.loads(handshake_payload("s", [], 1, 2, 3))["upgrades"] == []


@pytest.mark.parametrize(
    "code, message",
    [
        (ErrorCode.UNKNOWN_TRANSPORT, "Transport unknown"),
        (ErrorCode.UNKNOWN_SID, "Session ID unknown"),
        (ErrorCode.BAD_HANDSHAKE_METHOD, "Bad handshake method"),
        (ErrorCode.BAD_REQUEST, "Bad request"),
        (ErrorCode.FORBIDDEN, "Forbidden"),
        (ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version"),
    ],
    ids=lambda v: v.name if isinstance(v, ErrorCode) else None,
)
def test_error_code_has_the_spec_message_and_body(code, message):
    assert code.message == message
    assert ERROR_CODES[code] == message
    assert error_body(code) == json.dumps({"code": int(code), "message": message}, separators=(",", ":"))


def test_error_codes_are_numbered_as_in_the_spec():
    assert [int(c) for c in ErrorCode] == [0, 1, 2, 3, 4, 5]
    assert error_body(ErrorCode.UNKNOWN_SID) == '{"code":1,"message":"Session ID unknown"}'


def test_error_body_accepts_a_plain_int_code():
    assert error_body(3) == '{"code":3,"message":"Bad request"}'


def test_error_codes_mapping_is_read_only():
    with pytest.raises(TypeError):
        ERROR_CODES[ErrorCode.FORBIDDEN] = "x"  # type: ignore[index]
