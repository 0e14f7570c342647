"""The Engine.IO server: sessions by sid, the handshake, capacity, and the sweep.

:class:`EngineServer` is transport-agnostic: the HTTP layer
(``tornado_sio.http``) validates requests, then calls :meth:`EngineServer.open_session`
and drives the sessions; the engine tells its *handler* (a
:class:`~tornado_sio.engine.connection.ConnectionHandler`: the Socket.IO
dispatcher, or ``EngineIOApp``) about each connection.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from typing import Any, Dict

from ..logs import connection_event
from ..options import Options
from ..protocol import engineio as eio
from .connection import ConnectionHandler, HandshakeRequest
from .session import EngineSession, SessionState
from .stats import EngineStats
from .sweeper import Sweeper
from .transport import FrameWriter
from .wheel import TimingWheel

__all__ = ["MIN_BATCH", "Capacity", "EngineServer", "heartbeat_resolution", "new_sid"]

#: The fewest sessions one heartbeat tick may attend to (see :meth:`EngineServer.batch_limit`).
MIN_BATCH = 64


def heartbeat_resolution(options: Options) -> float:
    """The heartbeat tick: 1/250 of the shortest of the ping interval and the timeouts, within [10 ms, 20 ms].

    Fine enough that a tick's share of the pings is small (at 19,500 clients
    and a 5 s interval, 78 sessions: a few ms of work) and a ping is never
    more than 2% of a 1 s interval late; an idle server wakes 50 times a
    second for it (a few µs each).
    """
    shortest = min(options.ping_interval, options.ping_timeout, options.upgrade_timeout)
    return max(0.01, min(0.02, shortest / 250.0))

log = logging.getLogger("tornado_sio.engine")


def new_sid() -> str:
    """A fresh session id: 120 random bits, URL-safe (20 characters, like Node's)."""
    return secrets.token_urlsafe(15)


class Capacity:
    """Connections open at once against ``max_connections``, every endpoint together.

    The engine counts its sessions here and the SockJS endpoint its
    connections, so one limit bounds them all. A connection is counted from its
    creation until it is forgotten.
    """

    __slots__ = ("count", "limit")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.count = 0

    def __repr__(self) -> str:
        return f"<Capacity {self.count}/{self.limit if self.limit is not None else 'unlimited'}>"

    def full(self) -> bool:
        """Whether a new connection must be refused."""
        return self.limit is not None and self.count >= self.limit

    def acquire(self) -> None:
        """Count one more open connection."""
        self.count += 1

    def release(self) -> None:
        """Count one connection fewer."""
        if self.count > 0:
            self.count -= 1


class EngineServer:
    """Engine.IO sessions, their heartbeats and limits, for one endpoint.

    :param handler: told of every connection (``connection_opened``,
        ``connection_message``, ``connection_closed``).
    :param options: every setting and limit (``ping_interval``, ``ping_timeout``,
        ``max_http_buffer_size``, ``max_send_buffer``, ``connect_timeout``,
        ``upgrade_timeout``, ``max_connections``, ``max_packets`` ...).
    :param sweeper: the timer to run the heartbeat sweep on; by default the
        engine has its own, which the server's other deadlines share through
        :attr:`sweeper`.

    ``sessions`` maps each known sid to its :class:`EngineSession` (closing
    sessions included, until their client has collected the CLOSE).

    The heartbeat: each session waits in a :class:`~tornado_sio.engine.wheel.TimingWheel`
    slot for its next deadline (ping due, pong late, connect or upgrade
    timeout, end of a polling close). Every tick of :func:`heartbeat_resolution`
    the sweep attends to the sessions whose slot has come, at most
    :meth:`batch_limit` of them (the rest are first in line at the next tick),
    so pings are spread as the clients connected, none is more than a tick or
    two late, and no tick does more than about twice its even share of work.
    Time comes from the sweeper's ``clock`` (a test passes a fake one).
    """

    def __init__(self, handler: ConnectionHandler, options: Options, sweeper: Sweeper | None = None) -> None:
        self.handler = handler
        self.options = options
        self.sessions: dict[str, EngineSession] = {}
        #: Open connections against ``max_connections``; the SockJS endpoint counts here too.
        self.capacity = Capacity(options.max_connections)
        #: What this server counts (messages, bytes, sessions opened and closed ...): :mod:`.stats`.
        self.stats = EngineStats()
        #: The one periodic timer of this server (heartbeats, deadlines, ack expiry ...).
        self.sweeper = sweeper if sweeper is not None else Sweeper()
        #: The time source of every deadline (the sweeper's: ``time.monotonic`` unless a test fakes it).
        self.clock = self.sweeper.clock
        resolution = heartbeat_resolution(options)
        self.wheel: TimingWheel[EngineSession] = TimingWheel(resolution)
        #: Heartbeat figures since start: ticks, sessions attended, the most in one tick, the longest tick.
        self.ticks = 0
        self.attended = 0
        self.most_in_a_tick = 0
        self.longest_tick = 0.0
        self.last_sweep: float | None = None
        self.sweep_job = self.sweeper.add_job(self.sweep, resolution)

    def __repr__(self) -> str:
        return f"<EngineServer {len(self.sessions)} sessions>"

    # -- sessions --------------------------------------------------------

    def at_capacity(self) -> bool:
        """Whether ``max_connections`` connections (every endpoint) are open."""
        return self.capacity.full()

    def open_session(self, request: HandshakeRequest, transport: str,
                     wire: FrameWriter | None = None) -> EngineSession | None:
        """Create a session and ask the handler; None when it refused (or closed it at once).

        *wire* is the WebSocket of a websocket session: the session knows it
        before the handler runs, so what the handler sends in
        ``connection_opened`` follows the OPEN packet on it. On polling, the
        caller answers the handshake GET with :meth:`handshake_packet`.
        """
        session = EngineSession(self, new_sid(), request, transport, wire)
        self.sessions[session.sid] = session
        self.capacity.acquire()
        self.sweeper.ensure_running()
        try:
            accepted = self.handler.connection_opened(session) is not False
        except Exception:
            log.exception("connection_opened failed for session %s; refusing it", session.sid)
            accepted = False
        if session.closed:
            return None
        if not accepted:
            session.refused()
            return None
        session.opened(self.handshake_packet(session))
        if session.closed:
            return None
        self.stats.session_opened(transport)
        if self.options.log_connections:
            connection_event("connect", session.sid, transport, request.remote_ip)
        self.wake(session)
        return session

    def handshake_packet(self, session: EngineSession) -> str:
        """The OPEN packet of *session*: sid, upgrades, heartbeat and payload limit."""
        options = self.options
        upgrades = ["websocket"] if session.transport == "polling" and options.upgrades else []
        return eio.OPEN + eio.handshake_payload(
            session.sid, upgrades,
            round(options.ping_interval * 1000), round(options.ping_timeout * 1000),
            options.max_http_buffer_size,
        )

    def forget(self, session: EngineSession) -> None:
        """Drop *session* from :attr:`sessions` (its sid is unknown from now on)."""
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]
            self.capacity.release()
        self.wheel.cancel(session)

    # -- timers and shutdown -------------------------------------------------

    def wake(self, session: EngineSession) -> None:
        """(Re)schedule *session* on the wheel when its next deadline is earlier than its slot."""
        due = session.next_due()
        if due is None:
            return
        slot = session.wheel_slot
        if slot < 0 or self.wheel.slot_of(due) < slot:
            self.wheel.schedule(session, due)

    def batch_limit(self, ticks: float = 1.0) -> int:
        """The most sessions a tick attends to: twice their even share of a ping interval, at least :data:`MIN_BATCH`.

        *ticks* is how many resolutions the tick covers: a tick that comes late
        (up to twice the resolution) may do that much more, so a jittery timer
        leaves nobody behind; after a longer stall the backlog drains at twice
        the even rate, a tick never doing more than four times its share.
        """
        share = len(self.sessions) * self.wheel.resolution / self.options.ping_interval
        return max(MIN_BATCH, math.ceil(2 * share * max(1.0, min(2.0, ticks))))

    def sweep(self, now: float) -> None:
        """Attend to the sessions whose wheel slot has come (bounded); reschedule each for its next deadline."""
        started = time.perf_counter()
        last, self.last_sweep = self.last_sweep, now
        ticks = 1.0 if last is None else (now - last) / self.wheel.resolution
        due = self.wheel.pop_due(now, self.batch_limit(ticks))
        for session in due:
            try:
                session.sweep(now)
            except Exception:
                log.exception("heartbeat sweep failed for session %s", session.sid)
            if session.state is not SessionState.CLOSED:
                self.wake(session)
        self.ticks += 1
        count = len(due)
        if count:
            self.attended += count
            if count > self.most_in_a_tick:
                self.most_in_a_tick = count
            took = time.perf_counter() - started
            if took > self.longest_tick:
                self.longest_tick = took

    def heartbeat_stats(self) -> Dict[str, Any]:
        """The heartbeat's figures since start (for benchmarks and monitoring)."""
        return {"ticks": self.ticks, "attended": self.attended, "most_in_a_tick": self.most_in_a_tick,
                "longest_tick_ms": round(self.longest_tick * 1000, 3), "resolution_ms": self.wheel.resolution * 1000,
                "batch_limit": self.batch_limit(), "sessions": len(self.sessions), "stale": self.wheel.stale}

    def close_all(self, reason: str = "server shutting down") -> None:
        """Close every session (graceful shutdown: polling clients still collect their queue)."""
        for session in list(self.sessions.values()):
            session.close(reason)

    def undelivered(self) -> int:
        """How many closing sessions still hold packets for a polling client beyond the CLOSE."""
        return sum(1 for s in self.sessions.values() if s.closed and s.queued_data())

    def stop(self) -> None:
        """Stop the timer (after :meth:`close_all`); the jobs stay registered for a restart."""
        self.sweeper.stop()
