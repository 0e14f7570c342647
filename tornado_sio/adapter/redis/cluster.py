"""What the Redis adapter keeps about the rest of the cluster: peers, pending answers.

No I/O here beyond loop timers: :class:`Peers` follows the other processes'
heartbeats (Node's ``ClusterAdapterWithHeartbeat``: a process is counted while
it has announced itself within ``heartbeat_timeout``), :class:`PendingAcks` the
acks and recipient counts this process waits for, and :class:`PendingRequests`
the answers to its cluster requests (``fetch_sockets``, ``server_side_emit``),
and :class:`Cluster` puts them together for the adapter.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from typing import Any, Callable

from ...exceptions import AckTimeout, DisconnectedError
from ..base import AckCallback, BroadcastOptions, SocketDetails
from .wire import Ack, AckRequest, Heartbeat, Item, NativeCodec, Request, Response, socket_fields

__all__ = ["Cluster", "PendingAcks", "PendingRequests", "Peers"]

log = logging.getLogger("tornado_sio.redis")


class Peers:
    """The other processes of the cluster, by the last time each announced itself.

    :param timeout: seconds after its last heartbeat a silent process is forgotten.
    :param clock: the time source (the loop's, or ``time.monotonic``).
    """

    def __init__(self, timeout: float, clock: Callable[[], float]) -> None:
        self.timeout = timeout
        self.clock = clock
        self._seen: dict[str, float] = {}

    def seen(self, uid: str) -> bool:
        """Process *uid* announced itself; True when it was not known (or had been forgotten)."""
        now = self.clock()
        last = self._seen.get(uid)
        self._seen[uid] = now
        return last is None or now - last > self.timeout

    def gone(self, uid: str) -> None:
        """Process *uid* said it is closing."""
        self._seen.pop(uid, None)

    def alive(self) -> list[str]:
        """The processes heard from within the timeout (the others are forgotten now)."""
        cutoff = self.clock() - self.timeout
        for uid in [uid for uid, last in self._seen.items() if last < cutoff]:
            del self._seen[uid]
        return list(self._seen)

    def clear(self) -> None:
        self._seen.clear()


class PendingAcks:
    """Acks this process waits for from other processes: broadcast callbacks and ``call()`` futures.

    A callback stays until its lifetime ends (several recipients may answer),
    with the recipient-count callback of the same broadcast when there is one;
    a future until it is answered or discarded.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._entries: dict[int, AckCallback | asyncio.Future[list[Any]]] = {}
        self._counts: dict[int, tuple[Callable[[int], None], set[str]]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add_callback(self, on_ack: AckCallback, lifetime: float,
                     on_count: Callable[[int], None] | None = None) -> int:
        """Register *on_ack* (and *on_count*) for *lifetime* seconds; return its id."""
        ack_id = next(self._ids)
        self._entries[ack_id] = on_ack
        if on_count is not None:
            self._counts[ack_id] = (on_count, set())
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
        self._counts.pop(ack_id, None)
        timer = self._timers.pop(ack_id, None)
        if timer is not None:
            timer.cancel()

    def count(self, response: Response) -> None:
        """A process said how many of its sockets got broadcast *response.rid*.

        Unknown ids, and a second count from the same process, are ignored.
        """
        entry = self._counts.get(response.rid)
        if entry is None:
            log.debug("message queue: recipient count for %r matches nothing pending", response.rid)
            return
        on_count, sources = entry
        if response.src not in sources:
            sources.add(response.src)
            on_count(response.value)

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
        self._counts.clear()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for entry in entries.values():
            if isinstance(entry, asyncio.Future) and not entry.done():
                entry.set_exception(DisconnectedError(reason))


class PendingRequests:
    """Answers this process waits for to its cluster requests, by request id.

    A request is either gathered (a future resolved with every answer once
    *expected* processes answered) or followed (a callback for each answer,
    for a lifetime). Each process counts once per request: a repeated or
    forged answer from the same uid is ignored.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._gathers: dict[int, tuple[int, dict[str, Any], asyncio.Future[dict[str, Any]]]] = {}
        self._follows: dict[int, tuple[Callable[[Any], None], set[str], asyncio.TimerHandle]] = {}

    def __len__(self) -> int:
        return len(self._gathers) + len(self._follows)

    def gather(self, expected: int) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        """A new request expecting *expected* answers: its id and a future of ``{uid: value}``."""
        rid = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._gathers[rid] = (expected, {}, future)
        return rid, future

    def follow(self, on_answer: Callable[[Any], None], lifetime: float) -> int:
        """A new request whose every answer goes to *on_answer* for *lifetime* seconds."""
        rid = next(self._ids)
        timer = asyncio.get_running_loop().call_later(lifetime, self.discard, rid)
        self._follows[rid] = (on_answer, set(), timer)
        return rid

    def answers_so_far(self, rid: int) -> dict[str, Any]:
        """What gathered request *rid* has received (for a timeout's message)."""
        entry = self._gathers.get(rid)
        return dict(entry[1]) if entry is not None else {}

    def discard(self, rid: int) -> None:
        """Stop waiting for answers to *rid*."""
        self._gathers.pop(rid, None)
        follow = self._follows.pop(rid, None)
        if follow is not None:
            follow[2].cancel()

    def resolve(self, response: Response) -> None:
        """An answer arrived (unknown ids and repeated answers from one process are ignored)."""
        gather = self._gathers.get(response.rid)
        if gather is not None:
            expected, answers, future = gather
            if response.src in answers:
                return
            answers[response.src] = response.value
            if len(answers) >= expected and not future.done():
                self.discard(response.rid)
                future.set_result(answers)
            return
        follow = self._follows.get(response.rid)
        if follow is None:
            log.debug("message queue: %s answer %r matches nothing pending", response.kind, response.rid)
            return
        on_answer, sources, _ = follow
        if response.src in sources:
            return
        sources.add(response.src)
        on_answer(response.value)

    def close(self, reason: str) -> None:
        """Forget everything; gathering futures fail with DisconnectedError(*reason*)."""
        gathers, self._gathers = self._gathers, {}
        for _, _, timer in self._follows.values():
            timer.cancel()
        self._follows.clear()
        for _, _, future in gathers.values():
            if not future.done():
                future.set_exception(DisconnectedError(reason))


class Cluster:
    """This process's side of the cluster protocol (native format): heartbeats,
    ``fetch``/``sse`` requests and their answers, recipient counts.

    :param codec: the native codec, or None (python-socketio's format: nothing
        here works, :meth:`require` says so).
    :param uid: this process's id.
    :param publish: queues one ``(channel, payload)`` for Redis.
    :param settings: ``heartbeat_interval``, ``heartbeat_timeout``, ``requests_timeout``.
    :param announce: whether this process heartbeats and answers (not when write-only).
    """

    def __init__(self, codec: NativeCodec | None, uid: str, publish: Callable[[Item], None],
                 settings: dict[str, float], announce: bool) -> None:
        self.codec = codec
        self.uid = uid
        self.publish = publish
        self.settings = settings
        self.announce = announce and codec is not None
        self.peers = Peers(settings["heartbeat_timeout"], time.monotonic)
        self.requests = PendingRequests()
        self.beat: asyncio.TimerHandle | None = None

    def require(self, what: str) -> NativeCodec:
        """The codec; :class:`NotImplementedError` naming *what* in python-socketio's format."""
        if self.codec is None:
            raise NotImplementedError(f"{what} across processes needs the native message queue format; "
                                      "python-socketio's format cannot express it")
        return self.codec

    # -- heartbeats ------------------------------------------------------------

    def heartbeat(self, initial: bool = False) -> None:
        """Announce this process, then again every ``heartbeat_interval`` (when it announces).

        The first announcement is ``init``: the others answer with theirs, so the
        server count is right one round trip after the start.
        """
        if not self.announce or self.codec is None:
            return
        if self.beat is not None:
            self.beat.cancel()
        self.publish(self.codec.heartbeat(initial))
        self.beat = asyncio.get_running_loop().call_later(self.settings["heartbeat_interval"], self.heartbeat)

    def silence(self) -> None:
        """Stop heartbeating without a goodbye (what a stopped or frozen process looks like)."""
        if self.beat is not None:
            self.beat.cancel()
            self.beat = None

    def stop(self, reason: str) -> None:
        """Say goodbye (Node's ``ADAPTER_CLOSE``) when announced; forget peers and pending requests."""
        if self.beat is not None and self.codec is not None:
            self.publish(self.codec.heartbeat(closing=True))
        self.silence()
        self.requests.close(reason)
        self.peers.clear()

    def others(self) -> int:
        """How many other processes are known to be alive."""
        return len(self.peers.alive())

    def heard(self, beat: Heartbeat) -> None:
        if beat.closing:
            self.peers.gone(beat.src)
        elif self.peers.seen(beat.src) and beat.initial and self.announce and self.codec is not None:
            self.publish(self.codec.heartbeat())  # a newcomer: tell it we are here

    # -- requests this process makes ------------------------------------------------

    async def fetch(self, opts: BroadcastOptions) -> list[SocketDetails]:
        """The sockets *opts* selects on the other processes; each known one must answer in time."""
        codec = self.require("fetch_sockets()")
        expected = self.others()
        if expected == 0:
            return []
        rid, future = self.requests.gather(expected)
        try:
            self.publish(codec.request(Request("fetch", rid, self.uid, opts)))
            answers = await asyncio.wait_for(future, self.settings["requests_timeout"])
        except asyncio.TimeoutError:
            got = len(self.requests.answers_so_far(rid))
            raise AckTimeout(f"timeout reached while waiting for fetch_sockets responses "
                             f"({got} of {expected} servers answered)") from None
        finally:
            self.requests.discard(rid)
        return [found for sockets in answers.values() for found in sockets]

    def server_side_emit(self, namespace: str, data: list[Any],
                         on_reply: Callable[[list[Any]], None] | None) -> None:
        codec = self.require("server_side_emit()")
        rid = None if on_reply is None else self.requests.follow(on_reply, self.settings["requests_timeout"])
        try:
            item = codec.request(Request("sse", rid, self.uid, BroadcastOptions(namespace), list(data)))
        except Exception:
            if rid is not None:
                self.requests.discard(rid)
            raise
        self.publish(item)

    # -- requests of the others ------------------------------------------------------

    def answer(self, request: Request, sockets: Callable[[BroadcastOptions], list[SocketDetails]],
               handler: Callable[[str, list[Any], Callable[[list[Any]], None] | None], None] | None) -> None:
        """Answer a ``fetch`` with *sockets* (opts) or hand an ``sse`` to *handler*."""
        if request.kind == "fetch":
            self.respond(request, "sockets", [socket_fields(found) for found in sockets(request.opts)])
            return
        if handler is None:
            log.debug("message queue: server-side event %r and no on_server_event handler", request.data[0])
            return
        reply = None if request.rid is None else functools.partial(self._respond_once, request, [False])
        handler(request.opts.namespace, request.data, reply)

    def _respond_once(self, request: Request, done: list[bool], args: list[Any]) -> None:
        if not done[0]:
            done[0] = True
            self.respond(request, "sse_reply", list(args))

    def respond(self, request: Request, kind: str, value: Any) -> None:
        """Send *value* back to the asking process; what does not serialize is logged
        (and a ``sockets`` answer goes out empty, so the asker is not left waiting)."""
        if self.codec is None:
            return
        try:
            item = self.codec.response(request.reply_to, request.rid or 0, kind, value)
        except Exception as why:  # noqa: BLE001 - whatever does not serialize: say so
            log.warning("message queue: could not answer a %s request: %s", request.kind, why)
            if kind != "sockets":
                return
            item = self.codec.response(request.reply_to, request.rid or 0, kind, [])
        self.publish(item)

    def count(self, request: AckRequest | None, count: int) -> None:
        """Tell the asking process how many sockets here got its broadcast, when it asked."""
        if request is not None and request.count and self.codec is not None:
            self.publish(self.codec.response(request.reply_to, request.ack_id, "count", count))
