"""The owned WebSocket connection: tornado-sio's own reader and writer after the 101.

Why: Tornado's ``WebSocketHandler`` keeps, for every idle client, the handler,
its request, an ``IOStream`` with its buffers and futures, and a protocol
object, and it runs each read through a Future and a coroutine. Once the
handshake is accepted none of that is needed: the connection is an RFC 6455
byte stream that the sans-I/O :class:`~tornado_sio.protocol.wsframe.FrameParser`
reads and that takes ready frame bytes.

How a connection moves here (public API only, in :func:`take_over` and :func:`adopt`):

1. Tornado parses the request and the handler runs every check as before
   (query, origin, ``allow_request``, capacity, a known sid), all before the
   101; :func:`handshake_refusal` checks the ``Upgrade``, ``Connection`` and
   ``Sec-WebSocket-*`` headers as Tornado's ``WebSocketHandler`` does.
2. ``RequestHandler.detach()`` stops Tornado's HTTP processing and returns the
   ``IOStream``. Its socket is duplicated and the stream closed, so Tornado
   forgets it without sending a FIN (the duplicate keeps the connection open),
   and the duplicate goes to asyncio's ``loop.connect_accepted_socket`` (the
   default loop and uvloop both have it).
3. :class:`EngineWebSocket`, an ``asyncio.BufferedProtocol``, writes the 101 and then
   carries the Engine.IO session as its
   :class:`~tornado_sio.engine.transport.FrameWriter`.

When a connection stays on Tornado's stock path instead (logged once per
cause): ``websocket_owned=False``; TLS terminated by Tornado (an
``SSLIOStream``); a Tornado outside the range ``_fastpath`` was tested with
(it reads the bytes Tornado buffered after the request head).

permessage-deflate (``websocket_compression=True`` and offered by the client,
:func:`negotiate_deflate`): the answer always says
``server_no_context_takeover``, so a message compresses to the same bytes for
every client (``Prepared.ws_frames_deflated``, built once per broadcast;
``emit(..., compress=False)`` sends it plain); the client's messages are
inflated by the parser's :class:`~tornado_sio.protocol.wsframe.Inflater`,
bounded by ``max_http_buffer_size``.

What :class:`OwnedWebSocket` does, per RFC 6455:

* Reading: asyncio reads into one buffer shared by every connection of the
  process (no per-read 256 KiB allocation, no buffer held while idle), and
  every complete frame of each chunk is parsed; the work is counted
  as Tornado counts it (1 KiB per frame plus the bytes read) and once it
  reaches 256 KiB the connection stops reading and continues on the next turn
  of the loop, so a client flooding tiny frames cannot hold the loop.
  ``max_http_buffer_size`` is applied at the frame header (1009, no reason).
* Control frames: a ping is answered with a pong of the same payload; a pong
  is accepted (Engine.IO has its own heartbeat); a client's close is echoed
  (its code, or an empty close) and the TCP connection closed at once.
* Failures: an RFC 6455 breach closes with the parser's code (1002, 1007,
  1009), the sending side is shut down after the close frame (so the client
  reads it rather than a reset), and input is discarded until the client goes
  or :data:`CLOSE_WAIT` seconds pass.
* Closing from the server: an empty close frame, then :data:`CLOSE_WAIT`
  seconds for the client's close before the TCP connection is dropped (a
  timer exists only while a connection closes).
* Writing: one ``transport.write`` of ready frame bytes per recipient; the
  bytes the kernel did not take are asyncio's write buffer, which is bounded
  by ``max_send_buffer`` (a client past it is dropped) and tells
  ``write_pending`` (a ``volatile`` emit is dropped while anything waits).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tornado.iostream import IOStream

from ..engine.connection import HandshakeRequest
from ..engine.stats import EngineStats
from ..exceptions import ProtocolError
from ..protocol import engineio as eio
from ..protocol.wsframe import (
    Close,
    FrameParser,
    Inflater,
    Message,
    Ping,
    WebSocketProtocolError,
    build_close,
    build_pong,
)
from ._fastpath import C_UNMASK, buffered_input
from ._fastpath import enabled as private_paths_enabled

if TYPE_CHECKING:
    from tornado.web import RequestHandler

    from ..engine.server import EngineServer
    from ..engine.session import EngineSession
    from ..options import Options

__all__ = [
    "CLOSE_WAIT",
    "EngineWebSocket",
    "OwnedWebSocket",
    "accept_key",
    "adopt",
    "handshake_refusal",
    "negotiate_deflate",
    "owned_path_refusal",
    "switching_protocols",
    "take_over",
]

log = logging.getLogger("tornado_sio.http")

#: Seconds to wait for the client's close frame (or EOF) after the server's close, as Tornado waits.
CLOSE_WAIT = 5.0

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SUPPORTED_VERSIONS = ("7", "8", "13")  # as Tornado's WebSocketHandler
_EMPTY_CLOSE = build_close(None)
# Counters for a connection not started yet (shared: no object per connection).
_UNCOUNTED = EngineStats()

# One read buffer for every owned connection of the process: asyncio reads into it
# (BufferedProtocol.get_buffer) and the bytes are handed to the parser at once, in the same
# callback, so no connection holds a buffer while idle. Plain ``data_received`` would make
# asyncio allocate (and often mmap) a 256 KiB bytes object for every read.
_READ_BUFFER = memoryview(bytearray(256 * 1024))


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key`` (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + _GUID).digest()).decode("ascii")


def handshake_refusal(headers: Any) -> tuple[int, str, dict[str, str]] | None:
    """Why an upgrade request's headers cannot open a WebSocket: ``(status, message, headers)``, or None.

    The same checks and answers as Tornado's ``WebSocketHandler``: 400 unless
    ``Upgrade: websocket`` and a ``Connection`` listing ``upgrade``; 426 with
    ``Sec-WebSocket-Version`` for a version other than 7, 8 or 13; 400 when
    ``Host`` or ``Sec-WebSocket-Key`` is missing.
    """
    if headers.get("Upgrade", "").lower() != "websocket":
        return 400, 'Can "Upgrade" only to "WebSocket".', {}
    tokens = [token.strip().lower() for token in headers.get("Connection", "").split(",")]
    if "upgrade" not in tokens:
        return 400, '"Connection" must be "Upgrade".', {}
    if headers.get("Sec-WebSocket-Version") not in _SUPPORTED_VERSIONS:
        return 426, "Upgrade Required", {"Sec-WebSocket-Version": "7, 8, 13"}
    if not headers.get("Host") or not headers.get("Sec-WebSocket-Key"):
        return 400, "Missing/Invalid WebSocket headers", {}
    return None


def switching_protocols(key: str, extra: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    """The whole ``101 Switching Protocols`` response head accepting *key*, with *extra* headers."""
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Accept: {accept_key(key)}"]
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_DEFLATE_PARAMS = frozenset({"server_no_context_takeover", "client_no_context_takeover",
                             "server_max_window_bits", "client_max_window_bits"})
_WINDOW_BITS = frozenset(str(bits) for bits in range(8, 16))


def negotiate_deflate(offers: str) -> tuple[str, bool] | None:
    """The answer to a client's permessage-deflate offers (RFC 7692), or None to decline them all.

    *offers* is the ``Sec-WebSocket-Extensions`` header. The first offer this
    server can honour wins; returned with whether the client promised
    ``client_no_context_takeover``. The answer always says
    ``server_no_context_takeover``: each message is compressed on its own, so
    a broadcast compresses once for every client. An offer with an unknown or
    repeated parameter, a bad value, or a ``server_max_window_bits`` below 15
    is declined (the inflater takes any client window up to 15).
    """
    for offer in offers.split(","):
        name, *raw = (part.strip() for part in offer.split(";"))
        if name.lower() != "permessage-deflate":
            continue
        params: dict[str, str] = {}
        for item in raw:
            key, has_value, value = item.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if not key or key in params or key not in _DEFLATE_PARAMS:
                break
            if key.endswith("context_takeover") and has_value:
                break
            if key == "client_max_window_bits" and has_value and value not in _WINDOW_BITS:
                break
            if key == "server_max_window_bits" and value != "15":
                break
            params[key] = value
        else:
            answer = "permessage-deflate; server_no_context_takeover"
            if "server_max_window_bits" in params:
                answer += "; server_max_window_bits=15"
            client_no_context_takeover = "client_no_context_takeover" in params
            if client_no_context_takeover:
                answer += "; client_no_context_takeover"
            return answer, client_no_context_takeover
    return None


_fallbacks_logged: set[str] = set()


def owned_path_refusal(handler: RequestHandler, options: Options) -> str | None:
    """Why this upgrade stays on Tornado's stock WebSocket path, or None to own it (logged once per cause)."""
    why: str | None = None
    if not options.websocket_owned:
        return "websocket_owned is off"
    stream = getattr(handler.request.connection, "stream", None)
    if type(stream) is not IOStream:
        why = "a TLS stream (or not a plain IOStream)"
    elif not private_paths_enabled():
        why = "a Tornado outside the tested range"
    if why is not None and why not in _fallbacks_logged:
        _fallbacks_logged.add(why)
        log.info("WebSocket on Tornado's stock path, not the owned connection: %s (logged once)", why)
    return why


class OwnedWebSocket(asyncio.BufferedProtocol):
    """An RFC 6455 server connection on an asyncio transport (see the module doc).

    Subclasses override :meth:`on_message`, :meth:`on_failed`, :meth:`on_closed`
    and :meth:`on_overflow`; :meth:`send` writes ready frame bytes and
    :meth:`close` starts the closing handshake. Bytes written before the
    transport exists (the 101, then what the session sends while it opens) go
    out together in :meth:`connection_made`. Fairness: :attr:`yield_threshold`
    and :attr:`frame_cost` (Tornado's figures).
    """

    __slots__ = ("transport", "parser", "deflate", "server_closed", "client_closed", "lost", "failed",
                 "max_send_buffer", "_loop", "_timer", "_resume", "_head", "_leftover")

    #: Work (bytes read, plus :attr:`frame_cost` per frame) after which reading yields to the loop.
    yield_threshold = 256 * 1024
    #: What one frame counts toward :attr:`yield_threshold`.
    frame_cost = 1024

    def __init__(self, max_message_size: int, max_send_buffer: int, head: bytes = b"",
                 leftover: bytes = b"", inflater: Inflater | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = FrameParser(max_message_size, unmask=C_UNMASK, inflater=inflater)
        #: permessage-deflate was negotiated: the client's compressed messages are inflated
        #: (by *inflater*), and the session writes ``Prepared.ws_frames_deflated``.
        self.deflate = inflater is not None
        #: The server's close frame is out (data messages from then on are dropped).
        self.server_closed = False
        #: The client's close frame arrived, or its bytes ended.
        self.client_closed = False
        #: The TCP connection is gone (``on_closed`` ran).
        self.lost = False
        #: The connection was failed for an RFC 6455 breach.
        self.failed = False
        self.max_send_buffer = max_send_buffer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._resume: asyncio.Handle | None = None
        self._head: bytes | None = head or None
        self._leftover: bytes | None = leftover or None

    # -- hooks ------------------------------------------------------------

    def on_message(self, data: str | bytes) -> None:
        """A complete data message (``str`` for text, ``bytes`` for binary)."""

    def on_failed(self, code: int, why: str) -> None:
        """The client broke RFC 6455; the close frame with *code* follows (called once)."""

    def on_closed(self) -> None:
        """The TCP connection is gone (called once)."""

    def on_overflow(self) -> None:
        """More than ``max_send_buffer`` bytes wait for the client; it is dropped right after (called once)."""

    # -- asyncio.BufferedProtocol -------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_READ_BUFFER[:nbytes])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()
        head, self._head = self._head, None
        if head is not None:
            transport.write(head)  # type: ignore[attr-defined]  # the 101 and what was sent before now
        if self.server_closed:
            if self.client_closed:
                self._drop(graceful=True)
            else:
                self._arm_close_timer()
        leftover, self._leftover = self._leftover, None
        if leftover is not None and not self.lost:
            self.data_received(leftover)  # sent before the 101, against RFC 6455 4.1, but read as Tornado would

    def data_received(self, data: bytes | memoryview) -> None:
        """Bytes from the client (consumed before this returns: *data* may be the shared buffer)."""
        if self.client_closed or self.failed:
            return  # after a close or a failure the client's bytes are discarded
        try:
            self.parser.feed(data)
        except WebSocketProtocolError as exc:  # pragma: no cover - a dead parser is never fed
            self._fail(exc)
            return
        self._parse(len(data))

    def eof_received(self) -> bool | None:
        self.client_closed = True
        return None  # asyncio closes the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost:
            return
        self.lost = True
        self.client_closed = True
        for handle in (self._timer, self._resume):
            if handle is not None:
                handle.cancel()
        self._timer = self._resume = None
        self.on_closed()

    @property
    def resuming(self) -> bool:
        """Whether frames wait for the next turn of the loop (the fairness budget ran out; reading is paused)."""
        return self._resume is not None

    # -- reading ------------------------------------------------------------

    def _parse(self, work: int) -> None:
        """Handle the parsed frames until the work reaches :attr:`yield_threshold` (then resume next turn)."""
        parser = self.parser
        threshold, cost = self.yield_threshold, self.frame_cost
        allowed = max(1, (threshold - work + cost - 1) // cost)
        before = parser.frames_parsed
        try:
            for event in parser.events(allowed):
                if type(event) is Message:
                    if not self.server_closed:
                        self.on_message(event.data)
                elif not self._control(event):
                    return
                if self.lost or self.client_closed:
                    return
        except WebSocketProtocolError as exc:
            self._fail(exc)
            return
        if parser.frames_parsed - before >= allowed and parser.buffered and not self.lost:
            transport = self.transport
            if transport is not None and self._resume is None:
                transport.pause_reading()
                self._resume = self._loop.call_soon(self._continue)  # type: ignore[union-attr]

    def _continue(self) -> None:
        """The next turn after a yield: parse what is buffered, then read again."""
        self._resume = None
        if self.lost or self.client_closed or self.failed:
            return
        self._parse(0)
        transport = self.transport
        if self._resume is None and transport is not None and not self.lost and not self.client_closed:
            transport.resume_reading()

    def _control(self, event: Any) -> bool:
        """Answer a ping, accept a pong, echo a close; False when reading must stop."""
        if type(event) is Ping:
            if not self.server_closed:
                self._write(build_pong(event.data))
            return True
        if type(event) is Close:
            self.client_closed = True
            if not self.server_closed:
                self.server_closed = True
                self._write(_EMPTY_CLOSE if event.code is None else build_close(event.code))
            self._drop(graceful=True)
            return False
        return True  # a Pong

    def _fail(self, error: WebSocketProtocolError) -> None:
        """Fail the connection with *error*'s close code (RFC 6455 7.1.7), then wait for the client to go."""
        if self.failed or self.lost:
            return
        self.failed = True
        if self.server_closed:
            self._drop(graceful=False)  # our close frame is out already: nothing more to say
            return
        self.on_failed(error.code, str(error))
        self.server_closed = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._write(build_close(error.code, error.reason))
        if transport.can_write_eof():
            transport.write_eof()  # the close frame, then FIN: the client reads it, not a reset
        self._arm_close_timer()

    # -- writing and closing --------------------------------------------------

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None:
            self._head = data if self._head is None else self._head + data  # written by connection_made
        elif not self.lost and not transport.is_closing():
            transport.write(data)

    def send(self, data: bytes) -> bool:
        """Write ready frame bytes; False when closing or gone, or when the client is over ``max_send_buffer``.

        Over the bound :meth:`on_overflow` is called and the connection dropped at once.
        """
        transport = self.transport
        if self.server_closed or self.lost:
            return False
        if transport is None:  # not connected yet: sent with the 101
            self._head = data if self._head is None else self._head + data
            return True
        if transport.is_closing():
            return False
        transport.write(data)
        if transport.get_write_buffer_size() > self.max_send_buffer:
            self.on_overflow()
            transport.abort()
            return False
        return True

    def pending(self) -> bool:
        """Whether bytes of earlier writes still wait for the kernel (True once closing)."""
        transport = self.transport
        if self.server_closed or self.lost:
            return True
        if transport is None:
            return self._head is not None
        return transport.get_write_buffer_size() > 0

    def close(self, code: int | None = None, reason: str = "") -> None:
        """Start the closing handshake: a close frame (empty unless *code*), then wait for the client's."""
        if self.server_closed or self.lost:
            return
        self.server_closed = True
        self._write(_EMPTY_CLOSE if code is None else build_close(code, reason))
        if self.transport is None:
            return  # connection_made goes on from here
        if self.client_closed:
            self._drop(graceful=True)
        else:
            self._arm_close_timer()

    def _arm_close_timer(self) -> None:
        if self._timer is None and not self.lost and self._loop is not None:
            self._timer = self._loop.call_later(CLOSE_WAIT, self._drop, False)

    def _drop(self, graceful: bool) -> None:
        """Close the TCP connection: after what is buffered when *graceful*, else at once."""
        transport = self.transport
        if transport is None or self.lost:
            return
        if graceful:
            transport.close()
        else:
            transport.abort()


class EngineWebSocket(OwnedWebSocket):
    """An owned WebSocket carrying an Engine.IO session: the session's ``FrameWriter``.

    The same behaviour as :class:`~tornado_sio.http.websocket.EngineWebSocketHandler`
    on Tornado's path: a probe for an upgrade (``upgrade_of``) or a new session,
    a bad packet aborts the session (``parse error``), an RFC 6455 failure ends
    it with ``transport error``, a client not reading (``max_send_buffer``) too.
    """

    __slots__ = ("session", "upgrade_of", "close_reason", "stats")

    def __init__(self, options: Options, upgrade_of: EngineSession | None, head: bytes, leftover: bytes,
                 inflater: Inflater | None = None) -> None:
        super().__init__(options.max_http_buffer_size, options.max_send_buffer, head, leftover, inflater)
        #: The session this WebSocket carries (None while it only probes).
        self.session: EngineSession | None = None
        #: The polling session this WebSocket probes to upgrade.
        self.upgrade_of = upgrade_of
        #: The reason the session hears when this WebSocket closes.
        self.close_reason = "transport close"
        #: The engine's counters (set by :meth:`start`; :mod:`tornado_sio.engine.stats`).
        self.stats = _UNCOUNTED

    def __repr__(self) -> str:
        session = self.session or self.upgrade_of
        return f"<EngineWebSocket {session.sid if session is not None else '-'}>"

    def _sid(self) -> str:
        session = self.session or self.upgrade_of
        return session.sid if session is not None else "-"

    def start(self, engine: EngineServer, handshake: HandshakeRequest) -> None:
        """Open the session (or begin the probe) at once, in the handler, as Tornado's ``open`` does.

        Nothing is awaited between the handshake gate and this, so a burst of
        handshakes cannot pass ``max_connections``; what the session writes
        before the socket is connected goes out with the 101.
        """
        self.stats = engine.stats
        upgrade_of = self.upgrade_of
        if upgrade_of is not None:
            error = upgrade_of.begin_probe(self)
            if error is not None:
                log.info("session %s: websocket closed after its handshake: %s", upgrade_of.sid, error)
                self.upgrade_of = None
                self.close()
            return
        session = engine.open_session(handshake, "websocket", self)
        if session is None:
            self.close(4403, "refused")
            return
        self.session = session

    def on_message(self, data: str | bytes) -> None:
        self.stats.bytes_in += len(data)
        try:
            packet = eio.decode_packet(data)
            if self.session is not None:
                self.session.receive(packet)
            elif self.upgrade_of is not None and self.upgrade_of.probe_packet(self, packet):
                self.session, self.upgrade_of = self.upgrade_of, None
        except ProtocolError as exc:
            log.info("session %s: bad websocket packet (%s); closing", self._sid(), exc)
            if self.session is not None:
                self.session.abort("parse error")
            else:
                if self.upgrade_of is not None:
                    self.upgrade_of.end_probe(self)
                self.close()

    def on_failed(self, code: int, why: str) -> None:
        if code == 1009:
            log.info("session %s: websocket %s (max_http_buffer_size %d); closing with 1009",
                     self._sid(), why, self.parser_limit())
        else:
            log.info("session %s: websocket protocol error (%s); closing with %d", self._sid(), why, code)
        self.close_reason = "transport error"

    def parser_limit(self) -> int:
        """The largest message accepted (``max_http_buffer_size``), for the log line."""
        session = self.session or self.upgrade_of
        return session.engine.options.max_http_buffer_size if session is not None else -1

    def on_closed(self) -> None:
        if self.session is not None:
            self.session.transport_closed(self, self.close_reason)
        elif self.upgrade_of is not None:
            self.upgrade_of.end_probe(self)

    # -- FrameWriter -----------------------------------------------------

    def on_overflow(self) -> None:
        self.stats.overflowed(1)
        self.stats.warn_once(log, "websocket-overflow", "session %s: websocket send buffer over %d bytes "
                             "(client not reading); closing (later ones at DEBUG)", self._sid(), self.max_send_buffer)

    def write_frames(self, data: bytes) -> bool:
        """Write ready frame bytes; False when the client is gone or not reading (then it is closed)."""
        if self.send(data):
            return True
        return False

    def write_pending(self) -> bool:
        """Whether bytes of earlier writes still wait in the send buffer (True once closing)."""
        return self.pending()

    def close_transport(self) -> None:
        """Close the WebSocket (a close frame, then the TCP connection)."""
        self.close()


async def take_over(handler: RequestHandler, engine: EngineServer, handshake: HandshakeRequest,
                    upgrade_of: EngineSession | None, extra_headers: list[tuple[str, str]]) -> bool:
    """Move an accepted upgrade request's connection to an :class:`EngineWebSocket`.

    Every Engine.IO check has passed; :func:`adopt` checks the WebSocket headers
    (a bad one is answered as Tornado answers it, and False returned) and hands
    the socket to the session's connection with the 101 ready to write.
    """
    def connection(head: bytes, leftover: bytes, inflater: Inflater | None) -> EngineWebSocket:
        owned = EngineWebSocket(engine.options, upgrade_of, head, leftover, inflater)
        owned.start(engine, handshake)
        return owned

    return await adopt(handler, connection, engine.options.websocket_compression, extra_headers)


async def adopt(handler: RequestHandler, connection: Callable[[bytes, bytes, Inflater | None], OwnedWebSocket],
                compression: bool, extra_headers: Sequence[tuple[str, str]] = ()) -> bool:
    """Take an upgrade request's connection from Tornado and give it to ``connection(head, leftover, inflater)``.

    The take-over of :func:`take_over`, for any :class:`OwnedWebSocket`
    (``tools/autobahn.py`` runs its echo testee through it). The WebSocket
    headers are checked (a bad one is answered as Tornado answers it, and
    False returned); with *compression*, a permessage-deflate offer is
    answered (:func:`negotiate_deflate`) and *inflater* is set. *head* is the
    101 to write first and *leftover* what the client sent after its request;
    the factory is not called when the client is gone before the take-over.
    """
    refusal = handshake_refusal(handler.request.headers)
    if refusal is not None:
        status, message, headers = refusal
        handler.set_status(status)
        for name, value in headers.items():
            handler.set_header(name, value)
        log.info("%s %s from %s: %s", handler.request.method, handler.request.uri, handler.request.remote_ip,
                 message)
        handler.finish(message)
        return False
    inflater: Inflater | None = None
    extra_headers = list(extra_headers)
    if compression:
        agreed = negotiate_deflate(handler.request.headers.get("Sec-WebSocket-Extensions", ""))
        if agreed is not None:
            response, client_no_context_takeover = agreed
            extra_headers.append(("Sec-WebSocket-Extensions", response))
            inflater = Inflater(client_no_context_takeover)
    head = switching_protocols(handler.request.headers["Sec-WebSocket-Key"], extra_headers)
    handler.set_status(101)
    handler.application.log_request(handler)  # the access log line Tornado writes for its own 101
    remote_ip = handler.request.remote_ip
    stream = handler.detach()
    leftover = buffered_input(stream)
    # The request stays the handshake summary (``request.tornado_request``); its links to
    # Tornado's connection objects (the stream, its buffers, futures) are all that goes.
    handler.request.connection = None
    handler.request.server_connection = None
    try:
        sock = stream.socket.dup()
    except (OSError, AttributeError):  # the client is gone already (the stream has no socket)
        stream.close()
        return True
    stream.close()  # Tornado forgets it; the duplicate keeps the connection open (no FIN)
    sock.setblocking(False)
    owned = connection(head, leftover, inflater)
    try:
        await asyncio.get_running_loop().connect_accepted_socket(lambda: owned, sock=sock)
    except OSError as exc:
        log.info("websocket from %s lost while taking it over: %s", remote_ip, exc)
        sock.close()
        owned.connection_lost(exc)
    return True
