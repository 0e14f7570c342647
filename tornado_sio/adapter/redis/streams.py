"""The Redis Streams transport of the Redis adapter, and connection state recovery across processes.

``message_queue_options={'transport': 'streams'}`` (chosen by itself when
``connection_state_recovery`` is on) replaces pub/sub with one Redis stream, as
the npm package ``@socket.io/redis-streams-adapter`` does:

* every process appends each message to the stream (``XADD ... MAXLEN ~ N``:
  the stream stays near ``stream_maxlen`` entries, the oldest trimmed first)
  and reads it with ``XREAD BLOCK`` from the last entry it read, so nothing is
  missed while a connection is re-established, and a slow process reads
  ``stream_read_count`` entries at a time (memory stays bounded: what waits is
  in Redis, up to the trim);
* the entry id is the offset of connection state recovery: an event that is
  recorded (an emit, not volatile, not waiting for acks, not ``local``) is
  delivered to the local sockets **by the reader**, in stream order, with its
  entry id appended as its last argument; the emitting process included. So
  every process delivers in one order, and a client's offset names an entry
  every process can find;
* a disconnected socket's state is a key ``<session_key_prefix><pid>`` that
  expires after ``max_disconnection_duration``; a reconnecting client's state
  is taken once (``GETDEL`` in a ``MULTI`` with the offset check) and the
  events it missed are read back with ``XRANGE`` after its offset, in order,
  bounded.

The message formats are :mod:`.wire`'s (the native codec's payloads, with the
channel a pub/sub message would have had); :class:`StreamLink` has the same
interface as :class:`~.link.RedisLink`, so :mod:`.adapter` routes the same way
over either. Needs Redis >= 6.2 (``GETDEL``, exclusive ``XRANGE``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
import time
from typing import Any, Callable

from ...exceptions import MessageQueueError
from ...protocol import jsonutil
from ...protocol.socketio import reconstruct
from ..base import BroadcastOptions, selects
from .link import (
    LinkSettings,
    Publisher,
    RateLimitedLog,
    Subscriber,
    WatchedTasks,
    client_options,
    close_quietly,
    describe,
    drained,
    is_link_error,
)
from .wire import MAX_DEPTH, Emit, Ignored, NativeCodec, redact_url

__all__ = ["OFFSET", "STREAM_KEYS", "TRANSPORTS", "OffsetFuture", "StreamLink", "StreamPublisher",
           "StreamSessions", "StreamSettings", "entry_fields", "entry_id", "kept_sessions", "selects", "stamp",
           "stream_settings"]

log = logging.getLogger("tornado_sio.redis")

#: ``message_queue_options['transport']``: Redis pub/sub, or one Redis stream.
TRANSPORTS = ("pubsub", "streams")
#: A stream entry id (``<milliseconds>-<sequence>``): the only offset shape looked up.
OFFSET = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
#: Stream entry fields: the pub/sub channel the message stands for, the sender, the payload,
#: and (on recorded events only) the mark that has the sender's reader deliver it too.
_CH, _SRC, _MSG, _REC = b"ch", b"src", b"m", b"rec"


def entry_fields(channel: bytes, payload: bytes, src: bytes, recorded: bool) -> dict[bytes, bytes]:
    """The fields of one stream entry: what pub/sub would have carried on *channel*, its
    sender, and for a *recorded* event the mark that gets it an offset and a replay."""
    fields = {_CH: channel, _SRC: src, _MSG: payload}
    if recorded:
        fields[_REC] = b"1"
    return fields


def entry_id(text: str) -> tuple[int, int]:
    """A stream entry id as a sortable ``(milliseconds, sequence)``; ``0-0`` for ``'0-0'``."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclasses.dataclass
class StreamSettings:
    """The stream's settings (``message_queue_options`` of the server).

    :param stream_name: the stream's key; None: the channel (``tornado-sio``).
    :param stream_maxlen: entries kept (``MAXLEN ~``: Redis trims whole nodes,
        so a few more stay); Node's ``maxLen``, default 10,000.
    :param stream_read_count: entries read per ``XREAD``; Node's ``readCount``.
    :param stream_block: seconds one ``XREAD`` waits for new entries.
    :param session_key_prefix: where disconnected sockets' states are kept;
        None: ``<stream_name>:session:``.
    """

    stream_name: str | None = None
    stream_maxlen: int = 10_000
    stream_read_count: int = 100
    stream_block: float = 2.0
    session_key_prefix: str | None = None

    def __post_init__(self) -> None:
        if int(self.stream_maxlen) < 1 or int(self.stream_read_count) < 1:
            raise ValueError("stream_maxlen and stream_read_count must be at least 1")
        if not float(self.stream_block) > 0:
            raise ValueError("stream_block must be positive")
        if self.stream_name is not None and not (isinstance(self.stream_name, str) and self.stream_name):
            raise ValueError("stream_name must be a non-empty string")
        self.stream_maxlen = int(self.stream_maxlen)
        self.stream_read_count = int(self.stream_read_count)
        self.stream_block = float(self.stream_block)


#: The ``message_queue_options`` keys of the Streams transport (with ``transport`` itself).
STREAM_KEYS = ("transport", *(field.name for field in dataclasses.fields(StreamSettings)))


def stream_settings(given: dict[str, Any], codec: Any, node_emitter: bool,
                    recovery: dict[str, Any] | None) -> StreamSettings | None:
    """The Streams transport's settings from ``message_queue_options`` (*given*), or None for pub/sub.

    ``transport`` unset means Streams when connection state recovery is on (pub/sub
    keeps nothing to replay), else pub/sub. Combinations that cannot work raise
    ``ValueError`` when the server is built, naming what to change.
    """
    transport = given.get("transport")
    keys = {key: given[key] for key in STREAM_KEYS if key != "transport" and key in given}
    if transport is None:
        transport = "streams" if recovery else "pubsub"
    if transport not in TRANSPORTS:
        raise ValueError(f"message_queue_options['transport'] must be one of {TRANSPORTS}, not {transport!r}")
    if transport == "pubsub":
        if recovery:
            raise ValueError("connection_state_recovery with message_queue needs the Redis Streams transport "
                             "(message_queue_options={'transport': 'streams'}, or leave 'transport' unset): "
                             "Redis pub/sub keeps nothing to replay to a reconnecting client")
        if keys:
            raise ValueError(f"message_queue_options {sorted(keys)} apply to transport='streams' only")
        return None
    if not isinstance(codec, NativeCodec):
        raise ValueError("the Redis Streams transport (and connection_state_recovery with message_queue) needs "
                         "the native message queue format, not python-socketio's")
    if node_emitter:
        raise ValueError("node_emitter_key listens on Redis pub/sub channels; it does not combine with the "
                         "Streams transport (nor with connection_state_recovery and message_queue)")
    settings = StreamSettings(**keys)
    if settings.stream_name is None:
        settings.stream_name = codec.channel
    if settings.session_key_prefix is None:
        settings.session_key_prefix = f"{settings.stream_name}:session:"
    return settings


def stamp(message: Emit, offset: str | None) -> Emit:
    """*message* with *offset* appended to its event as the last argument, when it is a
    recorded event (an offset given, no ack wanted, not volatile); else *message* as is."""
    if offset is None or message.ack is not None or message.opts.volatile:
        return message
    return dataclasses.replace(message, body=f"{message.body[:-1]},{jsonutil.dumps(offset)}]")


class OffsetFuture(asyncio.Future):  # type: ignore[type-arg]
    """The future of a recorded entry: it gets the entry id (the offset), and the entry is
    marked so that the sender's own reader delivers it to the sender's sockets too."""


class StreamPublisher(Publisher):
    """:class:`~.link.Publisher` appending to the stream: ``XADD key MAXLEN ~ n * ch src m``."""

    def __init__(self, max_queue: int, warn: RateLimitedLog, key: bytes, maxlen: int, src: str) -> None:
        super().__init__(max_queue, warn)
        self.key = key
        self.maxlen = maxlen
        self.src = src.encode("ascii")

    def command(self, pipe: Any, channel: bytes, payload: bytes, future: asyncio.Future[Any] | None) -> None:
        fields = entry_fields(channel, payload, self.src, isinstance(future, OffsetFuture))
        pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)

    @staticmethod
    def result(value: Any) -> Any:
        return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _entries(response: Any) -> list[tuple[Any, Any]]:
    """The ``(id, fields)`` pairs of an ``XREAD`` answer (RESP2 list, or RESP3 map of one list)."""
    if not response:
        return []
    if isinstance(response, dict):
        return [entry for batches in response.values() for batch in batches for entry in batch]
    return [entry for _, batch in response for entry in batch]


class StreamLink:
    """One Redis stream kept read and written for one adapter; the interface of
    :class:`~.link.RedisLink` (``want``, ``publish``, ``publish_counted``, ``start``,
    ``stop``, ``flush``, ``sync``, ``connected``, ``dropped``) plus :meth:`append`.

    :param settings: where Redis is and how hard to try.
    :param stream: the stream's settings (its key must be set).
    :param on_message: called with ``(kind, channel, payload, offset)`` for each
        entry on a wanted channel, and with kind ``"own"`` for this process's
        own recorded entries; its exceptions are logged.
    :param src: this process's id (its entries carry it).
    """

    def __init__(self, settings: LinkSettings, stream: StreamSettings, on_message: Callable[..., None],
                 src: str, needs_msgpack: bool = False) -> None:
        assert stream.stream_name is not None
        self.settings = settings
        self.stream = stream
        self.key = stream.stream_name.encode("utf-8", "surrogatepass")
        self.src = src.encode("ascii")
        self.on_message = on_message
        self.needs_msgpack = needs_msgpack
        self.where = redact_url(settings.url)
        self.warn = RateLimitedLog(log)
        self.publisher = StreamPublisher(settings.max_queue, self.warn, self.key, stream.stream_maxlen, src)
        #: The wanted channels (reference counted), as over pub/sub; entries on others are skipped.
        self.subscriber = Subscriber(on_message, settings)
        #: True while Redis answers.
        self.connected = False
        #: True between a successful :meth:`start` and :meth:`stop`.
        self.started = False
        #: The id of the last entry this process has read (and delivered).
        self.position = "0-0"
        #: Whether recorded events get their entry id as an offset (connection state recovery is on).
        self.offsets = False
        self.client: Any = None
        self.reader: Any = None
        self.watched = WatchedTasks(lambda: self.started and not self.stopping, self.task_failed)
        #: One-off writes (sessions) that :meth:`stop` lets finish, bounded, before closing.
        self.writes: set[asyncio.Future[Any]] = set()
        self.stopping = False
        self.down_since: float | None = None
        self.dropped_at_down = 0

    @property
    def dropped(self) -> int:
        """Outgoing messages dropped so far (Redis down, queue full)."""
        return self.publisher.dropped

    @property
    def tasks(self) -> dict[str, asyncio.Task[Any]]:
        """The running background tasks by name (``publisher``, ``reader``): the live dict."""
        return self.watched.tasks

    def publisher_client(self) -> Any:
        """The ``redis.asyncio.Redis`` that writes (and runs the session commands)."""
        return self.client

    # -- what the adapter calls ---------------------------------------------

    def want(self, channel: bytes, kind: str, on: bool) -> None:
        """One more (*on*) or one fewer reason to take entries on *channel* as *kind*."""
        self.subscriber.want(channel, kind, on)

    def refusal(self) -> str | None:
        """Why nothing can be queued now (stopping, or Redis down), or None."""
        if self.stopping or (self.started and not self.connected):
            return "message queue not connected"
        return None

    def publish(self, channel: bytes, payload: bytes) -> None:
        """Append a message; dropped (and counted) while Redis is down or the queue is full."""
        self.publisher.enqueue(channel, payload, None, self.refusal())

    def append(self, channel: bytes, payload: bytes) -> OffsetFuture:
        """Append a recorded event; the future gets its offset, or fails
        (:class:`~tornado_sio.MessageQueueError`) when it was not appended."""
        future = OffsetFuture(loop=asyncio.get_running_loop())
        self.publisher.enqueue(channel, payload, future, self.refusal())
        return future

    def publish_counted(self, channel: bytes, payload: bytes) -> asyncio.Future[int]:
        """As :meth:`~.link.RedisLink.publish_counted`; a stream cannot count its readers, so
        the future gets 1 once the entry is appended (a ``call()`` to a sid nobody holds times out)."""
        counted: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        appended = self.append(channel, payload)

        def done(future: asyncio.Future[Any]) -> None:
            if counted.done():
                return
            if future.cancelled() or future.exception() is not None:
                counted.set_exception(future.exception() or MessageQueueError("not appended"))
            else:
                counted.set_result(1)

        appended.add_done_callback(done)
        return counted

    async def sync(self, timeout: float = 5.0) -> bool:
        """True while connected: a stream has no subscriptions to wait for (every process reads
        every entry; a join counts from the next entry read)."""
        return self.connected

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until everything queued so far has been appended."""
        return await drained(self.publisher.busy, lambda: self.connected, timeout)

    async def reached(self, offset: str, timeout: float) -> bool:
        """Wait (bounded) until this process has read up to entry *offset*."""
        wanted = entry_id(offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while entry_id(self.position) < wanted:
            if loop.time() >= deadline or not self.connected:
                return False
            await asyncio.sleep(0.005)
        return True

    # -- start / stop --------------------------------------------------------

    async def start(self) -> None:
        """Connect, find the stream's last entry and read from there; raise
        :class:`~tornado_sio.MessageQueueError` naming the URL and the reason when Redis
        cannot be reached. What any process appends from then on is read."""
        if self.started:
            return
        redis_asyncio, options = client_options(self.settings, self.where, self.needs_msgpack)
        block = self.stream.stream_block
        try:
            self.client = redis_asyncio.Redis.from_url(self.settings.url, **options)
            self.reader = redis_asyncio.Redis.from_url(
                self.settings.url, **{**options, "socket_timeout": block + self.settings.connect_timeout})
        except Exception as exc:  # noqa: BLE001 - re-raised as MessageQueueError naming the reason
            raise MessageQueueError(f"invalid message queue URL {self.where!r}: {describe(exc)}") from None
        self.publisher.bind()
        self.stopping = False
        try:
            last = await asyncio.wait_for(self.client.xrevrange(self.key, "+", "-", count=1),
                                          self.settings.connect_timeout)
        except Exception as exc:
            await self.close_clients()
            raise MessageQueueError(f"cannot reach Redis at {self.where}: {describe(exc)}") from exc
        self.position = StreamPublisher.result(last[0][0]) if last else "0-0"
        self.started = self.connected = True
        self.spawn("publisher", functools.partial(self.publisher.run, self))
        self.spawn("reader", self.read_forever)

    async def stop(self) -> None:
        """Flush what is queued (bounded), stop reading, close the connections."""
        if not self.started:
            return
        await self.flush(timeout=min(2.0, self.settings.connect_timeout))
        if self.writes:  # sessions kept as the server shuts down: recovered by another process
            await asyncio.wait(list(self.writes), timeout=self.settings.connect_timeout)
        self.stopping = True
        await self.watched.cancel()
        self.publisher.fail_all("message queue stopped")
        await self.close_clients()
        self.connected = self.started = False
        log.info("message queue: stopped (%s, stream %r)", self.where, self.key.decode("utf-8", "replace"))

    async def close_clients(self) -> None:
        """Close both connections, best effort."""
        for client in (self.client, self.reader):
            await close_quietly(client)
        self.client = self.reader = None

    def write(self, command: Any) -> None:
        """Run one-off command *command* (a coroutine) in the background; :meth:`stop` waits for it."""
        task = asyncio.ensure_future(command)
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)

    def spawn(self, name: str, factory: Callable[[], Any]) -> None:
        """Run *factory()* as task *name*; one that ends other than by :meth:`stop` is logged and restarted."""
        self.watched.spawn(name, factory)

    def task_failed(self, name: str, reason: str) -> None:
        """A watched task ended unexpectedly (logged): nothing is on the wire now."""
        self.publisher.inflight = 0

    # -- reading -----------------------------------------------------------------

    async def read_forever(self) -> None:
        """``XREAD BLOCK`` from :attr:`position` until cancelled; a failure is a lost link
        (logged once), retried with backoff, and reading resumes where it stopped."""
        delay = self.settings.reconnect_delay
        block_ms = max(1, int(self.stream.stream_block * 1000))
        while True:
            try:
                response = await self.reader.xread({self.key: self.position}, count=self.stream.stream_read_count,
                                                   block=block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged once by link_down, or rate limited
                if is_link_error(exc):
                    self.link_down(exc)
                    await self.reset_connections()
                else:
                    self.warn.warning("xread", "message queue: reading stream %r failed: %s",
                                      self.key.decode("utf-8", "replace"), describe(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.reconnect_max_delay)
                continue
            delay = self.settings.reconnect_delay
            self.link_up()
            for entry, fields in _entries(response):
                self.position = StreamPublisher.result(entry)
                self.dispatch(fields)

    async def reset_connections(self) -> None:
        """Drop the writer's pooled connections after a loss: each would otherwise fail once
        more when next used (after Redis restarted), and the link would flap down again."""
        try:
            await asyncio.wait_for(self.client.connection_pool.disconnect(), self.settings.connect_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - best effort: they are being replaced anyway
            log.debug("message queue: dropping stale Redis connections failed: %s", describe(exc))

    def dispatch(self, fields: Any) -> None:
        """Hand one entry to the adapter: this process's own only when recorded, the others'
        when their channel is wanted; entries of other writers (no channel) are skipped."""
        if not isinstance(fields, dict):
            return
        channel, payload = fields.get(_CH), fields.get(_MSG)
        if not isinstance(channel, bytes) or not isinstance(payload, bytes):
            return
        if fields.get(_SRC) == self.src:
            if _REC not in fields:
                return
            kind = "own"
        else:
            entry = self.subscriber.wanted.get(channel)
            if entry is None:
                return
            kind = entry[0]
        try:  # only recorded events carry an offset to their clients, and only with recovery on
            self.on_message(kind, channel, payload, self.position if self.offsets and _REC in fields else None)
        except Exception:
            log.exception("message queue: handling entry %s of the stream failed", self.position)

    # -- connection state ------------------------------------------------------

    def link_down(self, exc: BaseException) -> None:
        """Redis was lost: log once, drop what is queued; reading resumes from :attr:`position`."""
        if not self.connected:
            return
        self.connected = False
        self.down_since = time.monotonic()
        self.dropped_at_down = self.publisher.dropped
        log.warning("message queue: lost the connection to Redis at %s (%s); local clients keep working, "
                    "messages to other processes are dropped until it is back; reconnecting",
                    self.where, describe(exc))
        self.publisher.fail_all("message queue not connected")

    def link_up(self) -> None:
        """Redis answers again (logged once, with what was dropped meanwhile)."""
        if self.connected:
            return
        self.connected = True
        down = time.monotonic() - self.down_since if self.down_since is not None else 0.0
        log.warning("message queue: reconnected to Redis at %s after %.1fs; reading the stream from %s; "
                    "%d outgoing messages were dropped meanwhile", self.where, down, self.position,
                    self.publisher.dropped - self.dropped_at_down)
        self.down_since = None


# ---------------------------------------------------------------- sessions


def kept_sessions(sessions: StreamSessions | None, what: str) -> StreamSessions:
    """*sessions*, or the ``RuntimeError`` saying that *what* needs recovery on the Streams transport."""
    if sessions is None:
        raise RuntimeError(f"{what}() needs connection_state_recovery, which uses the Redis Streams "
                           "transport (message_queue_options={'transport': 'streams'})")
    return sessions


class StreamSessions:
    """Disconnected sockets' states in Redis, and the events they missed from the stream.

    :param link: the stream link (its connection runs the commands, its reader's
        position bounds the replay).
    :param codec: the native codec (decodes the entries replayed).
    :param stream: the stream's settings (``session_key_prefix``).
    :param recovery: ``connection_state_recovery``'s settings
        (``max_disconnection_duration``, ``max_packets``).
    """

    #: ``XRANGE`` page size while replaying.
    PAGE = 500

    def __init__(self, link: StreamLink, codec: Any, stream: StreamSettings, recovery: dict[str, Any]) -> None:
        assert isinstance(codec, NativeCodec) and stream.session_key_prefix is not None
        self.link = link
        self.codec = codec
        self.prefix = stream.session_key_prefix
        self.duration = float(recovery["max_disconnection_duration"])
        self.max_packets = int(recovery["max_packets"])
        #: Entries one restore may read at most: twice the stream's length (``MAXLEN ~`` keeps a few more).
        self.max_scan = 2 * link.stream.stream_maxlen
        self.warn = RateLimitedLog(log)

    @classmethod
    def of(cls, link: Any, codec: Any, stream: StreamSettings | None,
           recovery: dict[str, Any] | None) -> StreamSessions | None:
        """The sessions of an adapter on *link*: None unless it is a :class:`StreamLink` and recovery is on."""
        if not recovery or stream is None or not isinstance(link, StreamLink):
            return None
        link.offsets = True
        return cls(link, codec, stream, recovery)

    def record(self, item: tuple[bytes, bytes], broadcast: Callable[[Any, BroadcastOptions], None],
               packet: Any, opts: BroadcastOptions) -> None:
        """Append a recorded event (*item*); the reader hands it back to this process too, with
        its offset, so every process delivers in stream order. When it cannot be appended
        (Redis down), ``broadcast(packet, opts)`` runs ``local``: this process's sockets get it
        at once, without an offset, as over pub/sub."""
        appended = self.link.append(*item)
        appended.add_done_callback(functools.partial(self.unrecorded, broadcast, packet, opts))

    @staticmethod
    def unrecorded(broadcast: Callable[[Any, BroadcastOptions], None], packet: Any, opts: BroadcastOptions,
                   appended: asyncio.Future[Any]) -> None:
        if appended.cancelled() or appended.exception() is not None:
            broadcast(packet, BroadcastOptions(opts.namespace, opts.rooms, opts.except_rooms, True, opts.volatile,
                                               opts.compress))

    def key(self, pid: str) -> bytes:
        return (self.prefix + pid).encode("utf-8", "surrogatepass")

    def persist(self, session: dict[str, Any]) -> None:
        """Keep *session* (sid, pid, namespace, rooms, data) for ``max_disconnection_duration``."""
        if self.link.refusal() is not None or self.link.client is None:
            self.warn.warning("persist-down", "message queue: Redis is not connected; the state of %s is "
                              "not kept (it will connect afresh)", session.get("sid"))
            return
        fields = {name: session.get(name) for name in ("sid", "pid", "namespace", "rooms")}
        fields["data"] = session.get("data") or {}
        payload = jsonutil.dumps(fields).encode("utf-8", "surrogatepass")  # EncodeError: the caller logs it
        self.link.write(self.store(self.key(str(session["pid"])), payload, session.get("sid")))

    async def store(self, key: bytes, payload: bytes, sid: Any) -> None:
        try:
            await asyncio.wait_for(self.link.client.set(key, payload, px=max(1, int(self.duration * 1000))),
                                   self.link.settings.connect_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - this client loses its recovery, nothing more
            self.warn.warning("persist", "message queue: could not keep the state of %s: %s", sid, describe(exc))

    async def restore(self, pid: str, offset: str) -> dict[str, Any] | None:
        """The state kept for *pid*, taken once, with ``missed_packets`` after *offset*; None
        (a fresh connection) for an unknown or expired pid, an offset that is malformed or
        no longer in the stream, or more missed events than ``max_packets``."""
        client = self.link.client
        if not OFFSET.fullmatch(offset) or client is None or not self.link.connected:
            return None
        timeout = self.link.settings.connect_timeout
        pipe = client.pipeline(transaction=True)
        pipe.getdel(self.key(pid))
        pipe.xrange(self.link.key, offset, offset, count=1)
        raw, found = await asyncio.wait_for(pipe.execute(), timeout)
        if raw is None:
            return None
        session = self.parse(raw)
        if session is None or not found:
            return None  # taken all the same: a pid is good for one try
        if not await self.link.reached(offset, timeout):
            return None
        missed = await self.replay(offset, session["namespace"], [*session["rooms"], session["sid"]])
        if missed is None:
            return None
        session["missed_packets"] = missed
        return session

    def parse(self, raw: bytes) -> dict[str, Any] | None:
        try:
            session = jsonutil.loads(raw, max_depth=MAX_DEPTH)
        except ValueError:
            session = None
        if not (isinstance(session, dict) and isinstance(session.get("sid"), str)
                and isinstance(session.get("namespace"), str) and isinstance(session.get("rooms"), list)
                and all(isinstance(room, str) for room in session["rooms"])
                and isinstance(session.get("data"), dict)):
            self.warn.warning("session", "message queue: a malformed session state in Redis; ignored")
            return None
        return session

    async def replay(self, offset: str, namespace: str, rooms: list[str]) -> list[list[Any]] | None:
        """The events after *offset* for a socket of *namespace* in *rooms*, up to what this
        process's reader has read (what follows, the reader delivers), in order; None past
        ``max_packets`` or the scan bound, or when entries vanished (trimmed) meanwhile."""
        missed: list[list[Any]] = []
        cursor, scanned = offset, 0
        while entry_id(cursor) < entry_id(self.link.position):
            end = self.link.position
            entries = await asyncio.wait_for(
                self.link.client.xrange(self.link.key, "(" + cursor, end, count=self.PAGE),
                self.link.settings.connect_timeout)
            if not entries:
                return None
            for entry, fields in entries:
                cursor = StreamPublisher.result(entry)
                data = self.missed(fields, cursor, namespace, rooms)
                if data is not None:
                    missed.append(data)
            scanned += len(entries)
            if len(missed) > self.max_packets or scanned > self.max_scan:
                self.warn.warning("replay", "message queue: a recovery would replay %d events (%d entries "
                                  "read; max_packets %d): the client connects afresh", len(missed), scanned,
                                  self.max_packets)
                return None
        # no await from here to the socket's creation: what comes after the cursor, the reader delivers
        return missed

    def missed(self, fields: Any, offset: str, namespace: str, rooms: list[str]) -> list[Any] | None:
        """The event data of one entry, with its offset appended, when it is a recorded event
        for the socket; else None."""
        payload = fields.get(_MSG) if isinstance(fields, dict) else None
        if not isinstance(payload, bytes) or _REC not in fields:
            return None
        try:
            message = self.codec.decode(payload, keep_own=True)
            if not isinstance(message, Emit) or not selects(message.opts, namespace, rooms):
                return None
            data = reconstruct(jsonutil.loads(message.body, max_depth=MAX_DEPTH), list(message.attachments))
        except (Ignored, ValueError):
            return None
        return [*data, offset] if isinstance(data, list) else None
