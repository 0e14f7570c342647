"""The polling fast lane: serve Engine.IO polling requests before Tornado builds a request object.

Tornado's ``Application`` builds an ``HTTPServerRequest`` for every request
(query parsed and deep-copied, ``Host`` validated) and routes it through its
rules before the :class:`~tornado_sio.http.polling.PollingExchange` sees it:
about 20 µs of a polling request's Python time here. :class:`EngineFront` is
an ``HTTPServerConnectionDelegate`` (public Tornado API) put in front of the
application: a request whose path is an Engine.IO endpoint's, and whose query
does not say ``transport=websocket``, goes straight to a ``PollingExchange``
with a :class:`PollingRequest` (the query parsed once, nothing copied); every
other request is handed to the application unchanged, with the same
connection, so its routes, handlers and WebSocket upgrades are untouched.

Tornado's checks of the request line are kept exactly: a request whose
``Host`` value Tornado has not accepted before on this front, or whose query
has more than :data:`LEAN_MAX_FIELDS` fields (Tornado bounds their number),
gets a real ``HTTPServerRequest``, whose constructor applies them (a bad
``Host`` or query is Tornado's 400, as without the front). A handshake always
gets the real request: it is the ``request`` the application sees.

:func:`listen` is ``Application.listen`` with the front; :func:`install` puts
it before a listening server's application (``SocketIO.run`` does). The
endpoints are the application's top-level rules whose target is a
``PollingEndpoint`` (``Application(sio.routes())``); the front serves those
paths before any other rule of the application.
"""

from __future__ import annotations

from typing import Any, Awaitable, Sequence

from tornado.escape import parse_qs_bytes
from tornado.httpserver import HTTPServer
from tornado.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerConnectionDelegate,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
)
from tornado.routing import PathMatches

from .polling import PollingEndpoint, PollingExchange, PollingRequest

__all__ = ["LEAN_MAX_FIELDS", "EngineFront", "find_endpoints", "install", "listen", "parse_query"]

#: A query with more fields than this gets Tornado's own request object (and its bound on fields).
LEAN_MAX_FIELDS = 8


class _FrontDelegate(HTTPMessageDelegate):
    """One request on a connection of the front: a polling exchange, or the application's delegate."""

    __slots__ = ("front", "inner", "request_conn", "server_conn")

    def __init__(self, front: EngineFront, server_conn: object, request_conn: HTTPConnection) -> None:
        self.front = front
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.inner: HTTPMessageDelegate | None = None

    def headers_received(self, start_line: RequestStartLine | ResponseStartLine,
                         headers: HTTPHeaders) -> Awaitable[None] | None:
        assert isinstance(start_line, RequestStartLine)
        inner: HTTPMessageDelegate | None = self.front.exchange_for(self.server_conn, self.request_conn,
                                                                    start_line, headers)
        if inner is None:
            inner = self.front.application.start_request(self.server_conn, self.request_conn)
        self.inner = inner
        return inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self.inner is not None
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        assert self.inner is not None
        self.inner.finish()

    def on_connection_close(self) -> None:
        if self.inner is not None:
            self.inner.on_connection_close()


class EngineFront(HTTPServerConnectionDelegate):
    """An ``HTTPServerConnectionDelegate`` serving Engine.IO polling before *application* does.

    *endpoints* are ``(path regex, PollingEndpoint)`` pairs; by default those of
    *application*'s top-level rules (``application.wildcard_router.rules``).
    Pass it to ``HTTPServer`` where the application would go, or use :func:`listen`.
    """

    def __init__(self, application: HTTPServerConnectionDelegate,
                 endpoints: Sequence[tuple[Any, PollingEndpoint]] | None = None) -> None:
        self.application = application
        self.endpoints = list(endpoints) if endpoints is not None else find_endpoints(application)
        #: ``Host`` values Tornado's ``HTTPServerRequest`` accepted (bounded).
        self.hosts_seen: set[str] = set()

    def __repr__(self) -> str:
        return f"<EngineFront {len(self.endpoints)} endpoint(s) before {self.application!r}>"

    def start_request(self, server_conn: object, request_conn: HTTPConnection) -> HTTPMessageDelegate:
        """A delegate for the next request on *request_conn*."""
        return _FrontDelegate(self, server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        """Tell the application a connection closed."""
        self.application.on_close(server_conn)

    def exchange_for(self, server_conn: object, request_conn: HTTPConnection, start_line: RequestStartLine,
                     headers: HTTPHeaders) -> PollingExchange | None:
        """The polling exchange serving this request, or None when the application should."""
        path, _, query = start_line.path.partition("?")
        endpoint = next((target for regex, target in self.endpoints if regex.match(path)), None)
        if endpoint is None:
            return None
        host = headers.get("Host")
        if host is None or host not in self.hosts_seen or query.count("&") >= LEAN_MAX_FIELDS:
            # Tornado's own request object applies its checks (a bad one raises: Tornado's 400).
            full = HTTPServerRequest(connection=request_conn, server_connection=server_conn,
                                     start_line=start_line, headers=headers)
            if len(self.hosts_seen) >= 64:
                self.hosts_seen.clear()
            self.hosts_seen.add(full.host)
            return None if _websocket(full.query_arguments) else PollingExchange(endpoint, full)
        arguments = parse_query(query)
        if _websocket(arguments):
            return None
        return PollingExchange(endpoint, PollingRequest(request_conn, server_conn, start_line, headers, arguments))


def parse_query(query: str) -> dict[str, list[bytes]]:
    """``parse_qs_bytes(query, keep_blank_values=True)``, without its work for a query with nothing escaped.

    A query with ``%`` or ``+`` goes to Tornado's function; any other is split
    as it splits it (``&`` between fields, the first ``=`` between name and
    value, empty fields skipped, a field without ``=`` a blank value).
    """
    if "%" in query or "+" in query:
        return parse_qs_bytes(query, keep_blank_values=True)
    arguments: dict[str, list[bytes]] = {}
    for field in query.split("&"):
        if field:
            name, _, value = field.partition("=")
            arguments.setdefault(name, []).append(value.encode("latin1"))
    return arguments


def _websocket(arguments: dict[str, list[bytes]]) -> bool:
    """Whether the query says exactly ``transport=websocket`` (the WebSocket rule's match)."""
    values = arguments.get("transport")
    return values is not None and len(values) == 1 and values[0] == b"websocket"


def find_endpoints(application: Any) -> list[tuple[Any, PollingEndpoint]]:
    """The ``(path regex, PollingEndpoint)`` pairs of *application*'s top-level rules."""
    router = getattr(application, "wildcard_router", None)
    found = []
    for rule in getattr(router, "rules", ()):
        if isinstance(rule.target, PollingEndpoint) and isinstance(rule.matcher, PathMatches):
            found.append((rule.matcher.regex, rule.target))
    return found


def install(server: HTTPServer) -> HTTPServer:
    """Put an :class:`EngineFront` before *server*'s application (its ``request_callback``); return *server*.

    For an application listened on already: ``install(app.listen(8888))``.
    Done once; a server whose callback is not an ``HTTPServerConnectionDelegate``
    is left as it is.
    """
    callback = server.request_callback
    if isinstance(callback, HTTPServerConnectionDelegate) and not isinstance(callback, EngineFront):
        server.request_callback = EngineFront(callback)
    return server


def listen(application: Any, port: int, address: str | None = None, **kwargs: Any) -> HTTPServer:
    """``application.listen(port, address, **kwargs)`` with :class:`EngineFront` in front: the ``HTTPServer``."""
    return install(application.listen(port, address, **kwargs))
