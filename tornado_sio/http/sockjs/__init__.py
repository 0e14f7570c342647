"""SockJS fallback: Socket.IO packets over a hardened ``sockjs-tornado`` router.

``SocketIO.routes()`` mounts a :class:`SockJSEndpoint` beside the Engine.IO
endpoint (``/sockjs`` by default). A SockJS session is a
:class:`~tornado_sio.engine.connection.Connection` to the same
:class:`~tornado_sio.engine.connection.ConnectionHandler` as an Engine.IO
session. See ``docs/sockjs.md``.

``sockjs-tornado`` 1.0.7 is used as a library, never copied: its router,
session and transport handlers are subclassed so that the server's policies
apply (the same gate, CORS rule and body guard as the Engine.IO endpoint;
``max_send_buffer``, ``max_connections`` counted with the Engine.IO sessions,
``connect_timeout``); its timers run on the engine's sweeper.

The package: ``connection`` (the Connection, sockjs-tornado's session and
connection objects), ``router``, ``guard`` (the checks before every HTTP
handler), ``handlers`` (the HTTP transports), ``websocket``, ``client`` (the
sockjs-client script of the page and the iframe page), ``upstream`` (the
sockjs-tornado imports).

Heartbeats and disconnect detection are SockJS's own: ``h`` frames every
``ping_interval`` seconds, a session without a receiving request for
``ping_timeout`` seconds expires (disconnect reason ``"ping timeout"``).
"""

from __future__ import annotations

import re
from typing import Any

from ...engine.connection import ConnectionHandler
from ...engine.server import EngineServer
from ...options import Options
from .client import (
    DEFAULT_SOCKJS_INTEGRITY,
    DEFAULT_SOCKJS_URL,
    SOCKJS_CLIENT_VERSION,
    ClientScript,
    client_script,
)
from .connection import CLOSE_CODES, SockJSClientConnection
from .handlers import SENDERS, STATIC, TRANSPORTS, iframe_page
from .router import Router
from .websocket import WebSocket

__all__ = [
    "CLOSE_CODES",
    "DEFAULT_SOCKJS_INTEGRITY",
    "DEFAULT_SOCKJS_URL",
    "SOCKJS_CLIENT_VERSION",
    "ClientScript",
    "SockJSClientConnection",
    "SockJSEndpoint",
    "client_script",
    "default_settings",
]

_SESSION_ID = r"[A-Za-z0-9_-]{1,128}"


def default_settings(options: Options) -> dict[str, Any]:
    """sockjs-tornado settings derived from the server's options (before ``sockjs_settings``).

    ``sockjs_url`` (the iframe page's script) is ``sockjs_client_url``; it cannot be
    set in ``sockjs_settings``, so the page and the iframe page load the same script.
    """
    disconnect_delay = options.ping_timeout
    return {
        "disconnect_delay": disconnect_delay,
        "heartbeat_delay": options.ping_interval,
        "session_check_interval": min(1.0, max(0.02, disconnect_delay / 5.0)),
        "disabled_transports": [],
        "sockjs_url": client_script(options).url,
        "response_limit": 128 * 1024,
        "jsessionid": False,
        "immediate_flush": True,
        "disable_nagle": True,
        "verify_ip": True,
    }


class SockJSEndpoint:
    """The SockJS router of one server, at ``options.sockjs_prefix``.

    :param handler: told of every connection, like the engine's handler.
    :param engine: its capacity counts SockJS connections too, and its sweeper
        runs the SockJS expiry and connect deadlines.
    :param options: ``sockjs_prefix``, ``sockjs_settings`` (sockjs-tornado
        settings: ``disabled_transports``, ``response_limit``, ``verify_ip``,
        ``disconnect_delay`` ...), ``sockjs_client_url`` and
        ``sockjs_client_integrity`` (the iframe page's script), and every limit.

    Raises ``ValueError`` for a ``sockjs_client_url`` :func:`client_script`
    refuses, and for ``sockjs_url`` in ``sockjs_settings`` (replaced by
    ``sockjs_client_url``).

    The sockjs-tornado router is built at the first request, inside the running
    loop (its constructor binds timers to the current loop; ``routes()`` usually
    runs before the loop does).
    """

    def __init__(self, handler: ConnectionHandler, engine: EngineServer, options: Options) -> None:
        self.handler = handler
        self.engine = engine
        self.options = options
        prefix = options.sockjs_prefix.strip("/")
        self.prefix = "/" + prefix if prefix else ""
        if "sockjs_url" in options.sockjs_settings:
            raise ValueError("sockjs_settings['sockjs_url'] is replaced by the sockjs_client_url option "
                             "(with sockjs_client_integrity): one setting for the page and the iframe page")
        #: The sockjs-client script of the iframe page (and of pages that ask :func:`client_script`).
        self.client: ClientScript = client_script(options)
        #: The iframe page (``<prefix>/iframe.html``), rendered once.
        self.iframe_page: bytes = iframe_page(self.client)
        self.settings = default_settings(options)
        self.settings.update(options.sockjs_settings)
        self.built: Router | None = None

    def __repr__(self) -> str:
        return f"<SockJSEndpoint {self.prefix or '/'} {len(self.connections())} connections>"

    @property
    def router(self) -> Router:
        """The sockjs-tornado router, built on first use."""
        if self.built is None:
            self.built = Router(self.handler, self.engine, self.options, self.prefix, self.settings)
        return self.built

    def routes(self) -> list[Any]:
        """The Tornado rules of the SockJS endpoint."""
        kwargs = {"server": self}
        base = re.escape(self.prefix)
        session = base + r"/[^/.]+/(?P<session_id>" + _SESSION_ID + ")"
        disabled = set(self.settings["disabled_transports"])
        transports = dict(TRANSPORTS, websocket=WebSocket)
        rules: list[Any] = [(f"{session}/{name}$", cls, kwargs) for name, cls in SENDERS.items()]
        rules += [(f"{session}/{name}$", cls, kwargs) for name, cls in transports.items() if name not in disabled]
        rules += [(base + pattern, cls, kwargs) for pattern, cls in STATIC.items()]
        return rules

    def connections(self) -> list[SockJSClientConnection]:
        """The open SockJS connections."""
        return list(self.built.clients.values()) if self.built is not None else []

    def close_all(self, reason: str = "server shutting down") -> None:
        """Close every SockJS connection (graceful shutdown)."""
        if self.built is not None:
            self.built.close_all(reason)

    def undelivered(self) -> bool:
        """Whether some session still holds messages its client has not collected
        (polling clients get them, then the close frame, with their next request)."""
        if self.built is None:
            return False
        return any(session.send_queue for session in self.built.sessions())

    def stop(self) -> None:
        """Stop the SockJS sweep (after :meth:`close_all`)."""
        if self.built is not None:
            self.built.stop()
