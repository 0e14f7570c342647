"""Transports: they move bytes between a client and the engine, and nothing else.

Both transports live on one path (``/socket.io/`` by default): a request whose
query says ``transport=websocket`` is routed to the WebSocket handler, any other
to the long-polling handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from tornado.httputil import HTTPServerRequest
from tornado.routing import PathMatches, Rule

if TYPE_CHECKING:
    from ..engine import EngineServer

__all__ = ["routes"]


class _TransportMatches(PathMatches):
    """Matches the endpoint path and, optionally, one ``transport`` query value."""

    def __init__(self, path_pattern: str, transport: Optional[str]) -> None:
        super().__init__(path_pattern)
        self.transport = transport

    def match(self, request: HTTPServerRequest) -> Optional[Dict[str, Any]]:
        if self.transport is not None:
            values = request.query_arguments.get("transport")
            if not values or values[-1].decode("latin-1") != self.transport:
                return None
        return super().match(request)


def routes(engine: "EngineServer", path: str) -> List[Rule]:
    """The Tornado rules serving *engine* at *path* (e.g. ``/socket.io``)."""
    from .polling import PollingHandler
    from .websocket import EngineWebSocketHandler

    pattern = "^" + path.rstrip("/") + "/?$"
    kwargs = {"engine": engine}
    return [
        Rule(_TransportMatches(pattern, "websocket"), EngineWebSocketHandler, kwargs),
        Rule(_TransportMatches(pattern, None), PollingHandler, kwargs),
    ]
