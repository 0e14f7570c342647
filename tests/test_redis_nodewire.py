"""Node's ``@socket.io/redis-adapter`` 8.x format, encoded and decoded without sockets.

The expected bytes follow the adapter's source (``dist/index.js``): msgpack
broadcasts ``[uid, packet, {rooms, except, flags}]``, JSON requests (msgpack for
a broadcast with acks), answers matched by ``requestId``.
"""

from __future__ import annotations

import datetime
import json
import random

import pytest

from tests import support

support.need_python_module("msgpack")

import msgpack

from tornado_sio.adapter.base import BroadcastOptions, SocketDetails
from tornado_sio.adapter.redis.nodewire import (
    NodeAckRequest,
    NodeAdapterCodec,
    NodeRequest,
    NodeResponse,
    NodeWire,
    RequestType,
)
from tornado_sio.adapter.redis.wire import Emit, Ignored, SocketsOp, encode_event
from tornado_sio.exceptions import EncodeError

ME, NODE = "tornado-uid", "abc123"


@pytest.fixture
def wire() -> NodeWire:
    return NodeWire("socket.io", ME)


def node_broadcast(packet: dict, opts: dict, uid: str = NODE) -> bytes:
    return msgpack.packb([uid, packet, opts], use_bin_type=True, datetime=True)  # a Date: a msgpack timestamp


def node_json(message: dict) -> bytes:
    return json.dumps(message).encode()


# -- channels


def test_channels_are_named_as_nodes_adapter_names_them(wire):
    assert wire.broadcast_channel("/") == b"socket.io#/#"
    assert wire.room_channel("/chat", "r1") == b"socket.io#/chat#r1#"
    assert wire.request_channel("/") == b"socket.io-request#/#"
    assert wire.response_channel("/") == b"socket.io-response#/#"
    assert wire.response_channel("/", NODE) == b"socket.io-response#/#abc123#"


def test_a_broadcast_to_exactly_one_room_goes_to_that_rooms_channel(wire):
    event = encode_event("/", ["hi", 1])
    assert wire.broadcast(event, BroadcastOptions("/", frozenset({"r"})))[0] == b"socket.io#/#r#"
    assert wire.broadcast(event, BroadcastOptions("/", frozenset({"a", "b"})))[0] == b"socket.io#/#"
    assert wire.broadcast(event, BroadcastOptions("/"))[0] == b"socket.io#/#"


# -- what this server publishes


def test_a_broadcast_is_msgpack_uid_packet_and_options(wire):
    event = encode_event("/chat", ["news", {"n": 1}, b"\x01\x02"])
    _, payload = wire.broadcast(event, BroadcastOptions("/chat", frozenset({"a", "b"}), frozenset({"x"}),
                                                        volatile=True))
    assert msgpack.unpackb(payload, raw=False) == [
        ME, {"type": 2, "data": ["news", {"n": 1}, b"\x01\x02"], "nsp": "/chat"},
        {"rooms": ["a", "b"], "except": ["x"], "flags": {"volatile": True}}]


def test_a_broadcast_with_acks_is_a_msgpack_request_with_the_timeout_in_milliseconds(wire):
    channel, payload = wire.broadcast_with_ack(encode_event("/", ["q"]), BroadcastOptions("/"), "rid1", 2.5)
    assert channel == b"socket.io-request#/#"
    assert msgpack.unpackb(payload, raw=False) == {
        "uid": ME, "requestId": "rid1", "type": 7, "packet": {"type": 2, "data": ["q"], "nsp": "/"},
        "opts": {"rooms": [], "except": [], "flags": {"timeout": 2500}}}


def test_socket_operations_are_json_requests_with_options(wire):
    opts = BroadcastOptions("/", frozenset({"r"}), frozenset({"x"}))
    [(channel, join)] = wire.sockets(SocketsOp("add", opts, ("a", "b")))
    [(_, kick)] = wire.sockets(SocketsOp("disconnect", opts, close=True))
    assert channel == b"socket.io-request#/#"
    assert json.loads(join) == {"uid": ME, "type": 2, "opts": {"rooms": ["r"], "except": ["x"]}, "rooms": ["a", "b"]}
    assert json.loads(kick) == {"uid": ME, "type": 4, "opts": {"rooms": ["r"], "except": ["x"]}, "close": True}


def test_fetch_all_rooms_and_server_side_emit_requests_are_json(wire):
    assert json.loads(wire.fetch(BroadcastOptions("/", frozenset({"r"})), "f1")[1]) == {
        "uid": ME, "requestId": "f1", "type": 5, "opts": {"rooms": ["r"], "except": []}}
    assert json.loads(wire.all_rooms("/", "a1")[1]) == {"uid": ME, "requestId": "a1", "type": 1}
    assert json.loads(wire.server_side_emit("/", ["ev", 1], None)[1]) == {"uid": ME, "type": 6, "data": ["ev", 1]}


def test_binary_in_a_server_side_emit_travels_as_json_stringify_writes_a_buffer(wire):
    message = json.loads(wire.server_side_emit("/", ["ev", b"\x01\x02"], "s1")[1])
    assert message["data"] == ["ev", {"type": "Buffer", "data": [1, 2]}]
    assert message["requestId"] == "s1"


def test_answers_go_to_the_asking_servers_own_response_channel(wire):
    request = NodeRequest(RequestType.REMOTE_FETCH, "f1", NODE, "/", BroadcastOptions("/", local=True))
    socket = SocketDetails("s1", "/", ["s1", "r"], {"k": 1}, {"query": {"EIO": "4"}})
    channel, payload = wire.fetch_answer(request, [socket])
    assert channel == b"socket.io-response#/#abc123#"
    assert json.loads(payload) == {"requestId": "f1", "sockets": [
        {"id": "s1", "handshake": {"query": {"EIO": "4"}}, "rooms": ["s1", "r"], "data": {"k": 1}}]}
    assert json.loads(wire.rooms_answer(request, ["s1", "r"])[1]) == {"requestId": "f1", "rooms": ["s1", "r"]}


def test_a_server_side_event_answer_carries_its_first_argument_only(wire):
    request = NodeRequest(RequestType.SERVER_SIDE_EMIT, "s1", NODE, "/", BroadcastOptions("/", local=True), ["ev"])
    assert json.loads(wire.sse_answer(request, ["first", "second"])[1]) == {"type": 6, "requestId": "s1",
                                                                            "data": "first"}


def test_client_counts_are_json_and_client_acks_msgpack(wire):
    ack = NodeAckRequest(NODE, "b1", 5.0, namespace="/")
    channel, count = wire.count_answer(ack, 3)
    assert channel == b"socket.io-response#/#abc123#"
    assert json.loads(count) == {"type": 8, "requestId": "b1", "clientCount": 3}
    assert msgpack.unpackb(wire.ack_answer(ack, [b"\x00", "more"])[1], raw=False) == {
        "type": 9, "requestId": "b1", "packet": b"\x00"}


def test_data_msgpack_cannot_carry_is_an_encode_error(wire):
    with pytest.raises(EncodeError):
        wire.broadcast(encode_event("/", ["big", 2 ** 70]), BroadcastOptions("/"))


def test_the_adapter_codec_never_publishes_an_error_ack(wire):
    codec = NodeAdapterCodec(wire)
    assert codec.ack(NodeAckRequest(NODE, "b1", namespace="/"), "sid", None, "disconnected") is None
    assert codec.namespace_channels("/") == [] and codec.fixed_channels(False) == []


# -- what Node servers publish


def test_a_node_broadcast_decodes_to_an_emit_acted_on_here_only(wire):
    raw = node_broadcast({"type": 2, "data": ["news", {"n": 1}, b"\x07"], "nsp": "/"},
                         {"rooms": ["r"], "except": ["x"], "flags": {"volatile": True}})
    emit = wire.decode_broadcast(b"socket.io#/#r#", raw)
    assert isinstance(emit, Emit)
    assert emit.opts == BroadcastOptions("/", frozenset({"r"}), frozenset({"x"}), local=True, volatile=True)
    assert emit.body == '["news",{"n":1},{"_placeholder":true,"num":0}]'
    assert emit.attachments == [b"\x07"]


def test_a_numeric_room_is_the_room_of_that_name(wire):
    raw = node_broadcast({"type": 2, "data": ["x"], "nsp": "/"}, {"rooms": [123], "except": []})
    emit = wire.decode_broadcast(b"socket.io#/#123#", raw)
    assert emit is not None and emit.opts.rooms == frozenset({"123"})


def test_this_servers_own_broadcast_decodes_to_nothing(wire):
    raw = node_broadcast({"type": 2, "data": ["x"], "nsp": "/"}, {"rooms": [], "except": []}, uid=ME)
    assert wire.decode_broadcast(b"socket.io#/#", raw) is None


def test_a_date_becomes_iso_text_and_undefined_becomes_null(wire):
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)
    undefined = msgpack.ExtType(0, b"\x00")  # notepack's undefined
    raw = node_broadcast({"type": 2, "data": ["t", when, undefined], "nsp": "/"}, {})
    emit = wire.decode_broadcast(b"socket.io#/#", raw)
    assert emit is not None and emit.body == '["t","2024-01-02T03:04:05.678Z",null]'


def test_a_broadcast_whose_namespace_is_not_its_channels_is_ignored(wire):
    raw = node_broadcast({"type": 2, "data": ["x"], "nsp": "/admin"}, {})
    with pytest.raises(Ignored, match="namespace"):
        wire.decode_broadcast(b"socket.io#/#", raw)


def test_node_requests_decode_by_type(wire):
    fetch = wire.decode_request(b"socket.io-request#/#", node_json(
        {"uid": NODE, "requestId": "f1", "type": 5, "opts": {"rooms": ["r"], "except": ["x"]}}))
    assert fetch == NodeRequest(RequestType.REMOTE_FETCH, "f1", NODE, "/",
                                BroadcastOptions("/", frozenset({"r"}), frozenset({"x"}), local=True))
    rooms = wire.decode_request(b"socket.io-request#/#", node_json({"uid": NODE, "requestId": "a", "type": 1}))
    assert isinstance(rooms, NodeRequest) and rooms.kind == RequestType.ALL_ROOMS
    sse = wire.decode_request(b"socket.io-request#/chat#", node_json({"uid": NODE, "type": 6, "data": ["ev", 1]}))
    assert isinstance(sse, NodeRequest) and (sse.namespace, sse.request_id, sse.data) == ("/chat", None, ["ev", 1])


def test_node_socket_operations_decode_to_socket_operations(wire):
    join = wire.decode_request(b"socket.io-request#/#", node_json(
        {"uid": NODE, "type": 2, "opts": {"rooms": ["r"], "except": []}, "rooms": ["new"]}))
    kick = wire.decode_request(b"socket.io-request#/#", node_json(
        {"uid": NODE, "type": 4, "opts": {"rooms": [], "except": ["x"]}, "close": True}))
    assert join == SocketsOp("add", BroadcastOptions("/", frozenset({"r"}), local=True), ("new",))
    assert kick == SocketsOp("disconnect", BroadcastOptions("/", except_rooms=frozenset({"x"}), local=True),
                             close=True)


def test_the_old_one_socket_join_is_a_request_to_answer(wire):
    old = wire.decode_request(b"socket.io-request#/#", node_json(
        {"uid": NODE, "requestId": "j1", "type": 2, "sid": "s1", "room": "r"}))
    assert isinstance(old, NodeRequest) and (old.sid, old.room, old.request_id) == ("s1", "r", "j1")


def test_a_node_broadcast_with_acks_decodes_with_its_timeout_in_seconds(wire):
    raw = msgpack.packb({"uid": NODE, "requestId": "b1", "type": 7, "packet": {"type": 2, "data": ["q", b"\x01"],
                                                                              "nsp": "/"},
                         "opts": {"rooms": ["r"], "except": [], "flags": {"timeout": 1500}}}, use_bin_type=True)
    request = wire.decode_request(b"socket.io-request#/#", raw)
    assert isinstance(request, NodeRequest)
    assert (request.kind, request.timeout, request.data) == (RequestType.BROADCAST, 1.5, ["q", b"\x01"])


def test_this_servers_own_requests_decode_to_nothing(wire):
    assert wire.decode_request(b"socket.io-request#/#", node_json({"uid": ME, "requestId": "a", "type": 1})) is None


def test_node_answers_decode_by_shape(wire):
    on_mine = b"socket.io-response#/#tornado-uid#"
    assert wire.decode_response(on_mine, node_json({"type": 8, "requestId": "b", "clientCount": 2})) == \
        NodeResponse("b", "count", 2)
    assert wire.decode_response(b"socket.io-response#/#", msgpack.packb(
        {"type": 9, "requestId": "b", "packet": "yes"})) == NodeResponse("b", "ack", "yes")
    assert wire.decode_response(on_mine, node_json({"type": 6, "requestId": "s", "data": {"a": 1}})) == \
        NodeResponse("s", "sse", {"a": 1})
    assert wire.decode_response(on_mine, node_json({"requestId": "r", "rooms": ["x"]})) == \
        NodeResponse("r", "rooms", ["x"])
    assert wire.decode_response(on_mine, node_json({"requestId": "j"})) == NodeResponse("j", "done")
    fetched = wire.decode_response(on_mine, node_json({"requestId": "f", "sockets": [
        {"id": "s1", "handshake": {"auth": {}}, "rooms": ["s1"], "data": {"k": 1}}]}))
    assert fetched == NodeResponse("f", "sockets", [SocketDetails("s1", "/", ["s1"], {"k": 1}, {"auth": {}})])


# -- hostile input


@pytest.mark.parametrize("raw", [
    b"", b"{", b"{}", b"[]", b"\xc1", b"null", msgpack.packb([1]), msgpack.packb(["u", "not a map"]),
    msgpack.packb(["u", {"type": 2, "data": "x", "nsp": "/"}]), msgpack.packb(["u", {"type": 3, "nsp": "/"}]),
    msgpack.packb(["u", {"type": 2, "data": [1], "nsp": "/"}]), msgpack.packb(["u", {"type": 2, "data": ["e"]}, 5]),
    b"[" * 5000, msgpack.packb(["u", {"type": 2, "data": ["e", float("nan")], "nsp": "/"}, {}]),
])
def test_malformed_broadcasts_are_ignored(wire, raw):
    with pytest.raises(Ignored):
        wire.decode_broadcast(b"socket.io#/#", raw)


@pytest.mark.parametrize("message", [
    {"type": 99}, {"type": True}, {"type": 5, "requestId": ["x"]}, {"type": 5, "requestId": "x" * 500},
    {"type": 6, "data": "not a list"}, {"type": 6, "data": []}, {"type": 2, "opts": {"rooms": [None]}},
    {"type": 2, "opts": "x"}, {"type": 7, "requestId": "b", "packet": {"type": 0}}, {"type": 1, "uid": 5},
    {"type": 8, "requestId": "x", "clientCount": 1},
])
def test_malformed_requests_are_ignored(wire, message):
    with pytest.raises(Ignored):
        wire.decode_request(b"socket.io-request#/#", node_json(message))


def test_a_request_on_a_channel_of_another_key_is_ignored(wire):
    with pytest.raises(Ignored):
        wire.decode_request(b"other-request#/#", node_json({"type": 1, "requestId": "a"}))


@pytest.mark.parametrize("message", [
    {"requestId": 5.5}, {"type": 8, "requestId": "b", "clientCount": -1}, {"requestId": "f", "sockets": "x"},
    {"requestId": "f", "sockets": [{"no": "id"}]}, {"requestId": "r", "rooms": [{"a": 1}]}, {"sockets": []},
])
def test_malformed_answers_are_ignored(wire, message):
    with pytest.raises(Ignored):
        wire.decode_response(b"socket.io-response#/#", node_json(message))


def test_random_bytes_on_any_node_channel_raise_ignored_and_nothing_else(wire):
    rng = random.Random(14)
    for _ in range(2000):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        for decode, channel in ((wire.decode_broadcast, b"socket.io#/#"),
                                (wire.decode_request, b"socket.io-request#/#"),
                                (wire.decode_response, b"socket.io-response#/#")):
            try:
                decode(channel, raw)  # type: ignore[operator]
            except Ignored:
                pass


# -- the adapter in Node's format (built, not connected)


def node_adapter(**options):
    from tornado_sio.adapter.redis import NodeRedisAdapter
    from tornado_sio.options import Options

    options.setdefault("message_queue_options", {"format": "node"})
    return NodeRedisAdapter(Options(message_queue="redis://127.0.0.1:1/0", **options))


def test_format_node_builds_the_node_adapter_with_the_channel_as_nodes_key():
    from tornado_sio import SocketIO
    from tornado_sio.adapter.redis import NodeRedisAdapter

    adapter = SocketIO(message_queue="redis://127.0.0.1:1/0", channel="myapp",
                       message_queue_options={"format": "node"}).adapter
    assert isinstance(adapter, NodeRedisAdapter)
    assert (adapter.channel, adapter.format) == ("myapp", "node")


def test_the_node_format_holds_the_request_and_response_channels_of_each_listed_namespace():
    adapter = node_adapter(namespaces=["/", "/chat"])
    uid = adapter.uid
    assert set(adapter.link.subscriber.wanted) == {
        f"socket.io-{kind}#{ns}#{suffix}".encode()
        for ns in ("/", "/chat") for kind, suffix in (("request", ""), ("response", ""), ("response", f"{uid}#"))}


def test_a_write_only_node_format_process_is_not_counted_but_hears_answers():
    adapter = node_adapter(write_only=True)
    assert set(adapter.link.subscriber.wanted) == {b"socket.io-response#/#",
                                                   f"socket.io-response#/#{adapter.uid}#".encode()}


@pytest.mark.parametrize("options, why", [
    ({"message_queue_options": {"format": "node", "serializer": "json"}}, "msgpack"),
    ({"message_queue_options": {"format": "node", "node_emitter_key": "other"}}, "node_emitter_key"),
    ({"message_queue_options": {"format": "node", "transport": "streams"}}, "pub/sub"),
])
def test_the_node_format_refuses_settings_it_cannot_honour(options, why):
    with pytest.raises(ValueError, match=why):
        node_adapter(**options)


def test_the_flask_socketio_format_is_python_socketios_on_flask_socketios_default_channel():
    from tornado_sio.adapter.redis import RedisAdapter
    from tornado_sio.options import Options

    adapter = RedisAdapter(Options(message_queue="redis://127.0.0.1:1/0",
                                   message_queue_options={"format": "flask-socketio"}))
    assert (adapter.channel, adapter.format) == ("flask-socketio", "python-socketio")


def _hostile_messages():
    from hypothesis import strategies as st

    keys = st.sampled_from(["type", "uid", "requestId", "opts", "rooms", "except", "flags", "data", "packet",
                            "close", "sid", "room", "sockets", "clientCount", "nsp", "id", "handshake", "timeout"])
    scalars = st.none() | st.booleans() | st.integers(-2, 12) | st.floats(allow_nan=False) | st.text(max_size=5) \
        | st.binary(max_size=4)
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner,
                                                                                              max_size=4),
                          max_leaves=12)
    return st.dictionaries(keys, values, max_size=6) | st.lists(values, max_size=4)


def test_structured_hostile_messages_raise_ignored_and_nothing_else(wire):
    from hypothesis import given, settings

    @settings(max_examples=400, deadline=None)
    @given(_hostile_messages())
    def check(message):
        raws = [msgpack.packb(message, use_bin_type=True)]
        try:
            raws.append(json.dumps(message).encode())
        except (TypeError, ValueError):
            pass  # binary values: msgpack only
        for raw in raws:
            for decode, channel in ((wire.decode_broadcast, b"socket.io#/#"),
                                    (wire.decode_request, b"socket.io-request#/#"),
                                    (wire.decode_response, b"socket.io-response#/#")):
                try:
                    decode(channel, raw)  # type: ignore[operator]
                except Ignored:
                    pass

    check()
