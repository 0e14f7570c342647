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

import asyncio
import inspect
import logging
from typing import Any, Callable, Dict, Optional, Set, Union

from .engine import EngineServer, EngineSession

__all__ = ["EngineIOApp"]

log = logging.getLogger("tornado_sio.engine")

Handler = Callable[..., Any]


class EngineIOApp:
    """Engine.IO v4 sessions with message handlers; every :class:`EngineServer` option applies."""

    def __init__(self, **engine_options: Any) -> None:
        engine_options.setdefault("connect_timeout", None)  # no namespaces here to wait for
        self.engine = EngineServer(self, **engine_options)
        self.handlers: Dict[str, Handler] = {}
        self._tasks: Set["asyncio.Future[Any]"] = set()

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
            session.send_binary(bytes(data))
        else:
            session.send_text(data)

    def disconnect(self, sid: str) -> None:
        """Close session *sid*."""
        session = self.engine.sessions.get(sid)
        if session is not None:
            session.close("server disconnect")

    def routes(self, path: str = "/engine.io") -> list:
        """Tornado rules serving this endpoint at *path*."""
        return self.engine.routes(path)

    # -- the engine's handler interface ----------------------------------

    def on_open(self, session: EngineSession) -> Optional[bool]:
        """Run ``connect``; a plain handler returning False refuses the handshake (403)."""
        session.mark_connected()
        handler = self.handlers.get("connect")
        if handler is None:
            return None
        try:
            result = handler(session.sid, session.request)
        except Exception:
            log.exception("engine.io connect handler failed (sid %s); refusing", session.sid)
            return False
        if inspect.isawaitable(result):
            self._spawn(self._finish(result, session, "connect"))
            return None
        return False if result is False else None

    def on_message(self, session: EngineSession, data: Union[str, bytes]) -> None:
        handler = self.handlers.get("message")
        if handler is not None:
            self._run(handler, session, "message", session.sid, data)

    def on_close(self, session: EngineSession, reason: str) -> None:
        handler = self.handlers.get("disconnect")
        if handler is not None:
            self._run(handler, session, "disconnect", session.sid, reason)

    def _run(self, handler: Handler, session: EngineSession, event: str, *args: Any) -> None:
        try:
            result = handler(*args)
        except Exception:
            log.exception("engine.io %s handler failed (sid %s)", event, session.sid)
            return
        if inspect.isawaitable(result):
            self._spawn(self._finish(result, session, event))

    def _spawn(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, awaitable: Any, session: EngineSession, event: str) -> None:
        try:
            result = await awaitable
        except Exception:
            log.exception("engine.io %s handler failed (sid %s)", event, session.sid)
            return
        if result is False and event == "connect":
            log.info("engine.io session %s refused by the connect handler", session.sid)
            session.close("server disconnect")

    def stop(self) -> None:
        """Close every session and stop the heartbeat sweep."""
        self.engine.close_all("server shutting down")
        self.engine.stop()

