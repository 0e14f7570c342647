"""Background tasks, and where code runs: the IOLoop or a thread.

``asyncio`` keeps only a weak reference to a task, so a task nobody holds can
vanish mid-flight, and an exception nobody retrieves is reported late, if at
all. :class:`TaskSet` is the one place tornado-sio starts tasks: it holds each
until it ends and logs a failure once, naming what the task was for.

Flask-SocketIO code sleeps and waits in threads; tornado-sio's handlers run on
the IOLoop unless ``handler_threads`` is set. :func:`sleep` does the right
thing in both places, and :data:`plain_calls` tells whether a plain (``def``)
handler is holding the IOLoop right now, when blocking would stall everyone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
import time
from typing import Any, Awaitable, Callable, Coroutine, Generator, Optional, Set

__all__ = ["TaskSet", "Sleep", "sleep", "plain_calls", "warn_once", "LoopHome", "running_loop"]

log = logging.getLogger("tornado_sio")

_warned: Set[str] = set()


def warn_once(key: str, message: str, *args: Any, logger: Optional[logging.Logger] = None) -> None:
    """Log *message* at WARNING the first time *key* is seen in this process, then at DEBUG,
    so a mistake repeated at wire speed is said once without flooding the log."""
    level = logging.DEBUG if key in _warned else logging.WARNING
    _warned.add(key)
    (logger or log).log(level, message, *args)


class TaskSet:
    """Tasks started by one owner (a server, an adapter), held until they end."""

    __slots__ = ("tasks", "what")

    def __init__(self, what: str = "background task") -> None:
        self.tasks: Set[asyncio.Future[Any]] = set()
        self.what = what

    def spawn(self, awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run *awaitable* as a task on the running loop; log it if it fails."""
        task = asyncio.ensure_future(awaitable)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s failed", self.what, exc_info=(type(exc), exc, exc.__traceback__))

    def cancel_all(self) -> None:
        """Cancel every task still running (at shutdown)."""
        for task in list(self.tasks):
            task.cancel()

    def __len__(self) -> int:
        return len(self.tasks)


class _PlainCalls(threading.local):
    """Per thread: how many plain handlers the dispatcher is running on the IOLoop right now."""

    depth = 0


#: ``plain_calls.depth > 0`` while a plain (``def``) handler runs on the IOLoop thread.
#: A thread-local, not a ``ContextVar``: a task a plain handler starts must not inherit it.
plain_calls = _PlainCalls()


class Sleep:
    """What :func:`sleep` returns: await it on the IOLoop; in a thread it has already slept.

    Dropped without being awaited on the IOLoop (``socketio.sleep(1)`` without
    ``await``), it did not sleep: that is logged once, as a WARNING.
    """

    __slots__ = ("seconds", "awaited")

    def __init__(self, seconds: float, awaited: bool = False) -> None:
        self.seconds = seconds
        self.awaited = awaited

    def __await__(self) -> Generator[Any, None, None]:
        self.awaited = True
        return asyncio.sleep(self.seconds).__await__()

    def __del__(self) -> None:
        if not self.awaited:
            warn_once("sleep", "socketio.sleep(%s) was called on the IOLoop and never awaited, so it did not "
                      "sleep: write `await socketio.sleep(...)` in an async def, or run the code in a thread",
                      self.seconds)


def sleep(seconds: float = 0) -> Sleep:
    """Sleep *seconds* where the caller runs.

    In a thread without a running event loop (a plain background task, a
    handler under ``handler_threads``) it blocks, as Flask-SocketIO's
    ``sleep()`` does in threading mode. On the IOLoop it returns an awaitable:
    ``await socketio.sleep(s)``. In a plain handler on the IOLoop it cannot do
    either without stalling every client, so it returns at once and warns once.
    """
    if running_loop() is None:
        time.sleep(seconds)
        return Sleep(0, awaited=True)
    if plain_calls.depth:
        warn_once("sleep", "socketio.sleep(%s) in a plain handler on the IOLoop does not sleep (it would stall "
                  "every client): make the handler `async def` and `await socketio.sleep(...)`, or set "
                  "SocketIO(handler_threads=N)", seconds)
        return Sleep(0, awaited=True)
    return Sleep(seconds)


class LoopHome:
    """The event loop a server lives on, and how code elsewhere reaches it.

    A server's state (rooms, sockets, queues) belongs to one loop. Code in
    another thread hands work over (:meth:`run`); code outside any loop (a
    thread, a script, a test) waits for a coroutine with :meth:`wait_for`,
    which runs the loop itself when it is idle in the calling thread (the
    test client's loop between two calls).
    """

    __slots__ = ("loop", "thread", "background")

    def __init__(self) -> None:
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.thread: Optional[int] = None
        #: Tasks started by ``start_background_task``: held, failures logged.
        self.background = TaskSet("background task")

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """This is the loop, and the calling thread runs it."""
        self.loop = loop
        self.thread = threading.get_ident()

    def off_loop(self) -> bool:
        """Whether the caller runs in another thread than the loop's."""
        return self.thread is not None and threading.get_ident() != self.thread

    def idle_here(self) -> bool:
        """Whether the loop belongs to this thread, is open, and runs nothing right now."""
        loop = self.loop
        return (loop is not None and not loop.is_closed() and not loop.is_running()
                and self.thread == threading.get_ident() and running_loop() is None)

    def run(self, fn: Callable[[], Any], wait: bool = False) -> Any:
        """Run *fn* on the loop: now when the caller is on it (or no loop is bound yet);
        from another thread handed over, in order, and with *wait* waited for."""
        loop = self.loop
        if loop is None or not self.off_loop():
            return fn()
        if not wait:
            loop.call_soon_threadsafe(fn)
            return None
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def call() -> None:
            try:
                done.set_result(fn())
            except Exception as exc:  # noqa: BLE001 - raised again in the waiting thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return done.result()

    def wait_for(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run *coro* on the loop and block until it ends (for callers outside any loop)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            coro.close()
            raise RuntimeError("the server is not running: nothing to wait for")
        if self.idle_here():
            return loop.run_until_complete(coro)
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def sleep(self, seconds: float) -> Sleep:
        """:func:`sleep`, except that an idle loop of this thread runs meanwhile."""
        if self.idle_here():
            self.wait_for(asyncio.sleep(seconds))
            return Sleep(0, awaited=True)
        return sleep(seconds)

    def start(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A background task, as Flask-SocketIO starts one: an ``async def`` as a task on
        the loop, a plain function in a started daemon ``threading.Thread``. Neither
        inherits the caller's context (the client of the handler that started it)."""
        if not asyncio.iscoroutinefunction(target):
            thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
            thread.start()
            return thread
        coro = target(*args, **kwargs)
        if running_loop() is None:
            if self.loop is None:
                coro.close()
                raise RuntimeError("an async background task needs the server's loop: start it from a "
                                   "handler, or after socketio.run() started")
            return asyncio.run_coroutine_threadsafe(coro, self.loop)
        return contextvars.Context().run(self.background.spawn, coro)


def running_loop() -> Optional[asyncio.AbstractEventLoop]:
    """The event loop running in this thread, or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
