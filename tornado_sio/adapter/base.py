"""The fan-out seam: one interface between the server and whoever delivers.

:class:`Adapter` is shaped like Node's ``socket.io-adapter``: membership
(``addAll``/``del``/``delAll``), delivery with options (``broadcast``,
``broadcastWithAck``), queries (``sockets``, ``socketRooms``,
``fetchSockets``), operations on selected sockets (``addSockets``,
``delSockets``, ``disconnectSockets``), ``serverSideEmit``, and connection state
recovery (``persistSession``/``restoreSession``). The in-memory adapter
(:mod:`.memory`) serves one process and is the default; the Redis adapter
(:mod:`.redis`) adds transport and nothing else. The server never asks which
one it has.

Two differences from Node, both for Python's sake:

* one adapter serves every namespace of a server, so the namespace travels in
  :class:`BroadcastOptions` (the Redis link is shared, and sids are unique
  across namespaces anyway);
* ``del`` is a keyword, so the members are :meth:`Adapter.delete` and
  :meth:`Adapter.delete_all`.

The adapter delivers to :class:`Recipient` objects, which the server layer
implements (its ``Socket``); the adapter never imports the server.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, NamedTuple, Optional, Protocol, Set, Union

from ..options import Options
from ..protocol.outgoing import Prepared
from ..protocol.socketio import SIOPacket

__all__ = [
    "Adapter",
    "BroadcastOptions",
    "Recipient",
    "SocketDetails",
    "AckCallback",
    "AckTarget",
    "Rooms",
    "room_set",
    "selects",
]

#: ``to=`` accepts one room (a str) or several.
Rooms = Union[None, str, Iterable[str]]

#: Called with ``(sid, ack_args)`` for each recipient that answers a broadcast ack.
AckCallback = Callable[[str, List[Any]], None]

#: What waits for one client's ack: a callback given the ack arguments, or a
#: future that gets them (and ``DisconnectedError`` if the client leaves first).
AckTarget = Union[Callable[[List[Any]], None], "asyncio.Future[List[Any]]"]


def room_set(to: Rooms) -> FrozenSet[str]:
    """Normalise a ``to=``/``skip_sid=`` value: None is the empty set."""
    if to is None:
        return frozenset()
    if isinstance(to, str):
        return frozenset((to,))
    return frozenset(to)


class BroadcastOptions(NamedTuple):
    """Who a broadcast or a socket operation selects, and how it is delivered.

    ``rooms`` empty means the whole namespace. ``except_rooms`` leaves out every
    member of those rooms (a sid is a room, so this is also ``skip_sid``).
    ``local`` keeps the operation in this process; ``volatile`` and ``compress``
    are delivery flags. A named tuple, immutable and cheap to build: one is
    made for every emit.
    """

    namespace: str = "/"
    rooms: FrozenSet[str] = frozenset()
    except_rooms: FrozenSet[str] = frozenset()
    local: bool = False
    volatile: bool = False
    compress: bool = True


def selects(opts: BroadcastOptions, namespace: str, rooms: Iterable[str]) -> bool:
    """Whether *opts* selects a socket of *namespace* in *rooms* (Node's ``shouldIncludePacket``):
    what a recovering client missed is the recorded broadcasts this is true for."""
    rooms = list(rooms)
    if opts.namespace != namespace:
        return False
    included = not opts.rooms or any(room in opts.rooms for room in rooms)
    return included and not any(room in opts.except_rooms for room in rooms)


@dataclasses.dataclass
class SocketDetails:
    """A socket as ``fetch_sockets`` describes it, local or remote."""

    sid: str
    namespace: str
    rooms: List[str]
    data: Dict[str, Any]
    handshake: Dict[str, Any]


class Recipient(Protocol):
    """A socket as the adapter sees it: the server layer's ``Socket`` implements it."""

    sid: str
    namespace: str

    @property
    def connected(self) -> bool:
        """Whether the socket may be sent to."""

    @property
    def writable(self) -> bool:
        """Whether its transport would write a packet now (``volatile`` emits skip it otherwise)."""

    def send(self, prepared: Prepared) -> None:
        """Deliver one prepared packet to this socket."""

    def send_with_ack(self, packet: SIOPacket, target: AckTarget, timeout: Optional[float]) -> int:
        """Send *packet* with a fresh ack id for *target*; return the id."""

    def forget_ack(self, ack_id: int) -> None:
        """Stop waiting for ack *ack_id* (its waiter gave up)."""

    def disconnect(self, close: bool = False) -> None:
        """Disconnect this socket (its handler runs); with *close* the whole connection."""

    def details(self) -> SocketDetails:
        """What ``fetch_sockets`` reports of this socket."""


class Adapter(abc.ABC):
    """The interface every adapter implements; see the module docstring.

    Membership methods act on sockets of this process. Everything taking
    :class:`BroadcastOptions` acts on every process, unless ``opts.local``.
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        #: Who receives other servers' ``server_side_emit`` (see :meth:`on_server_event`).
        self.server_event_handler: Optional[
            Callable[[str, List[Any], Optional[Callable[[List[Any]], None]]], None]] = None
        #: Told ``(namespace, room, sid, joined)`` each time a local socket joins or leaves a
        #: room (its sid room included), while the server layer watches rooms
        #: (:mod:`tornado_sio.observe`); None, the usual case, costs one test per change.
        self.membership_listener: Optional[Callable[[str, str, str, bool], None]] = None
        #: ``SocketIO.emit`` calls of this process that reached the adapter, since start.
        self.emits = 0
        #: Broadcast packets handed to local sockets (one per recipient), since start.
        self.delivered = 0
        #: ``volatile`` packets skipped for a local socket that could not take them right now.
        self.volatile_dropped = 0

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Connect to whatever backs the adapter; a failure raises ``MessageQueueError``."""

    async def stop(self) -> None:
        """Release what :meth:`start` took."""

    async def sync(self, timeout: float = 5.0) -> bool:
        """Wait until what this process published and subscribed is in effect.

        True at once for an adapter with nothing in flight (in memory); the
        Redis adapter waits for its subscriptions and publisher queue.
        """
        return True

    # -- membership (local sockets) -------------------------------------------

    @abc.abstractmethod
    def add_socket(self, socket: Recipient) -> None:
        """A new socket joins its namespace and its own sid room."""

    @abc.abstractmethod
    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        """Local socket *sid* joins *rooms* (Node's ``addAll``)."""

    @abc.abstractmethod
    def delete(self, sid: str, room: str) -> None:
        """Local socket *sid* leaves *room* (Node's ``del``)."""

    @abc.abstractmethod
    def delete_all(self, sid: str) -> None:
        """Local socket *sid* leaves every room and its namespace (Node's ``delAll``)."""

    # -- delivery ------------------------------------------------------------

    @abc.abstractmethod
    def broadcast(self, packet: SIOPacket, opts: BroadcastOptions) -> None:
        """Deliver *packet* to every selected socket, each once.

        Raises :class:`~tornado_sio.EncodeError` before anything is sent when the
        packet cannot be encoded.
        """

    @abc.abstractmethod
    def broadcast_with_ack(self, packet: SIOPacket, opts: BroadcastOptions, on_ack: AckCallback,
                           timeout: Optional[float],
                           on_count: Optional[Callable[[int], None]] = None) -> None:
        """Like :meth:`broadcast`, each recipient with its own ack id; *on_ack* gets each answer.

        *on_count* is called once per server (this one included) with how many
        sockets that server sent the packet to, as Node's ``clientCountCallback``:
        the caller has every answer when it has one count per server
        (:meth:`server_count`) and as many answers as the counts add up to.
        """

    async def server_count(self) -> int:
        """How many servers the cluster has, this one included (Node's ``serverCount``)."""
        return 1

    @abc.abstractmethod
    async def call(self, packet: SIOPacket, sid: str, timeout: Optional[float]) -> List[Any]:
        """Send *packet* to socket *sid* of any process and return its ack arguments.

        Raises :class:`~tornado_sio.DisconnectedError` when no such socket is
        connected (or it leaves first) and :class:`~tornado_sio.AckTimeout`.
        """

    # -- queries -------------------------------------------------------------

    @abc.abstractmethod
    def get_socket(self, sid: str, namespace: Optional[str] = None) -> Optional[Recipient]:
        """Local socket *sid* (in *namespace* when given), or None."""

    @abc.abstractmethod
    def sockets(self, opts: BroadcastOptions) -> Set[str]:
        """The sids of the local sockets *opts* selects (Node's ``sockets``)."""

    @abc.abstractmethod
    def socket_rooms(self, sid: str) -> List[str]:
        """The rooms of local socket *sid*, in join order (its sid room first); [] if unknown."""

    @abc.abstractmethod
    def local_sockets(self) -> List[Recipient]:
        """Every socket of this process."""

    @abc.abstractmethod
    async def fetch_sockets(self, opts: BroadcastOptions) -> List[SocketDetails]:
        """The sockets *opts* selects, on every process (Node's ``fetchSockets``)."""

    # -- operations on selected sockets ---------------------------------------

    @abc.abstractmethod
    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """The selected sockets join *rooms* (Node's ``addSockets``)."""

    @abc.abstractmethod
    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        """The selected sockets leave *rooms* (Node's ``delSockets``)."""

    @abc.abstractmethod
    def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        """Disconnect the selected sockets (Node's ``disconnectSockets``)."""

    @abc.abstractmethod
    def server_side_emit(self, namespace: str, data: List[Any],
                         on_reply: Optional[Callable[[List[Any]], None]] = None) -> None:
        """Emit ``[event, *args]`` to the other servers of the cluster (Node's ``serverSideEmit``).

        With *on_reply*, each other server's handler answers, and *on_reply* gets
        each answer's arguments; the caller expects :meth:`server_count` ``- 1``
        answers. The receiving side hands incoming events to the callable set
        with :meth:`on_server_event`.
        """

    def on_server_event(self, handler: Callable[[str, List[Any], Optional[Callable[[List[Any]], None]]], None]
                        ) -> None:
        """Set who receives other servers' ``server_side_emit``: ``handler(namespace, data, reply)``,
        where *reply* (None when no answer is wanted) sends the handler's answer back."""
        self.server_event_handler = handler

    # -- connection state recovery -----------------------------------------------

    @abc.abstractmethod
    def persist_session(self, session: Dict[str, Any]) -> None:
        """Keep a disconnected socket's state for a later :meth:`restore_session`.

        *session* has ``sid``, ``pid``, ``namespace``, ``rooms`` and ``data``
        (Node's ``SessionToPersist``); it is kept ``max_disconnection_duration``
        seconds.
        """

    @abc.abstractmethod
    async def restore_session(self, pid: str, offset: str) -> Optional[Dict[str, Any]]:
        """The state kept for *pid* plus ``missed_packets`` (the event data lists
        broadcast to it after *offset*, oldest first), or None when there is none,
        it expired, or *offset* is unknown (Node's ``restoreSession``)."""
