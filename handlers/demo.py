"""The demo's Socket.IO handlers, in namespace ``/test``.

The same events as Flask-SocketIO's example app, with this project's names:

=====================  ===================================================
client emits           server does
=====================  ===================================================
``my event``           echoes to the sender as ``my response``
``my broadcast event`` sends ``my response`` to everyone in ``/test``
``join`` / ``leave``   joins / leaves ``room``, replies with the room list
``my room event``      sends ``my response`` to everyone in ``room``
``close room``         tells the room it closes, then empties it
``disconnect request`` says goodbye, then disconnects the sender
``my ping``            acknowledges at once (the page shows the round trip)
=====================  ===================================================

On the first connection a background task starts that sends a
server-generated ``my response`` with a counter every few seconds.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional

from tornado_sio import Namespace, close_room, emit, join_room, leave_room, request, rooms, session

__all__ = ["DemoNamespace", "NAMESPACE"]

log = logging.getLogger("demo")

NAMESPACE = "/test"
#: Longest room name and message text accepted from a client.
MAX_TEXT = 1000


def _field(message: Any, key: str) -> Optional[str]:
    """``message[key]`` as text, or None when the client sent something else."""
    if not isinstance(message, dict) or key not in message:
        return None
    value = message[key]
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_TEXT]


def _count() -> int:
    """Count the messages this client got from its own requests (kept in the session)."""
    session["receive_count"] = session.get("receive_count", 0) + 1
    return session["receive_count"]


def _room_list() -> List[str]:
    """The rooms the sender chose (its private sid room left out)."""
    return sorted(r for r in rooms() if r != request.sid)


class DemoNamespace(Namespace):
    """``/test``: echo, broadcast, rooms, disconnect, ping, and a server-side counter."""

    def __init__(self, namespace: str = NAMESPACE, interval: float = 5.0) -> None:
        super().__init__(namespace)
        self.interval = interval
        self.task: Any = None

    # -- connection ------------------------------------------------------

    def on_connect(self, auth: Any = None) -> None:
        if self.task is None:
            self.task = self.server.start_background_task(self.count_forever)
        log.info("client %s connected from %s", request.sid, request.remote_addr)
        emit("my response", {"data": "Connected", "count": 0})

    def on_disconnect(self, reason: Any = None) -> None:
        log.info("client %s disconnected (%s)", request.sid, reason)

    async def count_forever(self) -> None:
        """The background task: a server-generated event every *interval* seconds."""
        count = 0
        while True:
            await self.server.sleep(self.interval)
            count += 1
            self.emit("my response", {"data": "Server generated event", "count": count})

    # -- events ----------------------------------------------------------

    def on_my_event(self, message: Any) -> None:
        emit("my response", {"data": _field(message, "data") or "", "count": _count()})

    def on_my_broadcast_event(self, message: Any) -> None:
        emit("my response", {"data": _field(message, "data") or "", "count": _count()}, broadcast=True)

    def on_join(self, message: Any) -> None:
        room = _field(message, "room")
        if room:
            join_room(room)
        emit("my response", {"data": "In rooms: " + ", ".join(_room_list()), "count": _count()})

    def on_leave(self, message: Any) -> None:
        room = _field(message, "room")
        if room:
            leave_room(room)
        emit("my response", {"data": "In rooms: " + ", ".join(_room_list()), "count": _count()})

    def on_my_room_event(self, message: Any) -> None:
        room = _field(message, "room")
        if room:
            emit("my response", {"data": _field(message, "data") or "", "count": _count()}, to=room)

    def on_close_room(self, message: Any) -> None:
        room = _field(message, "room")
        if room:
            emit("my response", {"data": f"Room {room} is closing.", "count": _count()}, to=room)
            close_room(room)

    def on_disconnect_request(self) -> None:
        # Disconnect once the goodbye is acknowledged, so the page surely shows it.
        # (Captured now: the callback runs outside this handler's context.)
        sid, server = request.sid, self.server

        def goodbye_delivered(*_: Any) -> None:
            server.disconnect(sid, namespace=self.namespace)

        emit("my response", {"data": "Disconnected!", "count": _count()}, callback=goodbye_delivered)

    def on_my_ping(self) -> str:
        return "pong"
