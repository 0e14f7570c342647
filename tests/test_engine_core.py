"""The engine without HTTP: the session state machine, the sweeper, the capacity count."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tornado_sio.engine import (
    Capacity,
    EngineServer,
    IllegalTransition,
    SessionState,
    Sweeper,
)
from tornado_sio.engine.session import TRANSITIONS
from tornado_sio.options import Options
from tornado_sio.protocol import engineio as eio
from tornado_sio.protocol.outgoing import raw_text


class Recorder:
    """A ConnectionHandler that records what it is told."""

    def __init__(self, accept: bool | None = None) -> None:
        self.accept = accept
        self.events: list[tuple[str, Any]] = []

    def connection_opened(self, conn: Any) -> bool | None:
        self.events.append(("opened", conn.sid))
        return self.accept

    def connection_message(self, conn: Any, data: Any) -> None:
        self.events.append(("message", data))

    def connection_closed(self, conn: Any, reason: str) -> None:
        self.events.append(("closed", reason))


class Wire:
    """A FrameWriter that keeps what it is given."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False

    def write_frames(self, data: bytes) -> bool:
        self.frames.append(data)
        return True

    def close_transport(self) -> None:
        self.closed = True


class Poll:
    """A PollWaiter that keeps what it is given."""

    def __init__(self) -> None:
        self.items: list[Any] | None = None

    def deliver(self, items: list[Any]) -> None:
        assert self.items is None, "delivered twice"
        self.items = items


def engine(**options: Any) -> tuple[EngineServer, Recorder]:
    handler = Recorder()
    return EngineServer(handler, Options(**options)), handler


class FakeRequest:
    remote_ip = "127.0.0.1"


def open_session(server: EngineServer, transport: str = "polling", wire: Any = None) -> Any:
    session = server.open_session(FakeRequest(), transport, wire)  # type: ignore[arg-type]
    assert session is not None
    return session


# ---------------------------------------------------------------- the state machine


def test_every_state_has_a_row_in_the_transition_table():
    assert set(TRANSITIONS) == set(SessionState)
    assert TRANSITIONS[SessionState.CLOSED] == frozenset()


def test_an_illegal_move_raises_at_once():
    server, _ = engine()
    session = open_session(server)
    with pytest.raises(IllegalTransition):
        session.opened("0{}")  # OPEN -> OPEN is not in the table
    assert session.state is SessionState.OPEN


def test_the_state_cannot_be_assigned():
    server, _ = engine()
    session = open_session(server)
    with pytest.raises(AttributeError):
        session.state = SessionState.CLOSED


def test_an_accepted_session_is_open_and_known():
    server, handler = engine()
    session = open_session(server)
    assert session.state is SessionState.OPEN
    assert server.sessions[session.sid] is session
    assert handler.events == [("opened", session.sid)]


def test_a_refused_session_is_forgotten_without_a_closed_event():
    handler = Recorder(accept=False)
    server = EngineServer(handler, Options())
    assert server.open_session(FakeRequest(), "polling") is None  # type: ignore[arg-type]
    assert not server.sessions
    assert server.capacity.count == 0
    assert [kind for kind, _ in handler.events] == ["opened"]


def test_a_websocket_session_writes_the_open_packet_then_what_the_handler_sent():
    class Greeter(Recorder):
        def connection_opened(self, conn: Any) -> bool | None:
            conn.send_message(raw_text("hi"))
            return None

    wire = Wire()
    server = EngineServer(Greeter(), Options())
    server.open_session(FakeRequest(), "websocket", wire)  # type: ignore[arg-type]
    (frames,) = wire.frames
    assert frames[2:3] == b"0" and frames.endswith(b"4hi")


def test_a_server_close_on_polling_waits_closing_for_the_next_get():
    server, handler = engine()
    session = open_session(server)
    session.send_text("bye")
    session.close()
    assert session.state is SessionState.CLOSING
    assert handler.events[-1] == ("closed", "server disconnect")
    poll = Poll()
    assert session.attach_poll(poll) is None
    assert poll.items == ["4bye"]  # what was queued first, CLOSE on the next GET (as Node)
    assert session.state is SessionState.CLOSING
    poll = Poll()
    assert session.attach_poll(poll) is None
    assert poll.items == [eio.CLOSE]
    assert session.state is SessionState.CLOSED
    assert session.sid not in server.sessions


def test_abort_forgets_at_once_and_answers_a_pending_get_with_close():
    server, handler = engine()
    session = open_session(server)
    poll = Poll()
    session.attach_poll(poll)
    session.abort("parse error")
    assert poll.items == [eio.CLOSE]
    assert session.state is SessionState.CLOSED and session.sid not in server.sessions
    assert handler.events[-1] == ("closed", "parse error")


def test_a_client_close_answers_a_pending_get_with_noop():
    server, handler = engine()
    session = open_session(server)
    poll = Poll()
    session.attach_poll(poll)
    session.receive(eio.Packet(eio.PacketType.CLOSE))
    assert poll.items == [eio.NOOP]
    assert session.sid not in server.sessions
    assert handler.events[-1] == ("closed", "transport close")


def test_an_upgrade_moves_through_upgrading_and_flushes_the_queue_to_the_websocket():
    server, _ = engine()
    session = open_session(server)
    session.send_text("queued")
    probe = Wire()
    assert session.begin_probe(probe) is None
    assert not session.probe_packet(probe, eio.Packet(eio.PacketType.PING, eio.PING_PROBE))
    assert session.state is SessionState.UPGRADING
    assert session.probe_packet(probe, eio.Packet(eio.PacketType.UPGRADE))
    assert session.state is SessionState.OPEN and session.transport == "websocket"
    assert probe.frames[-1].endswith(b"4queued")


def test_a_second_probe_is_refused_while_one_is_in_progress_and_after_the_upgrade():
    server, _ = engine()
    session = open_session(server)
    first = Wire()
    session.begin_probe(first)
    assert session.begin_probe(Wire()) == "an upgrade is already in progress"
    session.probe_packet(first, eio.Packet(eio.PacketType.PING, eio.PING_PROBE))
    session.probe_packet(first, eio.Packet(eio.PacketType.UPGRADE))
    assert session.begin_probe(Wire()) == "session is already on websocket"


def test_the_sweep_pings_then_aborts_a_session_without_pong():
    server, handler = engine(ping_interval=1, ping_timeout=1)
    session = open_session(server, "websocket", Wire())
    session.sweep(session.next_ping)
    assert session.pong_deadline is not None
    session.sweep(session.pong_deadline)
    assert handler.events[-1] == ("closed", "ping timeout")


def test_a_polling_queue_over_max_send_buffer_closes_the_session_and_keeps_only_close():
    server, handler = engine(max_send_buffer=10)
    session = open_session(server)
    session.send_text("x" * 20)
    assert handler.events[-1] == ("closed", "transport error")
    poll = Poll()
    session.attach_poll(poll)
    assert poll.items == [eio.CLOSE]


# ---------------------------------------------------------------- capacity


def test_capacity_counts_sessions_against_max_connections():
    server, _ = engine(max_connections=1)
    session = open_session(server)
    assert server.at_capacity()
    session.abort("transport close")
    assert not server.at_capacity()


def test_capacity_without_a_limit_is_never_full():
    capacity = Capacity(None)
    for _ in range(5):
        capacity.acquire()
    assert not capacity.full()


# ---------------------------------------------------------------- the sweeper


def test_a_job_runs_with_the_monotonic_time_until_removed():
    async def scenario() -> list[float]:
        sweeper = Sweeper()
        seen: list[float] = []
        handle = sweeper.add_job(seen.append, 0.02)
        await asyncio.sleep(0.15)
        sweeper.remove_job(handle)
        count = len(seen)
        await asyncio.sleep(0.08)
        assert len(seen) == count
        sweeper.stop()
        return seen

    seen = asyncio.run(scenario())
    assert len(seen) >= 2 and seen == sorted(seen)


def test_one_timer_serves_jobs_of_different_periods():
    async def scenario() -> tuple[int, int]:
        sweeper = Sweeper()
        fast: list[float] = []
        slow: list[float] = []
        sweeper.add_job(fast.append, 0.02)
        sweeper.add_job(slow.append, 0.1)
        await asyncio.sleep(0.25)
        sweeper.stop()
        return len(fast), len(slow)

    fast, slow = asyncio.run(scenario())
    assert fast > slow >= 1


def test_a_failing_job_is_logged_and_the_others_go_on(caplog: Any):
    def broken(now: float) -> None:
        raise RuntimeError("boom")

    async def scenario() -> int:
        sweeper = Sweeper()
        seen: list[float] = []
        sweeper.add_job(broken, 0.02)
        sweeper.add_job(seen.append, 0.02)
        await asyncio.sleep(0.1)
        sweeper.stop()
        return len(seen)

    with caplog.at_level(logging.ERROR, "tornado_sio.engine"):
        assert asyncio.run(scenario()) >= 2
    assert "boom" in caplog.text


def test_the_sweeper_restarts_on_a_new_loop():
    sweeper = Sweeper()
    seen: list[float] = []
    sweeper.add_job(seen.append, 0.02)

    async def run_a_while() -> None:
        sweeper.ensure_running()
        await asyncio.sleep(0.08)

    asyncio.run(run_a_while())
    first = len(seen)
    asyncio.run(run_a_while())
    sweeper.stop()
    assert first >= 1 and len(seen) > first


def test_a_job_needs_a_positive_period():
    with pytest.raises(ValueError):
        Sweeper().add_job(lambda now: None, 0)


# ---------------------------------------------------------------- options


def test_the_cookie_option_takes_a_name_or_attributes():
    assert Options().handshake_cookie is None
    assert Options(cookie=True).handshake_cookie == {"name": "io", "path": "/", "httponly": True, "samesite": "Lax"}
    assert Options(cookie="sticky").handshake_cookie["name"] == "sticky"
    assert Options(cookie={"name": "x", "Max-Age": 5}).handshake_cookie["max_age"] == 5


def test_a_cookie_without_a_path_is_not_httponly_unless_asked_as_in_node():
    assert Options(cookie={"path": None}).handshake_cookie["httponly"] is False
    assert Options(cookie={"path": None, "httponly": True}).handshake_cookie["httponly"] is True


@pytest.mark.parametrize("cookie", [{"colour": "red"}, {"name": ""}, 42])
def test_a_malformed_cookie_option_is_refused(cookie: Any):
    with pytest.raises(ValueError):
        Options(cookie=cookie)


def test_initial_headers_must_be_a_dict_or_a_callable():
    with pytest.raises(ValueError):
        Options(initial_headers="X-A: b")  # type: ignore[arg-type]
