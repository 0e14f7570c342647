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
import itertools
import logging
import uuid
from collections.abc import Iterable
from typing import Any

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
from .link import LinkSettings, RateLimitedLog, RedisLink, describe
from .wire import (
    DEFAULT_CHANNEL,
    MAX_DEPTH,
    Ack,
    AckRequest,
    Emit,
    EncodedEvent,
    Ignored,
    Item,
    Message,
    NodeCodec,
    SocketsOp,
    Unsupported,
    encode_event,
    make_codec,
    redact_url,
)

__all__ = ["PendingAcks", "RedisAdapter"]

log = logging.getLogger("tornado_sio.redis")

_LATER = "arrives with the Node server API issue"


class PendingAcks:
    """Acks this process waits for from other processes: broadcast callbacks and ``call()`` futures.

    A callback stays until its lifetime ends (several recipients may answer);
    a future until it is answered or discarded.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._entries: dict[int, AckCallback | asyncio.Future[list[Any]]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add_callback(self, on_ack: AckCallback, lifetime: float) -> int:
        """Register *on_ack* for *lifetime* seconds; return its id."""
        ack_id = next(self._ids)
        self._entries[ack_id] = on_ack
        self._timers[ack_id] = asyncio.get_running_loop().call_later(lifetime, self.discard, ack_id)
        return ack_id

    def add_future(self) -> tuple[int, asyncio.Future[list[Any]]]:
        """Register a future for one answer; return its id and the future."""
        ack_id = next(self._ids)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._entries[ack_id] = future
        return ack_id, future

    def discard(self, ack_id: int) -> None:
        """Stop waiting for *ack_id*."""
        self._entries.pop(ack_id, None)
        timer = self._timers.pop(ack_id, None)
        if timer is not None:
            timer.cancel()

    def resolve(self, answer: Ack) -> None:
        """An answer arrived: fire the callback or settle the future (an unknown id is ignored)."""
        ack_id = answer.ack_id
        entry = self._entries.get(ack_id) if type(ack_id) is int else None
        if entry is None:
            log.debug("message queue: ack %r matches nothing pending", ack_id)
            return
        if isinstance(entry, asyncio.Future):
            self.discard(ack_id)
            if entry.done():
                return
            if answer.error is not None:
                entry.set_exception(DisconnectedError("the client disconnected before answering"))
            else:
                entry.set_result(answer.args)
        elif answer.error is None:
            entry(answer.sid if isinstance(answer.sid, str) else "", answer.args)

    def close(self, reason: str) -> None:
        """Forget everything; waiting futures fail with DisconnectedError(*reason*)."""
        entries, self._entries = self._entries, {}
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for entry in entries.values():
            if isinstance(entry, asyncio.Future) and not entry.done():
                entry.set_exception(DisconnectedError(reason))


_FORMAT_KEYS = ("format", "serializer", "node_emitter_key")
_LINK_KEYS = ("redis_options", "connect_timeout", "max_queue", "reconnect_delay", "reconnect_max_delay",
              "health_interval")


def _settings(options: Options) -> tuple[dict[str, Any], LinkSettings]:
    """Split ``message_queue_options`` into the format settings and the link settings."""
    extra = dict(options.message_queue_options)
    unknown = sorted(set(extra) - set(_FORMAT_KEYS) - set(_LINK_KEYS))
    if unknown:
        raise TypeError(f"unknown message_queue_options {unknown}; known: {', '.join(_FORMAT_KEYS + _LINK_KEYS)}")
    fmt = {key: extra.pop(key) for key in _FORMAT_KEYS if key in extra}
    return fmt, LinkSettings(url=options.message_queue or LinkSettings.url, **extra)


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
    format), ``ack_timeout``, and ``message_queue_options``: ``format``
    (``'native'`` or ``'python-socketio'``), ``serializer`` (``'json'`` or
    ``'msgpack'`` for what it publishes in the native format), ``node_emitter_key``
    (also accept ``@socket.io/redis-emitter`` under that key), and the
    :class:`~.link.LinkSettings` (``redis_options``, ``connect_timeout``,
    ``max_queue``, ``reconnect_delay``, ``reconnect_max_delay``, ``health_interval``).
    """

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        fmt, settings = _settings(options)
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
        self.node = NodeCodec(node_key) if node_key is not None and not self.write_only else None
        self.link = RedisLink(settings, self._on_message,
                              needs_msgpack=self.node is not None or self.codec.serializer == "msgpack")
        self.acks = PendingAcks()
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
        elif unattended:
            log.error("message queue: could not start: %s", describe(exc))

    async def stop(self) -> None:
        """Flush what is queued (bounded), fail waiting ``call()`` s, close the connections."""
        self._stopped = True
        self._starting = None
        await self.link.stop()
        self.acks.close("the message queue adapter stopped")

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

    def _follow(self, channels: list[tuple[bytes, str]], on: bool) -> None:
        for channel, kind in channels:
            self.link.want(channel, kind, on)

    def namespace_opened(self, namespace: str) -> None:
        if not self.write_only:
            self._follow(self.codec.namespace_channels(namespace), True)
            if self.node is not None:
                self._follow(self.node.namespace_channels(namespace), True)

    def namespace_closed(self, namespace: str) -> None:
        if not self.write_only:
            self._follow(self.codec.namespace_channels(namespace), False)
            if self.node is not None:
                self._follow(self.node.namespace_channels(namespace), False)

    def room_opened(self, namespace: str, room: str) -> None:
        if not self.write_only:
            self._follow(self.codec.room_channels(namespace, room), True)
            if self.node is not None:
                self._follow(self.node.room_channels(namespace, room), True)

    def room_closed(self, namespace: str, room: str) -> None:
        if not self.write_only:
            self._follow(self.codec.room_channels(namespace, room), False)
            if self.node is not None:
                self._follow(self.node.room_channels(namespace, room), False)

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
        prepared = Prepared(event.text, event.attachments)
        for socket in self.recipients(opts):
            socket.send(prepared)
        if not self._stays_here(opts):
            self._publish(self.codec.emit(event, opts))

    def broadcast_with_ack(self, packet: SIOPacket, opts: BroadcastOptions, on_ack: AckCallback,
                           timeout: float | None) -> None:
        """Like :meth:`broadcast`; each recipient's answer, from any process, goes to *on_ack*."""
        event = self._encode(packet)
        remote = not self._stays_here(opts)
        if remote and self.write_only and not self.codec.native:
            raise RuntimeError("callbacks need a subscribed process: not available in write-only mode "
                               "with the python-socketio format")
        super().broadcast_with_ack(packet, opts, on_ack, timeout)
        if remote:
            wait = timeout or self.options.ack_timeout
            ack_id = self.acks.add_callback(on_ack, wait or 3600.0)
            self._publish(self.codec.emit(event, opts, AckRequest(self.uid, ack_id, wait)))

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
        """The sockets *opts* selects; this process's only with ``opts.local``."""
        if opts.local:
            return await super().fetch_sockets(opts)
        raise NotImplementedError(f"fetch_sockets() across processes {_LATER}; "
                                  "use BroadcastOptions(local=True) for this process's sockets")

    def server_side_emit(self, namespace: str, data: list[Any]) -> None:
        raise NotImplementedError(f"server_side_emit() across processes {_LATER}")

    # -- incoming ---------------------------------------------------------------------

    def _on_message(self, kind: str, channel: bytes, raw: bytes) -> None:
        """One message on a wanted channel (the link logs what this raises)."""
        try:
            message: Message | None
            if kind == "node" and self.node is not None:
                message = self.node.decode_broadcast(raw)
            elif kind == "node-request" and self.node is not None:
                message = self.node.decode_request(channel, raw)
            else:
                message = self.codec.decode(raw)
        except Unsupported as why:
            log.debug("message queue: %s; ignored", why)
            return
        except Ignored as why:
            self._warn.warning(f"ignored:{why}", "message queue: ignored a message on %r: %s",
                               channel.decode("utf-8", "replace"), why)
            return
        if isinstance(message, Emit):
            self._deliver(message)
        elif isinstance(message, SocketsOp):
            self._apply(message)
        elif isinstance(message, Ack):
            self.acks.resolve(message)

    def _apply(self, op: SocketsOp) -> None:
        """An operation from another process, on the sockets it selects here."""
        if op.kind == "add":
            super().add_sockets(op.opts, op.rooms)
        elif op.kind == "del":
            super().del_sockets(op.opts, op.rooms)
        else:
            super().disconnect_sockets(op.opts, op.close)

    def _deliver(self, message: Emit) -> None:
        """An event from another process, to the local sockets it selects."""
        recipients = list(self.recipients(message.opts))
        if not recipients:
            return
        ns = message.opts.namespace
        if message.ack is None:
            prepared = Prepared(event_text(ns, message.body, len(message.attachments)), message.attachments)
            for socket in recipients:
                socket.send(prepared)
            return
        # each recipient needs its own ack id, so the packet is built per socket
        try:
            data = reconstruct(jsonutil.loads(message.body, max_depth=MAX_DEPTH), list(message.attachments))
        except ValueError as exc:
            self._warn.warning("ignored:body", "message queue: ignored an emit with an undecodable body: %s", exc)
            return
        request = message.ack
        timeout = request.timeout or self.options.ack_timeout
        loop = asyncio.get_running_loop()
        for socket in recipients:
            future: asyncio.Future[list[Any]] = loop.create_future()
            try:
                socket.send_with_ack(SIOPacket(SIOType.EVENT, ns, data), future, timeout)
            except TornadoSIOError as exc:
                log.warning("message queue: %s; remote ack request not delivered", exc)
                continue
            future.add_done_callback(functools.partial(self._answer, request, socket.sid))

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

