"""The messages the Redis adapter puts on and takes off Redis: pure encode/decode.

Three formats, each a small class with no I/O (no asyncio, no redis here):

* :class:`NativeCodec`: tornado-sio's own, versioned (``"v"``), JSON or msgpack,
  routed on per-namespace, per-room and per-process channels (``docs/redis.md``
  documents every field);
* :class:`PsioCodec`: python-socketio's JSON pub/sub format (python-socketio >=
  5.14 and Flask-SocketIO on it), on one channel;
* :class:`NodeCodec`: what the npm package ``@socket.io/redis-emitter``
  publishes (decode only).

Outgoing, a codec turns an operation into ``(channel, payload)`` pairs.
Incoming, it turns a payload into one of :class:`Emit`, :class:`SocketsOp` or
:class:`Ack` (or None for a message that is not for this process) and raises
:class:`Ignored`, and nothing else, for anything malformed. Event encoding,
splitting and attachment reconstruction are :mod:`tornado_sio.protocol.socketio`'s;
this module only moves their results into messages.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import math
from typing import Any, Union
from urllib.parse import urlsplit, urlunsplit

from ...exceptions import EncodeError, MessageQueueError, ProtocolError
from ...protocol import jsonutil
from ...protocol.outgoing import CLIENT_MAX_ATTACHMENTS
from ...protocol.socketio import SIOType, deconstruct, reconstruct, split_event
from ..base import BroadcastOptions, SocketDetails

__all__ = [
    "DEFAULT_CHANNEL", "FORMATS", "MAX_DEPTH", "MAX_FETCHED", "SERIALIZERS", "WIRE_VERSION", "Ack", "AckRequest",
    "Codec",
    "Emit", "EncodedEvent", "Heartbeat", "Ignored", "Item", "Message", "NativeCodec", "NodeChannels", "NodeCodec",
    "PsioCodec",
    "Request", "Response", "SocketsOp",
    "Unsupported", "channel_name", "dump", "encode_event", "js_value", "load", "make_codec", "redact_url",
    "require_msgpack", "socket_fields",
]

#: Version of the native format (the ``"v"`` field). Bumped on any change a
#: receiver of the previous version would misread; a process ignores (and logs)
#: versions it does not speak. Still 1: the operations added since
#: (``add_sockets``, ``del_sockets``, ``disconnect_sockets``) are new ``op``
#: values, which version-1 receivers ignore with a log line; so are the cluster
#: requests (``heartbeat``, ``bye``, ``fetch``, ``sse``) and their answers
#: (``count``, ``sockets``, ``sse_reply``), and ``cb.cnt``.
WIRE_VERSION = 1
#: Most sockets one ``fetch`` answer may list (a bound on a hostile answer).
MAX_FETCHED = 100_000
#: ``"native"``: tornado-sio's own format. ``"python-socketio"``: python-socketio's.
#: ``"flask-socketio"``: the same on Flask-SocketIO's default channel (one option
#: to join an unchanged Flask-SocketIO deployment). Node's adapter format
#: (``"node"``) is :mod:`.nodewire`'s, built by :mod:`.nodeadapter`.
FORMATS = ("native", "python-socketio", "flask-socketio")
#: What a process publishes in the native format (both are always accepted).
SERIALIZERS = ("json", "msgpack")
#: The channel each format uses unless told otherwise.
DEFAULT_CHANNEL = {"native": "tornado-sio", "python-socketio": "socketio", "flask-socketio": "flask-socketio"}
#: Nesting bound when decoding a message from Redis.
MAX_DEPTH = 64

#: One message to publish: ``(channel, payload)``.
Item = tuple[bytes, bytes]


class Ignored(ValueError):
    """A message from Redis that is not acted on; the text says why (for the log)."""


class Unsupported(Ignored):
    """A well-formed message asking for something this process does not answer."""


# ---------------------------------------------------------------- helpers


def redact_url(url: str) -> str:
    """*url* with any password replaced by ``***`` (for logs and errors)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    if sep and "," in netloc:  # a node list (redis+cluster://[user:pw@]a:1,b:2), which urlsplit refuses
        auth, at, hosts = netloc.rpartition("@")
        if at and ":" in auth:
            auth = auth.split(":", 1)[0] + ":***"
        return f"{scheme}://{auth}{at}{hosts}{slash}{tail}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def channel_name(text: str) -> bytes:
    """A channel name as bytes (lone surrogates allowed, so any room name routes)."""
    return text.encode("utf-8", "surrogatepass")


def require_msgpack() -> Any:
    """The msgpack module; :class:`~tornado_sio.MessageQueueError` when it is missing."""
    try:
        import msgpack  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - depends on the environment
        raise MessageQueueError("msgpack is not installed: pip install 'tornado-sio[redis]' "
                                "(or pip install msgpack)") from None
    return msgpack


def dump(message: dict[str, Any], serializer: str = "json") -> bytes:
    """Serialize a message for Redis: strict JSON (UTF-8) or msgpack. Never pickle."""
    if serializer == "msgpack":
        packed: bytes = require_msgpack().packb(message, use_bin_type=True)
        return packed
    return jsonutil.dumps(message).encode("utf-8", "surrogatepass")


def load(raw: bytes) -> Any:
    """Deserialize a native message: JSON or msgpack, told apart by the first byte.

    A JSON message is an object (``{``); a msgpack one is a map (0x80-0x8f,
    0xde, 0xdf). Raises :class:`Ignored` for anything else or anything undecodable.
    """
    if not raw:
        raise Ignored("undecodable (empty message)")
    first = raw[0]
    try:
        if first == 0x7B:  # "{"
            return jsonutil.loads(raw, max_depth=MAX_DEPTH)
        if 0x80 <= first <= 0x8F or first in (0xDE, 0xDF):
            return require_msgpack().unpackb(raw, raw=False)
    except MessageQueueError:
        raise Ignored("msgpack message but msgpack is not installed") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the same: Ignored, logged by the adapter
        raise Ignored(f"undecodable ({exc})") from None
    raise Ignored(f"undecodable (neither a JSON object nor a msgpack map; first byte 0x{first:02x})")


def _b64(items: list[bytes], serializer: str) -> list[Any]:
    if serializer == "msgpack":
        return list(items)
    return [base64.b64encode(item).decode("ascii") for item in items]


def _unb64(items: Any) -> list[bytes]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise Ignored("'bin' must be a list")
    out = []
    for item in items:
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, str):
            try:
                out.append(base64.b64decode(item, validate=True))
            except ValueError:
                raise Ignored("'bin' holds invalid base64") from None
        else:
            raise Ignored("'bin' items are base64 strings or bytes")
    if len(out) > CLIENT_MAX_ATTACHMENTS:
        raise Ignored(f"{len(out)} binary attachments (clients accept {CLIENT_MAX_ATTACHMENTS})")
    return out


def _rebuild(data: Any, buffers: list[bytes]) -> Any:
    try:
        return reconstruct(data, buffers)
    except ProtocolError as exc:
        raise Ignored(str(exc)) from None


def _need(message: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = message.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise Ignored(f"field {key!r} missing or not {getattr(kind, '__name__', kind)}")
    return value


def _str_list(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Ignored(f"field {key!r} must be a list of strings")
    return value


def _room_set(value: Any, key: str) -> frozenset[str]:
    """``null`` (the whole namespace), a string (one room) or a list of strings."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(_str_list(value, key))


def _timeout(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise Ignored(f"field {key!r} must be a positive number or null")
    return float(value)


def _listed(rooms: frozenset[str]) -> list[str] | None:
    return sorted(rooms) if rooms else None


# ---------------------------------------------------------------- messages


@dataclasses.dataclass(frozen=True)
class EncodedEvent:
    """An event encoded once: packet text for local clients, JSON body for the wire.

    ``data`` is ``[event, *args]`` as given (the python-socketio format sends
    it as JSON values, not as a packet body).
    """

    namespace: str
    data: list[Any]
    text: str
    body: str
    attachments: list[bytes]


def encode_event(namespace: str, data: list[Any]) -> EncodedEvent:
    """Encode ``[event, *args]`` once for local delivery and for every format.

    Raises :class:`~tornado_sio.EncodeError` for data that is not strict JSON
    and for more binary attachments than the official clients accept, before
    anything is sent, as a local emit does.
    """
    text, body, attachments = split_event(namespace, data)
    if len(attachments) > CLIENT_MAX_ATTACHMENTS:
        raise EncodeError(f"{len(attachments)} binary attachments in one packet; the official "
                          f"clients accept at most {CLIENT_MAX_ATTACHMENTS}")
    return EncodedEvent(namespace, data, text, body, attachments)


@dataclasses.dataclass(frozen=True)
class AckRequest:
    """Where each recipient's acknowledgement of an emit goes back to.

    ``reply_to`` is the asking process (its uid, python-socketio's ``host_id``),
    ``ack_id`` its id for the request. ``timeout`` is how long a recipient
    waits (native). ``room`` and ``namespace`` are python-socketio's
    ``callback[0:2]``, sent back as they came. With ``count`` (native) every
    process answers first with how many of its sockets it sent the event to
    (Node's ``BROADCAST_CLIENT_COUNT``), none included.
    """

    reply_to: str
    ack_id: Any
    timeout: float | None = None
    room: Any = None
    namespace: Any = None
    count: bool = False


@dataclasses.dataclass(frozen=True)
class Emit:
    """Deliver an event (JSON *body*, *attachments*) to the sockets *opts* selects here."""

    opts: BroadcastOptions
    body: str
    attachments: list[bytes]
    ack: AckRequest | None = None


@dataclasses.dataclass(frozen=True)
class SocketsOp:
    """Act on the sockets *opts* selects: ``add`` or ``del`` *rooms*, or ``disconnect``."""

    kind: str
    opts: BroadcastOptions
    rooms: tuple[str, ...] = ()
    close: bool = False


@dataclasses.dataclass(frozen=True)
class Ack:
    """An answer to this process's ack request *ack_id* (``args``, or ``error``)."""

    ack_id: Any
    sid: Any
    args: list[Any]
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Heartbeat:
    """Process *src* is alive (``initial``: it just started, answer with yours), or ``closing``."""

    src: str
    initial: bool = False
    closing: bool = False


@dataclasses.dataclass(frozen=True)
class Request:
    """A cluster request from process *reply_to*, answered on its process channel.

    ``kind`` is ``"fetch"`` (the sockets *opts* selects; Node's
    ``FETCH_SOCKETS``) or ``"sse"`` (a server-side event ``data`` =
    ``[event, *args]`` in namespace ``opts.namespace``; Node's
    ``SERVER_SIDE_EMIT``), ``rid`` the asker's id (None: no answer wanted).
    """

    kind: str
    rid: int | None
    reply_to: str
    opts: BroadcastOptions
    data: list[Any] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Response:
    """An answer to this process's request *rid* from process *src*.

    ``kind`` ``"count"``: ``value`` is how many sockets received a broadcast
    with acks; ``"sockets"``: a list of :class:`~tornado_sio.adapter.base.SocketDetails`;
    ``"sse_reply"``: a server-side event handler's answer (a list).
    """

    kind: str
    rid: int
    src: str
    value: Any


#: What a codec decodes a message into.
Message = Union[Emit, SocketsOp, Ack, Heartbeat, Request, Response]

_SOCKETS_OPS = {"add": "add_sockets", "del": "del_sockets", "disconnect": "disconnect_sockets"}
_SOCKETS_KINDS = {op: kind for kind, op in _SOCKETS_OPS.items()}


def _here(namespace: str, rooms: frozenset[str] = frozenset(),
          except_rooms: frozenset[str] = frozenset()) -> BroadcastOptions:
    """A selection received from another process: acted on in this process only."""
    return BroadcastOptions(namespace=namespace, rooms=rooms, except_rooms=except_rooms, local=True)


# ---------------------------------------------------------------- native


class NativeCodec:
    """tornado-sio's own format (see ``docs/redis.md``, "The wire format").

    :param channel: the channel (prefix) every process of the cluster uses.
    :param src: this publisher's id; its own messages decode to None.
    :param serializer: ``"json"`` or ``"msgpack"`` for what it encodes.
    """

    format = "native"
    native = True

    def __init__(self, channel: str, src: str, serializer: str = "json") -> None:
        self.channel = channel
        self.src = src
        self.serializer = serializer

    # -- channels --------------------------------------------------------

    def namespace_channel(self, namespace: str) -> bytes:
        """Emits to a whole namespace or to several rooms, and operations on them."""
        return channel_name(f"{self.channel}#{namespace}#")

    def room_channel(self, namespace: str, room: str) -> bytes:
        """Emits to exactly one room (a sid is a room), and operations on it."""
        return channel_name(f"{self.channel}#{namespace}#{room}#")

    def process_channel(self, uid: str) -> bytes:
        """Acknowledgements for process *uid*."""
        return channel_name(f"{self.channel}#proc#{uid}#")

    def request_channel(self) -> bytes:
        """Heartbeats and cluster requests, which every process reads (Node's ``<key>-request#``)."""
        return channel_name(f"{self.channel}#request#")

    def fixed_channels(self, write_only: bool) -> list[tuple[bytes, str]]:
        """Channels to hold as long as the process runs: its own (answers) and the request channel."""
        return [(self.process_channel(self.src), self.format), (self.request_channel(), self.format)]

    def namespace_channels(self, namespace: str) -> list[tuple[bytes, str]]:
        """Channels to hold while this process has a socket in *namespace*."""
        return [(self.namespace_channel(namespace), self.format)]

    def room_channels(self, namespace: str, room: str) -> list[tuple[bytes, str]]:
        """Channels to hold while this process has a member of *room*."""
        return [(self.room_channel(namespace, room), self.format)]

    def route(self, opts: BroadcastOptions) -> bytes:
        """The channel for an operation on *opts*: a room's when it names exactly one."""
        if len(opts.rooms) == 1:
            (room,) = opts.rooms
            return self.room_channel(opts.namespace, room)
        return self.namespace_channel(opts.namespace)

    # -- encoding --------------------------------------------------------

    def _message(self, op: str, **fields: Any) -> dict[str, Any]:
        message = {"v": WIRE_VERSION, "ch": self.channel, "src": self.src, "op": op}
        message.update(fields)
        return message

    def emit(self, event: EncodedEvent, opts: BroadcastOptions, ack: AckRequest | None = None) -> Item:
        """An ``emit`` of an encoded event to the sockets *opts* selects."""
        message = self._message("emit", ns=opts.namespace, to=_listed(opts.rooms), json=event.body)
        if opts.except_rooms:
            message["skip"] = sorted(opts.except_rooms)
        if opts.volatile:
            message["vol"] = True
        if event.attachments:
            message["bin"] = _b64(event.attachments, self.serializer)
        if ack is not None:
            message["cb"] = {"to": ack.reply_to, "id": ack.ack_id, "tmo": ack.timeout}
            if ack.count:  # every process must answer: the request channel, which all read
                message["cb"]["cnt"] = True
                return self.request_channel(), dump(message, self.serializer)
        return self.route(opts), dump(message, self.serializer)

    # -- cluster requests and their answers ------------------------------

    def heartbeat(self, initial: bool = False, closing: bool = False) -> Item:
        """``heartbeat`` (``init`` when just started: others answer with theirs), or ``bye``."""
        if closing:
            return self.request_channel(), dump(self._message("bye"), self.serializer)
        return self.request_channel(), dump(self._message("heartbeat", init=initial), self.serializer)

    def request(self, request: Request) -> Item:
        """A ``fetch`` or ``sse`` request, to every process."""
        opts = request.opts
        message = self._message(request.kind, ns=opts.namespace)
        if request.rid is not None:
            message["rid"] = request.rid
        if request.kind == "fetch":
            message["to"] = _listed(opts.rooms)
            if opts.except_rooms:
                message["skip"] = sorted(opts.except_rooms)
        else:
            data, buffers = deconstruct(list(request.data))
            message["data"] = data
            if buffers:
                message["bin"] = _b64(buffers, self.serializer)
        return self.request_channel(), dump(message, self.serializer)

    def response(self, reply_to: str, rid: int, kind: str, value: Any) -> Item:
        """An answer to process *reply_to*'s request *rid*: ``count``, ``sockets`` or ``sse_reply``.

        ``sockets`` is a list of dicts (:func:`socket_fields`).
        Raises :class:`~tornado_sio.EncodeError` for values that do not serialize.
        """
        message = self._message(kind, rid=rid)
        if kind == "count":
            message["n"] = value
        elif kind == "sockets":
            message["sockets"] = value
        else:
            data, buffers = deconstruct(list(value))
            message["args"] = data
            if buffers:
                message["bin"] = _b64(buffers, self.serializer)
        return self.process_channel(reply_to), dump(message, self.serializer)

    def sockets(self, op: SocketsOp) -> list[Item]:
        """An operation on selected sockets.

        The shapes version 1 had (one sid joins or leaves one room, a room is
        closed, one sid is disconnected) travel as ``enter``/``leave``/``close``/
        ``disconnect``, so processes of earlier releases still act on them; any
        other shape as ``add_sockets``/``del_sockets``/``disconnect_sockets``.
        """
        opts = op.opts
        ns = opts.namespace
        message: dict[str, Any] | None = None
        if len(opts.rooms) == 1 and not opts.except_rooms:
            (target,) = opts.rooms
            if op.kind == "disconnect":
                if not op.close:
                    message = self._message("disconnect", ns=ns, sid=target)
            elif op.kind == "del" and op.rooms == (target,):
                message = self._message("close", ns=ns, room=target)
            elif len(op.rooms) == 1:
                message = self._message("enter" if op.kind == "add" else "leave", ns=ns, sid=target,
                                        room=op.rooms[0])
        if message is None:
            message = self._message(_SOCKETS_OPS[op.kind], ns=ns, to=_listed(opts.rooms))
            if opts.except_rooms:
                message["skip"] = sorted(opts.except_rooms)
            if op.kind == "disconnect":
                message["close"] = op.close
            else:
                message["rooms"] = list(op.rooms)
        return [(self.route(opts), dump(message, self.serializer))]

    def ack(self, request: AckRequest, sid: str, args: list[Any] | None,
            error: str | None = None) -> Item | None:
        """The answer of socket *sid* to *request*: its ack arguments, or an ``error``."""
        message = self._message("ack", id=request.ack_id, sid=sid)
        if error is not None:
            message["err"] = error
        else:
            data, buffers = deconstruct(list(args or []))
            message["args"] = data
            if buffers:
                message["bin"] = _b64(buffers, self.serializer)
        return self.process_channel(request.reply_to), dump(message, self.serializer)

    # -- decoding --------------------------------------------------------

    def decode(self, raw: bytes, keep_own: bool = False) -> Message | None:
        """A message from Redis; None for this process's own unless *keep_own* (the Streams
        transport replays and delivers its own recorded emits too). Raises :class:`Ignored`."""
        message = load(raw)
        if not isinstance(message, dict):
            raise Ignored("not an object")
        version = message.get("v")
        if version != WIRE_VERSION:
            raise Ignored(f"unknown wire version {version!r} (this process speaks {WIRE_VERSION})")
        if message.get("ch") != self.channel:
            raise Ignored(f"from channel {message.get('ch')!r}, not {self.channel!r}")
        if _need(message, "src", str) == self.src and not keep_own:
            return None
        op = message.get("op")
        if op == "ack":
            return self._decode_ack(message)
        if op in ("heartbeat", "bye"):
            return Heartbeat(message["src"], message.get("init") is True, op == "bye")
        if op in ("count", "sockets", "sse_reply"):
            return _decode_response(op, message)
        ns = _need(message, "ns", str)
        if op in ("fetch", "sse"):
            return _decode_request(op, message, ns)
        if op == "emit":
            return self._decode_emit(message, ns)
        if op in ("enter", "leave"):
            opts = _here(ns, frozenset((_need(message, "sid", str),)))
            return SocketsOp("add" if op == "enter" else "del", opts, (_need(message, "room", str),))
        if op == "close":
            room = _need(message, "room", str)
            return SocketsOp("del", _here(ns, frozenset((room,))), (room,))
        if op == "disconnect":
            return SocketsOp("disconnect", _here(ns, frozenset((_need(message, "sid", str),))))
        kind = _SOCKETS_KINDS.get(op) if isinstance(op, str) else None
        if kind is None:
            raise Ignored(f"unknown op {op!r}")
        if message.get("to") == []:
            return None  # an empty list of rooms selects nobody
        opts = _here(ns, _room_set(message.get("to"), "to"), _room_set(message.get("skip"), "skip"))
        if kind == "disconnect":
            return SocketsOp(kind, opts, close=message.get("close") is True)
        return SocketsOp(kind, opts, tuple(_str_list(message.get("rooms"), "rooms")))

    def _decode_emit(self, message: dict[str, Any], ns: str) -> Emit | None:
        if message.get("to") == []:
            return None  # an empty list of rooms selects nobody
        body = _need(message, "json", str)
        if not body.startswith("["):
            raise Ignored("'json' is not an array")
        opts = _here(ns, _room_set(message.get("to"), "to"), _room_set(message.get("skip"), "skip"))
        attachments = _unb64(message.get("bin"))
        cb = message.get("cb")
        request = None
        if cb is not None:
            if not isinstance(cb, dict):
                raise Ignored("'cb' must be an object")
            request = AckRequest(_need(cb, "to", str), _need(cb, "id", int), _timeout(cb.get("tmo"), "cb.tmo"),
                                 count=cb.get("cnt") is True)
        if message.get("vol") is True:
            opts = BroadcastOptions(opts.namespace, opts.rooms, opts.except_rooms, opts.local, True, opts.compress)
        return Emit(opts, body, attachments, request)

    def _decode_ack(self, message: dict[str, Any]) -> Ack:
        ack_id = _need(message, "id", int)
        sid = message.get("sid")
        error = message.get("err")
        if error is not None:
            return Ack(ack_id, sid, [], str(error))
        args = message.get("args")
        if not isinstance(args, list):
            raise Ignored("'args' must be a list")
        return Ack(ack_id, sid, _rebuild(args, _unb64(message.get("bin"))))


def socket_fields(details: SocketDetails) -> dict[str, Any]:
    """A socket as a ``sockets`` answer lists it."""
    return {"sid": details.sid, "ns": details.namespace, "rooms": list(details.rooms), "data": details.data,
            "hs": details.handshake}


def _decode_socket(item: Any) -> SocketDetails:
    if not isinstance(item, dict):
        raise Ignored("'sockets' items must be objects")
    data = item.get("data")
    handshake = item.get("hs")
    if not isinstance(data, dict) or not isinstance(handshake, dict):
        raise Ignored("a socket's 'data' and 'hs' must be objects")
    return SocketDetails(_need(item, "sid", str), _need(item, "ns", str), _str_list(item.get("rooms"), "rooms"),
                         data, handshake)


def _decode_request(op: str, message: dict[str, Any], ns: str) -> Request:
    rid = message.get("rid")
    if rid is not None and (type(rid) is not int):
        raise Ignored("field 'rid' must be an integer")
    if op == "fetch":
        opts = _here(ns, _room_set(message.get("to"), "to"), _room_set(message.get("skip"), "skip"))
        return Request("fetch", rid, message["src"], opts)
    data = _rebuild(message.get("data"), _unb64(message.get("bin")))
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise Ignored("'data' must be [event, ...args]")
    return Request("sse", rid, message["src"], _here(ns), data)


def _decode_response(op: str, message: dict[str, Any]) -> Response:
    rid = _need(message, "rid", int)
    src = message["src"]
    if op == "count":
        count = _need(message, "n", int)
        if count < 0:
            raise Ignored("field 'n' must not be negative")
        return Response(op, rid, src, count)
    if op == "sockets":
        items = message.get("sockets")
        if not isinstance(items, list) or len(items) > MAX_FETCHED:
            raise Ignored(f"'sockets' must be a list of at most {MAX_FETCHED}")
        return Response(op, rid, src, [_decode_socket(item) for item in items])
    args = _rebuild(message.get("args"), _unb64(message.get("bin")))
    if not isinstance(args, list):
        raise Ignored("'args' must be a list")
    return Response(op, rid, src, args)


# ---------------------------------------------------------------- python-socketio


class PsioCodec:
    """python-socketio's JSON pub/sub format, on one channel (its default ``socketio``).

    Unversioned and python-socketio's own (see its ``async_pubsub_manager.py``):
    objects ``{"method": ..., "host_id": ..., ...}``. It can express emits, acks,
    and operations on one sid (enter/leave a room, disconnect) or one room
    (close); :meth:`sockets` raises :class:`NotImplementedError` for the rest.
    """

    format = "python-socketio"
    native = False

    def __init__(self, channel: str, src: str) -> None:
        self.channel = channel
        self.src = src
        self.serializer = "json"
        self.main = channel_name(channel)

    def fixed_channels(self, write_only: bool) -> list[tuple[bytes, str]]:
        """The one channel, unless this process only publishes."""
        return [] if write_only else [(self.main, self.format)]

    def namespace_channels(self, namespace: str) -> list[tuple[bytes, str]]:
        """None: every process reads the one channel."""
        return []

    def room_channels(self, namespace: str, room: str) -> list[tuple[bytes, str]]:
        """None: every process reads the one channel."""
        return []

    def route(self, opts: BroadcastOptions) -> bytes:
        """The one channel."""
        return self.main

    # -- encoding --------------------------------------------------------

    def emit(self, event: EncodedEvent, opts: BroadcastOptions, ack: AckRequest | None = None) -> Item:
        """python-socketio's ``emit``: arguments as JSON values, binary ones base64."""
        args, buffers = deconstruct(list(event.data[1:]))
        room: Any = _listed(opts.rooms)
        if room is not None and len(room) == 1:
            room = room[0]
        message = {"method": "emit", "event": event.data[0],
                   "data": [args, *_b64(buffers, "json")] if buffers else args,
                   "binary": bool(buffers), "namespace": opts.namespace, "room": room,
                   "skip_sid": _listed(opts.except_rooms),
                   "callback": None if ack is None else [room if isinstance(room, str) else None,
                                                         opts.namespace, ack.ack_id],
                   "host_id": self.src}
        return self.main, dump(message)

    def sockets(self, op: SocketsOp) -> list[Item]:
        """``enter_room``/``leave_room``/``close_room``/``disconnect`` messages.

        The selection must be exactly one room or sid with nothing excepted,
        and a disconnect must not close the connection: python-socketio's format
        has no other shape (its peers read the one entry as a sid, except in
        ``close_room``).
        """
        opts = op.opts
        if len(opts.rooms) != 1 or opts.except_rooms or op.close:
            raise NotImplementedError(
                "the python-socketio message queue format can only address one sid or one room, "
                "with nothing excepted and without close=True; use the native format for "
                f"{op.kind} on {sorted(opts.rooms) or 'a whole namespace'}"
                f"{' except ' + str(sorted(opts.except_rooms)) if opts.except_rooms else ''}")
        (target,) = opts.rooms
        base = {"namespace": opts.namespace, "host_id": self.src}
        if op.kind == "disconnect":
            return [(self.main, dump({"method": "disconnect", "sid": target, **base}))]
        if op.kind == "del" and op.rooms == (target,):
            return [(self.main, dump({"method": "close_room", "room": target, **base}))]
        method = "enter_room" if op.kind == "add" else "leave_room"
        return [(self.main, dump({"method": method, "sid": target, "room": room, **base})) for room in op.rooms]

    def ack(self, request: AckRequest, sid: str, args: list[Any] | None,
            error: str | None = None) -> Item | None:
        """python-socketio's ``callback``; None for an error (it has no way to say one)."""
        if error is not None:
            return None
        return self.main, dump({"method": "callback", "host_id": request.reply_to, "sid": request.room,
                                "namespace": request.namespace, "id": request.ack_id,
                                "args": list(args or [])})

    # -- decoding --------------------------------------------------------

    def decode(self, raw: bytes, keep_own: bool = False) -> Message | None:
        """A message from the channel; None for this process's own (or another's callback).
        (*keep_own* is the native codec's; the Streams transport never uses this format.)"""
        try:
            message = jsonutil.loads(raw, max_depth=MAX_DEPTH)
        except ProtocolError as exc:
            raise Ignored(f"undecodable ({exc})") from None
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            raise Ignored("not a python-socketio pub/sub message")
        method = message["method"]
        host = message.get("host_id")
        if method == "callback":
            if host != self.src:
                return None
            args = message.get("args")
            return Ack(message.get("id"), message.get("sid"), args if isinstance(args, list) else [args])
        if host == self.src:
            return None
        ns = message.get("namespace") or "/"
        if not isinstance(ns, str):
            raise Ignored("'namespace' must be a string")
        if method == "emit":
            return self._decode_emit(message, ns, host)
        if method == "disconnect":
            return SocketsOp("disconnect", _here(ns, frozenset((_need(message, "sid", str),))))
        if method in ("enter_room", "leave_room"):
            opts = _here(ns, frozenset((_need(message, "sid", str),)))
            return SocketsOp("add" if method == "enter_room" else "del", opts, (_need(message, "room", str),))
        if method == "close_room":
            room = _need(message, "room", str)
            return SocketsOp("del", _here(ns, frozenset((room,))), (room,))
        raise Ignored(f"unknown method {method!r}")

    def _decode_emit(self, message: dict[str, Any], ns: str, host: Any) -> Emit | None:
        if message.get("room") == []:
            return None  # an empty list of rooms selects nobody
        event = _need(message, "event", str)
        data = message.get("data")
        if message.get("binary"):
            if not isinstance(data, list) or not data:
                raise Ignored("binary 'data' must be a non-empty list")
            data = _rebuild(data[0], _unb64(data[1:]))
        if data is None:
            args: list[Any] = []
        elif isinstance(data, list):
            args = data
        else:
            args = [data]
        skip = message.get("skip_sid")
        opts = _here(ns, _room_set(message.get("room"), "room"), _room_set(skip, "skip_sid"))
        try:
            encoded = encode_event(ns, [event, *args])
        except EncodeError as exc:
            raise Ignored(str(exc)) from None
        request = None
        callback = message.get("callback")
        if isinstance(callback, list) and len(callback) == 3 and isinstance(host, str):
            request = AckRequest(host, callback[2], None, callback[0], callback[1])
        return Emit(opts, encoded.body, encoded.attachments, request)


# ---------------------------------------------------------------- @socket.io/redis-emitter


def js_value(obj: Any) -> Any:
    """A msgpack value from Node made JSON-able as JavaScript's ``JSON.stringify`` would.

    A ``Date`` (msgpack timestamp) becomes its ISO text; notepack's
    ``undefined`` (an ext type) and any other ext type become None.
    """
    if isinstance(obj, list):
        return [js_value(item) for item in obj]
    if isinstance(obj, dict):
        return {key: js_value(value) for key, value in obj.items()}
    if isinstance(obj, datetime.datetime):
        obj = obj.astimezone(datetime.timezone.utc)
        return obj.strftime("%Y-%m-%dT%H:%M:%S.") + f"{obj.microsecond // 1000:03d}Z"
    if type(obj).__name__ == "ExtType":
        return None
    return obj


class NodeChannels:
    """The channel names of Node's Redis adapter and emitter under *key* (Node's ``key``
    option), shared by :class:`NodeCodec` and the Node adapter format (:mod:`.nodewire`).

    :param setting: the setting *key* came from, for the error when it is empty.
    """

    def __init__(self, key: str, setting: str) -> None:
        if not key or not isinstance(key, str):
            raise ValueError(f"{setting} must be a non-empty string")
        self.key = key
        #: ``<key>-request#``: what every request channel starts with.
        self.request_prefix = channel_name(f"{key}-request#")

    def broadcast_channel(self, namespace: str) -> bytes:
        """Broadcasts to a whole namespace or to several rooms."""
        return channel_name(f"{self.key}#{namespace}#")

    def room_channel(self, namespace: str, room: str) -> bytes:
        """Broadcasts to exactly one room."""
        return channel_name(f"{self.key}#{namespace}#{room}#")

    def request_channel(self, namespace: str) -> bytes:
        """Requests to every server of *namespace*; its subscribers are the cluster's servers."""
        return self.request_prefix + channel_name(f"{namespace}#")


class NodeCodec(NodeChannels):
    """What the npm ``@socket.io/redis-emitter`` publishes under *key* (decode only).

    Broadcasts are msgpack ``[uid, packet, {rooms, except, flags}]`` on
    ``<key>#<namespace>#`` (or ``<key>#<namespace>#<room>#`` for one room);
    socket operations are JSON objects on ``<key>-request#<namespace>#``.
    """

    def __init__(self, key: str) -> None:
        super().__init__(key, "node_emitter_key")

    def namespace_channels(self, namespace: str) -> list[tuple[bytes, str]]:
        """Channels to hold while this process has a socket in *namespace*."""
        return [(self.broadcast_channel(namespace), "node"), (self.request_channel(namespace), "node-request")]

    def room_channels(self, namespace: str, room: str) -> list[tuple[bytes, str]]:
        """Channels to hold while this process has a member of *room*."""
        return [(self.room_channel(namespace, room), "node")]

    @staticmethod
    def _opts(namespace: str, opts: Any) -> BroadcastOptions:
        if opts is None:
            opts = {}
        if not isinstance(opts, dict):
            raise Ignored("'opts' must be a map")
        return _here(namespace, frozenset(_str_list(opts.get("rooms") or [], "rooms")),
                     frozenset(_str_list(opts.get("except") or [], "except")))

    def decode_broadcast(self, raw: bytes) -> Emit:
        """A broadcast: an event to the rooms (minus the excepted ones) of a namespace."""
        msgpack = require_msgpack()
        try:
            message = msgpack.unpackb(raw, raw=False, timestamp=3)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means the same: Ignored, logged by the adapter
            raise Ignored(f"undecodable msgpack ({exc})") from None
        if not isinstance(message, list) or len(message) < 2 or not isinstance(message[1], dict):
            raise Ignored("not an [uid, packet, opts] array")
        packet = message[1]
        if packet.get("type") not in (SIOType.EVENT, SIOType.BINARY_EVENT):
            raise Ignored(f"packet type {packet.get('type')!r} is not an event")
        ns = packet.get("nsp", "/")
        data = js_value(packet.get("data"))
        if not isinstance(ns, str) or not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise Ignored("packet needs 'nsp' and 'data': [event, ...args]")
        opts = self._opts(ns, message[2] if len(message) > 2 else {})
        try:
            encoded = encode_event(ns, data)
        except EncodeError as exc:
            raise Ignored(str(exc)) from None
        return Emit(opts, encoded.body, encoded.attachments)

    def decode_request(self, channel: bytes, raw: bytes) -> SocketsOp:
        """``socketsJoin``/``socketsLeave``/``disconnectSockets``; :class:`Unsupported` for the rest.

        The other request types (``fetchSockets``, ``serverSideEmit`` ...) are
        adapter-to-adapter requests that need an answer this process does not give.
        """
        try:
            message = jsonutil.loads(raw, max_depth=MAX_DEPTH)
        except ProtocolError as exc:
            raise Ignored(f"undecodable ({exc})") from None
        if not isinstance(message, dict):
            raise Ignored("not an object")
        kind = message.get("type")
        if kind not in (2, 3, 4) or isinstance(kind, bool):  # REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT
            raise Unsupported(f"@socket.io request type {kind!r} is not supported")
        if not channel.startswith(self.request_prefix) or not channel.endswith(b"#"):
            raise Ignored("not a request channel")
        ns = channel[len(self.request_prefix):-1].decode("utf-8", "surrogatepass")
        opts = self._opts(ns, message.get("opts"))
        if kind == 4:
            return SocketsOp("disconnect", opts, close=message.get("close") is True)
        rooms = tuple(_str_list(message.get("rooms") or [], "rooms"))
        return SocketsOp("add" if kind == 2 else "del", opts, rooms)


# ---------------------------------------------------------------- choosing a codec

#: A codec of the main format.
Codec = Union[NativeCodec, PsioCodec]


def make_codec(format: str, channel: str, src: str, serializer: str = "json") -> Codec:
    """The codec for *format* on *channel*, publishing as *src*; ValueError for bad settings."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    if serializer not in SERIALIZERS:
        raise ValueError(f"serializer must be one of {SERIALIZERS}, not {serializer!r}")
    if not channel or not isinstance(channel, str):
        raise ValueError("channel must be a non-empty string")
    if format in ("python-socketio", "flask-socketio"):
        if serializer != "json":
            raise ValueError("the python-socketio format is JSON only")
        return PsioCodec(channel, src)
    return NativeCodec(channel, src, serializer)
