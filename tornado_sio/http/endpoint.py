"""What both Engine.IO handlers share: the query rules and the spec's error replies.

Every error of the endpoint is answered as the Engine.IO spec words it: a JSON
body ``{"code": n, "message": "..."}`` with status 400 (403 for FORBIDDEN, 503
when ``max_connections`` is reached, 413 for a polling POST over
``max_http_buffer_size``). That includes methods Tornado would answer with its
own 405: a handshake (no ``sid``) that is not a GET gets 400 "Bad handshake
method", any other request with an odd method 400 "Bad request", as Node's
engine.io does.
"""

from __future__ import annotations

import logging
from typing import Any

from tornado.web import RequestHandler

from ..engine.server import EngineServer
from ..options import Options
from ..protocol import engineio as eio
from .policy import Gate, Refusal

__all__ = ["EndpointMixin", "error_status", "log_refusal", "query_error", "transport_of"]

log = logging.getLogger("tornado_sio.http")


def transport_of(request: Any) -> str | None:
    """The ``transport`` query value exactly as sent, or None when it is missing or repeated.

    Exact: ``polling%00`` or ``polling%20`` is not ``polling`` (Tornado's
    ``get_query_argument`` would strip them); a repeated ``transport`` is
    ambiguous and refused, as Node refuses the array it parses it into.
    """
    values = request.query_arguments.get("transport")
    if not values or len(values) != 1:
        return None
    try:
        return str(values[0].decode("ascii"))
    except UnicodeDecodeError:
        return None


def query_error(request: Any, options: Options, transport: str) -> eio.ErrorCode | None:
    """The error code of *request*'s ``EIO``/``transport`` query (for *transport*), or None."""
    version = request.query_arguments.get("EIO")
    if not version or version[-1] != b"4":
        return eio.ErrorCode.UNSUPPORTED_PROTOCOL_VERSION
    name = transport_of(request)
    if name is None or name not in options.transports:
        return eio.ErrorCode.UNKNOWN_TRANSPORT
    if name != transport:
        return eio.ErrorCode.BAD_REQUEST  # e.g. transport=websocket without an Upgrade
    return None


def error_status(code: eio.ErrorCode, status: int | None = None) -> int:
    """The HTTP status of an error reply: *status* when given, 403 for FORBIDDEN, else 400."""
    if status is not None:
        return status
    return 403 if code == eio.ErrorCode.FORBIDDEN else 400


def log_refusal(request: Any, code: eio.ErrorCode, why: str = "") -> None:
    """Log one refused request at INFO: method, URI, client, the spec's message and why."""
    log.info("%s %s from %s: %s%s", request.method, request.uri, request.remote_ip,
             code.message, f" ({why})" if why else "")


class EndpointMixin(RequestHandler):
    """Mixed into the polling and WebSocket handlers of the Engine.IO endpoint."""

    engine: EngineServer
    #: The server's settings (``options`` would hide the OPTIONS method handler).
    config: Options
    gate: Gate
    #: Whether this handler has finished its response (tracked here: Tornado's flag is private).
    answered: bool = False

    def initialize(self, engine: EngineServer, gate: Gate) -> None:  # type: ignore[override, unused-ignore]
        self.engine = engine
        self.config = engine.options
        self.gate = gate
        self.answered = False

    def finish(self, chunk: Any = None) -> Any:
        """Tornado's ``finish``, noting that the response is complete."""
        self.answered = True
        return super().finish(chunk)

    def query_error(self, transport: str) -> eio.ErrorCode | None:
        """The error code of this request's ``EIO``/``transport`` query (for *transport*), or None."""
        return query_error(self.request, self.config, transport)

    def engine_error(self, code: eio.ErrorCode, status: int | None = None, why: str = "",
                     logged: bool = False) -> None:
        """Finish with the spec's JSON error body: 403 for FORBIDDEN, else 400 (or *status*).

        The refusal is logged once at INFO, unless *logged* says the caller did.
        """
        if not logged:
            log_refusal(self.request, code, why)
        self.clear_header("Content-Type")
        self.set_status(error_status(code, status))
        self.set_header("Content-Type", "application/json")
        self.finish(eio.error_body(code))

    def refuse(self, refusal: Refusal) -> None:
        """The gate said no (and logged why): 403 FORBIDDEN, or 503 when the server is full."""
        if refusal is Refusal.FULL:
            self.engine_error(eio.ErrorCode.BAD_REQUEST, 503, logged=True)
        else:
            self.engine_error(eio.ErrorCode.FORBIDDEN, logged=True)

    def bad_method(self) -> None:
        """400 for a method the endpoint does not serve (the spec's wording, not Tornado's 405)."""
        if self.get_query_argument("sid", None) is None:
            self.engine_error(eio.ErrorCode.BAD_HANDSHAKE_METHOD, why=f"{self.request.method} handshake")
        else:
            self.engine_error(eio.ErrorCode.BAD_REQUEST, why=f"method {self.request.method}")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado's 405 (a method no handler serves) becomes the spec's 400."""
        if status_code == 405 and not self.answered:
            self.bad_method()
            return
        super().write_error(status_code, **kwargs)
