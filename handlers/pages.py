"""The demo's HTTP pages."""

from __future__ import annotations

import tornado.web

from tornado_sio import SocketIO
from tornado_sio.http.sockjs import ClientScript, client_script

__all__ = ["IndexHandler"]


class IndexHandler(tornado.web.RequestHandler):
    """The demo page: forms for every event, a log, latency and transport.

    With ``?transport=sockjs`` it loads sockjs-client from the server's
    ``sockjs_client_url`` option (with its SRI hash), the script the SockJS
    iframe page loads too.
    """

    def initialize(self, socketio: SocketIO) -> None:
        self.socketio = socketio
        self.sockjs_client: ClientScript = client_script(socketio.options)

    def get(self) -> None:
        sockjs_mode = self.get_query_argument("transport", "") == "sockjs"
        script_src = "'self'"
        if sockjs_mode and self.sockjs_client.origin:
            script_src += " " + self.sockjs_client.origin
        self.set_header("Content-Security-Policy",
                        f"default-src 'self'; script-src {script_src}; connect-src 'self' ws: wss:; "
                        "style-src 'self'; img-src 'self' data:")
        self.render("index.html", client_script_url=self.socketio.client_script_url,
                    namespace=self.settings.get("demo_namespace", "/test"),
                    sockjs_mode=sockjs_mode, sockjs_client=self.sockjs_client)
