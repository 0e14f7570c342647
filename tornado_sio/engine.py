"""The Engine.IO v4 layer: sessions, handshake, heartbeat, upgrade, limits.

:class:`EngineServer` owns every :class:`EngineSession` by sid. Transports
(``transports/polling.py``, ``transports/websocket.py``) move bytes and call into
it; it calls the *handler* (the Socket.IO server, or an :class:`EngineApp` for raw
Engine.IO) with ``on_open(session)``, ``on_message(session, data)`` and
``on_close(session, reason)``.

Heartbeats, handshake deadlines and upgrade deadlines are driven by one
``PeriodicCallback`` sweep over all sessions, never by a timer per client.
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union
from urllib.parse import urlsplit

from tornado.httputil import HTTPServerRequest
from tornado.ioloop import PeriodicCallback

from .exceptions import ProtocolError
from .protocol import engineio as eio
from .protocol.wsframe import OP_BINARY, OP_TEXT, build_frame

__all__ = [
    "EngineServer",
    "EngineSession",
    "SessionState",
    "HandshakeRequest",
    "Prepared",
    "Origins",
]

log = logging.getLogger("tornado_sio.engine")

Origins = Union[None, str, Sequence[str], Callable[[str], bool]]
Item = Union[str, bytes]

_PING = "2"
_NOOP = "6"
_CLOSE = "1"


class SessionState(enum.IntEnum):
    """Life cycle of an Engine.IO session; an illegal move is a visible error."""

    OPEN = 1
    UPGRADING = 2
    CLOSING = 3
    CLOSED = 4


class HandshakeRequest:
    """What the server keeps of the HTTP request that opened a session.

    ``remote_ip`` and ``protocol`` come from Tornado, so they honour the
    ``xheaders`` setting behind a proxy and TLS terminated by Tornado itself.
    """

    __slots__ = ("headers", "cookies", "args", "remote_ip", "protocol", "host", "path", "uri", "origin")

    def __init__(self, request: HTTPServerRequest) -> None:
        self.headers = request.headers
        try:
            self.cookies: Dict[str, str] = {k: m.value for k, m in request.cookies.items()}
        except Exception:  # a malformed Cookie header must not refuse the client
            self.cookies = {}
        self.args: Dict[str, str] = {
            k: v[-1].decode("utf-8", "replace") for k, v in request.query_arguments.items() if v
        }
        self.remote_ip: str = request.remote_ip or ""
        self.protocol: str = request.protocol
        self.host: str = request.host
        self.path: str = request.path
        self.uri: str = request.uri or ""
        self.origin: Optional[str] = request.headers.get("Origin")


class Prepared:
    """One outgoing Socket.IO packet, encoded once for any number of recipients.

    ``eio_items`` are the Engine.IO packets for the polling queue; ``ws_frames``
    are the complete WebSocket frames, built on first use and then shared, so a
    broadcast to N WebSocket clients costs one encode and N socket writes.
    """

    __slots__ = ("sio_text", "attachments", "_items", "_frames")

    def __init__(self, sio_text: str, attachments: Sequence[bytes] = ()) -> None:
        self.sio_text = sio_text
        self.attachments = attachments
        self._items: Optional[List[Item]] = None
        self._frames: Optional[bytes] = None

    @property
    def eio_items(self) -> List[Item]:
        if self._items is None:
            self._items = ["4" + self.sio_text, *self.attachments]
        return self._items

    @property
    def ws_frames(self) -> bytes:
        if self._frames is None:
            frames = build_frame(("4" + self.sio_text).encode("utf-8"), OP_TEXT)
            for attachment in self.attachments:
                frames += build_frame(attachment, OP_BINARY)
            self._frames = frames
        return self._frames

    @property
    def size(self) -> int:
        return len(self.sio_text) + sum(len(a) for a in self.attachments)


def _same_origin(origin: str, request: HandshakeRequest) -> bool:
    parts = urlsplit(origin)
    return parts.scheme == request.protocol and parts.netloc.lower() == request.host.lower()


def origin_allowed(allowed: Origins, request: HandshakeRequest) -> bool:
    """Whether the request's ``Origin`` passes the ``cors_allowed_origins`` policy.

    ``None`` (the default) allows same-origin only; ``'*'`` allows any; a string or
    a list names the allowed origins exactly; a callable decides. A request with no
    ``Origin`` header (not a browser) is allowed.
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


class EngineSession:
    """One Engine.IO client: its sid, transport, outgoing queue and heartbeat state.

    ``data`` belongs to the handler (the Socket.IO server keeps its per-client
    state there).
    """

    __slots__ = (
        "server", "sid", "request", "state", "transport", "data",
        "_queue", "_queued_bytes", "_poll", "_ws", "_probe_ws",
        "next_ping", "pong_deadline", "connect_deadline", "upgrade_deadline", "close_deadline",
        "_close_reason",
    )

    def __init__(self, server: "EngineServer", sid: str, request: HandshakeRequest, transport: str) -> None:
        self.server = server
        self.sid = sid
        self.request = request
        self.state = SessionState.OPEN
        self.transport = transport
        self.data: Any = None
        # A list, not a deque: almost always empty, and an empty deque costs ~700 B.
        self._queue: List[Item] = []
        self._queued_bytes = 0
        self._poll: Any = None  # the pending polling GET handler, if any
        self._ws: Any = None  # the WebSocket handler once on websocket
        self._probe_ws: Any = None  # a WebSocket handler probing for an upgrade
        now = time.monotonic()
        self.next_ping = now + server.ping_interval
        self.pong_deadline: Optional[float] = None
        self.connect_deadline: Optional[float] = now + server.connect_timeout if server.connect_timeout else None
        self.upgrade_deadline: Optional[float] = None
        self.close_deadline: Optional[float] = None
        self._close_reason = ""

    def __repr__(self) -> str:
        return f"<EngineSession {self.sid} {self.transport} {self.state.name}>"

    # -- the handler's view ------------------------------------------------

    def mark_connected(self) -> None:
        """The handler accepted the client (a namespace connected): no connect deadline."""
        self.connect_deadline = None

    def mark_idle(self) -> None:
        """The client has no namespace left: it must connect one within ``connect_timeout``."""
        if self.server.connect_timeout and self.state < SessionState.CLOSING:
            self.connect_deadline = time.monotonic() + self.server.connect_timeout

    # -- sending ---------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state >= SessionState.CLOSING

    def send_message(self, prepared: Prepared) -> None:
        """Send a prepared Socket.IO packet (an Engine.IO MESSAGE and its attachments)."""
        if self.state >= SessionState.CLOSING:
            return
        ws = self._ws
        if ws is not None:
            if not ws.write_raw(prepared.ws_frames):
                self.close("transport error")
            return
        self._enqueue(prepared.eio_items)

    def send_text(self, text: str) -> None:
        """Send one text MESSAGE (raw Engine.IO use)."""
        self.send_message(_RawText(text))

    def send_binary(self, data: bytes) -> None:
        """Send one binary MESSAGE (raw Engine.IO use)."""
        self.send_message(_RawBinary(bytes(data)))

    def send_packet(self, item: Item) -> None:
        """Send one already-encoded Engine.IO packet (ping, noop, close ...)."""
        if self.state >= SessionState.CLOSED:
            return
        ws = self._ws
        if ws is not None:
            opcode = OP_BINARY if isinstance(item, bytes) else OP_TEXT
            payload = item if isinstance(item, bytes) else item.encode("utf-8")
            if not ws.write_raw(build_frame(payload, opcode)):
                self.close("transport error")
            return
        self._enqueue((item,))

    def _enqueue(self, items: Iterable[Item]) -> None:
        for item in items:
            self._queue.append(item)
            self._queued_bytes += len(item)
        if self._queued_bytes > self.server.max_send_buffer:
            log.warning("session %s: polling queue over %d bytes (client not reading); closing",
                        self.sid, self.server.max_send_buffer)
            self._queue.clear()
            self._queued_bytes = 0
            self.close("transport error")
            return
        poll = self._poll
        if poll is not None:
            self._poll = None
            poll.deliver(self._drain())

    def _drain(self) -> List[Item]:
        items, self._queue = self._queue, []
        self._queued_bytes = 0
        return items

    # -- polling ---------------------------------------------------------

    def attach_poll(self, handler: Any) -> Optional[str]:
        """A polling GET arrived. Return an error reason, or None when accepted.

        The handler's ``deliver(items)`` is called once with the packets to send,
        now if some are queued, else when the first one is.
        """
        if self._ws is not None:
            return "polling request on an upgraded session"
        if self._poll is not None:
            return "overlapping polling GET"
        if self._queue:
            handler.deliver(self._drain())
            if self.state == SessionState.CLOSING and not self._queue:
                self.server._forget(self)
        elif self.state == SessionState.CLOSING:
            handler.deliver([_CLOSE])
            self.server._forget(self)
        else:
            self._poll = handler
        return None

    def detach_poll(self, handler: Any) -> None:
        """The pending GET's connection went away before anything was sent."""
        if self._poll is handler:
            self._poll = None

    # -- receiving -------------------------------------------------------

    def receive(self, packet: eio.Packet) -> None:
        """Handle one decoded Engine.IO packet from the client (any transport)."""
        if self.state >= SessionState.CLOSING:
            return
        kind = packet.type
        if kind == eio.PacketType.MESSAGE:
            self.server.handler.on_message(self, packet.data if packet.data is not None else "")
        elif kind == eio.PacketType.PONG:
            self.pong_deadline = None
            self.next_ping = time.monotonic() + self.server.ping_interval
        elif kind == eio.PacketType.CLOSE:
            self.close("transport close", notify=False)
        elif kind == eio.PacketType.UPGRADE or kind == eio.PacketType.PING:
            raise ProtocolError(f"unexpected {kind.name} packet on the {self.transport} transport")
        # NOOP: nothing to do.

    # -- upgrade ---------------------------------------------------------

    def begin_probe(self, ws: Any) -> Optional[str]:
        """A WebSocket opened with this sid; it may probe and upgrade."""
        if self.transport != "polling" or self._ws is not None:
            return "session is already on websocket"
        if self._probe_ws is not None:
            return "an upgrade is already in progress"
        self._probe_ws = ws
        self.upgrade_deadline = time.monotonic() + self.server.upgrade_timeout
        return None

    def probe_packet(self, ws: Any, packet: eio.Packet) -> None:
        """A packet on a probing WebSocket: ``2probe`` then ``5`` upgrades."""
        if ws is not self._probe_ws or self.state >= SessionState.CLOSING:
            raise ProtocolError("probe on a session that is not upgrading")
        if packet.type == eio.PacketType.PING and packet.data == eio.PING_PROBE:
            self.state = SessionState.UPGRADING
            ws.write_raw(build_frame(b"3probe", OP_TEXT))
            # Flush the pending GET so the client can pause polling and send "5".
            self._enqueue((_NOOP,))
        elif packet.type == eio.PacketType.UPGRADE and self.state == SessionState.UPGRADING:
            self._probe_ws = None
            self._ws = ws
            self.transport = "websocket"
            self.state = SessionState.OPEN
            self.upgrade_deadline = None
            poll, self._poll = self._poll, None
            if poll is not None:
                poll.deliver([_NOOP])
            queued = self._drain()
            for item in queued:
                self.send_packet(item)
            log.debug("session %s upgraded to websocket", self.sid)
        else:
            raise ProtocolError(f"unexpected {packet.type.name} packet during upgrade")

    def end_probe(self, ws: Any) -> None:
        """The probing WebSocket closed or timed out; stay on polling."""
        if ws is self._probe_ws:
            self._probe_ws = None
            self.upgrade_deadline = None
            if self.state == SessionState.UPGRADING:
                self.state = SessionState.OPEN

    # -- closing ---------------------------------------------------------

    def transport_closed(self, ws: Any, reason: str = "transport close") -> None:
        """The WebSocket carrying this session closed."""
        if ws is self._probe_ws:
            self.end_probe(ws)
        elif ws is self._ws:
            self._ws = None
            self.close(reason, notify=False)

    def close(self, reason: str = "server disconnect", notify: bool = True) -> None:
        """Close the session once: tell the client (when *notify*), then the handler.

        On polling, packets still queued are delivered with a CLOSE packet on the
        next GET (or the pending one), so a graceful close loses nothing.
        """
        if self.state >= SessionState.CLOSING:
            return
        self.state = SessionState.CLOSING
        self._close_reason = reason
        probe, self._probe_ws = self._probe_ws, None
        if probe is not None:
            probe.close_transport()
        ws = self._ws
        if ws is not None:
            self._ws = None
            if notify:
                ws.write_raw(build_frame(_CLOSE.encode(), OP_TEXT))
            ws.close_transport()
            self.server._forget(self)
        else:
            poll, self._poll = self._poll, None
            if poll is not None or not notify:
                if poll is not None:
                    poll.deliver(self._drain() + [_CLOSE])
                self.server._forget(self)
            else:
                # Keep the session a little while for the next GET to collect.
                self._queue.append(_CLOSE)
                self.close_deadline = time.monotonic() + self.server.ping_timeout
        try:
            self.server.handler.on_close(self, reason)
        except Exception:
            log.exception("on_close handler failed for session %s", self.sid)


class _RawText(Prepared):
    """A raw Engine.IO text message (no Socket.IO framing)."""

    __slots__ = ()

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._items = ["4" + text]


class _RawBinary(Prepared):
    """A raw Engine.IO binary message."""

    __slots__ = ()

    def __init__(self, data: bytes) -> None:
        super().__init__("", ())
        self._items = [data]
        self._frames = build_frame(data, OP_BINARY)


def _none() -> int:
    return 0


class EngineServer:
    """Engine.IO sessions, their heartbeats and limits, for one endpoint.

    :param handler: receives ``on_open(session)``, ``on_message(session, data)``
        and ``on_close(session, reason)``.
    :param ping_interval: seconds between server pings (sub-second allowed).
    :param ping_timeout: seconds to wait for the pong before closing.
    :param max_http_buffer_size: largest message or polling payload accepted, bytes.
    :param max_send_buffer: bytes queued for one client before it is cut off as
        too slow (its WebSocket write buffer or its polling queue).
    :param connect_timeout: seconds a session may stay open without its handler
        calling :meth:`connected`; ``None`` disables.
    :param upgrade_timeout: seconds for a probing WebSocket to finish the upgrade.
    :param max_connections: sessions open at once; new handshakes past it get 503.
    :param cors_allowed_origins: see :func:`origin_allowed`.
    :param allow_request: optional ``callable(tornado_request) -> bool`` run before a
        session is created; ``False`` refuses with 403.
    :param websocket_compression: enable ``permessage-deflate`` (off by default).
    """

    def __init__(
        self,
        handler: Any,
        *,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_http_buffer_size: int = 1_000_000,
        max_send_buffer: int = 4_000_000,
        connect_timeout: Optional[float] = 45.0,
        upgrade_timeout: float = 10.0,
        max_connections: Optional[int] = None,
        cors_allowed_origins: Origins = None,
        cors_credentials: bool = True,
        allow_request: Optional[Callable[[HTTPServerRequest], bool]] = None,
        websocket_compression: bool = False,
        allow_upgrades: bool = True,
        transports: Sequence[str] = ("polling", "websocket"),
    ) -> None:
        self.handler = handler
        self.ping_interval = float(ping_interval)
        self.ping_timeout = float(ping_timeout)
        self.max_http_buffer_size = int(max_http_buffer_size)
        self.max_send_buffer = int(max_send_buffer)
        self.connect_timeout = connect_timeout
        self.upgrade_timeout = float(upgrade_timeout)
        self.max_connections = max_connections
        self.cors_allowed_origins = cors_allowed_origins
        self.cors_credentials = cors_credentials
        self.allow_request = allow_request
        self.websocket_compression = websocket_compression
        self.allow_upgrades = allow_upgrades
        self.transports = tuple(transports)
        self.sessions: Dict[str, EngineSession] = {}
        #: How many connections are served beside this engine (the SockJS bridge
        #: sets it), so that ``max_connections`` bounds them all together.
        self.extra_connections: Callable[[], int] = _none
        self._sweeper: Optional[PeriodicCallback] = None

    # -- handshake -------------------------------------------------------

    def check_request(self, request: HTTPServerRequest, transport: str) -> Optional[eio.ErrorCode]:
        """Validate a new or continuing request's query; return an error code or None."""
        args = request.query_arguments
        if args.get("EIO", [b""])[-1] != b"4":
            return eio.ErrorCode.UNSUPPORTED_PROTOCOL_VERSION
        if transport not in self.transports:
            return eio.ErrorCode.UNKNOWN_TRANSPORT
        return None

    def permit(self, request: HTTPServerRequest, handshake: HandshakeRequest) -> bool:
        """Origin policy and the ``allow_request`` hook, before any session exists."""
        if not origin_allowed(self.cors_allowed_origins, handshake):
            log.info("refused %s from origin %r (not in cors_allowed_origins)",
                     handshake.remote_ip, handshake.origin)
            return False
        if self.allow_request is not None:
            try:
                if not self.allow_request(request):
                    log.info("refused %s by allow_request", handshake.remote_ip)
                    return False
            except Exception:
                log.exception("allow_request failed; refusing the request")
                return False
        return True

    def at_capacity(self) -> bool:
        """Whether ``max_connections`` sessions (with :attr:`extra_connections`) are open."""
        if self.max_connections is None:
            return False
        return len(self.sessions) + self.extra_connections() >= self.max_connections

    def open_session(self, handshake: HandshakeRequest, transport: str) -> Optional[EngineSession]:
        """Create a session and tell the handler; the caller sends :meth:`open_packet`.

        Returns None when the handler's ``on_open`` returned ``False`` (refused).
        """
        sid = secrets.token_urlsafe(15)
        session = EngineSession(self, sid, handshake, transport)
        self.sessions[sid] = session
        self._ensure_sweeper()
        if self.handler.on_open(session) is False:
            self._forget(session)
            return None
        return session

    def open_packet(self, session: EngineSession) -> str:
        upgrades = ["websocket"] if (session.transport == "polling" and self.allow_upgrades
                                     and "websocket" in self.transports) else []
        return "0" + eio.handshake_payload(
            session.sid, upgrades,
            int(round(self.ping_interval * 1000)), int(round(self.ping_timeout * 1000)),
            self.max_http_buffer_size,
        )

    def _forget(self, session: EngineSession) -> None:
        session.state = SessionState.CLOSED
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]

    # -- the sweep -------------------------------------------------------

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None:
            period = min(self.ping_interval, self.ping_timeout, self.upgrade_timeout) / 5.0
            period_ms = max(20.0, min(1000.0, period * 1000.0))
            self._sweeper = PeriodicCallback(self.sweep, period_ms)
            self._sweeper.start()

    def sweep(self) -> None:
        """Ping due sessions and close the silent and the late; one pass over all."""
        now = time.monotonic()
        for session in list(self.sessions.values()):
            try:
                self._sweep_one(session, now)
            except Exception:
                log.exception("heartbeat sweep failed for session %s", session.sid)

    def _sweep_one(self, session: EngineSession, now: float) -> None:
        if session.state == SessionState.CLOSING:
            if session.close_deadline is not None and now >= session.close_deadline:
                self._forget(session)
            return
        if session.upgrade_deadline is not None and now >= session.upgrade_deadline:
            log.info("session %s: upgrade did not complete in %.1fs", session.sid, self.upgrade_timeout)
            probe = session._probe_ws
            session.end_probe(probe)
            if probe is not None:
                probe.close_transport()
        if session.connect_deadline is not None and now >= session.connect_deadline:
            log.info("session %s: no namespace connected in %.1fs; closing", session.sid, self.connect_timeout)
            session.close("connect timeout")
            return
        if session.pong_deadline is not None:
            if now >= session.pong_deadline:
                log.info("session %s: no pong in %.3fs; closing", session.sid, self.ping_timeout)
                session.close("ping timeout", notify=False)
            return
        if now >= session.next_ping:
            session.pong_deadline = now + self.ping_timeout
            session.send_packet(_PING)

    def close_all(self, reason: str = "server shutting down") -> None:
        """Close every session (used by graceful shutdown)."""
        for session in list(self.sessions.values()):
            session.close(reason)

    def undelivered(self) -> int:
        """Sessions still holding packets for a polling client beyond the final CLOSE."""
        return sum(1 for s in self.sessions.values()
                   if s.state == SessionState.CLOSING and any(item != _CLOSE for item in s._queue))

    def stop(self) -> None:
        """Stop the sweep (after :meth:`close_all`)."""
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None

    # -- routes ----------------------------------------------------------

    def routes(self, path: str = "/engine.io") -> list:
        """Tornado rules for this endpoint: the WebSocket transport and long-polling."""
        from .transports import routes as transport_routes

        return transport_routes(self, path)
