"""The msgpack parser, sans I/O: what it writes, what it reads, and what it refuses.

The byte strings written by hand below follow ``notepack.io`` 2.x (the encoder
of the npm ``socket.io-msgpack-parser``): a packet is a map, JavaScript's
``undefined`` is the extension ``d4 00 00``, Node Buffers are ``bin``.
``tests/test_msgpack_clients.py`` checks the same against the real clients.
"""

from __future__ import annotations

import concurrent.futures
import enum
import uuid

import pytest

msgpack = pytest.importorskip("msgpack", reason="msgpack not found: pip install -e '.[test,msgpack]'")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tornado_sio.exceptions import EncodeError, PayloadTooLarge, ProtocolError
from tornado_sio.options import Options
from tornado_sio.protocol import outgoing
from tornado_sio.protocol.msgpack import MsgpackDecoder, encode_packet
from tornado_sio.protocol.serializer import JSON, get_serializer
from tornado_sio.protocol.socketio import MAX_ACK_ID, SIOPacket, SIOType

MSGPACK = get_serializer("msgpack")
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode(payload: bytes, max_bytes: int = 1_000_000, max_depth: int = 32) -> SIOPacket:
    packet = MsgpackDecoder(max_bytes, max_depth).feed(payload)
    assert packet is not None
    return packet


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def refused(payload: bytes, match: str, **limits: int) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode(payload, **limits)


# ---------------------------------------------------------------- the wire shape


def test_an_event_is_one_map_with_type_data_nsp_and_id():
    payload = encode_packet(SIOPacket(SIOType.EVENT, "/chat", ["say", "hi"], 7))
    assert msgpack.unpackb(payload) == {"type": 2, "data": ["say", "hi"], "nsp": "/chat", "id": 7}


def test_binary_stays_in_place_and_the_type_stays_event():
    payload = encode_packet(SIOPacket(SIOType.BINARY_EVENT, "/", ["file", {"chunk": b"\x00\xff"}]))
    assert msgpack.unpackb(payload) == {"type": 2, "data": ["file", {"chunk": b"\x00\xff"}], "nsp": "/"}


def test_a_binary_ack_is_written_as_an_ack():
    payload = encode_packet(SIOPacket(SIOType.BINARY_ACK, "/", [b"ok"], 3))
    assert msgpack.unpackb(payload)["type"] == 3


def test_disconnect_carries_neither_data_nor_id_keys():
    # socket.io-msgpack-parser refuses a DISCONNECT whose data is nil
    assert msgpack.unpackb(encode_packet(SIOPacket(SIOType.DISCONNECT, "/x"))) == {"type": 1, "nsp": "/x"}


@pytest.mark.parametrize("packet", [
    SIOPacket(SIOType.CONNECT, "/", {"token": "t"}),
    SIOPacket(SIOType.CONNECT, "/admin"),
    SIOPacket(SIOType.DISCONNECT, "/admin"),
    SIOPacket(SIOType.EVENT, "/", ["e", 1, 2.5, True, None, "x", [1, [2]], {"k": "v"}]),
    SIOPacket(SIOType.EVENT, "/", ["e", b"\x01\x02"], 0),
    SIOPacket(SIOType.ACK, "/", [], MAX_ACK_ID),
    SIOPacket(SIOType.ACK, "/room,with,commas", [b"bin", {"nested": [b"x"]}], 12),
    SIOPacket(SIOType.CONNECT_ERROR, "/", {"message": "no"}),
    SIOPacket(SIOType.CONNECT_ERROR, "/", "plain text reason"),
], ids=lambda p: p.type.name)
def test_every_packet_type_round_trips(packet):
    assert decode(encode_packet(packet)) == packet


def test_the_serializer_prepares_one_binary_message_for_both_transports():
    prepared = MSGPACK.prepare(SIOPacket(SIOType.EVENT, "/", ["e", b"\x07"]))
    (message,) = prepared.eio_items
    assert isinstance(message, bytes)
    assert prepared.messages == [message]
    assert prepared.ws_frames[0] == 0x82  # FIN + binary opcode
    assert prepared.ws_frames.endswith(message)


def test_a_prepared_packet_decodes_back_for_outgoing_listeners():
    prepared = MSGPACK.prepare(SIOPacket(SIOType.EVENT, "/n", ["e", b"\x07"]))
    assert MSGPACK.decode_prepared(prepared) == SIOPacket(SIOType.EVENT, "/n", ["e", b"\x07"])


def test_enums_and_uuids_encode_as_the_json_parser_writes_them():
    class Colour(enum.Enum):
        RED = "red"

    value = uuid.UUID(int=1)
    payload = encode_packet(SIOPacket(SIOType.EVENT, "/", ["e", Colour.RED, value, (1, 2)]))
    assert msgpack.unpackb(payload)["data"] == ["e", "red", str(value), [1, 2]]


# ---------------------------------------------------------------- what the clients write


def test_notepack_connect_without_auth_reads_as_no_data():
    # {type: 0, data: undefined, nsp: "/"}: socket.io-client's CONNECT when auth is not set
    payload = b"\x83\xa4type\x00\xa4data\xd4\x00\x00\xa3nsp\xa1/"
    assert decode(payload) == SIOPacket(SIOType.CONNECT, "/", None, None)


def test_undefined_inside_event_data_reads_as_none():
    payload = pack({"type": 2, "nsp": "/", "data": ["e", msgpack.ExtType(0, b"\x00"), {"k": msgpack.ExtType(0, b"\x00")}]})
    assert decode(payload).data == ["e", None, {"k": None}]


def test_keys_the_node_client_adds_are_ignored():
    payload = pack({"type": 2, "data": ["e"], "options": {"compress": True}, "nsp": "/"})
    assert decode(payload) == SIOPacket(SIOType.EVENT, "/", ["e"])


def test_python_socketio_nil_data_on_connect_and_disconnect_reads_as_no_data():
    assert decode(pack({"type": 0, "data": None, "nsp": "/"})).data is None
    assert decode(pack({"type": 1, "data": None, "nsp": "/"})).type == SIOType.DISCONNECT


def test_python_socketio_msgpack_packets_decode_and_ours_decode_there():
    msgpack_packet = pytest.importorskip("socketio.msgpack_packet")
    theirs = msgpack_packet.MsgPackPacket(packet_type=2, data=["e", b"\x01", {"a": [1]}], namespace="/n", id=4)
    assert decode(theirs.encode()) == SIOPacket(SIOType.EVENT, "/n", ["e", b"\x01", {"a": [1]}], 4)
    back = msgpack_packet.MsgPackPacket(encoded_packet=encode_packet(SIOPacket(SIOType.ACK, "/n", [b"z"], 9)))
    assert (back.packet_type, back.namespace, back.data, back.id) == (3, "/n", [b"z"], 9)


# ---------------------------------------------------------------- hostile input


def test_a_text_message_is_refused_as_the_wrong_parser():
    with pytest.raises(ProtocolError, match="text message on a msgpack connection"):
        MsgpackDecoder().feed('2["e"]')


@pytest.mark.parametrize("ext", [
    b"\xd4\x01\x00",  # fixext 1, type 1
    b"\xd4\xfb\x00",  # fixext 1, type -5
    b"\xc7\x02\x00\x01\x02",  # ext 8, type 0: how notepack writes a Node ArrayBuffer or typed array
    b"\xd7\x00" + bytes(8),  # fixext 8, type 0: how notepack writes a Date
    b"\xc7\x00\x07",  # ext 8, empty
], ids=["type 1", "type -5", "notepack ArrayBuffer", "notepack Date", "empty"])
def test_extension_types_are_refused(ext):
    payload = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e" + ext
    refused(payload, "extension type")


def test_msgpack_timestamps_are_refused():
    payload = pack({"type": 2, "nsp": "/", "data": ["e", msgpack.Timestamp(1, 0)]})
    refused(payload, "Timestamp is not accepted")


@pytest.mark.parametrize("name", [1, None, b"e", ["e"], {"e": 1}, True])
def test_event_names_that_are_not_strings_are_refused(name):
    refused(pack({"type": 2, "nsp": "/", "data": [name, 1]}), "name must be a string")


@pytest.mark.parametrize("name", ["connect", "disconnect", "connect_error", "newListener"])
def test_reserved_event_names_are_refused(name):
    refused(pack({"type": 2, "nsp": "/", "data": [name]}), "reserved")


@pytest.mark.parametrize("obj,match", [
    ([2, "/", ["e"]], "must be a map"),
    ("2", "must be a map"),
    ({"nsp": "/", "data": ["e"]}, "packet type None"),
    ({"type": 5, "nsp": "/", "data": ["e"]}, "packet type 5"),
    ({"type": -1, "nsp": "/", "data": ["e"]}, "packet type"),
    ({"type": 2.0, "nsp": "/", "data": ["e"]}, "packet type"),
    ({"type": True, "nsp": "/", "data": ["e"]}, "packet type"),
    ({"type": [2], "nsp": "/", "data": ["e"]}, "packet type"),
    ({"type": 2, "data": ["e"]}, "namespace"),
    ({"type": 2, "nsp": "chat", "data": ["e"]}, "namespace"),
    ({"type": 2, "nsp": b"/", "data": ["e"]}, "namespace"),
    ({"type": 2, "nsp": "/", "data": []}, "non-empty array"),
    ({"type": 2, "nsp": "/", "data": "e"}, "non-empty array"),
    ({"type": 2, "nsp": "/"}, "non-empty array"),
    ({"type": 3, "nsp": "/", "data": ["x"]}, "without an ack id"),
    ({"type": 3, "nsp": "/", "data": {"x": 1}, "id": 1}, "must be an array"),
    ({"type": 0, "nsp": "/", "data": ["x"]}, "CONNECT data must be an object"),
    ({"type": 1, "nsp": "/", "data": {"x": 1}}, "must not carry data"),
    ({"type": 0, "nsp": "/", "id": 3}, "must not carry an ack id"),
    ({"type": 4, "nsp": "/", "data": 5}, "CONNECT_ERROR data"),
    ({"type": 2, "nsp": "/", "data": ["e"], "id": -1}, "invalid ack id"),
    ({"type": 2, "nsp": "/", "data": ["e"], "id": MAX_ACK_ID + 1}, "invalid ack id"),
    ({"type": 2, "nsp": "/", "data": ["e"], "id": 1.5}, "invalid ack id"),
    ({"type": 2, "nsp": "/", "data": ["e"], "id": True}, "invalid ack id"),
    ({"type": 2, "nsp": "/", "data": ["e"], "id": "1"}, "invalid ack id"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_malformed_packets_are_refused(obj, match):
    refused(pack(obj), match)


def test_maps_with_keys_that_are_not_strings_are_refused():
    refused(pack({"type": 2, "nsp": "/", "data": ["e", {1: "one"}]}), "map key")
    refused(pack({"type": 2, "nsp": "/", "data": ["e", {b"k": "v"}]}), "map key")


def test_a_map_key_that_is_a_container_is_refused():
    refused(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\x81\x91\x01\x02", "invalid msgpack")


def test_data_nested_deeper_than_max_depth_is_refused():
    deep: object = "x"
    for _ in range(32):
        deep = [deep]
    assert decode(pack({"type": 2, "nsp": "/", "data": ["e", deep]}), max_depth=33).data[1] == deep
    refused(pack({"type": 2, "nsp": "/", "data": ["e", deep]}), "nested deeper than 32", max_depth=32)


def test_nesting_deeper_than_msgpack_s_own_stack_is_a_protocol_error():
    payload = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e" + b"\x91" * 5000 + b"\xc0"
    refused(payload, "invalid msgpack")


def test_a_packet_larger_than_max_bytes_is_refused():
    payload = pack({"type": 2, "nsp": "/", "data": ["e", b"x" * 100]})
    with pytest.raises(PayloadTooLarge):
        decode(payload, max_bytes=len(payload) - 1)
    assert decode(payload, max_bytes=len(payload)).data == ["e", b"x" * 100]


@pytest.mark.parametrize("payload", [b"", b"\x83\xa4type", b"\xc1", b"\x81\xa1a\x01\x02", b"\xa2\xff\xfe",
                                     b"\xdd\xff\xff\xff\xff"])
def test_invalid_msgpack_is_a_protocol_error(payload):
    refused(payload, "invalid msgpack")


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_either_decode_or_raise_protocol_error(payload):
    try:
        packet = decode(payload)
    except ProtocolError:
        return
    assert isinstance(packet, SIOPacket)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text() .filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(st.text(min_size=1).filter(lambda s: s not in {"connect", "connect_error", "disconnect", "disconnecting",
                                                       "newListener", "removeListener"}
                                  and not any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
       st.lists(JSONISH, max_size=4), st.none() | st.integers(0, MAX_ACK_ID))
def test_events_round_trip(event, args, ack_id):
    packet = SIOPacket(SIOType.EVENT, "/", [event, *args], ack_id)
    assert decode(encode_packet(packet), max_depth=100) == packet


# ---------------------------------------------------------------- what the encoder refuses


@pytest.mark.parametrize("data,match", [
    (["e", {1, 2}], "cannot encode as msgpack"),
    (["e", object()], "cannot encode as msgpack"),
    (["e", 2**64], "cannot encode as msgpack"),
    (["e", "\ud800"], "cannot encode as msgpack"),
], ids=["set", "object", "int past 64 bits", "lone surrogate"])
def test_data_msgpack_cannot_hold_is_an_encode_error(data, match):
    with pytest.raises(EncodeError, match=match):
        encode_packet(SIOPacket(SIOType.EVENT, "/", data))


def test_a_refused_packet_leaves_nothing_behind_for_the_next_one():
    good = SIOPacket(SIOType.EVENT, "/", ["e", "fine"])
    with pytest.raises(EncodeError):
        encode_packet(SIOPacket(SIOType.EVENT, "/", ["e", "half written", {1, 2}]))
    assert msgpack.unpackb(encode_packet(good)) == {"type": 2, "data": ["e", "fine"], "nsp": "/"}


def test_packets_encoded_in_other_threads_are_whole():
    def encode(i: int) -> bytes:
        return encode_packet(SIOPacket(SIOType.EVENT, "/", ["e", i, b"x" * (i % 50)]))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        payloads = list(pool.map(encode, range(400)))
    assert [msgpack.unpackb(p)["data"][1] for p in payloads] == list(range(400))


def test_circular_data_is_an_encode_error():
    loop: list = ["e"]
    loop.append(loop)
    with pytest.raises(EncodeError):
        encode_packet(SIOPacket(SIOType.EVENT, "/", loop))


def test_disconnect_with_data_bad_namespaces_and_bad_ack_ids_are_encode_errors():
    with pytest.raises(EncodeError, match="DISCONNECT"):
        encode_packet(SIOPacket(SIOType.DISCONNECT, "/", ["x"]))
    with pytest.raises(EncodeError, match="namespace"):
        encode_packet(SIOPacket(SIOType.EVENT, "chat", ["e"]))
    for ack_id in (-1, MAX_ACK_ID + 1, 1.0, True):
        with pytest.raises(EncodeError, match="ack id"):
            encode_packet(SIOPacket(SIOType.EVENT, "/", ["e"], ack_id))  # type: ignore[arg-type]


# ---------------------------------------------------------------- the seam


def test_json_and_default_name_the_json_parser_whose_prepare_is_the_plain_function():
    assert get_serializer("json") is JSON and get_serializer("default") is JSON
    # the emit path of a JSON server calls outgoing.prepare itself: no dispatch added per packet
    assert JSON.prepare is outgoing.prepare


def test_msgpack_names_one_msgpack_parser_that_is_not_text():
    assert get_serializer("msgpack") is MSGPACK
    assert MSGPACK.name == "msgpack" and MSGPACK.text is False and JSON.text is True


def test_unknown_serializers_are_refused_when_options_are_built():
    with pytest.raises(ValueError, match="pickle is not offered"):
        Options(serializer="pickle")
    with pytest.raises(ValueError, match="unknown serializer"):
        get_serializer("cbor")


def test_the_json_parser_encodes_a_packet_as_text_then_attachments():
    assert JSON.encode(SIOPacket(SIOType.EVENT, "/", ["e", b"\x01"])) == [
        '51-["e",{"_placeholder":true,"num":0}]', b"\x01"]
