"""Socket.IO v5 packet encoding and decoding (tornado_sio.protocol.socketio)."""

from __future__ import annotations

import math

import pytest

from tornado_sio.exceptions import EncodeError, PayloadTooLarge, ProtocolError
from tornado_sio.protocol import jsonutil
from tornado_sio.protocol.socketio import (
    MAX_ACK_ID,
    RESERVED_EVENTS,
    Decoder,
    SIOPacket,
    SIOType,
    encode,
    is_binary,
)

T = SIOType


def decode_all(text, attachments=(), **limits):
    """Feed one text part and its attachments; return the packet the last feed gives."""
    decoder = Decoder(**limits)
    result = decoder.feed(text)
    for chunk in attachments:
        assert result is None
        result = decoder.feed(chunk)
    assert not decoder.pending
    return result


# The example table of the socket.io-protocol README ("Packet encoding").
SPEC_EXAMPLES = [
    pytest.param(SIOPacket(T.CONNECT), "0", [], id="connect"),
    pytest.param(SIOPacket(T.CONNECT, data={"sid": "wZX3oN0bSVIhsaknAAAI"}),
                 '0{"sid":"wZX3oN0bSVIhsaknAAAI"}', [], id="connect-with-sid"),
    pytest.param(SIOPacket(T.CONNECT, "/admin"), "0/admin,", [], id="connect-admin"),
    pytest.param(SIOPacket(T.CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}),
                 '0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}', [], id="connect-admin-with-sid"),
    pytest.param(SIOPacket(T.CONNECT_ERROR, data={"message": "Not authorized"}),
                 '4{"message":"Not authorized"}', [], id="connect-error"),
    pytest.param(SIOPacket(T.EVENT, data=["foo"]), '2["foo"]', [], id="event"),
    pytest.param(SIOPacket(T.EVENT, "/admin", ["bar"]), '2/admin,["bar"]', [], id="event-admin"),
    pytest.param(SIOPacket(T.EVENT, data=["baz", b"\x01\x02\x03\x04"]),
                 '51-["baz",{"_placeholder":true,"num":0}]', [b"\x01\x02\x03\x04"],
                 id="binary-event"),
    pytest.param(SIOPacket(T.EVENT, "/admin", ["baz", b"\x01\x02", b"\x03\x04"]),
                 '52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
                 [b"\x01\x02", b"\x03\x04"], id="binary-event-admin-two-attachments"),
    pytest.param(SIOPacket(T.EVENT, data=["foo"], id=12), '212["foo"]', [], id="event-with-ack"),
    pytest.param(SIOPacket(T.ACK, data=[], id=12), "312[]", [], id="ack-empty"),
    pytest.param(SIOPacket(T.EVENT, "/admin", ["foo"], 13), '2/admin,13["foo"]', [],
                 id="event-admin-with-ack"),
    pytest.param(SIOPacket(T.ACK, "/admin", ["bar"], 13), '3/admin,13["bar"]', [], id="ack-admin"),
    pytest.param(SIOPacket(T.EVENT, data=["foo", b"\x01\x02\x03\x04"], id=14),
                 '51-14["foo",{"_placeholder":true,"num":0}]', [b"\x01\x02\x03\x04"],
                 id="binary-event-with-ack"),
    pytest.param(SIOPacket(T.ACK, data=["bar"], id=14), '314["bar"]', [], id="ack"),
    pytest.param(SIOPacket(T.ACK, data=["bar", b"\x01\x02\x03\x04"], id=15),
                 '61-15["bar",{"_placeholder":true,"num":0}]', [b"\x01\x02\x03\x04"],
                 id="binary-ack"),
    pytest.param(SIOPacket(T.DISCONNECT), "1", [], id="disconnect"),
    pytest.param(SIOPacket(T.DISCONNECT, "/admin"), "1/admin,", [], id="disconnect-admin"),
    # From the sample session of the same README.
    pytest.param(SIOPacket(T.ACK, "/admin", [b"\xff"], 1),
                 '61-/admin,1[{"_placeholder":true,"num":0}]', [b"\xff"],
                 id="sample-session-binary-ack"),
    pytest.param(SIOPacket(T.EVENT, data=["hey", "Jude"]), '2["hey","Jude"]', [],
                 id="sample-session-event"),
]


@pytest.mark.parametrize("packet, text, attachments", SPEC_EXAMPLES)
def test_spec_example_encodes_exactly(packet, text, attachments):
    assert encode(packet) == (text, attachments)


@pytest.mark.parametrize("packet, text, attachments", SPEC_EXAMPLES)
def test_spec_example_decodes_to_the_packet(packet, text, attachments):
    decoded = decode_all(text, attachments)
    assert decoded == packet
    assert type(decoded.type) is SIOType


def test_type_values_follow_the_spec():
    assert [(t.name, int(t)) for t in SIOType] == [
        ("CONNECT", 0), ("DISCONNECT", 1), ("EVENT", 2), ("ACK", 3),
        ("CONNECT_ERROR", 4), ("BINARY_EVENT", 5), ("BINARY_ACK", 6),
    ]


def test_reserved_events_are_the_reference_list():
    assert RESERVED_EVENTS == {
        "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
    }


# ---------------------------------------------------------------- encoding


def test_binary_event_with_nested_bytes_round_trips():
    data = ["upload", {"name": "a", "parts": [b"one", {"deep": (b"two", 3)}]}, [bytearray(b"three")],
            memoryview(b"four")]
    text, attachments = encode(SIOPacket(T.EVENT, "/files", data, 7))
    assert text.startswith("54-/files,7[")
    assert attachments == [b"one", b"two", b"three", b"four"]
    assert all(type(a) is bytes for a in attachments)
    decoded = decode_all(text, attachments)
    assert decoded == SIOPacket(
        T.EVENT, "/files",
        ["upload", {"name": "a", "parts": [b"one", {"deep": [b"two", 3]}]}, [b"three"], b"four"], 7,
    )


def test_placeholders_are_numbered_depth_first_in_text_order():
    text, _ = encode(SIOPacket(T.EVENT, data=["e", {"a": [b"0", b"1"], "b": b"2"}, b"3"]))
    nums = [int(part.split("}")[0]) for part in text.split('"num":')[1:]]
    assert nums == [0, 1, 2, 3]


def test_encode_does_not_modify_the_callers_data():
    data = ["e", {"k": b"x"}, [b"y"]]
    encode(SIOPacket(T.EVENT, data=data))
    assert data == ["e", {"k": b"x"}, [b"y"]]


def test_tuples_encode_as_lists():
    assert encode(SIOPacket(T.EVENT, data=("a", (1, 2))))[0] == '2["a",[1,2]]'


def test_explicit_binary_type_without_bytes_announces_zero_attachments():
    assert encode(SIOPacket(T.BINARY_EVENT, data=["a"])) == ('50-["a"]', [])
    assert decode_all('50-["a"]') == SIOPacket(T.EVENT, data=["a"])


def test_non_ascii_text_is_not_escaped():
    assert encode(SIOPacket(T.EVENT, data=["é", "☃"]))[0] == '2["é","☃"]'


def test_connect_error_with_string_data_encodes():
    assert encode(SIOPacket(T.CONNECT_ERROR, "/x", "nope")) == ('4/x,"nope"', [])


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(SIOPacket(T.EVENT, data=["x", math.nan]), id="nan"),
        pytest.param(SIOPacket(T.EVENT, data=["x", math.inf]), id="infinity"),
        pytest.param(SIOPacket(T.EVENT, data=["x", -math.inf]), id="minus-infinity"),
        pytest.param(SIOPacket(T.EVENT, data=["x", b"ok", math.nan]), id="nan-beside-bytes"),
        pytest.param(SIOPacket(T.EVENT, data=["x", {1, 2}]), id="set"),
        pytest.param(SIOPacket(T.EVENT, data=["x", object()]), id="object"),
        pytest.param(SIOPacket(T.CONNECT, data={"b": b"x"}), id="bytes-in-connect"),
        pytest.param(SIOPacket(T.CONNECT_ERROR, data=b"x"), id="bytes-in-connect-error"),
        pytest.param(SIOPacket(T.DISCONNECT, data=["x"]), id="data-on-disconnect"),
        pytest.param(SIOPacket(T.ACK, data=5, id=1), id="numeric-data"),
        pytest.param(SIOPacket(T.CONNECT_ERROR, data=-1), id="negative-numeric-data"),
        pytest.param(SIOPacket(T.EVENT, "admin", ["x"]), id="namespace-without-slash"),
        pytest.param(SIOPacket(T.EVENT, "", ["x"]), id="empty-namespace"),
        pytest.param(SIOPacket(T.EVENT, "/a,b", ["x"]), id="namespace-with-comma"),
        pytest.param(SIOPacket(T.EVENT, data=["x"], id=-1), id="negative-id"),
        pytest.param(SIOPacket(T.EVENT, data=["x"], id=MAX_ACK_ID + 1), id="id-too-large"),
        pytest.param(SIOPacket(T.EVENT, data=["x"], id=True), id="bool-id"),
        pytest.param(SIOPacket(T.EVENT, data=["x"], id="1"), id="str-id"),  # type: ignore[arg-type]
    ],
)
def test_unencodable_packet_raises_encode_error(packet):
    with pytest.raises(EncodeError):
        encode(packet)


def test_circular_data_with_bytes_raises_encode_error():
    data: list = ["x", b"y"]
    data.append(data)
    with pytest.raises(EncodeError):
        encode(SIOPacket(T.EVENT, data=data))


def test_largest_ack_id_encodes_and_decodes():
    text, _ = encode(SIOPacket(T.EVENT, data=["x"], id=MAX_ACK_ID))
    assert text == f'2{MAX_ACK_ID}["x"]'
    assert decode_all(text).id == MAX_ACK_ID


@pytest.mark.parametrize(
    "value, expected",
    [
        (b"", True), (bytearray(), True), (memoryview(b"x"), True),
        ([1, [2, {"a": (3, b"x")}]], True), ({"k": {"k": [b"x"]}}, True),
        ("bytes", False), ([1, "a", {"b": None}], False), ({b"key": 1}, False), (None, False),
    ],
    # stable ids (a memoryview's repr has its address), so xdist workers agree
    ids=lambda v: type(v).__name__ if isinstance(v, memoryview) else repr(v)[:30],
)
def test_is_binary_finds_bytes_anywhere(value, expected):
    assert is_binary(value) is expected


def test_is_binary_terminates_on_circular_data():
    data: list = [1]
    data.append(data)
    assert is_binary(data) is False


# ---------------------------------------------------------------- decoding


def test_binary_packets_wait_for_their_attachments():
    decoder = Decoder()
    assert decoder.feed('52-["a",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]') is None
    assert decoder.pending
    assert decoder.feed(b"zero") is None
    assert decoder.pending
    packet = decoder.feed(b"one")
    assert packet == SIOPacket(T.EVENT, data=["a", b"one", b"zero"])
    assert not decoder.pending


def test_decoder_is_reusable_after_a_packet():
    decoder = Decoder()
    assert decoder.feed('2["a"]') == SIOPacket(T.EVENT, data=["a"])
    assert decoder.feed('51-["b",{"_placeholder":true,"num":0}]') is None
    assert decoder.feed(b"x") == SIOPacket(T.EVENT, data=["b", b"x"])
    assert decoder.feed("3/n,9[1]") == SIOPacket(T.ACK, "/n", [1], 9)


def test_empty_attachment_is_accepted():
    assert decode_all('51-["a",{"_placeholder":true,"num":0}]', [b""]) == SIOPacket(T.EVENT, data=["a", b""])


def test_attachment_may_be_bytearray_or_memoryview():
    decoded = decode_all('62-1[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
                         [bytearray(b"a"), memoryview(b"b")])
    assert decoded == SIOPacket(T.ACK, data=[b"a", b"b"], id=1)
    assert all(type(b) is bytes for b in decoded.data)


def test_unreferenced_attachment_is_tolerated():
    assert decode_all('52-["a",{"_placeholder":true,"num":0}]', [b"x", b"y"]) == SIOPacket(
        T.EVENT, data=["a", b"x"])


def test_placeholder_shape_in_a_plain_event_stays_a_dict():
    text = '2["a",{"_placeholder":true,"num":0}]'
    assert decode_all(text).data == ["a", {"_placeholder": True, "num": 0}]


def test_dict_with_placeholder_false_is_left_alone():
    text = '51-["a",{"_placeholder":false,"num":0},{"_placeholder":true,"num":0}]'
    assert decode_all(text, [b"x"]).data == ["a", {"_placeholder": False, "num": 0}, b"x"]


def test_reset_drops_the_pending_packet():
    decoder = Decoder()
    decoder.feed('51-["a",{"_placeholder":true,"num":0}]')
    decoder.reset()
    assert not decoder.pending
    assert decoder.feed('2["b"]') == SIOPacket(T.EVENT, data=["b"])


def test_text_while_attachments_are_pending_raises_and_drops_the_pending_packet():
    decoder = Decoder()
    decoder.feed('51-["a",{"_placeholder":true,"num":0}]')
    with pytest.raises(ProtocolError):
        decoder.feed('2["b"]')
    assert not decoder.pending
    with pytest.raises(ProtocolError):  # the old attachment is not welcome any more
        decoder.feed(b"x")


def test_bytes_without_a_pending_packet_raise_protocol_error():
    with pytest.raises(ProtocolError):
        Decoder().feed(b"\x01")


@pytest.mark.parametrize("value", [None, 2, ["2"]], ids=["none", "int", "list"])
def test_feeding_a_non_str_non_bytes_raises_protocol_error(value):
    with pytest.raises(ProtocolError):
        Decoder().feed(value)  # type: ignore[arg-type]


def test_connect_without_comma_takes_the_rest_as_namespace():
    # What socket.io-parser does; the official client always sends the comma.
    assert decode_all("0/admin") == SIOPacket(T.CONNECT, "/admin")


def test_connect_with_auth_payload_decodes():
    assert decode_all('0/admin,{"token":"123"}') == SIOPacket(T.CONNECT, "/admin", {"token": "123"})


def test_connect_error_with_string_payload_decodes():
    assert decode_all('4"Not authorized"') == SIOPacket(T.CONNECT_ERROR, data="Not authorized")


def test_event_name_may_be_any_non_reserved_string():
    assert decode_all('2["", 1]').data == ["", 1]
    assert decode_all('2["Connect"]').data == ["Connect"]


def test_ack_id_with_leading_zeros_reads_as_the_number():
    assert decode_all('2007["a"]').id == 7


def test_json_whitespace_around_data_is_accepted():
    assert decode_all('2 ["a" , 1 ] ').data == ["a", 1]


# ---------------------------------------------------------------- limits


def test_attachment_count_at_the_limit_is_accepted():
    placeholders = ",".join('{"_placeholder":true,"num":%d}' % i for i in range(3))
    decoded = decode_all(f'53-["a",{placeholders}]', [b"0", b"1", b"2"], max_attachments=3)
    assert decoded.data == ["a", b"0", b"1", b"2"]


def test_attachment_count_over_the_limit_raises_payload_too_large():
    with pytest.raises(PayloadTooLarge):
        Decoder(max_attachments=3).feed('54-["a"]')


def test_default_attachment_limit_is_ten():
    decoder = Decoder()
    assert decoder.feed('510-["a"]') is None
    with pytest.raises(PayloadTooLarge):
        Decoder().feed('511-["a"]')


def test_absurd_attachment_count_raises_payload_too_large():
    with pytest.raises(PayloadTooLarge):
        Decoder().feed("5" + "9" * 5000 + '-["a"]')


def test_attachment_bytes_over_the_total_limit_raise_and_reset():
    decoder = Decoder(max_attachment_bytes=10)
    decoder.feed('52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    assert decoder.feed(b"123456") is None
    with pytest.raises(PayloadTooLarge):
        decoder.feed(b"12345")
    assert not decoder.pending


def test_attachment_bytes_exactly_at_the_limit_are_accepted():
    decoded = decode_all('51-["a",{"_placeholder":true,"num":0}]', [b"x" * 10], max_attachment_bytes=10)
    assert decoded.data == ["a", b"x" * 10]


def test_nesting_at_the_depth_limit_is_accepted():
    # The event array is level 1, so max_depth=4 allows three more levels.
    assert decode_all('2["a",[[["x"]]]]', max_depth=4).data == ["a", [[["x"]]]]


def test_nesting_over_the_depth_limit_raises_protocol_error():
    with pytest.raises(ProtocolError):
        Decoder(max_depth=4).feed('2["a",[[[["x"]]]]]')


def test_very_deep_nesting_raises_protocol_error_not_recursion_error():
    with pytest.raises(ProtocolError):
        Decoder().feed('2["a",' + "[" * 100_000 + "]" * 100_000 + "]")


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
def test_reserved_event_name_is_refused(name):
    with pytest.raises(ProtocolError):
        Decoder().feed(f'2["{name}",1]')


def test_reserved_event_name_is_refused_in_binary_event():
    with pytest.raises(ProtocolError):
        Decoder().feed('51-["disconnect",{"_placeholder":true,"num":0}]')


MALFORMED = [
    # framing
    pytest.param("", id="empty"),
    pytest.param("7", id="type-7"),
    pytest.param("9[]", id="type-9"),
    pytest.param("a", id="letter-type"),
    pytest.param("\u0662[\"a\"]", id="non-ascii-digit-type"),
    pytest.param(' 2["a"]', id="leading-space"),
    # attachment count
    pytest.param('5["a"]', id="binary-without-count"),
    pytest.param('5-["a"]', id="binary-empty-count"),
    pytest.param('51["a"]', id="binary-count-without-dash"),
    pytest.param('5x-["a"]', id="binary-count-not-digits"),
    pytest.param('5\u0661-["a"]', id="binary-count-non-ascii-digit"),
    pytest.param('5+1-["a"]', id="binary-count-with-sign"),
    pytest.param('5 1-["a"]', id="binary-count-with-space"),
    pytest.param('6', id="binary-ack-bare"),
    # namespace and id
    pytest.param('2admin,["a"]', id="namespace-without-slash"),
    pytest.param('2/admin["a"]', id="namespace-without-comma-before-data"),
    pytest.param('2x1["a"]', id="garbage-before-id"),
    pytest.param('21a["a"]', id="id-followed-by-garbage"),
    pytest.param('2-1["a"]', id="negative-id"),
    pytest.param('21.5["a"]', id="fractional-id"),
    pytest.param('2' + "9" * 17 + '["a"]', id="id-17-digits"),
    pytest.param(f'2{MAX_ACK_ID + 1}["a"]', id="id-over-max-safe-integer"),
    pytest.param('2' + "1" * 5000 + '["a"]', id="id-5000-digits"),
    pytest.param('01', id="id-on-connect"),
    pytest.param('1/a,2', id="id-on-disconnect"),
    pytest.param('45{"message":"x"}', id="id-on-connect-error"),
    # JSON
    pytest.param('2["a"', id="truncated-json"),
    pytest.param('2["a"]]', id="trailing-garbage"),
    pytest.param("2['a']", id="single-quotes"),
    pytest.param('2["a",NaN]', id="nan"),
    pytest.param('2["a",Infinity]', id="infinity"),
    pytest.param('2["a",-Infinity]', id="minus-infinity"),
    pytest.param('2["a",1e400]', id="float-overflow"),
    pytest.param('2["a","\x01"]', id="raw-control-character"),
    pytest.param('2["a"]\x00', id="trailing-nul"),
    pytest.param('2\ufeff["a"]', id="byte-order-mark"),
    # per type
    pytest.param("0[]", id="connect-array"),
    pytest.param('0"x"', id="connect-string"),
    pytest.param("0null", id="connect-null"),
    pytest.param("1{}", id="disconnect-with-data"),
    pytest.param("1null", id="disconnect-with-null"),
    pytest.param("1/admin,{}", id="disconnect-admin-with-data"),
    pytest.param("2", id="event-without-data"),
    pytest.param("2[]", id="event-empty-array"),
    pytest.param('2{"a":1}', id="event-object"),
    pytest.param('2"a"', id="event-string"),
    pytest.param("2[1]", id="event-numeric-name"),
    pytest.param("2[null]", id="event-null-name"),
    pytest.param('2[["a"]]', id="event-array-name"),
    pytest.param("3", id="ack-without-id-or-data"),
    pytest.param("31", id="ack-without-data"),
    pytest.param("3[]", id="ack-without-id"),
    pytest.param('31{"a":1}', id="ack-object"),
    pytest.param("31null", id="ack-null"),
    pytest.param("4", id="connect-error-without-data"),
    pytest.param("4[]", id="connect-error-array"),
    pytest.param("4true", id="connect-error-boolean"),
    pytest.param('50-{"a":1}', id="binary-event-object"),
    pytest.param("50-[]", id="binary-event-empty"),
    pytest.param("50-[7]", id="binary-event-numeric-name"),
    pytest.param('60-["a"]', id="binary-ack-without-id"),
    # placeholders in a binary packet that completes at once
    pytest.param('50-["a",{"_placeholder":true,"num":0}]', id="placeholder-without-attachment"),
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_packet_raises_protocol_error(text):
    decoder = Decoder()
    with pytest.raises(ProtocolError):
        decoder.feed(text)
    assert not decoder.pending


BAD_PLACEHOLDERS = [
    pytest.param('{"_placeholder":true,"num":1}', id="num-out-of-range"),
    pytest.param('{"_placeholder":true,"num":-1}', id="num-negative"),
    pytest.param('{"_placeholder":true,"num":0.0}', id="num-float"),
    pytest.param('{"_placeholder":true,"num":"0"}', id="num-string"),
    pytest.param('{"_placeholder":true,"num":true}', id="num-boolean"),
    pytest.param('{"_placeholder":true,"num":null}', id="num-null"),
    pytest.param('{"_placeholder":true}', id="num-missing"),
    pytest.param('{"k":[{"_placeholder":true,"num":5}]}', id="nested-num-out-of-range"),
]


@pytest.mark.parametrize("placeholder", BAD_PLACEHOLDERS)
def test_malformed_placeholder_raises_protocol_error(placeholder):
    decoder = Decoder()
    assert decoder.feed(f'51-["a",{placeholder}]') is None
    with pytest.raises(ProtocolError):
        decoder.feed(b"x")
    assert not decoder.pending


# ---------------------------------------------------------------- jsonutil (the JSON both protocols use)


def test_dumps_is_compact_and_keeps_non_ascii():
    assert jsonutil.dumps({"a": [1, 2.5, None, True], "é": "☃"}) == '{"a":[1,2.5,null,true],"é":"☃"}'


def test_dumps_keeps_key_order():
    assert jsonutil.dumps({"b": 1, "a": 2}) == '{"b":1,"a":2}'


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, [1, math.nan], {"k": {"k": [math.inf]}}, {"k": None, "x": math.nan}],
    ids=["nan", "inf", "-inf", "nan-in-list", "inf-nested", "nan-beside-null"],
)
def test_dumps_refuses_nan_and_infinity(value):
    with pytest.raises(EncodeError):
        jsonutil.dumps(value)


class _Opaque:
    pass


@pytest.mark.parametrize(
    "value",
    [{1, 2}, frozenset(), _Opaque(), b"x", bytearray(b"x"), {(1, 2): 3}, 1j],
    ids=["set", "frozenset", "object", "bytes", "bytearray", "tuple-key", "complex"],
)
def test_dumps_refuses_non_json_values(value):
    with pytest.raises(EncodeError):
        jsonutil.dumps(value)


def test_dumps_refuses_circular_data():
    data: dict = {}
    data["self"] = data
    with pytest.raises(EncodeError):
        jsonutil.dumps(data)


def test_dumps_refuses_datetime_and_dataclass_whether_or_not_orjson_is_installed():
    import dataclasses
    import datetime

    @dataclasses.dataclass
    class Point:
        x: int

    for value in (datetime.datetime(2020, 1, 1), datetime.date(2020, 1, 1), Point(1)):
        with pytest.raises(EncodeError):
            jsonutil.dumps(value)


def test_dumps_encodes_what_orjson_refuses_like_the_standard_library():
    import collections
    import enum
    import uuid

    class Color(enum.Enum):
        RED = "red"

    Pair = collections.namedtuple("Pair", "a b")
    assert jsonutil.dumps({1: "int key", None: "none key"}) == '{"1":"int key","null":"none key"}'
    assert jsonutil.dumps(2**70) == str(2**70)
    assert jsonutil.dumps(Pair(1, 2)) == "[1,2]"
    assert jsonutil.dumps([Color.RED]) == '["red"]'
    assert jsonutil.dumps(uuid.UUID(int=1)) == '"00000000-0000-0000-0000-000000000001"'


def test_dumps_escapes_lone_surrogates_so_the_text_is_valid_utf8():
    text = jsonutil.dumps(["\ud800", "é"])
    text.encode("utf-8")
    assert jsonutil.loads(text) == ["\ud800", "é"]


def test_dumps_output_is_the_same_with_and_without_orjson(monkeypatch):
    values = [{"a": [1, 2.5, "é", None]}, ["x", {"k": [True, False]}], "null inside", 10**20, -0.0]
    fast = [jsonutil.dumps(v) for v in values]
    monkeypatch.setattr(jsonutil, "_orjson_dumps", None)
    assert [jsonutil.dumps(v) for v in values] == fast


def test_stdlib_path_refuses_nan_too(monkeypatch):
    monkeypatch.setattr(jsonutil, "_orjson_dumps", None)
    with pytest.raises(EncodeError):
        jsonutil.dumps([math.nan])


def test_loads_parses_str_and_utf8_bytes():
    assert jsonutil.loads('{"a":["é",1,2.5,null]}') == {"a": ["é", 1, 2.5, None]}
    assert jsonutil.loads('["é"]'.encode()) == ["é"]


@pytest.mark.parametrize(
    "text",
    ["NaN", "[Infinity]", "-Infinity", "[1e400]", "-1e400", "1" + "0" * 400 + ".0", "", " ", "[1,]",
     "{'a':1}", "\ufeff[]", b"\xef\xbb\xbf[]", b"[\"\xff\"]", b"\xed\xa0\x80", "[1] [2]", None],
    ids=["nan", "infinity", "-infinity", "exp-overflow", "negative-overflow", "long-overflow", "empty",
         "blank", "trailing-comma", "single-quotes", "bom-str", "bom-bytes", "invalid-utf8",
         "utf8-surrogate", "two-documents", "none"],
)
def test_loads_refuses_non_strict_json(text):
    with pytest.raises(ProtocolError):
        jsonutil.loads(text)


def test_loads_depth_limit_is_inclusive():
    assert jsonutil.loads("[[[]]]", max_depth=3) == [[[]]]
    assert jsonutil.loads('{"a":{"b":[1]}}', max_depth=3) == {"a": {"b": [1]}}
    with pytest.raises(ProtocolError):
        jsonutil.loads("[[[[]]]]", max_depth=3)
    with pytest.raises(ProtocolError):
        jsonutil.loads('{"a":{"b":[{}]}}', max_depth=3)


def test_loads_brackets_inside_strings_do_not_count_as_depth():
    assert jsonutil.loads('["[[[[[[[[[[{{{{{{{{"]', max_depth=1) == ["[[[[[[[[[[{{{{{{{{"]


def test_loads_many_shallow_containers_are_not_too_deep():
    assert len(jsonutil.loads("[" + ",".join(["[]"] * 1000) + "]", max_depth=2)) == 1000


def test_loads_100000_deep_input_raises_protocol_error_quickly():
    import time

    for text in ("[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 100_000):
        start = time.monotonic()
        with pytest.raises(ProtocolError):
            jsonutil.loads(text)
        assert time.monotonic() - start < 1.0
