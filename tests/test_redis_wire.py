"""The Redis wire formats, without Redis: round trips, the documented shapes, the
python-socketio and Node emitter formats, and hostile input (which only ever
decodes or raises ``Ignored``).
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import pytest

from tornado_sio.adapter.base import BroadcastOptions
from tornado_sio.adapter.redis.wire import (
    WIRE_VERSION,
    Ack,
    AckRequest,
    Emit,
    Ignored,
    NativeCodec,
    NodeCodec,
    PsioCodec,
    SocketsOp,
    Unsupported,
    dump,
    encode_event,
    load,
    make_codec,
    redact_url,
)
from tornado_sio.exceptions import EncodeError, ProtocolError
from tornado_sio.protocol.socketio import (
    Decoder,
    SIOType,
    event_text,
    reconstruct,
    split_event,
)

A = "a" * 32
B = "b" * 32


def opts(namespace: str = "/", rooms: Any = (), skip: Any = (), local: bool = False) -> BroadcastOptions:
    return BroadcastOptions(namespace, frozenset(rooms), frozenset(skip), local=local)


def here(namespace: str = "/", rooms: Any = (), skip: Any = ()) -> BroadcastOptions:
    """A selection as a receiver sees it: to act on in its own process only."""
    return opts(namespace, rooms, skip, local=True)


# ---------------------------------------------------------------- protocol helpers


@pytest.mark.parametrize("namespace", ["/", "/chat"])
@pytest.mark.parametrize("data", [["e"], ["e", 1, {"k": "é"}], ["bin", b"\x00", {"deep": [b"\x01"]}]])
def test_split_event_body_rebuilds_the_same_packet_with_an_ack_id(namespace: str, data: list) -> None:
    text, body, attachments = split_event(namespace, data)
    assert event_text(namespace, body, len(attachments)) == text
    decoder = Decoder()
    packet = decoder.feed(event_text(namespace, body, len(attachments), ack_id=7))
    for attachment in attachments:
        assert packet is None
        packet = decoder.feed(attachment)
    assert packet is not None
    assert (packet.type, packet.namespace, packet.id, packet.data) == (SIOType.EVENT, namespace, 7, data)


def test_reconstruct_puts_buffers_back_and_refuses_a_bad_placeholder() -> None:
    assert reconstruct({"_placeholder": True, "num": 0}, [b"z"]) == b"z"
    assert reconstruct([{"a": [{"_placeholder": True, "num": 1}]}, 2], [b"x", b"y"]) == [{"a": [b"y"]}, 2]
    with pytest.raises(ProtocolError):
        reconstruct([{"_placeholder": True, "num": 1}], [b"x"])


def test_encode_event_refuses_what_a_local_emit_refuses() -> None:
    for bad in (["e", float("nan")], ["e", *[b"x"] * 11], ["e", {1, 2}]):
        with pytest.raises(EncodeError):
            encode_event("/", bad)


def test_redact_url_hides_the_password_only() -> None:
    assert redact_url("redis://:s3cret@10.0.0.5:6379/0") == "redis://:***@10.0.0.5:6379/0"
    assert redact_url("redis://user:pw@[::1]:7000/1") == "redis://user:***@[::1]:7000/1"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("redis://h:notaport/0") == "<invalid URL>"


# ---------------------------------------------------------------- native


def test_native_emit_is_json_in_the_documented_shape() -> None:
    """The native format as docs/redis.md describes it."""
    codec = NativeCodec("tornado-sio", A)
    event = encode_event("/chat", ["msg", {"x": 1}, b"\x01"])
    channel, payload = codec.emit(event, opts("/chat", ["room1"], ["sid9"]), AckRequest(A, 5, 10.0))
    assert channel == b"tornado-sio#/chat#room1#"
    assert json.loads(payload) == {"v": 1, "ch": "tornado-sio", "src": A, "op": "emit", "ns": "/chat",
                                   "to": ["room1"], "skip": ["sid9"],
                                   "json": '["msg",{"x":1},{"_placeholder":true,"num":0}]', "bin": ["AQ=="],
                                   "cb": {"to": A, "id": 5, "tmo": 10.0}}
    assert codec.emit(encode_event("/", ["e"]), opts("/", ["r1", "r2"]))[0] == b"tornado-sio#/#"
    channel, payload = codec.emit(encode_event("/", ["e"]), opts())
    assert channel == b"tornado-sio#/#" and json.loads(payload)["to"] is None


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_native_emit_round_trips_between_two_processes(serializer: str) -> None:
    sender, receiver = NativeCodec("c", A, serializer), NativeCodec("c", B)
    event = encode_event("/n", ["e", b"\xff", {"k": [1, 2]}])
    _, payload = sender.emit(event, opts("/n", ["r1", "r2"], ["s1"]), AckRequest(A, 9, 2.5))
    message = receiver.decode(payload)
    assert message == Emit(here("/n", ["r1", "r2"], ["s1"]), event.body, [b"\xff"], AckRequest(A, 9, 2.5))
    assert sender.decode(payload) is None  # its own message: already delivered locally


def test_native_operations_use_the_version_1_ops_where_they_fit() -> None:
    codec, receiver = NativeCodec("c", A), NativeCodec("c", B)
    cases = [
        (SocketsOp("add", opts("/", ["sid1"]), ("vip",)), "enter", b"c#/#sid1#"),
        (SocketsOp("del", opts("/", ["sid1"]), ("vip",)), "leave", b"c#/#sid1#"),
        (SocketsOp("del", opts("/", ["vip"]), ("vip",)), "close", b"c#/#vip#"),
        (SocketsOp("disconnect", opts("/", ["sid1"])), "disconnect", b"c#/#sid1#"),
        (SocketsOp("add", opts("/", ["r"], ["x"]), ("vip",)), "add_sockets", b"c#/#r#"),
        (SocketsOp("add", opts("/"), ("a", "b")), "add_sockets", b"c#/#"),
        (SocketsOp("del", opts("/", ["r1", "r2"]), ("vip",)), "del_sockets", b"c#/#"),
        (SocketsOp("disconnect", opts("/", ["sid1"]), close=True), "disconnect_sockets", b"c#/#sid1#"),
        (SocketsOp("disconnect", opts("/", (), ["staff"])), "disconnect_sockets", b"c#/#"),
    ]
    for op, name, channel in cases:
        [(sent_on, payload)] = codec.sockets(op)
        assert (json.loads(payload)["op"], sent_on) == (name, channel)
        assert receiver.decode(payload) == SocketsOp(op.kind, here("/", op.opts.rooms, op.opts.except_rooms),
                                                     op.rooms, op.close)


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_native_acks_round_trip_with_binary_arguments_and_errors(serializer: str) -> None:
    answering, asking = NativeCodec("c", B, serializer), NativeCodec("c", A)
    channel, payload = answering.ack(AckRequest(A, 5), "sid9", [b"\x02", {"n": 3}])
    assert channel == b"c#proc#" + A.encode() + b"#"
    assert asking.decode(payload) == Ack(5, "sid9", [b"\x02", {"n": 3}])
    _, payload = answering.ack(AckRequest(A, 6), "sid9", None, "disconnected")
    assert asking.decode(payload) == Ack(6, "sid9", [], "disconnected")


def test_native_messages_to_ignore_say_why() -> None:
    codec = NativeCodec("tornado-sio", B)

    def message(**over: Any) -> bytes:
        base = {"v": WIRE_VERSION, "ch": "tornado-sio", "src": A, "op": "emit", "ns": "/", "to": None,
                "json": '["hi",1]'}
        base.update(over)
        return dump({k: v for k, v in base.items() if v is not ...})

    cases = {
        message(v=99): "unknown wire version 99",
        message(ch="another-app"): "from channel 'another-app'",
        message(op="launch"): "unknown op 'launch'",
        message(json='{"a":1}'): "'json' is not an array",
        message(to=[1]): "list of strings",
        message(skip=5): "list of strings",
        message(src=...): "'src'",
        message(ns=...): "'ns'",
        message(bin=["not base64!"]): "base64",
        message(bin=["AQ=="] * 11): "11 binary attachments",
        message(cb={"to": A, "id": True}): "'id'",
        message(cb={"to": A, "id": 1, "tmo": -1}): "cb.tmo",
        message(cb=[1]): "'cb' must be an object",
        message(op="ack", id=1, args="x"): "'args' must be a list",
        message(op="ack", id=1, args=[{"_placeholder": True, "num": 3}]): "placeholder",
        message(op="enter", sid=...): "'sid'",
        message(op="add_sockets", rooms=None): "'rooms'",
        b"": "empty",
        b"not json at all": "neither a JSON object nor a msgpack map",
        b"\x80\x04garbage": "undecodable",
        b"{" * 100 + b"}" * 100: "undecodable",
        b'{"v": 1,': "undecodable",
        dump({"v": 1}, "msgpack")[:-1] + b"\xc1": "undecodable",
    }
    for raw, why in cases.items():
        with pytest.raises(Ignored, match=why.replace("(", r"\(").replace(")", r"\)")):
            codec.decode(raw)
    assert codec.decode(message(to=[])) is None  # an empty list of rooms selects nobody


def test_make_codec_checks_its_settings() -> None:
    assert isinstance(make_codec("python-socketio", "socketio", A), PsioCodec)
    for bad in ({"format": "kafka"}, {"serializer": "pickle"}, {"format": "python-socketio", "serializer": "msgpack"},
                {"channel": ""}):
        kwargs = {"format": "native", "channel": "c", "src": A, **bad}
        with pytest.raises(ValueError):
            make_codec(**kwargs)


# ---------------------------------------------------------------- python-socketio


def test_psio_emit_is_what_python_socketio_publishes() -> None:
    psio_packet = pytest.importorskip("socketio.packet")
    codec = PsioCodec("socketio", A)
    event = encode_event("/", ["ev", 1, {"b": b"\x00\xff"}])
    channel, payload = codec.emit(event, opts("/", ["room"], ["s1"]), AckRequest(A, 4))
    assert channel == b"socketio"
    data, attachments = psio_packet.Packet.deconstruct_binary([1, {"b": b"\x00\xff"}])
    assert json.loads(payload) == {"method": "emit", "event": "ev",
                                   "data": [data, *[base64.b64encode(a).decode() for a in attachments]],
                                   "binary": True, "namespace": "/", "room": "room", "skip_sid": ["s1"],
                                   "callback": ["room", "/", 4], "host_id": A}
    _, payload = codec.emit(encode_event("/", ["ev", 1, 2]), opts("/", ["r1", "r2"]))
    assert json.loads(payload)["room"] == ["r1", "r2"] and json.loads(payload)["data"] == [1, 2]


def test_psio_messages_from_python_socketio_decode() -> None:
    codec = PsioCodec("socketio", B)

    def raw(**message: Any) -> bytes:
        return json.dumps({"host_id": A, "namespace": "/t", **message}).encode()

    emit = codec.decode(raw(method="emit", event="ev", data=[[{"_placeholder": True, "num": 0}], "AAE="],
                            binary=True, room="r", skip_sid="s1", callback=["r", "/t", 3]))
    assert emit == Emit(here("/t", ["r"], ["s1"]), '["ev",{"_placeholder":true,"num":0}]', [b"\x00\x01"],
                        AckRequest(A, 3, None, "r", "/t"))
    assert codec.decode(raw(method="emit", event="one", data={"x": 1})).body == '["one",{"x":1}]'
    assert codec.decode(raw(method="emit", event="none", data=None)).body == '["none"]'
    assert codec.decode(raw(method="enter_room", sid="s", room="r")) == SocketsOp("add", here("/t", ["s"]), ("r",))
    assert codec.decode(raw(method="leave_room", sid="s", room="r")) == SocketsOp("del", here("/t", ["s"]), ("r",))
    assert codec.decode(raw(method="close_room", room="r")) == SocketsOp("del", here("/t", ["r"]), ("r",))
    assert codec.decode(raw(method="disconnect", sid="s")) == SocketsOp("disconnect", here("/t", ["s"]))
    # callbacks: only those addressed to this process
    assert codec.decode(raw(method="callback", host_id=B, sid="r", id=3, args=[1])) == Ack(3, "r", [1])
    assert codec.decode(raw(method="callback", host_id=A, sid="r", id=3, args=[1])) is None
    # its own messages
    assert codec.decode(json.dumps({"method": "emit", "host_id": B, "event": "e"}).encode()) is None
    for bad, why in ((b"[]", "not a python-socketio"), (raw(method="fly"), "unknown method"),
                     (raw(method="emit", event=1), "'event'"), (raw(method="emit", event="e", namespace=3), "namespace"),
                     (raw(method="emit", event="e", binary=True, data="x"), "binary 'data'"),
                     (raw(method="emit", event="e", data=[1.5e999]), "undecodable")):
        with pytest.raises(Ignored, match=why):
            codec.decode(bad)


def test_psio_operations_map_to_its_four_shapes_and_refuse_the_rest() -> None:
    codec = PsioCodec("socketio", A)

    def sent(op: SocketsOp) -> list:
        return [json.loads(payload) for _, payload in codec.sockets(op)]

    base = {"namespace": "/", "host_id": A}
    assert sent(SocketsOp("add", opts("/", ["s"]), ("r1", "r2"))) == [
        {"method": "enter_room", "sid": "s", "room": "r1", **base},
        {"method": "enter_room", "sid": "s", "room": "r2", **base}]
    assert sent(SocketsOp("del", opts("/", ["s"]), ("r",))) == [{"method": "leave_room", "sid": "s", "room": "r", **base}]
    assert sent(SocketsOp("del", opts("/", ["r"]), ("r",))) == [{"method": "close_room", "room": "r", **base}]
    assert sent(SocketsOp("disconnect", opts("/", ["s"]))) == [{"method": "disconnect", "sid": "s", **base}]
    for op in (SocketsOp("add", opts("/"), ("r",)), SocketsOp("add", opts("/", ["a", "b"]), ("r",)),
               SocketsOp("del", opts("/", ["a"], ["x"]), ("r",)), SocketsOp("disconnect", opts("/", ["s"]), close=True)):
        with pytest.raises(NotImplementedError, match="python-socketio message queue format"):
            codec.sockets(op)


def test_psio_ack_answers_python_socketio_and_has_no_error_form() -> None:
    codec = PsioCodec("socketio", B)
    request = AckRequest(A, 3, None, "r", "/t")
    _, payload = codec.ack(request, "sid", [1, "x"])
    assert json.loads(payload) == {"method": "callback", "host_id": A, "sid": "r", "namespace": "/t", "id": 3,
                                   "args": [1, "x"]}
    assert codec.ack(request, "sid", None, "disconnected") is None


# ---------------------------------------------------------------- @socket.io/redis-emitter


def node_broadcast(packet: dict, **options: Any) -> bytes:
    msgpack = pytest.importorskip("msgpack")
    return msgpack.packb(["emitter", packet, options], use_bin_type=True, datetime=True)


def test_node_broadcasts_decode_with_binary_and_dates() -> None:
    codec = NodeCodec("socket.io")
    when = datetime.datetime(1970, 1, 1, 0, 0, 1, tzinfo=datetime.timezone.utc)
    raw = node_broadcast({"type": 2, "nsp": "/", "data": ["news", {"a": 1}, b"\x01\x02", when]},
                         rooms=["r"], flags={}, **{"except": ["muted"]})
    message = codec.decode_broadcast(raw)
    assert message == Emit(here("/", ["r"], ["muted"]),
                           '["news",{"a":1},{"_placeholder":true,"num":0},"1970-01-01T00:00:01.000Z"]', [b"\x01\x02"])
    assert codec.namespace_channels("/x") == [(b"socket.io#/x#", "node"), (b"socket.io-request#/x#", "node-request")]
    assert codec.room_channels("/x", "r") == [(b"socket.io#/x#r#", "node")]
    for bad, why in ((b"\xc1", "undecodable"), (node_broadcast({"type": 0, "nsp": "/"}), "not an event"),
                     (node_broadcast({"type": 2, "nsp": "/", "data": []}), "'data'"),
                     (node_broadcast({"type": 2, "nsp": "/", "data": ["e"]}, rooms="r"), "'rooms'")):
        with pytest.raises(Ignored, match=why):
            codec.decode_broadcast(bad)


def test_node_requests_join_leave_and_disconnect() -> None:
    codec = NodeCodec("socket.io")
    channel = b"socket.io-request#/t#"

    def request(**message: Any) -> bytes:
        return json.dumps({"uid": "emitter", **message}).encode()

    assert codec.decode_request(channel, request(type=2, opts={"rooms": [], "except": ["staff"]}, rooms=["j"])) \
        == SocketsOp("add", here("/t", (), ["staff"]), ("j",))
    assert codec.decode_request(channel, request(type=3, opts={"rooms": ["s"]}, rooms=["j"])) \
        == SocketsOp("del", here("/t", ["s"]), ("j",))
    assert codec.decode_request(channel, request(type=4, opts={"rooms": ["s"]}, close=True)) \
        == SocketsOp("disconnect", here("/t", ["s"]), close=True)
    with pytest.raises(Unsupported):
        codec.decode_request(channel, request(type=5, opts={}))  # serverSideEmit: needs an adapter to answer
    with pytest.raises(Ignored, match="'opts'"):
        codec.decode_request(channel, request(type=2, opts=[]))


# ---------------------------------------------------------------- hostile input, generated

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not found: pip install -e '.[test,redis,fast]'")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=8), st.sampled_from(["/", "tornado-sio", "emit", "enter", "ack", A, "[1]"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                      max_leaves=12)
KEYS = ["v", "ch", "src", "op", "ns", "to", "skip", "json", "bin", "cb", "sid", "room", "rooms", "id", "args",
        "err", "close", "method", "host_id", "event", "data", "binary", "namespace", "callback", "skip_sid"]
messages = st.dictionaries(st.sampled_from(KEYS), values, max_size=10)
native_like = st.builds(lambda m, op: {"v": 1, "ch": "tornado-sio", "src": A, **m, "op": op}, messages,
                        st.sampled_from(["emit", "enter", "leave", "close", "disconnect", "ack", "add_sockets",
                                         "del_sockets", "disconnect_sockets"]))


def decodes_or_ignores(func: Any, *args: Any) -> Any:
    try:
        result = func(*args)
    except Ignored:
        return None
    assert result is None or isinstance(result, (Emit, SocketsOp, Ack))
    return result


@FUZZ
@given(st.binary(max_size=80))
def test_any_bytes_decode_or_are_ignored(raw: bytes) -> None:
    decodes_or_ignores(NativeCodec("tornado-sio", B).decode, raw)
    decodes_or_ignores(PsioCodec("socketio", B).decode, raw)
    decodes_or_ignores(NodeCodec("socket.io").decode_broadcast, raw)
    decodes_or_ignores(NodeCodec("socket.io").decode_request, b"socket.io-request#/#", raw)


@FUZZ
@given(st.one_of(messages, native_like), st.sampled_from(["json", "msgpack"]))
def test_any_message_shape_decodes_or_is_ignored(message: dict, serializer: str) -> None:
    try:
        raw = dump(message, serializer)
    except (EncodeError, OverflowError, ValueError):
        return  # not representable in this serializer
    decoded = decodes_or_ignores(NativeCodec("tornado-sio", B).decode, raw)
    if isinstance(decoded, Emit):
        assert decoded.body.startswith("[") and all(isinstance(a, bytes) for a in decoded.attachments)
    if serializer == "json":
        decodes_or_ignores(PsioCodec("socketio", B).decode, raw)
        decodes_or_ignores(NodeCodec("socket.io").decode_request, b"socket.io-request#/#", raw)
    assert load(raw) == message or serializer == "msgpack"


# ---------------------------------------------------------------- cluster messages


def _cluster_codecs() -> tuple[Any, Any]:
    from tornado_sio.adapter.redis.wire import NativeCodec

    return NativeCodec("c", "asker"), NativeCodec("c", "answerer")


def test_cluster_requests_and_answers_round_trip() -> None:
    from tornado_sio.adapter.base import SocketDetails
    from tornado_sio.adapter.redis.wire import Heartbeat, Request, Response, socket_fields

    asker, answerer = _cluster_codecs()
    channel, payload = asker.heartbeat(initial=True)
    assert channel == b"c#request#" and answerer.decode(payload) == Heartbeat("asker", True, False)
    assert answerer.decode(asker.heartbeat(closing=True)[1]) == Heartbeat("asker", False, True)
    fetch = Request("fetch", 7, "asker", BroadcastOptions("/x", frozenset({"r"}), frozenset({"s"}), local=True))
    assert answerer.decode(asker.request(fetch)[1]) == fetch
    sse = Request("sse", None, "asker", BroadcastOptions("/", local=True), ["ev", {"a": b"\x01"}])
    assert answerer.decode(asker.request(sse)[1]) == sse
    details = SocketDetails("s1", "/x", ["s1", "r"], {"u": 1}, {"address": "1.2.3.4"})
    channel, payload = answerer.response("asker", 7, "sockets", [socket_fields(details)])
    assert channel == b"c#proc#asker#"
    assert asker.decode(payload) == Response("sockets", 7, "answerer", [details])
    assert asker.decode(answerer.response("asker", 3, "count", 2)[1]) == Response("count", 3, "answerer", 2)
    reply = answerer.response("asker", 4, "sse_reply", ["ok", b"\x02"])[1]
    assert asker.decode(reply) == Response("sse_reply", 4, "answerer", ["ok", b"\x02"])


def test_an_emit_whose_recipients_are_counted_goes_to_every_process() -> None:
    from tornado_sio.adapter.redis.wire import AckRequest, encode_event

    asker, answerer = _cluster_codecs()
    event = encode_event("/", ["q", 1])
    channel, payload = asker.emit(event, BroadcastOptions("/", frozenset({"room"})), AckRequest("asker", 9, 5.0,
                                                                                                  count=True))
    assert channel == b"c#request#"
    decoded = answerer.decode(payload)
    assert decoded.ack.count is True and decoded.ack.ack_id == 9
    plain = asker.emit(event, BroadcastOptions("/", frozenset({"room"})), AckRequest("asker", 9, 5.0))
    assert plain[0] == b"c#/#room#" and answerer.decode(plain[1]).ack.count is False


@pytest.mark.parametrize("message", [
    {"op": "fetch", "ns": "/", "rid": "1"},
    {"op": "fetch", "ns": 5, "rid": 1},
    {"op": "sse", "ns": "/", "data": []},
    {"op": "sse", "ns": "/", "data": [1, 2]},
    {"op": "count", "rid": 1, "n": -1},
    {"op": "count", "rid": 1, "n": True},
    {"op": "sockets", "rid": 1, "sockets": {}},
    {"op": "sockets", "rid": 1, "sockets": [{"sid": "a", "ns": "/", "rooms": ["a"], "data": [], "hs": {}}]},
    {"op": "sse_reply", "rid": None, "args": []},
])
def test_malformed_cluster_messages_are_ignored(message: dict[str, Any]) -> None:
    from tornado_sio.adapter.redis.wire import Ignored

    _, answerer = _cluster_codecs()
    with pytest.raises(Ignored):
        answerer.decode(json.dumps({"v": 1, "ch": "c", "src": "x", **message}).encode())
