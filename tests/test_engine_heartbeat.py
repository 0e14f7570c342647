"""The heartbeat on a fake clock: pings spread out, bounded work per tick, intervals within ±5%.

No wall clock and no event loop: the sweeper is driven by hand
(``Sweeper.run_due``) with a fake time, the way its timer would drive it, and
simulated clients answer each ping after a random round trip.
"""

from __future__ import annotations

import heapq
import math
import random
from typing import Any

import pytest

from tornado_sio.engine import EngineServer, Sweeper
from tornado_sio.engine.server import MIN_BATCH, heartbeat_resolution
from tornado_sio.engine.wheel import TimingWheel
from tornado_sio.options import Options
from tornado_sio.protocol import engineio as eio

PING = b"\x81\x012"  # the text frame "2"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Handler:
    def connection_opened(self, conn: Any) -> None:
        conn.mark_connected()

    def connection_message(self, conn: Any, data: Any) -> None:
        pass

    def connection_closed(self, conn: Any, reason: str) -> None:
        pass


class Client:
    """The WebSocket of one simulated client: records when each ping was written."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.pings: list[float] = []
        self.session: Any = None

    def write_frames(self, data: bytes) -> bool:
        if data == PING:
            self.pings.append(self.world.clock.now)
            self.world.tick_pings += 1
            self.world.answer(self)
        return True

    def close_transport(self) -> None:
        raise AssertionError("a client that answers every ping must not be closed")


class FakeRequest:
    remote_ip = "127.0.0.1"


class World:
    """An engine, its sweeper on a fake clock, and clients answering pings after a random round trip."""

    def __init__(self, ping_interval: float = 5.0, seed: int = 7) -> None:
        self.clock = FakeClock()
        self.sweeper = Sweeper(clock=self.clock)
        self.options = Options(ping_interval=ping_interval, ping_timeout=20.0)
        self.engine = EngineServer(Handler(), self.options, self.sweeper)
        self.random = random.Random(seed)
        self.pongs: list[tuple[float, int, Client]] = []
        self.clients: list[Client] = []
        self.tick_pings = 0
        self.most_per_tick = 0
        #: The most pings of one tick, as a share of what the bound allowed that tick.
        self.most_of_bound = 0.0
        self.last_tick: float | None = None

    def connect(self, count: int) -> None:
        for _ in range(count):
            client = Client(self)
            client.session = self.engine.open_session(FakeRequest(), "websocket", client)  # type: ignore[arg-type]
            assert client.session is not None
            self.clients.append(client)

    def answer(self, client: Client) -> None:
        rtt = self.random.uniform(0.0005, 0.2)
        heapq.heappush(self.pongs, (self.clock.now + rtt, id(client), client))

    def run(self, seconds: float, step: float) -> None:
        """Advance the fake time by *step* (the timer's wake-ups, jittered) until *seconds* have passed."""
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.clock.now += step * self.random.uniform(0.8, 1.4)  # a timer fires late, or early
            while self.pongs and self.pongs[0][0] <= self.clock.now:
                _, _, client = heapq.heappop(self.pongs)
                client.session.receive(eio.Packet(eio.PacketType.PONG))
            self.tick_pings = 0
            if not self.sweeper.run_due(self.clock.now):
                continue
            now, last, self.last_tick = self.clock.now, self.last_tick, self.clock.now
            self.most_per_tick = max(self.most_per_tick, self.tick_pings)
            # the bound: twice the even share of the ticks' time, which a late tick may cover up to 2 of
            resolution = heartbeat_resolution(self.options)
            covered = 1.0 if last is None else max(1.0, min(2.0, (now - last) / resolution))
            share = len(self.clients) * resolution / self.options.ping_interval
            bound = max(MIN_BATCH, math.ceil(2 * share * covered))
            self.most_of_bound = max(self.most_of_bound, self.tick_pings / bound)

    def intervals(self) -> list[float]:
        """Every interval between two consecutive pings of one client."""
        return [b - a for c in self.clients for a, b in zip(c.pings, c.pings[1:])]


def test_a_burst_of_clients_is_pinged_a_bounded_number_per_tick_and_every_interval_within_5_percent():
    world = World(ping_interval=5.0)
    world.connect(5000)  # all at the same instant: the worst case for a sweep
    resolution = heartbeat_resolution(world.options)
    world.run(60.0, resolution)
    assert world.most_of_bound <= 1.0
    assert world.most_per_tick <= 4 * 5000 * resolution / 5.0 + 1  # never more than 2 ticks' double share
    intervals = world.intervals()
    assert len(intervals) > 5000 * 9
    assert min(intervals) >= 5.0 * 0.95
    assert max(intervals) <= 5.0 * 1.05


def test_after_the_first_round_a_burst_is_spread_over_the_interval():
    world = World(ping_interval=5.0)
    world.connect(5000)
    world.run(20.0, heartbeat_resolution(world.options))
    # the pings of the last 5 s, by 0.5 s: none holds more than twice a tenth of them
    start = world.clock.now - 5.0
    buckets = [0] * 10
    for client in world.clients:
        for t in client.pings:
            if t >= start:
                buckets[min(9, int((t - start) / 0.5))] += 1
    assert 4900 <= sum(buckets) <= 5100
    assert max(buckets) <= 2 * 5000 / 10 * 1.1


def test_clients_connecting_steadily_keep_their_intervals_with_a_jittery_timer():
    world = World(ping_interval=5.0, seed=3)
    resolution = heartbeat_resolution(world.options)
    for _ in range(50):
        world.connect(40)
        world.run(0.1, resolution)
    world.run(40.0, resolution)
    intervals = world.intervals()
    assert len(intervals) > 2000 * 6
    assert min(intervals) >= 5.0 * 0.95 and max(intervals) <= 5.0 * 1.05


def test_a_client_that_never_answers_is_aborted_after_the_ping_timeout():
    world = World(ping_interval=1.0)
    closed: list[str] = []

    class Silent(Client):
        def write_frames(self, data: bytes) -> bool:
            if data == PING:
                self.pings.append(self.world.clock.now)
            return True

        def close_transport(self) -> None:
            closed.append("closed")

    client = Silent(world)
    session = world.engine.open_session(FakeRequest(), "websocket", client)  # type: ignore[arg-type]
    assert session is not None
    world.run(1.0 + 20.0 + 0.5, 0.05)
    assert len(client.pings) == 1
    assert closed == ["closed"] and session.closed


# ---------------------------------------------------------------- the wheel


class Entry:
    def __init__(self, name: str) -> None:
        self.name = name
        self.wheel_slot = -1


def test_the_wheel_hands_out_entries_when_their_time_has_come_never_early():
    wheel: TimingWheel[Entry] = TimingWheel(0.1)
    a, b = Entry("a"), Entry("b")
    wheel.schedule(a, 10.05)
    wheel.schedule(b, 10.25)
    assert wheel.pop_due(10.0, 100) == []
    assert wheel.pop_due(10.1, 100) == [a]
    assert wheel.pop_due(10.2, 100) == []
    assert wheel.pop_due(10.3, 100) == [b]


def test_the_wheel_keeps_entries_past_the_limit_first_in_line():
    wheel: TimingWheel[Entry] = TimingWheel(0.1)
    early = [Entry(f"e{i}") for i in range(5)]
    late = Entry("late")
    for entry in early:
        wheel.schedule(entry, 1.0)
    wheel.schedule(late, 1.1)
    assert wheel.pop_due(1.0, 3) == early[:3]
    assert wheel.pop_due(1.1, 3) == [*early[3:], late]


def test_a_rescheduled_or_cancelled_entry_is_handed_out_once_at_its_new_time():
    wheel: TimingWheel[Entry] = TimingWheel(0.1)
    a, b = Entry("a"), Entry("b")
    wheel.schedule(a, 5.0)
    wheel.schedule(a, 2.0)  # earlier: the old entry goes stale
    wheel.schedule(b, 2.0)
    wheel.cancel(b)
    assert wheel.pop_due(2.0, 10) == [a]
    assert wheel.pop_due(6.0, 10) == []
    assert len(wheel) == 0


def test_a_cancelled_entry_leaves_the_wheel_at_once():
    wheel: TimingWheel[Entry] = TimingWheel(0.1)
    a = Entry("a")
    wheel.schedule(a, 50.0)
    wheel.cancel(a)
    assert len(wheel) == 0 and not wheel.slots


def test_an_entry_scheduled_in_the_past_comes_at_the_next_pop():
    wheel: TimingWheel[Entry] = TimingWheel(0.1)
    wheel.pop_due(10.0, 10)
    a = Entry("a")
    wheel.schedule(a, 3.0)
    assert wheel.pop_due(10.0, 10) == []
    assert wheel.pop_due(10.1, 10) == [a]


def test_the_wheel_needs_a_positive_resolution():
    with pytest.raises(ValueError):
        TimingWheel(0)
