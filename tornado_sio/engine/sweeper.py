"""One periodic timer for every deadline of a server.

Why one: a timer per client costs a heap entry and a callback per client and
per period, and at tens of thousands of sessions the loop spends its time
rescheduling them. Instead, each part of the server registers a *job* here, a
function run every so many seconds with the current ``time.monotonic()``, and
walks its own deadlines in one pass:

* the engine: heartbeats (ping due, pong late), connect deadlines, upgrade
  timeouts, and the grace period of closing polling sessions;
* the SockJS endpoint: session expiry and connect deadlines;
* the Socket.IO server: expiry of unanswered acks.

::

    handle = sweeper.add_job(expire, every=1.0)   # expire(now) every second
    sweeper.remove_job(handle)

The timer is armed for the earliest due job (never sooner than 20 ms after the
last tick) and runs each job that is due. A job's schedule is anchored: it
runs every *every* seconds from when it was added, a late tick does not push
the next run back (a job that fell more than a period behind runs once, then
resumes its period from now). The heartbeat relies on that: its pings are
within a tick of their time. The time source is *clock* (``time.monotonic``;
a test passes a fake one and drives :meth:`Sweeper.run_due` itself). It
runs on the asyncio loop that is current when it starts; :meth:`start` is
called by the engine from inside the loop (at the first session), and again
after the loop changed (each ``tornado.testing`` case runs its own loop).
A job that raises is logged and stays registered: one broken sweep must not
stop the heartbeats of everyone else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

__all__ = ["MIN_PERIOD", "JobHandle", "Sweeper"]

log = logging.getLogger("tornado_sio.engine")

#: The shortest tick, in seconds: a job asking for less still runs at most this often.
MIN_PERIOD = 0.02


class JobHandle:
    """What :meth:`Sweeper.add_job` returns: pass it to :meth:`Sweeper.remove_job`."""

    __slots__ = ("due", "every", "fn")

    def __init__(self, fn: Callable[[float], None], every: float, due: float) -> None:
        self.fn = fn
        self.every = every
        self.due = due

    def __repr__(self) -> str:
        return f"<JobHandle {getattr(self.fn, '__qualname__', self.fn)!r} every {self.every:g}s>"


class Sweeper:
    """Runs registered jobs periodically from one timer on the running loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.jobs: dict[int, JobHandle] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.period = 1.0
        #: The time every job is given (and deadlines are measured in).
        self.clock = clock

    def __repr__(self) -> str:
        return f"<Sweeper {len(self.jobs)} jobs, {'running' if self.running else 'stopped'}>"

    @property
    def running(self) -> bool:
        """Whether the timer is scheduled on a loop that is still open."""
        return self.timer is not None and self.loop is not None and not self.loop.is_closed()

    def add_job(self, fn: Callable[[float], None], every: float) -> JobHandle:
        """Run ``fn(time.monotonic())`` every *every* seconds from now on; return its handle.

        The timer starts (or ticks faster) at once when a loop is running;
        otherwise at the next :meth:`start`.
        """
        if not every > 0:
            raise ValueError("a sweeper job needs a positive period")
        handle = JobHandle(fn, float(every), self.clock() + every)
        self.jobs[id(handle)] = handle
        self.reschedule()
        return handle

    def remove_job(self, handle: JobHandle) -> None:
        """Stop running *handle*'s job; unknown or already removed handles are ignored."""
        self.jobs.pop(id(handle), None)

    def start(self) -> None:
        """Schedule the timer on the running loop (no-op when it already runs there).

        Raises ``RuntimeError`` outside a running asyncio loop.
        """
        loop = asyncio.get_running_loop()
        if self.running and self.loop is loop:
            return
        self.stop()
        self.loop = loop
        self.schedule()

    def ensure_running(self) -> None:
        """:meth:`start` when a loop is running; do nothing otherwise."""
        try:
            self.start()
        except RuntimeError:
            pass

    def stop(self) -> None:
        """Cancel the timer; the jobs stay registered for a later :meth:`start`."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def reschedule(self) -> None:
        """Tick faster when a new job asks for it; start when a loop runs."""
        if not self.running:
            self.ensure_running()
        elif self.wanted_period() < self.period:
            self.restart()

    def restart(self) -> None:
        """Cancel and reschedule the timer at the current period (same loop)."""
        if self.timer is not None:
            self.timer.cancel()
        self.schedule()

    def wanted_period(self) -> float:
        """The tick period the jobs ask for: their shortest, clamped to [20 ms, 1 s]."""
        shortest = min((job.every for job in self.jobs.values()), default=1.0)
        return max(MIN_PERIOD, min(1.0, shortest))

    def schedule(self) -> None:
        """Arm the timer for the earliest due job (at least :data:`MIN_PERIOD` away, at most a period)."""
        assert self.loop is not None
        self.period = self.wanted_period()
        soonest = min((job.due for job in self.jobs.values()), default=None)
        delay = self.period if soonest is None else soonest - self.clock()
        self.timer = self.loop.call_later(max(MIN_PERIOD, min(self.period, delay)), self.tick)

    def tick(self) -> None:
        """Run every due job once, then arm the next tick."""
        self.timer = None
        self.run_due(self.clock())
        if self.timer is None and self.loop is not None and not self.loop.is_closed():
            self.schedule()

    def run_due(self, now: float) -> int:
        """Run every job due at *now* once (the timer's work; a test calls it with a fake time); returns how many."""
        ran = 0
        for job in list(self.jobs.values()):
            if now < job.due:
                continue
            job.due += job.every
            if job.due <= now:  # more than a period behind: once now, then every period from now
                job.due = now + job.every
            ran += 1
            try:
                job.fn(now)
            except Exception:
                log.exception("sweeper job %r failed", job)
        return ran
