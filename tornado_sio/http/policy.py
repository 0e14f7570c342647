"""The request policy every endpoint shares: one gate, one origin/CORS rule, one body guard.

The Engine.IO polling and WebSocket handlers and every SockJS handler call the
same three things, so a rule is written (and fixed) once:

* :class:`Gate`: may a new connection open? The origin policy
  (``cors_allowed_origins``), the ``allow_request`` hook, then capacity
  (``max_connections``). It answers with a :class:`Refusal`; each endpoint
  words the reply in its own protocol (Engine.IO's JSON error, SockJS's text).
* :func:`origin_allowed` and :func:`write_cors_headers`: CORS headers only for
  an allowed ``Origin`` (never a blanket reflection with credentials).
* :class:`BodyGuard`: a request body is streamed and bounded by
  ``max_http_buffer_size`` before it is buffered.

And what a handshake response carries besides the OPEN packet:
:func:`handshake_headers` (the ``initial_headers`` option and the sid
``cookie``). Each rule is a function returning header pairs, so the lean
long-polling exchange (no ``RequestHandler``) and the handlers share it; the
``write_*`` forms put them on a ``RequestHandler``.
"""

from __future__ import annotations

import enum
import http.cookies
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from tornado.httputil import HTTPServerRequest, format_timestamp
from tornado.web import RequestHandler

from ..engine.connection import HandshakeRequest
from ..engine.server import Capacity
from ..options import Options, Origins

__all__ = [
    "BodyGuard",
    "Gate",
    "Refusal",
    "allows_any",
    "cors_headers",
    "handshake_headers",
    "origin_allowed",
    "sid_cookie",
    "write_cors_headers",
    "write_handshake_headers",
]

log = logging.getLogger("tornado_sio.http")


class Refusal(enum.Enum):
    """Why the gate refused a new connection, with the HTTP status it earns."""

    #: The origin policy or ``allow_request`` said no.
    FORBIDDEN = 403
    #: ``max_connections`` connections are open.
    FULL = 503

    @property
    def status(self) -> int:
        """The HTTP status of the reply."""
        return int(self.value)


def _same_origin(origin: str, request: HandshakeRequest) -> bool:
    parts = urlsplit(origin)
    return parts.scheme == request.protocol and parts.netloc.lower() == request.host.lower()


def allows_any(allowed: Origins) -> bool:
    """Whether the ``cors_allowed_origins`` policy is ``'*'`` (alone or in a list)."""
    if isinstance(allowed, str):
        return allowed == "*"
    return allowed is not None and not callable(allowed) and "*" in allowed


def origin_allowed(allowed: Origins, request: HandshakeRequest) -> bool:
    """Whether the request's ``Origin`` passes the ``cors_allowed_origins`` policy.

    ``None`` (the default) allows same-origin only; ``'*'`` allows any; a string or
    a list names the allowed origins exactly; a callable decides. A request with no
    ``Origin`` (not a browser) is allowed.
    """
    origin = request.origin
    if not origin:
        return True
    if allowed is None:
        return _same_origin(origin, request)
    if callable(allowed):
        try:
            return bool(allowed(origin))
        except Exception:
            log.exception("cors_allowed_origins callable failed for %r", origin)
            return False
    if isinstance(allowed, str):
        return allowed == "*" or origin == allowed
    return "*" in allowed or origin in allowed


class Gate:
    """The one handshake gate: origin, ``allow_request``, then capacity.

    *capacity* is the engine's :class:`~tornado_sio.engine.server.Capacity`,
    shared by every endpoint of the server.
    """

    __slots__ = ("capacity", "options")

    def __init__(self, options: Options, capacity: Capacity) -> None:
        self.options = options
        self.capacity = capacity

    def origin_ok(self, handshake: HandshakeRequest) -> bool:
        """The origin policy alone (for requests on an existing session)."""
        return origin_allowed(self.options.cors_allowed_origins, handshake)

    def check(self, request: HTTPServerRequest, handshake: HandshakeRequest) -> Refusal | None:
        """Whether a new connection may open: None, or the :class:`Refusal` (logged here)."""
        if not self.origin_ok(handshake):
            log.info("refused %s from origin %r (not in cors_allowed_origins)", handshake.remote_ip,
                     handshake.origin)
            return Refusal.FORBIDDEN
        hook = self.options.allow_request
        if hook is not None:
            try:
                allowed = hook(request)
            except Exception:
                log.exception("allow_request failed; refusing the request")
                return Refusal.FORBIDDEN
            if not allowed:
                log.info("refused %s by allow_request", handshake.remote_ip)
                return Refusal.FORBIDDEN
        if self.capacity.full():
            log.info("%s %s from %s: max_connections reached", request.method, request.path, handshake.remote_ip)
            return Refusal.FULL
        return None


def cors_headers(options: Options, handshake: HandshakeRequest, requested: str | None = None,
                 methods: str | None = None) -> list[tuple[str, str]] | None:
    """The CORS headers a response carries: None when the ``Origin`` is not allowed.

    A request without ``Origin`` gets none (an empty list) and passes. *methods*
    (for a preflight) adds ``Access-Control-Allow-Methods``; *requested* (the
    request's ``Access-Control-Request-Headers``) is allowed back in any case.
    """
    origin = handshake.origin
    if not origin:
        return []
    if not origin_allowed(options.cors_allowed_origins, handshake):
        return None
    headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    if options.cors_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    if methods:
        headers.append(("Access-Control-Allow-Methods", methods))
    if requested:
        headers.append(("Access-Control-Allow-Headers", requested))
    return headers


def write_cors_headers(handler: RequestHandler, options: Options, handshake: HandshakeRequest,
                       methods: str | None = None) -> bool:
    """Add :func:`cors_headers` to *handler*'s response; return whether the ``Origin`` is allowed."""
    headers = cors_headers(options, handshake, handler.request.headers.get("Access-Control-Request-Headers"),
                           methods)
    if headers is None:
        return False
    for name, value in headers:
        handler.set_header(name, value)
    return True


class BodyGuard:
    """Streams one request body into memory, bounded by *limit* (``max_http_buffer_size``).

    :meth:`announce` checks ``Content-Length`` before a byte is read and sets
    Tornado's own bound (which cuts a chunked body off as soon as the announced
    chunk sizes pass it); :meth:`feed` is a second bound, for a body Tornado
    decompresses itself. Past the limit the body is dropped, never buffered.
    """

    __slots__ = ("body", "limit", "received", "too_large")

    #: :meth:`announce` results.
    BAD_LENGTH = "bad Content-Length"
    TOO_LARGE = "too large"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.body = bytearray()
        self.received = 0
        self.too_large = False

    def announce(self, request: HTTPServerRequest) -> str | None:
        """None when the body may be read; else :attr:`BAD_LENGTH` or :attr:`TOO_LARGE`."""
        length = request.headers.get("Content-Length")
        if length is not None:
            try:
                too_long = int(length) > self.limit
            except ValueError:
                return self.BAD_LENGTH
            if too_long:
                self.too_large = True
                return self.TOO_LARGE
        connection: Any = request.connection
        if connection is not None and hasattr(connection, "set_max_body_size"):
            connection.set_max_body_size(self.limit)
        return None

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of the body (from ``data_received``)."""
        self.received += len(chunk)
        if self.received > self.limit:
            self.too_large = True
            self.body = bytearray()
        elif not self.too_large:
            self.body += chunk


def _handshake_extra_headers(options: Options, request: HTTPServerRequest) -> dict[str, str]:
    hook = options.initial_headers
    if hook is None:
        return {}
    try:
        headers = hook(request) if callable(hook) else hook
        return dict(headers or {})
    except Exception:
        log.exception("initial_headers failed; handshake sent without them")
        return {}


def sid_cookie(options: Options, sid: str) -> str | None:
    """The ``Set-Cookie`` value holding *sid* (the ``cookie`` option), or None without one.

    Formatted as Tornado's ``RequestHandler.set_cookie`` formats it. A ``path``
    of None or ``False`` sends no Path attribute (Node's ``path: false``).
    """
    cookie = options.handshake_cookie
    if cookie is None:
        return None
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    jar[cookie["name"]] = sid
    morsel = jar[cookie["name"]]
    for key, attribute in (("domain", "domain"), ("path", "path"), ("samesite", "samesite")):
        value = cookie.get(key)
        if value and re.search(r"[\x00-\x20\x3b\x7f]", str(value)):
            raise http.cookies.CookieError(f"invalid cookie attribute {key}={value!r}")
        if value:
            morsel[attribute] = value
    if cookie.get("expires"):
        morsel["expires"] = format_timestamp(cookie["expires"])
    if cookie.get("max_age"):
        morsel["max-age"] = str(int(cookie["max_age"]))
    for flag in ("httponly", "secure"):
        if cookie.get(flag):
            morsel[flag] = True
    return morsel.OutputString(None)


def handshake_headers(options: Options, request: HTTPServerRequest, sid: str | None = None) -> list[tuple[str, str]]:
    """What a handshake response carries besides the OPEN packet: ``initial_headers``, and with *sid* the cookie.

    Node's engine.io sets its cookie on the polling handshake only (a WebSocket
    session's sid does not exist yet when its 101 is written); so does this.
    """
    headers = list(_handshake_extra_headers(options, request).items())
    cookie = sid_cookie(options, sid) if sid is not None else None
    if cookie is not None:
        headers.append(("Set-Cookie", cookie))
    return headers


def write_handshake_headers(handler: RequestHandler, options: Options, sid: str | None = None) -> None:
    """Add :func:`handshake_headers` to *handler*'s response."""
    for name, value in handshake_headers(options, handler.request, sid):
        if name == "Set-Cookie":
            handler.add_header(name, value)
        else:
            handler.set_header(name, value)
