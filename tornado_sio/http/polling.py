"""HTTP long-polling: a GET waits for packets, a POST carries packets in.

The lean path. Each polling request is served by a :class:`PollingExchange`,
a ``tornado.httputil.HTTPMessageDelegate`` that Tornado's router hands the
request to (:class:`PollingEndpoint` is a ``tornado.routing.Router``, the
target of the endpoint's rule), and that answers through the request's
``HTTPConnection`` (``write_headers`` / ``finish``). No ``RequestHandler`` is
built: no ``clear()``, default headers, ETag, output transforms or handler
future per request. Only public Tornado API is used; the user's
``Application`` serves every other route as before.

Behind :class:`~tornado_sio.http.front.EngineFront` (``SocketIO.run`` puts it
in front of the application) the exchange is made before Tornado builds an
``HTTPServerRequest`` or routes: it then gets a :class:`PollingRequest`, the
few attributes it reads, and the real request only for a handshake.

The rules are those of the handler this replaced, and of Node's engine.io:

* The query (``EIO=4``, exact ``transport=polling``), the origin policy and
  CORS headers (:mod:`~tornado_sio.http.policy`), the handshake gate, the
  spec's JSON errors (:mod:`~tornado_sio.http.endpoint`): 400, 403, 503.
* The request body is streamed so that its size is checked before it is
  buffered (:class:`~tornado_sio.http.policy.BodyGuard`). A POST whose
  ``Content-Length`` is over ``max_http_buffer_size`` gets 413 with an empty
  body and the session is left open, as Node's engine.io does: the official
  client then closes itself with ``transport error``. A chunked body is cut off
  by Tornado as soon as the announced chunk sizes pass the limit (a bare
  ``400`` and the connection closed): that POST's connection closed before its
  body was complete, which, as in Node, closes the session (``transport error``).
* A GET waiting for packets whose connection closes leaves the session as it is.

What a ``RequestHandler`` gave that this does not: Tornado's access log line is
written only when the ``tornado.access`` logger is enabled for INFO (the
``log_output`` of ``SocketIO.run``), in Tornado's format; the application's
``log_function`` and ``compress_response`` do not apply to polling responses,
and there is no ``Server`` header.
"""

from __future__ import annotations

import logging
import time
from http.client import responses
from typing import Any, Sequence, Union, cast

from tornado.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
    format_timestamp,
)
from tornado.routing import Router

from ..engine.connection import HandshakeRequest
from ..engine.server import EngineServer
from ..engine.session import EngineSession
from ..engine.transport import Item
from ..exceptions import ProtocolError
from ..protocol import engineio as eio
from .endpoint import error_status, log_refusal, query_error
from .policy import BodyGuard, Gate, Refusal, cors_headers, handshake_headers

__all__ = ["PollingEndpoint", "PollingExchange", "PollingRequest"]

log = logging.getLogger("tornado_sio.http")
access_log = logging.getLogger("tornado.access")

_PAYLOAD_TYPE = "text/plain; charset=UTF-8"
_OK_TYPE = "text/html; charset=UTF-8"
_JSON_TYPE = "application/json"
_PREFLIGHT_METHODS = "OPTIONS, GET, POST"


class _Clock:
    """The ``Date`` header, formatted once per second (``format_timestamp`` is ~2 µs)."""

    __slots__ = ("second", "text")

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def date(self) -> str:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.text = format_timestamp(now)
        return self.text


_clock = _Clock()

#: The status lines of the replies, made once.
_START_LINES = {status: ResponseStartLine("HTTP/1.1", status, responses[status])
                for status in (200, 204, 400, 403, 413, 500, 503)}


class PollingRequest:
    """What a polling exchange reads of a request, made without ``HTTPServerRequest``'s work.

    :class:`~tornado_sio.http.front.EngineFront` makes it, once Tornado's own
    request object has accepted the request's ``Host`` value before. The
    attributes are those of ``HTTPServerRequest`` the exchange uses;
    :meth:`full` builds the real request when one is needed (a handshake:
    it is the ``request`` the application sees).
    """

    __slots__ = ("connection", "headers", "host", "method", "path", "protocol", "query", "query_arguments",
                 "remote_ip", "server_connection", "start_line", "start_time", "uri", "version", "_full")

    def __init__(self, connection: HTTPConnection, server_connection: object, start_line: RequestStartLine,
                 headers: HTTPHeaders, query_arguments: dict[str, list[bytes]]) -> None:
        self.method, self.uri, self.version = start_line
        self.start_line = start_line
        self.path, _, self.query = self.uri.partition("?")
        self.headers = headers
        self.connection = connection
        self.server_connection = server_connection
        self.query_arguments = query_arguments
        context = getattr(connection, "context", None)
        self.remote_ip: str | None = getattr(context, "remote_ip", None)
        self.protocol: str = getattr(context, "protocol", "http")
        self.host: str = headers["Host"]
        self.start_time = time.time()
        self._full: HTTPServerRequest | None = None

    def __repr__(self) -> str:
        return f"<PollingRequest {self.method} {self.uri} from {self.remote_ip}>"

    def request_time(self) -> float:
        """Seconds since the request's headers were read."""
        return time.time() - self.start_time

    def full(self) -> HTTPServerRequest:
        """The real ``HTTPServerRequest`` of this request (made once)."""
        if self._full is None:
            self._full = HTTPServerRequest(connection=self.connection, server_connection=self.server_connection,
                                           start_line=self.start_line, headers=self.headers)
        return self._full


#: The request an exchange serves: Tornado's, or the front's lean one.
AnyRequest = Union[HTTPServerRequest, PollingRequest]


class PollingEndpoint(Router):
    """The ``transport=polling`` side of an Engine.IO endpoint, as a Tornado ``Router``.

    It is the target of the endpoint's rule (see
    :func:`~tornado_sio.http.routes.endpoint_routes`): Tornado's
    ``RuleRouter`` calls :meth:`find_handler` with the parsed request, and the
    :class:`PollingExchange` it returns receives the rest of the request.
    """

    def __init__(self, engine: EngineServer, gate: Gate) -> None:
        self.engine = engine
        self.config = engine.options
        self.gate = gate

    def __repr__(self) -> str:
        return f"<PollingEndpoint {self.engine!r}>"

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> HTTPMessageDelegate:
        """A new :class:`PollingExchange` for *request* (every request at the endpoint path)."""
        return PollingExchange(self, request)


class PollingExchange(HTTPMessageDelegate):
    """One polling request and its response; the session's ``PollWaiter`` while a GET waits.

    Tornado calls :meth:`headers_received`, :meth:`data_received` for each
    piece of a body, then :meth:`finish` once the request is complete (the
    reply is written then, so the connection stays alive for the next
    request), or :meth:`on_connection_close` when the client goes away first.
    """

    __slots__ = ("answered", "cors", "endpoint", "guard", "method", "request", "session", "status")

    def __init__(self, endpoint: PollingEndpoint, request: AnyRequest) -> None:
        self.endpoint = endpoint
        self.request = request
        self.method = request.method
        self.guard: BodyGuard | None = None
        #: The session this GET waits on.
        self.session: EngineSession | None = None
        #: Whether the response has been written.
        self.answered = False
        self.status = 0
        #: The CORS headers of every reply, once the origin was checked.
        self.cors: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"<PollingExchange {self.method} {self.request.uri} {'answered' if self.answered else 'open'}>"

    # -- HTTPMessageDelegate ---------------------------------------------------

    def headers_received(self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders) -> None:
        """Refuse an odd method or an oversized POST at once; stream a POST's body into the guard."""
        method = self.method
        if method == "GET" or method == "OPTIONS":
            return
        if method != "POST":
            self.bad_method()
            return
        guard = self.guard = BodyGuard(self.endpoint.config.max_http_buffer_size)
        verdict = guard.announce(cast(HTTPServerRequest, self.request))  # reads headers and connection
        if verdict == BodyGuard.BAD_LENGTH:
            self.error(eio.ErrorCode.BAD_REQUEST, why="bad Content-Length")
        elif verdict == BodyGuard.TOO_LARGE:
            self.refuse_too_large(f"Content-Length {self.request.headers.get('Content-Length')}")

    def data_received(self, chunk: bytes) -> None:
        if self.guard is not None:
            self.guard.feed(chunk)

    def finish(self) -> None:
        """The request is complete: answer it (a GET may wait for packets instead)."""
        if self.answered:
            return
        try:
            method = self.method
            if method == "GET":
                self.get()
            elif method == "POST":
                self.post()
            else:
                self.preflight()
        except Exception:
            log.exception("polling %s %s failed", self.method, self.request.uri)
            if not self.answered:
                self.respond(500, b"", None)

    def on_connection_close(self) -> None:
        """The client went away before its answer: a waiting GET lets go; a cut-off POST ends its session."""
        session = self.session
        if session is not None:
            self.session = None
            session.detach_poll(self)
        if self.method == "POST" and not self.answered:
            # The body never completed: cut off by Tornado (chunked, over
            # max_http_buffer_size) or the client went away mid-POST.
            self.answered = True
            sid = self.sid()
            session = self.endpoint.engine.sessions.get(sid) if sid else None
            if session is not None and not session.closed:
                log.info("session %s: POST connection closed before its body was complete; closing", sid)
                session.abort("transport error")

    # -- PollWaiter --------------------------------------------------------

    def deliver(self, items: list[Item]) -> None:
        """Called by the session, once, with the packets for this GET."""
        self.session = None
        if not self.answered:
            self.write_payload(items)

    # -- the three methods -------------------------------------------------

    def get(self) -> None:
        session = self.session_for()
        if self.answered:
            return
        if session is None:
            self.handshake()
            return
        self.session = session
        # Hear of the client going away while this GET waits (Tornado tells the
        # connection's close callback, not the delegate, once the request is read).
        connection: Any = self.request.connection
        connection.set_close_callback(self.on_connection_close)
        error = session.attach_poll(self)
        if error is not None:
            self.session = None
            self.error(eio.ErrorCode.BAD_REQUEST, why=error)

    def handshake(self) -> None:
        """A GET without sid: the gate, then a new session and its OPEN packet."""
        endpoint = self.endpoint
        request = self.request
        if isinstance(request, PollingRequest):
            request = self.request = request.full()
        handshake = HandshakeRequest(request)
        refusal = endpoint.gate.check(request, handshake)
        if refusal is not None:
            self.refuse(refusal)
            return
        session = endpoint.engine.open_session(handshake, "polling")
        if session is None:
            self.error(eio.ErrorCode.FORBIDDEN, why="refused by the connect handler")
            return
        extra = handshake_headers(endpoint.config, request, session.sid)
        self.write_payload([endpoint.engine.handshake_packet(session)], extra)

    def post(self) -> None:
        session = self.session_for()
        if self.answered:
            return
        if session is None:
            self.error(eio.ErrorCode.BAD_HANDSHAKE_METHOD)
            return
        guard = self.guard
        assert guard is not None
        if guard.too_large:
            self.refuse_too_large("body")
            return
        if session.closed:
            self.error(eio.ErrorCode.UNKNOWN_SID, why="session closed")
            return
        self.endpoint.engine.stats.bytes_in += len(guard.body)
        try:
            packets = eio.decode_payload(bytes(guard.body), self.endpoint.config.max_packets)
            session.receive_all(packets)
        except ProtocolError as exc:
            session.abort("parse error")
            self.error(eio.ErrorCode.BAD_REQUEST, why=f"bad polling payload: {exc}; session closed")
            return
        self.respond(200, b"ok", _OK_TYPE, self.cors)

    def preflight(self) -> None:
        """OPTIONS: the CORS preflight."""
        headers = self.cors_for(_PREFLIGHT_METHODS)
        if headers is None:
            self.error(eio.ErrorCode.FORBIDDEN)
            return
        self.respond(204, b"", None, headers)

    # -- checks ------------------------------------------------------------

    def sid(self) -> str | None:
        """The ``sid`` query value (the last one, stripped as Tornado's ``get_query_argument`` does)."""
        values = self.request.query_arguments.get("sid")
        if not values:
            return None
        return values[-1].decode("utf-8", "replace").strip()

    def cors_for(self, methods: str | None = None) -> list[tuple[str, str]] | None:
        """This request's CORS headers, or None when its ``Origin`` is refused."""
        request = self.request
        origin = request.headers.get("Origin")
        if not origin:
            return []
        # HandshakeRequest reads headers, remote_ip, protocol and host: a PollingRequest has them.
        return cors_headers(self.endpoint.config, HandshakeRequest(cast(HTTPServerRequest, request)),
                            request.headers.get("Access-Control-Request-Headers"), methods)

    def session_for(self) -> EngineSession | None:
        """Validate the query and find the session; None after an error reply, or for a handshake."""
        endpoint = self.endpoint
        code = query_error(self.request, endpoint.config, "polling")
        if code is not None:
            self.error(code)
            return None
        cors = self.cors_for()
        if cors is None:
            self.error(eio.ErrorCode.FORBIDDEN)
            return None
        self.cors = cors
        sid = self.sid()
        if sid is None:
            return None
        session = endpoint.engine.sessions.get(sid)
        if session is None:
            self.error(eio.ErrorCode.UNKNOWN_SID)
            return None
        if session.transport != "polling":
            self.error(eio.ErrorCode.BAD_REQUEST, why="polling request on an upgraded session")
            return None
        return session

    # -- replies -----------------------------------------------------------

    def write_payload(self, items: list[Item], extra: Sequence[tuple[str, str]] = ()) -> None:
        headers = [*self.cors, *extra] if extra else self.cors
        body = eio.encode_payload(items).encode("utf-8")
        self.endpoint.engine.stats.bytes_out += len(body)
        self.respond(200, body, _PAYLOAD_TYPE, headers, no_store=True)

    def error(self, code: eio.ErrorCode, status: int | None = None, why: str = "", logged: bool = False) -> None:
        """Answer with the spec's JSON error body: 403 for FORBIDDEN, else 400 (or *status*)."""
        if not logged:
            log_refusal(self.request, code, why)
        self.respond(error_status(code, status), eio.error_body(code).encode("utf-8"), _JSON_TYPE, self.cors)

    def refuse(self, refusal: Refusal) -> None:
        """The gate said no (and logged why): 403 FORBIDDEN, or 503 when the server is full."""
        if refusal is Refusal.FULL:
            self.error(eio.ErrorCode.BAD_REQUEST, 503, logged=True)
        else:
            self.error(eio.ErrorCode.FORBIDDEN, logged=True)

    def bad_method(self) -> None:
        """400 for a method the endpoint does not serve (the spec's wording, not Tornado's 405)."""
        if self.sid() is None:
            self.error(eio.ErrorCode.BAD_HANDSHAKE_METHOD, why=f"{self.method} handshake")
        else:
            self.error(eio.ErrorCode.BAD_REQUEST, why=f"method {self.method}")

    def refuse_too_large(self, what: str) -> None:
        """413 with an empty body; the session stays open (the client ends it, as with Node)."""
        sid = self.sid()
        config = self.endpoint.config
        log.info("POST from %s refused: %s over max_http_buffer_size %d%s", self.request.remote_ip, what,
                 config.max_http_buffer_size, f" (session {sid})" if sid else "")
        self.respond(413, b"", None, self.cors_for() or [])

    def respond(self, status: int, body: bytes, content_type: str | None,
                extra: Sequence[tuple[str, str]] = (), no_store: bool = False) -> None:
        """Write the whole response (status line, headers, body) and finish it."""
        self.answered = True
        self.status = status
        connection = self.request.connection
        if connection is None:
            return
        headers = HTTPHeaders()
        headers["Date"] = _clock.date()
        if status != 204:
            if content_type is not None:
                headers["Content-Type"] = content_type
            headers["Content-Length"] = str(len(body))
        if no_store:
            headers["Cache-Control"] = "no-store"
        for name, value in extra:
            if name == "Set-Cookie":
                headers.add(name, value)
            else:
                headers[name] = value
        if self.method == "HEAD" or status == 204:
            body = b""
        start = _START_LINES.get(status) or ResponseStartLine("HTTP/1.1", status, responses.get(status, "Unknown"))
        try:
            connection.write_headers(start, headers, body)
            connection.finish()
        except Exception:  # the client is gone (StreamClosedError) or Tornado refused the reply
            log.debug("polling response to %s not written", self.request.remote_ip, exc_info=True)
        if access_log.isEnabledFor(logging.INFO):
            self.log_access()

    def log_access(self) -> None:
        """Tornado's access log line (``Application.log_request``), when that logger is on."""
        status = self.status
        emit = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
        request = self.request
        emit("%d %s %s (%s) %.2fms", status, request.method, request.uri, request.remote_ip,
             1000.0 * request.request_time())
