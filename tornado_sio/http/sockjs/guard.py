"""The checks every SockJS HTTP handler runs before sockjs-tornado's code.

:class:`Guard` is mixed in before a sockjs-tornado handler and applies the
server's policy (the same :class:`~tornado_sio.http.policy.Gate`, CORS rule and
:class:`~tornado_sio.http.policy.BodyGuard` as the Engine.IO endpoint):

* the origin policy and ``allow_request`` on every request, capacity on the one
  that opens a session; CORS headers only for allowed origins; JSONP and
  htmlfile (which carry no ``Origin``) are judged by their ``Referer``;
* ``max_http_buffer_size`` on every request body.

:class:`SendMixin` adds strict framing to ``xhr_send`` and ``jsonp_send``: only a
JSON array of strings (the upstream handler iterates a JSON string character
by character).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus, urlsplit

from ...engine.connection import HandshakeRequest
from ..policy import BodyGuard, Refusal, allows_any, write_cors_headers
from .connection import ConnInfo, close_session
from .router import Router

if TYPE_CHECKING:
    from . import SockJSEndpoint

__all__ = ["Guard", "SendMixin", "parse_messages"]

log = logging.getLogger("tornado_sio.sockjs")

_DENY_TEXT = {Refusal.FORBIDDEN: "Forbidden.", Refusal.FULL: "Too many connections."}


class Guard:
    """Mixed in before a sockjs-tornado handler: our origin, CORS and size rules.

    ``opens_on``: the HTTP method with which this transport creates a session.
    ``page_request``: browsers send it without ``Origin`` (a ``<script>``, a
    navigation, an old form POST), so a cross-site page is told by ``Referer``.
    ``streaming``: a long-lived response, which gets heartbeats.
    """

    opens_on: str | None = None
    page_request = False
    streaming = False
    #: sockjs-tornado's router (upstream handlers call it ``server``).
    server: Router
    #: The :class:`~tornado_sio.http.sockjs.SockJSEndpoint` the route belongs to.
    endpoint: SockJSEndpoint
    request: Any
    path_kwargs: Any
    #: Whether this handler has finished its response (tracked here: Tornado's flag is private).
    answered = False

    def initialize(self, server: Any) -> None:
        self.endpoint = server
        super().initialize(server.router)  # type: ignore[misc]
        self.guard = BodyGuard(self.server.config.max_http_buffer_size)
        self.body_done = False
        self.answered = False

    def finish(self, chunk: Any = None) -> Any:
        self.answered = True
        return super().finish(chunk)  # type: ignore[misc]

    # CORS: reflect an allowed Origin only (upstream reflects any, with credentials).
    def preflight(self) -> None:
        if self.origin_ok():
            write_cors_headers(self, self.server.config, HandshakeRequest(self.request))  # type: ignore[arg-type]

    def verify_origin(self) -> bool:
        return self.origin_ok()

    def handshake(self) -> HandshakeRequest:
        """The request as a handshake; a page request without ``Origin`` is judged by ``Referer``."""
        handshake = HandshakeRequest(self.request)
        if not handshake.origin and self.page_request:
            referer = self.request.headers.get("Referer")
            if referer:
                parts = urlsplit(referer)
                if parts.scheme and parts.netloc:
                    handshake.origin = f"{parts.scheme}://{parts.netloc}"
            if not handshake.origin and not allows_any(self.server.config.cors_allowed_origins):
                handshake.origin = "null"  # no Origin nor Referer: a page hiding where it is
        return handshake

    def origin_ok(self) -> bool:
        return self.server.gate.origin_ok(self.handshake())

    def get_conn_info(self) -> ConnInfo:
        return ConnInfo(self)

    def deny(self, status: int, text: str) -> None:
        """Answer *status* with a plain-text *text* (SockJS's way)."""
        self.body_done = True  # answered: whatever the body was, it is not a lost message
        self.clear_header("Content-Type")  # type: ignore[attr-defined]
        self.set_status(status)  # type: ignore[attr-defined]
        self.set_header("Content-Type", "text/plain; charset=UTF-8")  # type: ignore[attr-defined]
        self.finish(text)

    def prepare(self) -> None:
        super().prepare()  # type: ignore[misc]
        self.set_header("X-Content-Type-Options", "nosniff")  # type: ignore[attr-defined]
        request = self.request
        session_id = self.path_kwargs.get("session_id")
        opening = (self.opens_on == request.method and session_id is not None
                   and self.server.get_session(session_id) is None)
        if opening:
            refusal = self.server.gate.check(request, self.handshake())
            if refusal is not None:
                self.deny(refusal.status, _DENY_TEXT[refusal])
                return
        elif not self.origin_ok():
            log.info("%s %s from %s refused: origin %r not in cors_allowed_origins", request.method,
                     request.path, request.remote_ip, self.handshake().origin)
            self.deny(403, "Forbidden.")
            return
        verdict = self.guard.announce(request)
        if verdict == BodyGuard.BAD_LENGTH:
            log.info("%s %s from %s: bad Content-Length", request.method, request.path, request.remote_ip)
            self.deny(400, "Bad Content-Length.")
        elif verdict == BodyGuard.TOO_LARGE:
            self.oversized(f"{request.headers.get('Content-Length')} bytes")

    def data_received(self, chunk: bytes) -> None:
        self.guard.feed(chunk)

    def oversized(self, what: str) -> None:
        """Over max_http_buffer_size: 413, and the session it was for is closed."""
        self.body_done = True
        session_id = self.path_kwargs.get("session_id")
        session = self.server.get_session(session_id) if session_id else None
        log.info("%s %s from %s: body of %s over max_http_buffer_size %d%s", self.request.method,
                 self.request.path, self.request.remote_ip, what, self.guard.limit,
                 "; closing the session" if session is not None and not session.is_closed else "")
        if session is not None:
            close_session(session, "transport error", 1009, "Message too big")
        self.deny(413, "Payload too large.")

    def body_ok(self) -> bool:
        self.body_done = True
        if self.guard.too_large:
            self.oversized(f"over {self.guard.received} bytes")
            return False
        return True

    def on_connection_close(self) -> None:
        session = getattr(self, "session", None)
        if session is not None and getattr(session, "sio_reason", "") is None:
            session.sio_reason = "transport close"
        super().on_connection_close()  # type: ignore[misc]


def parse_messages(body: str) -> tuple[list[str] | None, str]:
    """A SockJS send body: ``(messages, "")`` or ``(None, error text)``."""
    try:
        messages = json.loads(body)
    except (ValueError, RecursionError):
        return None, "Broken JSON encoding."
    if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
        return None, "Payload expected."
    return messages, ""


class SendMixin(Guard):
    """``xhr_send`` and ``jsonp_send``: strict framing, size limit, session errors."""

    def deliver(self, session_id: str, body: bytes, form: bool) -> bool:
        """Validate and hand the messages to the session; False after an error reply."""
        session = self.server.get_session(session_id)
        if session is None or session.is_closed:
            log.info("POST %s from %s: unknown or closed sockjs session", self.request.path,
                     self.request.remote_ip)
            self.set_status(404)  # type: ignore[attr-defined]
            self.finish()
            return False
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return self.bad(session, "Broken JSON encoding.", "invalid UTF-8")
        if form:
            if not text.startswith("d="):
                return self.bad(session, "Payload expected.", "form body without d=")
            text = unquote_plus(text[2:])
        if not text:
            return self.bad(session, "Payload expected.", "empty body")
        messages, error = parse_messages(text)
        if messages is None:
            return self.bad(session, error, error.rstrip(".").lower())
        try:
            session.on_messages(messages)
        except Exception:
            log.exception("session %s: message handling failed; closing", session.session_id)
            close_session(session, "server disconnect")
            self.deny(500, "Message handler failed.")
            return False
        return True

    def bad(self, session: Any, reply: str, why: str) -> bool:
        client = getattr(session, "client", None)
        log.info("POST %s from %s (%s): %s; request refused", self.request.path, self.request.remote_ip,
                 client.sid if client is not None else session.session_id, why)
        self.deny(500, reply)
        return False

    def on_connection_close(self) -> None:
        if not self.body_done and not self.answered:
            # The body was cut off (over max_http_buffer_size, chunked) or the client
            # went away mid-send: its messages are lost, so the session ends.
            session_id = self.path_kwargs.get("session_id")
            session = self.server.get_session(session_id) if session_id else None
            if session is not None and not session.is_closed:
                log.info("POST %s from %s: body cut off after %d bytes; closing the session",
                         self.request.path, self.request.remote_ip, self.guard.received)
                close_session(session, "transport error", 1009, "Message too big")
        super().on_connection_close()
