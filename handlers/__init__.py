"""The example app: build it with :func:`make_app` (``run.py`` and the tests share it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import tornado.web

from tornado_sio import SocketIO

from .demo import NAMESPACE, DemoNamespace
from .pages import IndexHandler

__all__ = ["make_app", "DemoNamespace", "IndexHandler", "ROOT"]

#: The repository root (templates/ and static/ live there).
ROOT = Path(__file__).resolve().parent.parent


def make_app(socketio_kwargs: Optional[Dict[str, Any]] = None, *, debug: bool = False,
             counter_interval: float = 5.0, sockjs_client_url: Optional[str] = None,
             sockjs_client_integrity: Optional[str] = None) -> Tuple[tornado.web.Application, SocketIO]:
    """Build the demo: the ``SocketIO`` server with the ``/test`` handlers, and the
    Tornado ``Application`` serving the page, its static files and the endpoint.

    *sockjs_client_url* and *sockjs_client_integrity* (``run.py
    --sockjs-client-url``) are the server's options of those names: the page in
    SockJS mode and the SockJS iframe page load that one script. Raises
    ``ValueError`` for a script the options refuse (``docs/sockjs.md``).
    """
    kwargs = dict(socketio_kwargs or {})
    if sockjs_client_url is not None:
        kwargs["sockjs_client_url"] = sockjs_client_url
    if sockjs_client_integrity is not None:
        kwargs["sockjs_client_integrity"] = sockjs_client_integrity
    socketio = SocketIO(**kwargs)
    socketio.on_namespace(DemoNamespace(NAMESPACE, interval=counter_interval))
    app = tornado.web.Application(
        socketio.routes() + [
            tornado.web.url(r"/", IndexHandler, {"socketio": socketio}, name="index"),
        ],
        template_path=str(ROOT / "templates"),
        static_path=str(ROOT / "static"),
        demo_namespace=NAMESPACE,
        debug=debug,
    )
    return app, socketio
