"""The Redis adapter: the in-memory adapter, plus routing over Redis pub/sub.

:class:`RedisAdapter` is what ``SocketIO(message_queue='redis://...')`` uses.
Every operation acts on the sockets of this process at once, exactly as the
in-memory adapter does, and is published once for the other processes, which
apply it to theirs. A process ignores what it published itself, so each client
gets a message exactly once.

Routing (the native format; ``docs/redis.md`` has the details)::

    <channel>#<namespace>#            the whole namespace, or several rooms
    <channel>#<namespace>#<room>#     exactly one room (a client's sid is a room too)
    <channel>#proc#<uid>#             one process: answers to its ack requests

A process holds a namespace channel while it has a socket in that namespace
and a room channel while it has a member of that room (the membership hooks of
:class:`~tornado_sio.adapter.memory.MemoryAdapter`), so a room emit, or an emit
to one sid, wakes only the processes with somebody in it.

This module routes only: the formats are :mod:`.wire`'s, the connections
:mod:`.link`'s.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Iterable
from typing import Any, Callable

from ...exceptions import (
    AckTimeout,
    DisconnectedError,
    MessageQueueError,
    TornadoSIOError,
)
from ...options import Options
from ...protocol import jsonutil
from ...protocol.outgoing import Prepared
from ...protocol.socketio import SIOPacket, SIOType, event_text, reconstruct
from ..base import AckCallback, BroadcastOptions, SocketDetails
from ..memory import MemoryAdapter
from .cluster import Cluster, PendingAcks
from .link import LinkSettings, RateLimitedLog, RedisLink, describe
from .nodecluster import NodeSide
from .sharded import CLUSTER_LINK_KEYS, ClusterSettings, ShardedLink, link_settings
from .streams import STREAM_KEYS, StreamLink, StreamSessions, StreamSettings, kept_sessions, stamp, stream_settings
from .wire import (
    DEFAULT_CHANNEL,
    MAX_DEPTH,
    Ack,
    AckRequest,
    Emit,
    EncodedEvent,
    Heartbeat,
    Ignored,
    Item,
    Message,
    NativeCodec,
    Response,
    SocketsOp,
    Unsupported,
    encode_event,
    make_codec,
    redact_url,
)

__all__ = ["PendingAcks", "RedisAdapter"]

log = logging.getLogger("tornado_sio.redis")



_FORMAT_KEYS = ("format", "serializer", "node_emitter_key", *STREAM_KEYS)
_LINK_KEYS = ("redis_options", "connect_timeout", "max_queue", "reconnect_delay", "reconnect_max_delay",
              "health_interval")
#: Node's ``heartbeatInterval``, ``heartbeatTimeout`` and ``requestsTimeout`` (in seconds here).
_CLUSTER_KEYS = {"heartbeat_interval": 5.0, "heartbeat_timeout": 10.0, "requests_timeout": 5.0}


def _settings(options: Options) -> tuple[dict[str, Any], dict[str, float], LinkSettings]:
    """Split ``message_queue_options`` into the format, cluster and link settings."""
    extra = dict(options.message_queue_options)
    known = _FORMAT_KEYS + _LINK_KEYS + tuple(_CLUSTER_KEYS) + CLUSTER_LINK_KEYS
    unknown = sorted(set(extra) - set(known))
    if unknown:
        raise TypeError(f"unknown message_queue_options {unknown}; known: {', '.join(known)}")
    fmt = {key: extra.pop(key) for key in _FORMAT_KEYS if key in extra}
    cluster = {key: float(extra.pop(key, default)) for key, default in _CLUSTER_KEYS.items()}
    if not all(value > 0 for value in cluster.values()):
        raise ValueError(f"{', '.join(_CLUSTER_KEYS)} must be positive")
    return fmt, cluster, link_settings(options.message_queue or LinkSettings.url, extra)  # .sharded: redis+cluster://


def _make_link(settings: LinkSettings, stream: StreamSettings | None, on_message: Callable[..., None], uid: str,
               needs_msgpack: bool) -> RedisLink | StreamLink | ShardedLink:
    """The link the settings ask for: a Redis Cluster's (:mod:`.sharded`), one stream (:mod:`.streams`), or pub/sub."""
    if isinstance(settings, ClusterSettings):  # a Redis Cluster (.sharded); Streams are not carried there
        if stream is not None:
            raise ValueError("Redis Streams options need a single Redis (redis://), not a redis+cluster:// URL")
        return ShardedLink(settings, on_message, needs_msgpack)
    if stream is not None:
        return StreamLink(settings, stream, on_message, uid, needs_msgpack=needs_msgpack)
    return RedisLink(settings, on_message, needs_msgpack=needs_msgpack)


class RedisAdapter(MemoryAdapter):
    """Emits, rooms, ``call()`` and socket operations across processes, over Redis pub/sub.

    ::

        socketio = SocketIO(message_queue='redis://localhost:6379/0')
        socketio = SocketIO(message_queue='redis://localhost:6379/0', channel='socketio',
                            message_queue_options={'format': 'python-socketio'})

    Built from the server's :class:`~tornado_sio.options.Options`:
    ``message_queue`` (the URL), ``channel`` (default ``'tornado-sio'``, or
    ``'socketio'`` in the python-socketio format), ``write_only`` (publish only;
    it still gets the answers to its own ``callback=``/``call()`` in the native
    format), ``ack_timeout``, and ``message_queue_options``: ``format`` (``'native'``,
    ``'python-socketio'``, ``'flask-socketio'``; ``'node'``: :class:`~.nodeadapter.NodeRedisAdapter`),
    ``serializer`` (``'json'``/``'msgpack'`` for what it publishes), ``node_emitter_key``
    (also read Node's channels under that key and answer Node's requests), and the
    :class:`~.link.LinkSettings` (``redis_options``, ``connect_timeout``,
    ``max_queue``, ``reconnect_delay``, ``reconnect_max_delay``, ``health_interval``).
    """

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        fmt, cluster_settings, settings = _settings(options)
        fmt_name = fmt.get("format", "native")
        self.uid = uuid.uuid4().hex
        self.codec = make_codec(fmt_name, options.channel or DEFAULT_CHANNEL.get(fmt_name, ""), self.uid,
                                fmt.get("serializer", "json"))
        self.channel = self.codec.channel
        self.format = self.codec.format
        self.write_only = options.write_only
        node_key = fmt.get("node_emitter_key")
        if node_key is not None and (node_key == self.channel or not node_key):
            raise ValueError("node_emitter_key must be non-empty and differ from the channel")
        self.node = (NodeSide(self, node_key, False, cluster_settings["requests_timeout"])
                     if node_key is not None and not self.write_only else None)
        needs_msgpack = self.node is not None or self.codec.serializer == "msgpack"
        stream = stream_settings(fmt, self.codec, self.node is not None, options.connection_state_recovery)
        self.link = _make_link(settings, stream, self._on_message, self.uid, needs_msgpack)
        #: Connection state recovery across processes (Streams transport, :mod:`.streams`), or None.
        self.sessions = StreamSessions.of(self.link, self.codec, stream, options.connection_state_recovery)
        self.acks = PendingAcks()
        #: Heartbeats, cluster requests and their answers (see :mod:`.cluster`).
        self.cluster = Cluster(self.codec if isinstance(self.codec, NativeCodec) else None, self.uid,
                               self._publish, cluster_settings, announce=not self.write_only)
        self._warn = RateLimitedLog(log)
        self._starting: asyncio.Future[None] | None = None
        self._stopped = False
        for channel, kind in self.codec.fixed_channels(self.write_only):
            self.link.want(channel, kind, True)

    def __repr__(self) -> str:
        return (f"<RedisAdapter {redact_url(self.link.settings.url)} channel={self.channel!r} format={self.format}"
                f"{' write-only' if self.write_only else ''} {'connected' if self.connected else 'not connected'}>")

    # -- state -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while Redis is reachable and this process is subscribed."""
        return self.link.connected

    @property
    def dropped(self) -> int:
        """Outgoing messages dropped so far (Redis down, queue full)."""
        return self.link.dropped

    async def start(self) -> None:
        """Connect to Redis and subscribe; raise :class:`~tornado_sio.MessageQueueError` if it cannot.

        Safe to call more than once and concurrently: every caller waits for
        the same attempt; after a failure the next call tries again.
        """
        self._stopped = False
        starting = self._starting
        if starting is None or (starting.done() and (starting.cancelled() or starting.exception() is not None)):
            starting = self._starting = self._begin()  # the first attempt, or a new one after a failure
        await asyncio.shield(starting)

    def _begin(self, unattended: bool = False) -> asyncio.Future[None]:
        """Start the link in a task; an *unattended* start (nobody awaits it) logs its failure."""
        task = asyncio.ensure_future(self.link.start())
        task.add_done_callback(functools.partial(self._started, unattended))
        return task

    def _started(self, unattended: bool, task: asyncio.Future[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            log.info("message queue: connected to Redis at %s (channel %r, %s format%s)", self.link.where,
                     self.channel, self.format, ", write-only" if self.write_only else "")
            if not self._stopped:
                self.cluster.heartbeat(initial=True)
        elif unattended:
            log.error("message queue: could not start: %s", describe(exc))

    async def stop(self) -> None:
        """Flush what is queued (bounded), fail waiting ``call()`` s, close the connections."""
        self._stopped = True
        self._starting = None
        self.cluster.stop("the message queue adapter stopped")  # its goodbye goes out with the flush
        await self.link.stop()
        self.acks.close("the message queue adapter stopped")

    async def server_count(self) -> int:
        """This process plus the others heard from within ``heartbeat_timeout`` (1 in python-socketio's format)."""
        return 1 + self.cluster.others()

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until everything queued so far has gone to Redis."""
        return await self.link.flush(timeout)

    async def sync(self, timeout: float = 5.0) -> bool:
        """Wait until the subscriptions for the current local rooms are active on Redis.

        A join takes effect across the cluster one Redis round trip after it
        happens; await this (e.g. in an async ``join`` handler before
        answering) when another process may emit to the room right away.
        Returns False if Redis is not connected or did not answer in time.
        """
        return await self.link.sync(timeout)

    def _publish(self, item: Item) -> None:
        self.link.publish(*item)
        if not self.link.started and not self._stopped and self._starting is None:
            self._autostart()

    def _autostart(self) -> None:
        """Published before :meth:`start`: start in the background (once)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the message waits in the queue for start()
        log.info("message queue: publishing before start(); starting the adapter now")
        self._starting = self._begin(unattended=True)

    # -- following local membership ------------------------------------------------

    def _follow(self, which: str, on: bool, *args: str) -> None:
        """Want (*on*) or release the channels ``codec.<which>(*args)`` and the Node side's name."""
        if not self.write_only:
            for side in (self.codec, self.node) if self.node is not None else (self.codec,):
                for channel, kind in getattr(side, which)(*args):
                    self.link.want(channel, kind, on)

    def namespace_opened(self, namespace: str) -> None:
        self._follow("namespace_channels", True, namespace)

    def namespace_closed(self, namespace: str) -> None:
        self._follow("namespace_channels", False, namespace)

    def room_opened(self, namespace: str, room: str) -> None:
        self._follow("room_channels", True, namespace, room)

    def room_closed(self, namespace: str, room: str) -> None:
        self._follow("room_channels", False, namespace, room)

    # -- delivery --------------------------------------------------------------------

    def _stays_here(self, opts: BroadcastOptions) -> bool:
        """Whether *opts* cannot select a socket of another process: ``local``, or one local sid."""
        if opts.local:
            return True
        if len(opts.rooms) != 1:
            return False
        (room,) = opts.rooms
        return self.get_socket(room, opts.namespace) is not None

    @staticmethod
    def _encode(packet: SIOPacket) -> EncodedEvent:
        if packet.type not in (SIOType.EVENT, SIOType.BINARY_EVENT) or not isinstance(packet.data, list):
            raise ValueError(f"only events travel across processes, not {SIOType(packet.type).name}")
        return encode_event(packet.namespace, packet.data)

    def broadcast(self, packet: SIOPacket, opts: BroadcastOptions) -> None:
        """Deliver to the local recipients now (encoded once); publish once for the others."""
        event = self._encode(packet)  # raises EncodeError before anything is sent
        if self.sessions is not None and not opts.local and not opts.volatile:  # delivered by the stream reader
            self.sessions.record(self.codec.emit(event, opts), self.broadcast, packet, opts)
            return
        prepared = Prepared(event.text, event.attachments) if self.serializer.text else self.prepare(packet)  # msgpack
        self.deliver(prepared, self.recipients(opts), opts)
        if not self._stays_here(opts):
            self._publish(self.codec.emit(event, opts))

    def broadcast_with_ack(self, packet: SIOPacket, opts: BroadcastOptions, on_ack: AckCallback,
                           timeout: float | None, on_count: Callable[[int], None] | None = None) -> None:
        """Like :meth:`broadcast`; each recipient's answer, from any process, goes to *on_ack*.

        With *on_count*, every process (this one first) tells how many sockets it
        sent the event to; with ``opts.local`` only this one (as Node). One sid of
        this process is not published: *on_count* gets this count, then 0 per other process.
        """
        event = self._encode(packet)
        remote = not self._stays_here(opts)
        if remote and not self.codec.native:
            if self.write_only:
                raise RuntimeError("callbacks need a subscribed process: not available in write-only mode "
                                   "with the python-socketio format")
            if on_count is not None:
                raise NotImplementedError("counting the recipients of a broadcast across processes needs the "
                                          "native message queue format")
        super().broadcast_with_ack(packet, opts, on_ack, timeout, on_count)
        if not remote:
            if on_count is not None and not opts.local:
                for _ in range(self.cluster.others()):
                    on_count(0)
            return
        wait = timeout or self.options.ack_timeout
        ack_id = self.acks.add_callback(on_ack, wait or 3600.0, on_count)
        request = AckRequest(self.uid, ack_id, wait, count=on_count is not None)
        self._publish(self.codec.emit(event, opts, request))

    async def call(self, packet: SIOPacket, sid: str, timeout: float | None) -> list[Any]:
        """Send *packet* to socket *sid* of any process and return its ack arguments.

        A sid that no process holds raises :class:`~tornado_sio.DisconnectedError`
        at once in the native format (Redis says nobody is subscribed to it),
        after *timeout* (:class:`~tornado_sio.AckTimeout`) in python-socketio's.
        """
        if self.get_socket(sid, packet.namespace) is not None or (self.write_only and not self.codec.native):
            return await super().call(packet, sid, timeout)
        if not self.link.connected:
            raise DisconnectedError(f"no client {sid} in namespace {packet.namespace} in this process, "
                                    "and the message queue is not connected")
        event = self._encode(packet)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        ack_id, future = self.acks.add_future()
        try:
            opts = BroadcastOptions(namespace=packet.namespace, rooms=frozenset((sid,)))
            counted = self.link.publish_counted(*self.codec.emit(event, opts, AckRequest(self.uid, ack_id, timeout)))
            try:
                receivers = await asyncio.wait_for(counted, timeout)
            except MessageQueueError as exc:
                raise DisconnectedError(f"cannot reach client {sid}: {exc}") from None
            if receivers == 0 and self.codec.native:
                raise DisconnectedError(f"no client {sid} in namespace {packet.namespace} in any process")
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            return await asyncio.wait_for(future, remaining)
        except asyncio.TimeoutError:
            raise AckTimeout(f"client {sid} did not acknowledge {event.data[0]!r} within {timeout}s") from None
        finally:
            self.acks.discard(ack_id)

    # -- operations on selected sockets -------------------------------------------------

    def _sockets_op(self, op: SocketsOp) -> list[Item]:
        """What to publish for *op* (nothing when it stays here); raises before anything is done."""
        return [] if self._stays_here(op.opts) else self.codec.sockets(op)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = tuple(rooms)
        items = self._sockets_op(SocketsOp("add", opts, rooms))
        super().add_sockets(opts, rooms)
        for item in items:
            self._publish(item)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = tuple(rooms)
        items = self._sockets_op(SocketsOp("del", opts, rooms))
        super().del_sockets(opts, rooms)
        for item in items:
            self._publish(item)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        items = self._sockets_op(SocketsOp("disconnect", opts, close=close))
        super().disconnect_sockets(opts, close)
        for item in items:
            self._publish(item)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketDetails]:
        """The sockets *opts* selects on every process; this process's only with ``opts.local``.

        Every other known process (:meth:`server_count`) must answer within
        ``requests_timeout``, or :class:`~tornado_sio.AckTimeout` is raised, as
        Node's ``fetchSockets`` rejects.
        """
        local = await super().fetch_sockets(opts)
        if opts.local:
            return local
        return local + await self.cluster.fetch(opts)

    def server_side_emit(self, namespace: str, data: list[Any],
                         on_reply: Callable[[list[Any]], None] | None = None) -> None:
        """Send ``[event, *args]`` to the other processes' :meth:`on_server_event` handler.

        With *on_reply*, each handler's answer goes to it for ``requests_timeout``
        seconds; the caller expects :meth:`server_count` ``- 1`` of them.
        """
        self.cluster.server_side_emit(namespace, data, on_reply)

    def persist_session(self, session: dict[str, Any]) -> None:
        """Keep a disconnected socket's state in Redis (:class:`~.streams.StreamSessions`)."""
        kept_sessions(self.sessions, "persist_session").persist(session)

    async def restore_session(self, pid: str, offset: str) -> dict[str, Any] | None:
        """The state kept for *pid* with the events missed after *offset*, or None (:mod:`.streams`)."""
        return await kept_sessions(self.sessions, "restore_session").restore(pid, offset)

    # -- incoming ---------------------------------------------------------------------

    def _on_message(self, kind: str, channel: bytes, raw: bytes, offset: str | None = None) -> None:
        """One message on a wanted channel (*offset*: a recorded event's; the link logs what this raises)."""
        try:
            message: Message | None
            if kind.startswith("node") and self.node is not None:  # Node's adapter or emitter (.nodecluster)
                message = self.node.handle(kind, channel, raw)
            else:  # "own": this process's recorded event, back from the stream with its offset
                message = self.codec.decode(raw, keep_own=kind == "own")
        except Unsupported as why:
            log.debug("message queue: %s; ignored", why)
            return
        except Ignored as why:
            self._warn.warning(f"ignored:{why}", "message queue: ignored a message on %r: %s",
                               channel.decode("utf-8", "replace"), why)
            return
        if isinstance(message, Ack):
            self.acks.resolve(message)
        elif isinstance(message, Response):
            if message.kind == "count":
                self.acks.count(message)
            else:
                self.cluster.requests.resolve(message)
        elif isinstance(message, Heartbeat):
            self.cluster.heard(message)
        elif self.write_only or message is None:
            return  # it only publishes: requests and operations are for the others
        elif isinstance(message, Emit):
            self._deliver(message, offset)
        elif isinstance(message, SocketsOp):
            self._apply(message)
        else:
            self.cluster.answer(message, self._details, self.server_event_handler)

    def _details(self, opts: BroadcastOptions) -> list[SocketDetails]:
        return [socket.details() for socket in self.recipients(opts)]

    def _apply(self, op: SocketsOp) -> None:
        """An operation from another process, on the sockets it selects here."""
        if op.kind == "add":
            super().add_sockets(op.opts, op.rooms)
        elif op.kind == "del":
            super().del_sockets(op.opts, op.rooms)
        else:
            super().disconnect_sockets(op.opts, op.close)

    def _deliver(self, message: Emit, offset: str | None = None) -> None:
        """An event from another process (or a recorded one, with its *offset*), to the local sockets it selects."""
        message = stamp(message, offset)
        recipients = list(self.recipients(message.opts))
        if not recipients:
            self.cluster.count(message.ack, 0)
            return
        ns = message.opts.namespace
        if message.ack is None and self.serializer.text:  # the JSON body is sent as is
            prepared = Prepared(event_text(ns, message.body, len(message.attachments)), message.attachments)
            self.deliver(prepared, recipients, message.opts)
            return
        # each recipient needs its own ack id (or, msgpack, the packet its own encoding)
        try:
            data = reconstruct(jsonutil.loads(message.body, max_depth=MAX_DEPTH), list(message.attachments))
            if message.ack is None:
                self.deliver(self.prepare(SIOPacket(SIOType.EVENT, ns, data)), recipients, message.opts)
                return
        except ValueError as exc:  # ProtocolError and EncodeError are ValueErrors
            self._warn.warning("ignored:body", "message queue: ignored an emit with an undecodable body: %s", exc)
            return
        request = message.ack
        timeout = request.timeout or self.options.ack_timeout
        loop = asyncio.get_running_loop()
        futures = []
        for socket in recipients:
            future: asyncio.Future[list[Any]] = loop.create_future()
            try:
                socket.send_with_ack(SIOPacket(SIOType.EVENT, ns, data), future, timeout)
            except TornadoSIOError as exc:
                log.warning("message queue: %s; remote ack request not delivered", exc)
                continue
            futures.append((socket.sid, future))
        self.cluster.count(request, len(futures))  # published before any answer: it arrives first
        for sid, future in futures:
            future.add_done_callback(functools.partial(self._answer, request, sid))

    def _answer(self, request: AckRequest, sid: str, future: asyncio.Future[list[Any]]) -> None:
        """A local socket answered (or left) a remote ack request: tell the asking process."""
        if future.cancelled():  # expired here: the asking process times out on its own
            return
        exc = future.exception()
        args = None if exc is not None else future.result()
        try:
            item = self.codec.ack(request, sid, args, "disconnected" if exc is not None else None)
        except Exception as why:  # noqa: BLE001 - whatever the serializer refuses: this answer is lost, say so
            log.warning("message queue: could not forward an ack from %s: %s", sid, describe(why))
            return
        if item is not None:
            self._publish(item)

