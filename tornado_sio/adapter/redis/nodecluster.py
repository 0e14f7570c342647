"""This server's side of Node's ``@socket.io/redis-adapter`` protocol: channels, requests, answers.

:class:`NodeSide` sits between :class:`~.adapter.RedisAdapter` and the pure
format (:mod:`.nodewire`). It knows which Node channels to follow, answers
every request a Node server (or another tornado-sio server speaking Node's
format) sends, and makes requests of its own, counting the servers as Node
does: ``PUBSUB NUMSUB`` on the namespace's request channel.

Why every request is answered: a Node server counts every subscriber of the
request channel as a server and waits for an answer from each (``fetchSockets``,
``allRooms``, ``serverSideEmitWithAck``, broadcasts with acks). A subscriber
that stays silent makes those fail after ``requestsTimeout`` on every Node
server of the cluster, so this side answers all of them, even when only
receiving Node's broadcasts (``node_emitter_key``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import logging
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ...exceptions import AckTimeout, DisconnectedError, EncodeError, TornadoSIOError
from ...protocol.socketio import SIOPacket, SIOType
from ..base import AckCallback, BroadcastOptions, SocketDetails
from .link import describe
from .nodewire import NodeAckRequest, NodeRequest, NodeResponse, NodeWire, RequestType
from .wire import AckRequest, Emit, EncodedEvent, Item, SocketsOp

if TYPE_CHECKING:
    from .adapter import RedisAdapter

__all__ = ["NodeSide"]

log = logging.getLogger("tornado_sio.redis")


@dataclasses.dataclass
class _Gather:
    """A request answered once by each other server: done when *expected* answers arrived."""

    expected: int
    future: asyncio.Future[list[NodeResponse]]
    answers: list[NodeResponse] = dataclasses.field(default_factory=list)

    def take(self, response: NodeResponse) -> None:
        self.answers.append(response)
        if len(self.answers) >= self.expected and not self.future.done():
            self.future.set_result(list(self.answers))


@dataclasses.dataclass
class _Follow:
    """A request whose answers are handed on as they come, for a lifetime."""

    on_answer: Callable[[NodeResponse], None]
    timer: Optional[asyncio.TimerHandle] = None

    def take(self, response: NodeResponse) -> None:
        self.on_answer(response)


_Pending = Union[_Gather, _Follow]


class NodeSide:
    """Node's adapter protocol under *key* for *adapter*; see the module docstring.

    :param adapter: the Redis adapter (its local sockets, link and options).
    :param key: Node's ``key`` (``"socket.io"`` by default there).
    :param full: speak Node's format for everything (``format='node'``): hold
        the request and response channels of ``/`` and of every namespace the
        server lists, and make requests. Without it (``node_emitter_key``) this
        side follows the namespaces this process has sockets in and answers.
    :param requests_timeout: how long a request waits for every answer.
    """

    def __init__(self, adapter: RedisAdapter, key: str, full: bool, requests_timeout: float) -> None:
        self.adapter = adapter
        self.wire = NodeWire(key, adapter.uid)
        self.full = full
        self.requests_timeout = requests_timeout
        listed = adapter.options.namespaces
        extra = [ns for ns in listed if isinstance(ns, str) and ns != "*"] if isinstance(listed, list) else []
        #: Namespaces whose request and response channels are held as long as the process runs.
        self.fixed = tuple(dict.fromkeys(["/", *extra])) if full else ()
        self.pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)

    # -- channels ------------------------------------------------------------------

    def _requests_of(self, namespace: str) -> list[tuple[bytes, str]]:
        wire = self.wire
        if not self.full:
            return [(wire.request_channel(namespace), "node-request")]
        answers = [(wire.response_channel(namespace), "node-response"),
                   (wire.response_channel(namespace, wire.uid), "node-response")]
        return answers if self.adapter.write_only else [(wire.request_channel(namespace), "node-request"), *answers]

    def fixed_channels(self) -> list[tuple[bytes, str]]:
        """Held while the process runs: the request and response channels of the fixed namespaces."""
        return [item for ns in self.fixed for item in self._requests_of(ns)]

    def namespace_channels(self, namespace: str) -> list[tuple[bytes, str]]:
        """Held while this process has a socket in *namespace*."""
        extra = [] if namespace in self.fixed else self._requests_of(namespace)
        return [(self.wire.broadcast_channel(namespace), "node"), *extra]

    def room_channels(self, namespace: str, room: str) -> list[tuple[bytes, str]]:
        """Held while this process has a member of *room*."""
        return [(self.wire.room_channel(namespace, room), "node")]

    # -- incoming ------------------------------------------------------------------------

    def handle(self, kind: str, channel: bytes, raw: bytes) -> Emit | SocketsOp | None:
        """One message on a Node channel: what the adapter delivers or applies, or None
        (answers and requests are dealt with here). Raises :class:`~.wire.Ignored`."""
        if kind == "node":
            return self.wire.decode_broadcast(channel, raw)
        if kind == "node-response":
            self.resolve(self.wire.decode_response(channel, raw))
            return None
        message = self.wire.decode_request(channel, raw)
        if isinstance(message, NodeRequest):
            self.answer(message)
            return None
        return message

    def publish(self, item: Item) -> None:
        """Queue one message for Redis."""
        self.adapter.link.publish(*item)

    def answer(self, request: NodeRequest) -> None:
        """Answer another server's request from this process's sockets."""
        adapter, wire, kind = self.adapter, self.wire, request.kind
        if kind == RequestType.BROADCAST:
            self.deliver(request)
        elif kind == RequestType.SERVER_SIDE_EMIT:
            handler = adapter.server_event_handler
            if handler is None:
                log.debug("message queue: Node server-side event %r and no on_server_event handler", request.data[0])
                return
            reply = None if request.request_id is None else functools.partial(self._reply_once, request, [False])
            handler(request.namespace, list(request.data), reply)
        elif kind == RequestType.REMOTE_FETCH:
            details = [socket.details() for socket in adapter.recipients(request.opts)]
            try:
                item = wire.fetch_answer(request, details)
            except EncodeError as why:
                log.warning("message queue: a fetched socket's data does not serialize (%s); answering none", why)
                item = wire.fetch_answer(request, [])
            self.publish(item)
        elif kind == RequestType.SOCKETS:
            self.publish(wire.sids_answer(request, sorted(adapter.sockets(request.opts))))
        elif kind == RequestType.ALL_ROOMS:
            self.publish(wire.rooms_answer(request, list(adapter.room_members.get(request.namespace, {}))))
        else:
            self._one_socket(request)

    def _one_socket(self, request: NodeRequest) -> None:
        """The old one-socket join/leave/disconnect: act, and answer when the socket is here."""
        socket = self.adapter.get_socket(request.sid or "", request.namespace)
        if socket is None:
            return
        if request.kind == RequestType.REMOTE_JOIN:
            self.adapter.add_all(socket.sid, [request.room or ""])
        elif request.kind == RequestType.REMOTE_LEAVE:
            self.adapter.delete(socket.sid, request.room or "")
        else:
            socket.disconnect(request.close)
        if request.request_id is not None:
            self.publish(self.wire.done_answer(request))

    def _reply_once(self, request: NodeRequest, done: list[bool], args: list[Any]) -> None:
        if done[0]:
            return
        done[0] = True
        try:
            self.publish(self.wire.sse_answer(request, list(args)))
        except EncodeError as why:
            log.warning("message queue: could not answer a Node server-side event: %s", why)

    def deliver(self, request: NodeRequest) -> None:
        """A broadcast with acks: send to each local recipient, say how many, forward each answer."""
        ack = NodeAckRequest(request.uid, request.request_id, request.timeout, namespace=request.namespace)
        timeout = request.timeout or self.adapter.options.ack_timeout
        loop = asyncio.get_running_loop()
        futures = []
        for socket in self.adapter.recipients(request.opts):
            future: asyncio.Future[list[Any]] = loop.create_future()
            try:
                socket.send_with_ack(SIOPacket(SIOType.EVENT, request.namespace, list(request.data)), future, timeout)
            except TornadoSIOError as exc:
                log.warning("message queue: %s; Node broadcast with acks not delivered to %s", exc, socket.sid)
                continue
            futures.append(future)
        self.publish(self.wire.count_answer(ack, len(futures)))  # queued before any ack: it arrives first
        for future in futures:
            future.add_done_callback(functools.partial(self._forward, ack))

    def _forward(self, request: AckRequest, future: asyncio.Future[list[Any]]) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # expired or left: Node's protocol has no answer for it; the asker times out
        try:
            self.publish(self.wire.ack_answer(request, future.result()))
        except EncodeError as why:
            log.warning("message queue: could not forward an ack to a Node server: %s", why)

    def resolve(self, response: NodeResponse) -> None:
        """An answer arrived: to one of this process's requests, or (shared channel) another's."""
        entry = self.pending.get(response.request_id)
        if entry is None:
            log.debug("message queue: Node answer %r matches nothing pending here", response.request_id)
            return
        entry.take(response)

    # -- the cluster interface the adapter calls ----------------------------------------

    def heartbeat(self, initial: bool = False) -> None:
        """Nothing: Node's classic adapter counts servers by subscription, not heartbeats."""

    def silence(self) -> None:
        """Nothing (see :meth:`heartbeat`)."""

    def count(self, request: AckRequest | None, count: int) -> None:
        """Nothing: a Node broadcast with acks is counted by :meth:`deliver`."""

    def stop(self, reason: str) -> None:
        """Forget pending requests; those waiting fail with DisconnectedError(*reason*)."""
        pending, self.pending = self.pending, {}
        for entry in pending.values():
            if isinstance(entry, _Gather):
                if not entry.future.done():
                    entry.future.set_exception(DisconnectedError(reason))
            elif entry.timer is not None:
                entry.timer.cancel()

    async def server_count(self, namespace: str = "/") -> int:
        """Servers of *namespace* as Node counts them: ``PUBSUB NUMSUB`` of its request channel
        (plus this process when it does not subscribe, being write-only); 1 when Redis is down."""
        channel = self.wire.request_channel(namespace)
        link = self.adapter.link
        counted = channel in link.subscriber.subscribed
        client = link.publisher_client()
        if client is None or not link.connected:
            return 1
        try:
            answer = await asyncio.wait_for(client.pubsub_numsub(channel), link.settings.connect_timeout)
            subscribers = int(answer[0][1])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed count is one server: this one
            log.warning("message queue: PUBSUB NUMSUB failed (%s); counting this server only", describe(exc))
            return 1
        return max(1, subscribers + (0 if counted else 1))

    def _new_id(self) -> str:
        return f"{self.wire.uid[:12]}-{next(self._ids)}"

    def _follow(self, on_answer: Callable[[NodeResponse], None], lifetime: float) -> str:
        rid = self._new_id()
        entry = _Follow(on_answer)
        entry.timer = asyncio.get_running_loop().call_later(lifetime, self.pending.pop, rid, None)
        self.pending[rid] = entry
        return rid

    def discard(self, rid: str) -> None:
        """Stop waiting for answers to *rid*."""
        entry = self.pending.pop(rid, None)
        if isinstance(entry, _Follow) and entry.timer is not None:
            entry.timer.cancel()

    async def _gather(self, namespace: str, what: str, make: Callable[[str], Item]) -> list[NodeResponse]:
        """Send a request to every other server of *namespace* and return one answer from each."""
        expected = await self.server_count(namespace) - 1
        if expected <= 0:
            return []
        rid = self._new_id()
        entry = _Gather(expected, asyncio.get_running_loop().create_future())
        self.pending[rid] = entry
        try:
            self.publish(make(rid))
            return await asyncio.wait_for(asyncio.shield(entry.future), self.requests_timeout)
        except asyncio.TimeoutError:
            raise AckTimeout(f"timeout reached while waiting for {what} responses "
                             f"({len(entry.answers)} of {expected} servers answered)") from None
        finally:
            self.pending.pop(rid, None)

    async def fetch(self, opts: BroadcastOptions) -> list[SocketDetails]:
        """The sockets *opts* selects on the other servers (``REMOTE_FETCH``)."""
        answers = await self._gather(opts.namespace, "fetch_sockets",
                                     functools.partial(self.wire.fetch, BroadcastOptions(
                                         opts.namespace, opts.rooms, opts.except_rooms)))
        return [found for answer in answers if answer.kind == "sockets" for found in answer.value]

    async def all_rooms(self, namespace: str) -> set[str]:
        """The rooms of *namespace* on the other servers (``ALL_ROOMS``)."""
        answers = await self._gather(namespace, "all_rooms", functools.partial(self.wire.all_rooms, namespace))
        return {room for answer in answers if answer.kind == "rooms" for room in answer.value}

    def server_side_emit(self, namespace: str, data: list[Any],
                         on_reply: Callable[[list[Any]], None] | None) -> None:
        """``SERVER_SIDE_EMIT``; with *on_reply*, each server's answer for ``requests_timeout``."""
        rid = None
        if on_reply is not None:
            def answered(response: NodeResponse) -> None:
                if response.kind == "sse":
                    on_reply([response.value])

            rid = self._follow(answered, self.requests_timeout)
        try:
            item = self.wire.server_side_emit(namespace, data, rid)
        except Exception:
            if rid is not None:
                self.discard(rid)
            raise
        self.publish(item)

    def broadcast_with_ack(self, event: EncodedEvent, opts: BroadcastOptions, on_ack: AckCallback,
                           timeout: float, on_count: Callable[[int], None] | None) -> str:
        """A ``BROADCAST`` request: each other server's count goes to *on_count*, each answer to
        *on_ack* (with no sid: Node's answers carry none) for *timeout* seconds. Returns its id."""
        def answered(response: NodeResponse) -> None:
            if response.kind == "count" and on_count is not None:
                on_count(response.value)
            elif response.kind == "ack":
                on_ack("", [response.value])

        rid = self._follow(answered, timeout)
        try:
            item = self.wire.broadcast_with_ack(event, opts, rid, timeout)
        except Exception:
            self.discard(rid)
            raise
        self.publish(item)
        return rid

    async def call(self, event: EncodedEvent, sid: str, timeout: float | None) -> list[Any]:
        """Send *event* to client *sid* on another server and return its answer.

        :class:`~tornado_sio.DisconnectedError` once every other server said it
        has no such client; :class:`~tornado_sio.AckTimeout` past *timeout*.
        """
        namespace = event.namespace
        others = await self.server_count(namespace) - 1
        if others <= 0:
            raise DisconnectedError(f"no client {sid} in namespace {namespace} in any process")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        tally = [0, 0]  # servers that counted, clients they sent to

        def on_count(count: int) -> None:
            tally[0] += 1
            tally[1] += count
            if tally[0] >= others and tally[1] == 0 and not future.done():
                future.set_exception(DisconnectedError(f"no client {sid} in namespace {namespace} in any process"))

        def on_ack(_: str, args: list[Any]) -> None:
            if not future.done():
                future.set_result(args)

        wait = timeout or self.adapter.options.ack_timeout or 3600.0
        rid = self.broadcast_with_ack(event, BroadcastOptions(namespace, frozenset((sid,))), on_ack, wait, on_count)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise AckTimeout(f"client {sid} did not acknowledge {event.data[0]!r} within {timeout}s") from None
        finally:
            self.discard(rid)
