"""The in-memory adapter: rooms and delivery for the sockets of one process.

This is where a room is stored: ``namespace -> room -> {sid: socket}``, plus
each socket's rooms in join order. Every socket is in its own sid room. A room
that empties is freed at once, so a long-running server does not accumulate
dead rooms. The Redis adapter subclasses this one and adds only transport.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
import uuid
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from ..exceptions import AckTimeout, DisconnectedError
from ..protocol.outgoing import Prepared
from ..protocol.serializer import get_serializer
from ..protocol.socketio import SIOPacket, SIOType
from .base import AckCallback, Adapter, BroadcastOptions, Recipient, SocketDetails, selects

__all__ = ["MemoryAdapter", "SessionStore"]

log = logging.getLogger("tornado_sio.adapter")


class MemoryAdapter(Adapter):
    """Rooms and fan-out in this process only (the default adapter)."""

    # -- membership ------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: namespace -> room -> {sid: socket}
        self.room_members: Dict[str, Dict[str, Dict[str, Recipient]]] = {}
        #: namespace -> {sid: socket}: the broadcast set of each namespace.
        self.namespace_members: Dict[str, Dict[str, Recipient]] = {}
        #: sid -> socket, for every local socket (sids are unique across namespaces).
        self.by_sid: Dict[str, Recipient] = {}
        #: sid -> its rooms in join order (a dict used as an ordered set).
        self.rooms_of: Dict[str, Dict[str, None]] = {}
        recovery = getattr(self.options, "connection_state_recovery", None)
        #: Connection state recovery's packets and sessions; None when it is off.
        self.recovery: Optional[SessionStore] = SessionStore(recovery) if recovery else None
        #: The server's Socket.IO parser (``serializer``), and its ``prepare``, which encodes a
        #: broadcast once for all its recipients.
        self.serializer = get_serializer(getattr(self.options, "serializer", "json"))
        self.prepare = self.serializer.prepare

    def add_socket(self, socket: Recipient) -> None:
        self.by_sid[socket.sid] = socket
        self.rooms_of[socket.sid] = {}
        members = self.namespace_members.get(socket.namespace)
        if members is None:
            members = self.namespace_members[socket.namespace] = {}
            self.namespace_opened(socket.namespace)
        members[socket.sid] = socket
        self.add_all(socket.sid, (socket.sid,))

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        socket = self.by_sid.get(sid)
        if socket is None:
            return
        joined = self.rooms_of[sid]
        by_room = self.room_members.setdefault(socket.namespace, {})
        for room in rooms:
            if room in joined:
                continue
            members = by_room.get(room)
            if members is None:
                members = by_room[room] = {}
                self.room_opened(socket.namespace, room)
            members[sid] = socket
            joined[room] = None
            if self.membership_listener is not None:
                self.membership_listener(socket.namespace, room, sid, True)

    def delete(self, sid: str, room: str) -> None:
        socket = self.by_sid.get(sid)
        joined = self.rooms_of.get(sid)
        if socket is None or joined is None or room not in joined:
            return
        del joined[room]
        if self.membership_listener is not None:
            self.membership_listener(socket.namespace, room, sid, False)
        by_room = self.room_members.get(socket.namespace)
        if by_room is None:
            return
        members = by_room.get(room)
        if members is not None:
            members.pop(sid, None)
            if not members:
                del by_room[room]
                if not by_room:
                    del self.room_members[socket.namespace]
                self.room_closed(socket.namespace, room)

    def delete_all(self, sid: str) -> None:
        socket = self.by_sid.get(sid)
        if socket is None:
            return
        for room in list(self.rooms_of.get(sid, ())):
            self.delete(sid, room)
        del self.rooms_of[sid]
        del self.by_sid[sid]
        members = self.namespace_members.get(socket.namespace)
        if members is not None:
            members.pop(sid, None)
            if not members:
                del self.namespace_members[socket.namespace]
                self.namespace_closed(socket.namespace)

    # Hooks for subclasses that follow local membership (the Redis adapter
    # subscribes to a room's channel while this process holds a member).

    def namespace_opened(self, namespace: str) -> None:
        """This process now holds a socket of *namespace*."""

    def namespace_closed(self, namespace: str) -> None:
        """This process holds no socket of *namespace* any more."""

    def room_opened(self, namespace: str, room: str) -> None:
        """This process now holds a member of *room*."""

    def room_closed(self, namespace: str, room: str) -> None:
        """This process holds no member of *room* any more."""

    # -- selection ----------------------------------------------------------------

    def recipients(self, opts: BroadcastOptions) -> Iterator[Recipient]:
        """Each local socket *opts* selects, once, minus the members of ``except_rooms``."""
        namespace = opts.namespace
        rooms = opts.rooms
        if not rooms:
            candidates: Iterable[Recipient] = list(self.namespace_members.get(namespace, {}).values())
        elif len(rooms) == 1:
            (room,) = rooms
            candidates = list(self.room_members.get(namespace, {}).get(room, {}).values())
        else:
            by_room = self.room_members.get(namespace, {})
            seen: Dict[str, Recipient] = {}
            for room in rooms:
                seen.update(by_room.get(room, {}))
            candidates = list(seen.values())
        if opts.except_rooms:
            skip = self.excluded(namespace, opts.except_rooms)
            return (s for s in candidates if s.sid not in skip)
        return iter(candidates)

    def excluded(self, namespace: str, except_rooms: Iterable[str]) -> Set[str]:
        """The sids to leave out: the members of *except_rooms* (a sid is its own room)."""
        by_room = self.room_members.get(namespace, {})
        skip: Set[str] = set()
        for room in except_rooms:
            skip.add(room)
            members = by_room.get(room)
            if members:
                skip.update(members)
        return skip

    # -- delivery ----------------------------------------------------------------

    def broadcast(self, packet: SIOPacket, opts: BroadcastOptions) -> None:
        """Deliver *packet* to each selected socket; with connection state recovery on,
        an event (not volatile) gets an offset as its last argument and is kept for replay."""
        if self.recovery is not None:
            packet = self.recovery.record(packet, opts)
        self.deliver(self.prepare(packet), self.recipients(opts), opts)

    def deliver(self, prepared: Prepared, recipients: Iterable[Recipient], opts: BroadcastOptions) -> None:
        """Send *prepared* to each of *recipients*, counted in :attr:`delivered`, with the
        emit's flags: ``opts.compress`` False is never deflated; a ``opts.volatile`` packet is
        skipped (counted in :attr:`volatile_dropped`) for a socket that cannot write now."""
        prepared.compress = opts.compress
        targets = recipients if isinstance(recipients, list) else list(recipients)
        if opts.volatile:
            dropped = 0
            for socket in targets:
                if socket.writable:
                    socket.send(prepared)
                else:
                    dropped += 1  # volatile: dropped, never queued, for a transport that cannot write now
            self.volatile_dropped += dropped
            self.delivered += len(targets) - dropped
            return
        for socket in targets:
            socket.send(prepared)
        self.delivered += len(targets)  # counted once per broadcast, not per recipient

    def broadcast_with_ack(self, packet: SIOPacket, opts: BroadcastOptions, on_ack: AckCallback,
                           timeout: Optional[float], on_count: Optional[Callable[[int], None]] = None) -> None:
        """Send to each selected socket with its own ack id; *on_count* gets how many (once)."""
        sent = 0
        for socket in self.recipients(opts):
            sid = socket.sid
            # EncodeError, or TornadoSIOError past max_pending_acks, goes to the emitting code
            socket.send_with_ack(SIOPacket(packet.type, packet.namespace, packet.data),
                                 lambda args, sid=sid: on_ack(sid, args),  # type: ignore[misc]
                                 timeout)
            sent += 1
        self.delivered += sent
        if on_count is not None:
            on_count(sent)

    async def call(self, packet: SIOPacket, sid: str, timeout: Optional[float]) -> List[Any]:
        socket = self.get_socket(sid, packet.namespace)
        if socket is None or not socket.connected:
            raise DisconnectedError(f"no client {sid} in namespace {packet.namespace}")
        return await ask(socket, packet, timeout)

    # -- queries -------------------------------------------------------------------

    def get_socket(self, sid: str, namespace: Optional[str] = None) -> Optional[Recipient]:
        socket = self.by_sid.get(sid)
        if socket is None or (namespace is not None and socket.namespace != namespace):
            return None
        return socket

    def sockets(self, opts: BroadcastOptions) -> Set[str]:
        return {socket.sid for socket in self.recipients(opts)}

    def socket_rooms(self, sid: str) -> List[str]:
        return list(self.rooms_of.get(sid, ()))

    def local_sockets(self) -> List[Recipient]:
        return list(self.by_sid.values())

    def has_room(self, namespace: str, room: str) -> bool:
        """Whether some local socket of *namespace* is in *room*."""
        return room in self.room_members.get(namespace, {})

    def __len__(self) -> int:
        return len(self.by_sid)

    async def fetch_sockets(self, opts: BroadcastOptions) -> List[SocketDetails]:
        return [socket.details() for socket in self.recipients(opts)]

    # -- operations on selected sockets -------------------------------------------

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        for socket in list(self.recipients(opts)):
            self.add_all(socket.sid, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        for socket in list(self.recipients(opts)):
            for room in rooms:
                self.delete(socket.sid, room)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        for socket in list(self.recipients(opts)):
            socket.disconnect(close)

    def server_side_emit(self, namespace: str, data: List[Any],
                         on_reply: Optional[Callable[[List[Any]], None]] = None) -> None:
        # As Node's in-memory adapter: there is no other server to reach.
        raise RuntimeError("server_side_emit() needs a cluster adapter (SocketIO(message_queue=...)); "
                           "this process is the only server")

    # -- connection state recovery -----------------------------------------------------

    def persist_session(self, session: Dict[str, Any]) -> None:
        """Keep *session* for ``max_disconnection_duration`` seconds (Node's ``SessionAwareAdapter``)."""
        self._store("persist_session").persist(session)

    async def restore_session(self, pid: str, offset: str) -> Optional[Dict[str, Any]]:
        """The session kept for *pid* with ``missed_packets``, or None (unknown, expired, offset gone)."""
        return self._store("restore_session").restore(pid, offset)

    def _store(self, what: str) -> SessionStore:
        if self.recovery is None:
            raise RuntimeError(f"{what}() needs connection state recovery: "
                               "SocketIO(connection_state_recovery={...})")
        return self.recovery


class SessionStore:
    """What connection state recovery keeps in one process (Node's ``SessionAwareAdapter``).

    Each recorded broadcast gets an offset, a unique string that sorts in
    emission order (a random prefix per process, so an offset of another run or
    process is unknown here); the last ``max_packets`` broadcasts are kept,
    the oldest evicted first, and so are the sessions of disconnected sockets
    for ``max_disconnection_duration`` seconds. Expired entries go lazily, on
    the next record, persist or restore: no timer.

    :param settings: ``max_disconnection_duration`` (seconds, default 120) and
        ``max_packets`` (default 1000).
    :param clock: the time source.
    """

    def __init__(self, settings: Dict[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        self.duration = float(settings.get("max_disconnection_duration", 120.0))
        self.max_packets = int(settings.get("max_packets", 1000))
        if not self.duration > 0 or self.max_packets < 1:
            raise ValueError("max_disconnection_duration must be positive and max_packets at least 1")
        self.clock = clock
        self._prefix = uuid.uuid4().hex[:8]
        self._seq = itertools.count(1)
        #: (offset, opts, data, emitted_at), oldest first.
        self.packets: Deque[Tuple[str, BroadcastOptions, List[Any], float]] = collections.deque(
            maxlen=self.max_packets)
        self._index: Dict[str, int] = {}  # offset -> its sequence number
        #: pid -> (session, disconnected_at), oldest first.
        self.sessions: Dict[str, Tuple[Dict[str, Any], float]] = {}

    def next_offset(self) -> str:
        return f"{self._prefix}-{next(self._seq):012x}"

    def record(self, packet: SIOPacket, opts: BroadcastOptions) -> SIOPacket:
        """*packet* with its offset appended when it is kept (an event, not volatile); else as is."""
        if packet.type not in (SIOType.EVENT, SIOType.BINARY_EVENT) or packet.id is not None or opts.volatile \
                or not isinstance(packet.data, list):
            return packet
        offset = self.next_offset()
        data = [*packet.data, offset]
        now = self.clock()
        self._expire(now)
        if len(self.packets) == self.max_packets:
            self._index.pop(self.packets[0][0], None)
        self.packets.append((offset, opts, data, now))
        self._index[offset] = 1
        return SIOPacket(packet.type, packet.namespace, data)

    def persist(self, session: Dict[str, Any]) -> None:
        now = self.clock()
        self._expire(now)
        self.sessions.pop(session["pid"], None)  # re-inserted last: the dict stays in expiry order
        self.sessions[session["pid"]] = (dict(session), now)

    def restore(self, pid: str, offset: str) -> Optional[Dict[str, Any]]:
        self._expire(self.clock())
        kept = self.sessions.get(pid) if isinstance(pid, str) else None
        if kept is None or not isinstance(offset, str) or offset not in self._index:
            return None
        del self.sessions[pid]  # one restore per disconnection
        session = dict(kept[0])
        missed: List[List[Any]] = []
        after = False
        for packet_offset, opts, data, _ in self.packets:
            if after and selects(opts, session.get("namespace", "/"), session.get("rooms", ())):
                missed.append(list(data))
            after = after or packet_offset == offset
        session["missed_packets"] = missed
        return session

    def _expire(self, now: float) -> None:
        threshold = now - self.duration
        while self.sessions:
            pid, (_, at) = next(iter(self.sessions.items()))
            if at >= threshold:
                break
            del self.sessions[pid]
        while self.packets and self.packets[0][3] < threshold:
            self._index.pop(self.packets.popleft()[0], None)


async def ask(socket: Recipient, packet: SIOPacket, timeout: Optional[float]) -> List[Any]:
    """Send *packet* to local *socket* with an ack id and wait for the answer.

    Raises :class:`~tornado_sio.AckTimeout` after *timeout* seconds (the ack is
    then forgotten) and :class:`~tornado_sio.DisconnectedError` when the socket
    leaves first.
    """
    future: asyncio.Future[List[Any]] = asyncio.get_running_loop().create_future()
    ack_id = socket.send_with_ack(packet, future, None)
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        socket.forget_ack(ack_id)
        event = packet.data[0] if isinstance(packet.data, list) and packet.data else "?"
        raise AckTimeout(f"client {socket.sid} did not acknowledge {event!r} within {timeout}s") from None
