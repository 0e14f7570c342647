"""What running Socket.IO's public protocol suites against tornado-sio taught us, one behaviour each.

The suites (``test-suite/`` of socketio/engine.io-protocol and
socketio/socket.io-protocol) run against the servers of
``tools/protocol_suites.py``; that run is opt-in (``tests/test_protocol_suites.py``).
The tests here pin down, without the suites, what had to change for them: the
pong deadline. They drive the engine on a fake clock, as the heartbeat tests
do, so no test here waits for a real timer.

The suites' heartbeat test opens a polling session with a 300 ms ping
interval and a 200 ms ping timeout, stays silent for 500 ms, and expects its
next GET to be refused. Node's exact timers close the session at 500 ms; the
engine's heartbeat tick may come a little later, and the ping itself went out
on a tick, so the session used to be open a few ms past that.
"""

from __future__ import annotations

from typing import Any, List

from tornado_sio.engine import EngineServer, Sweeper
from tornado_sio.options import Options
from tornado_sio.protocol import engineio as eio

INTERVAL = 0.3
TIMEOUT = 0.2


class Clock:
    """A time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class Accepting:
    """A connection handler that accepts every session and records how each one ended."""

    def __init__(self) -> None:
        self.closed: List[str] = []

    def connection_opened(self, conn: Any) -> None:
        conn.mark_connected()

    def connection_message(self, conn: Any, data: Any) -> None:
        pass

    def connection_closed(self, conn: Any, reason: str) -> None:
        self.closed.append(reason)


class Request:
    remote_ip = "127.0.0.1"


class Poll:
    """A polling GET: what the session delivered to it."""

    def __init__(self) -> None:
        self.delivered: List[List[Any]] = []

    def deliver(self, items: List[Any]) -> None:
        self.delivered.append(items)


class Engine:
    """An engine on a fake clock with one polling session, and the means to move time."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.handler = Accepting()
        options = Options(ping_interval=INTERVAL, ping_timeout=TIMEOUT, connect_timeout=None)
        self.engine = EngineServer(self.handler, options, Sweeper(clock=self.clock))
        session = self.engine.open_session(Request(), "polling")  # type: ignore[arg-type]
        assert session is not None
        self.session = session

    def tick(self, at: float) -> None:
        """The heartbeat attends to the session at *at* (what a tick does with each session it hands out)."""
        self.clock.now = at
        self.session.sweep(at)

    def ping_sent_late_by(self, late: float) -> float:
        """Let the first ping go out *late* seconds after it was due; when it was due."""
        due = self.session.next_ping
        self.tick(due + late)
        poll = Poll()
        assert self.session.attach_poll(poll) is None
        assert poll.delivered == [[eio.PING]]
        return due

    def get_at(self, at: float) -> Any:
        """A polling GET at *at*, with no tick since the last one; the error it gets (None: none)."""
        self.clock.now = at
        return self.session.attach_poll(Poll())


def test_a_get_after_the_pong_deadline_finds_the_session_closed_before_any_tick_does():
    world = Engine()
    due = world.ping_sent_late_by(0.0)
    assert world.get_at(due + TIMEOUT + 0.001) is not None
    assert world.session.closed
    assert world.handler.closed == ["ping timeout"]
    assert world.session.sid not in world.engine.sessions


def test_a_get_before_the_pong_deadline_waits_as_usual():
    world = Engine()
    due = world.ping_sent_late_by(0.0)
    assert world.get_at(due + TIMEOUT - 0.001) is None
    assert not world.session.closed
    assert world.handler.closed == []


def test_the_pong_deadline_counts_from_when_the_ping_was_due_not_from_a_late_tick():
    world = Engine()
    due = world.ping_sent_late_by(0.04)  # a tick 40 ms late: within a quarter of the timeout
    assert world.get_at(due + TIMEOUT + 0.001) is not None
    assert world.handler.closed == ["ping timeout"]


def test_a_ping_held_up_by_a_stall_still_gives_the_client_its_whole_timeout():
    world = Engine()
    late = TIMEOUT / 4 + 0.05  # a stalled loop: the ping went out well after it was due
    due = world.ping_sent_late_by(late)
    assert world.get_at(due + late + TIMEOUT - 0.001) is None
    assert world.handler.closed == []


def test_the_tick_closes_a_silent_session_at_its_deadline_too():
    world = Engine()
    due = world.ping_sent_late_by(0.0)
    world.tick(due + TIMEOUT)
    assert world.session.closed
    assert world.handler.closed == ["ping timeout"]


def test_a_pong_in_time_keeps_the_session_open_past_the_first_deadline():
    world = Engine()
    due = world.ping_sent_late_by(0.0)
    world.clock.now = due + TIMEOUT / 2
    world.session.receive(eio.Packet(eio.PacketType.PONG))
    assert world.get_at(due + TIMEOUT + 0.001) is None
    assert world.handler.closed == []
