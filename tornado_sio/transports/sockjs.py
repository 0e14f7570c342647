"""SockJS fallback: Socket.IO packets over a hardened ``sockjs-tornado`` router.

``SocketIO.routes()`` mounts this beside the Engine.IO endpoint (``/sockjs`` by
default). A SockJS session is a *connection* to the Socket.IO server, like an
Engine.IO session: it has ``sid``, ``request``, ``data``, ``send_message``,
``close``, ``mark_connected`` and ``mark_idle``, and the server drives it through
``on_open`` / ``on_message`` / ``on_close``. See ``docs/sockjs.md``.

Wire format: every SockJS message is one Socket.IO packet in its text encoding
(what follows the ``4`` of an Engine.IO message, e.g. ``2["chat","hi"]``). A
binary attachment is its own SockJS message, ``"b"`` + standard base64 (as in an
Engine.IO polling payload), sent right after the packet that announces it. A
Socket.IO packet never starts with ``b``, so the two cannot be confused.

``sockjs-tornado`` 1.0.7 is used as a library, never copied: its router, session
and transport handlers are subclassed here so that the core's policies apply:

* the origin policy (``cors_allowed_origins`` through ``engine.origin_allowed``)
  and ``allow_request`` on every request, WebSocket included; CORS headers only
  for allowed origins; JSONP and htmlfile (which carry no ``Origin``) are judged
  by their ``Referer``; the iframe page may only be framed by allowed origins;
* ``max_http_buffer_size`` on every request body and WebSocket message,
  ``max_send_buffer`` on what waits for a slow client, ``max_connections``
  (counted with the Engine.IO sessions) and ``connect_timeout``;
* strict framing: ``xhr_send`` takes only a JSON array of strings (the upstream
  handler iterates a JSON string character by character), the JSONP callback
  name must be a dotted JavaScript identifier, and the htmlfile transport escapes
  ``<`` ``>`` ``&`` so data cannot end its ``<script>``.

Heartbeats and disconnect detection are SockJS's own: ``h`` frames every
``ping_interval`` seconds, a session without a receiving request for
``ping_timeout`` seconds expires (disconnect reason ``"ping timeout"``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
import time
import warnings
import weakref
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple
from urllib.parse import unquote_plus, urlsplit

from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.iostream import StreamBufferFullError, StreamClosedError
from tornado.web import stream_request_body

from ..engine import HandshakeRequest, origin_allowed
from ..protocol.wsframe import OP_TEXT, build_frame

with warnings.catch_warnings():
    # sockjs-tornado decorates its handlers with a deprecated ``@asynchronous``
    # shim at import time; the warning is about its code, not ours.
    warnings.simplefilter("ignore", DeprecationWarning)
    from sockjs.tornado import SockJSConnection, SockJSRouter
    from sockjs.tornado import session as sockjs_session
    from sockjs.tornado import static as sockjs_static
    from sockjs.tornado import transports as sockjs_transports

if TYPE_CHECKING:
    from ..engine import Prepared
    from ..server import SocketIO

__all__ = [
    "routes",
    "close_all",
    "undelivered",
    "stop",
    "connections",
    "SockJSClientConnection",
    "DEFAULT_SOCKJS_URL",
    "CLOSE_CODES",
]

log = logging.getLogger("tornado_sio.sockjs")

#: What the iframe page (iframe-based transports) loads. It must be the same
#: sockjs-client version as the page's. Override with ``settings={'sockjs_url': ...}``.
DEFAULT_SOCKJS_URL = "https://cdn.jsdelivr.net/npm/sockjs-client@1.6.1/dist/sockjs.min.js"

#: SockJS close frame (``c[code,"text"]``) for each disconnect reason the server uses.
CLOSE_CODES: Dict[str, int] = {
    "server disconnect": 3000,
    "server shutting down": 3000,
    "connect timeout": 3000,
    "parse error": 3001,
    "transport error": 3002,
}

_SESSION_ID = r"[A-Za-z0-9_-]{1,128}"
_CALLBACK = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*){0,7}", re.ASCII)
_CALLBACK_MAX = 128
_POLLING_NAMES = ("xhr", "jsonp")  # one response per request: a frame must wait for the next poll


def _frame_json(text: str) -> str:
    """A SockJS message as JSON. ASCII-only (like sockjs-tornado), so no transport
    or browser mangles U+2028 and friends."""
    return json.dumps(text)


def _close_frame(code: int, text: str) -> str:
    return "c" + json.dumps([code, text])


# ---------------------------------------------------------------------------
# The connection the Socket.IO server sees
# ---------------------------------------------------------------------------


class SockJSClientConnection:
    """One SockJS session as a Socket.IO *connection* (mirrors ``EngineSession``)."""

    __slots__ = ("router", "session", "sid", "request", "data", "connect_deadline", "_closed",
                 "__weakref__")

    def __init__(self, router: "_Router", session: "_Session", request: HandshakeRequest) -> None:
        self.router = router
        self.session = session
        #: Our own id for logs and ``request.eio_sid``; the SockJS session id is the client's.
        self.sid = "sockjs-" + secrets.token_urlsafe(12)
        self.request = request
        self.data: Any = None
        timeout = router.engine.connect_timeout
        self.connect_deadline: Optional[float] = time.monotonic() + timeout if timeout else None
        self._closed = False

    def __repr__(self) -> str:
        return f"<SockJSClientConnection {self.sid} {self.transport}>"

    @property
    def transport(self) -> str:
        """``sockjs-`` + the SockJS transport of the last request (``sockjs-xhr_streaming`` ...)."""
        return "sockjs-" + getattr(self.session, "transport_name", "?")

    @property
    def closed(self) -> bool:
        return self._closed or self.session.is_closed

    def mark_connected(self) -> None:
        self.connect_deadline = None

    def mark_idle(self) -> None:
        timeout = self.router.engine.connect_timeout
        if timeout and not self.closed:
            self.connect_deadline = time.monotonic() + timeout

    def send_message(self, prepared: "Prepared") -> None:
        """Queue or write one Socket.IO packet (and its attachments) as SockJS messages."""
        if self.closed:
            return
        self.session.send_jsonified(self.router.jsonify(prepared), False)

    def close(self, reason: str = "server disconnect", code: Optional[int] = None,
              text: Optional[str] = None) -> None:
        """Close the SockJS session (a ``c[code,"reason"]`` frame), then ``on_close`` once."""
        if self.closed:
            return
        session = self.session
        if session.sio_reason is None:
            session.sio_reason = reason
        session.close(code if code is not None else CLOSE_CODES.get(reason, 3000), text or reason)


class _Bridge(SockJSConnection):
    """sockjs-tornado's per-session connection object: hands everything to the server."""

    def __init__(self, session: "_Session") -> None:
        super().__init__(session)
        self.client: Optional[SockJSClientConnection] = None

    def on_open(self, info: "_ConnInfo") -> None:
        session: _Session = self.session
        router: _Router = session.server
        client = SockJSClientConnection(router, session, info.handshake)
        self.client = client
        router.clients[client.sid] = client
        try:
            accepted = router.sio.on_open(client)
        except Exception:
            log.exception("on_open failed for %s", client.sid)
            accepted = False
        if accepted is False:
            client.close("server disconnect")
            return
        log.debug("sockjs session %s opened as %s over %s", session.session_id, client.sid,
                  session.transport_name)

    def on_message(self, message: str) -> None:
        client = self.client
        if client is None or client.closed:
            return
        data: Any = message
        if message[:1] == "b":
            try:
                data = base64.b64decode(message[1:], validate=True)
            except (binascii.Error, ValueError) as exc:
                log.info("connection %s: bad base64 attachment (%s); closing", client.sid, exc)
                client.close("parse error")
                return
        client.router.sio.on_message(client, data)

    def on_close(self) -> None:
        client = self.client
        if client is None:
            return
        client._closed = True
        session: _Session = self.session
        reason = session.sio_reason or "transport close"
        router: _Router = session.server
        router.clients.pop(client.sid, None)
        log.debug("sockjs session %s (%s) closed: %s", session.session_id, client.sid, reason)
        try:
            router.sio.on_close(client, reason)
        except Exception:
            log.exception("on_close failed for %s", client.sid)


# ---------------------------------------------------------------------------
# Session and router
# ---------------------------------------------------------------------------


class _ConnInfo(sockjs_session.ConnectionInfo):
    """sockjs-tornado's connection info plus our ``HandshakeRequest``."""

    def __init__(self, handler: Any) -> None:
        request = handler.request
        super().__init__(request.remote_ip, request.cookies, request.arguments, request.headers,
                         request.path)
        self.handshake = HandshakeRequest(request)


class _Session(sockjs_session.Session):
    """Bounded send queue, a disconnect reason, and a close that loses no queued data."""

    def __init__(self, conn: Any, server: "_Router", session_id: str, expiry: Any = None) -> None:
        super().__init__(conn, server, session_id, expiry)
        #: The reason the Socket.IO disconnect handlers get (set before closing).
        self.sio_reason: Optional[str] = None

    def send_jsonified(self, msg: str, stats: bool = True) -> None:
        if self.is_closed:
            return
        super().send_jsonified(msg, stats)
        limit = self.server.engine.max_send_buffer
        if len(self.send_queue) > limit:
            client = getattr(self.conn, "client", None)
            log.warning("connection %s: sockjs send queue over %d bytes (client not reading); closing",
                        getattr(client, "sid", self.session_id), limit)
            self.send_queue = ""
            if client is not None:
                client.close("transport error")
            else:
                self.sio_reason = self.sio_reason or "transport error"
                self.close(CLOSE_CODES["transport error"], "transport error")

    def on_delete(self, forced: bool) -> None:
        # Expired: no receiving request for disconnect_delay (SockJS's own timeout).
        if (forced or self.handler is None or self.is_closed) and self.sio_reason is None:
            self.sio_reason = "ping timeout"
        super().on_delete(forced)

    def close(self, code: int = 3000, message: str = "Go away!") -> None:
        if self.state == sockjs_session.CLOSED:
            return
        handler = self.handler
        if handler is not None and getattr(handler, "name", "") in _POLLING_NAMES and not handler.active:
            # A polling response is being written: the queued messages and then the
            # close frame go out with the next poll (Session.set_handler does that).
            sockjs_session.BaseSession.close(self, code, message)
            return
        if handler is not None and self.send_queue:
            # Streaming or WebSocket: write what is queued before the close frame.
            queued, self.send_queue = self.send_queue, ""
            handler.send_pack("a[%s]" % queued)
        super().close(code, message)


class _CurrentLoop:
    """Stands in for the IOLoop sockjs-tornado stores: the running loop at call time."""

    def __getattr__(self, name: str) -> Any:
        return getattr(IOLoop.current(), name)


class _Router(SockJSRouter):
    """``SockJSRouter`` with our session class, our checks and a lazily bound loop."""

    def __init__(self, sio: "SocketIO", prefix: str, settings: Dict[str, Any]) -> None:
        self.sio = sio
        self.engine = sio.engine
        self.clients: Dict[str, SockJSClientConnection] = {}
        self._jsonified: Tuple[Any, str] = (None, "")
        super().__init__(_Bridge, prefix, settings, io_loop=_CurrentLoop(), session_kls=_Session)
        # The upstream constructor starts two timers; keep one sweep of our own.
        self._sessions_cleanup.stop()
        self.stats._callback.stop()
        self._sessions_cleanup = PeriodicCallback(self._sweep, self.settings["session_check_interval"] * 1000)
        self._sessions_cleanup.start()
        self._transport_urls = []  # routes() builds the rules

    # -- what the handlers ask ------------------------------------------

    def at_capacity(self) -> bool:
        limit = self.engine.max_connections
        return limit is not None and len(self.engine.sessions) + len(self.clients) >= limit

    def jsonify(self, prepared: "Prepared") -> str:
        """The SockJS messages of a prepared packet, JSON-encoded once per broadcast."""
        last, text = self._jsonified
        if last is prepared:
            return text
        parts = [_frame_json(prepared.sio_text)]
        for attachment in prepared.attachments:
            parts.append(_frame_json("b" + base64.b64encode(attachment).decode("ascii")))
        text = ",".join(parts)
        self._jsonified = (prepared, text)
        return text

    # -- timers ------------------------------------------------------------

    def _sweep(self) -> None:
        try:
            self._sessions.expire()
        except Exception:
            log.exception("sockjs session expiry failed")
        now = time.monotonic()
        for client in list(self.clients.values()):
            deadline = client.connect_deadline
            if deadline is not None and now >= deadline:
                log.info("connection %s: no namespace connected in %.1fs; closing", client.sid,
                         self.engine.connect_timeout)
                client.close("connect timeout")

    def close_all(self, reason: str = "server shutting down") -> None:
        for client in list(self.clients.values()):
            client.close(reason)

    def stop(self) -> None:
        self._sessions_cleanup.stop()


class _Holder:
    """Builds the router on first use, inside the running IOLoop (the upstream
    constructor binds timers to the current loop; ``routes()`` usually runs
    before ``asyncio.run``)."""

    def __init__(self, sio: "SocketIO", prefix: str, settings: Dict[str, Any]) -> None:
        self.sio = sio
        self.prefix = prefix
        self.settings = settings
        self.router: Optional[_Router] = None

    def get(self) -> _Router:
        if self.router is None:
            self.router = _Router(self.sio, self.prefix, self.settings)
        return self.router


# ---------------------------------------------------------------------------
# Request checks shared by every handler
# ---------------------------------------------------------------------------


class _Guard:
    """Mixed in before a sockjs-tornado handler: our origin, CORS and size rules.

    ``opens_on``: the HTTP method with which this transport creates a session.
    ``page_request``: browsers send it without ``Origin`` (a ``<script>``, a
    navigation, an old form POST), so a cross-site page is told by ``Referer``.
    """

    opens_on: Optional[str] = None
    page_request = False
    #: A long-lived response: it gets heartbeats (upstream starts none on the streaming
    #: transports, so a vanished client behind a silent network was never noticed).
    streaming = False
    server: _Router

    def _attach_session(self, session_id: str, start_heartbeat: bool = False) -> bool:
        return super()._attach_session(session_id, start_heartbeat or self.streaming)  # type: ignore[misc]

    def initialize(self, server: Any) -> None:  # type: ignore[override]
        router = server.get() if isinstance(server, _Holder) else server
        super().initialize(router)  # type: ignore[misc]
        self._received = 0
        self._body = bytearray()
        self._too_large = False
        self._body_done = False

    # CORS: reflect an allowed Origin only (upstream reflects any, with credentials).
    def preflight(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin and self._origin_ok():
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")
            if self.server.engine.cors_credentials:
                self.set_header("Access-Control-Allow-Credentials", "true")
            requested = self.request.headers.get("Access-Control-Request-Headers")
            if requested:
                self.set_header("Access-Control-Allow-Headers", requested)

    def verify_origin(self) -> bool:
        return self._origin_ok()

    def _handshake(self) -> HandshakeRequest:
        handshake = HandshakeRequest(self.request)
        if not handshake.origin and self.page_request:
            referer = self.request.headers.get("Referer")
            if referer:
                parts = urlsplit(referer)
                if parts.scheme and parts.netloc:
                    handshake.origin = f"{parts.scheme}://{parts.netloc}"
            if not handshake.origin and not _allows_any(self.server.engine.cors_allowed_origins):
                handshake.origin = "null"  # no Origin nor Referer: a page hiding where it is
        return handshake

    def _origin_ok(self) -> bool:
        return origin_allowed(self.server.engine.cors_allowed_origins, self._handshake())

    def get_conn_info(self) -> _ConnInfo:
        return _ConnInfo(self)

    def _deny(self, status: int, text: str) -> None:
        self._body_done = True  # answered: whatever the body was, it is not a lost message
        self.clear_header("Content-Type")
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(text)

    def prepare(self) -> None:
        super().prepare()  # type: ignore[misc]
        self.set_header("X-Content-Type-Options", "nosniff")
        request = self.request
        engine = self.server.engine
        session_id = self.path_kwargs.get("session_id")
        opening = (self.opens_on == request.method and session_id is not None
                   and self.server.get_session(session_id) is None)
        if opening:
            # A new session: origin policy and allow_request (logged by the engine), capacity.
            if not engine.permit(request, self._handshake()):
                self._deny(403, "Forbidden.")
                return
            if self.server.at_capacity():
                log.info("%s %s from %s: max_connections reached", request.method, request.path,
                         request.remote_ip)
                self._deny(503, "Too many connections.")
                return
        elif not self._origin_ok():
            log.info("%s %s from %s refused: origin %r not in cors_allowed_origins", request.method,
                     request.path, request.remote_ip, self._handshake().origin)
            self._deny(403, "Forbidden.")
            return
        limit = engine.max_http_buffer_size
        length = request.headers.get("Content-Length")
        if length is not None:
            try:
                too_long = int(length) > limit
            except ValueError:
                log.info("%s %s from %s: bad Content-Length", request.method, request.path, request.remote_ip)
                self._deny(400, "Bad Content-Length.")
                return
            if too_long:
                self._oversized(f"{length} bytes")
                return
        request.connection.set_max_body_size(limit)

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.server.engine.max_http_buffer_size:
            self._too_large = True
            self._body = bytearray()
        elif not self._too_large:
            self._body += chunk

    def _oversized(self, what: str) -> None:
        """Over max_http_buffer_size: 413, and the session it was for is closed."""
        self._body_done = True
        session_id = self.path_kwargs.get("session_id")
        session = self.server.get_session(session_id) if session_id else None
        log.info("%s %s from %s: body of %s over max_http_buffer_size %d%s", self.request.method,
                 self.request.path, self.request.remote_ip, what, self.server.engine.max_http_buffer_size,
                 "; closing the session" if session is not None and not session.is_closed else "")
        if session is not None:
            _close_session(session, "transport error", 1009, "Message too big")
        self._deny(413, "Payload too large.")

    def _body_ok(self) -> bool:
        self._body_done = True
        if self._too_large:
            self._oversized(f"over {self._received} bytes")
            return False
        return True

    def on_connection_close(self) -> None:
        session = getattr(self, "session", None)
        if session is not None and session.sio_reason is None:
            session.sio_reason = "transport close"
        super().on_connection_close()  # type: ignore[misc]


def _allows_any(allowed: Any) -> bool:
    if isinstance(allowed, str):
        return allowed == "*"
    return allowed is not None and not callable(allowed) and "*" in allowed


def _close_session(session: Any, reason: str, code: Optional[int] = None, text: Optional[str] = None) -> None:
    client = getattr(session.conn, "client", None) if session.conn is not None else None
    if client is not None:
        client.close(reason, code, text)
    elif not session.is_closed:
        session.sio_reason = session.sio_reason or reason
        session.close(code or CLOSE_CODES.get(reason, 3000), text or reason)


def _parse_messages(body: str) -> Tuple[Optional[List[str]], str]:
    """A SockJS send body: ``(messages, "")`` or ``(None, error text)``."""
    try:
        messages = json.loads(body)
    except (ValueError, RecursionError):
        return None, "Broken JSON encoding."
    if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
        return None, "Payload expected."
    return messages, ""


class _SendMixin(_Guard):
    """``xhr_send`` and ``jsonp_send``: strict framing, size limit, session errors."""

    def _deliver(self, session_id: str, body: bytes, form: bool) -> bool:
        """Validate and hand the messages to the session; False after an error reply."""
        session = self.server.get_session(session_id)
        if session is None or session.is_closed:
            log.info("POST %s from %s: unknown or closed sockjs session", self.request.path,
                     self.request.remote_ip)
            self.set_status(404)
            self.finish()
            return False
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return self._bad(session, "Broken JSON encoding.", "invalid UTF-8")
        if form:
            if not text.startswith("d="):
                return self._bad(session, "Payload expected.", "form body without d=")
            text = unquote_plus(text[2:])
        if not text:
            return self._bad(session, "Payload expected.", "empty body")
        messages, error = _parse_messages(text)
        if messages is None:
            return self._bad(session, error, error.rstrip(".").lower())
        try:
            session.on_messages(messages)
        except Exception:
            log.exception("session %s: message handling failed; closing", session.session_id)
            _close_session(session, "server disconnect")
            self._deny(500, "Message handler failed.")
            return False
        return True

    def _bad(self, session: Any, reply: str, why: str) -> bool:
        client = getattr(session.conn, "client", None)
        log.info("POST %s from %s (%s): %s; request refused", self.request.path, self.request.remote_ip,
                 getattr(client, "sid", session.session_id), why)
        self._deny(500, reply)
        return False

    def on_connection_close(self) -> None:
        if not self._body_done and not self._finished:
            # The body was cut off (over max_http_buffer_size, chunked) or the client
            # went away mid-send: its messages are lost, so the session ends.
            session_id = self.path_kwargs.get("session_id")
            session = self.server.get_session(session_id) if session_id else None
            if session is not None and not session.is_closed:
                log.info("POST %s from %s: body cut off after %d bytes; closing the session",
                         self.request.path, self.request.remote_ip, self._received)
                _close_session(session, "transport error", 1009, "Message too big")
        super().on_connection_close()


# ---------------------------------------------------------------------------
# Transport handlers
# ---------------------------------------------------------------------------


@stream_request_body
class _XhrSend(_SendMixin, sockjs_transports.XhrSendHandler):
    def post(self, session_id: str) -> None:  # type: ignore[override]
        self.preflight()
        self.disable_cache()
        if not self._body_ok():
            return
        if self._deliver(session_id, bytes(self._body), form=False):
            self.set_status(204)
            self.finish()


@stream_request_body
class _JsonpSend(_SendMixin, sockjs_transports.JSONPSendHandler):
    page_request = True

    def post(self, session_id: str) -> None:  # type: ignore[override]
        self.preflight()
        self.disable_cache()
        if not self._body_ok():
            return
        form = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower() == \
            "application/x-www-form-urlencoded"
        if self._deliver(session_id, bytes(self._body), form=form):
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.finish("ok")


@stream_request_body
class _XhrPolling(_Guard, sockjs_transports.XhrPollingTransport):
    opens_on = "POST"


@stream_request_body
class _XhrStreaming(_Guard, sockjs_transports.XhrStreamingTransport):
    opens_on = "POST"
    streaming = True


@stream_request_body
class _EventSource(_Guard, sockjs_transports.EventSourceTransport):
    opens_on = "GET"
    streaming = True


class _CallbackMixin(_Guard):
    """The ``c`` query argument must be a dotted JavaScript identifier (``_jp.a1b2c3``)."""

    opens_on = "GET"
    page_request = True

    def prepare(self) -> None:
        super().prepare()
        if self._finished:
            return
        callback = self.get_query_argument("c", None)
        if not callback:
            log.info("GET %s from %s: no callback parameter", self.request.path, self.request.remote_ip)
            self._deny(500, '"callback" parameter required')
        elif len(callback) > _CALLBACK_MAX or not _CALLBACK.fullmatch(callback):
            log.info("GET %s from %s: invalid callback name %r", self.request.path, self.request.remote_ip,
                     callback[:_CALLBACK_MAX])
            self._deny(500, 'invalid "callback" parameter')


@stream_request_body
class _Jsonp(_CallbackMixin, sockjs_transports.JSONPTransport):
    def send_pack(self, message: str, binary: bool = False) -> None:
        # "/**/" keeps the body from starting with attacker-chosen bytes (Rosetta Flash).
        self.active = False
        try:
            msg = "/**/%s(%s);\r\n" % (self.callback, json.dumps(message))
            self.set_header("Content-Type", "application/javascript; charset=UTF-8")
            self.set_header("Content-Length", len(msg))
            self.write(msg)
            self.flush().add_done_callback(self.send_complete)
        except (IOError, StreamClosedError):
            if self.session is not None:
                self.session.delayed_close()


_HTML_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


@stream_request_body
class _HtmlFile(_CallbackMixin, sockjs_transports.HtmlFileTransport):
    streaming = True

    def get(self, session_id: str) -> None:  # type: ignore[override]
        # Upstream strips "_" and "." from the name (breaking sockjs-client's
        # "_jp.xxx"); the name is validated in prepare(), so use it as is.
        self._auto_finish = False
        self.preflight()
        self.disable_cache()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(sockjs_transports.htmlfile.HTMLFILE_HEAD % self.get_query_argument("c"))
        self.flush()
        if not self._attach_session(session_id):
            self.finish()
            return
        if self.session:
            self.session.flush()

    def send_pack(self, message: str, binary: bool = False) -> None:
        msg = "<script>\np(%s);\n</script>\r\n" % json.dumps(message).translate(_HTML_UNSAFE)
        self.active = False
        try:
            self.notify_sent(len(message))
            self.write(msg)
            self.flush().add_done_callback(self.send_complete)
        except (IOError, StreamClosedError):
            if self.session is not None:
                self.session.delayed_close()
            self._detach()


class _WebSocket(sockjs_transports.WebSocketTransport):
    """The SockJS WebSocket transport with the engine's origin, size and buffer limits."""

    def initialize(self, server: Any) -> None:  # type: ignore[override]
        super().initialize(server.get() if isinstance(server, _Holder) else server)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        # Origin policy and allow_request before the 101 (upstream accepts any
        # origin); here rather than in check_origin, which Tornado skips when the
        # request has no Origin header.
        if not self.server.engine.permit(self.request, HandshakeRequest(self.request)):
            self.set_status(403)
            self.finish("Forbidden.")
            return
        if self.server.at_capacity():
            log.info("GET %s from %s: max_connections reached", self.request.path, self.request.remote_ip)
            self.set_status(503)
            self.finish("Too many connections.")
            return
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        return True  # checked in get()

    def get_compression_options(self) -> Optional[dict]:
        return None

    def get_conn_info(self) -> _ConnInfo:
        return _ConnInfo(self)

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        # A hard bound for Tornado (it closes with 1009, unlogged); on_message applies
        # the real limit with a logged, clean SockJS close.
        return 2 * self.server.engine.max_http_buffer_size + 4096

    @property
    def ping_interval(self) -> Optional[float]:  # type: ignore[override]
        return self.server.engine.ping_interval

    @property
    def ping_timeout(self) -> Optional[float]:  # type: ignore[override]
        return self.server.engine.ping_timeout

    def open(self, session_id: str) -> None:  # type: ignore[override]
        conn = self.ws_connection
        stream = getattr(conn, "stream", None)
        if stream is not None:
            stream.max_write_buffer_size = self.server.engine.max_send_buffer
        super().open(session_id)

    def on_message(self, message: Any) -> None:
        session = self.session
        if not message or session is None:
            return  # SockJS: empty frames are ignored
        why = ""
        messages: Optional[List[str]] = None
        limit = self.server.engine.max_http_buffer_size
        size = len(message) if isinstance(message, bytes) or message.isascii() else len(message.encode("utf-8"))
        if size > limit:
            client = getattr(session.conn, "client", None)
            log.info("connection %s: sockjs websocket message of %d bytes over max_http_buffer_size %d; closing",
                     getattr(client, "sid", session.session_id), size, limit)
            _close_session(session, "transport error", 1009, "Message too big")
            return
        if isinstance(message, bytes):
            why = "binary frame"
        else:
            try:
                decoded = json.loads(message)
            except (ValueError, RecursionError):
                why = "broken JSON encoding"
            else:
                if isinstance(decoded, str):
                    messages = [decoded]
                elif isinstance(decoded, list) and all(isinstance(m, str) for m in decoded):
                    messages = decoded
                else:
                    why = "not a JSON string or array of strings"
        if messages is None:
            client = getattr(session.conn, "client", None)
            log.info("connection %s: invalid sockjs websocket frame (%s); closing",
                     getattr(client, "sid", session.session_id), why)
            _close_session(session, "parse error")
            return
        try:
            session.on_messages(messages)
        except Exception:
            log.exception("sockjs websocket %s: message handling failed; closing", session.session_id)
            _close_session(session, "server disconnect")

    def on_close(self) -> None:
        session = self.session
        if session is not None and session.sio_reason is None:
            session.sio_reason = "transport close"
        super().on_close()

    def send_pack(self, message: str, binary: bool = False) -> None:
        conn = self.ws_connection
        if conn is None or conn.is_closing():
            return
        try:
            conn.stream.write(build_frame(message.encode("utf-8"), OP_TEXT))
        except StreamBufferFullError:
            log.warning("sockjs websocket %s: send buffer over %d bytes (client not reading); closing",
                        getattr(self.session, "session_id", "?"), self.server.engine.max_send_buffer)
            if self.session is not None and self.session.sio_reason is None:
                self.session.sio_reason = "transport error"
            conn.stream.close()
        except StreamClosedError:
            pass


@stream_request_body
class _Info(_Guard, sockjs_static.InfoHandler):
    pass


@stream_request_body
class _ChunkingTest(_Guard, sockjs_static.ChunkingTestHandler):
    pass


@stream_request_body
class _Greetings(_Guard, sockjs_static.GreetingsHandler):
    pass


@stream_request_body
class _IFrame(_Guard, sockjs_static.IFrameHandler):
    """The iframe page for iframe-based transports, framable only by allowed origins.

    Requests from inside the iframe are same-origin, so the origin policy has to
    be applied to who may embed it: CSP ``frame-ancestors`` (and
    ``X-Frame-Options: SAMEORIGIN`` when only same-origin is allowed).
    """

    def get(self) -> None:  # type: ignore[override]
        allowed = self.server.engine.cors_allowed_origins
        if _allows_any(allowed):
            pass
        elif allowed is None or callable(allowed):
            # A callable cannot be listed: same-origin framing only.
            self.set_header("Content-Security-Policy", "frame-ancestors 'self'")
            self.set_header("X-Frame-Options", "SAMEORIGIN")
        else:
            origins = [allowed] if isinstance(allowed, str) else list(allowed)
            safe = [o for o in origins if re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+", o)]
            self.set_header("Content-Security-Policy", "frame-ancestors 'self' " + " ".join(safe))
        super().get()


# Every upstream handler we route, and the hardened class that replaces it.
_TRANSPORTS = {
    "websocket": _WebSocket,
    "xhr": _XhrPolling,
    "xhr_streaming": _XhrStreaming,
    "jsonp": _Jsonp,
    "eventsource": _EventSource,
    "htmlfile": _HtmlFile,
}
_SENDERS = {"xhr_send": _XhrSend, "jsonp_send": _JsonpSend}


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------

_holders: "weakref.WeakKeyDictionary[Any, List[_Holder]]" = weakref.WeakKeyDictionary()


def default_settings(sio: "SocketIO") -> Dict[str, Any]:
    """sockjs-tornado settings derived from the server's Engine.IO settings."""
    engine = sio.engine
    disconnect_delay = engine.ping_timeout
    return {
        "disconnect_delay": disconnect_delay,
        "heartbeat_delay": engine.ping_interval,
        "session_check_interval": min(1.0, max(0.02, disconnect_delay / 5.0)),
        "disabled_transports": [],
        "sockjs_url": DEFAULT_SOCKJS_URL,
        "response_limit": 128 * 1024,
        "jsessionid": False,
        "immediate_flush": True,
        "disable_nagle": True,
        "verify_ip": True,
    }


def routes(sio: "SocketIO", prefix: str = "/sockjs", settings: Optional[Dict[str, Any]] = None) -> list:
    """Tornado rules serving SockJS at *prefix* for the Socket.IO server *sio*.

    *settings* override :func:`default_settings` (``disabled_transports``,
    ``sockjs_url``, ``response_limit``, ``verify_ip``, ``disconnect_delay`` ...).
    ``SocketIO(sockjs=True)`` (the default) adds these rules to ``routes()``; for
    custom settings pass ``sockjs=False`` and add ``routes(socketio, prefix, settings)``.
    """
    clean = "/" + prefix.strip("/") if prefix.strip("/") else ""
    merged = default_settings(sio)
    merged.update(settings or {})
    holder = _Holder(sio, clean, merged)
    _holders.setdefault(sio, []).append(holder)
    kwargs = {"server": holder}
    base = re.escape(clean)
    session = base + r"/[^/.]+/(?P<session_id>" + _SESSION_ID + ")"
    disabled = set(merged["disabled_transports"])
    rules: list = [(f"{session}/{name}$", cls, kwargs) for name, cls in _SENDERS.items()]
    rules += [(f"{session}/{name}$", cls, kwargs) for name, cls in _TRANSPORTS.items() if name not in disabled]
    rules += [
        (base + "/chunking_test$", _ChunkingTest, kwargs),
        (base + "/info$", _Info, kwargs),
        (base + r"/iframe[0-9-.a-z_]*\.html$", _IFrame, kwargs),
        (base + "/?$", _Greetings, kwargs),
    ]
    return rules


def _routers(sio: Any) -> List[_Router]:
    return [h.router for h in _holders.get(sio, ()) if h.router is not None]


def connections(sio: "SocketIO") -> List[SockJSClientConnection]:
    """The open SockJS connections of *sio*."""
    return [c for r in _routers(sio) for c in r.clients.values()]


def close_all(sio: "SocketIO", reason: str = "server shutting down") -> None:
    """Close every SockJS session of *sio* (graceful shutdown)."""
    for router in _routers(sio):
        router.close_all(reason)


def undelivered(sio: "SocketIO") -> bool:
    """Whether some SockJS session still holds messages its client has not collected
    (polling clients get them, then the close frame, with their next request)."""
    return any(session.send_queue for router in _routers(sio) for session in router._sessions._items.values())


def stop(sio: "SocketIO") -> None:
    """Stop the SockJS session sweeps of *sio* (after :func:`close_all`)."""
    for router in _routers(sio):
        router.stop()
