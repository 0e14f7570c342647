"""HTTP long-polling: GET waits for packets, POST carries packets in.

The request body is streamed so its size is checked before it is buffered: a
``Content-Length`` over ``max_http_buffer_size`` gets 413 at once, and a chunked
body is cut off by Tornado as soon as the announced chunk sizes pass the limit
(Tornado answers a bare ``400`` and closes the connection, before reading the
chunk that went over). Either way the session loses a payload, so it is closed
with reason ``transport error`` (as the reference server does for a POST whose
connection closes early): the loss is reported to the handler and the client,
never silent.
"""

from __future__ import annotations

import logging
from typing import List, Optional, Union

from tornado.concurrent import Future
from tornado.web import stream_request_body

from ..engine import EngineSession
from ..exceptions import ProtocolError
from ..protocol import engineio as eio
from .common import EngineRequestMixin

__all__ = ["PollingHandler"]

log = logging.getLogger("tornado_sio.transports")


@stream_request_body
class PollingHandler(EngineRequestMixin):
    """The ``transport=polling`` side of the endpoint."""

    def initialize(self, engine) -> None:  # type: ignore[override]
        super().initialize(engine)
        self._body = bytearray()
        self._too_large = False
        self._delivery: Optional[Future] = None
        self._session: Optional[EngineSession] = None

    def check_xsrf_cookie(self) -> None:
        """Engine.IO POSTs carry no XSRF token; the origin policy protects them."""

    async def prepare(self) -> None:
        if self.request.method == "POST":
            limit = self.engine.max_http_buffer_size
            length = self.request.headers.get("Content-Length")
            if length is not None:
                try:
                    too_long = int(length) > limit
                except ValueError:
                    self.engine_error(eio.ErrorCode.BAD_REQUEST, why="bad Content-Length")
                    return
                if too_long:
                    self._refuse_too_large(f"Content-Length {length}")
                    return
            self.request.connection.set_max_body_size(limit)

    def _polling_session(self) -> Optional[EngineSession]:
        """The open polling session this request names by its sid, if any."""
        sid = self.get_query_argument("sid", None)
        session = self.engine.sessions.get(sid) if sid else None
        if session is None or session.closed or session.transport != "polling":
            return None
        return session

    def _refuse_too_large(self, what: str) -> None:
        """413 for a body over ``max_http_buffer_size``; the session lost it, so it closes."""
        session = self._polling_session()
        log.info("POST from %s refused: %s over max_http_buffer_size %d%s", self.request.remote_ip, what,
                 self.engine.max_http_buffer_size, f"; closing session {session.sid}" if session else "")
        if session is not None:
            session.close("transport error")
        self.set_cors_headers()
        self.set_status(413)
        self.finish({"code": eio.ErrorCode.BAD_REQUEST, "message": "Payload too large"})

    def data_received(self, chunk: bytes) -> None:
        # Tornado's own max_body_size (set in prepare) stops the body first; this
        # is a second bound, e.g. for a body Tornado decompresses itself.
        if not self._too_large:
            self._body += chunk
            if len(self._body) > self.engine.max_http_buffer_size:
                self._too_large = True
                self._body = bytearray()

    def _session_for(self) -> Optional[EngineSession]:
        """Validate the query and find the session, or reply with the spec's error."""
        code = self.engine.check_request(self.request, self.get_query_argument("transport", ""))
        if code is None and self.get_query_argument("transport") != "polling":
            code = eio.ErrorCode.BAD_REQUEST  # e.g. transport=websocket without an Upgrade
        if code is not None:
            self.engine_error(code)
            return None
        if not self.set_cors_headers():
            self.engine_error(eio.ErrorCode.FORBIDDEN)
            return None
        sid = self.get_query_argument("sid", None)
        if sid is None:
            return None
        session = self.engine.sessions.get(sid)
        if session is None:
            self.engine_error(eio.ErrorCode.UNKNOWN_SID)
            return None
        return session

    async def get(self) -> None:
        session = self._session_for()
        if self._finished:
            return
        if session is None:
            if self.request.method == "GET":
                session = self.open_new_session("polling")
                if session is not None:
                    self._write_payload([self.engine.open_packet(session)])
            return
        self._session = session
        self._delivery = Future()
        error = session.attach_poll(self)
        if error is not None:
            if error == "overlapping polling GET":
                session.close("transport error")
                error += "; session closed"
            self.engine_error(eio.ErrorCode.BAD_REQUEST, why=error)
            return
        items = await self._delivery
        if items is not None and not self._finished:
            self._write_payload(items)

    def deliver(self, items: List[Union[str, bytes]]) -> None:
        """Called by the session, once, with the packets for this GET."""
        if self._delivery is not None and not self._delivery.done():
            self._delivery.set_result(items)

    def _write_payload(self, items: List[Union[str, bytes]]) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(eio.encode_payload(items).encode("utf-8"))

    async def post(self) -> None:
        session = self._session_for()
        if self._finished:
            return
        if session is None:
            self.engine_error(eio.ErrorCode.BAD_HANDSHAKE_METHOD)
            return
        if self._too_large:
            self._refuse_too_large("body")
            return
        if session.transport != "polling":
            self.engine_error(eio.ErrorCode.BAD_REQUEST, why="POST on an upgraded session")
            return
        if session.closed:
            self.engine_error(eio.ErrorCode.UNKNOWN_SID, why="session closed")
            return
        try:
            for packet in eio.decode_payload(bytes(self._body)):
                session.receive(packet)
        except ProtocolError as exc:
            session.close("parse error")
            self.engine_error(eio.ErrorCode.BAD_REQUEST, why=f"bad polling payload: {exc}; session closed")
            return
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish("ok")

    def options(self) -> None:
        """CORS preflight."""
        if not self.set_cors_headers():
            self.engine_error(eio.ErrorCode.FORBIDDEN)
            return
        self.set_header("Access-Control-Allow-Methods", "OPTIONS, GET, POST")
        requested = self.request.headers.get("Access-Control-Request-Headers")
        if requested:
            self.set_header("Access-Control-Allow-Headers", requested)
        self.set_status(204)
        self.finish()

    def on_connection_close(self) -> None:
        # RequestHandler's own on_connection_close ends the wait for a streamed
        # body; without it a POST cut off mid-body would wait forever.
        super().on_connection_close()
        if self._session is not None:
            self._session.detach_poll(self)
        if self._delivery is not None and not self._delivery.done():
            self._delivery.set_result(None)
        if self.request.method == "POST" and not self._finished:
            # The body never completed: over max_http_buffer_size (Tornado cut a
            # chunked body off) or the client went away mid-POST.
            session = self._polling_session()
            if session is not None:
                log.info("session %s: POST connection closed before its body was complete; closing",
                         session.sid)
                session.close("transport error")
