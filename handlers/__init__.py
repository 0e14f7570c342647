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
             counter_interval: float = 5.0,
             sockjs_client_url: Optional[str] = None) -> Tuple[tornado.web.Application, SocketIO]:
    """Build the demo: the ``SocketIO`` server with the ``/test`` handlers, and the
    Tornado ``Application`` serving the page, its static files and the endpoint."""
    socketio = SocketIO(**(socketio_kwargs or {}))
    socketio.on_namespace(DemoNamespace(NAMESPACE, interval=counter_interval))
    app = tornado.web.Application(
        socketio.routes() + [
            tornado.web.url(r"/", IndexHandler, {"socketio": socketio}, name="index"),
        ],
        template_path=str(ROOT / "templates"),
        static_path=str(ROOT / "static"),
        demo_namespace=NAMESPACE,
        sockjs_client_url=sockjs_client_url,
        debug=debug,
    )
    return app, socketio
