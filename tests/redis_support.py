"""Helpers for the Redis tests: a throwaway redis-server, server processes, clients.

Everything binds 127.0.0.1, every process is stopped by its PID, every wait is
bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests import support
from tests.apps import close_client

APP = str(support.ROOT / "tests" / "redis_app.py")
WAIT = 10.0  # bound on any single wait; never a timing assertion


class ChildProcess:
    """A child process (:attr:`proc`, set when started), stopped by its PID."""

    proc: subprocess.Popen | None = None

    def kill(self) -> None:
        """SIGKILL by PID: the process vanishes without closing anything cleanly."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        """Stop by PID (SIGTERM, then SIGKILL)."""
        if self.proc is not None:
            support.stop_process(self.proc)


class RedisServer(ChildProcess):
    """``redis-server`` on a free loopback port, no persistence; restartable on the same port."""

    def __init__(self, port: int | None = None, url: str | None = None) -> None:
        self._url = url
        self.binary = "" if url else support.need("redis-server", "apt-get install redis-server")
        self.port = port or support.free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self._url or f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        support.wait_for_port(self.port, proc=self.proc)
        return self


@contextlib.contextmanager
def redis_server():
    """A fresh redis-server, or the one in REDIS_URL (then never stopped by us)."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield RedisServer(url=url)
        return
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


class AppProcess(ChildProcess):
    """``python tests/redis_app.py --port N --redis URL ...`` as a child process."""

    def __init__(self, redis_url: str, *extra: str, port: int | None = None) -> None:
        self.port = port or support.free_port()
        self.args = [sys.executable, APP, "--port", str(self.port), "--redis", redis_url, *extra]
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"tornado-sio-redis-app-{os.getpid()}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> AppProcess:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.args, cwd=str(support.ROOT), stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = WAIT) -> AppProcess:
        """Wait (bounded by *timeout*) until it listens; fail with its output if it does not."""
        assert self.proc is not None
        try:
            support.wait_for_port(self.port, timeout=timeout, proc=self.proc)
        except Exception:
            raise AssertionError(f"server on {self.port} did not start:\n{self.output()}") from None
        return self

    def stop(self) -> None:
        """Stop by PID (SIGTERM, then SIGKILL) and delete the log file."""
        super().stop()
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@contextlib.contextmanager
def running(procs: Sequence[AppProcess], timeout: float = WAIT) -> Iterator[list[AppProcess]]:
    """*procs*, spawned (so they start in parallel), once each is ready (each wait bounded by
    *timeout*); stopped by PID afterwards."""
    try:
        for proc in procs:
            proc.wait_ready(timeout)
        yield list(procs)
    finally:
        for proc in procs:
            proc.stop()


@contextlib.contextmanager
def app_processes(redis_url: str, count: int, *extra: str):
    """*count* servers started in parallel; stopped by PID afterwards."""
    with running([AppProcess(redis_url, *extra).spawn() for _ in range(count)]) as procs:
        yield procs


class Client:
    """python-socketio's ``AsyncClient``, recording every event it receives."""

    def __init__(self, name: str = "", serializer: str = "default") -> None:
        import socketio

        self.name = name
        self.sio = socketio.AsyncClient(reconnection=False, serializer=serializer)
        self.inbox: list[dict[str, Any]] = []
        self.answers: dict[tuple, Any] = {}
        self.sid: dict[str, str] = {}
        self.disconnected: list[str] = []
        self._arrived = asyncio.Event()

        @self.sio.on("*", namespace="*")
        def any_event(event: str, namespace: str, *args: Any) -> Any:
            self.inbox.append({"event": event, "namespace": namespace, "args": list(args)})
            self._arrived.set()
            answer = self.answers.get((namespace, event))
            return answer(*args) if callable(answer) else answer

        @self.sio.on("disconnect", namespace="*")
        def on_disconnect(namespace: str, *reason: Any) -> None:
            self.disconnected.append(namespace)
            self._arrived.set()

    async def connect(self, server: AppProcess, namespaces: Sequence[str] = ("/",),
                      transports: Sequence[str] = ("websocket",)) -> Client:
        await self.sio.connect(server.url, namespaces=list(namespaces), transports=list(transports),
                               wait_timeout=WAIT)
        for ns in namespaces:
            self.sid[ns] = self.sio.get_sid(ns)
        return self

    async def call(self, event: str, *args: Any, namespace: str = "/") -> Any:
        return await self.sio.call(event, args[0] if len(args) == 1 else args if args else None,
                                   namespace=namespace, timeout=WAIT)

    async def ask(self, event: str, *args: Any, namespace: str = "/") -> Any:
        """Emit *event* with each of *args* as its own argument; return the ack."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(*answer: Any) -> None:
            if not future.done():
                future.set_result(answer[0] if len(answer) == 1 else list(answer))

        await self.sio.emit(event, tuple(args), namespace=namespace, callback=done)
        return await asyncio.wait_for(future, WAIT)

    def got(self, event: str, namespace: str = "/") -> list[list[Any]]:
        return [m["args"] for m in self.inbox if m["event"] == event and m["namespace"] == namespace]

    async def expect(self, event: str, namespace: str = "/", count: int = 1, timeout: float = WAIT) -> list[list[Any]]:
        """Wait (bounded) until *count* *event*s arrived; return them all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.got(event, namespace)) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"client {self.name}: {len(self.got(event, namespace))} of {count} "
                                     f"{event!r} in {namespace}; inbox: {self.inbox[-10:]}")
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return self.got(event, namespace)

    async def close(self) -> None:
        await close_client(self.sio)


async def connect_all(pairs: Sequence[tuple]) -> list[Client]:
    """``[(server, namespaces), ...]`` -> connected clients, concurrently."""
    clients = [Client(f"c{i}@{server.port}") for i, (server, _) in enumerate(pairs)]
    await asyncio.gather(*(c.connect(server, namespaces) for c, (server, namespaces) in zip(clients, pairs)))
    # a new client's channels are subscribed one Redis round trip after its CONNECT
    # reply; "my rooms" awaits adapter.sync(), so from here on it is reachable
    await asyncio.gather(*(c.ask("my rooms", namespace=ns) for c, (_, namespaces) in zip(clients, pairs)
                           for ns in namespaces))
    return clients


def once_each(clients: Sequence[Client], event: str, namespace: str = "/") -> list[list[Any]]:
    """The one *event* each of *clients* got (asserting it is exactly one each): its arguments."""
    counts = [len(c.got(event, namespace)) for c in clients]
    assert counts == [1] * len(clients), f"{event!r} deliveries per client: {counts}"
    return [c.got(event, namespace)[0] for c in clients]


async def close_all(clients: Sequence[Client]) -> None:
    await asyncio.gather(*(c.close() for c in clients))


async def settle(seconds: float = 0.3) -> None:
    """Give stray duplicates a chance to arrive before counting."""
    await asyncio.sleep(seconds)


def wait_until(predicate: Any, timeout: float = WAIT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.02)
