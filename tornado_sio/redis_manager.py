"""Redis pub/sub fan-out: emits, rooms and calls across processes and machines.

:class:`RedisManager` is what ``SocketIO(message_queue='redis://...')`` uses. It
subclasses :class:`~tornado_sio.manager.LocalManager`: every emit is delivered
to the matching clients of this process at once (exactly as without Redis) and
published once on Redis for the other processes, which deliver it to theirs.
Every process ignores what it published itself, so each client gets a message
exactly once.

Routing (the native format, see ``docs/redis.md``)::

    <channel>#<namespace>#            namespace ("broadcast") channel
    <channel>#<namespace>#<room>#     room channel (a client's sid is a room too)
    <channel>#proc#<uid>#             one process: ack answers, call() results

A process subscribes to a namespace channel while it holds a client in that
namespace and to a room channel while it holds a member of that room, so a
room emit (or an emit to one sid) wakes only the processes that hold somebody
in it. Emits to several rooms, or to a whole namespace, go on the namespace
channel and each process picks its own recipients.

``format='python-socketio'`` speaks python-socketio's own pub/sub format (the
JSON one of python-socketio >= 5.14) on its single channel (``'socketio'``);
``node_emitter_key='socket.io'`` additionally accepts the broadcasts of the
Node package ``@socket.io/redis-emitter``.

The wire helpers at module level (:class:`Wire`) are shared with the
synchronous :class:`tornado_sio.emitter.Emitter`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import functools
import itertools
import logging
import time
import uuid
from collections import deque
from typing import (TYPE_CHECKING, Any, Callable, Deque, Dict, Iterable, List, Optional, Set, Tuple,
                    Union)
from urllib.parse import urlsplit, urlunsplit

from .engine import Prepared
from .exceptions import AckTimeout, DisconnectedError, EncodeError, MessageQueueError, TornadoSIOError
from .manager import LocalManager, call_result
from .protocol import jsonutil
from .protocol.socketio import SIOPacket, SIOType, deconstruct, encode
from .rooms import Rooms, RoomStore, room_list
from .socket import CLIENT_MAX_ATTACHMENTS, Socket, SocketState

if TYPE_CHECKING:
    from .server import SocketIO

__all__ = ["RedisManager", "Wire", "WIRE_VERSION", "FORMATS", "redact_url"]

log = logging.getLogger("tornado_sio.redis")

#: Version of the native wire format (the ``"v"`` field). Bumped on any
#: incompatible change; a process ignores (and logs) versions it does not speak.
WIRE_VERSION = 1
#: ``"native"``: tornado-sio's own format (per-room channels). ``"python-socketio"``:
#: python-socketio / Flask-SocketIO's JSON pub/sub format on one channel.
FORMATS = ("native", "python-socketio")
SERIALIZERS = ("json", "msgpack")
DEFAULT_CHANNEL = {"native": "tornado-sio", "python-socketio": "socketio"}

_MAX_DEPTH = 64  # nesting bound when decoding a message from Redis
_SUB_CHUNK = 500  # channels per SUBSCRIBE / UNSUBSCRIBE command
_BATCH = 256  # PUBLISH commands per pipeline round trip


# ---------------------------------------------------------------------------
# Wire format (shared with tornado_sio.emitter)
# ---------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """*url* with any password replaced by ``***`` (for logs and errors)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _cname(text: str) -> bytes:
    """A channel name as bytes (lone surrogates allowed, so any room name routes)."""
    return text.encode("utf-8", "surrogatepass")


def reconstruct(obj: Any, buffers: List[bytes]) -> Any:
    """The reverse of :func:`deconstruct`; raises ValueError on a bad placeholder."""
    if isinstance(obj, list):
        return [reconstruct(item, buffers) for item in obj]
    if isinstance(obj, dict):
        if obj.get("_placeholder") is True and len(obj) == 2:
            num = obj.get("num")
            if type(num) is not int or not 0 <= num < len(buffers):
                raise ValueError(f"binary placeholder {num!r} out of range")
            return buffers[num]
        return {key: reconstruct(value, buffers) for key, value in obj.items()}
    return obj


def split_event(namespace: str, data: List[Any]) -> Tuple[str, str, List[bytes]]:
    """Encode ``[event, *args]`` once: (packet text, JSON body, attachments).

    The body is the packet text without its header (type, attachment count,
    namespace), so a receiver can rebuild the packet with an ack id of its own.
    Raises :class:`~tornado_sio.EncodeError` as :func:`tornado_sio.socket.prepare` does.
    """
    text, attachments = encode(SIOPacket(SIOType.EVENT, namespace, data))
    if len(attachments) > CLIENT_MAX_ATTACHMENTS:
        raise EncodeError(f"{len(attachments)} binary attachments in one packet; the official "
                          f"clients accept at most {CLIENT_MAX_ATTACHMENTS}")
    head = 1 + (len(str(len(attachments))) + 1 if attachments else 0) + (len(namespace) + 1 if namespace != "/" else 0)
    return text, text[head:], attachments


def event_text(namespace: str, body: str, attachments: int, ack_id: Optional[int] = None) -> str:
    """The Socket.IO packet text for an event whose JSON body is *body*."""
    head = f"5{attachments}-" if attachments else "2"
    if namespace != "/":
        head += namespace + ","
    if ack_id is not None:
        head += str(ack_id)
    return head + body


def _msgpack() -> Any:
    try:
        import msgpack  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - depends on the environment
        raise MessageQueueError("msgpack is not installed: pip install 'tornado-sio[redis]' "
                                "(or pip install msgpack)") from None
    return msgpack


def dump(message: Dict[str, Any], serializer: str = "json") -> bytes:
    """Serialize a message for Redis: strict JSON (UTF-8) or msgpack. Never pickle."""
    if serializer == "msgpack":
        return _msgpack().packb(message, use_bin_type=True)
    return jsonutil.dumps(message).encode("utf-8", "surrogatepass")


def load(raw: bytes) -> Any:
    """Deserialize a message from Redis; JSON or msgpack, told apart by the first byte.

    A JSON message is an object (``{``); a msgpack one is a map (0x80-0x8f,
    0xde, 0xdf). Raises ValueError for anything else.
    """
    if not raw:
        raise ValueError("empty message")
    first = raw[0]
    if first == 0x7B:  # "{"
        return jsonutil.loads(raw, max_depth=_MAX_DEPTH)
    if 0x80 <= first <= 0x8F or first in (0xDE, 0xDF):
        return _msgpack().unpackb(raw, raw=False)
    raise ValueError(f"neither a JSON object nor a msgpack map (first byte 0x{first:02x})")


def _b64(items: List[bytes], serializer: str) -> List[Any]:
    if serializer == "msgpack":
        return list(items)
    return [base64.b64encode(item).decode("ascii") for item in items]


def _unb64(items: Any) -> List[bytes]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError("'bin' must be a list")
    out = []
    for item in items:
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, str):
            out.append(base64.b64decode(item, validate=True))
        else:
            raise ValueError("'bin' items are base64 strings or bytes")
    return out


class Wire:
    """Builds the messages one publisher puts on Redis: ``(channel, payload)`` pairs.

    :param channel: the channel (prefix) every process of the cluster uses.
    :param src: this publisher's id (``"src"`` / ``"host_id"``), ignored by itself.
    :param format: ``"native"`` or ``"python-socketio"``.
    :param serializer: ``"json"`` or ``"msgpack"`` (native format only).
    """

    def __init__(self, channel: str, src: str, format: str = "native", serializer: str = "json") -> None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
        if serializer not in SERIALIZERS:
            raise ValueError(f"serializer must be one of {SERIALIZERS}, not {serializer!r}")
        if format == "python-socketio" and serializer != "json":
            raise ValueError("the python-socketio format is JSON only")
        if not channel or not isinstance(channel, str):
            raise ValueError("channel must be a non-empty string")
        self.channel = channel
        self.src = src
        self.format = format
        self.serializer = serializer
        self.native = format == "native"
        self._main = _cname(channel)

    # -- channel names (native) ------------------------------------------

    def ns_channel(self, namespace: str) -> bytes:
        return _cname(f"{self.channel}#{namespace}#")

    def room_channel(self, namespace: str, room: str) -> bytes:
        return _cname(f"{self.channel}#{namespace}#{room}#")

    def process_channel(self, uid: str) -> bytes:
        return _cname(f"{self.channel}#proc#{uid}#")

    def _route(self, namespace: str, rooms: Optional[List[str]]) -> bytes:
        if not self.native:
            return self._main
        if rooms is not None and len(rooms) == 1:
            return self.room_channel(namespace, rooms[0])
        return self.ns_channel(namespace)

    def _native(self, op: str, **fields: Any) -> Dict[str, Any]:
        message = {"v": WIRE_VERSION, "ch": self.channel, "src": self.src, "op": op}
        message.update(fields)
        return message

    # -- messages --------------------------------------------------------

    def emit(self, namespace: str, data: List[Any], rooms: Optional[List[str]], skip: Iterable[str] = (),
             callback: Optional[Tuple[str, int, Optional[float]]] = None,
             encoded: Optional[Tuple[str, str, List[bytes]]] = None) -> Tuple[bytes, bytes]:
        """An emit of ``[event, *args]``; *callback* is ``(reply_to, id, timeout)``.

        Raises :class:`~tornado_sio.EncodeError` when the data is not JSON-able.
        """
        skip_list = sorted(skip) if skip else []
        if self.native:
            _, body, attachments = encoded if encoded is not None else split_event(namespace, data)
            message = self._native("emit", ns=namespace, to=rooms, json=body)
            if skip_list:
                message["skip"] = skip_list
            if attachments:
                message["bin"] = _b64(attachments, self.serializer)
            if callback is not None:
                message["cb"] = {"to": callback[0], "id": callback[1], "tmo": callback[2]}
            return self._route(namespace, rooms), dump(message, self.serializer)
        if encoded is None:
            split_event(namespace, data)  # validate (EncodeError) as the native format does
        args, buffers = deconstruct(list(data[1:]))
        binary = bool(buffers)
        room: Any = rooms[0] if rooms is not None and len(rooms) == 1 else rooms
        message = {"method": "emit", "event": data[0],
                   "data": [args, *_b64(buffers, "json")] if binary else args,
                   "binary": binary, "namespace": namespace, "room": room,
                   "skip_sid": skip_list or None,
                   "callback": [room if isinstance(room, str) else None, namespace, callback[1]] if callback else None,
                   "host_id": self.src}
        return self._main, dump(message)

    def enter_room(self, namespace: str, sid: str, room: str) -> Tuple[bytes, bytes]:
        if self.native:
            return self.room_channel(namespace, sid), dump(self._native("enter", ns=namespace, sid=sid, room=room),
                                                           self.serializer)
        return self._main, dump({"method": "enter_room", "sid": sid, "room": room, "namespace": namespace,
                                 "host_id": self.src})

    def leave_room(self, namespace: str, sid: str, room: str) -> Tuple[bytes, bytes]:
        if self.native:
            return self.room_channel(namespace, sid), dump(self._native("leave", ns=namespace, sid=sid, room=room),
                                                           self.serializer)
        return self._main, dump({"method": "leave_room", "sid": sid, "room": room, "namespace": namespace,
                                 "host_id": self.src})

    def close_room(self, namespace: str, room: str) -> Tuple[bytes, bytes]:
        if self.native:
            return self.room_channel(namespace, room), dump(self._native("close", ns=namespace, room=room),
                                                            self.serializer)
        return self._main, dump({"method": "close_room", "room": room, "namespace": namespace,
                                 "host_id": self.src})

    def disconnect(self, namespace: str, sid: str) -> Tuple[bytes, bytes]:
        if self.native:
            return self.room_channel(namespace, sid), dump(self._native("disconnect", ns=namespace, sid=sid),
                                                           self.serializer)
        return self._main, dump({"method": "disconnect", "sid": sid, "namespace": namespace, "host_id": self.src})

    def ack(self, reply_to: str, ack: Any, sid: Optional[str], namespace: str, args: Optional[List[Any]],
            error: Optional[str] = None) -> Tuple[bytes, bytes]:
        """The answer to a remote ack request (``args`` None with an ``error``)."""
        if self.native:
            message = self._native("ack", id=ack, sid=sid)
            if error is not None:
                message["err"] = error
            else:
                data, buffers = deconstruct(list(args or []))
                message["args"] = data
                if buffers:
                    message["bin"] = _b64(buffers, self.serializer)
            return self.process_channel(reply_to), dump(message, self.serializer)
        return self._main, dump({"method": "callback", "host_id": reply_to, "sid": sid, "namespace": namespace,
                                 "id": ack, "args": list(args or [])})


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


class _Ignored(ValueError):
    """A message from Redis that is not acted on; the text says why (for the log)."""


def _need(message: Dict[str, Any], key: str, kind: Union[type, Tuple[type, ...]]) -> Any:
    value = message.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise _Ignored(f"field {key!r} missing or not {getattr(kind, '__name__', kind)}")
    return value


def _str_list(value: Any, key: str) -> List[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Ignored(f"field {key!r} must be a list of strings")
    return value


def _rooms_field(value: Any, key: str) -> Optional[List[str]]:
    """``null`` (whole namespace), a string (one room) or a list of strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return _str_list(value, key)


def _node_value(obj: Any) -> Any:
    """msgpack values from Node made JSON-able as JavaScript would (Date -> ISO text)."""
    if isinstance(obj, list):
        return [_node_value(item) for item in obj]
    if isinstance(obj, dict):
        return {key: _node_value(value) for key, value in obj.items()}
    if isinstance(obj, datetime.datetime):
        obj = obj.astimezone(datetime.timezone.utc)
        return obj.strftime("%Y-%m-%dT%H:%M:%S.") + f"{obj.microsecond // 1000:03d}Z"
    if type(obj).__name__ == "ExtType":
        return None
    return obj


class _RateLimitedLog:
    """One log line per kind of problem, then at most one a minute with a count."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last: Dict[str, float] = {}
        self._suppressed: Dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: Any) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            log.debug(msg, *args)
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += " (%d more like it since the last report)"
            args = (*args, suppressed)
        log.warning(msg, *args)


class _WatchedStore(RoomStore):
    """The in-memory store, telling the manager when rooms and namespaces appear or empty."""

    __slots__ = ("_watcher",)

    def __init__(self, watcher: "RedisManager") -> None:
        super().__init__()
        self._watcher = watcher

    def add(self, socket: "Socket") -> None:
        fresh = socket.namespace not in self._members
        super().add(socket)
        if fresh:
            self._watcher._namespace_changed(socket.namespace, True)

    def remove(self, socket: "Socket") -> None:
        present = socket.namespace in self._members
        super().remove(socket)
        if present and socket.namespace not in self._members:
            self._watcher._namespace_changed(socket.namespace, False)

    def enter(self, socket: "Socket", room: str) -> None:
        fresh = not self.has_room(socket.namespace, room)
        super().enter(socket, room)
        if fresh:
            self._watcher._room_changed(socket.namespace, room, True)

    def leave(self, socket: "Socket", room: str) -> None:
        existed = self.has_room(socket.namespace, room)
        super().leave(socket, room)
        if existed and not self.has_room(socket.namespace, room):
            self._watcher._room_changed(socket.namespace, room, False)


class _Pending:
    """An ack this process waits for from another process: a callback or a call() future."""

    __slots__ = ("target", "deadline")

    def __init__(self, target: Union[Callable[..., Any], "asyncio.Future[List[Any]]"], deadline: float) -> None:
        self.target = target
        self.deadline = deadline


_LINK_ERRORS: Tuple[type, ...] = (ConnectionError, OSError, asyncio.TimeoutError, TimeoutError)


# ---------------------------------------------------------------------------
# The manager
# ---------------------------------------------------------------------------


class RedisManager(LocalManager):
    """Emits, rooms, ``call()`` and disconnects across processes, over Redis pub/sub.

    ::

        socketio = SocketIO(message_queue='redis://localhost:6379/0')
        # or, with options:
        socketio = SocketIO(client_manager=lambda sio: RedisManager(
            sio, 'redis://localhost:6379/0', channel='socketio', format='python-socketio'))

    :param url: ``redis://[:password@]host:port/db`` (``rediss://`` for TLS,
        ``unix:///path?db=0``).
    :param channel: channel (prefix) shared by the cluster; default
        ``'tornado-sio'``, or ``'socketio'`` with the python-socketio format.
    :param write_only: publish only (a worker that serves no clients); it still
        receives the answers to its own ``callback=`` / ``call()`` (native format).
    :param format: ``'native'`` or ``'python-socketio'`` (see ``docs/redis.md``).
    :param serializer: ``'json'`` (default) or ``'msgpack'`` for what this process
        publishes in the native format; both are always accepted.
    :param node_emitter_key: accept the broadcasts of ``@socket.io/redis-emitter``
        published under this key (its default is ``'socket.io'``); None: off.
    :param redis_options: extra keyword arguments for ``redis.asyncio.Redis.from_url``.
    :param connect_timeout: seconds for connecting and for each Redis command.
    :param max_queue: outgoing messages waiting for Redis before new ones are dropped.
    :param reconnect_delay: first delay between reconnection attempts; doubles up
        to *reconnect_max_delay*.
    :param health_interval: seconds between PINGs on the subscriber connection;
        no answer for three intervals counts as a lost connection.
    """

    def __init__(self, server: "SocketIO", url: str = "redis://localhost:6379/0", channel: Optional[str] = None,
                 write_only: bool = False, *, format: str = "native", serializer: str = "json",
                 node_emitter_key: Optional[str] = None, redis_options: Optional[Dict[str, Any]] = None,
                 connect_timeout: float = 5.0, max_queue: int = 10000, reconnect_delay: float = 0.2,
                 reconnect_max_delay: float = 5.0, health_interval: float = 5.0) -> None:
        if not isinstance(server.rooms_store, _WatchedStore):
            if len(server.rooms_store):
                raise RuntimeError("RedisManager must be created before any client connects")
            server.rooms_store = _WatchedStore(self)
        super().__init__(server)
        self.url = url
        self.uid = uuid.uuid4().hex
        self.channel = channel or DEFAULT_CHANNEL.get(format, "tornado-sio")
        self.wire = Wire(self.channel, self.uid, format, serializer)
        self.format = format
        self.write_only = write_only
        if node_emitter_key is not None and (node_emitter_key == self.channel or not node_emitter_key):
            raise ValueError("node_emitter_key must be non-empty and differ from the channel")
        self.node_emitter_key = None if write_only else node_emitter_key
        self.redis_options = dict(redis_options or {})
        self.connect_timeout = connect_timeout
        self.max_queue = max_queue
        self.reconnect_delay = reconnect_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.health_interval = health_interval
        #: True while Redis is reachable and this process is subscribed.
        self.connected = False
        #: Outgoing messages dropped (Redis down, queue full) since the start.
        self.dropped = 0
        self._started = False
        self._stopping = False
        self._pub: Any = None
        self._sub: Any = None
        # channel -> (kind, reference count)
        self._desired: Dict[bytes, List[Any]] = {}
        self._subscribed: Set[bytes] = set()
        self._dirty: Optional[asyncio.Event] = None
        self._queue: Deque[Tuple[bytes, bytes, Optional["asyncio.Future[int]"]]] = deque()
        self._queue_ready: Optional[asyncio.Event] = None
        self._inflight = 0
        self._pending: Dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._tasks: Dict[str, "asyncio.Task[Any]"] = {}
        self._session_tasks: List["asyncio.Task[Any]"] = []
        self._link_error: Optional[BaseException] = None
        self._sync_waiters: List["asyncio.Future[bool]"] = []
        self._ping_waiters: Dict[bytes, List["asyncio.Future[bool]"]] = {}
        self._ping_seq = itertools.count(1)
        self._last_pong = 0.0
        self._down_since: Optional[float] = None
        self._dropped_at_down = 0
        self._warn = _RateLimitedLog()
        self._handlers: Dict[str, Callable[[bytes, bytes], None]] = {
            "native": self._on_native,
            "python-socketio": self._on_psio,
            "node": self._on_node,
            "node-request": self._on_node_request,
        }
        if self.format == "native":
            self._want(self.wire.process_channel(self.uid), "native", True)
        elif not write_only:
            self._want(_cname(self.channel), "python-socketio", True)

    def __repr__(self) -> str:
        return (f"<RedisManager {redact_url(self.url)} channel={self.channel!r} format={self.format}"
                f"{' write-only' if self.write_only else ''} {'connected' if self.connected else 'not connected'}>")

    # ------------------------------------------------------------------
    # Subscriptions follow the local rooms
    # ------------------------------------------------------------------

    def _want(self, channel: bytes, kind: str, on: bool) -> None:
        entry = self._desired.get(channel)
        if on:
            if entry is None:
                self._desired[channel] = [kind, 1]
            else:
                entry[1] += 1
        elif entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self._desired[channel]
        if self._dirty is not None:
            self._dirty.set()

    def _namespace_changed(self, namespace: str, present: bool) -> None:
        if self.write_only:
            return
        if self.wire.native:
            self._want(self.wire.ns_channel(namespace), "native", present)
        key = self.node_emitter_key
        if key is not None:
            self._want(_cname(f"{key}#{namespace}#"), "node", present)
            self._want(_cname(f"{key}-request#{namespace}#"), "node-request", present)

    def _room_changed(self, namespace: str, room: str, present: bool) -> None:
        if self.write_only:
            return
        if self.wire.native:
            self._want(self.wire.room_channel(namespace, room), "native", present)
        if self.node_emitter_key is not None:
            self._want(_cname(f"{self.node_emitter_key}#{namespace}#{room}#"), "node", present)

    # ------------------------------------------------------------------
    # Start / stop
    # ------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis and subscribe; raise :class:`MessageQueueError` if it cannot.

        Returns once this process is subscribed, so what other processes
        publish from then on reaches its clients.
        """
        if self._started:
            return
        where = redact_url(self.url)
        try:
            import redis.asyncio as aioredis  # type: ignore[import-not-found]
            from redis.asyncio.retry import Retry  # type: ignore[import-not-found]
            from redis.backoff import NoBackoff  # type: ignore[import-not-found]
        except ImportError:
            raise MessageQueueError(f"message_queue={where!r} needs the redis package: "
                                    "pip install 'tornado-sio[redis]'") from None
        if self.node_emitter_key is not None or self.wire.serializer == "msgpack":
            _msgpack()
        options: Dict[str, Any] = {
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.connect_timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }
        options.update(self.redis_options)
        options["decode_responses"] = False  # channels and payloads are bytes here
        try:
            self._pub = aioredis.Redis.from_url(self.url, **options)
            self._sub = aioredis.Redis.from_url(self.url, **options)
        except Exception as exc:
            raise MessageQueueError(f"invalid message queue URL {where!r}: {exc}") from None
        self._dirty = asyncio.Event()
        self._queue_ready = asyncio.Event()
        if self._queue:
            self._queue_ready.set()
        self._stopping = False
        try:
            await asyncio.wait_for(self._pub.ping(), self.connect_timeout)
            pubsub = await asyncio.wait_for(self._open_pubsub(), self.connect_timeout * 2) if self._desired else None
        except Exception as exc:
            await self._close_clients()
            raise MessageQueueError(f"cannot reach Redis at {where}: {exc or type(exc).__name__}") from exc
        self._started = True
        self.connected = True
        log.info("message queue: connected to Redis at %s (channel %r, %s format%s)", where, self.channel,
                 self.format, ", write-only" if self.write_only else "")
        self._spawn_watched("publisher", self._publisher)
        self._spawn_watched("subscriber", functools.partial(self._supervise, pubsub))
        self._spawn_watched("sweeper", self._sweeper)

    async def stop(self) -> None:
        """Flush what is queued (bounded), unsubscribe and close the connections."""
        if not self._started:
            return
        await self.flush(timeout=min(2.0, self.connect_timeout))
        self._stopping = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._end_waiters()
        for entry in self._pending.values():
            if isinstance(entry.target, asyncio.Future) and not entry.target.done():
                entry.target.set_exception(DisconnectedError("the message queue manager stopped"))
        self._pending.clear()
        self._fail_queue()
        await self._close_clients()
        self.connected = False
        self._started = False
        log.info("message queue: stopped (%s)", redact_url(self.url))

    async def _close_clients(self) -> None:
        for client in (self._pub, self._sub):
            if client is not None:
                try:
                    await asyncio.wait_for(client.aclose(), 2)
                except Exception:  # pragma: no cover - best effort on the way out
                    pass
        self._pub = self._sub = None

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until everything queued so far has gone to Redis."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._queue or self._inflight) and self.connected and loop.time() < deadline:
            await asyncio.sleep(0.005)
        return not (self._queue or self._inflight)

    async def sync(self, timeout: float = 5.0) -> bool:
        """Wait until the subscriptions for the current local rooms are active on Redis.

        A join takes effect across the cluster one Redis round trip after
        ``join_room()``; await this (e.g. in an async ``join`` handler before
        answering) when another process may emit to the room right away.
        Returns False if Redis is not connected or did not answer in time.
        """
        if not self.connected or self._dirty is None or "subscriber" not in self._tasks:
            return False
        if not self._desired:
            return True  # nothing to subscribe to (python-socketio format, write-only)
        future: "asyncio.Future[bool]" = asyncio.get_running_loop().create_future()
        self._sync_waiters.append(future)
        self._dirty.set()
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return False

    # ------------------------------------------------------------------
    # Watched background tasks
    # ------------------------------------------------------------------

    def _spawn_watched(self, name: str, factory: Callable[[], Any]) -> None:
        task = asyncio.ensure_future(factory())
        self._tasks[name] = task
        task.add_done_callback(functools.partial(self._watched_done, name))

    def _watched_done(self, name: str, task: "asyncio.Task[Any]") -> None:
        if self._stopping or self._tasks.get(name) is not task:
            return
        if task.cancelled():
            reason: Any = "cancelled"
            exc: Optional[BaseException] = None
        else:
            exc = task.exception()
            reason = repr(exc) if exc is not None else "returned"
        log.error("message queue: the %s task stopped unexpectedly (%s); restarting it", name, reason,
                  exc_info=exc)
        del self._tasks[name]
        factory: Callable[[], Any]
        if name == "subscriber":
            self._link_down(RuntimeError(f"subscriber task {reason}"))
            factory = functools.partial(self._supervise, None)
        elif name == "publisher":
            self._inflight = 0
            factory = self._publisher
        else:
            factory = self._sweeper

        def restart() -> None:
            if not self._stopping and self._started and name not in self._tasks:
                self._spawn_watched(name, factory)

        asyncio.get_running_loop().call_later(0.1, restart)

    # ------------------------------------------------------------------
    # Connection state
    # ------------------------------------------------------------------

    def _link_down(self, exc: BaseException) -> None:
        """Redis was lost: log once, stop publishing, make the supervisor reconnect."""
        self._link_error = exc
        for task in self._session_tasks:
            task.cancel()
        if not self.connected:
            return
        self.connected = False
        self._down_since = time.monotonic()
        self._dropped_at_down = self.dropped
        log.warning("message queue: lost the connection to Redis at %s (%s); local clients keep working, "
                    "messages to and from other processes are dropped until it is back; reconnecting",
                    redact_url(self.url), exc or type(exc).__name__)
        self._end_waiters()
        self._fail_queue()

    def _link_up(self) -> None:
        if self.connected:
            return
        self.connected = True
        down = time.monotonic() - self._down_since if self._down_since is not None else 0.0
        log.warning("message queue: reconnected to Redis at %s after %.1fs; %d outgoing messages were dropped "
                    "meanwhile", redact_url(self.url), down, self.dropped - self._dropped_at_down)
        self._down_since = None

    def _end_waiters(self) -> None:
        waiters = self._sync_waiters
        self._sync_waiters = []
        for group in self._ping_waiters.values():
            waiters.extend(group)
        self._ping_waiters.clear()
        for future in waiters:
            if not future.done():
                future.set_result(False)

    def _fail_queue(self) -> None:
        dropped = len(self._queue)
        while self._queue:
            _, _, future = self._queue.popleft()
            if future is not None and not future.done():
                future.set_exception(MessageQueueError("message queue not connected"))
        self.dropped += dropped

    # ------------------------------------------------------------------
    # Subscriber: supervisor, one session per connection
    # ------------------------------------------------------------------

    async def _open_pubsub(self) -> Any:
        """A new pub/sub connection subscribed to every wanted channel, confirmed by a PING."""
        pubsub = self._sub.pubsub(ignore_subscribe_messages=True)
        try:
            want = list(self._desired)
            for i in range(0, len(want), _SUB_CHUNK):
                await pubsub.subscribe(*want[i:i + _SUB_CHUNK])
            token = b"tornado-sio-ready"
            await pubsub.ping(token)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.connect_timeout
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise asyncio.TimeoutError("Redis did not confirm the subscriptions")
                message = await pubsub.get_message(timeout=remaining)
                if message is None:
                    continue
                if message["type"] == "pong" and message["data"] == token:
                    break
                if message["type"] == "message":
                    self._dispatch(message["channel"], message["data"])
            self._subscribed = set(want)
            self._last_pong = loop.time()
            return pubsub
        except BaseException:
            await self._close_pubsub(pubsub)
            raise

    @staticmethod
    async def _close_pubsub(pubsub: Any) -> None:
        if pubsub is None:
            return
        try:
            await asyncio.wait_for(pubsub.aclose(), 2)
        except BaseException:  # pragma: no cover - best effort
            pass

    async def _supervise(self, pubsub: Any) -> None:
        """Keep a subscribed connection: reconnect with backoff whenever it fails."""
        need_pubsub = bool(self._desired)
        delay = self.reconnect_delay
        fresh = pubsub is not None or not need_pubsub
        while True:
            if not fresh:
                try:
                    await asyncio.wait_for(self._pub.ping(), self.connect_timeout)
                    if need_pubsub:
                        pubsub = await asyncio.wait_for(self._open_pubsub(), self.connect_timeout * 2)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.debug("message queue: Redis at %s still unreachable (%s); next try in %.1fs",
                              redact_url(self.url), exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.reconnect_max_delay)
                    continue
                delay = self.reconnect_delay
                self._link_up()
            fresh = False
            try:
                await self._session(pubsub)
            except Exception as exc:
                self._link_down(exc)
            finally:
                await self._close_pubsub(pubsub)
                pubsub = None
            if self._link_error is not None:
                self._link_down(self._link_error)
                self._link_error = None
            await asyncio.sleep(delay)

    async def _session(self, pubsub: Any) -> None:
        """Read and keep subscriptions in step until the connection fails (raises)."""
        self._link_error = None
        tasks = [asyncio.ensure_future(self._syncer(pubsub))]
        if pubsub is not None:
            tasks.append(asyncio.ensure_future(self._reader(pubsub)))
        self._session_tasks = tasks
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.cancelled():
                    raise self._link_error or ConnectionError("subscriber session cancelled")
                exc = task.exception()
                if exc is not None:
                    raise exc
            raise ConnectionError("subscriber session ended")
        finally:
            self._session_tasks = []
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _reader(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            if kind == "message":
                self._dispatch(message["channel"], message["data"])
            elif kind == "pong":
                self._pong(message["data"])

    def _pong(self, token: Any) -> None:
        self._last_pong = asyncio.get_running_loop().time()
        for future in self._ping_waiters.pop(token, ()):
            if not future.done():
                future.set_result(True)

    async def _syncer(self, pubsub: Any) -> None:
        """Apply subscription changes; PING for sync() waiters and for health."""
        assert self._dirty is not None
        loop = asyncio.get_running_loop()
        interval = self.health_interval
        next_health = loop.time() + interval
        self._last_pong = loop.time()
        while True:
            try:
                await asyncio.wait_for(self._dirty.wait(), max(0.0, next_health - loop.time()))
            except asyncio.TimeoutError:
                pass
            self._dirty.clear()
            now = loop.time()
            health = now >= next_health
            if health:
                next_health = now + interval
            if pubsub is None:
                if health:
                    await asyncio.wait_for(self._pub.ping(), self.connect_timeout)
                continue
            waiters = self._sync_waiters
            self._sync_waiters = []
            await self._apply_subscriptions(pubsub)
            if health and now - self._last_pong > 3 * interval:
                raise ConnectionError(f"Redis did not answer a PING for {now - self._last_pong:.1f}s")
            if waiters or health:
                token = b"tornado-sio-%d" % next(self._ping_seq)
                self._ping_waiters[token] = waiters
                await pubsub.ping(token)

    async def _apply_subscriptions(self, pubsub: Any) -> None:
        want = set(self._desired)
        add = [c for c in want if c not in self._subscribed]
        drop = [c for c in self._subscribed if c not in want]
        for i in range(0, len(add), _SUB_CHUNK):
            chunk = add[i:i + _SUB_CHUNK]
            await pubsub.subscribe(*chunk)
            self._subscribed.update(chunk)
        for i in range(0, len(drop), _SUB_CHUNK):
            chunk = drop[i:i + _SUB_CHUNK]
            await pubsub.unsubscribe(*chunk)
            self._subscribed.difference_update(chunk)

    # ------------------------------------------------------------------
    # Publisher: one task, in order, pipelined
    # ------------------------------------------------------------------

    def _enqueue(self, channel: bytes, payload: bytes, count: bool = False) -> Optional["asyncio.Future[int]"]:
        future: Optional["asyncio.Future[int]"] = None
        if count:
            future = asyncio.get_running_loop().create_future()
        if self._stopping or (self._started and not self.connected):
            self.dropped += 1
            if future is not None:
                future.set_exception(MessageQueueError("message queue not connected"))
            return future
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            self._warn.warning("queue-full", "message queue: %d messages waiting for Redis (max_queue); "
                               "dropping new ones", len(self._queue))
            if future is not None:
                future.set_exception(MessageQueueError("message queue full"))
            return future
        self._queue.append((channel, payload, future))
        if self._queue_ready is not None:
            self._queue_ready.set()
        elif not self._started:
            self._autostart()
        return future

    def _publish(self, item: Tuple[bytes, bytes]) -> None:
        self._enqueue(item[0], item[1])

    def _autostart(self) -> None:
        """An emit before ``await socketio.start()``: start in the background."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        if self.server._started is None:
            log.info("message queue: emit before start(); starting the manager now")
            asyncio.ensure_future(self.server.start()).add_done_callback(
                lambda t: t.cancelled() or t.exception() is None
                or log.error("message queue: could not start: %s", t.exception()))

    async def _publisher(self) -> None:
        assert self._queue_ready is not None
        while True:
            if not self._queue:
                self._queue_ready.clear()
                await self._queue_ready.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
            if not self.connected:
                self.dropped += len(batch)
                for _, _, future in batch:
                    if future is not None and not future.done():
                        future.set_exception(MessageQueueError("message queue not connected"))
                continue
            self._inflight = len(batch)
            try:
                pipe = self._pub.pipeline(transaction=False)
                for channel, payload, _ in batch:
                    pipe.publish(channel, payload)
                results = await asyncio.wait_for(pipe.execute(raise_on_error=False), self.connect_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.dropped += len(batch)
                for _, _, future in batch:
                    if future is not None and not future.done():
                        future.set_exception(MessageQueueError(f"publish failed: {exc}"))
                if self._is_link_error(exc):
                    self._link_down(exc)
                else:
                    log.error("message queue: publishing %d messages failed: %s", len(batch), exc)
            else:
                for (_, _, future), result in zip(batch, results):
                    if isinstance(result, Exception):
                        self.dropped += 1
                        self._warn.warning("publish-error", "message queue: Redis refused a PUBLISH: %s", result)
                        if future is not None and not future.done():
                            future.set_exception(MessageQueueError(f"publish failed: {result}"))
                    elif future is not None and not future.done():
                        future.set_result(int(result))
            finally:
                self._inflight = 0

    @staticmethod
    def _is_link_error(exc: BaseException) -> bool:
        if isinstance(exc, _LINK_ERRORS):
            return True
        try:
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import TimeoutError as RedisTimeoutError
        except ImportError:  # pragma: no cover
            return False
        return isinstance(exc, (RedisConnectionError, RedisTimeoutError))

    async def _sweeper(self) -> None:
        """Forget remote-ack callbacks past their deadline."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for ack, entry in list(self._pending.items()):
                if entry.deadline <= now and not isinstance(entry.target, asyncio.Future):
                    del self._pending[ack]

    # ------------------------------------------------------------------
    # Emitting and calling
    # ------------------------------------------------------------------

    def _is_local_sid(self, namespace: str, rooms: Optional[List[str]]) -> bool:
        """An emit to exactly one sid of a client of this process needs no publish."""
        if rooms is None or len(rooms) != 1:
            return False
        socket = self.store.sockets.get(rooms[0])
        return socket is not None and socket.namespace == namespace

    def emit(self, namespace: str, data: List[Any], to: Rooms = None, skip: Optional[Set[str]] = None,
             callback: Optional[Callable[..., Any]] = None, timeout: Optional[float] = None) -> None:
        """Deliver to the local recipients now; publish once for the other processes."""
        rooms = room_list(to)
        encoded = split_event(namespace, data)  # raises EncodeError before anything is sent
        if callback is None:
            prepared = Prepared(encoded[0], encoded[2])
            for socket in self.store.recipients(namespace, rooms, skip):
                socket.send(prepared)
        else:
            super().emit(namespace, data, rooms, skip, callback, timeout)
        if self._is_local_sid(namespace, rooms):
            return
        reply = None
        if callback is not None:
            if self.write_only and not self.wire.native:
                raise RuntimeError("callbacks need a subscribed process: not available in write-only mode "
                                   "with the python-socketio format")
            ack = next(self._ids)
            limit = timeout or self.server.ack_timeout or 3600.0
            self._pending[ack] = _Pending(callback, asyncio.get_running_loop().time() + limit)
            reply = (self.uid, ack, timeout or self.server.ack_timeout)
        self._publish(self.wire.emit(namespace, data, rooms, skip or (), reply, encoded))

    async def call(self, namespace: str, data: List[Any], sid: str, timeout: Optional[float]) -> Any:
        """``call()`` to a client of any process: its ack comes back on this process's channel."""
        if self.socket(sid, namespace) is not None or (self.write_only and not self.wire.native):
            return await super().call(namespace, data, sid, timeout)
        if not self.connected:
            raise DisconnectedError(f"no client {sid} in namespace {namespace} in this process, "
                                    "and the message queue is not connected")
        loop = asyncio.get_running_loop()
        ack = next(self._ids)
        future: "asyncio.Future[List[Any]]" = loop.create_future()
        self._pending[ack] = _Pending(future, float("inf"))
        deadline = None if timeout is None else loop.time() + timeout
        try:
            channel, payload = self.wire.emit(namespace, data, [sid], (), (self.uid, ack, timeout))
            counted = self._enqueue(channel, payload, count=True)
            assert counted is not None
            try:
                receivers = await asyncio.wait_for(counted, timeout)
            except MessageQueueError as exc:
                raise DisconnectedError(f"cannot reach client {sid}: {exc}") from None
            if receivers == 0 and self.wire.native:
                raise DisconnectedError(f"no client {sid} in namespace {namespace} in any process")
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            answer = await asyncio.wait_for(future, remaining)
        except asyncio.TimeoutError:
            raise AckTimeout(f"client {sid} did not acknowledge {data[0]!r} within {timeout}s") from None
        finally:
            self._pending.pop(ack, None)
        return call_result(answer)

    # ------------------------------------------------------------------
    # Rooms and clients of any process
    # ------------------------------------------------------------------

    def _local(self, sid: str) -> bool:
        return sid in self.store.sockets

    def enter_room(self, sid: str, room: str, namespace: str) -> None:
        if self._local(sid):
            super().enter_room(sid, room, namespace)
        else:
            self._publish(self.wire.enter_room(namespace, sid, room))

    def leave_room(self, sid: str, room: str, namespace: str) -> None:
        if self._local(sid):
            super().leave_room(sid, room, namespace)
        else:
            self._publish(self.wire.leave_room(namespace, sid, room))

    def close_room(self, room: str, namespace: str) -> None:
        super().close_room(room, namespace)
        self._publish(self.wire.close_room(namespace, room))

    def disconnect(self, sid: str, namespace: str) -> None:
        if self._local(sid):
            super().disconnect(sid, namespace)
        else:
            self._publish(self.wire.disconnect(namespace, sid))

    # ------------------------------------------------------------------
    # Incoming messages
    # ------------------------------------------------------------------

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        entry = self._desired.get(channel)
        if entry is None:
            log.debug("message queue: message on %r, no longer subscribed; ignored", channel)
            return
        try:
            self._handlers[entry[0]](channel, data)
        except (_Ignored, EncodeError) as why:
            self._warn.warning(f"ignored:{why}", "message queue: ignored a message on %r: %s",
                               channel.decode("utf-8", "replace"), why)
        except Exception:
            log.exception("message queue: handling a message on %r failed", channel.decode("utf-8", "replace"))

    def _deliver(self, namespace: str, rooms: Optional[List[str]], skip: Optional[Set[str]], body: str,
                 attachments: List[bytes], reply: Optional[Callable[[Optional[str], Any, Optional[str]], None]],
                 timeout: Optional[float]) -> None:
        """Send an event (JSON *body*) to the local recipients; *reply* answers their acks."""
        recipients = list(self.store.recipients(namespace, rooms, skip))
        if not recipients:
            return
        if reply is None:
            prepared = Prepared(event_text(namespace, body, len(attachments)), attachments)
            for socket in recipients:
                socket.send(prepared)
            return
        loop = asyncio.get_running_loop()
        for socket in recipients:
            if socket.state == SocketState.DISCONNECTED:
                continue
            future: "asyncio.Future[List[Any]]" = loop.create_future()
            try:
                ack_id = socket.add_ack(future, timeout or self.server.ack_timeout)
            except TornadoSIOError as exc:
                log.warning("message queue: %s; remote ack request not delivered", exc)
                continue
            future.add_done_callback(functools.partial(self._answer, reply, socket.sid))
            socket.send(Prepared(event_text(namespace, body, len(attachments), ack_id), attachments))

    @staticmethod
    def _answer(reply: Callable[[Optional[str], Any, Optional[str]], None], sid: str,
                future: "asyncio.Future[List[Any]]") -> None:
        if future.cancelled():  # expired: the origin times out on its own
            return
        exc = future.exception()
        if exc is not None:
            reply(sid, None, "disconnected")
        else:
            reply(sid, future.result(), None)

    def _resolve(self, ack: Any, args: List[Any], error: Optional[str]) -> None:
        entry = self._pending.get(ack) if isinstance(ack, int) else None
        if entry is None:
            log.debug("message queue: ack %r matches nothing pending", ack)
            return
        target = entry.target
        if isinstance(target, asyncio.Future):
            self._pending.pop(ack, None)
            if target.done():
                return
            if error is not None:
                target.set_exception(DisconnectedError("the client disconnected before answering"))
            else:
                target.set_result(args)
        elif error is None:
            self.server._call_plain(target, list(args), what="ack callback")

    # -- native ------------------------------------------------------------

    def _on_native(self, channel: bytes, raw: bytes) -> None:
        try:
            message = load(raw)
        except MessageQueueError:
            raise _Ignored("msgpack message but msgpack is not installed") from None
        except Exception as exc:
            raise _Ignored(f"undecodable ({exc})") from None
        if not isinstance(message, dict):
            raise _Ignored("not an object")
        version = message.get("v")
        if version != WIRE_VERSION:
            raise _Ignored(f"unknown wire version {version!r} (this process speaks {WIRE_VERSION})")
        if message.get("ch") != self.channel:
            raise _Ignored(f"from channel {message.get('ch')!r}, not {self.channel!r}")
        src = _need(message, "src", str)
        if src == self.uid:
            return
        op = message.get("op")
        ns = _need(message, "ns", str) if op != "ack" else "/"
        if op == "emit":
            body = _need(message, "json", str)
            if not body.startswith("["):
                raise _Ignored("'json' is not an array")
            rooms = _rooms_field(message.get("to"), "to")
            skip = set(_str_list(message.get("skip") or [], "skip"))
            try:
                attachments = _unb64(message.get("bin"))
            except ValueError as exc:
                raise _Ignored(str(exc)) from None
            if len(attachments) > CLIENT_MAX_ATTACHMENTS:
                raise _Ignored(f"{len(attachments)} binary attachments (clients accept {CLIENT_MAX_ATTACHMENTS})")
            cb = message.get("cb")
            reply = None
            timeout = None
            if cb is not None:
                if not isinstance(cb, dict):
                    raise _Ignored("'cb' must be an object")
                reply_to = _need(cb, "to", str)
                ack = _need(cb, "id", int)
                timeout = cb.get("tmo")
                if timeout is not None and not isinstance(timeout, (int, float)):
                    raise _Ignored("'cb.tmo' must be a number")
                reply = functools.partial(self._reply_native, reply_to, ack, ns)
            self._deliver(ns, rooms, skip, body, attachments, reply, timeout)
        elif op == "enter":
            LocalManager.enter_room(self, _need(message, "sid", str), _need(message, "room", str), ns)
        elif op == "leave":
            LocalManager.leave_room(self, _need(message, "sid", str), _need(message, "room", str), ns)
        elif op == "close":
            LocalManager.close_room(self, _need(message, "room", str), ns)
        elif op == "disconnect":
            LocalManager.disconnect(self, _need(message, "sid", str), ns)
        elif op == "ack":
            ack = _need(message, "id", int)
            error = message.get("err")
            args: List[Any] = []
            if error is None:
                raw_args = message.get("args")
                if not isinstance(raw_args, list):
                    raise _Ignored("'args' must be a list")
                try:
                    args = reconstruct(raw_args, _unb64(message.get("bin")))
                except ValueError as exc:
                    raise _Ignored(str(exc)) from None
            self._resolve(ack, args, None if error is None else str(error))
        else:
            raise _Ignored(f"unknown op {op!r}")

    def _reply_native(self, reply_to: str, ack: int, namespace: str, sid: Optional[str], args: Any,
                      error: Optional[str]) -> None:
        if reply_to == self.uid:
            self._resolve(ack, args or [], error)
            return
        try:
            self._publish(self.wire.ack(reply_to, ack, sid, namespace, args, error))
        except Exception as exc:
            log.warning("message queue: could not forward an ack from %s: %s", sid, exc)

    # -- python-socketio -----------------------------------------------------

    def _on_psio(self, channel: bytes, raw: bytes) -> None:
        try:
            message = jsonutil.loads(raw, max_depth=_MAX_DEPTH)
        except Exception as exc:
            raise _Ignored(f"undecodable ({exc})") from None
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            raise _Ignored("not a python-socketio pub/sub message")
        method = message["method"]
        host = message.get("host_id")
        if method == "callback":
            if host == self.uid:
                args = message.get("args")
                self._resolve(message.get("id"), args if isinstance(args, list) else [args], None)
            return
        if host == self.uid:
            return
        ns = message.get("namespace") or "/"
        if not isinstance(ns, str):
            raise _Ignored("'namespace' must be a string")
        if method == "emit":
            event = _need(message, "event", str)
            data = message.get("data")
            if message.get("binary"):
                if not isinstance(data, list) or not data:
                    raise _Ignored("binary 'data' must be a non-empty list")
                try:
                    data = reconstruct(data[0], _unb64(data[1:]))
                except ValueError as exc:
                    raise _Ignored(str(exc)) from None
            if data is None:
                args: List[Any] = []
            elif isinstance(data, list):
                args = data
            else:
                args = [data]
            rooms = _rooms_field(message.get("room"), "room")
            skip_sid = message.get("skip_sid")
            skip = {skip_sid} if isinstance(skip_sid, str) else set(_rooms_field(skip_sid, "skip_sid") or ())
            _, body, attachments = split_event(ns, [event, *args])
            reply = None
            callback = message.get("callback")
            if isinstance(callback, list) and len(callback) == 3 and isinstance(host, str):
                reply = functools.partial(self._reply_psio, host, callback[2], callback[0], callback[1])
            self._deliver(ns, rooms, skip, body, attachments, reply, None)
        elif method == "disconnect":
            LocalManager.disconnect(self, _need(message, "sid", str), ns)
        elif method == "enter_room":
            LocalManager.enter_room(self, _need(message, "sid", str), _need(message, "room", str), ns)
        elif method == "leave_room":
            LocalManager.leave_room(self, _need(message, "sid", str), _need(message, "room", str), ns)
        elif method == "close_room":
            LocalManager.close_room(self, _need(message, "room", str), ns)
        else:
            raise _Ignored(f"unknown method {method!r}")

    def _reply_psio(self, host: str, ack: Any, cb_sid: Any, cb_namespace: Any, sid: Optional[str], args: Any,
                    error: Optional[str]) -> None:
        if error is not None:
            return  # python-socketio has no "disconnected" answer: its callback just never fires
        try:
            self._publish(self.wire.ack(host, ack, cb_sid, cb_namespace, args))
        except Exception as exc:
            log.warning("message queue: could not forward an ack from %s: %s", sid, exc)

    # -- @socket.io/redis-emitter --------------------------------------------

    def _node_sockets(self, namespace: str, opts: Any) -> List[Socket]:
        if opts is None:
            opts = {}
        if not isinstance(opts, dict):
            raise _Ignored("'opts' must be a map")
        rooms = _str_list(opts.get("rooms") or [], "rooms") or None
        excluded = _str_list(opts.get("except") or [], "except")
        skip = {s.sid for s in self.store.recipients(namespace, excluded)} if excluded else None
        return list(self.store.recipients(namespace, rooms, skip))

    def _on_node(self, channel: bytes, raw: bytes) -> None:
        msgpack = _msgpack()
        try:
            message = msgpack.unpackb(raw, raw=False, timestamp=3)
        except Exception as exc:
            raise _Ignored(f"undecodable msgpack ({exc})") from None
        if not isinstance(message, list) or len(message) < 2 or not isinstance(message[1], dict):
            raise _Ignored("not an [uid, packet, opts] array")
        packet = message[1]
        opts = message[2] if len(message) > 2 else {}
        if packet.get("type") not in (SIOType.EVENT, SIOType.BINARY_EVENT):
            raise _Ignored(f"packet type {packet.get('type')!r} is not an event")
        ns = packet.get("nsp", "/")
        data = _node_value(packet.get("data"))
        if not isinstance(ns, str) or not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise _Ignored("packet needs 'nsp' and 'data': [event, ...args]")
        recipients = self._node_sockets(ns, opts)
        if not recipients:
            return
        text, _, attachments = split_event(ns, data)
        prepared = Prepared(text, attachments)
        for socket in recipients:
            socket.send(prepared)

    def _on_node_request(self, channel: bytes, raw: bytes) -> None:
        try:
            message = jsonutil.loads(raw, max_depth=_MAX_DEPTH)
        except Exception as exc:
            raise _Ignored(f"undecodable ({exc})") from None
        if not isinstance(message, dict):
            raise _Ignored("not an object")
        kind = message.get("type")
        if kind not in (2, 3, 4):  # REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT; others need an adapter
            log.debug("message queue: @socket.io request type %r not supported; ignored", kind)
            return
        # the request channel is "<key>-request#<namespace>#"
        ns = channel[len(_cname(f"{self.node_emitter_key}-request#")):-1].decode("utf-8", "surrogatepass")
        sockets = self._node_sockets(ns, message.get("opts"))
        if kind == 4:
            for socket in sockets:
                if message.get("close"):
                    socket.client.conn.close("server namespace disconnect")
                else:
                    LocalManager.disconnect(self, socket.sid, ns)
            return
        rooms = _str_list(message.get("rooms") or [], "rooms")
        for socket in sockets:
            for room in rooms:
                if kind == 2:
                    self.store.enter(socket, room)
                else:
                    self.store.leave(socket, room)
