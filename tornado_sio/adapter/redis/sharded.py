"""The Redis Cluster side of the adapter: sharded pub/sub over a slot map of our own.

:class:`ShardedLink` gives :class:`~.adapter.RedisAdapter` what
:class:`~.link.RedisLink` gives it (``want``, ``publish``, ``publish_counted``,
``start``, ``stop``, ``flush``, ``sync``, ``connected``, ``dropped``), for a
Redis Cluster (``message_queue='redis+cluster://host:port,host:port'``):

* every channel hashes to a slot (CRC16 mod 16384, ``{hash tags}`` honoured);
  in the sharded mode (the default) a channel is subscribed with ``SSUBSCRIBE``
  on a connection to the primary serving its slot and published with
  ``SPUBLISH`` there, so a message travels inside one shard only (Redis >= 7,
  as Node's ``createShardedAdapter``). With ``sharded=False`` every channel
  lives on one node with classic ``SUBSCRIBE``/``PUBLISH``, which the cluster
  bus copies to every node;
* the slot map is read with ``CLUSTER SLOTS`` from any node that answers, and
  read again whenever a node is lost, Redis answers ``MOVED``, or a node drops
  a subscription because its slot moved away; every subscription then moves to
  the node that serves its slot now;
* a message whose shard has no reachable primary (a primary failing over) is
  held and published again once the slot map names a new one, for at most
  ``failover_timeout`` seconds; a message Redis refused (``MOVED``,
  ``CLUSTERDOWN``, ``TRYAGAIN``) is sent again; a message that was on the wire
  when its connection broke is dropped, never sent twice (it may have arrived);
* an outage (any node lost) is logged once when it starts and once when every
  subscription is back and nothing waits for a primary.

redis-py's own cluster pub/sub is not used: its asynchronous ``ClusterPubSub``
exists only since redis-py 8.0 (tornado-sio supports 5.0 and later), polls the
nodes' connections in turn rather than reading each as messages come, and
moves subscriptions only when some other command of its cluster client has
refreshed the slot cache. Here every node has its own ``redis.asyncio``
connections and reader task, driven by one slot map that a lost connection,
a ``MOVED`` or a dropped subscription refreshes.
"""

from __future__ import annotations

import asyncio
import binascii
import dataclasses
import itertools
import logging
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Iterable
from typing import Any, Callable, Optional

from ...exceptions import MessageQueueError
from .link import (
    LinkSettings,
    OnMessage,
    OutgoingQueue,
    RateLimitedLog,
    WantedChannels,
    WatchedTasks,
    cancel_all,
    client_options,
    close_quietly,
    describe,
    drained,
    is_link_error,
    settle,
    unreachable_reason,
)

__all__ = ["CLUSTER_LINK_KEYS", "CLUSTER_SCHEMES", "ClusterPublisher", "ClusterSettings", "ClusterSubscriber",
           "Node", "ShardedLink", "SlotMap", "is_cluster_url", "key_slot", "link_settings", "parse_cluster_url"]

log = logging.getLogger("tornado_sio.redis")

#: URL schemes that select the Redis Cluster link (the second one with TLS).
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SLOTS = 16384
_BATCH = 256  # messages per publishing round (one pipeline per node)
_SUB_CHUNK = 500  # channels per classic SUBSCRIBE
_RETRY_PAUSE = 0.05  # before publishing again what was held or refused (MOVED, CLUSTERDOWN)
_TOO_LATE = "no reachable primary for its slot within failover_timeout"
#: During an outage the slot map is re-read at least this often (seconds), so every
#: process finds a promoted replica soon after it is promoted.
OUTAGE_POLL = 0.25
#: Seconds held messages wait after a replica is promoted before they are published
#: on it: time for the other processes (re-reading the map every OUTAGE_POLL) to
#: resubscribe there, so that the held messages find their subscribers.
PROMOTION_GRACE = 1.0


def is_cluster_url(url: Optional[str]) -> bool:
    """Whether *url* names a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return bool(url) and str(url).split("://", 1)[0].lower() in CLUSTER_SCHEMES


def key_slot(channel: bytes) -> int:
    """The cluster slot of *channel*: CRC16 (XMODEM) mod 16384 of it, or of its first non-empty ``{tag}``."""
    start = channel.find(b"{")
    if start >= 0:
        end = channel.find(b"}", start + 1)
        if end > start + 1:
            channel = channel[start + 1:end]
    return binascii.crc_hqx(channel, 0) % SLOTS


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """``redis+cluster://[user:password@]host:port[,host:port...]`` -> (seed nodes, connection kwargs).

    Raises ValueError naming what is wrong (no node, a bad port, a database other than 0).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Redis Cluster URL (redis+cluster://host:port,...): {url!r}")
    auth, _, hosts = rest.rpartition("@")
    hosts, _, path = hosts.partition("/")
    hosts = hosts.split("?", 1)[0]
    if path.split("?", 1)[0] not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0")
    seeds = []
    for item in filter(None, (part.strip() for part in hosts.split(","))):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "6379")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad node {item!r} in the Redis Cluster URL")
        seeds.append((host, int(port)))
    if not seeds:
        raise ValueError("the Redis Cluster URL names no node")
    kwargs: dict[str, Any] = {}
    if auth:
        user, colon, password = auth.partition(":")
        if colon:
            kwargs["password"] = urllib.parse.unquote(password)
            if user:
                kwargs["username"] = urllib.parse.unquote(user)
        else:
            kwargs["password"] = urllib.parse.unquote(user)
    if scheme.lower() == "rediss+cluster":
        kwargs["ssl"] = True
    return seeds, kwargs


@dataclasses.dataclass
class ClusterSettings(LinkSettings):
    """:class:`~.link.LinkSettings` plus what only a Redis Cluster needs.

    :param sharded: ``SSUBSCRIBE``/``SPUBLISH`` on the primary of each channel's
        slot (Redis >= 7); False: classic ``SUBSCRIBE``/``PUBLISH`` on one node,
        copied to every node by the cluster bus.
    :param failover_timeout: seconds a message for a shard without a reachable
        primary is held for publishing again (a failover takes about
        ``cluster-node-timeout`` plus a second); then it is dropped and counted.
    """

    url: str = "redis+cluster://localhost:6379"
    sharded: bool = True
    failover_timeout: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not float(self.failover_timeout) >= 0:
            raise ValueError("failover_timeout must not be negative")
        parse_cluster_url(self.url)


class SlotMap:
    """Which primary serves each of the 16384 slots, as ``CLUSTER SLOTS`` last said."""

    def __init__(self) -> None:
        self.owner: list[Optional[str]] = [None] * SLOTS
        #: node name (``host:port``) -> (host, port), primaries and replicas.
        self.nodes: dict[str, tuple[str, int]] = {}
        self.primaries: list[str] = []

    def load(self, reply: Any, asked_host: str) -> None:
        """Replace the map with a ``CLUSTER SLOTS`` reply (ValueError if it covers no slot)."""
        owner: list[Optional[str]] = [None] * SLOTS
        nodes: dict[str, tuple[str, int]] = {}
        primaries: list[str] = []
        for entry in reply or []:
            first, last = int(entry[0]), int(entry[1])
            names = []
            for node in entry[2:]:
                host = node[0].decode() if isinstance(node[0], bytes) else str(node[0])
                if host in ("", "?"):  # "the host you asked", as the cluster spec allows
                    host = asked_host
                name = f"{host}:{int(node[1])}"
                nodes[name] = (host, int(node[1]))
                names.append(name)
            if not names or not 0 <= first <= last < SLOTS:
                continue
            owner[first:last + 1] = [names[0]] * (last - first + 1)
            if names[0] not in primaries:
                primaries.append(names[0])
        if not primaries:
            raise ValueError("CLUSTER SLOTS named no slot (is the cluster formed?)")
        self.owner, self.nodes, self.primaries = owner, nodes, sorted(primaries)

    def node_for(self, channel: bytes) -> Optional[str]:
        """The primary serving *channel*'s slot (None before the first load, or for an unserved slot)."""
        return self.owner[key_slot(channel)]


def _refused(result: Any) -> bool:
    """Whether a command's error means Redis did not run it and it may be sent again elsewhere."""
    from redis.exceptions import AskError, ClusterDownError, TryAgainError

    return isinstance(result, (AskError, ClusterDownError, TryAgainError)) or (
        isinstance(result, Exception) and str(result).startswith(("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")))


class Node:
    """One cluster node: a publishing client, and a pub/sub connection while channels live here."""

    def __init__(self, name: str, address: tuple[str, int], options: dict[str, Any]) -> None:
        import redis.asyncio as redis_asyncio

        self.name = name
        self.client: Any = redis_asyncio.Redis(host=address[0], port=address[1], **options)
        self.pubsub: Any = None
        self.reader: asyncio.Task[Any] | None = None
        #: Channels subscribed (sent) on the current pub/sub connection.
        self.subscribed: set[bytes] = set()
        #: Publishing works (a PING or a publish succeeded since the last failure).
        self.ready = False
        self.failed_at: float | None = None
        #: Publishing waits until then (monotonic): a replica promoted a moment ago.
        self.hold_until = 0.0
        self.last_pong = 0.0

    async def open(self, timeout: float) -> None:
        """A fresh pub/sub connection (raises when the node cannot be reached)."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=False)
        try:
            await asyncio.wait_for(pubsub.ping(b"tornado-sio-open"), timeout)
        except BaseException:
            await self.close_pubsub(pubsub)
            raise
        self.pubsub = pubsub
        self.subscribed = set()
        self.last_pong = asyncio.get_running_loop().time()

    @staticmethod
    async def close_pubsub(pubsub: Any) -> None:
        """Close a pub/sub connection, best effort."""
        await close_quietly(pubsub, "a pub/sub connection")

    async def subscribe(self, channels: list[bytes], sharded: bool) -> None:
        """Send the (S)SUBSCRIBE commands for *channels*; confirmations come to the reader."""
        self.subscribed.update(channels)
        if sharded:
            for group in _by_slot(channels):
                await self.pubsub.ssubscribe(*group)
        else:
            for i in range(0, len(channels), _SUB_CHUNK):
                await self.pubsub.subscribe(*channels[i:i + _SUB_CHUNK])

    async def unsubscribe(self, channels: list[bytes], sharded: bool) -> None:
        """Send the (S)UNSUBSCRIBE commands for *channels* (the node may answer MOVED: harmless)."""
        self.subscribed.difference_update(channels)
        if self.pubsub is None:
            return
        if sharded:
            for group in _by_slot(channels):
                await self.pubsub.sunsubscribe(*group)
        else:
            for i in range(0, len(channels), _SUB_CHUNK):
                await self.pubsub.unsubscribe(*channels[i:i + _SUB_CHUNK])

    async def close(self) -> None:
        """Stop the reader and close both connections."""
        if self.reader is not None:
            await cancel_all([self.reader])
            self.reader = None
        await self.close_pubsub(self.pubsub)
        self.pubsub = None
        self.subscribed = set()
        await close_quietly(self.client)


def _by_slot(channels: Iterable[bytes]) -> list[list[bytes]]:
    """*channels* grouped by slot: one SSUBSCRIBE may only name channels of one slot."""
    groups: dict[int, list[bytes]] = {}
    for channel in channels:
        groups.setdefault(key_slot(channel), []).append(channel)
    return list(groups.values())


_Outgoing = tuple[bytes, bytes, Optional["asyncio.Future[int]"], float]


class ClusterPublisher(OutgoingQueue[_Outgoing]):
    """Publishes what is queued from one task, one pipeline per node per round; bounded queue.

    A message for a shard whose primary is unreachable is held (up to
    ``failover_timeout``), one Redis refused is sent again after the slot map
    is corrected, one on a connection that broke is dropped (it may have been
    delivered: sending it again could deliver it twice).
    """

    def __init__(self, link: ShardedLink) -> None:
        super().__init__(link.settings.max_queue, link.warn)
        self.link = link
        #: Messages held for a shard without a reachable primary, in order.
        self.parked: deque[_Outgoing] = deque()
        #: The nodes of the parked messages: a later message to one of them waits behind them.
        self.blocked: set[Optional[str]] = set()
        self.retry_at = 0.0

    def item(self, channel: bytes, payload: bytes, future: asyncio.Future[Any] | None) -> _Outgoing:
        """A message with its deadline: held past ``failover_timeout``, it is dropped."""
        return (channel, payload, future, time.monotonic() + float(self.link.settings.failover_timeout))

    def busy(self) -> bool:
        """Whether a message is still queued, held for a primary, or on the wire."""
        return bool(self.queue or self.parked or self.inflight)

    def drop(self, item: _Outgoing, reason: str) -> bool:
        """Count a message as dropped and fail its future (False, for use in filters)."""
        self.dropped += 1
        future = item[2]
        if future is not None and not future.done():
            future.set_exception(MessageQueueError(reason))
        return False

    def fail_all(self, reason: str) -> None:
        """Drop everything queued (the link is stopping)."""
        for pending in (self.parked, self.queue):
            while pending:
                self.drop(pending.popleft(), reason)
        self.blocked = set()

    async def run(self) -> None:
        """The publisher task: until cancelled, send new messages, and held ones every ``_RETRY_PAUSE``."""
        assert self.ready is not None
        loop = asyncio.get_running_loop()
        while True:
            retry = bool(self.parked) and loop.time() >= self.retry_at
            if not self.queue and not retry:
                self.ready.clear()
                timer = loop.call_later(max(0.0, self.retry_at - loop.time()), self.ready.set) if self.parked else None
                try:
                    await self.ready.wait()
                finally:
                    if timer is not None:
                        timer.cancel()
                continue
            old = [self.parked.popleft() for _ in range(min(_BATCH, len(self.parked)))] if retry else []
            if retry:  # what is still parked after these keeps later messages to its node waiting
                self.blocked = {self.link.target(item[0]) for item in self.parked}
            new = [self.queue.popleft() for _ in range(min(_BATCH, len(self.queue)))]
            groups: dict[str, list[_Outgoing]] = {}
            again_old: list[_Outgoing] = []
            again_new: list[_Outgoing] = []
            for again, items in ((again_old, old), (again_new, new)):
                for item in items:
                    name = self.link.target(item[0])
                    if name is None or not self.link.publishable(name) or (again is again_new and name in self.blocked):
                        again.append(item)  # no primary known, or it failed: hold it (in order)
                    else:
                        groups.setdefault(name, []).append(item)
            self.inflight = sum(len(items) for items in groups.values())
            try:
                for refused in await asyncio.gather(*(self._send(name, items) for name, items in groups.items())):
                    again_new.extend(refused)  # Redis refused them (MOVED...): after the map is corrected
            finally:
                self.inflight = 0
            self._park(again_old, again_new, retry)

    def _park(self, old: list[_Outgoing], new: list[_Outgoing], retried: bool) -> None:
        """Hold messages to try again (in their order), dropping those past their deadline."""
        now = time.monotonic()
        keep_old = [item for item in old if now < item[3] or self.drop(item, _TOO_LATE)]
        keep_new = [item for item in new if now < item[3] or self.drop(item, _TOO_LATE)]
        first = not self.parked and not keep_old
        self.parked.extendleft(reversed(keep_old))
        self.parked.extend(keep_new)
        self.blocked.update(self.link.target(item[0]) for item in keep_new)
        if retried or (first and keep_new):  # not on every new message: the retry would never come
            self.retry_at = asyncio.get_running_loop().time() + _RETRY_PAUSE
        if not self.parked:
            self.blocked = set()
            self.link.check_recovered()

    @property
    def held(self) -> int:
        """Messages held for a shard without a reachable primary."""
        return len(self.parked)

    async def _send(self, name: str, items: list[_Outgoing]) -> list[_Outgoing]:
        """One pipeline to node *name*; returns the messages to try again."""
        link = self.link
        node = link.node(name)
        timeout = link.settings.connect_timeout
        if not node.ready:
            try:  # nothing is sent before the node answers: a failure here loses nothing
                await asyncio.wait_for(node.client.ping(), timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an unreachable node: logged once by node_failed
                link.node_failed(name, exc)
                return items
            node.ready, node.failed_at = True, None
        command = "SPUBLISH" if link.settings.sharded else "PUBLISH"
        try:
            pipe = node.client.pipeline(transaction=False)
            for channel, payload, _, _ in items:
                pipe.execute_command(command, channel, payload)
            results = await asyncio.wait_for(pipe.execute(raise_on_error=False), timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - in flight when it broke: dropped, never sent twice
            if is_link_error(exc):
                link.node_failed(name, exc)  # first: the outage counts these drops
            else:
                log.error("message queue: publishing %d messages failed: %s", len(items), describe(exc))
            for item in items:
                self.drop(item, f"publish failed: {describe(exc)}")
            return []
        again = []
        for item, result in zip(items, results):
            if _refused(result):
                link.redirected(result)
                again.append(item)
            elif isinstance(result, Exception):
                link.warn.warning("publish-error", "message queue: Redis refused a %s: %s", command, result)
                self.drop(item, f"publish failed: {result}")
            elif item[2] is not None and not item[2].done():
                item[2].set_result(int(result))
        return again


class _SyncRound:
    """``sync()`` callers waiting for one PONG per node holding subscriptions."""

    def __init__(self, waiters: list[asyncio.Future[bool]]) -> None:
        self.waiters = waiters
        self.pending: dict[bytes, str] = {}  # token -> node name


class ClusterSubscriber(WantedChannels):
    """Wanted channels (reference counted), where each is subscribed, and the tasks that keep them there.

    :meth:`want` only records; one task (:meth:`keep`) re-reads the slot map
    when told to, moves misplaced channels, subscribes the unplaced ones in
    batches (one ``SSUBSCRIBE`` per slot), PINGs for :meth:`wait_synced` and
    for health; one reader task per node dispatches its messages.
    """

    def __init__(self, link: ShardedLink, on_message: OnMessage) -> None:
        super().__init__(on_message)
        self.link = link
        #: channel -> the node it is subscribed on now
        self.placed: dict[bytes, str] = {}
        #: the one node of the classic (non-sharded) mode
        self.home: Optional[str] = None
        self.rounds: dict[bytes, _SyncRound] = {}
        self.tokens = itertools.count(1)

    @property
    def subscribed(self) -> set[bytes]:
        """Channels subscribed now, on whichever node (what :class:`~.link.Subscriber` calls the same)."""
        return set(self.placed)

    def settled(self) -> bool:
        """Whether every wanted channel is subscribed somewhere the map agrees with."""
        return all(channel in self.placed for channel in self.wanted)

    def unfollowed(self) -> bool:
        """Nothing wanted, nothing placed on any node."""
        return not self.wanted and not self.placed

    def node_lost(self, node: Node) -> None:
        """*node*'s connection is gone: its channels are unplaced, its sync rounds asked again later."""
        for channel in node.subscribed:
            if self.placed.get(channel) == node.name:
                del self.placed[channel]
        for sync_round in {id(r): r for r in self.rounds.values() if node.name in r.pending.values()}.values():
            for token in sync_round.pending:
                self.rounds.pop(token, None)
            self.sync_waiters.extend(sync_round.waiters)
        if self.home == node.name:
            self.home = None

    def reset(self) -> None:
        """The link stops: answer every waiter False and forget placements (wanted channels stay)."""
        settle(self.sync_waiters, result=False)
        self.sync_waiters = []
        for sync_round in list(self.rounds.values()):
            settle(sync_round.waiters, result=False)
        self.rounds.clear()
        self.placed.clear()
        self.home = None

    async def _node_up(self, name: str) -> Optional[Node]:
        """Node *name* with an open pub/sub connection and its reader, or None if it cannot be reached."""
        node = self.link.node(name)
        if node.pubsub is not None:
            return node
        if not self.link.reachable(name):
            return None
        try:
            await node.open(self.link.settings.connect_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged once as an outage by node_failed
            self.link.node_failed(name, exc)
            return None
        node.failed_at = None
        node.reader = asyncio.ensure_future(self._read(node, node.pubsub))
        return node

    async def _choose_home(self) -> None:
        """Classic mode: the first primary (then any node) that answers carries every channel."""
        for name in self.link.map.primaries + sorted(set(self.link.map.nodes) - set(self.link.map.primaries)):
            if await self._node_up(name) is not None:
                self.home = name
                return

    async def place(self) -> bool:
        """One round: re-read the map if due, move misplaced channels, subscribe the unplaced.

        True when every wanted channel is subscribed on the node serving it.
        """
        if self.link.refresh_due and not await self.link.refresh():
            return False
        if not self.link.settings.sharded and (self.home is None or self.home not in self.link.nodes
                                          or self.link.nodes[self.home].pubsub is None):
            self.home = None
            await self._choose_home()
        drop: dict[str, list[bytes]] = {}
        for channel, name in list(self.placed.items()):
            if channel not in self.wanted or self.link.target(channel) != name:
                del self.placed[channel]
                drop.setdefault(name, []).append(channel)
        add: dict[str, list[bytes]] = {}
        settled = True
        for channel in self.wanted:
            if channel not in self.placed:
                where = self.link.target(channel)
                if where is None:
                    settled = False
                else:
                    add.setdefault(where, []).append(channel)
        for name, channels in drop.items():
            await self._on_node(name, Node.unsubscribe, channels)
        if self.link.settings.sharded and not await self.link.probe_failed():
            settled = False  # classic mode needs one live node, not every primary
        for name, channels in add.items():
            node = await self._node_up(name)
            if node is None or not await self._on_node(name, Node.subscribe, channels):
                settled = False
                continue
            for channel in channels:
                self.placed[channel] = name
        return settled

    async def _on_node(self, name: str, method: Callable[[Node, list[bytes], bool], Awaitable[None]],
                       channels: list[bytes]) -> bool:
        node = self.link.nodes.get(name)
        if node is None or node.pubsub is None:
            return False
        try:
            await method(node, channels, self.link.settings.sharded)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the connection broke: logged once by node_failed
            self.link.node_failed(name, exc)
            return False
        return True

    async def keep(self) -> None:
        """The subscriber task: apply changes, follow the slot map, PING for syncs and health."""
        assert self.changed is not None
        loop = asyncio.get_running_loop()
        interval = self.link.settings.health_interval
        next_health = loop.time() + interval
        delay = self.link.settings.reconnect_delay
        wake = next_health
        while True:
            timer = loop.call_later(max(0.0, wake - loop.time()), self.changed.set)
            try:
                await self.changed.wait()
            finally:
                timer.cancel()
            self.changed.clear()
            settled = await self.place()
            now = loop.time()
            if now >= next_health:
                next_health = now + interval
                await self._health(now, interval)
            if settled:
                delay = self.link.settings.reconnect_delay
                await self._start_syncs()
                self.link.check_recovered()
                wake = next_health
            else:  # a node or the map is missing: try again with backoff
                self.link.refresh_due = True
                wake = min(next_health, now + min(delay, OUTAGE_POLL))
                delay = min(delay * 2, self.link.settings.reconnect_max_delay)

    async def _health(self, now: float, interval: float) -> None:
        """PING every pub/sub connection; one silent for three intervals is lost."""
        for name, node in list(self.link.nodes.items()):
            if node.pubsub is None:
                continue
            if now - node.last_pong > 3 * interval:
                self.link.node_failed(name, ConnectionError(f"no answer to PING for {now - node.last_pong:.1f}s"))
                continue
            try:
                await node.pubsub.ping(b"tornado-sio-health")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the connection broke: logged once by node_failed
                self.link.node_failed(name, exc)

    async def _start_syncs(self) -> None:
        """Everything is placed: PING each node holding channels for the waiting ``sync()`` callers."""
        waiters, self.sync_waiters = self.sync_waiters, []
        waiters = [w for w in waiters if not w.done()]
        if not waiters:
            return
        names = {name for name in self.placed.values()}
        if not names:
            settle(waiters, result=True)
            return
        sync_round = _SyncRound(waiters)
        for name in names:
            token = b"tornado-sio-%d" % next(self.tokens)
            sync_round.pending[token] = name
            self.rounds[token] = sync_round
        for token, name in list(sync_round.pending.items()):
            node = self.link.nodes.get(name)
            try:
                if node is None or node.pubsub is None:
                    raise ConnectionError("no pub/sub connection")
                await node.pubsub.ping(token)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the connection broke: logged once by node_failed
                self.link.node_failed(name, exc)

    def _pong(self, node: Node, token: Any) -> None:
        node.last_pong = asyncio.get_running_loop().time()
        sync_round = self.rounds.pop(token, None) if isinstance(token, bytes) else None
        if sync_round is not None:
            sync_round.pending.pop(token, None)
            if not sync_round.pending:
                settle(sync_round.waiters, result=True)

    async def _read(self, node: Node, pubsub: Any) -> None:
        """A node's reader task: dispatch messages, note PONGs, follow dropped subscriptions."""
        from redis.exceptions import ResponseError

        try:
            while True:
                try:
                    message = await pubsub.get_message(timeout=None)
                except ResponseError as exc:  # an answer to one (S)SUBSCRIBE: the connection is fine
                    self._refused_here(node, exc)
                    continue
                if message is None:
                    continue
                kind = message["type"]
                if kind in ("smessage", "message"):
                    self.dispatch(message["channel"], message["data"])
                elif kind == "pong":
                    self._pong(node, message["data"])
                elif kind in ("sunsubscribe", "unsubscribe") and message["channel"] in node.subscribed:
                    # not asked for: the node no longer serves the slot (it moved); place it anew
                    node.subscribed.discard(message["channel"])
                    if self.placed.get(message["channel"]) == node.name:
                        del self.placed[message["channel"]]
                    self.link.refresh_soon()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the connection is gone: logged once by node_failed
            if node.pubsub is pubsub:
                self.link.node_failed(node.name, exc)

    def _refused_here(self, node: Node, exc: Exception) -> None:
        if _refused(exc):
            slot = getattr(exc, "slot_id", None)
            for channel in [c for c in node.subscribed if slot is None or key_slot(c) == slot]:
                node.subscribed.discard(channel)
                if self.placed.get(channel) == node.name:
                    del self.placed[channel]
            self.link.redirected(exc)
        else:
            self.link.warn.warning("sub-error", "message queue: cluster node %s refused a subscription: %s",
                              node.name, describe(exc))


class ShardedLink:
    """Per-node Redis connections kept in step with the cluster's slot map; see the module docstring.

    :param settings: the seed nodes and how hard to try (:class:`ClusterSettings`).
    :param on_message: called with ``(kind, channel, payload)`` for each message
        on a wanted channel, on the IOLoop; its exceptions are logged.
    :param needs_msgpack: check at :meth:`start` that msgpack is importable.
    """

    def __init__(self, settings: ClusterSettings, on_message: OnMessage, needs_msgpack: bool = False) -> None:
        from .wire import redact_url

        self.settings = settings
        self.where = redact_url(settings.url)
        self.seeds, self._auth = parse_cluster_url(settings.url)
        self.needs_msgpack = needs_msgpack
        self.warn = RateLimitedLog(log)
        self.publisher = ClusterPublisher(self)
        self.map = SlotMap()
        self.nodes: dict[str, Node] = {}
        self.subscriber = ClusterSubscriber(self, on_message)
        #: True while every node in use answers and every wanted channel is subscribed.
        self.connected = False
        #: True between a successful :meth:`start` and :meth:`stop`.
        self.started = False
        self._stopping = False
        self._options: dict[str, Any] = {}
        #: The slot map must be read again (a node failed, MOVED, a subscription dropped).
        self.refresh_due = True
        self._watched = WatchedTasks(lambda: self.started and not self._stopping, self._task_failed)
        self._closing: set[asyncio.Future[Any]] = set()
        self._down_since: float | None = None
        self._dropped_at_down = 0

    def __repr__(self) -> str:
        return f"<ShardedLink {self.where} {'sharded' if self.settings.sharded else 'classic'} pub/sub>"

    @property
    def dropped(self) -> int:
        """Outgoing messages dropped so far (no primary within ``failover_timeout``, queue full, broken)."""
        return self.publisher.dropped

    @property
    def tasks(self) -> dict[str, asyncio.Task[Any]]:
        """The running background tasks by name (``publisher``, ``subscriber``); a copy."""
        return dict(self._watched.tasks)

    def publisher_client(self) -> Any:
        """The classic mode's one node's ``redis.asyncio.Redis``; None in the sharded mode (no single node)."""
        home = self.subscriber.home
        if self.settings.sharded or home is None or home not in self.nodes:
            return None
        return self.nodes[home].client

    # -- what the adapter calls ---------------------------------------------

    def want(self, channel: bytes, kind: str, on: bool) -> None:
        """One more (*on*) or one fewer reason to be subscribed to *channel* as *kind*."""
        self.subscriber.want(channel, kind, on)

    def publish(self, channel: bytes, payload: bytes) -> None:
        """Queue a message; dropped (and counted) when the queue is full or it cannot be placed in time."""
        self.publisher.enqueue(channel, payload, None, "message queue stopped" if self._stopping else None)

    def publish_counted(self, channel: bytes, payload: bytes) -> asyncio.Future[int]:
        """Queue a message; the future gets how many subscribers Redis gave it to.

        In the sharded mode that is the subscribers on the primary of the
        channel's shard, which is where every process subscribes.
        It fails with :class:`~tornado_sio.MessageQueueError` when the message is dropped.
        """
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.publisher.enqueue(channel, payload, future, "message queue stopped" if self._stopping else None)
        return future

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until everything queued so far has gone to Redis (or was dropped)."""
        return await drained(self.publisher.busy, lambda: self.started, timeout)

    async def sync(self, timeout: float = 5.0) -> bool:
        """Wait until every wanted channel is subscribed on the node serving it now (False if not in time)."""
        if not self.started:
            return False
        return await self.subscriber.wait_synced(timeout)

    # -- the slot map and the nodes -------------------------------------------

    def target(self, channel: bytes) -> Optional[str]:
        """The node a message on *channel* goes to now (None: not known yet)."""
        return self.map.node_for(channel) if self.settings.sharded else self.subscriber.home

    def node(self, name: str) -> Node:
        """The :class:`Node` for *name* (``host:port``), created on first use."""
        node = self.nodes.get(name)
        if node is None:
            host, _, port = name.rpartition(":")
            node = self.nodes[name] = Node(name, self.map.nodes.get(name, (host, int(port))), self._options)
        return node

    def reachable(self, name: str) -> bool:
        """False for a node that failed less than ``reconnect_delay`` ago (not worth a try yet)."""
        node = self.nodes.get(name)
        if node is None or node.failed_at is None:
            return True
        return time.monotonic() - node.failed_at >= self.settings.reconnect_delay

    def publishable(self, name: str) -> bool:
        """Whether messages may go to node *name* now: not failed, and not a replica promoted a moment ago.

        A failed node is tried again by the subscriber task (:meth:`probe_failed`),
        never inline by the publisher, so a node that stops answering holds the
        other shards' messages back once (``connect_timeout``), not at every try.
        """
        node = self.nodes.get(name)
        return node is None or (node.failed_at is None and node.hold_until <= time.monotonic())

    def redirected(self, error: Any) -> None:
        """Redis answered MOVED (or CLUSTERDOWN...): note the new owner now, re-read the map soon."""
        slot, host, port = getattr(error, "slot_id", None), getattr(error, "host", None), getattr(error, "port", None)
        if str(error).startswith("MOVED") and slot is not None and host and port is not None:
            name = f"{host}:{port}"
            self.map.owner[int(slot)] = name
            self.map.nodes.setdefault(name, (str(host), int(port)))
        self.refresh_soon()

    def node_failed(self, name: str, exc: BaseException) -> None:
        """Node *name* is unreachable: unplace its channels, re-read the map, log the outage once."""
        node = self.nodes.get(name)
        if node is None:
            return
        first = node.failed_at is None
        node.failed_at = time.monotonic()
        node.ready = False
        self.subscriber.node_lost(node)
        pubsub, node.pubsub, node.subscribed = node.pubsub, None, set()
        reader, node.reader = node.reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        if pubsub is not None:
            closing = asyncio.ensure_future(Node.close_pubsub(pubsub))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        if first:
            log.debug("message queue: cluster node %s failed: %s", name, describe(exc))
        self._outage(f"lost cluster node {name} ({describe(exc)})")
        self.refresh_soon()

    def refresh_soon(self) -> None:
        """Have the subscriber task re-read the slot map and re-place channels."""
        self.refresh_due = True
        self.subscriber.wake()

    def failed_primaries(self) -> list[str]:
        """Primaries of the current map that failed and have not answered since."""
        return [name for name in self.map.primaries if name in self.nodes and self.nodes[name].failed_at is not None]

    async def probe_failed(self) -> bool:
        """PING the failed primaries that are due for a try; True when none is left failed."""
        for name in self.failed_primaries():
            if not self.reachable(name):
                continue
            node = self.nodes[name]
            try:
                await asyncio.wait_for(node.client.ping(), self.settings.connect_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - still down: the outage was logged once
                self.node_failed(name, exc)
            else:
                node.failed_at, node.ready = None, True
        return not self.failed_primaries()

    def _note_promotions(self, before: list[Optional[str]]) -> None:
        """A node now serving slots of a failed node was just promoted: hold its messages a moment."""
        failed = {name for name, node in self.nodes.items() if node.failed_at is not None}
        if not failed:
            return
        promoted = {new for old, new in zip(before, self.map.owner) if old in failed and new not in (old, None)}
        for name in promoted:
            self.node(name).hold_until = time.monotonic() + min(PROMOTION_GRACE, self.settings.failover_timeout)

    async def refresh(self) -> bool:
        """Read the slot map from the first node that answers (live nodes first, then the seeds)."""
        names = sorted(self.map.nodes, key=lambda n: (self.nodes.get(n) is not None
                                                      and self.nodes[n].failed_at is not None, n))
        names += [f"{host}:{port}" for host, port in self.seeds if f"{host}:{port}" not in self.map.nodes]
        last: BaseException | None = None
        for name in names:
            try:
                node = self.node(name)
                reply = await asyncio.wait_for(node.client.execute_command("CLUSTER", "SLOTS"),
                                               self.settings.connect_timeout)
                before = list(self.map.owner)
                self.map.load(reply, name.rpartition(":")[0])
                self._note_promotions(before)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next node may answer; the last reason is kept
                last = exc
                continue
            self.refresh_due = False
            return True
        if not self.started:
            raise last or ConnectionError("no node to ask")
        log.debug("message queue: no Redis Cluster node gave the slot map: %s", describe(last or Exception()))
        return False

    # -- outage and recovery ------------------------------------------------------

    def _outage(self, reason: str) -> None:
        if self._down_since is not None or not self.started:
            return
        self._down_since = time.monotonic()
        self._dropped_at_down = self.publisher.dropped
        self.connected = False
        log.warning("message queue: Redis Cluster at %s: %s; re-reading the slot map and moving its "
                    "subscriptions; messages for that shard are held up to %gs (failover_timeout)",
                    self.where, reason, self.settings.failover_timeout)

    def check_recovered(self) -> None:
        """Log the end of an outage once every channel is placed and nothing waits for a primary."""
        if self._down_since is None or self.refresh_due or self.publisher.held:
            return
        if self.settings.sharded and self.failed_primaries():
            return
        if not self.subscriber.settled():
            return
        down = time.monotonic() - self._down_since
        self._down_since = None
        self.connected = True
        log.warning("message queue: Redis Cluster at %s recovered after %.1fs: every subscription is on a "
                    "reachable primary; %d outgoing messages were dropped meanwhile", self.where, down,
                    self.publisher.dropped - self._dropped_at_down)

    # -- start / stop ---------------------------------------------------------------

    async def start(self) -> None:
        """Read the slot map, subscribe every wanted channel where it lives, and start the tasks.

        Raises :class:`~tornado_sio.MessageQueueError` naming the URL and the
        reason when no node answers, a node is not in cluster mode, or (sharded)
        Redis is older than 7. Returns once subscribed.
        """
        if self.started:
            return
        self._options = client_options(self.settings, self.where, self.needs_msgpack, self._auth)[1]
        self.subscriber.bind()
        self.publisher.bind()
        self._stopping = False
        timeout = self.settings.connect_timeout
        try:
            await asyncio.wait_for(self.refresh(), timeout * 2)
            if self.settings.sharded:
                await asyncio.wait_for(self._check_sharded(), timeout)
            if not await asyncio.wait_for(self.subscriber.place(), timeout * 2):
                raise ConnectionError("could not subscribe on every shard")
            self.started = True
            self.connected = True
            self._watched.spawn("subscriber", self.subscriber.keep)
            if not await self.sync(timeout * 2):
                raise asyncio.TimeoutError("the nodes did not confirm the subscriptions")
        except Exception as exc:
            await self._shutdown()
            reason = unreachable_reason(exc, timeout)
            if "cluster support disabled" in reason:
                reason += " (a single Redis takes redis:// URLs, not redis+cluster://)"
            raise MessageQueueError(f"cannot reach Redis Cluster at {self.where}: {reason}") from exc
        self._watched.spawn("publisher", self.publisher.run)
        log.info("message queue: Redis Cluster at %s: %d primaries, %s pub/sub", self.where,
                 len(self.map.primaries), "sharded" if self.settings.sharded else "classic")

    async def _check_sharded(self) -> None:
        """Sharded pub/sub needs Redis >= 7: ask a primary, so an older one fails here, by name."""
        node = self.node(self.map.primaries[0])
        try:
            await node.client.execute_command("PUBSUB", "SHARDNUMSUB")
        except Exception as exc:
            if is_link_error(exc):
                raise
            raise MessageQueueError(f"sharded pub/sub (SSUBSCRIBE/SPUBLISH) needs Redis >= 7, and "
                                    f"{node.name} refused it ({describe(exc)}); set "
                                    "message_queue_options={'sharded': False} for classic pub/sub") from None

    async def stop(self) -> None:
        """Flush what is queued (bounded), stop the tasks, close every node's connections."""
        if not self.started:
            return
        await self.flush(timeout=min(2.0, self.settings.connect_timeout))
        self._stopping = True
        await self._shutdown()
        log.info("message queue: stopped (%s)", self.where)

    async def _shutdown(self) -> None:
        self._stopping = True
        await self._watched.cancel()
        self.publisher.fail_all("message queue stopped")
        self.subscriber.reset()
        nodes = list(self.nodes.values())
        self.nodes.clear()
        for node in nodes:
            await node.close()
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=2)
        self.map = SlotMap()
        self.refresh_due = True
        self._down_since = None
        self.connected = False
        self.started = False

    # -- watched tasks ---------------------------------------------------------

    def _task_failed(self, name: str, reason: str) -> None:
        """A watched task ended unexpectedly: nothing is on the wire now; re-read the map."""
        self.publisher.inflight = 0
        self.refresh_soon()


#: ``message_queue_options`` that only a Redis Cluster URL takes.
CLUSTER_LINK_KEYS = ("sharded", "failover_timeout")


def link_settings(url: str, extra: dict[str, Any]) -> LinkSettings:
    """The link settings for *url*: :class:`ClusterSettings` for ``redis+cluster://``, else plain ones.

    Raises TypeError for a cluster-only option (``sharded``, ``failover_timeout``)
    with another URL, and ValueError for a malformed cluster URL.
    """
    if is_cluster_url(url):
        return ClusterSettings(url=url, **extra)
    misplaced = sorted(set(extra) & set(CLUSTER_LINK_KEYS))
    if misplaced:
        raise TypeError(f"message_queue_options {misplaced} need a Redis Cluster message_queue "
                        "('redis+cluster://host:port,host:port')")
    return LinkSettings(url=url, **extra)
