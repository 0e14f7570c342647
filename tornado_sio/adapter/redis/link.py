"""The Redis side of the adapter: connections, subscriptions, publishing, health.

:class:`RedisLink` knows nothing of Socket.IO. It keeps two Redis connections
(one publishes, one is subscribed), and

* subscribes to the channels it is told are wanted (:meth:`RedisLink.want`,
  reference counted, applied in batches by one task) and hands every message on
  them to a callback with the kind it was wanted as;
* publishes in order, pipelined, from one task with a bounded queue
  (:class:`Publisher`): a slow Redis makes it drop and count new messages
  rather than grow memory or block the IOLoop;
* checks the subscriber connection with PINGs, notices a lost or silent Redis,
  logs it once, reconnects with exponential backoff, resubscribes, and logs once
  more when it is back;
* watches its own tasks: one that ends other than by :meth:`RedisLink.stop`
  is logged and restarted, so a process never goes silently deaf.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Callable, Generic, Optional, Protocol, TypeVar

from ...exceptions import MessageQueueError
from .wire import redact_url

__all__ = ["LinkSettings", "OnMessage", "OutgoingQueue", "Publisher", "PublishingLink", "RateLimitedLog", "RedisLink",
           "Subscriber", "WantedChannels", "WatchedTasks", "cancel_all", "client_options", "close_quietly", "describe",
           "drained", "is_link_error", "settle", "unreachable_reason"]

log = logging.getLogger("tornado_sio.redis")

#: Called with ``(kind, channel, payload)`` for each message on a wanted channel.
OnMessage = Callable[[str, bytes, bytes], None]

_SUB_CHUNK = 500  # channels per SUBSCRIBE / UNSUBSCRIBE command
_BATCH = 256  # PUBLISH commands per pipeline round trip
_READY = b"tornado-sio-ready"  # PING token confirming a fresh connection's subscriptions
_LINK_ERRORS: tuple[type, ...] = (ConnectionError, OSError, asyncio.TimeoutError, TimeoutError)


def describe(exc: BaseException) -> str:
    """An exception as a reason in a log line: its text, or its type when it has none.

    (An exception object is always true, so ``exc or name`` never falls back:
    a bare ``TimeoutError`` used to leave "cannot reach Redis at URL:" with no reason.)
    """
    return str(exc) or type(exc).__name__


def is_link_error(exc: BaseException) -> bool:
    """Whether *exc* means the connection to Redis is gone (rather than one command failed)."""
    if isinstance(exc, _LINK_ERRORS):
        return True
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is there whenever a link runs
        return False
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError))


@dataclasses.dataclass
class LinkSettings:
    """How to reach Redis and how hard to try (``message_queue_options`` of the server).

    :param url: ``redis://[:password@]host:port/db`` (``rediss://`` for TLS,
        ``unix:///path?db=0``).
    :param redis_options: extra keyword arguments for ``redis.asyncio.Redis.from_url``.
    :param connect_timeout: seconds for connecting and for each Redis command.
    :param max_queue: outgoing messages waiting for Redis before new ones are dropped.
    :param reconnect_delay: first delay between reconnection attempts; doubles up
        to *reconnect_max_delay*.
    :param health_interval: seconds between PINGs on the subscriber connection;
        no answer for three intervals counts as a lost connection.
    """

    url: str = "redis://localhost:6379/0"
    redis_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    connect_timeout: float = 5.0
    max_queue: int = 10000
    reconnect_delay: float = 0.2
    reconnect_max_delay: float = 5.0
    health_interval: float = 5.0

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "reconnect_delay", "reconnect_max_delay", "health_interval"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be positive")
        if int(self.max_queue) < 1:
            raise ValueError("max_queue must be at least 1")
        self.redis_options = dict(self.redis_options or {})


class RateLimitedLog:
    """One log line per kind of problem, then at most one a minute with a count."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: Any) -> None:
        """Log *msg* at WARNING unless *key* was reported less than a minute ago (then DEBUG)."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            self.logger.debug(msg, *args)
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += " (%d more like it since the last report)"
            args = (*args, suppressed)
        self.logger.warning(msg, *args)


def settle(futures: Iterable[asyncio.Future[Any]], exc: BaseException | None = None,
           result: Any = None) -> None:
    """Fail each pending future of *futures* with *exc*, or give it *result*; done ones (and None) are skipped."""
    for future in futures:
        if future is not None and not future.done():
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)


async def cancel_all(tasks: Sequence[asyncio.Future[Any]], retry: float = 0.05) -> None:
    """Cancel *tasks* and wait until every one has ended; their outcomes are discarded.

    A task that swallows its cancellation (redis-py can, inside a command, and
    ``asyncio.wait_for`` before Python 3.12 when its inner future finishes at the
    same moment) is cancelled again every *retry* seconds, so stopping never
    waits for such a task's own timers (it used to take 15 s).
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: its failure was reported where it happened


def client_options(settings: LinkSettings, where: str, needs_msgpack: bool = False,
                   extra: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """``redis.asyncio`` and the keyword arguments of ``Redis.from_url`` for *settings*.

    Raises :class:`~tornado_sio.MessageQueueError` when the redis package (or
    msgpack, when *needs_msgpack*) is missing. Commands time out after
    ``connect_timeout`` and are never retried here: the link notices the
    failure, logs it once and reconnects on its own schedule. *extra* (a
    cluster URL's credentials) comes before ``redis_options``, which may
    override it.
    """
    try:
        import redis.asyncio as redis_asyncio  # type: ignore[import-not-found,unused-ignore]
        from redis.asyncio.retry import Retry  # type: ignore[import-not-found,unused-ignore]
        from redis.backoff import NoBackoff  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise MessageQueueError(f"message_queue={where!r} needs the redis package: "
                                "pip install 'tornado-sio[redis]'") from None
    if needs_msgpack:
        from .wire import require_msgpack

        require_msgpack()
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout,
        "socket_timeout": settings.connect_timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        **(extra or {}),
    }
    options.update(settings.redis_options)
    options["decode_responses"] = False  # channels and payloads are bytes here
    return redis_asyncio, options


def unreachable_reason(exc: BaseException, timeout: float) -> str:
    """Why :meth:`start` could not reach Redis, for its error: *exc*'s text, and for a bare
    timeout how long it waited (a bare ``TimeoutError`` says nothing on its own)."""
    reason = describe(exc)
    if isinstance(exc, asyncio.TimeoutError) and not str(exc):
        reason = f"no answer within {timeout:g}s ({reason})"
    return reason


async def close_quietly(client: Any, what: str = "a Redis client") -> None:
    """Close a ``redis.asyncio`` client or pub/sub connection (*what*, for the log), best
    effort: bounded, and a failure only logged at DEBUG (it is being dropped anyway)."""
    if client is None:
        return
    try:
        await asyncio.wait_for(client.aclose(), 2)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - best effort on the way out
        log.debug("message queue: closing %s failed: %s", what, describe(exc))


async def drained(busy: Callable[[], bool], alive: Callable[[], bool], timeout: float) -> bool:
    """Wait (bounded by *timeout*) while *busy()* and *alive()*; whether it is no longer busy.

    A link's ``flush``: *busy* says something is still queued or on the wire.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while busy() and alive() and loop.time() < deadline:
        await asyncio.sleep(0.005)
    return not busy()


class WatchedTasks:
    """A link's background tasks by name: one that ends other than by the link stopping is
    logged and restarted, so a process never goes silently deaf.

    :param alive: whether the link runs (started and not stopping); a task ending
        otherwise is its cancellation, and nothing is restarted.
    :param on_failure: told ``(name, reason)`` of a task that ended unexpectedly,
        before it is restarted; it may return another factory to restart it with.
    """

    def __init__(self, alive: Callable[[], bool],
                 on_failure: Callable[[str, str], Optional[Callable[[], Awaitable[Any]]]]) -> None:
        self.alive = alive
        self.on_failure = on_failure
        #: The running tasks by name (the live dict).
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def spawn(self, name: str, factory: Callable[[], Awaitable[Any]]) -> None:
        """Run *factory()* as task *name*, watched."""
        task = asyncio.ensure_future(factory())
        self.tasks[name] = task
        task.add_done_callback(functools.partial(self._done, name, factory))

    def _done(self, name: str, factory: Callable[[], Awaitable[Any]], task: asyncio.Task[Any]) -> None:
        if not self.alive() or self.tasks.get(name) is not task:
            return
        exc = None if task.cancelled() else task.exception()
        reason = "cancelled" if task.cancelled() else repr(exc) if exc is not None else "returned"
        log.error("message queue: the %s task stopped unexpectedly (%s); restarting it", name, reason,
                  exc_info=exc)
        del self.tasks[name]
        factory = self.on_failure(name, reason) or factory

        def restart() -> None:
            if self.alive() and name not in self.tasks:
                self.spawn(name, factory)

        asyncio.get_running_loop().call_later(0.1, restart)

    async def cancel(self) -> None:
        """Cancel every task and wait until each has ended (the link stops)."""
        tasks = list(self.tasks.values())
        self.tasks.clear()
        await cancel_all(tasks)



# ---------------------------------------------------------------- publishing

_Outgoing = tuple[bytes, bytes, Optional["asyncio.Future[Any]"]]


class PublishingLink(Protocol):
    """What a :class:`Publisher` needs of its link (:class:`RedisLink`, or the Streams transport's)."""

    settings: LinkSettings
    connected: bool

    def publisher_client(self) -> Any:
        """The ``redis.asyncio.Redis`` that sends."""

    def link_down(self, exc: BaseException) -> None:
        """Redis was lost (log once, reconnect)."""


_Item = TypeVar("_Item")


class OutgoingQueue(Generic[_Item]):
    """The bounded queue in front of a publishing task (:class:`Publisher`, the cluster's
    publisher): a slow Redis makes it drop and count new messages rather than grow memory."""

    def __init__(self, max_queue: int, warn: RateLimitedLog) -> None:
        self.max_queue = max_queue
        self.warn = warn
        self.queue: deque[_Item] = deque()
        self.ready: asyncio.Event | None = None
        #: Messages handed to Redis and not yet answered.
        self.inflight = 0
        #: Outgoing messages dropped (Redis down, queue full) since the start.
        self.dropped = 0

    def bind(self) -> None:
        """Create the loop-bound parts (on start, inside the loop)."""
        self.ready = asyncio.Event()
        if self.queue:
            self.ready.set()

    def item(self, channel: bytes, payload: bytes, future: asyncio.Future[Any] | None) -> _Item:
        """What the queue holds for one message."""
        raise NotImplementedError

    def busy(self) -> bool:
        """Whether a message is still queued or on the wire (what ``flush`` waits for)."""
        return bool(self.queue or self.inflight)

    def enqueue(self, channel: bytes, payload: bytes, future: asyncio.Future[Any] | None,
                refuse: str | None) -> None:
        """Queue a message; with *refuse* (why it cannot go) drop it and fail *future*."""
        if refuse is None and len(self.queue) >= self.max_queue:
            self.warn.warning("queue-full", "message queue: %d messages waiting for Redis (max_queue); "
                              "dropping new ones", len(self.queue))
            refuse = "message queue full"
        if refuse is not None:
            self.dropped += 1
            if future is not None:
                future.set_exception(MessageQueueError(refuse))
            return
        self.queue.append(self.item(channel, payload, future))
        if self.ready is not None:
            self.ready.set()


class Publisher(OutgoingQueue[_Outgoing]):
    """Publishes what is queued, in order, pipelined, from one task; the queue is bounded."""

    def item(self, channel: bytes, payload: bytes, future: asyncio.Future[Any] | None) -> _Outgoing:
        """``(channel, payload, future)``."""
        return (channel, payload, future)

    def fail_all(self, reason: str) -> None:
        """Drop everything queued (the link is down or stopping)."""
        self.dropped += len(self.queue)
        futures = [future for _, _, future in self.queue if future is not None]
        self.queue.clear()
        settle(futures, MessageQueueError(reason))

    def command(self, pipe: Any, channel: bytes, payload: bytes, future: asyncio.Future[Any] | None) -> None:
        """Add the Redis command that sends one message to *pipe* (PUBLISH; the Streams
        transport's publisher appends to the stream instead)."""
        pipe.publish(channel, payload)

    @staticmethod
    def result(value: Any) -> Any:
        """What a sent message's future gets from the command's reply (PUBLISH: the receivers)."""
        return int(value)

    async def run(self, link: PublishingLink) -> None:
        """The publisher task: until cancelled, send queued messages in batches."""
        assert self.ready is not None
        while True:
            if not self.queue:
                self.ready.clear()
                await self.ready.wait()
                continue
            batch = [self.queue.popleft() for _ in range(min(_BATCH, len(self.queue)))]
            if not link.connected:
                self.dropped += len(batch)
                settle([f for _, _, f in batch if f is not None], MessageQueueError("message queue not connected"))
                continue
            self.inflight = len(batch)
            try:
                await self._send(link, batch)
            finally:
                self.inflight = 0

    async def _send(self, link: PublishingLink, batch: list[_Outgoing]) -> None:
        try:
            pipe = link.publisher_client().pipeline(transaction=False)
            for channel, payload, future in batch:
                self.command(pipe, channel, payload, future)
            results = await asyncio.wait_for(pipe.execute(raise_on_error=False), link.settings.connect_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged below (a lost link: once, by link_down)
            self.dropped += len(batch)
            settle([f for _, _, f in batch if f is not None], MessageQueueError(f"publish failed: {describe(exc)}"))
            if is_link_error(exc):
                link.link_down(exc)
            else:
                log.error("message queue: publishing %d messages failed: %s", len(batch), describe(exc))
            return
        for (_, _, future), result in zip(batch, results):
            if isinstance(result, Exception):
                self.dropped += 1
                self.warn.warning("publish-error", "message queue: Redis refused a PUBLISH: %s", result)
                if future is not None and not future.done():
                    future.set_exception(MessageQueueError(f"publish failed: {result}"))
            elif future is not None and not future.done():
                future.set_result(self.result(result))


# ---------------------------------------------------------------- subscribing


class WantedChannels:
    """The channels a link is asked to follow (reference counted, each with the kind it was
    wanted as), the event that wakes the task keeping them, and the ``sync()`` callers
    waiting for them; :class:`Subscriber` and the cluster's subscriber build on it."""

    def __init__(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        #: channel -> [kind, reference count]
        self.wanted: dict[bytes, list[Any]] = {}
        self.changed: asyncio.Event | None = None
        self.sync_waiters: list[asyncio.Future[bool]] = []

    def bind(self) -> None:
        """Create the loop-bound parts (on start, inside the loop)."""
        self.changed = asyncio.Event()

    def wake(self) -> None:
        """Have the task look again now."""
        if self.changed is not None:
            self.changed.set()

    def want(self, channel: bytes, kind: str, on: bool) -> None:
        """One more (*on*) or one fewer reason to be subscribed to *channel*."""
        entry = self.wanted.get(channel)
        if on:
            if entry is None:
                self.wanted[channel] = [kind, 1]
            else:
                entry[1] += 1
        elif entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self.wanted[channel]
        self.wake()

    def dispatch(self, channel: bytes, data: bytes) -> None:
        """Hand one message to the callback; a failure there is logged, never fatal."""
        entry = self.wanted.get(channel)
        if entry is None:
            log.debug("message queue: message on %r, no longer subscribed; ignored", channel)
            return
        try:
            self.on_message(entry[0], channel, data)
        except Exception:
            log.exception("message queue: handling a message on %r failed", channel.decode("utf-8", "replace"))

    def unfollowed(self) -> bool:
        """Whether no channel is wanted nor subscribed (then there is nothing to sync)."""
        raise NotImplementedError

    async def wait_synced(self, timeout: float) -> bool:
        """Wait until the subscriptions wanted now are active on Redis (a PING answered after them)."""
        if self.unfollowed():
            return True  # nothing to subscribe to (python-socketio format, write-only)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.sync_waiters.append(future)
        self.wake()
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return False


class Subscriber(WantedChannels):
    """Wanted channels (reference counted) and the pub/sub connection that follows them.

    :meth:`want` only records; one task (:meth:`keep`) applies the changes in
    batches and PINGs for :meth:`wait_synced` and for health; another
    (:meth:`read`) hands each message to *on_message*.
    """

    def __init__(self, on_message: OnMessage, settings: LinkSettings) -> None:
        super().__init__(on_message)
        self.settings = settings
        #: Channels subscribed on the current connection.
        self.subscribed: set[bytes] = set()
        self.ping_waiters: dict[bytes, list[asyncio.Future[bool]]] = {}
        self.ping_seq = itertools.count(1)
        self.last_pong = 0.0

    def unfollowed(self) -> bool:
        """Nothing wanted, nothing subscribed on the current connection."""
        return not self.wanted and not self.subscribed

    async def open(self, client: Any) -> Any:
        """A new pub/sub connection subscribed to every wanted channel, confirmed by a PING."""
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            want = list(self.wanted)
            for i in range(0, len(want), _SUB_CHUNK):
                await pubsub.subscribe(*want[i:i + _SUB_CHUNK])
            await pubsub.ping(_READY)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.settings.connect_timeout
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise asyncio.TimeoutError("Redis did not confirm the subscriptions")
                message = await pubsub.get_message(timeout=remaining)
                if message is None:
                    continue
                if message["type"] == "pong" and message["data"] == _READY:
                    break
                if message["type"] == "message":
                    self.dispatch(message["channel"], message["data"])
            self.subscribed = set(want)
            self.last_pong = loop.time()
            return pubsub
        except BaseException:
            await self.close(pubsub)
            raise

    @staticmethod
    async def close(pubsub: Any) -> None:
        """Close a pub/sub connection, best effort (it is being replaced or the link stops)."""
        await close_quietly(pubsub, "a pub/sub connection")

    async def read(self, pubsub: Any) -> None:
        """Until the connection fails: dispatch messages and note PONGs."""
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            if kind == "message":
                self.dispatch(message["channel"], message["data"])
            elif kind == "pong":
                self.last_pong = asyncio.get_running_loop().time()
                settle(self.ping_waiters.pop(message["data"], []), result=True)

    async def keep(self, pubsub: Any, ping: Callable[[], Awaitable[Any]]) -> None:
        """Until the connection fails: apply subscription changes, PING for syncs and health.

        *ping* checks the publisher connection when there is no pub/sub one.
        Raises ConnectionError when Redis stops answering PINGs.
        """
        assert self.changed is not None
        loop = asyncio.get_running_loop()
        interval = self.settings.health_interval
        next_health = loop.time() + interval
        self.last_pong = loop.time()
        while True:
            # not asyncio.wait_for: before Python 3.12 it returns the result instead of
            # raising when the event is set just as the task is cancelled, and this loop
            # then outlived stop() until its health check failed (3 intervals, 15 s)
            timer = loop.call_later(max(0.0, next_health - loop.time()), self.changed.set)
            try:
                await self.changed.wait()
            finally:
                timer.cancel()
            self.changed.clear()
            now = loop.time()
            health = now >= next_health
            if health:
                next_health = now + interval
            if pubsub is None:
                if health:
                    await asyncio.wait_for(ping(), self.settings.connect_timeout)
                continue
            waiters, self.sync_waiters = self.sync_waiters, []
            await self.apply(pubsub)
            if health and now - self.last_pong > 3 * interval:
                raise ConnectionError(f"Redis did not answer a PING for {now - self.last_pong:.1f}s")
            if waiters or health:
                token = b"tornado-sio-%d" % next(self.ping_seq)
                self.ping_waiters[token] = waiters
                await pubsub.ping(token)

    async def apply(self, pubsub: Any) -> None:
        """Subscribe to newly wanted channels and unsubscribe from dropped ones."""
        want = set(self.wanted)
        add = [c for c in want if c not in self.subscribed]
        drop = [c for c in self.subscribed if c not in want]
        for i in range(0, len(add), _SUB_CHUNK):
            chunk = add[i:i + _SUB_CHUNK]
            await pubsub.subscribe(*chunk)
            self.subscribed.update(chunk)
        for i in range(0, len(drop), _SUB_CHUNK):
            chunk = drop[i:i + _SUB_CHUNK]
            await pubsub.unsubscribe(*chunk)
            self.subscribed.difference_update(chunk)

    def end_waiters(self) -> None:
        """Answer False to everybody waiting for a sync (the connection is gone)."""
        waiters, self.sync_waiters = self.sync_waiters, []
        for group in self.ping_waiters.values():
            waiters.extend(group)
        self.ping_waiters.clear()
        settle(waiters, result=False)


# ---------------------------------------------------------------- the link


class RedisLink:
    """Two Redis connections kept alive for one adapter; see the module docstring.

    :param settings: where Redis is and how hard to try.
    :param on_message: called with ``(kind, channel, payload)`` for each message
        on a wanted channel, on the IOLoop; its exceptions are logged.
    :param needs_msgpack: check at :meth:`start` that msgpack is importable.
    """

    def __init__(self, settings: LinkSettings, on_message: OnMessage, needs_msgpack: bool = False) -> None:
        self.settings = settings
        self.where = redact_url(settings.url)
        self.needs_msgpack = needs_msgpack
        self.warn = RateLimitedLog(log)
        self.publisher = Publisher(settings.max_queue, self.warn)
        self.subscriber = Subscriber(on_message, settings)
        #: True while Redis is reachable and this process is subscribed.
        self.connected = False
        #: True between a successful :meth:`start` and :meth:`stop`.
        self.started = False
        self._stopping = False
        self._pub: Any = None
        self._sub: Any = None
        self._watched = WatchedTasks(lambda: self.started and not self._stopping, self._task_failed)
        self._session_tasks: list[asyncio.Future[Any]] = []
        self._link_error: BaseException | None = None
        self._down_since: float | None = None
        self._dropped_at_down = 0

    @property
    def dropped(self) -> int:
        """Outgoing messages dropped so far (Redis down, queue full)."""
        return self.publisher.dropped

    @property
    def tasks(self) -> dict[str, asyncio.Task[Any]]:
        """The running background tasks by name (``publisher``, ``subscriber``); a copy."""
        return dict(self._watched.tasks)

    def publisher_client(self) -> Any:
        """The ``redis.asyncio.Redis`` that publishes (None when not started)."""
        return self._pub

    # -- what the adapter calls ---------------------------------------------

    def want(self, channel: bytes, kind: str, on: bool) -> None:
        """One more (*on*) or one fewer reason to be subscribed to *channel* as *kind*."""
        self.subscriber.want(channel, kind, on)

    def publish(self, channel: bytes, payload: bytes) -> None:
        """Queue a message; dropped (and counted) while Redis is down or the queue is full."""
        self.publisher.enqueue(channel, payload, None, self._refusal())

    def publish_counted(self, channel: bytes, payload: bytes) -> asyncio.Future[int]:
        """Queue a message; the future gets how many subscribers Redis gave it to.

        It fails with :class:`~tornado_sio.MessageQueueError` when the message
        is dropped.
        """
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.publisher.enqueue(channel, payload, future, self._refusal())
        return future

    def _refusal(self) -> str | None:
        if self._stopping or (self.started and not self.connected):
            return "message queue not connected"
        return None

    # -- start / stop --------------------------------------------------------

    async def start(self) -> None:
        """Connect and subscribe; raise :class:`~tornado_sio.MessageQueueError` naming
        the URL and the reason when Redis cannot be reached.

        Returns once subscribed, so what other processes publish from then on arrives.
        """
        if self.started:
            return
        redis_asyncio, options = self._client_options()
        try:
            self._pub = redis_asyncio.Redis.from_url(self.settings.url, **options)
            self._sub = redis_asyncio.Redis.from_url(self.settings.url, **options)
        except Exception as exc:  # noqa: BLE001 - re-raised as MessageQueueError naming the reason
            raise MessageQueueError(f"invalid message queue URL {self.where!r}: {describe(exc)}") from None
        self.publisher.bind()
        self.subscriber.bind()
        self._stopping = False
        timeout = self.settings.connect_timeout
        try:
            await asyncio.wait_for(self._pub.ping(), timeout)
            pubsub = None
            if self.subscriber.wanted:
                pubsub = await asyncio.wait_for(self.subscriber.open(self._sub), timeout * 2)
        except Exception as exc:
            await self._close_clients()
            raise MessageQueueError(f"cannot reach Redis at {self.where}: {unreachable_reason(exc, timeout)}") from exc
        self.started = True
        self.connected = True
        self._watched.spawn("publisher", functools.partial(self.publisher.run, self))
        self._watched.spawn("subscriber", functools.partial(self._supervise, pubsub))

    def _client_options(self) -> tuple[Any, dict[str, Any]]:
        return client_options(self.settings, self.where, self.needs_msgpack)

    async def stop(self) -> None:
        """Flush what is queued (bounded), stop the tasks, close the connections."""
        if not self.started:
            return
        await self.flush(timeout=min(2.0, self.settings.connect_timeout))
        self._stopping = True
        # wait for them to end; what they raise on the way out is their cancellation
        await self._watched.cancel()
        self.subscriber.end_waiters()
        self.publisher.fail_all("message queue stopped")
        await self._close_clients()
        self.connected = False
        self.started = False
        log.info("message queue: stopped (%s)", self.where)

    async def _close_clients(self) -> None:
        for client in (self._pub, self._sub):
            await close_quietly(client)
        self._pub = self._sub = None

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until everything queued so far has gone to Redis."""
        return await drained(self.publisher.busy, lambda: self.connected, timeout)

    async def sync(self, timeout: float = 5.0) -> bool:
        """Wait until the wanted subscriptions are active on Redis; False if not connected or slow."""
        if not self.connected or "subscriber" not in self._watched.tasks:
            return False
        return await self.subscriber.wait_synced(timeout)

    # -- watched tasks ---------------------------------------------------------

    def _task_failed(self, name: str, reason: str) -> Optional[Callable[[], Awaitable[Any]]]:
        """A watched task ended unexpectedly: a subscriber restarts from scratch (reconnecting)."""
        if name == "subscriber":
            self.link_down(RuntimeError(f"subscriber task {reason}"))
            return functools.partial(self._supervise, None)
        self.publisher.inflight = 0
        return None

    # -- connection state ------------------------------------------------------

    def link_down(self, exc: BaseException) -> None:
        """Redis was lost: log once, drop what is queued, make the supervisor reconnect."""
        self._link_error = exc
        for task in self._session_tasks:
            task.cancel()
        if not self.connected:
            return
        self.connected = False
        self._down_since = time.monotonic()
        self._dropped_at_down = self.publisher.dropped
        log.warning("message queue: lost the connection to Redis at %s (%s); local clients keep working, "
                    "messages to and from other processes are dropped until it is back; reconnecting",
                    self.where, describe(exc))
        self.subscriber.end_waiters()
        self.publisher.fail_all("message queue not connected")

    def _link_up(self) -> None:
        if self.connected:
            return
        self.connected = True
        down = time.monotonic() - self._down_since if self._down_since is not None else 0.0
        log.warning("message queue: reconnected to Redis at %s after %.1fs; %d outgoing messages were dropped "
                    "meanwhile", self.where, down, self.publisher.dropped - self._dropped_at_down)
        self._down_since = None

    # -- the subscriber: supervisor, one session per connection --------------------

    async def _supervise(self, pubsub: Any) -> None:
        """Keep a subscribed connection: reconnect with backoff whenever it fails."""
        need_pubsub = bool(self.subscriber.wanted)
        delay = self.settings.reconnect_delay
        fresh = pubsub is not None or not need_pubsub
        while True:
            if not fresh:
                try:
                    await asyncio.wait_for(self._pub.ping(), self.settings.connect_timeout)
                    if need_pubsub:
                        pubsub = await asyncio.wait_for(self.subscriber.open(self._sub),
                                                        self.settings.connect_timeout * 2)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the outage was logged once; retries are DEBUG
                    log.debug("message queue: Redis at %s still unreachable (%s); next try in %.1fs",
                              self.where, describe(exc), delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.settings.reconnect_max_delay)
                    continue
                delay = self.settings.reconnect_delay
                self._link_up()
            fresh = False
            try:
                await self._session(pubsub)
            except Exception as exc:  # noqa: BLE001 - the connection is gone: link_down logs it once
                self.link_down(exc)
            finally:
                await self.subscriber.close(pubsub)
                pubsub = None
            if self._link_error is not None:
                self.link_down(self._link_error)
                self._link_error = None
            await asyncio.sleep(delay)

    async def _session(self, pubsub: Any) -> None:
        """Read and keep subscriptions in step until the connection fails (raises)."""
        self._link_error = None
        tasks = [asyncio.ensure_future(self.subscriber.keep(pubsub, self._pub.ping))]
        if pubsub is not None:
            tasks.append(asyncio.ensure_future(self.subscriber.read(pubsub)))
        self._session_tasks = list(tasks)
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
            # the first failure was raised above; the others end by their cancellation
            await cancel_all(tasks)
