"""One client in one namespace (:class:`Socket`) and one connection (:class:`Client`).

A connection (an Engine.IO session or a SockJS session) carries any number of
namespaces; each connected namespace is a :class:`Socket` with its own sid,
rooms, session storage, pending acks and ordered event queue.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple, Union

from .engine import Prepared
from .exceptions import DisconnectedError, EncodeError, TornadoSIOError
from .protocol.socketio import Decoder, SIOPacket, SIOType, encode

if TYPE_CHECKING:
    from .server import SocketIO

__all__ = ["Socket", "Client", "SocketState", "prepare"]

log = logging.getLogger("tornado_sio.server")

AckTarget = Union[Callable[..., Any], "asyncio.Future[List[Any]]"]


#: socket.io-parser (4.2.6+, the CVE-2026-33151 fix) drops a connection that
#: receives a packet with more binary attachments than this.
CLIENT_MAX_ATTACHMENTS = 10


def prepare(packet: SIOPacket) -> Prepared:
    """Encode a Socket.IO packet once, ready for any number of recipients.

    Raises :class:`~tornado_sio.EncodeError` for data that is not strict JSON,
    and for more binary attachments than the official clients accept.
    """
    text, attachments = encode(packet)
    if len(attachments) > CLIENT_MAX_ATTACHMENTS:
        raise EncodeError(f"{len(attachments)} binary attachments in one packet; the official "
                          f"clients accept at most {CLIENT_MAX_ATTACHMENTS}")
    return Prepared(text, attachments)


class SocketState(enum.IntEnum):
    CONNECTING = 1  # the connect handler is running; output is held back
    CONNECTED = 2
    DISCONNECTED = 3


class Client:
    """The server's state for one connection: its decoder and its namespaces.

    *conn* is anything with ``sid``, ``request``, ``send_message(prepared)``,
    ``close(reason)`` and ``mark_connected()`` / ``mark_idle()``.
    """

    __slots__ = ("conn", "decoder", "sockets", "_noted")

    def __init__(self, conn: Any, decoder: Decoder) -> None:
        self.conn = conn
        self.decoder = decoder
        self.sockets: Dict[str, "Socket"] = {}
        self._noted: Set[str] = set()

    def note(self, kind: str, message: str, *args: Any) -> None:
        """Log a tolerated oddity of this client at INFO once per kind, then at DEBUG,
        so a client repeating it at wire speed cannot flood the logs."""
        level = logging.DEBUG if kind in self._noted else logging.INFO
        self._noted.add(kind)
        log.log(level, "connection %s: " + message, self.conn.sid, *args)


class Socket:
    """One client connected to one namespace."""

    __slots__ = (
        "server", "client", "namespace", "sid", "auth", "state", "rooms", "session",
        "_acks", "_ack_seq", "_held", "queue", "running", "__weakref__",
    )

    def __init__(self, server: "SocketIO", client: Client, namespace: str, auth: Any = None) -> None:
        self.server = server
        self.client = client
        self.namespace = namespace
        self.sid = secrets.token_urlsafe(15)
        self.auth = auth
        self.state = SocketState.CONNECTING
        self.rooms: Set[str] = set()
        #: Per-client storage that lives as long as the connection (``tornado_sio.session``).
        self.session: Dict[str, Any] = {}
        self._acks: Dict[int, Tuple[AckTarget, float]] = {}
        self._ack_seq = 0
        self._held: List[Prepared] = []
        #: Events waiting for a running async handler of this client (ordering).
        #: A list, not a deque: almost always empty (an empty deque costs ~700 B) and
        #: bounded by max_pending_events, so pop(0) stays cheap.
        self.queue: List[Tuple[Callable[..., Any], tuple, Optional[int], str]] = []
        self.running = False

    def __repr__(self) -> str:
        return f"<Socket {self.sid} {self.namespace} {self.state.name}>"

    @property
    def request(self) -> Any:
        """The handshake request of the connection (headers, cookies, args, remote_ip)."""
        return self.client.conn.request

    @property
    def connected(self) -> bool:
        return self.state == SocketState.CONNECTED

    # -- output ----------------------------------------------------------

    def send(self, prepared: Prepared) -> None:
        """Send a prepared packet; held back while the connect handler runs."""
        state = self.state
        if state == SocketState.CONNECTED:
            self.client.conn.send_message(prepared)
        elif state == SocketState.CONNECTING:
            if len(self._held) >= self.server.max_pending_events:
                log.warning("socket %s: too much output during connect; dropping the connection", self.sid)
                self.client.conn.close("transport error")
                return
            self._held.append(prepared)

    def send_packet(self, packet: SIOPacket) -> None:
        self.send(prepare(packet))

    def send_with_ack(self, packet: SIOPacket, target: AckTarget, timeout: Optional[float]) -> int:
        """Send *packet* with a fresh ack id for *target*; return the id.

        The ack is registered only once the packet has encoded, so data refused
        by the encoder leaves nothing pending.
        """
        ack_id = self.add_ack(target, timeout)
        packet.id = ack_id
        try:
            prepared = prepare(packet)
        except Exception:
            self.forget_ack(ack_id)
            raise
        self.send(prepared)
        return ack_id

    def accept(self) -> None:
        """Send the CONNECT reply, then whatever the connect handler emitted."""
        self.state = SocketState.CONNECTED
        conn = self.client.conn
        conn.send_message(prepare(SIOPacket(SIOType.CONNECT, self.namespace, {"sid": self.sid})))
        held, self._held = self._held, []
        for prepared in held:
            conn.send_message(prepared)

    def drop_held(self) -> None:
        self._held = []

    # -- acks ------------------------------------------------------------

    def add_ack(self, target: AckTarget, timeout: Optional[float]) -> int:
        """Register a callback or future for the client's ACK; return the packet id."""
        if len(self._acks) >= self.server.max_pending_acks:
            raise TornadoSIOError(
                f"socket {self.sid} has {len(self._acks)} unanswered acks (max_pending_acks)")
        ack_id = self._ack_seq
        self._ack_seq += 1
        deadline = time.monotonic() + timeout if timeout else float("inf")
        self._acks[ack_id] = (target, deadline)
        self.server._ack_waiting.add(self)
        return ack_id

    def resolve_ack(self, ack_id: Optional[int], args: List[Any]) -> None:
        """The client answered ack *ack_id*; an unknown id is ignored."""
        entry = self._acks.pop(ack_id, None) if ack_id is not None else None
        if entry is None:
            log.debug("socket %s: ack %r matches nothing pending", self.sid, ack_id)
            return
        target = entry[0]
        if isinstance(target, asyncio.Future):
            if not target.done():
                target.set_result(args)
        else:
            self.server._call_plain(target, args, what="ack callback", socket=self)

    def forget_ack(self, ack_id: int) -> None:
        self._acks.pop(ack_id, None)
        if not self._acks:
            self.server._ack_waiting.discard(self)

    def expire_acks(self, now: float) -> bool:
        """Drop callbacks past their deadline; return whether any remain."""
        for ack_id, (target, deadline) in list(self._acks.items()):
            if now >= deadline:
                del self._acks[ack_id]
                log.info("socket %s: ack %d not answered in time; dropped", self.sid, ack_id)
                if isinstance(target, asyncio.Future) and not target.done():
                    target.cancel()
        return bool(self._acks)

    def fail_acks(self) -> None:
        """The socket is gone: pending ``call()`` futures fail, callbacks are dropped."""
        acks, self._acks = self._acks, {}
        for target, _ in acks.values():
            if isinstance(target, asyncio.Future) and not target.done():
                target.set_exception(DisconnectedError(f"client {self.sid} disconnected"))
        self.queue.clear()
