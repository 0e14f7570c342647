"""The Tornado rules of an Engine.IO endpoint.

Both transports live on one path (``/socket.io/`` by default): a request whose
query says exactly ``transport=websocket`` goes to the WebSocket handler, any
other to the long-polling endpoint, which answers a wrong or missing transport
with the spec's 400.

The long-polling rule's target is a :class:`~tornado_sio.http.polling.PollingEndpoint`,
a ``tornado.routing.Router``: an ``Application`` (or any ``RuleRouter``) hands
it the parsed request and it serves the request itself, without a
``RequestHandler``. Every other rule of the application is untouched.
"""

from __future__ import annotations

from typing import Any

from tornado.httputil import HTTPServerRequest
from tornado.routing import PathMatches, Rule

from ..engine.server import EngineServer
from ..options import Options
from .endpoint import transport_of
from .policy import Gate
from .polling import PollingEndpoint
from .websocket import EngineWebSocketHandler

__all__ = ["TransportMatches", "endpoint_routes"]


class TransportMatches(PathMatches):
    """Matches the endpoint path and, when *transport* is given, exactly that ``transport`` query value."""

    def __init__(self, path_pattern: str, transport: str | None) -> None:
        super().__init__(path_pattern)
        self.transport = transport

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        if self.transport is not None and transport_of(request) != self.transport:
            return None
        return super().match(request)


def endpoint_routes(engine: EngineServer, options: Options, path: str | None = None) -> list[Rule]:
    """The Tornado rules serving *engine* at *path* (default ``options.path``, e.g. ``/socket.io``)."""
    where = options.path if path is None else path
    pattern = "^" + where.rstrip("/") + "/?$"
    gate = Gate(options, engine.capacity)
    return [
        Rule(TransportMatches(pattern, "websocket"), EngineWebSocketHandler, {"engine": engine, "gate": gate}),
        Rule(TransportMatches(pattern, None), PollingEndpoint(engine, gate)),
    ]
