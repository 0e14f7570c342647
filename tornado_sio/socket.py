"""One client in one namespace (:class:`Socket`) and one connection (:class:`Client`).

A connection (an Engine.IO session or a SockJS session) carries any number of
namespaces; each connected namespace is a :class:`Socket` with its own sid,
session storage, pending acks and ordered event queue. A socket's rooms are
kept by the adapter (:mod:`tornado_sio.adapter`); the socket is what the
adapter delivers to (it implements :class:`~tornado_sio.adapter.base.Recipient`).

Every change of a socket's state happens here, through :meth:`Socket.accept`,
:meth:`Socket.refuse` and :meth:`Socket.end`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from .adapter.base import AckTarget, SocketDetails
from .engine.connection import Connection, HandshakeRequest
from .exceptions import DisconnectedError, TornadoSIOError
from .protocol.outgoing import Prepared
from .protocol.serializer import PacketDecoder
from .protocol.socketio import SIOPacket, SIOType

if TYPE_CHECKING:
    from .dispatch import Dispatcher
    from .server import SocketIO

__all__ = ["Socket", "Client", "SocketState", "QueuedEvent", "DisconnectReason"]

log = logging.getLogger("tornado_sio.server")

#: An event waiting behind a running handler: (handler, args, ack id, event name).
QueuedEvent = Tuple[Callable[..., Any], tuple, Optional[int], str]  # type: ignore[type-arg]


class DisconnectReason:
    """The reasons a ``disconnect`` handler receives (``SocketIO.reason``), as python-socketio 5.x.

    Flask-SocketIO code compares with these (``reason == socketio.reason.CLIENT_DISCONNECT``).
    The Engine.IO layer adds a few of Node's own: ``parse error``, ``connect timeout``,
    and ``server shutting down`` from :meth:`SocketIO.shutdown <tornado_sio.SocketIO.shutdown>`.
    """

    #: The client left the namespace (``sio.disconnect()``).
    CLIENT_DISCONNECT = "client disconnect"
    #: The server disconnected it (``disconnect()``, ``socketio.disconnect(sid)``).
    SERVER_DISCONNECT = "server disconnect"
    #: The client did not answer a ping in time.
    PING_TIMEOUT = "ping timeout"
    #: The connection closed (the client went away, or closed the transport).
    TRANSPORT_CLOSE = "transport close"
    #: The connection failed (a client not reading, an oversized message ...).
    TRANSPORT_ERROR = "transport error"


class SocketState(enum.IntEnum):
    """A socket's life: CONNECTING (connect handler running) → CONNECTED → DISCONNECTED."""

    CONNECTING = 1  # the connect handler is running; output is held back
    CONNECTED = 2
    DISCONNECTED = 3


class Client:
    """The server's state for one connection: its decoder and its namespaces."""

    __slots__ = ("conn", "decoder", "sockets", "noted", "session")

    def __init__(self, conn: Connection, decoder: PacketDecoder) -> None:
        self.conn = conn
        self.decoder = decoder
        self.sockets: Dict[str, Socket] = {}
        #: The ``session`` of every namespace of this connection (Flask-SocketIO shares it).
        self.session: Dict[str, Any] = {}
        #: Kinds of tolerated oddities already logged at INFO for this client.
        self.noted: Set[str] = set()

    def note(self, kind: str, message: str, *args: Any) -> None:
        """Log a tolerated oddity of this client at INFO once per kind, then at DEBUG,
        so a client repeating it at wire speed cannot flood the logs."""
        level = logging.DEBUG if kind in self.noted else logging.INFO
        self.noted.add(kind)
        log.log(level, "connection %s: " + message, self.conn.sid, *args)


class Socket:
    """One client connected to one namespace."""

    __slots__ = (
        "server", "dispatcher", "client", "namespace", "sid", "auth", "state",
        "acks", "ack_seq", "held", "queue", "running", "data", "pid", "recovered", "__weakref__",
    )

    def __init__(self, server: SocketIO, dispatcher: Dispatcher, client: Client, namespace: str,
                 auth: Any = None) -> None:
        #: The :class:`~tornado_sio.SocketIO` this socket belongs to.
        self.server = server
        self.dispatcher = dispatcher
        self.client = client
        self.namespace = namespace
        self.sid = secrets.token_urlsafe(15)
        self.auth = auth
        self.state = SocketState.CONNECTING
        #: Pending server-to-client acks: id -> (target, deadline).
        self.acks: Dict[int, Tuple[AckTarget, float]] = {}
        self.ack_seq = 0
        #: Output held back while the connect handler runs.
        self.held: List[Prepared] = []
        #: Events waiting for a running handler of this client (ordering). A list,
        #: not a deque: almost always empty (an empty deque costs ~700 B).
        self.queue: List[QueuedEvent] = []
        self.running = False
        #: Per-socket data (JSON-serialisable), as Node's ``socket.data``: reported by
        #: ``fetch_sockets`` on every process and kept by connection state recovery.
        self.data: Dict[str, Any] = {}
        #: The private id of connection state recovery (None when recovery is off).
        self.pid: Optional[str] = None
        #: Whether this socket was restored by connection state recovery.
        self.recovered = False

    def __repr__(self) -> str:
        return f"<Socket {self.sid} {self.namespace} {self.state.name}>"

    @property
    def request(self) -> HandshakeRequest:
        """The handshake request of the connection (headers, cookies, args, remote_ip)."""
        return self.client.conn.request

    @property
    def session(self) -> Dict[str, Any]:
        """Storage that lives as long as the connection, shared by all its namespaces
        (``tornado_sio.session``)."""
        return self.client.session

    @property
    def connected(self) -> bool:
        return self.state == SocketState.CONNECTED

    @property
    def writable(self) -> bool:
        """Whether the transport would write a packet right now (what ``volatile`` emits need):
        connected, and the connection's ``writable`` (WebSocket with nothing buffered, a
        pending polling GET, an active SockJS receiving request)."""
        return self.connected and self.client.conn.writable

    @property
    def rooms(self) -> List[str]:
        """This socket's rooms in join order, its own sid room first."""
        return self.server.adapter.socket_rooms(self.sid)

    def sid_in(self, namespace: str) -> Optional[str]:
        """The sid of this client's socket in *namespace* (None if not connected there)."""
        if namespace == self.namespace:
            return self.sid
        other = self.client.sockets.get(namespace)
        return other.sid if other is not None else None

    # -- output ----------------------------------------------------------

    def send(self, prepared: Prepared) -> None:
        """Send a prepared packet; held back while the connect handler runs."""
        state = self.state
        if state == SocketState.CONNECTED:
            if self.dispatcher.registry.any_outgoing:
                self.dispatcher.outgoing(self, prepared)
            if self.server.observers.event_sent:
                self.server.observers.sent(self, prepared)
            self.client.conn.send_message(prepared)
        elif state == SocketState.CONNECTING:
            if len(self.held) >= self.server.options.max_pending_events:
                log.warning("socket %s: too much output during connect; dropping the connection", self.sid)
                self.client.conn.close("transport error")
                return
            self.held.append(prepared)

    def send_packet(self, packet: SIOPacket) -> None:
        """Encode and send one packet."""
        self.send(self.dispatcher.prepare(packet))

    def send_with_ack(self, packet: SIOPacket, target: AckTarget, timeout: Optional[float]) -> int:
        """Send *packet* with a fresh ack id for *target*; return the id.

        The ack is registered only once the packet has encoded, so data refused
        by the encoder leaves nothing pending.
        """
        if len(self.acks) >= self.server.options.max_pending_acks:
            raise TornadoSIOError(
                f"socket {self.sid} has {len(self.acks)} unanswered acks (max_pending_acks)")
        ack_id = self.ack_seq
        packet.id = ack_id
        prepared = self.dispatcher.prepare(packet)
        self.ack_seq += 1
        self.acks[ack_id] = (target, time.monotonic() + timeout if timeout else float("inf"))
        self.dispatcher.acks_pending(self)
        self.send(prepared)
        return ack_id

    # -- state -----------------------------------------------------------

    def accept(self) -> None:
        """CONNECTING → CONNECTED: send the CONNECT reply, then what the connect handler emitted."""
        self.state = SocketState.CONNECTED
        conn = self.client.conn
        reply: Dict[str, Any] = {"sid": self.sid}
        if self.pid is not None:
            reply["pid"] = self.pid
        conn.send_message(self.dispatcher.prepare(SIOPacket(SIOType.CONNECT, self.namespace, reply)))
        held, self.held = self.held, []
        for prepared in held:
            conn.send_message(prepared)

    def refuse(self, payload: Dict[str, Any]) -> None:
        """→ DISCONNECTED: a CONNECT_ERROR carrying *payload*, or a DISCONNECT when the
        socket was already connected (``always_connect``), as python-socketio does."""
        packet = (SIOPacket(SIOType.DISCONNECT, self.namespace) if self.state == SocketState.CONNECTED
                  else SIOPacket(SIOType.CONNECT_ERROR, self.namespace, payload))
        self.state = SocketState.DISCONNECTED
        self.held = []
        self.client.conn.send_message(self.dispatcher.prepare(packet))

    def end(self) -> bool:
        """→ DISCONNECTED; return whether the socket was connected (its handler should run)."""
        was_connected = self.state == SocketState.CONNECTED
        self.state = SocketState.DISCONNECTED
        return was_connected

    def disconnect(self, close: bool = False) -> None:
        """Disconnect this socket: it gets a DISCONNECT and its handler runs.

        With *close*, the whole underlying connection is closed instead (every
        namespace of the client disconnects), as Node's ``disconnect(true)``.
        """
        if self.state == SocketState.DISCONNECTED:
            return
        if close:
            self.client.conn.close("server disconnect")
            return
        if self.connected:
            self.send_packet(SIOPacket(SIOType.DISCONNECT, self.namespace))
        self.dispatcher.socket_gone(self, DisconnectReason.SERVER_DISCONNECT)

    def details(self) -> SocketDetails:
        """What ``fetch_sockets`` reports of this socket."""
        request = self.request
        return SocketDetails(
            sid=self.sid, namespace=self.namespace, rooms=self.rooms, data=dict(self.data),
            handshake={"headers": dict(request.headers), "address": request.remote_ip,
                       "query": dict(request.args), "auth": self.auth,
                       "secure": request.protocol == "https"},
        )

    # -- acks ------------------------------------------------------------

    def resolve_ack(self, ack_id: Optional[int], args: List[Any]) -> None:
        """The client answered ack *ack_id*; an unknown id is ignored."""
        entry = self.acks.pop(ack_id, None) if ack_id is not None else None
        if entry is None:
            log.debug("socket %s: ack %r matches nothing pending", self.sid, ack_id)
            return
        target = entry[0]
        if isinstance(target, asyncio.Future):
            if not target.done():
                target.set_result(args)
        else:
            try:
                target(args)
            except Exception:
                log.exception("ack callback of socket %s failed", self.sid)

    def forget_ack(self, ack_id: int) -> None:
        """Stop waiting for ack *ack_id*."""
        self.acks.pop(ack_id, None)

    def expire_acks(self, now: float) -> bool:
        """Drop callbacks past their deadline; return whether any remain."""
        for ack_id, (target, deadline) in list(self.acks.items()):
            if now >= deadline:
                del self.acks[ack_id]
                log.info("socket %s: ack %d not answered in time; dropped", self.sid, ack_id)
                if isinstance(target, asyncio.Future) and not target.done():
                    target.cancel()
        return bool(self.acks)

    def fail_acks(self) -> None:
        """The socket is gone: pending ``call()`` futures fail, callbacks are dropped."""
        acks, self.acks = self.acks, {}
        for target, _ in acks.values():
            if isinstance(target, asyncio.Future) and not target.done():
                target.set_exception(DisconnectedError(f"client {self.sid} disconnected"))
        self.queue.clear()
