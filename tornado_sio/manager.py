"""What an emit or a room operation does: :class:`LocalManager`, one process.

The server hands every emit, room change, disconnect-by-sid and ``call()`` to
its manager. This one acts on the sockets of this process (the
:class:`~tornado_sio.rooms.RoomStore`). ``redis_manager.RedisManager``
subclasses it so the same calls also reach the sockets of other processes; the
public API of :class:`~tornado_sio.SocketIO` does not change.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Set

from .exceptions import AckTimeout, DisconnectedError
from .protocol.socketio import SIOPacket, SIOType
from .rooms import Rooms, RoomStore
from .socket import Socket, SocketState, prepare

if TYPE_CHECKING:
    from .server import SocketIO

__all__ = ["LocalManager", "call_result"]

log = logging.getLogger("tornado_sio.manager")


def call_result(args: List[Any]) -> Any:
    """``call()``'s return: one ack argument as is, several as a tuple, none as None."""
    if not args:
        return None
    return args[0] if len(args) == 1 else tuple(args)


class LocalManager:
    """Emits and room operations on the sockets of this process."""

    def __init__(self, server: "SocketIO") -> None:
        self.server = server
        self.store: RoomStore = server.rooms_store

    async def start(self) -> None:
        """Connect to whatever backs the manager (nothing, here)."""

    async def stop(self) -> None:
        """Release what :meth:`start` took."""

    def socket(self, sid: str, namespace: Optional[str] = None) -> Optional[Socket]:
        """The local socket *sid* (in *namespace* when given), or None."""
        socket = self.store.sockets.get(sid)
        if socket is None or (namespace is not None and socket.namespace != namespace):
            return None
        return socket

    # -- emitting --------------------------------------------------------

    def emit(self, namespace: str, data: List[Any], to: Rooms = None, skip: Optional[Set[str]] = None,
             callback: Optional[Callable[..., Any]] = None, timeout: Optional[float] = None) -> None:
        """Deliver ``[event, *args]`` to the matching local sockets, each once.

        Without a callback the packet is encoded once for all of them; with one,
        each recipient gets its own ack id.
        """
        if callback is None:
            prepared = prepare(SIOPacket(SIOType.EVENT, namespace, data))
            for socket in self.store.recipients(namespace, to, skip):
                socket.send(prepared)
            return
        for socket in self.store.recipients(namespace, to, skip):
            socket.send_with_ack(SIOPacket(SIOType.EVENT, namespace, data), callback,
                                 timeout or self.server.ack_timeout)

    async def call(self, namespace: str, data: List[Any], sid: str, timeout: Optional[float]) -> Any:
        """Emit to one socket and wait for its ack (see :meth:`SocketIO.call`)."""
        socket = self.socket(sid, namespace)
        if socket is None or socket.state == SocketState.DISCONNECTED:
            raise DisconnectedError(f"no client {sid} in namespace {namespace}")
        future: "asyncio.Future[List[Any]]" = asyncio.get_running_loop().create_future()
        ack_id = socket.send_with_ack(SIOPacket(SIOType.EVENT, namespace, data), future, None)
        try:
            answer = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            socket.forget_ack(ack_id)
            raise AckTimeout(f"client {sid} did not acknowledge {data[0]!r} within {timeout}s") from None
        return call_result(answer)

    # -- rooms and clients ----------------------------------------------

    def enter_room(self, sid: str, room: str, namespace: str) -> None:
        socket = self.socket(sid, namespace)
        if socket is not None and socket.state != SocketState.DISCONNECTED:
            self.store.enter(socket, room)

    def leave_room(self, sid: str, room: str, namespace: str) -> None:
        socket = self.socket(sid, namespace)
        if socket is not None:
            self.store.leave(socket, room)

    def close_room(self, room: str, namespace: str) -> None:
        self.store.close_room(namespace, room)

    def rooms(self, sid: str, namespace: str) -> List[str]:
        socket = self.socket(sid, namespace)
        return sorted(socket.rooms) if socket is not None else []

    def disconnect(self, sid: str, namespace: str) -> None:
        """Disconnect local socket *sid*: it gets a DISCONNECT, its handler runs."""
        socket = self.socket(sid, namespace)
        if socket is None or socket.state == SocketState.DISCONNECTED:
            return
        if socket.connected:
            socket.send_packet(SIOPacket(SIOType.DISCONNECT, socket.namespace))
        self.server._socket_gone(socket, "server namespace disconnect")
