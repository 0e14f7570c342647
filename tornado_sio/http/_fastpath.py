"""The one module on Tornado's and sockjs-tornado's private API.

Why it exists: two hot paths are much faster on Tornado's internals than on
its public API, and the SockJS fallback needs a few of sockjs-tornado's. All of
it is here, so that a Tornado upgrade is checked in one file:

* :func:`use_batched_reader`: a WebSocket frame reader built on the sans-I/O
  :class:`~tornado_sio.protocol.wsframe.FrameParser`. It parses every complete
  frame of a 64 KiB read (Tornado awaits three reads per frame and re-registers
  the socket after each message, about 45% of the CPU of an echo), applies
  every RFC 6455 rule with the right close code (Tornado drops most broken
  connections without one), and yields to the IOLoop per frame budget. It
  swaps the class of Tornado's ``WebSocketProtocol13`` object and overrides
  ``_receive_frame_loop``, using ``_abort``, ``_send_pong``, ``_run_callback``,
  ``_received_pong``, ``_wire_bytes_in``, ``_decompressor`` and Tornado's C
  masking function (``tornado.util._websocket_mask``).
  Since the owned connection (``http/owned.py``) carries plain WebSockets,
  this reader serves the connections that stay on Tornado's handler: TLS,
  ``websocket_owned=False`` (with permessage-deflate there, Tornado's own reader runs).
* :func:`buffered_input` (``IOStream._read_buffer``): the bytes a detached
  stream read past the upgrade request, handed to the owned connection.
* :func:`write_stream`: ready frame bytes straight to the socket when Tornado's
  write buffer (``stream._write_buffer``) is empty: no Future, buffer entry or
  callback per write, most of the cost of a broadcast to many clients.
* :func:`router_sessions`, :func:`expire_sessions`, :func:`stop_router_timers`:
  sockjs-tornado's session container and timers (``_sessions``, ``_items``,
  ``_sessions_cleanup``, ``stats._callback``), so that SockJS expiry runs on the
  engine's sweeper instead of two more timers;
  :func:`attach_sockjs_session` (``_attach_session``) and
  :func:`keep_response_open` (``RequestHandler._auto_finish``, what the
  deprecated ``@asynchronous`` sets) for the rewritten htmlfile ``get``.

The Tornado paths are used only on the versions they were tested with
(:data:`TESTED_TORNADO`, checked against ``tornado.version_info``). On any other
version Tornado's stock reader and ``IOStream.write`` are used, which is slower
but right, and that is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import Any

import tornado
from tornado.iostream import IOStream, StreamClosedError
from tornado.util import _websocket_mask, _websocket_mask_python
from tornado.websocket import WebSocketProtocol, WebSocketProtocol13

from ..protocol.wsframe import Close, Event, FrameParser, Message, Ping, Pong, WebSocketProtocolError

__all__ = [
    "TESTED_TORNADO",
    "C_UNMASK",
    "attach_sockjs_session",
    "buffered_input",
    "enabled",
    "expire_sessions",
    "keep_response_open",
    "router_sessions",
    "stop_router_timers",
    "use_batched_reader",
    "write_stream",
]

log = logging.getLogger("tornado_sio.http")

#: The Tornado versions the private paths were tested with: ``low <= version < high``.
TESTED_TORNADO: tuple[tuple[int, int, int], tuple[int, int, int]] = ((6, 5, 8), (6, 7, 0))

_READ_CHUNK = 65536
#: Tornado's fairness rule: yield to the IOLoop once a connection's work reaches
#: this many bytes, each frame counting _FRAME_COST bytes besides the bytes read.
_YIELD_THRESHOLD = 256 * 1024
_FRAME_COST = 1024
#: Tornado's C masking function (``tornado.speedups``) for the parser, when it is built:
#: 2x the parser's pure-Python one on small frames, 20x on 64 KiB. Tornado's own
#: pure-Python fallback is slower than the parser's, so then the parser uses its own.
_C_UNMASK = _websocket_mask if _websocket_mask is not _websocket_mask_python else None
#: The same, for the owned connection (``http/owned.py``): None when Tornado's C speedups are not built.
C_UNMASK = _C_UNMASK


def _version_ok() -> bool:
    low, high = TESTED_TORNADO
    return low <= tuple(tornado.version_info[:3]) < high


_ENABLED = _version_ok()
_warned = False


def enabled() -> bool:
    """Whether Tornado's private paths are in use (logged once when they are not)."""
    global _warned
    if not _ENABLED and not _warned:
        _warned = True
        low, high = TESTED_TORNADO
        log.warning("Tornado %s is outside the range tornado-sio was tested with (%s to before %s): "
                    "using Tornado's stock WebSocket reader and writer", tornado.version,
                    ".".join(map(str, low)), ".".join(map(str, high)))
    return _ENABLED


class _ParsedProtocol13(WebSocketProtocol13):
    """Tornado's protocol object, reading its frames with :class:`~tornado_sio.protocol.wsframe.FrameParser`.

    What changes against Tornado's reader (``_receive_frame_loop``):

    * Speed: each read of up to 64 KiB is parsed at once (Tornado awaits three
      reads per frame).
    * Strictness: every RFC 6455 rule of the parser applies: invalid close
      codes, a 1-byte close payload, unmasked frames, reserved bits, control
      frames with an extended length: close 1002; invalid UTF-8 at the
      fragment, or the part of a frame, where it appears (not when the message
      completes): 1007; a message (its fragments summed) over
      ``max_message_size``, refused at the frame header before its payload is
      buffered: 1009 with an empty reason, as Node's ``ws`` sends. Tornado drops
      the connection without a close frame for most of these and echoes any
      close code.
    * Fairness: the work for one connection is counted as Tornado counts it,
      1 KiB per frame plus the bytes read, and once it reaches 256 KiB the
      reader yields to the IOLoop, even in the middle of a buffer of frames
      (the parser's frame budget keeps the rest buffered). So one client
      flooding tiny frames is served at most 256 of them per turn of the loop.

    What stays Tornado's: the handler's ``on_message`` (awaited when it returns
    an awaitable), ``on_ping`` and ``on_pong``; the pong written by
    ``_send_pong`` (at most one outstanding); ``close()`` for every close frame
    and its bookkeeping (``close_code``, ``close_reason``, the ping timer, the
    5 s wait for the client's close); ``on_ws_connection_close`` at the end.
    A client's close frame is echoed (its code, or an empty close) and the TCP
    connection closed at once, as Tornado does.

    When the parser fails the connection, the handler's
    ``websocket_failed(code, why)`` hook (if it has one) is told first, once;
    then the close frame is written, the sending side of a plain TCP
    connection shut down, and input discarded until the client closes or
    Tornado's 5 s close timeout ends it, so the client reads the close frame
    instead of a reset. Data messages arriving after the server's own close
    frame are dropped. With permessage-deflate negotiated, Tornado's reader
    runs unchanged (its 1009, still reported to the hook, has an empty reason
    too).
    """

    async def _receive_frame_loop(self) -> None:
        if self._decompressor is not None:
            await super()._receive_frame_loop()
            return
        try:
            await self._read_frames()
        except StreamClosedError:
            self._abort()
        finally:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    async def _read_frames(self) -> None:
        """Read, parse and dispatch until the connection ends (fairness: see the class doc)."""
        stream = self.stream
        on_message = self.handler.on_message
        parser = FrameParser(self.params.max_message_size, unmask=_C_UNMASK)
        work = 0
        while not self.client_terminated:
            chunk = await stream.read_bytes(_READ_CHUNK, partial=True)
            self._wire_bytes_in += len(chunk)
            work += len(chunk)
            parser.feed(chunk)
            while True:
                # The frames that take the work to the threshold (at least one).
                allowed = max(1, (_YIELD_THRESHOLD - work + _FRAME_COST - 1) // _FRAME_COST)
                before = parser.frames_parsed
                try:
                    for event in parser.events(allowed):
                        if type(event) is Message:
                            if self.server_terminated:
                                continue  # we closed: the client's data is not wanted any more
                            try:
                                result = on_message(event.data)
                            except (Exception, asyncio.CancelledError):  # noqa: BLE001 - as Tornado's _run_callback
                                self.handler.log_exception(*sys.exc_info())
                                self._abort()
                                return
                            if result is not None:
                                await self._finish_callback(result)
                            if self.client_terminated:
                                return
                        elif not await self._on_control(event):
                            return
                except WebSocketProtocolError as exc:
                    failure: WebSocketProtocolError | None = exc
                else:
                    failure = None
                if failure is not None:
                    await self._fail(failure)
                    return
                done = parser.frames_parsed - before
                work += done * _FRAME_COST
                if work >= _YIELD_THRESHOLD:
                    work = 0
                    await asyncio.sleep(0)
                    if self.client_terminated:
                        return
                if done < allowed:
                    break  # no complete frame left: read more

    async def _finish_callback(self, result: Any) -> None:
        """Await what ``on_message`` returned, as Tornado does; an exception is logged and aborts."""
        try:
            await result
        except asyncio.CancelledError:
            self._abort()
            raise  # cancellation is never swallowed
        except Exception:  # noqa: BLE001 - logged, as Tornado's _run_callback
            self.handler.log_exception(*sys.exc_info())
            self._abort()

    async def _on_control(self, event: Event) -> bool:
        """Handle a ping, pong or close as Tornado does; False when reading must stop."""
        if isinstance(event, Ping):
            send_pong = getattr(self, "_send_pong", None)  # Tornado >= 6.6: one pong outstanding at most
            if send_pong is not None:
                send_pong(event.data)
            else:  # Tornado 6.5, as its own reader does
                try:
                    self._write_frame(True, 0xA, event.data)
                except StreamClosedError:
                    self._abort()
                    return False
            self._run_callback(self.handler.on_ping, event.data)
        elif isinstance(event, Pong):
            self._received_pong = True
            result = self._run_callback(self.handler.on_pong, event.data)
            if result is not None:
                await result
        elif isinstance(event, Close):
            self.client_terminated = True
            self.close_code = event.code
            self.close_reason = event.reason or None
            self.close(event.code)  # the echo (an empty close for an empty one); then the TCP close
            return False
        return not self.client_terminated

    async def _fail(self, error: WebSocketProtocolError) -> None:
        """Fail the connection with *error*'s close code (RFC 6455 7.1.7), then wait for the client to go."""
        if self.server_terminated:
            self._abort()  # our close frame is out already: nothing more to say
            return
        hook = getattr(self.handler, "websocket_failed", None)
        if hook is not None:
            hook(error.code, str(error))
        super().close(error.code, error.reason or None)
        stream = self.stream
        if type(stream) is IOStream and not stream.closed() and not stream.writing():
            try:
                stream.socket.shutdown(socket.SHUT_WR)  # the close frame, then FIN: no reset
            except OSError:
                pass
        while True:  # until the client's EOF or Tornado's 5 s abort (StreamClosedError)
            await stream.read_bytes(_READ_CHUNK, partial=True)
            await asyncio.sleep(0)  # a read of buffered bytes does not yield by itself

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        # Tornado's own 1009 (its reader runs with permessage-deflate): tell the hook, send no reason.
        if (code == 1009 and self._decompressor is not None and not self.server_terminated
                and not self.client_terminated):
            hook = getattr(self.handler, "websocket_failed", None)
            if hook is not None:
                hook(code, reason or "message too big")
            reason = None
        super().close(code, reason)


def use_batched_reader(protocol: WebSocketProtocol | None) -> None:
    """Give Tornado's ``WebSocketProtocol13`` object the parsing reader (on tested versions)."""
    if type(protocol) is WebSocketProtocol13 and enabled():
        protocol.__class__ = _ParsedProtocol13


def write_stream(stream: Any, data: bytes) -> None:
    """Write *data* to an ``IOStream``: straight to the socket when nothing is buffered.

    What the kernel does not take, every write on a TLS stream, and every write
    on an untested Tornado go through ``IOStream.write`` as usual, so ordering
    and the ``max_write_buffer_size`` bound hold. Raises what ``IOStream.write``
    raises (``StreamBufferFullError``, ``StreamClosedError``).
    """
    if _ENABLED and type(stream) is IOStream and not stream._write_buffer:
        try:
            sent = stream.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # let IOStream.write meet the error and close the stream its way
        if sent == len(data):
            return
        data = data[sent:]
    stream.write(data)


def buffered_input(stream: Any) -> bytes:
    """The bytes a detached ``IOStream`` read past the request head and holds unread (``_read_buffer``).

    A conforming client sends nothing before the 101 (RFC 6455 4.1), so this is
    almost always empty; the owned WebSocket connection parses what is there
    as Tornado's reader would. Only called on the tested Tornado versions (the
    owned path is not taken on others).
    """
    size = getattr(stream, "_read_buffer_size", 0)
    return bytes(stream._read_buffer[:size]) if size else b""


def router_sessions(router: Any) -> dict[str, Any]:
    """The sessions of a ``SockJSRouter``, by SockJS session id (read-only use)."""
    sessions = getattr(router, "_sessions", None)
    items = getattr(sessions, "_items", None)
    return items if isinstance(items, dict) else {}


def expire_sessions(router: Any) -> None:
    """Expire the SockJS sessions whose ``disconnect_delay`` passed (sockjs-tornado's own rule)."""
    router._sessions.expire()


def stop_router_timers(router: Any) -> None:
    """Stop the two timers a ``SockJSRouter`` starts (session expiry, statistics)."""
    router._sessions_cleanup.stop()
    router.stats._callback.stop()


def attach_sockjs_session(handler: Any, session_id: str) -> bool:
    """Attach a sockjs-tornado transport handler to its session (creating it); False if refused."""
    return bool(handler._attach_session(session_id))


def keep_response_open(handler: Any) -> None:
    """Tell Tornado not to finish *handler*'s response when its method returns (streaming)."""
    handler._auto_finish = False
