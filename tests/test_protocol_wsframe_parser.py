"""The sans-I/O WebSocket frame parser and the server's frame writers (tornado_sio.protocol.wsframe).

The frames a client sends are built here by ``client_frame``, a deliberately
plain masking encoder (a per-byte XOR, nothing shared with the code under
test), so every test states the exact bytes on the wire.
"""

from __future__ import annotations

import copy
import pickle
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tornado_sio.exceptions import ProtocolError
from tornado_sio.protocol import wsframe
from tornado_sio.protocol.wsframe import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Close,
    FrameParser,
    Message,
    Ping,
    Pong,
    WebSocketProtocolError,
    build_close,
    build_frame,
    build_ping,
    build_pong,
)

MASK = b"\x37\xfa\x21\x3d"  # the mask of RFC 6455 5.7's examples
LIMIT = 1 << 20


def client_frame(
    payload: bytes,
    opcode: int = OP_TEXT,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length_bytes: int | None = None,
) -> bytes:
    """One frame as a client sends it: masked with *mask* (``None``: unmasked).

    *rsv* is the 3-bit RSV1..RSV3 field; *length_bytes* (0, 2 or 8) forces the
    7-bit, 16-bit or 64-bit length form instead of the shortest one.
    """
    length = len(payload)
    if length_bytes is None:
        length_bytes = 0 if length <= 125 else 2 if length <= 0xFFFF else 8
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask is not None else 0
    if length_bytes == 0:
        header = bytes([first, mask_bit | length])
    elif length_bytes == 2:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", length)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", length)
    if mask is None:
        return header + payload
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def parse(data: bytes, max_message_size: int = LIMIT, **kwargs) -> list:
    """All events of *data*, fed in one piece."""
    parser = FrameParser(max_message_size, **kwargs)
    parser.feed(data)
    return list(parser.events())


def parse_in_pieces(data: bytes, size: int, max_message_size: int = LIMIT) -> list:
    """All events of *data*, fed *size* bytes at a time, reading events after every piece."""
    parser = FrameParser(max_message_size)
    events = []
    for offset in range(0, len(data), size):
        parser.feed(data[offset : offset + size])
        events.extend(parser.events())
    return events


def failure(data: bytes, max_message_size: int = LIMIT, **kwargs) -> WebSocketProtocolError:
    """The error parsing *data* raises (the test fails if it parses)."""
    with pytest.raises(WebSocketProtocolError) as info:
        parse(data, max_message_size, **kwargs)
    return info.value


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


# -- writers -------------------------------------------------------------------


def test_build_close_defaults_to_normal_closure_1000():
    assert build_close() == b"\x88\x02\x03\xe8"


def test_build_close_carries_code_and_utf8_reason():
    assert build_close(1001, "bye ü") == b"\x88\x08\x03\xe9bye \xc3\xbc"


def test_build_close_without_code_is_the_empty_close_frame():
    assert build_close(None) == b"\x88\x00"


def test_build_close_refuses_a_reason_without_a_code():
    with pytest.raises(ValueError):
        build_close(None, "why")


def test_build_close_cuts_a_long_reason_to_123_bytes_on_a_character_boundary():
    frame = build_close(1000, "€" * 100)  # 3 bytes each: 123 bytes hold exactly 41
    assert frame[1] == 125
    assert frame[4:].decode("utf-8") == "€" * 41
    frame = build_close(1000, "a" + "€" * 100)  # 1 + 3 * 40 = 121; the 41st would end at 124
    assert frame[1] == 2 + 121
    assert frame[4:].decode("utf-8") == "a" + "€" * 40


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65536, -1])
def test_build_close_refuses_codes_not_allowed_on_the_wire(code):
    with pytest.raises(ValueError):
        build_close(code)


def test_build_ping_and_pong_carry_their_payload():
    assert build_ping(b"hb") == b"\x89\x02hb"
    assert build_pong(b"hb") == b"\x8a\x02hb"
    assert build_ping() == b"\x89\x00"
    assert build_pong() == b"\x8a\x00"


def test_build_ping_refuses_more_than_125_bytes():
    with pytest.raises(ValueError):
        build_ping(b"x" * 126)


def test_server_frames_are_never_masked():
    for frame in (build_close(1000, "x"), build_ping(b"p"), build_pong(b"p"), build_frame(b"m" * 70000)):
        assert not frame[1] & 0x80


def test_server_frames_parse_back_when_masking_is_not_required():
    data = build_frame("héllo".encode()) + build_ping(b"1") + build_pong(b"2") + build_close(4000, "done")
    assert parse(data, require_mask=False) == [
        Message(OP_TEXT, "héllo"),
        Ping(b"1"),
        Pong(b"2"),
        Close(4000, "done"),
    ]


# -- messages --------------------------------------------------------------------


def test_rfc_example_masked_hello_is_a_text_message():
    # RFC 6455 5.7: "A single-frame masked text message".
    assert parse(bytes.fromhex("818537fa213d7f9f4d5158")) == [Message(OP_TEXT, "Hello")]


def test_text_message_is_delivered_as_str():
    [message] = parse(client_frame("κόσμε".encode()))
    assert message == Message(OP_TEXT, "κόσμε")
    assert isinstance(message.data, str)


def test_binary_message_is_delivered_as_bytes():
    [message] = parse(client_frame(b"\x00\xff\x80", OP_BINARY))
    assert message == Message(OP_BINARY, b"\x00\xff\x80")
    assert type(message.data) is bytes


def test_empty_text_and_binary_messages():
    assert parse(client_frame(b"") + client_frame(b"", OP_BINARY)) == [Message(OP_TEXT, ""), Message(OP_BINARY, b"")]


@pytest.mark.parametrize("length", [125, 126, 511, 512, 513, 65535, 65536, 100003])
def test_payload_of_any_length_is_unmasked(length):
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    assert parse(client_frame(payload, OP_BINARY)) == [Message(OP_BINARY, payload)]


def test_several_frames_in_one_feed_give_their_events_in_order():
    data = client_frame(b"one") + client_frame(b"\x02", OP_BINARY) + client_frame(b"hb", OP_PING) + client_frame(b"two")
    assert parse(data) == [Message(OP_TEXT, "one"), Message(OP_BINARY, b"\x02"), Ping(b"hb"), Message(OP_TEXT, "two")]


def test_ping_and_pong_events_carry_their_payload():
    data = client_frame(b"p" * 125, OP_PING) + client_frame(b"", OP_PONG)
    assert parse(data) == [Ping(b"p" * 125), Pong(b"")]


def test_next_event_returns_none_until_a_frame_is_complete():
    frame = client_frame(b"hello")
    parser = FrameParser(LIMIT)
    parser.feed(frame[:-1])
    assert parser.next_event() is None
    parser.feed(frame[-1:])
    assert parser.next_event() == Message(OP_TEXT, "hello")
    assert parser.next_event() is None


def test_byte_by_byte_feeding_gives_the_same_events():
    data = (
        client_frame(b"frag", fin=False)
        + client_frame(b"ping", OP_PING)
        + client_frame("mént".encode(), OP_CONTINUATION)
        + client_frame(b"x" * 300, OP_BINARY)
        + client_frame(close_payload(1000, b"bye"), OP_CLOSE)
    )
    assert parse_in_pieces(data, 1) == parse(data) == [
        Ping(b"ping"),
        Message(OP_TEXT, "fragmént"),
        Message(OP_BINARY, b"x" * 300),
        Close(1000, "bye"),
    ]


def test_large_frame_fed_in_odd_sized_chunks_is_unmasked_across_chunk_boundaries():
    text = "κόσμε-" * 20000  # 220 KB of UTF-8
    binary = bytes(range(251)) * 997
    data = client_frame(text.encode(), mask=b"\x01\x80\xfe\x7f") + client_frame(binary, OP_BINARY)
    assert parse_in_pieces(data, 4097) == [Message(OP_TEXT, text), Message(OP_BINARY, binary)]


def test_bytearray_and_memoryview_input_are_accepted():
    frame = client_frame(b"hi")
    parser = FrameParser(LIMIT)
    parser.feed(bytearray(frame[:3]))
    parser.feed(memoryview(frame)[3:])
    assert parser.next_event() == Message(OP_TEXT, "hi")


def test_unmasked_frames_are_accepted_when_masking_is_not_required():
    data = client_frame(b"plain", mask=None) + client_frame(b"masked")
    assert parse(data, require_mask=False) == [Message(OP_TEXT, "plain"), Message(OP_TEXT, "masked")]


def test_data_frame_with_a_non_minimal_length_is_accepted():
    # RFC 6455 5.2 requires the sender to use the shortest form; a data frame
    # that does not is accepted (as Node's ws, websockets and Tornado do).
    data = client_frame(b"abc", length_bytes=2) + client_frame(b"de", OP_BINARY, length_bytes=8)
    assert parse(data) == [Message(OP_TEXT, "abc"), Message(OP_BINARY, b"de")]


def test_events_are_frozen_value_objects_that_copy_and_pickle():
    event = Message(OP_TEXT, "x")
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]
    for value in (event, Ping(b"p"), Pong(b""), Close(None, ""), Close(1000, "ok")):
        assert copy.copy(value) == value
        assert pickle.loads(pickle.dumps(value)) == value
    assert Ping(b"x") != Pong(b"x")


def test_the_parsers_fast_message_constructor_builds_an_equal_message():
    assert wsframe._message(OP_BINARY, b"a") == Message(OP_BINARY, b"a")
    assert hash(wsframe._message(OP_TEXT, "a")) == hash(Message(OP_TEXT, "a"))


# -- fragmentation ----------------------------------------------------------------


def test_fragmented_text_message_is_reassembled():
    data = client_frame(b"Hel", fin=False) + client_frame(b"lo", OP_CONTINUATION)
    assert parse(data) == [Message(OP_TEXT, "Hello")]


def test_fragmented_binary_message_is_reassembled():
    data = (
        client_frame(b"\x01", OP_BINARY, fin=False)
        + client_frame(b"\x02", OP_CONTINUATION, fin=False)
        + client_frame(b"\x03", OP_CONTINUATION)
    )
    assert parse(data) == [Message(OP_BINARY, b"\x01\x02\x03")]


def test_ping_between_fragments_is_delivered_before_the_message():
    data = (
        client_frame(b"fra", fin=False)
        + client_frame(b"hb", OP_PING)
        + client_frame(b"gm", OP_CONTINUATION, fin=False)
        + client_frame(b"", OP_PONG)
        + client_frame(b"ent", OP_CONTINUATION)
    )
    assert parse(data) == [Ping(b"hb"), Pong(b""), Message(OP_TEXT, "fragment")]


def test_empty_fragments_are_allowed():
    data = client_frame(b"", fin=False) + client_frame(b"a", OP_CONTINUATION, fin=False) + client_frame(b"", OP_CONTINUATION)
    assert parse(data) == [Message(OP_TEXT, "a")]


def test_character_split_across_fragments_is_valid_text():
    euro = "€".encode()
    data = (
        client_frame(euro[:1], fin=False)
        + client_frame(euro[1:2], OP_CONTINUATION, fin=False)
        + client_frame(euro[2:], OP_CONTINUATION)
    )
    assert parse(data) == [Message(OP_TEXT, "€")]


def test_close_between_fragments_is_delivered_and_ends_parsing():
    data = client_frame(b"unfinished", fin=False) + client_frame(b"", OP_CLOSE) + client_frame(b"more", OP_CONTINUATION)
    assert parse(data) == [Close(None, "")]


# -- budget and resumption ------------------------------------------------------------


def test_events_consumes_at_most_max_frames_and_leaves_the_rest_buffered():
    parser = FrameParser(LIMIT)
    parser.feed(b"".join(client_frame(str(i).encode()) for i in range(5)))
    assert list(parser.events(max_frames=2)) == [Message(OP_TEXT, "0"), Message(OP_TEXT, "1")]
    assert parser.buffered == 3 * len(client_frame(b"0"))
    assert list(parser.events(max_frames=2)) == [Message(OP_TEXT, "2"), Message(OP_TEXT, "3")]
    assert list(parser.events()) == [Message(OP_TEXT, "4")]
    assert parser.buffered == 0


def test_fragments_count_against_the_budget_without_yielding_an_event():
    parser = FrameParser(LIMIT)
    parser.feed(
        client_frame(b"a", fin=False)
        + client_frame(b"b", OP_CONTINUATION, fin=False)
        + client_frame(b"c", OP_CONTINUATION)
    )
    assert list(parser.events(max_frames=2)) == []
    assert parser.frames_parsed == 2
    assert list(parser.events(max_frames=2)) == [Message(OP_TEXT, "abc")]
    assert parser.frames_parsed == 3


def test_frames_parsed_tells_whether_the_budget_was_spent():
    parser = FrameParser(LIMIT)
    parser.feed(client_frame(b"x") * 3)
    before = parser.frames_parsed
    assert len(list(parser.events(max_frames=2))) == 2
    assert parser.frames_parsed - before == 2  # budget spent: call again later
    before = parser.frames_parsed
    assert len(list(parser.events(max_frames=2))) == 1
    assert parser.frames_parsed - before == 1  # fewer than the budget: the buffer is drained


def test_stopping_the_iteration_early_loses_no_event():
    parser = FrameParser(LIMIT)
    parser.feed(client_frame(b"first") + client_frame(b"second"))
    for event in parser.events():
        assert event == Message(OP_TEXT, "first")
        break
    assert parser.next_event() == Message(OP_TEXT, "second")


def test_a_budget_of_zero_consumes_nothing():
    parser = FrameParser(LIMIT)
    parser.feed(client_frame(b"x"))
    assert list(parser.events(max_frames=0)) == []
    assert parser.frames_parsed == 0
    assert parser.next_event() == Message(OP_TEXT, "x")


def test_a_negative_budget_is_refused_at_the_call():
    with pytest.raises(ValueError):
        FrameParser(LIMIT).events(max_frames=-1)


def test_more_input_can_be_fed_while_a_budget_left_frames_buffered():
    parser = FrameParser(LIMIT)
    frames = [client_frame(str(i).encode()) for i in range(6)]
    parser.feed(b"".join(frames[:4]) + frames[4][:3])
    assert len(list(parser.events(max_frames=3))) == 3
    parser.feed(frames[4][3:] + frames[5])
    assert list(parser.events()) == [Message(OP_TEXT, "3"), Message(OP_TEXT, "4"), Message(OP_TEXT, "5")]


def test_partial_payload_is_consumed_as_it_arrives():
    frame = client_frame(b"y" * 1000, OP_BINARY)
    parser = FrameParser(LIMIT)
    parser.feed(frame[:500])
    assert parser.next_event() is None
    assert parser.buffered == 0  # the 492 payload bytes are unmasked and kept, not reparsed
    parser.feed(frame[500:])
    assert parser.next_event() == Message(OP_BINARY, b"y" * 1000)


def test_buffer_compaction_keeps_the_unconsumed_bytes():
    frames = [client_frame(str(i).encode() * 40) for i in range(200)]
    data = b"".join(frames)
    assert parse_in_pieces(data, 333) == [Message(OP_TEXT, str(i) * 40) for i in range(200)]


# -- 1002: malformed frames -------------------------------------------------------------


def test_unmasked_client_frame_fails_with_1002():
    assert failure(client_frame(b"hi", mask=None)).code == 1002


@pytest.mark.parametrize("rsv", [0b100, 0b010, 0b001, 0b111])
def test_reserved_bits_fail_with_1002(rsv):
    assert failure(client_frame(b"hi", rsv=rsv)).code == 1002


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_unknown_opcodes_fail_with_1002(opcode):
    assert failure(client_frame(b"", opcode)).code == 1002


@pytest.mark.parametrize("opcode", [OP_CLOSE, OP_PING, OP_PONG])
def test_fragmented_control_frame_fails_with_1002(opcode):
    assert failure(client_frame(b"", opcode, fin=False)).code == 1002


@pytest.mark.parametrize("opcode", [OP_CLOSE, OP_PING, OP_PONG])
def test_control_frame_over_125_bytes_fails_with_1002(opcode):
    assert failure(client_frame(b"\x03\xe8" + b"x" * 124, opcode)).code == 1002


def test_control_frame_with_16_bit_length_field_of_5_fails_with_1002():
    # Autobahn 2.x style: a ping whose length uses the 126 form for 5 bytes.
    assert failure(client_frame(b"hello", OP_PING, length_bytes=2)).code == 1002


def test_control_frame_with_64_bit_length_field_fails_with_1002():
    assert failure(client_frame(b"hello", OP_PONG, length_bytes=8)).code == 1002


def test_control_frame_length_form_fails_as_soon_as_its_second_byte_arrives():
    assert failure(bytes([0x89, 0x80 | 126])).code == 1002


def test_64_bit_length_with_the_high_bit_set_fails_with_1002():
    header = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63)
    assert failure(header + MASK, max_message_size=1 << 64).code == 1002


def test_continuation_without_a_message_in_progress_fails_with_1002():
    assert failure(client_frame(b"x", OP_CONTINUATION)).code == 1002


def test_continuation_after_a_complete_message_fails_with_1002():
    assert failure(client_frame(b"done") + client_frame(b"x", OP_CONTINUATION)).code == 1002


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_new_data_frame_inside_a_fragmented_message_fails_with_1002(opcode):
    assert failure(client_frame(b"a", fin=False) + client_frame(b"b", opcode)).code == 1002


def test_a_bad_first_byte_fails_before_the_rest_of_the_frame_arrives():
    parser = FrameParser(LIMIT)
    parser.feed(bytes([0x80 | 0x40 | OP_TEXT]))  # RSV1 set
    with pytest.raises(WebSocketProtocolError) as info:
        parser.next_event()
    assert info.value.code == 1002


# -- 1009: message size ------------------------------------------------------------------


def test_message_over_the_limit_fails_with_1009_and_an_empty_reason():
    error = failure(client_frame(b"x" * 11, OP_BINARY), max_message_size=10)
    assert (error.code, error.reason) == (1009, "")
    assert str(error) == "message too big"  # for the log; the close frame carries ""


def test_message_of_exactly_the_limit_is_accepted():
    assert parse(client_frame(b"x" * 10), max_message_size=10) == [Message(OP_TEXT, "x" * 10)]


def test_size_limit_is_checked_at_the_header_before_any_payload_arrives():
    header = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 40)  # no mask, no payload yet
    assert failure(header, max_message_size=LIMIT).code == 1009


def test_size_limit_counts_all_fragments_of_a_message():
    data = (
        client_frame(b"x" * 6, OP_BINARY, fin=False)
        + client_frame(b"x" * 4, OP_CONTINUATION, fin=False)
        + client_frame(b"x", OP_CONTINUATION)
    )
    assert failure(data, max_message_size=10).code == 1009


def test_size_limit_starts_again_for_each_message():
    data = client_frame(b"x" * 6, fin=False) + client_frame(b"x" * 4, OP_CONTINUATION) + client_frame(b"y" * 10)
    assert parse(data, max_message_size=10) == [Message(OP_TEXT, "x" * 10), Message(OP_TEXT, "y" * 10)]


def test_control_frames_do_not_count_toward_the_size_limit():
    assert parse(client_frame(b"p" * 100, OP_PING), max_message_size=10) == [Ping(b"p" * 100)]


def test_negative_max_message_size_is_refused():
    with pytest.raises(ValueError):
        FrameParser(-1)


# -- 1007: UTF-8 ---------------------------------------------------------------------------


def test_invalid_utf8_in_a_text_frame_fails_with_1007():
    assert failure(client_frame(b"\xff")).code == 1007


def test_binary_messages_are_not_checked_for_utf8():
    assert parse(client_frame(b"\xff", OP_BINARY)) == [Message(OP_BINARY, b"\xff")]


def test_invalid_utf8_in_fragment_2_of_3_fails_before_fragment_3_arrives():
    parser = FrameParser(LIMIT)
    parser.feed(client_frame("κόσμε".encode(), fin=False) + client_frame(b"\xf4\x90\x80\x80", OP_CONTINUATION, fin=False))
    with pytest.raises(WebSocketProtocolError) as info:
        parser.next_event()
    assert info.value.code == 1007


def test_invalid_utf8_fails_on_the_part_of_a_frame_received_so_far():
    # Autobahn 6.4.x "fail fast": the rest of this frame has not been sent yet.
    frame = client_frame("κόσμε".encode() + b"\xf4\x90\x80\x80" + b"edited" * 1000)
    parser = FrameParser(LIMIT)
    parser.feed(frame[: 8 + 13])  # 16-bit length header, mask, and the payload up to "\xf4\x90"
    with pytest.raises(WebSocketProtocolError) as info:
        parser.next_event()
    assert info.value.code == 1007


def test_utf16_surrogate_fails_without_waiting_for_its_third_byte():
    # ED A0..BF can only start an encoded surrogate, which UTF-8 forbids.
    parser = FrameParser(LIMIT)
    parser.feed(client_frame(b"\xed\xa0", fin=False))
    with pytest.raises(WebSocketProtocolError) as info:
        parser.next_event()
    assert info.value.code == 1007


def test_incomplete_utf8_at_the_end_of_the_final_fragment_fails_with_1007():
    data = client_frame(b"ok", fin=False) + client_frame("€".encode()[:2], OP_CONTINUATION)
    assert failure(data).code == 1007


def test_incomplete_utf8_at_the_end_of_a_single_frame_fails_with_1007():
    assert failure(client_frame("€".encode()[:2])).code == 1007


def test_incomplete_utf8_at_the_end_of_a_non_final_fragment_waits_for_the_next():
    parser = FrameParser(LIMIT)
    parser.feed(client_frame("€".encode()[:2], fin=False))
    assert parser.next_event() is None


# -- close frames ---------------------------------------------------------------------------


def test_empty_close_has_no_code_and_no_reason():
    assert parse(client_frame(b"", OP_CLOSE)) == [Close(None, "")]


def test_close_carries_its_code_and_reason():
    assert parse(client_frame(close_payload(1001, "adiós".encode()), OP_CLOSE)) == [Close(1001, "adiós")]


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_close_codes_valid_on_the_wire_are_accepted(code):
    assert parse(client_frame(close_payload(code), OP_CLOSE)) == [Close(code, "")]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_close_codes_invalid_on_the_wire_fail_with_1002(code):
    assert failure(client_frame(close_payload(code), OP_CLOSE)).code == 1002


def test_close_payload_of_one_byte_fails_with_1002():
    assert failure(client_frame(b"\x03", OP_CLOSE)).code == 1002


def test_close_reason_that_is_not_utf8_fails_with_1007():
    assert failure(client_frame(close_payload(1000, b"\xce\xba\xff"), OP_CLOSE)).code == 1007


def test_bytes_after_a_close_are_discarded():
    parser = FrameParser(LIMIT)
    parser.feed(client_frame(b"", OP_CLOSE) + client_frame(b"late"))
    assert parser.next_event() == Close(None, "")
    assert parser.closed
    parser.feed(b"\xff\xff garbage that would fail")
    assert parser.next_event() is None
    assert parser.buffered == 0


# -- after a failure ---------------------------------------------------------------------------


def test_the_parser_refuses_all_input_after_a_failure():
    parser = FrameParser(LIMIT)
    parser.feed(client_frame(b"x", mask=None))
    with pytest.raises(WebSocketProtocolError):
        parser.next_event()
    with pytest.raises(WebSocketProtocolError) as again:
        parser.feed(client_frame(b"fine"))
    assert again.value.code == 1002
    with pytest.raises(WebSocketProtocolError):
        list(parser.events())


def test_the_error_is_a_protocol_error_with_a_short_reason():
    error = failure(client_frame(b"x", mask=None))
    assert isinstance(error, ProtocolError)
    assert error.reason and len(error.reason.encode()) <= 123
    assert str(error) == error.reason
    assert build_close(error.code, error.reason)  # the close frame the server sends


def test_the_error_pickles_with_its_code_and_reason():
    error = pickle.loads(pickle.dumps(WebSocketProtocolError(1007, "bad text")))
    assert (error.code, error.reason) == (1007, "bad text")


# -- properties ---------------------------------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

masks = st.binary(min_size=4, max_size=4)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)  # no lone surrogates
payloads = st.one_of(st.binary(max_size=700), st.binary(max_size=20))


@st.composite
def messages(draw):
    """A Message, as a client might send it."""
    if draw(st.booleans()):
        return Message(OP_TEXT, draw(texts))
    return Message(OP_BINARY, draw(payloads))


@st.composite
def wire(draw):
    """Valid client bytes: messages cut into random fragments, pings between them; and their events."""
    data = b""
    expected = []
    for message in draw(st.lists(messages(), max_size=6)):
        raw = message.data.encode("utf-8") if isinstance(message.data, str) else message.data
        cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=3)))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
        for index, piece in enumerate(pieces):
            opcode = message.opcode if index == 0 else OP_CONTINUATION
            final = index == len(pieces) - 1
            data += client_frame(piece, opcode, fin=final, mask=draw(masks))
            if final:
                expected.append(message)
            if draw(st.integers(0, 4)) == 0:
                ping = draw(st.binary(max_size=125))
                data += client_frame(ping, OP_PING, mask=draw(masks))
                expected.append(Ping(ping))
    return data, expected


@PROPERTY
@given(wire(), st.lists(st.integers(1, 64), max_size=40))
def test_any_split_of_valid_frames_gives_the_same_events_as_one_feed(case, sizes):
    data, expected = case
    parser = FrameParser(LIMIT)
    events = []
    offset = 0
    for size in sizes:
        parser.feed(data[offset : offset + size])
        offset += size
        events.extend(parser.events())
    parser.feed(data[offset:])
    events.extend(parser.events())
    assert events == parse(data) == expected


@PROPERTY
@given(wire(), st.integers(1, 5))
def test_any_budget_gives_the_same_events(case, budget):
    data, expected = case
    parser = FrameParser(LIMIT)
    parser.feed(data)
    events = []
    while True:
        before = parser.frames_parsed
        events.extend(parser.events(max_frames=budget))
        if parser.frames_parsed - before < budget:
            break
    assert events == expected


@PROPERTY
@given(st.lists(messages(), max_size=8), masks)
def test_messages_framed_by_a_client_come_back_equal(sent, mask):
    data = b"".join(
        client_frame(m.data.encode("utf-8") if isinstance(m.data, str) else m.data, m.opcode, mask=mask) for m in sent
    )
    assert parse(data) == sent


@PROPERTY
@given(st.binary(max_size=300), st.lists(st.integers(1, 50), max_size=10), st.booleans())
def test_arbitrary_bytes_only_ever_raise_websocket_protocol_error(data, sizes, require_mask):
    parser = FrameParser(200, require_mask=require_mask)
    offset = 0
    try:
        for size in [*sizes, len(data)]:
            parser.feed(data[offset : offset + size])
            offset += size
            for event in parser.events():
                assert isinstance(event, (Message, Ping, Pong, Close))
    except WebSocketProtocolError as error:
        assert error.code in (1002, 1007, 1009)


@PROPERTY
@given(st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([b"\x81", b"\x80", b"\x00", b"\x89\x80", b"\x88\x82"])), max_size=12))
def test_frame_like_byte_soup_only_ever_raises_websocket_protocol_error(parts):
    # Nearer misses than random bytes: valid-looking header bytes glued to noise.
    parser = FrameParser(100)
    try:
        for part in parts:
            parser.feed(part)
            list(parser.events())
    except WebSocketProtocolError:
        pass


@PROPERTY
@given(st.text(max_size=200), st.integers(1000, 1003) | st.integers(3000, 4999))
def test_build_close_always_makes_a_frame_the_parser_accepts(reason, code):
    try:
        frame = build_close(code, reason)
    except UnicodeEncodeError:  # lone surrogates cannot be sent
        return
    [event] = parse(frame, require_mask=False)
    assert event.code == code
    assert reason.startswith(event.reason)
