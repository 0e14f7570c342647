"""Node's ``@socket.io/redis-adapter`` 8.x wire format (classic pub/sub mode): pure encode/decode.

No I/O here. Under a key (the adapter's ``key`` option, ``"socket.io"`` by
default) Node's adapter uses, per namespace:

``<key>#<nsp>#`` and ``<key>#<nsp>#<room>#``
    broadcasts: msgpack ``[uid, packet, {rooms, except, flags}]``, on the
    room's channel when exactly one room is named (a sid is a room);
``<key>-request#<nsp>#``
    requests to every server: JSON objects ``{uid, type, requestId?, ...}``,
    except a broadcast with acks (type 7), which is msgpack (its packet may
    hold binary); every server subscribed here is a server of the cluster
    (``PUBSUB NUMSUB`` counts them);
``<key>-response#<nsp>#`` and ``<key>-response#<nsp>#<uid>#``
    answers, matched by ``requestId``: JSON, except a client's ack (type 9),
    msgpack. Node servers read both; this module always answers on the asking
    server's own channel, so only that server is woken.

:class:`NodeWire` turns operations into ``(channel, payload)`` pairs and
payloads into :class:`~.wire.Emit`, :class:`~.wire.SocketsOp`,
:class:`NodeRequest` or :class:`NodeResponse`, raising :class:`~.wire.Ignored`
(and nothing else) for anything malformed. :class:`NodeAdapterCodec` is the
same format behind the interface :class:`~.adapter.RedisAdapter` publishes
through. ``docs/redis.md`` ("Node's @socket.io/redis-adapter") documents every
field.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any, Optional

from ...exceptions import EncodeError, ProtocolError
from ...protocol import jsonutil
from ...protocol.socketio import SIOType
from ..base import BroadcastOptions, SocketDetails
from .wire import (
    MAX_DEPTH,
    MAX_FETCHED,
    AckRequest,
    Emit,
    EncodedEvent,
    Ignored,
    Item,
    NodeChannels,
    SocketsOp,
    channel_name,
    encode_event,
    js_value,
    require_msgpack,
)

__all__ = [
    "DEFAULT_KEY", "MAX_REQUEST_ID", "NodeAckRequest", "NodeAdapterCodec", "NodeRequest", "NodeResponse",
    "NodeWire", "RequestType", "js_value",
]

#: The key Node's adapter uses unless given ``key``.
DEFAULT_KEY = "socket.io"
#: Longest ``requestId`` accepted (Node's are 6 characters).
MAX_REQUEST_ID = 128


class RequestType(enum.IntEnum):
    """Node's ``RequestType``: the ``type`` field of requests and of some answers."""

    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


@dataclasses.dataclass(frozen=True)
class NodeAckRequest(AckRequest):
    """A Node broadcast with acks (type 7): answer with a client count, then each ack.

    ``reply_to`` is the asking server's uid, ``ack_id`` its ``requestId``,
    ``namespace`` the namespace whose response channel the answers go to.
    """


@dataclasses.dataclass(frozen=True)
class NodeRequest:
    """A request another server wants answered.

    ``kind`` is :class:`RequestType` ``SOCKETS`` (``opts.rooms``: the sids in
    those rooms), ``ALL_ROOMS``, ``REMOTE_FETCH`` (the sockets *opts* selects),
    ``SERVER_SIDE_EMIT`` (``data`` = ``[event, *args]``, answered when
    ``request_id`` is set), ``BROADCAST`` (``data`` to the sockets *opts*
    selects, each ack answered; ``timeout`` in seconds), or the old one-socket
    ``REMOTE_JOIN``/``REMOTE_LEAVE``/``REMOTE_DISCONNECT`` (``sid``, ``room``,
    ``close``; answered when the socket is here).
    """

    kind: RequestType
    request_id: Optional[str]
    uid: str
    namespace: str
    opts: BroadcastOptions
    data: list[Any] = dataclasses.field(default_factory=list)
    sid: Optional[str] = None
    room: Optional[str] = None
    close: bool = False
    timeout: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class NodeResponse:
    """An answer to request ``request_id``.

    ``kind``: ``"sockets"`` (a list of :class:`~tornado_sio.adapter.base.SocketDetails`),
    ``"sids"`` (a list of str), ``"rooms"`` (a list of str), ``"sse"`` (one
    server's answer: one value), ``"count"`` (an int), ``"ack"`` (one client's
    answer: one value), ``"done"`` (an old one-socket operation happened), or
    ``"other"`` (no field this module knows; it still counts as one server's answer).
    """

    request_id: str
    kind: str
    value: Any = None


def _as_json(obj: Any) -> Any:
    """Binary as ``JSON.stringify`` writes a Node Buffer: ``{"type": "Buffer", "data": [...]}``."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"type": "Buffer", "data": list(bytes(obj))}
    if isinstance(obj, (list, tuple)):
        return [_as_json(item) for item in obj]
    if isinstance(obj, dict):
        return {key: _as_json(value) for key, value in obj.items()}
    return obj


def _strings(value: Any, what: str) -> list[str]:
    """A list of room names; an integer is one too (Node's ``Room`` is ``string | number``)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(
            isinstance(item, str) or (isinstance(item, int) and not isinstance(item, bool)) for item in value):
        raise Ignored(f"{what!r} must be a list of strings")
    return [item if isinstance(item, str) else str(item) for item in value]


def _request_id(value: Any, required: bool = True) -> Optional[str]:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or len(str(value)) > MAX_REQUEST_ID:
        raise Ignored("'requestId' must be a short string")
    return str(value)


def _selection(namespace: str, opts: Any) -> BroadcastOptions:
    """``{rooms, except, flags}`` as options acted on in this process only."""
    if opts is None:
        opts = {}
    if not isinstance(opts, dict):
        raise Ignored("'opts' must be a map")
    flags = opts.get("flags")
    volatile = isinstance(flags, dict) and flags.get("volatile") is True
    compress = not (isinstance(flags, dict) and flags.get("compress") is False)
    return BroadcastOptions(namespace, frozenset(_strings(opts.get("rooms"), "rooms")),
                            frozenset(_strings(opts.get("except"), "except")), True, volatile, compress)


def _flags(opts: BroadcastOptions, timeout: Optional[float] = None) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if opts.volatile:
        flags["volatile"] = True
    if not opts.compress:
        flags["compress"] = False
    if timeout is not None:
        flags["timeout"] = int(math.ceil(timeout * 1000))
    return flags


def _event(namespace: str, packet: Any) -> EncodedEvent:
    """The event of a Node packet, checked (strict JSON plus binary) and encoded once."""
    if not isinstance(packet, dict) or packet.get("type") not in (SIOType.EVENT, SIOType.BINARY_EVENT):
        raise Ignored("'packet' is not an event")
    data = js_value(packet.get("data"))
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise Ignored("the packet's 'data' must be [event, ...args]")
    try:
        return encode_event(namespace, data)
    except EncodeError as exc:
        raise Ignored(str(exc)) from None


def _socket(namespace: str, item: Any) -> SocketDetails:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise Ignored("a fetched socket must be an object with an 'id'")
    handshake = item.get("handshake")
    data = item.get("data")
    return SocketDetails(item["id"], namespace, _strings(item.get("rooms"), "rooms"),
                         data if data is not None else {}, handshake if isinstance(handshake, dict) else {})


# ---------------------------------------------------------------- the format


class NodeWire(NodeChannels):
    """Node's adapter format under *key*, for the server whose uid is *uid*.

    :param key: Node's ``key`` option (``"socket.io"`` unless changed there).
    :param uid: this server's id; its own messages decode to None.
    """

    def __init__(self, key: str, uid: str) -> None:
        super().__init__(key, "the Node adapter key")
        self.uid = uid
        self._response_prefix = channel_name(f"{key}-response#")

    # -- channels (broadcast, room and request: NodeChannels) ----------------

    def response_channel(self, namespace: str, uid: Optional[str] = None) -> bytes:
        """Answers: the shared channel, or server *uid*'s own."""
        return self._response_prefix + channel_name(f"{namespace}#" + (f"{uid}#" if uid else ""))

    def route(self, opts: BroadcastOptions) -> bytes:
        """The channel of a broadcast: the room's when exactly one room is named."""
        if len(opts.rooms) == 1:
            (room,) = opts.rooms
            return self.room_channel(opts.namespace, room)
        return self.broadcast_channel(opts.namespace)

    # -- encoding: what this server publishes ---------------------------------------

    @staticmethod
    def _pack(message: Any) -> bytes:
        try:
            packed: bytes = require_msgpack().packb(message, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(f"cannot encode for Node's adapter (msgpack): {exc}") from None
        return packed

    @staticmethod
    def _json(message: dict[str, Any]) -> bytes:
        return jsonutil.dumps(message).encode("utf-8", "surrogatepass")

    @staticmethod
    def _raw_opts(opts: BroadcastOptions, timeout: Optional[float] = None) -> dict[str, Any]:
        return {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms), "flags": _flags(opts, timeout)}

    @staticmethod
    def _packet(event: EncodedEvent) -> dict[str, Any]:
        return {"type": int(SIOType.EVENT), "data": list(event.data), "nsp": event.namespace}

    def broadcast(self, event: EncodedEvent, opts: BroadcastOptions) -> Item:
        """A broadcast of *event* to the sockets *opts* selects."""
        return self.route(opts), self._pack([self.uid, self._packet(event), self._raw_opts(opts)])

    def broadcast_with_ack(self, event: EncodedEvent, opts: BroadcastOptions, request_id: str,
                           timeout: float) -> Item:
        """A ``BROADCAST`` request: every server sends it, counts its recipients and forwards each ack."""
        message = {"uid": self.uid, "requestId": request_id, "type": int(RequestType.BROADCAST),
                   "packet": self._packet(event), "opts": self._raw_opts(opts, timeout)}
        return self.request_channel(opts.namespace), self._pack(message)

    def sockets(self, op: SocketsOp) -> list[Item]:
        """``REMOTE_JOIN``/``REMOTE_LEAVE``/``REMOTE_DISCONNECT`` for the sockets *op* selects."""
        opts = op.opts
        kinds = {"add": RequestType.REMOTE_JOIN, "del": RequestType.REMOTE_LEAVE,
                 "disconnect": RequestType.REMOTE_DISCONNECT}
        message: dict[str, Any] = {"uid": self.uid, "type": int(kinds[op.kind]),
                                   "opts": {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms)}}
        if op.kind == "disconnect":
            message["close"] = op.close
        else:
            message["rooms"] = list(op.rooms)
        return [(self.request_channel(opts.namespace), self._json(message))]

    def fetch(self, opts: BroadcastOptions, request_id: str) -> Item:
        """``REMOTE_FETCH``: the sockets *opts* selects, from every server."""
        message = {"uid": self.uid, "requestId": request_id, "type": int(RequestType.REMOTE_FETCH),
                   "opts": {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms)}}
        return self.request_channel(opts.namespace), self._json(message)

    def all_rooms(self, namespace: str, request_id: str) -> Item:
        """``ALL_ROOMS``: every server's rooms of *namespace*."""
        message = {"uid": self.uid, "requestId": request_id, "type": int(RequestType.ALL_ROOMS)}
        return self.request_channel(namespace), self._json(message)

    def server_side_emit(self, namespace: str, data: list[Any], request_id: Optional[str]) -> Item:
        """``SERVER_SIDE_EMIT`` of ``[event, *args]``; with *request_id* each server answers.

        JSON, as Node sends it: binary arguments travel as ``JSON.stringify``
        writes a Buffer (``{"type": "Buffer", "data": [...]}``).
        """
        message: dict[str, Any] = {"uid": self.uid, "type": int(RequestType.SERVER_SIDE_EMIT),
                                   "data": _as_json(list(data))}
        if request_id is not None:
            message["requestId"] = request_id
        return self.request_channel(namespace), self._json(message)

    # -- encoding: answers to the others' requests ---------------------------------------

    def _answer(self, request: NodeRequest, message: dict[str, Any], packed: bool = False,
                shared: bool = False) -> Item:
        channel = self.response_channel(request.namespace, None if shared else request.uid)
        return channel, self._pack(message) if packed else self._json(message)

    def fetch_answer(self, request: NodeRequest, sockets: list[SocketDetails]) -> Item:
        """The local sockets a ``REMOTE_FETCH`` selects, as Node lists them."""
        listed = [{"id": s.sid, "handshake": s.handshake, "rooms": list(s.rooms), "data": s.data} for s in sockets]
        return self._answer(request, {"requestId": request.request_id, "sockets": listed})

    def sids_answer(self, request: NodeRequest, sids: list[str]) -> Item:
        """The local sids in the rooms of a ``SOCKETS`` request."""
        return self._answer(request, {"requestId": request.request_id, "sockets": list(sids)})

    def rooms_answer(self, request: NodeRequest, rooms: list[str]) -> Item:
        """The local rooms (sid rooms included, as Node's ``rooms`` map) for ``ALL_ROOMS``."""
        return self._answer(request, {"requestId": request.request_id, "rooms": list(rooms)})

    def sse_answer(self, request: NodeRequest, args: list[Any]) -> Item:
        """A server-side event handler's answer: Node passes one value (the first)."""
        message = {"type": int(RequestType.SERVER_SIDE_EMIT), "requestId": request.request_id,
                   "data": _as_json(args[0]) if args else None}
        return self._answer(request, message)

    def done_answer(self, request: NodeRequest) -> Item:
        """An old one-socket join/leave/disconnect happened here (on the shared channel: the
        adapters that send this form predate the per-server response channels)."""
        return self._answer(request, {"requestId": request.request_id}, shared=True)

    def count_answer(self, request: AckRequest, count: int) -> Item:
        """``BROADCAST_CLIENT_COUNT``: how many local sockets got a broadcast with acks."""
        message = {"type": int(RequestType.BROADCAST_CLIENT_COUNT), "requestId": request.ack_id, "clientCount": count}
        return self.response_channel(str(request.namespace), request.reply_to), self._json(message)

    def ack_answer(self, request: AckRequest, args: list[Any]) -> Item:
        """``BROADCAST_ACK``: one client's answer (Node forwards the first argument)."""
        message = {"type": int(RequestType.BROADCAST_ACK), "requestId": request.ack_id,
                   "packet": args[0] if args else None}
        return self.response_channel(str(request.namespace), request.reply_to), self._pack(message)

    # -- decoding ---------------------------------------------------------------------

    @staticmethod
    def _load(raw: bytes) -> Any:
        """JSON when the payload starts with ``{`` (as Node tells them apart), msgpack otherwise."""
        if not raw:
            raise Ignored("empty message")
        try:
            if raw[:1] == b"{":
                return jsonutil.loads(raw, max_depth=MAX_DEPTH)
            return require_msgpack().unpackb(raw, raw=False, timestamp=3)
        except Ignored:
            raise
        except (ProtocolError, ValueError, TypeError, RecursionError) as exc:
            raise Ignored(f"undecodable ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - msgpack raises several types of its own: all mean the same
            raise Ignored(f"undecodable ({type(exc).__name__}: {exc})") from None

    def decode_broadcast(self, channel: bytes, raw: bytes) -> Optional[Emit]:
        """A broadcast: an :class:`~.wire.Emit` for this process's sockets; None for its own."""
        message = self._load(raw)
        if not isinstance(message, list) or len(message) < 2:
            raise Ignored("not an [uid, packet, opts] array")
        if message[0] == self.uid:
            return None
        packet = message[1]
        if not isinstance(packet, dict):
            raise Ignored("'packet' must be a map")
        namespace = packet.get("nsp", "/")
        if not isinstance(namespace, str) or not channel.startswith(self.broadcast_channel(namespace)):
            raise Ignored("the packet's namespace does not match its channel")
        encoded = _event(namespace, packet)
        opts = _selection(namespace, message[2] if len(message) > 2 else {})
        return Emit(opts, encoded.body, encoded.attachments)

    def _namespace_of(self, channel: bytes, prefix: bytes) -> str:
        if not channel.startswith(prefix) or not channel.endswith(b"#"):
            raise Ignored("not a channel of this key")
        return channel[len(prefix):-1].decode("utf-8", "surrogatepass")

    def decode_request(self, channel: bytes, raw: bytes) -> Emit | SocketsOp | NodeRequest | None:
        """A request: a socket operation, a broadcast with acks, or a :class:`NodeRequest`.

        None for this server's own requests (it acted on them already).
        """
        namespace = self._namespace_of(channel, self.request_prefix)
        message = self._load(raw)
        if not isinstance(message, dict):
            raise Ignored("a request must be a map")
        kind = message.get("type")
        if type(kind) is not int or not 0 <= kind < RequestType.BROADCAST_CLIENT_COUNT:
            raise Ignored(f"unknown request type {kind!r}")
        kind = RequestType(kind)
        uid = message.get("uid")
        if uid is not None and not isinstance(uid, str):
            raise Ignored("'uid' must be a string")
        if uid == self.uid:
            return None
        uid = uid or ""
        if kind in (RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE, RequestType.REMOTE_DISCONNECT):
            return self._socket_operation(kind, message, namespace, uid)
        request_id = _request_id(message.get("requestId"), required=kind != RequestType.SERVER_SIDE_EMIT)
        if kind == RequestType.SERVER_SIDE_EMIT:
            data = message.get("data")
            if not isinstance(data, list) or not data or not isinstance(data[0], str):
                raise Ignored("'data' must be [event, ...args]")
            return NodeRequest(kind, request_id, uid, namespace, BroadcastOptions(namespace, local=True), data)
        if kind == RequestType.BROADCAST:
            opts = _selection(namespace, message.get("opts"))
            flags = (message.get("opts") or {}).get("flags")
            timeout = flags.get("timeout") if isinstance(flags, dict) else None
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 1e12:
                timeout = None
            return NodeRequest(kind, request_id, uid, namespace, opts, _event(namespace, message.get("packet")).data,
                               timeout=None if timeout is None else timeout / 1000.0)
        if kind == RequestType.SOCKETS:
            rooms = frozenset(_strings(message.get("rooms"), "rooms"))
            return NodeRequest(kind, request_id, uid, namespace, BroadcastOptions(namespace, rooms, local=True))
        opts = _selection(namespace, message.get("opts")) if kind == RequestType.REMOTE_FETCH else \
            BroadcastOptions(namespace, local=True)
        return NodeRequest(kind, request_id, uid, namespace, opts)

    @staticmethod
    def _socket_operation(kind: RequestType, message: dict[str, Any], namespace: str,
                          uid: str) -> SocketsOp | NodeRequest:
        close = message.get("close") is True
        if "opts" not in message and isinstance(message.get("sid"), str):  # the old one-socket form
            room = message.get("room")
            if kind != RequestType.REMOTE_DISCONNECT and not isinstance(room, str):
                raise Ignored("'room' must be a string")
            return NodeRequest(kind, _request_id(message.get("requestId"), required=False), uid, namespace,
                               BroadcastOptions(namespace, frozenset((message["sid"],)), local=True),
                               sid=message["sid"], room=room if isinstance(room, str) else None, close=close)
        opts = _selection(namespace, message.get("opts"))
        if kind == RequestType.REMOTE_DISCONNECT:
            return SocketsOp("disconnect", opts, close=close)
        rooms = tuple(_strings(message.get("rooms"), "rooms"))
        return SocketsOp("add" if kind == RequestType.REMOTE_JOIN else "del", opts, rooms)

    def decode_response(self, channel: bytes, raw: bytes) -> NodeResponse:
        """An answer on a response channel (to this server's request or, on the shared one, another's)."""
        if not channel.startswith(self._response_prefix) or not channel.endswith(b"#"):
            raise Ignored("not a response channel of this key")
        rest = channel[len(self._response_prefix):-1].decode("utf-8", "surrogatepass")
        own = f"#{self.uid}"
        namespace = rest[:-len(own)] if rest.endswith(own) else rest
        message = self._load(raw)
        if not isinstance(message, dict):
            raise Ignored("a response must be a map")
        request_id = _request_id(message.get("requestId"))
        assert request_id is not None
        kind = message.get("type")
        if kind == RequestType.BROADCAST_CLIENT_COUNT:
            count = message.get("clientCount")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise Ignored("'clientCount' must be a non-negative integer")
            return NodeResponse(request_id, "count", count)
        if kind == RequestType.BROADCAST_ACK:
            return NodeResponse(request_id, "ack", js_value(message.get("packet")))
        if kind == RequestType.SERVER_SIDE_EMIT:
            return NodeResponse(request_id, "sse", message.get("data"))
        if "rooms" in message:
            return NodeResponse(request_id, "rooms", _strings(message["rooms"], "rooms"))
        if "sockets" not in message:
            return NodeResponse(request_id, "done" if len(message) == 1 else "other")
        sockets = message["sockets"]
        if not isinstance(sockets, list) or len(sockets) > MAX_FETCHED:
            raise Ignored(f"'sockets' must be a list of at most {MAX_FETCHED}")
        if all(isinstance(item, str) for item in sockets):
            return NodeResponse(request_id, "sids", sockets)
        return NodeResponse(request_id, "sockets", [_socket(namespace, item) for item in sockets])


class NodeAdapterCodec:
    """Node's format behind the codec interface :class:`~.adapter.RedisAdapter` publishes through.

    Channels are followed by :class:`~.nodecluster.NodeSide`, so the
    ``*_channels`` methods list none; a broadcast with acks, ``call()`` and the
    cluster requests go through the node side too.
    """

    format = "node"
    native = False
    serializer = "msgpack"

    def __init__(self, wire: NodeWire) -> None:
        self.wire = wire
        self.channel = wire.key
        self.src = wire.uid

    def fixed_channels(self, write_only: bool) -> list[tuple[bytes, str]]:
        """None here (see the class docstring)."""
        return []

    def namespace_channels(self, namespace: str) -> list[tuple[bytes, str]]:
        """None here (see the class docstring)."""
        return []

    def room_channels(self, namespace: str, room: str) -> list[tuple[bytes, str]]:
        """None here (see the class docstring)."""
        return []

    def route(self, opts: BroadcastOptions) -> bytes:
        """The channel of a broadcast to *opts*."""
        return self.wire.route(opts)

    def emit(self, event: EncodedEvent, opts: BroadcastOptions, ack: AckRequest | None = None) -> Item:
        """A broadcast (an emit with acks is a request: :meth:`NodeWire.broadcast_with_ack`)."""
        if ack is not None:
            raise ValueError("an emit with acks in Node's format is a BROADCAST request")
        return self.wire.broadcast(event, opts)

    def sockets(self, op: SocketsOp) -> list[Item]:
        """A socket operation on every server."""
        return self.wire.sockets(op)

    def ack(self, request: AckRequest, sid: str, args: list[Any] | None, error: str | None = None) -> Item | None:
        """A local client's answer to a Node broadcast with acks; none for one that left (Node has no such answer)."""
        if error is not None:
            return None
        return self.wire.ack_answer(request, list(args or []))
