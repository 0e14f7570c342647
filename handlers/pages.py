"""The demo's HTTP pages."""

from __future__ import annotations

import tornado.web

from tornado_sio import SocketIO

__all__ = ["IndexHandler"]


class IndexHandler(tornado.web.RequestHandler):
    """The demo page: forms for every event, a log, latency and transport."""

    def initialize(self, socketio: SocketIO) -> None:
        self.socketio = socketio

    def get(self) -> None:
        self.set_header("Content-Security-Policy",
                        "default-src 'self'; connect-src 'self' ws: wss:; "
                        "style-src 'self'; img-src 'self' data:")
        self.render("index.html", client_script_url=self.socketio.client_script_url,
                    namespace=self.settings.get("demo_namespace", "/test"))
