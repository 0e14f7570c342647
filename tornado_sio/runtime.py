"""How a server process runs: which event loop, and when the garbage collector works.

Two independent, optional tunings for a process that runs a tornado-sio
server (``SocketIO.run`` and ``run.py`` use them; an application that runs its
own loop may call them too):

* :func:`run` runs a coroutine on uvloop when it is installed (the ``fast``
  extra: ``pip install tornado-sio[fast]``), else on asyncio's own loop.
  ``TORNADO_SIO_LOOP=asyncio`` (or ``loop="asyncio"``) keeps asyncio's loop.
  :func:`loop_name` says which one is running, for the start-up log.
* :class:`ManagedGC` keeps garbage collections short when tens of thousands
  of connections are held. A full collection walks every tracked object
  (about a hundred per connection), so at 20,000 clients each one stopped the
  server for about a second. The policy moves what survives into the
  permanent generation (``gc.freeze()``), which collections never walk, a
  little at a time and when the loop is quiet. :class:`GCPauses` measures the
  pauses (``gc.callbacks``).

Neither is on by default in a library import: both act on the whole process.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
from typing import Any, Callable, Coroutine, Dict, List, Optional, TypeVar

__all__ = ["GCPauses", "ManagedGC", "loop_factory", "loop_name", "run"]

log = logging.getLogger("tornado_sio.runtime")

T = TypeVar("T")

#: Environment variable naming the loop :func:`run` uses: ``auto`` (default), ``uvloop`` or ``asyncio``.
LOOP_ENV = "TORNADO_SIO_LOOP"


def loop_factory(loop: Optional[str] = None) -> Optional[Callable[[], asyncio.AbstractEventLoop]]:
    """A factory of uvloop loops, or None for asyncio's own loop.

    *loop* is ``"auto"`` (uvloop when it imports), ``"uvloop"`` (raises
    ``ImportError`` without it) or ``"asyncio"``; None reads ``TORNADO_SIO_LOOP``
    (default ``auto``).
    """
    choice = (loop or os.environ.get(LOOP_ENV) or "auto").strip().lower()
    if choice not in ("auto", "uvloop", "asyncio"):
        raise ValueError(f"unknown event loop {choice!r}: auto, uvloop or asyncio")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], loop: Optional[str] = None) -> T:
    """``asyncio.run(main)``, on uvloop when :func:`loop_factory` gives one."""
    factory = loop_factory(loop)
    if factory is None:
        return asyncio.run(main)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main)
    import uvloop  # Python 3.9 and 3.10: through the loop policy, restored afterwards

    old = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        return asyncio.run(main)
    finally:
        asyncio.set_event_loop_policy(old)


def loop_name(loop: Optional[asyncio.AbstractEventLoop] = None) -> str:
    """``"uvloop"`` or ``"asyncio"``: the loop running now (or *loop*), for the start-up log."""
    if loop is None:
        loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.split(".")[0] == "uvloop" else "asyncio"


class GCPauses:
    """Measures every garbage collection with ``gc.callbacks``: count, total and longest pause per generation.

    ::

        pauses = GCPauses().start()
        ...
        pauses.summary()   # {"gen2": {"count": 3, "total_ms": 41.0, "max_ms": 17.2}, ..., "over_50ms": 0}
    """

    def __init__(self, keep: int = 200) -> None:
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        #: The longest pauses seen, as (seconds, generation, monotonic time), at most *keep* of them.
        self.slow: List[tuple[float, int, float]] = []
        self.keep = keep
        self.started: Optional[float] = None

    def __call__(self, phase: str, info: Dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        if self.started is None:
            return
        pause = time.perf_counter() - self.started
        self.started = None
        generation = info.get("generation", 0)
        self.count[generation] += 1
        self.total[generation] += pause
        if pause > self.longest[generation]:
            self.longest[generation] = pause
        if pause >= 0.005:
            self.slow.append((pause, generation, time.monotonic()))
            if len(self.slow) > self.keep:
                self.slow.sort(reverse=True)
                del self.slow[self.keep:]

    def start(self) -> GCPauses:
        """Register with ``gc.callbacks``; returns self."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        return self

    def stop(self) -> None:
        """Unregister."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def over(self, seconds: float) -> int:
        """How many pauses lasted *seconds* or longer (among those of 5 ms and more)."""
        return sum(1 for pause, _, _ in self.slow if pause >= seconds)

    def summary(self) -> Dict[str, Any]:
        """Counts and pauses (ms) per generation, and how many pauses passed 50 ms."""
        out: Dict[str, Any] = {
            f"gen{g}": {"count": self.count[g], "total_ms": round(self.total[g] * 1000, 2),
                        "max_ms": round(self.longest[g] * 1000, 2)}
            for g in range(3)
        }
        out["over_50ms"] = self.over(0.05)
        out["max_ms"] = round(max(self.longest) * 1000, 2)
        return out


class ManagedGC:
    """Keep every collection short: freeze the start-up heap, then, every half second, what survives.

    CPython's full collection walks every tracked object. A connection holds
    about a hundred, so with 20,000 clients a full collection stopped the
    server for about a second, every 20-40 s even when idle. This policy never
    lets the walked part grow: once :meth:`start` runs on the server's loop,

    * ``gc.collect()`` then ``gc.freeze()``: the start-up heap (modules, the
      application) moves to the permanent generation, which no collection walks;
    * the youngest generation's threshold goes from 700 to *young_threshold*
      allocations (2,000: fewer young collections, each still a few ms), and
      CPython's own full collections are left off;
    * every *every* seconds, when the loop is quiet (a tick more than 20 ms
      late waits 0.1 s more, at most five times), :meth:`freeze`: a full
      collection of what is *not* frozen (only what was allocated since the
      last tick: a few ms idle, tens of ms in a connection burst), then
      ``gc.freeze()``: what survived, mostly the objects of the connections
      held, joins the permanent generation.

    What it costs: a reference cycle that becomes garbage *after* it was
    frozen stays until :meth:`thaw` (objects without cycles are freed by
    reference counting as usual, frozen or not). tornado-sio breaks its own
    cycles when a connection closes (a closed WebSocket connection left no
    frozen garbage at all, measured with ``bench`` probes), but an
    application's objects may form cycles: *thaw_every* (seconds; None, the
    default, never) thaws and collects everything, a pause as long as an
    unmanaged full collection (about 50 ms per 100,000 objects), logged with
    what it reclaimed. :meth:`thaw` does it on demand.
    """

    #: CPython's full collections are left off: the ticks collect the unfrozen heap themselves.
    OFF = 1_000_000_000

    def __init__(self, young_threshold: int = 2000, every: float = 0.5,
                 thaw_every: Optional[float] = None) -> None:
        self.young_threshold = young_threshold
        self.every = every
        self.thaw_every = thaw_every
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.timer: Optional[asyncio.TimerHandle] = None
        self.due = 0.0
        self.put_off = 0
        self.next_thaw: Optional[float] = None
        self.saved_threshold = gc.get_threshold()
        #: Freezes so far, and the objects frozen at the last start or thaw.
        self.freezes = 0
        self.frozen = 0

    def __repr__(self) -> str:
        return f"<ManagedGC every {self.every:g}s, {self.freezes} freezes, {'on' if self.timer else 'off'}>"

    def start(self) -> ManagedGC:
        """Freeze the start-up heap and begin (call from inside the running loop, after start-up)."""
        self.loop = asyncio.get_running_loop()
        self.saved_threshold = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(self.young_threshold, self.saved_threshold[1], self.OFF)
        self.frozen = gc.get_freeze_count()
        now = self.loop.time()
        if self.thaw_every is not None:
            self.next_thaw = now + self.thaw_every
        self.schedule(now + self.every)
        log.info("managed GC: start-up heap frozen (%d objects); young threshold %d; survivors frozen every %gs",
                 self.frozen, self.young_threshold, self.every)
        return self

    def stop(self) -> None:
        """Stop the timer and restore the thresholds (frozen objects stay frozen)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        gc.set_threshold(*self.saved_threshold)

    def schedule(self, due: float) -> None:
        assert self.loop is not None
        self.due = due
        self.timer = self.loop.call_at(due, self.tick)

    def tick(self) -> None:
        """Freeze the survivors (or thaw and collect everything, when that is due), when the loop is quiet."""
        assert self.loop is not None
        now = self.loop.time()
        if now - self.due > 0.02 and self.put_off < 5:
            self.put_off += 1
            self.schedule(now + 0.1)  # the loop is busy: a little later
            return
        self.put_off = 0
        if self.next_thaw is not None and now >= self.next_thaw:
            self.thaw()
            self.next_thaw = now + (self.thaw_every or 0.0)
        else:
            self.freeze()
        self.schedule(self.loop.time() + self.every)

    def freeze(self) -> None:
        """Collect what is not frozen, then freeze what is left.

        (``gc.get_freeze_count()`` walks the whole permanent generation, so it is
        not called here: :attr:`frozen` is updated by :meth:`start` and :meth:`thaw`.)
        """
        gc.collect()
        gc.freeze()
        self.freezes += 1

    def thaw(self) -> int:
        """Unfreeze, collect everything once (one long pause), freeze again; returns what was reclaimed."""
        started = time.perf_counter()
        gc.unfreeze()
        reclaimed = gc.collect()
        gc.freeze()
        self.frozen = gc.get_freeze_count()
        log.info("managed GC: thawed and collected %d objects in %.0f ms; %d frozen",
                 reclaimed, (time.perf_counter() - started) * 1000, self.frozen)
        return reclaimed
