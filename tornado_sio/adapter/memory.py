"""The in-memory adapter: rooms and delivery for the sockets of one process.

This is where a room is stored: ``namespace -> room -> {sid: socket}``, plus
each socket's rooms in join order. Every socket is in its own sid room. A room
that empties is freed at once, so a long-running server does not accumulate
dead rooms. The Redis adapter subclasses this one and adds only transport.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set

from ..exceptions import AckTimeout, DisconnectedError
from ..protocol.outgoing import prepare
from ..protocol.socketio import SIOPacket
from .base import AckCallback, Adapter, BroadcastOptions, Recipient, SocketDetails

__all__ = ["MemoryAdapter"]

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

    def delete(self, sid: str, room: str) -> None:
        socket = self.by_sid.get(sid)
        joined = self.rooms_of.get(sid)
        if socket is None or joined is None or room not in joined:
            return
        del joined[room]
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
        prepared = prepare(packet)
        for socket in self.recipients(opts):
            socket.send(prepared)

    def broadcast_with_ack(self, packet: SIOPacket, opts: BroadcastOptions, on_ack: AckCallback,
                           timeout: Optional[float]) -> None:
        for socket in self.recipients(opts):
            sid = socket.sid
            # EncodeError, or TornadoSIOError past max_pending_acks, goes to the emitting code
            socket.send_with_ack(SIOPacket(packet.type, packet.namespace, packet.data),
                                 lambda args, sid=sid: on_ack(sid, args),  # type: ignore[misc]
                                 timeout)

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

    def server_side_emit(self, namespace: str, data: List[Any]) -> None:
        # As Node's in-memory adapter: there is no other server to reach.
        raise RuntimeError("server_side_emit() needs a cluster adapter (SocketIO(message_queue=...)); "
                           "this process is the only server")

    # -- connection state recovery -----------------------------------------------------

    def persist_session(self, session: Dict[str, Any]) -> None:
        raise NotImplementedError("connection state recovery is not available yet "
                                  "(it arrives with the Node server API)")

    async def restore_session(self, pid: str, offset: str) -> Optional[Dict[str, Any]]:
        raise NotImplementedError("connection state recovery is not available yet "
                                  "(it arrives with the Node server API)")


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
