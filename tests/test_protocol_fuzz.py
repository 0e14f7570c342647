"""Property tests of the protocol layer: decoders only ever decode or raise ProtocolError,
and what the encoders write decodes back to the same value."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not found: pip install -e '.[test,redis,fast]'")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tornado_sio.exceptions import ProtocolError
from tornado_sio.protocol import jsonutil
from tornado_sio.protocol.engineio import (
    PING_PROBE,
    Packet,
    PacketType,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
)
from tornado_sio.protocol.socketio import (
    MAX_ACK_ID,
    RESERVED_EVENTS,
    Decoder,
    SIOPacket,
    SIOType,
    encode,
)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text that is mostly made of the characters the grammars care about, so the
# fuzzer reaches past the first check; plus anything at all (surrogates included).
PROTOCOL_CHARS = '0123456789-/,[]{}":_placeholdertruefalsenumNaInfity.eE+ b\x1e\\'
protocol_text = st.text(alphabet=PROTOCOL_CHARS, max_size=60)
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=60)
texts = st.one_of(protocol_text, any_text)
inputs = st.one_of(texts, st.binary(max_size=60))


def decodes_or_refuses(func, *args):
    """Call *func*; a ProtocolError is a fine answer, anything else propagates."""
    try:
        return func(*args)
    except ProtocolError:
        return None


# ---------------------------------------------------------------- never anything but ProtocolError


@FUZZ
@given(inputs)
def test_decode_packet_decodes_or_raises_protocol_error(data):
    packet = decodes_or_refuses(decode_packet, data)
    if packet is not None:
        assert isinstance(packet.type, PacketType)


@FUZZ
@given(inputs, st.integers(min_value=1, max_value=5))
def test_decode_payload_decodes_or_raises_protocol_error(body, max_packets):
    packets = decodes_or_refuses(decode_payload, body, max_packets)
    if packets is not None:
        assert 1 <= len(packets) <= max_packets


@FUZZ
@given(st.lists(st.one_of(texts, st.binary(max_size=20)), min_size=1, max_size=6))
def test_decoder_feed_decodes_or_raises_protocol_error(chunks):
    decoder = Decoder(max_attachments=3, max_attachment_bytes=40, max_depth=5)
    for chunk in chunks:
        try:
            packet = decoder.feed(chunk)
        except ProtocolError:
            assert not decoder.pending
            continue
        if packet is not None:
            assert packet.type in (SIOType.CONNECT, SIOType.DISCONNECT, SIOType.EVENT,
                                   SIOType.ACK, SIOType.CONNECT_ERROR)
            assert packet.namespace.startswith("/")


@FUZZ
@given(st.sampled_from("0123456"), st.sampled_from(["", "1-", "2-", "0-", "/a,", "1-/a,"]),
       st.sampled_from(["", "1", "12"]), texts)
def test_decoder_feed_of_plausible_headers_decodes_or_raises_protocol_error(ptype, middle, ack, rest):
    decodes_or_refuses(Decoder().feed, ptype + middle + ack + rest)


@FUZZ
@given(inputs, st.integers(min_value=0, max_value=6))
def test_loads_decodes_or_raises_protocol_error(text, max_depth):
    decodes_or_refuses(jsonutil.loads, text, max_depth)


@FUZZ
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["list", "object", "mixed"]))
def test_loads_enforces_the_depth_limit_at_any_depth(depth, shape):
    if shape == "list":
        text = "[" * depth + "]" * depth
    elif shape == "object":
        text = '{"a":' * depth + "1" + "}" * depth
    else:
        text = '[{"a":' * depth + "1" + "}]" * depth
        depth *= 2
    with pytest.raises(ProtocolError):
        jsonutil.loads(text, max_depth=depth - 1)
    if depth <= 400:
        assert jsonutil.loads(text, max_depth=depth) is not None


# ---------------------------------------------------------------- round trips

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(any_text, children, max_size=4),
    ),
    max_leaves=20,
)
values_with_bytes = st.recursive(
    st.one_of(json_scalars, st.binary(max_size=12)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(any_text, children, max_size=4),
    ),
    max_leaves=20,
)
event_names = any_text.filter(lambda name: name not in RESERVED_EVENTS)
namespaces = st.one_of(
    st.just("/"),
    st.builds(lambda s: "/" + s, st.text(alphabet=st.characters(blacklist_characters=","), max_size=12)),
)
ack_ids = st.one_of(st.none(), st.integers(min_value=0, max_value=MAX_ACK_ID))


def sio_round_trip(packet: SIOPacket) -> SIOPacket:
    text, attachments = encode(packet)
    decoder = Decoder(max_attachments=10_000, max_attachment_bytes=10**9, max_depth=1000)
    result = decoder.feed(text)
    for chunk in attachments:
        assert result is None
        result = decoder.feed(chunk)
    assert result is not None and not decoder.pending
    return result


@FUZZ
@given(json_values)
def test_json_dumps_then_loads_gives_back_the_value(value):
    assert jsonutil.loads(jsonutil.dumps(value), max_depth=1000) == value


@FUZZ
@given(event_names, st.lists(values_with_bytes, max_size=4), namespaces, st.one_of(st.none(), st.integers(0, MAX_ACK_ID)))
def test_event_with_bytes_sprinkled_in_round_trips(name, args, namespace, ack_id):
    packet = SIOPacket(SIOType.EVENT, namespace, [name, *args], ack_id)
    assert sio_round_trip(packet) == packet


@FUZZ
@given(st.lists(values_with_bytes, max_size=4), namespaces, st.integers(0, MAX_ACK_ID))
def test_ack_with_bytes_sprinkled_in_round_trips(args, namespace, ack_id):
    packet = SIOPacket(SIOType.ACK, namespace, args, ack_id)
    assert sio_round_trip(packet) == packet


@FUZZ
@given(
    st.one_of(
        st.builds(SIOPacket, st.just(SIOType.CONNECT), namespaces,
                  st.one_of(st.none(), st.dictionaries(any_text, json_values, max_size=3))),
        st.builds(SIOPacket, st.just(SIOType.DISCONNECT), namespaces),
        st.builds(SIOPacket, st.just(SIOType.CONNECT_ERROR), namespaces,
                  st.one_of(any_text, st.dictionaries(any_text, json_values, max_size=3))),
    )
)
def test_connect_disconnect_and_connect_error_round_trip(packet):
    assert sio_round_trip(packet) == packet


engineio_packets = st.one_of(
    st.builds(Packet, st.just(PacketType.MESSAGE), st.one_of(any_text, st.binary(max_size=30))),
    st.builds(Packet, st.sampled_from([PacketType.PING, PacketType.PONG]),
              st.sampled_from([None, PING_PROBE])),
    st.builds(Packet, st.sampled_from([PacketType.CLOSE, PacketType.UPGRADE, PacketType.NOOP])),
    st.builds(Packet, st.just(PacketType.OPEN), st.builds(jsonutil.dumps, st.dictionaries(any_text, json_scalars))),
)


@FUZZ
@given(engineio_packets)
def test_engineio_packet_round_trips(packet):
    assert decode_packet(encode_packet(packet)) == packet


@FUZZ
@given(st.lists(engineio_packets.filter(lambda p: not (isinstance(p.data, str) and "\x1e" in p.data)),
                min_size=1, max_size=8))
def test_polling_payload_round_trips(packets):
    body = encode_payload(encode_packet(p) for p in packets)
    assert decode_payload(body) == packets
    try:
        raw = body.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot travel as UTF-8 bytes
        return
    assert decode_payload(raw) == packets


@FUZZ
@given(event_names, st.lists(values_with_bytes, min_size=1, max_size=3), ack_ids,
       st.integers(min_value=0, max_value=200), st.sampled_from(PROTOCOL_CHARS), st.booleans(),
       st.integers(min_value=-1, max_value=1))
def test_mutated_encoded_packets_decode_or_raise_protocol_error(
    name, args, ack_id, position, char, truncate, extra_attachments
):
    text, attachments = encode(SIOPacket(SIOType.EVENT, "/", [name, *args], ack_id))
    position %= len(text)
    text = text[:position] if truncate else text[:position] + char + text[position + 1:]
    if extra_attachments < 0:
        attachments = attachments[:-1]
    elif extra_attachments > 0:
        attachments = attachments + [b"extra"]
    decoder = Decoder()
    try:
        decoder.feed(text)
        for chunk in attachments:
            decoder.feed(chunk)
    except ProtocolError:
        assert not decoder.pending
