"""A SockJS session as a :class:`~tornado_sio.engine.connection.Connection`.

sockjs-tornado keeps one ``Session`` per SockJS session and one
``SockJSConnection`` (here :class:`Bridge`) that it calls with the session's
events. The bridge creates a :class:`SockJSClientConnection`, the object the
Socket.IO server sees, and hands it every event through the
:class:`~tornado_sio.engine.connection.ConnectionHandler` interface.

Wire format: every SockJS message is one Socket.IO packet in its text encoding
(what follows the ``4`` of an Engine.IO message, e.g. ``2["chat","hi"]``). A
binary attachment is its own SockJS message, ``"b"`` + standard base64 (as in an
Engine.IO polling payload), sent right after the packet that announces it. A
Socket.IO packet never starts with ``b``, so the two cannot be confused.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from ...engine.connection import HandshakeRequest
from ...protocol.outgoing import Prepared
from .upstream import SockJSConnection, sockjs_session

if TYPE_CHECKING:
    from .router import Router

__all__ = [
    "CLOSE_CODES",
    "POLLING_TRANSPORTS",
    "Bridge",
    "ConnInfo",
    "Session",
    "SockJSClientConnection",
    "close_session",
]

log = logging.getLogger("tornado_sio.sockjs")

#: SockJS close frame (``c[code,"text"]``) for each disconnect reason the server uses.
CLOSE_CODES: dict[str, int] = {
    "server disconnect": 3000,
    "server shutting down": 3000,
    "connect timeout": 3000,
    "parse error": 3001,
    "transport error": 3002,
}

#: The transports that answer one response per request: a frame must wait for the next poll.
POLLING_TRANSPORTS = ("xhr", "jsonp")


class SockJSClientConnection:
    """One SockJS session as a Socket.IO connection (what ``EngineSession`` is for Engine.IO)."""

    __slots__ = ("__weakref__", "connect_deadline", "data", "gone", "request", "router", "session", "sid")

    def __init__(self, router: Router, session: Session, request: HandshakeRequest) -> None:
        self.router = router
        self.session = session
        #: Our own id for logs and ``request.eio_sid``; the SockJS session id is the client's.
        self.sid = "sockjs-" + secrets.token_urlsafe(12)
        self.request = request
        self.data: Any = None
        timeout = router.config.connect_timeout
        self.connect_deadline: float | None = time.monotonic() + timeout if timeout else None
        #: Set once the handler has been told the connection closed.
        self.gone = False

    def __repr__(self) -> str:
        return f"<SockJSClientConnection {self.sid} {self.transport}>"

    @property
    def transport(self) -> str:
        """``sockjs-`` + the SockJS transport of the last request (``sockjs-xhr_streaming`` ...)."""
        return "sockjs-" + getattr(self.session, "transport_name", "?")

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed."""
        return self.gone or self.session.is_closed

    @property
    def writable(self) -> bool:
        """Whether a message sent now would be written at once (what a ``volatile`` emit
        needs): a receiving request (a poll, a stream, a WebSocket) is active and nothing waits."""
        handler = self.session.handler
        return (not self.closed and handler is not None and bool(handler.active)
                and not self.session.send_queue)

    def mark_connected(self) -> None:
        """A namespace connected: the connect deadline no longer applies."""
        self.connect_deadline = None

    def mark_idle(self) -> None:
        """No namespace left: one must connect within ``connect_timeout``."""
        timeout = self.router.config.connect_timeout
        if timeout and not self.closed:
            self.connect_deadline = time.monotonic() + timeout

    def send_message(self, prepared: Prepared) -> None:
        """Queue or write one Socket.IO packet (and its attachments) as SockJS messages."""
        if self.closed:
            return
        self.session.send_jsonified(self.router.jsonify(prepared), False)

    def close(self, reason: str = "server disconnect", code: int | None = None,
              text: str | None = None) -> None:
        """Close the SockJS session (a ``c[code,"reason"]`` frame); the handler hears of it once."""
        if self.closed:
            return
        session = self.session
        if session.sio_reason is None:
            session.sio_reason = reason
        session.close(code if code is not None else CLOSE_CODES.get(reason, 3000), text or reason)

    def sweep(self, now: float) -> None:
        """Close the connection when no namespace connected in time (run by the router's sweep)."""
        deadline = self.connect_deadline
        if deadline is not None and now >= deadline:
            log.info("connection %s: no namespace connected in %.1fs; closing", self.sid,
                     self.router.config.connect_timeout)
            self.close("connect timeout")


class ConnInfo(sockjs_session.ConnectionInfo):  # type: ignore[misc, unused-ignore]
    """sockjs-tornado's connection info plus our ``HandshakeRequest``."""

    def __init__(self, handler: Any, handshake: HandshakeRequest | None = None) -> None:
        request = handler.request
        super().__init__(request.remote_ip, request.cookies, request.arguments, request.headers,
                         request.path)
        self.handshake = handshake if handshake is not None else HandshakeRequest(request)


class Bridge(SockJSConnection):  # type: ignore[misc, unused-ignore]
    """sockjs-tornado's per-session connection object: hands everything to the handler."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.client: SockJSClientConnection | None = None

    def on_open(self, info: ConnInfo) -> None:
        session: Session = self.session
        router: Router = session.server
        client = SockJSClientConnection(router, session, info.handshake)
        self.client = client
        router.attach(client)
        try:
            accepted = router.handler.connection_opened(client)
        except Exception:
            log.exception("connection_opened failed for %s", client.sid)
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
        client.router.handler.connection_message(client, data)

    def on_close(self) -> None:
        client = self.client
        if client is None or client.gone:
            return
        client.gone = True
        session: Session = self.session
        reason = session.sio_reason or "transport close"
        router: Router = session.server
        router.detach(client)
        log.debug("sockjs session %s (%s) closed: %s", session.session_id, client.sid, reason)
        try:
            router.handler.connection_closed(client, reason)
        except Exception:
            log.exception("connection_closed failed for %s", client.sid)


class Session(sockjs_session.Session):  # type: ignore[misc, unused-ignore]
    """Bounded send queue, a disconnect reason, heartbeats on streams, a close that loses nothing."""

    #: sockjs-tornado's queue of JSON-encoded messages not yet written.
    send_queue: str

    def __init__(self, conn: Any, server: Router, session_id: str, expiry: Any = None) -> None:
        super().__init__(conn, server, session_id, expiry)
        #: The reason the Socket.IO disconnect handlers get (set before closing).
        self.sio_reason: str | None = None

    @property
    def client(self) -> SockJSClientConnection | None:
        """The Socket.IO connection of this session, once opened."""
        return getattr(self.conn, "client", None) if self.conn is not None else None

    def set_handler(self, handler: Any, start_heartbeat: bool = True) -> bool:
        # A long-lived response gets heartbeats: upstream starts none on the
        # streaming transports, so a vanished client behind a silent network was
        # never noticed.
        streaming = bool(getattr(handler, "streaming", False))
        return bool(super().set_handler(handler, start_heartbeat or streaming))

    def send_jsonified(self, msg: str, stats: bool = True) -> None:
        if self.is_closed:
            return
        super().send_jsonified(msg, stats)
        limit = self.server.config.max_send_buffer
        if len(self.send_queue) > limit:
            client = self.client
            log.warning("connection %s: sockjs send queue over %d bytes (client not reading); closing",
                        client.sid if client is not None else self.session_id, limit)
            self.send_queue = ""
            close_session(self, "transport error")

    def on_delete(self, forced: bool) -> None:
        # Expired: no receiving request for disconnect_delay (SockJS's own timeout).
        if (forced or self.handler is None or self.is_closed) and self.sio_reason is None:
            self.sio_reason = "ping timeout"
        super().on_delete(forced)

    def close(self, code: int = 3000, message: str = "Go away!") -> None:
        if self.state == sockjs_session.CLOSED:
            return
        handler = self.handler
        if handler is not None and getattr(handler, "name", "") in POLLING_TRANSPORTS and not handler.active:
            # A polling response is being written: the queued messages and then the
            # close frame go out with the next poll (Session.set_handler does that).
            sockjs_session.BaseSession.close(self, code, message)
            return
        if handler is not None and self.send_queue:
            # Streaming or WebSocket: write what is queued before the close frame.
            queued, self.send_queue = self.send_queue, ""
            handler.send_pack(f"a[{queued}]")
        super().close(code, message)


def close_session(session: Any, reason: str, code: int | None = None, text: str | None = None) -> None:
    """Close a sockjs-tornado session with a disconnect *reason*, through its connection when it has one."""
    client = session.client if isinstance(session, Session) else None
    if client is not None:
        client.close(reason, code, text)
    elif not session.is_closed:
        if getattr(session, "sio_reason", None) is None:
            session.sio_reason = reason
        session.close(code or CLOSE_CODES.get(reason, 3000), text or reason)
