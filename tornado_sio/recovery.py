"""Connection state recovery (socket.io >= 4.6), the server's half.

With ``connection_state_recovery`` on, every socket gets a private id (``pid``)
sent in its CONNECT reply, and the adapter appends an offset to every event it
broadcasts. When a socket leaves for a reason Node deems recoverable (the
transport closed or failed, a ping timed out, the server shut down), its sid,
rooms and ``data`` are handed to the adapter (``persist_session``). A client
that comes back within ``max_disconnection_duration`` with ``pid`` and
``offset`` in its CONNECT payload gets them back (``restore_session``) with the
packets it missed, in order; its handlers see ``request.recovered`` True.

The adapter keeps the state (in memory, or in Redis for a cluster); this module
decides when to persist, checks what a client presents, and never trusts it:
an unknown, expired or forged pid or offset is a plain new connection.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from .adapter.base import Adapter
    from .dispatch import Dispatcher
    from .options import Options
    from .socket import Client, Socket

__all__ = ["Recovery", "recover", "RECOVERABLE_REASONS", "MAX_TOKEN_LENGTH"]

log = logging.getLogger("tornado_sio.server")

#: The disconnect reasons after which a socket's state is kept (Node's
#: ``RECOVERABLE_DISCONNECT_REASONS``); a client or server disconnect is final.
RECOVERABLE_REASONS = frozenset({"transport close", "transport error", "ping timeout", "server shutting down",
                                 "forced close", "forced server close"})

#: The longest ``pid`` or ``offset`` looked up; longer ones are forged and ignored.
MAX_TOKEN_LENGTH = 128


class Recovery:
    """When to persist and how to restore a socket's state (see the module docstring)."""

    def __init__(self, options: Options, adapter: Adapter) -> None:
        self.settings = options.connection_state_recovery
        self.adapter = adapter

    @property
    def enabled(self) -> bool:
        return self.settings is not None

    @property
    def skip_middlewares(self) -> bool:
        return bool(self.settings and self.settings["skip_middlewares"])

    def wanted(self, auth: Any) -> Optional[Tuple[str, str]]:
        """The ``(pid, offset)`` a reconnecting client presents in its CONNECT payload, if well formed."""
        if self.settings is None or not isinstance(auth, dict):
            return None
        pid, offset = auth.get("pid"), auth.get("offset")
        if (isinstance(pid, str) and isinstance(offset, str) and 0 < len(pid) <= MAX_TOKEN_LENGTH
                and 0 < len(offset) <= MAX_TOKEN_LENGTH):
            return pid, offset
        return None

    async def restore(self, pid: str, offset: str) -> Optional[Dict[str, Any]]:
        """The state the adapter kept for *pid* (with ``missed_packets``), or None; a failing
        or malformed answer is logged and is None (the client connects afresh)."""
        try:
            session = await self.adapter.restore_session(pid, offset)
        except Exception:  # an adapter failure costs the client its recovery, nothing more
            log.warning("restore_session failed; the client connects afresh", exc_info=True)
            return None
        if session is None:
            return None
        if not (isinstance(session, dict) and isinstance(session.get("sid"), str)
                and isinstance(session.get("missed_packets", []), list)):
            log.warning("restore_session returned a malformed session; ignored")
            return None
        return session

    def start(self, socket: Socket, session: Optional[Dict[str, Any]]) -> List[Any]:
        """Give a new *socket* its pid, or the restored *session*'s sid, pid and data;
        return the rooms to rejoin (empty for a new socket)."""
        if self.settings is None:
            return []
        if session is None:
            socket.pid = secrets.token_urlsafe(18)
            return []
        socket.sid = session["sid"]
        socket.pid = str(session.get("pid") or secrets.token_urlsafe(18))
        data = session.get("data")
        socket.data = dict(data) if isinstance(data, dict) else {}
        socket.recovered = True
        rooms = session.get("rooms") or []
        return [room for room in rooms if isinstance(room, str) and room != socket.sid]

    def socket_left(self, socket: Socket, reason: str) -> None:
        """*socket* disconnected for *reason*: keep its state when recovery may bring it back."""
        if self.settings is None or socket.pid is None or reason not in RECOVERABLE_REASONS:
            return
        session = {"sid": socket.sid, "pid": socket.pid, "namespace": socket.namespace,
                   "rooms": socket.rooms, "data": dict(socket.data)}
        try:
            self.adapter.persist_session(session)
        except Exception:  # the adapter cannot keep it: the client will connect afresh
            log.warning("persist_session failed for %s; it will not be recovered", socket.sid, exc_info=True)


async def recover(dispatcher: Dispatcher, client: Client, namespace: str, auth: Any,
                  wanted: Tuple[str, str]) -> None:
    """A CONNECT with ``pid`` and ``offset``: restore the session the adapter kept, if any,
    then open the socket (a fresh one when nothing fits)."""
    adapter = dispatcher.server.adapter
    session = await dispatcher.server.recovery.restore(*wanted)
    if client.conn.closed or namespace in client.sockets:
        return
    if session is not None and (session.get("namespace", namespace) != namespace
                                or adapter.get_socket(session["sid"]) is not None):
        session = None  # another namespace's state, or a sid alive here: never take it over
    dispatcher.open_socket(client, namespace, auth, session)
