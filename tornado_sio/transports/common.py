"""What both HTTP transports share: engine errors as the spec words them, and CORS."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

from tornado.web import RequestHandler

from ..engine import HandshakeRequest, origin_allowed
from ..protocol import engineio as eio

if TYPE_CHECKING:
    from ..engine import EngineServer

__all__ = ["EngineRequestMixin"]

log = logging.getLogger("tornado_sio.transports")


class EngineRequestMixin(RequestHandler):
    """Request helpers for the endpoint's handlers (mixed into both transports)."""

    engine: "EngineServer"

    def initialize(self, engine: "EngineServer") -> None:  # type: ignore[override]
        self.engine = engine

    def engine_error(self, code: eio.ErrorCode, status: Optional[int] = None, why: str = "") -> None:
        """Finish with the spec's JSON error body: 403 for FORBIDDEN, else 400 (or *status*)."""
        if status is None:
            status = 403 if code == eio.ErrorCode.FORBIDDEN else 400
        log.info("%s %s from %s: %s%s", self.request.method, self.request.uri, self.request.remote_ip,
                 code.message, f" ({why})" if why else "")
        self.clear_header("Content-Type")
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(eio.error_body(code))

    def open_new_session(self, transport: str):
        """Run the handshake checks; return a new session, or None after an error reply."""
        handshake = HandshakeRequest(self.request)
        if not self.engine.permit(self.request, handshake):
            self.engine_error(eio.ErrorCode.FORBIDDEN)
            return None
        if self.engine.at_capacity():
            self.engine_error(eio.ErrorCode.BAD_REQUEST, 503, "max_connections reached")
            return None
        session = self.engine.open_session(handshake, transport)
        if session is None:
            self.engine_error(eio.ErrorCode.FORBIDDEN, why="refused by the connect handler")
        return session

    def set_cors_headers(self) -> bool:
        """Add CORS headers when the Origin is allowed; return whether it is."""
        origin = self.request.headers.get("Origin")
        if not origin:
            return True
        if not origin_allowed(self.engine.cors_allowed_origins, HandshakeRequest(self.request)):
            return False
        self.set_header("Access-Control-Allow-Origin", origin)
        self.set_header("Vary", "Origin")
        if self.engine.cors_credentials:
            self.set_header("Access-Control-Allow-Credentials", "true")
        return True
