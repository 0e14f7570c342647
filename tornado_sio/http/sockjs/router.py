"""sockjs-tornado's router with our session class, our limits and the engine's sweeper."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from tornado.ioloop import IOLoop

from ...engine.connection import ConnectionHandler
from ...engine.server import EngineServer
from ...options import Options
from ...protocol.outgoing import Prepared
from .._fastpath import expire_sessions, router_sessions, stop_router_timers
from ..policy import Gate
from .connection import Bridge, Session, SockJSClientConnection
from .upstream import SockJSRouter

__all__ = ["Router", "frame_json"]

log = logging.getLogger("tornado_sio.sockjs")


def frame_json(text: str) -> str:
    """A SockJS message as JSON. ASCII-only (like sockjs-tornado), so no transport
    or browser mangles U+2028 and friends."""
    return json.dumps(text)


class _CurrentLoop:
    """Stands in for the IOLoop sockjs-tornado stores: the running loop at call time."""

    def __getattr__(self, name: str) -> Any:
        return getattr(IOLoop.current(), name)


class Router(SockJSRouter):  # type: ignore[misc, unused-ignore]
    """``SockJSRouter`` with our session class and checks; its timers run on the engine's sweeper.

    Built inside the running loop (the upstream constructor starts timers,
    which are stopped at once: one sweep job replaces them).
    """

    def __init__(self, handler: ConnectionHandler, engine: EngineServer, options: Options, prefix: str,
                 settings: dict[str, Any]) -> None:
        self.handler = handler
        self.engine = engine
        self.config = options
        self.gate = Gate(options, engine.capacity)
        #: The open connections, by their sid.
        self.clients: dict[str, SockJSClientConnection] = {}
        self._jsonified: tuple[Any, str] = (None, "")
        super().__init__(Bridge, prefix, settings, io_loop=_CurrentLoop(), session_kls=Session)
        stop_router_timers(self)
        self.sweep_job = engine.sweeper.add_job(self.sweep, float(self.settings["session_check_interval"]))

    # -- connections -------------------------------------------------------

    def attach(self, client: SockJSClientConnection) -> None:
        """A connection opened: count it against ``max_connections``."""
        self.clients[client.sid] = client
        self.engine.capacity.acquire()

    def detach(self, client: SockJSClientConnection) -> None:
        """A connection closed."""
        if self.clients.pop(client.sid, None) is not None:
            self.engine.capacity.release()

    def sessions(self) -> list[Any]:
        """Every SockJS session the router holds (open, or closed with messages to collect)."""
        return list(router_sessions(self).values())

    def jsonify(self, prepared: Prepared) -> str:
        """The SockJS messages of a prepared packet, JSON-encoded once per broadcast."""
        last, text = self._jsonified
        if last is prepared:
            return text
        parts = [frame_json(prepared.sio_text)]
        for attachment in prepared.attachments:
            parts.append(frame_json("b" + base64.b64encode(attachment).decode("ascii")))
        text = ",".join(parts)
        self._jsonified = (prepared, text)
        return text

    # -- timers and shutdown -----------------------------------------------

    def sweep(self, now: float) -> None:
        """Expire silent sessions (SockJS's ``disconnect_delay``) and unconnected ones (run by the sweeper)."""
        try:
            expire_sessions(self)
        except Exception:
            log.exception("sockjs session expiry failed")
        for client in list(self.clients.values()):
            client.sweep(now)

    def close_all(self, reason: str = "server shutting down") -> None:
        """Close every connection (graceful shutdown: polling clients still collect their queue)."""
        for client in list(self.clients.values()):
            client.close(reason)

    def stop(self) -> None:
        """Stop the sweep job."""
        self.engine.sweeper.remove_job(self.sweep_job)
