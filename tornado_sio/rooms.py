"""In-memory rooms: who is in which room of which namespace, in this process.

Every socket is in its own sid room. A room that empties is freed at once, so a
long-running server does not accumulate dead rooms. The Redis manager
(``redis_manager.py``) wraps this same store for the local side of a cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterable, Iterator, List, Optional, Set, Union

if TYPE_CHECKING:
    from .socket import Socket

__all__ = ["RoomStore", "Rooms"]

#: ``to=`` accepts one room (a str) or several.
Rooms = Union[None, str, Iterable[str]]


def room_list(to: Rooms) -> Optional[List[str]]:
    """Normalise a ``to=`` value: None means the whole namespace."""
    if to is None:
        return None
    if isinstance(to, str):
        return [to]
    return list(to)


class RoomStore:
    """Maps ``namespace -> room -> {sid: Socket}`` and ``sid -> Socket``."""

    __slots__ = ("_rooms", "_members", "sockets")

    def __init__(self) -> None:
        self._rooms: Dict[str, Dict[str, Dict[str, "Socket"]]] = {}
        #: Every socket of a namespace (the broadcast set), by namespace.
        self._members: Dict[str, Dict[str, "Socket"]] = {}
        #: Every local socket by its sid (sids are unique across namespaces).
        self.sockets: Dict[str, "Socket"] = {}

    def add(self, socket: "Socket") -> None:
        """A socket joins its namespace and its own sid room."""
        self.sockets[socket.sid] = socket
        self._members.setdefault(socket.namespace, {})[socket.sid] = socket
        self.enter(socket, socket.sid)

    def remove(self, socket: "Socket") -> None:
        """A socket leaves every room and its namespace."""
        for room in list(socket.rooms):
            self.leave(socket, room)
        members = self._members.get(socket.namespace)
        if members is not None:
            members.pop(socket.sid, None)
            if not members:
                del self._members[socket.namespace]
        self.sockets.pop(socket.sid, None)

    def enter(self, socket: "Socket", room: str) -> None:
        self._rooms.setdefault(socket.namespace, {}).setdefault(room, {})[socket.sid] = socket
        socket.rooms.add(room)

    def leave(self, socket: "Socket", room: str) -> None:
        socket.rooms.discard(room)
        rooms = self._rooms.get(socket.namespace)
        if rooms is None:
            return
        members = rooms.get(room)
        if members is not None:
            members.pop(socket.sid, None)
            if not members:
                del rooms[room]
                if not rooms:
                    del self._rooms[socket.namespace]

    def close_room(self, namespace: str, room: str) -> None:
        """Everybody leaves *room*; the room is freed."""
        for socket in list(self._rooms.get(namespace, {}).get(room, {}).values()):
            self.leave(socket, room)

    def recipients(self, namespace: str, to: Rooms, skip: Optional[Set[str]] = None) -> Iterator["Socket"]:
        """Each socket in any of the rooms (or the whole namespace), once, minus *skip*."""
        rooms = room_list(to)
        if rooms is None:
            candidates: Iterable["Socket"] = list(self._members.get(namespace, {}).values())
        elif len(rooms) == 1:
            candidates = list(self._rooms.get(namespace, {}).get(rooms[0], {}).values())
        else:
            by_room = self._rooms.get(namespace, {})
            seen: Dict[str, "Socket"] = {}
            for room in rooms:
                seen.update(by_room.get(room, {}))
            candidates = list(seen.values())
        if skip:
            return (s for s in candidates if s.sid not in skip)
        return iter(candidates)

    def has_room(self, namespace: str, room: str) -> bool:
        return room in self._rooms.get(namespace, {})

    def room_names(self, namespace: str) -> List[str]:
        return list(self._rooms.get(namespace, {}))

    def namespace_size(self, namespace: str) -> int:
        return len(self._members.get(namespace, {}))

    def __len__(self) -> int:
        return len(self.sockets)
