"""A raw Engine.IO endpoint, without Socket.IO on top (like python-engineio).

::

    eio = EngineIOApp(cors_allowed_origins='*')

    @eio.on('message')
    def on_message(sid, data):
        eio.send(sid, data)          # echo

    app = tornado.web.Application(eio.routes('/engine.io'))

Handlers may be plain or ``async def``: ``connect(sid, request)`` (return
``False`` to refuse), ``message(sid, data)`` with ``data`` a ``str`` or
``bytes``, and ``disconnect(sid, reason)``.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, Dict, List, Optional, Union

from .engine.connection import Connection
from .engine.server import EngineServer
from .options import Options
from .protocol.outgoing import raw_binary, raw_text
from .tasks import TaskSet

__all__ = ["EngineIOApp"]

log = logging.getLogger("tornado_sio.engine")

Handler = Callable[..., Any]


class EngineIOHandler:
    """The engine's connection handler for an :class:`EngineIOApp`: runs its handlers."""

    def __init__(self, handlers: Dict[str, Handler]) -> None:
        self.handlers = handlers
        self.tasks = TaskSet("engine.io handler task")

    def connection_opened(self, conn: Connection) -> Optional[bool]:
        """Run ``connect``; a plain handler returning False refuses the handshake (403)."""
        conn.mark_connected()
        handler = self.handlers.get("connect")
        if handler is None:
            return None
        try:
            result = handler(conn.sid, conn.request)
        except Exception:
            log.exception("engine.io connect handler failed (sid %s); refusing", conn.sid)
            return False
        if inspect.isawaitable(result):
            self.tasks.spawn(self.finish(result, conn, "connect"))
            return None
        return False if result is False else None

    def connection_message(self, conn: Connection, data: Union[str, bytes]) -> None:
        handler = self.handlers.get("message")
        if handler is not None:
            self.run(handler, conn, "message", conn.sid, data)

    def connection_closed(self, conn: Connection, reason: str) -> None:
        handler = self.handlers.get("disconnect")
        if handler is not None:
            self.run(handler, conn, "disconnect", conn.sid, reason)

    def run(self, handler: Handler, conn: Connection, event: str, *args: Any) -> None:
        """Call a handler; log its failure; await it when it is async."""
        try:
            result = handler(*args)
        except Exception:
            log.exception("engine.io %s handler failed (sid %s)", event, conn.sid)
            return
        if inspect.isawaitable(result):
            self.tasks.spawn(self.finish(result, conn, event))

    async def finish(self, awaitable: Any, conn: Connection, event: str) -> None:
        try:
            result = await awaitable
        except Exception:
            log.exception("engine.io %s handler failed (sid %s)", event, conn.sid)
            return
        if result is False and event == "connect":
            log.info("engine.io session %s refused by the connect handler", conn.sid)
            conn.close("server disconnect")


class EngineIOApp:
    """Engine.IO v4 sessions with message handlers.

    Keyword arguments are :class:`~tornado_sio.options.Options` fields (the
    Engine.IO ones apply); ``connect_timeout`` defaults to None here, since
    there are no namespaces to wait for.
    """

    def __init__(self, *, options: Optional[Options] = None, **kwargs: Any) -> None:
        if options is None:
            kwargs.setdefault("connect_timeout", None)
        self.options = Options.build(options, **kwargs)
        self.handlers: Dict[str, Handler] = {}
        self.engine = EngineServer(EngineIOHandler(self.handlers), self.options)

    def on(self, event: str) -> Callable[[Handler], Handler]:
        """Decorator for ``connect``, ``message`` or ``disconnect``."""
        if event not in ("connect", "message", "disconnect"):
            raise ValueError(f"unknown Engine.IO event {event!r}")

        def decorator(handler: Handler) -> Handler:
            self.handlers[event] = handler
            return handler

        return decorator

    def send(self, sid: str, data: Union[str, bytes]) -> None:
        """Send one message to session *sid* (text or binary); unknown sids are ignored."""
        session = self.engine.sessions.get(sid)
        if session is None:
            return
        if isinstance(data, (bytes, bytearray, memoryview)):
            session.send_message(raw_binary(bytes(data)))
        else:
            session.send_message(raw_text(data))

    def disconnect(self, sid: str) -> None:
        """Close session *sid*."""
        session = self.engine.sessions.get(sid)
        if session is not None:
            session.close("server disconnect")

    def routes(self, path: str = "/engine.io") -> List[Any]:
        """Tornado rules serving this endpoint at *path*."""
        from .http.routes import endpoint_routes

        return endpoint_routes(self.engine, self.options, path)

    def stop(self) -> None:
        """Close every session and stop the heartbeat sweep."""
        self.engine.close_all("server shutting down")
        self.engine.stop()
