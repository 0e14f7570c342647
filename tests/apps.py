"""The demo server the interop tests run in-process, and an asyncio test runner.

:func:`make_demo` registers the same handlers in namespaces ``/`` and ``/test``:

==============  ===========================================================
``connect``     refuses ``auth == {'token': 'bad'}`` with
                ``ConnectionRefusedError('unauthorized', {'reason': 'bad token'})``;
                otherwise records ``(namespace, sid, auth)``
``disconnect``  records ``(namespace, sid, reason)``
``echo``        emits ``echo`` back with the same args; acks them (a tuple)
``join``        ``join_room(room)``; acks ``'joined'``
``to room``     ``emit('room message', payload, to=room, include_self=False)``
``broadcast``   ``emit('broadcast', payload, broadcast=True)``
``ask``         ``await socketio.call('question', data, to=sid)``, then emits
                the answer back as ``answer``
``ask cb``      ``emit('question', data, callback=...)``; the callback emits
                the client's ack args back as ``answer``
``kick``        ``disconnect()``
==============  ===========================================================

:func:`serve` listens on a free 127.0.0.1 port in the running asyncio loop,
:func:`async_test` runs an ``async def`` pytest test in a fresh loop (bounded),
and :data:`with_transports` parametrizes a test over ``['websocket']``,
``['polling']`` and ``None`` (the client's default: polling, then the upgrade).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, List, Optional, Tuple

import pytest
import tornado.httpserver
import tornado.testing
import tornado.web

from tornado_sio import (
    ConnectionRefusedError,
    SocketIO,
    disconnect,
    emit,
    join_room,
    request,
)

NAMESPACES = ("/", "/test")
BAD_AUTH = {"token": "bad"}
REFUSAL = ("unauthorized", {"reason": "bad token"})

#: Every interop test runs over each: websocket only, polling only, and the
#: clients' default (polling first, then the upgrade to websocket).
with_transports = pytest.mark.parametrize(
    "transports", [["websocket"], ["polling"], None], ids=["websocket", "polling", "default"])


@dataclass
class Recorder:
    """What the demo handlers saw, for the tests to check."""

    connects: List[Tuple[str, str, Any]] = field(default_factory=list)  # (namespace, sid, auth)
    disconnects: List[Tuple[str, str, Any]] = field(default_factory=list)  # (namespace, sid, reason)

    def auth_of(self, namespace: str, sid: str) -> Any:
        for ns, s, auth in self.connects:
            if ns == namespace and s == sid:
                return auth
        raise KeyError((namespace, sid))


def make_demo(**options: Any) -> Tuple[SocketIO, Recorder]:
    """A ``SocketIO`` with the demo handlers in ``/`` and ``/test``."""
    options.setdefault("cors_allowed_origins", "*")
    socketio = SocketIO(**options)
    seen = Recorder()
    for ns in NAMESPACES:
        _register(socketio, seen, ns)
    return socketio, seen


def _register(socketio: SocketIO, seen: Recorder, ns: str) -> None:
    @socketio.on("connect", namespace=ns)
    def on_connect(auth=None):
        if auth == BAD_AUTH:
            raise ConnectionRefusedError(*REFUSAL)
        seen.connects.append((request.namespace, request.sid, auth))

    @socketio.on("disconnect", namespace=ns)
    def on_disconnect(reason=None):
        seen.disconnects.append((request.namespace, request.sid, reason))

    @socketio.on("echo", namespace=ns)
    def echo(*args):
        emit("echo", *args)
        return args

    @socketio.on("join", namespace=ns)
    def join(room):
        join_room(room)
        return "joined"

    @socketio.on("to room", namespace=ns)
    def to_room(room, payload):
        emit("room message", payload, to=room, include_self=False)

    @socketio.on("broadcast", namespace=ns)
    def broadcast(payload):
        emit("broadcast", payload, broadcast=True)

    @socketio.on("ask", namespace=ns)
    async def ask(data):
        answer = await socketio.call("question", data, to=request.sid, namespace=request.namespace, timeout=5)
        emit("answer", answer)

    @socketio.on("ask cb", namespace=ns)
    def ask_cb(data):
        sid, namespace = request.sid, request.namespace

        def got(*args):
            socketio.emit("answer", *args, to=sid, namespace=namespace)

        emit("question", data, callback=got)

    @socketio.on("kick", namespace=ns)
    def kick():
        disconnect()


@dataclass
class DemoServer:
    socketio: SocketIO
    seen: Recorder
    port: int

    @property
    def url(self) -> str:
        """The base URL (no trailing slash): ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def listening(socketio: SocketIO, app: Optional[tornado.web.Application] = None) -> AsyncIterator[int]:
    """Serve *socketio* (on *app*, else an app of its routes) on a free 127.0.0.1 port in the
    current loop, yielding the port; stop the server and shut *socketio* down after (bounded)."""
    if app is None:
        app = tornado.web.Application(socketio.routes())
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    try:
        yield port
    finally:
        server.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(socketio.shutdown(timeout=1), 5)
        socketio.engine.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.close_all_connections(), 5)


@contextlib.asynccontextmanager
async def serve(**options: Any) -> AsyncIterator[DemoServer]:
    """Run the demo app on 127.0.0.1 in the current loop; shut it down after."""
    socketio, seen = make_demo(**options)
    async with listening(socketio) as port:
        yield DemoServer(socketio, seen, port)


def async_test(timeout: float = 30.0) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run an ``async def`` test (pytest fixtures and parameters allowed) in a new loop."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            asyncio.run(asyncio.wait_for(fn(*args, **kwargs), timeout))

        return run

    return decorate


async def close_client(sio: Any) -> None:
    """Disconnect a python-socketio ``AsyncClient`` (bounded) and make sure its
    aiohttp session is closed too, whatever state the client is in."""
    try:
        await asyncio.wait_for(sio.disconnect(), 5)
    except Exception:
        pass
    http = getattr(sio.eio, "http", None)
    if http is not None and not http.closed:
        await http.close()


async def until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait (bounded) until *predicate()* is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.01)
