"""The SockJS HTTP transports: sockjs-tornado's handlers behind our :class:`~.guard.Guard`.

Besides the guard's checks: the JSONP callback name must be a dotted
JavaScript identifier and its body starts with ``/**/`` (no attacker-chosen
first bytes); the htmlfile transport escapes ``<`` ``>`` ``&`` so data cannot end
its ``<script>``; the iframe page may only be framed by allowed origins and
loads ``sockjs_client_url`` with its SRI hash; ``/info`` reports the origin
policy in its ``origins`` field.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from typing import Any, Optional
from urllib.parse import urlsplit

from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler, stream_request_body

from ...engine.connection import HandshakeRequest
from ...options import Origins
from .._fastpath import attach_sockjs_session, keep_response_open
from ..policy import allows_any
from .client import ClientScript
from .guard import Guard, SendMixin
from .upstream import sockjs_htmlfile, sockjs_static, sockjs_transports

__all__ = [
    "CALLBACK",
    "CALLBACK_MAX",
    "IFRAME_HTML",
    "SENDERS",
    "STATIC",
    "TRANSPORTS",
    "iframe_page",
    "info_origins",
    "sockjs_origin",
]

log = logging.getLogger("tornado_sio.sockjs")

#: A JSONP or htmlfile callback name: a dotted JavaScript identifier (``_jp.a1b2c3``).
CALLBACK = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*){0,7}", re.ASCII)
#: The longest callback name accepted.
CALLBACK_MAX = 128
_HTML_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


@stream_request_body
class XhrSend(SendMixin, sockjs_transports.XhrSendHandler):  # type: ignore[misc, unused-ignore]
    def post(self, session_id: str) -> None:  # type: ignore[override, unused-ignore]
        self.preflight()
        self.disable_cache()
        if not self.body_ok():
            return
        if self.deliver(session_id, bytes(self.guard.body), form=False):
            self.set_status(204)
            self.finish()


@stream_request_body
class JsonpSend(SendMixin, sockjs_transports.JSONPSendHandler):  # type: ignore[misc, unused-ignore]
    page_request = True

    def post(self, session_id: str) -> None:  # type: ignore[override, unused-ignore]
        self.preflight()
        self.disable_cache()
        if not self.body_ok():
            return
        form = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower() == \
            "application/x-www-form-urlencoded"
        if self.deliver(session_id, bytes(self.guard.body), form=form):
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.finish("ok")


@stream_request_body
class XhrPolling(Guard, sockjs_transports.XhrPollingTransport):  # type: ignore[misc, unused-ignore]
    opens_on = "POST"


@stream_request_body
class XhrStreaming(Guard, sockjs_transports.XhrStreamingTransport):  # type: ignore[misc, unused-ignore]
    opens_on = "POST"
    streaming = True


@stream_request_body
class EventSource(Guard, sockjs_transports.EventSourceTransport):  # type: ignore[misc, unused-ignore]
    opens_on = "GET"
    streaming = True


class CallbackMixin(Guard):
    """The ``c`` query argument must be a dotted JavaScript identifier (``_jp.a1b2c3``)."""

    opens_on = "GET"
    page_request = True

    def prepare(self) -> None:
        super().prepare()
        if self.answered:
            return
        callback = self.get_query_argument("c", None)  # type: ignore[attr-defined]
        if not callback:
            log.info("GET %s from %s: no callback parameter", self.request.path, self.request.remote_ip)
            self.deny(500, '"callback" parameter required')
        elif len(callback) > CALLBACK_MAX or not CALLBACK.fullmatch(callback):
            log.info("GET %s from %s: invalid callback name %r", self.request.path, self.request.remote_ip,
                     callback[:CALLBACK_MAX])
            self.deny(500, 'invalid "callback" parameter')


@stream_request_body
class Jsonp(CallbackMixin, sockjs_transports.JSONPTransport):  # type: ignore[misc, unused-ignore]
    def send_pack(self, message: str, binary: bool = False) -> None:
        # "/**/" keeps the body from starting with attacker-chosen bytes (Rosetta Flash).
        self.active = False
        try:
            msg = f"/**/{self.callback}({json.dumps(message)});\r\n"
            self.set_header("Content-Type", "application/javascript; charset=UTF-8")
            self.set_header("Content-Length", len(msg))
            self.write(msg)
            self.flush().add_done_callback(self.send_complete)
        except (OSError, StreamClosedError):
            if self.session is not None:
                self.session.delayed_close()


@stream_request_body
class HtmlFile(CallbackMixin, sockjs_transports.HtmlFileTransport):  # type: ignore[misc, unused-ignore]
    streaming = True
    session: Any

    def get(self, session_id: str) -> None:  # type: ignore[override, unused-ignore]
        # Upstream strips "_" and "." from the name (breaking sockjs-client's
        # "_jp.xxx"); the name is validated in prepare(), so use it as is.
        keep_response_open(self)
        self.preflight()
        self.disable_cache()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(sockjs_htmlfile.HTMLFILE_HEAD % self.get_query_argument("c"))
        self.flush()
        if not attach_sockjs_session(self, session_id):
            self.finish()
            return
        if self.session:
            self.session.flush()

    def send_pack(self, message: str, binary: bool = False) -> None:
        msg = f"<script>\np({json.dumps(message).translate(_HTML_UNSAFE)});\n</script>\r\n"
        self.active = False
        try:
            self.notify_sent(len(message))
            self.write(msg)
            self.flush().add_done_callback(self.send_complete)
        except (OSError, StreamClosedError):
            session = self.session
            if session is not None:
                session.delayed_close()
                session.remove_handler(self)
                self.session = None


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def sockjs_origin(origin: str) -> str:
    """An origin in the ``host:port`` form of SockJS's ``origins``: ``https://app.example``
    is ``app.example:443``. Anything that is not an http(s) origin (``null``) is kept as it is."""
    parts = urlsplit(origin)
    try:
        port = parts.port
    except ValueError:
        return origin
    host = parts.hostname
    if parts.scheme not in _DEFAULT_PORTS or not host:
        return origin
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port or _DEFAULT_PORTS[parts.scheme]}"


def info_origins(allowed: Origins, request: HandshakeRequest) -> Optional[list[str]]:
    """The ``origins`` field of ``/info`` for the ``cors_allowed_origins`` policy *allowed*.

    ``["*:*"]`` when any origin is allowed; the allowed origins as ``host:port``
    for a list; for the same-origin policy (None) the host the request was sent
    to; None (the field is left out, as sockjs-node does without CORS) for a
    callable, which cannot be listed. The SockJS protocol calls the field "the
    list of allowed origins" and its clients ignore it; the server's checks
    are what enforce the policy.
    """
    if allows_any(allowed):
        return ["*:*"]
    if allowed is None:
        return [sockjs_origin(f"{request.protocol}://{request.host}")]
    if callable(allowed):
        return None
    origins = [allowed] if isinstance(allowed, str) else list(allowed)
    return list(dict.fromkeys(sockjs_origin(origin) for origin in origins))


@stream_request_body
class Info(Guard, sockjs_static.InfoHandler):  # type: ignore[misc, unused-ignore]
    """``/info``: the server's capabilities, the origin policy (``origins``) and entropy.

    .. versionchanged:: 0.2.0
       ``origins`` reports ``cors_allowed_origins`` (upstream always says
       ``["*:*"]``), and ``entropy`` is 32 random bits from :mod:`secrets`, the
       range the protocol asks for.
    """

    def get(self) -> None:  # type: ignore[override, unused-ignore]
        self.preflight()
        self.disable_cache()
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        info: dict[str, Any] = {"websocket": self.server.websockets_enabled,
                                "cookie_needed": self.server.cookie_needed}
        origins = info_origins(self.server.config.cors_allowed_origins, HandshakeRequest(self.request))
        if origins is not None:
            info["origins"] = origins
        info["entropy"] = secrets.randbits(32)
        self.write(json.dumps(info))


@stream_request_body
class ChunkingTest(Guard, sockjs_static.ChunkingTestHandler):  # type: ignore[misc, unused-ignore]
    pass


@stream_request_body
class Greetings(Guard, sockjs_static.GreetingsHandler):  # type: ignore[misc, unused-ignore]
    pass


#: The SockJS iframe page, as the SockJS protocol gives it, with the ``<script>``
#: attributes of :meth:`ClientScript.attributes` (``integrity`` and ``crossorigin``
#: follow ``src`` when the script has an SRI hash).
IFRAME_HTML = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script {script}></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"""


def iframe_page(client: ClientScript) -> bytes:
    """The iframe page that loads *client* (rendered once per endpoint)."""
    return IFRAME_HTML.format(script=client.attributes()).encode("utf-8")


@stream_request_body
class IFrame(Guard, sockjs_static.IFrameHandler):  # type: ignore[misc, unused-ignore]
    """The iframe page for iframe-based transports, framable only by allowed origins.

    Requests from inside the iframe are same-origin, so the origin policy has to
    be applied to who may embed it: CSP ``frame-ancestors`` (and
    ``X-Frame-Options: SAMEORIGIN`` when only same-origin is allowed).

    It loads ``sockjs_client_url``, the page's own script, with its SRI hash
    (:func:`~.client.client_script`). Cached for a year, as the protocol asks; its
    ``ETag`` is Tornado's hash of the page, so a new script gives a new tag.
    """

    def get(self) -> None:  # type: ignore[override, unused-ignore]
        allowed = self.server.config.cors_allowed_origins
        if allows_any(allowed):
            pass
        elif allowed is None or callable(allowed):
            # A callable cannot be listed: same-origin framing only.
            self.set_header("Content-Security-Policy", "frame-ancestors 'self'")
            self.set_header("X-Frame-Options", "SAMEORIGIN")
        else:
            origins = [allowed] if isinstance(allowed, str) else list(allowed)
            safe = [o for o in origins if re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+", o)]
            self.set_header("Content-Security-Policy", "frame-ancestors 'self' " + " ".join(safe))
        self.enable_cache()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.write(self.endpoint.iframe_page)


#: Every upstream session transport we route, and the hardened class that replaces it
#: (the WebSocket one is added by the endpoint).
TRANSPORTS: dict[str, type[RequestHandler]] = {
    "xhr": XhrPolling,
    "xhr_streaming": XhrStreaming,
    "jsonp": Jsonp,
    "eventsource": EventSource,
    "htmlfile": HtmlFile,
}
#: The send handlers.
SENDERS: dict[str, type[RequestHandler]] = {"xhr_send": XhrSend, "jsonp_send": JsonpSend}
#: The static pages, by URL pattern under the prefix.
STATIC: dict[str, type[Any]] = {
    "/chunking_test$": ChunkingTest,
    "/info$": Info,
    r"/iframe[0-9-.a-z_]*\.html$": IFrame,
    "/?$": Greetings,
}
