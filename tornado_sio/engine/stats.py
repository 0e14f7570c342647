"""What an Engine.IO server counts while it runs: :class:`EngineStats`.

Plain integers on one object per :class:`~tornado_sio.engine.server.EngineServer`,
bumped where the thing happens (the session, the transports) and read when
someone asks (a Prometheus scrape: :mod:`tornado_sio.metrics`). An increment is
one attribute add on an object that exists anyway, so counting costs the hot
path a few tens of nanoseconds per message and nothing else: no lock, no
label lookup, no call. The counters only grow; they start at zero with the server.

The transports count bytes (what they hand to the socket or read from it), the
session counts Engine.IO messages and the events of a session's life. Values
that are a state rather than a history (sessions open by transport, pending
acks) are not kept here: they are read from the sessions themselves at scrape
time.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Set

__all__ = ["EngineStats"]


class EngineStats:
    """Counters of one Engine.IO server since it was created (see the module docstring)."""

    __slots__ = (
        "backpressure_closes",
        "backpressure_dropped",
        "bytes_in",
        "bytes_out",
        "closed",
        "heartbeat_timeouts",
        "messages_in",
        "messages_out",
        "opened",
        "upgrades",
        "warned",
    )

    def __init__(self) -> None:
        #: Sessions accepted, by the transport they opened on (``polling``, ``websocket``).
        self.opened: Dict[str, int] = {"polling": 0, "websocket": 0}
        #: Sessions ended, by reason (``transport close``, ``ping timeout`` ...; a small fixed set).
        self.closed: Dict[str, int] = {}
        #: Polling sessions that upgraded to WebSocket.
        self.upgrades = 0
        #: Engine.IO MESSAGE packets received (a Socket.IO packet with N binary attachments is 1 + N).
        self.messages_in = 0
        #: Engine.IO MESSAGE packets handed to a session to send (counted as :attr:`messages_in`).
        self.messages_out = 0
        #: Bytes read: WebSocket message payloads and polling POST bodies.
        self.bytes_in = 0
        #: Bytes written: WebSocket frames (headers included) and polling response payloads.
        self.bytes_out = 0
        #: Sessions closed because the client did not answer a ping within ``ping_timeout``.
        self.heartbeat_timeouts = 0
        #: Sessions closed because their client did not read (``max_send_buffer`` passed).
        self.backpressure_closes = 0
        #: Engine.IO packets discarded with those sessions (never delivered).
        self.backpressure_dropped = 0
        #: The kinds of failure already logged at WARNING (see :meth:`warn_once`).
        self.warned: Set[str] = set()

    def __repr__(self) -> str:
        return (f"<EngineStats in {self.messages_in}/{self.bytes_in}B out {self.messages_out}/{self.bytes_out}B "
                f"opened {sum(self.opened.values())} closed {sum(self.closed.values())}>")

    def session_opened(self, transport: str) -> None:
        """A session was accepted on *transport*."""
        self.opened[transport] = self.opened.get(transport, 0) + 1

    def session_closed(self, reason: str) -> None:
        """A session ended for *reason*."""
        self.closed[reason] = self.closed.get(reason, 0) + 1

    def warn_once(self, logger: logging.Logger, kind: str, message: str, *args: Any) -> None:
        """Log a failure a client can repeat at wire speed: at WARNING the first time this
        server sees its *kind*, at DEBUG after that (the counters keep the total)."""
        level = logging.DEBUG if kind in self.warned else logging.WARNING
        self.warned.add(kind)
        logger.log(level, message, *args)

    def overflowed(self, dropped: int) -> None:
        """A session was closed for not reading; *dropped* packets waiting for it were discarded."""
        self.backpressure_closes += 1
        self.backpressure_dropped += dropped
