"""An Engine.IO v4 session: its state machine, outgoing queue, heartbeat and upgrade.

Everything that changes a session's state lives in this module, and every
change goes through :meth:`EngineSession._move`, checked against
:data:`TRANSITIONS`: an illegal move raises :class:`IllegalTransition` at once
instead of leaving a stray flag behind.

The session is transport-agnostic. It reaches the client through at most one
:class:`~tornado_sio.engine.transport.FrameWriter` (the WebSocket carrying it),
or through the pending long-polling GET (a
:class:`~tornado_sio.engine.transport.PollWaiter`) and a queue the next GET
collects; a second ``FrameWriter`` may probe an upgrade.

How a session ends, following Node's engine.io (``socket.ts``, ``polling.ts``):

* ``close(reason)``, the server's decision (``server disconnect``, shutdown,
  ``connect timeout``, a client not reading): on WebSocket a CLOSE packet is
  written and the connection closed; on polling the pending GET gets what is
  queued and CLOSE, or, with no GET pending, the session stays CLOSING until
  the next GET collects what is queued and the one after it CLOSE (or
  ``ping_timeout`` passes), as Node's
  ``socket.close()`` waits for the buffer to drain. The session is then unknown.
* ``abort(reason)``, a failure (an invalid packet, a missed pong, an
  overlapping GET): the session is unknown at once; a pending GET gets CLOSE,
  anything queued is dropped.
* a CLOSE packet from the client: the pending GET gets NOOP (``6``), the
  session is unknown at once (reason ``transport close``).
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from ..exceptions import ProtocolError
from ..logs import connection_event
from ..protocol import engineio as eio
from ..protocol.outgoing import Item, Prepared, raw_binary, raw_text
from ..protocol.wsframe import OP_BINARY, OP_TEXT, build_frame
from .connection import HandshakeRequest
from .transport import FrameWriter, PollWaiter

if TYPE_CHECKING:
    from .server import EngineServer

__all__ = ["TRANSITIONS", "EngineSession", "IllegalTransition", "SessionState"]

log = logging.getLogger("tornado_sio.engine")


class SessionState(enum.IntEnum):
    """Life cycle of an Engine.IO session."""

    #: Created; the handler's ``connection_opened`` has not accepted it yet.
    OPENING = 0
    #: Accepted: messages flow.
    OPEN = 1
    #: A WebSocket probe was answered (``3probe``); the client will send UPGRADE.
    UPGRADING = 2
    #: Closed by the server on polling; the next GET collects the queue and CLOSE.
    CLOSING = 3
    #: Gone: the engine no longer knows the sid.
    CLOSED = 4


_S = SessionState

#: Every legal move, from each state. Anything else raises :class:`IllegalTransition`.
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    _S.OPENING: frozenset({_S.OPEN, _S.CLOSED}),
    _S.OPEN: frozenset({_S.UPGRADING, _S.CLOSING, _S.CLOSED}),
    _S.UPGRADING: frozenset({_S.OPEN, _S.CLOSING, _S.CLOSED}),
    _S.CLOSING: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
}

_OPENING, _OPEN, _UPGRADING, _CLOSING, _CLOSED = _S.OPENING, _S.OPEN, _S.UPGRADING, _S.CLOSING, _S.CLOSED
_PING_FRAME = build_frame(eio.PING.encode(), OP_TEXT)
_CLOSE_FRAME = build_frame(eio.CLOSE.encode(), OP_TEXT)
_PROBE_PONG_FRAME = build_frame(eio.PROBE_PONG.encode(), OP_TEXT)


class IllegalTransition(RuntimeError):
    """A session was asked to move between two states the table does not link (a bug)."""


def _write(engine: EngineServer, wire: FrameWriter, frames: bytes) -> bool:
    """Write control or handshake *frames* to *wire*, counted in the engine's ``bytes_out``
    (messages are counted where they are sent, in ``send_message``)."""
    engine.stats.bytes_out += len(frames)
    return wire.write_frames(frames)


def _frame_of(item: Item) -> bytes:
    """One queued Engine.IO packet as a WebSocket frame."""
    if isinstance(item, bytes):
        return build_frame(item, OP_BINARY)
    return build_frame(item.encode("utf-8"), OP_TEXT)


class _Session:
    """What an :class:`EngineSession` is without its clock: state, queue, transports, upgrade.

    The base of :class:`EngineSession` only (two classes, each under the size
    rule); every instance is an ``EngineSession``.
    """

    # Every slot is paid by every idle client: keep the list short. The queue is
    # None while empty (most of the time); upgrade and close deadlines are None
    # outside an upgrade or a polling close.
    __slots__ = (
        "_poll",
        "_probe",
        "_queue",
        "_queued_bytes",
        "_state",
        "_wire",
        "close_deadline",
        "connect_deadline",
        "data",
        "engine",
        "next_ping",
        "pong_deadline",
        "request",
        "sid",
        "transport",
        "upgrade_deadline",
        "wheel_slot",
    )

    def __init__(self, engine: EngineServer, sid: str, request: HandshakeRequest, transport: str,
                 wire: FrameWriter | None = None) -> None:
        options = engine.options
        self.engine = engine
        self.sid = sid
        self.request = request
        self.data: Any = None
        #: ``polling`` or ``websocket``: the transport now carrying the session.
        self.transport = transport
        self._state = _OPENING
        # None while empty, which it almost always is (an empty list is 56 B and a
        # GC-tracked object, an empty deque ~700 B).
        self._queue: list[Item] | None = None
        self._queued_bytes = 0
        self._poll: PollWaiter | None = None
        # The WebSocket of a websocket session is known from the start, so that
        # what the handler sends while accepting follows the OPEN packet on it.
        self._wire: FrameWriter | None = wire
        self._probe: FrameWriter | None = None
        #: The slot of the engine's timing wheel this session waits in (-1: none).
        self.wheel_slot = -1
        now = engine.clock()
        # The first ping comes after a random quarter to whole interval: the
        # pings of clients that connected in a burst are spread over the
        # interval from the start (every later one is a whole interval apart).
        self.next_ping = now + options.ping_interval * (0.25 + 0.75 * random.random())
        self.pong_deadline: float | None = None
        timeout = options.connect_timeout
        self.connect_deadline: float | None = now + timeout if timeout else None
        self.upgrade_deadline: float | None = None
        self.close_deadline: float | None = None

    def __repr__(self) -> str:
        return f"<EngineSession {self.sid} {self.transport} {self._state.name}>"

    # -- state ---------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The current :class:`SessionState` (read-only: moves go through the table)."""
        return self._state

    def _move(self, new: SessionState) -> None:
        """The one place a state changes; raises :class:`IllegalTransition` for a move not in the table."""
        if new not in TRANSITIONS[self._state]:
            raise IllegalTransition(f"session {self.sid}: {self._state.name} -> {new.name} is not a legal move")
        self._state = new

    @property
    def closed(self) -> bool:
        """Whether the session is closing or closed (it sends and accepts nothing more)."""
        return self._state >= _CLOSING

    @property
    def polling(self) -> bool:
        """Whether a long-polling GET is waiting for packets."""
        return self._poll is not None

    @property
    def writable(self) -> bool:
        """Whether a packet sent now would go out at once (what a ``volatile`` emit needs):
        open, and on WebSocket nothing still buffered from earlier writes, on polling a
        GET pending. Not during an upgrade (packets are queued then)."""
        if self._state is not _OPEN:
            return False
        wire = self._wire
        if wire is not None:
            pending = getattr(wire, "write_pending", None)  # a FrameWriter may not tell
            return not (pending is not None and pending())
        return self._poll is not None

    # -- the handler's view --------------------------------------------------

    def send_message(self, prepared: Prepared) -> None:
        """Send a prepared message (an Engine.IO MESSAGE and its attachments); ignored once closed."""
        state = self._state
        if state is _OPEN:
            wire = self._wire
            if wire is not None:
                # permessage-deflate where the owned connection negotiated it (FrameWriter.deflate)
                deflate = getattr(wire, "deflate", False)
                frames = prepared.ws_frames_deflated if deflate and prepared.compress else prepared.ws_frames
                stats = self.engine.stats
                stats.messages_out += 1
                stats.bytes_out += len(frames)
                if prepared.attachments:  # each a binary MESSAGE of its own
                    stats.messages_out += len(prepared.attachments)
                if not wire.write_frames(frames):
                    self.abort("transport error")
                return
        elif state >= _CLOSING:
            return
        items = prepared.eio_items
        self.engine.stats.messages_out += len(items)
        self._enqueue(items)

    def send_text(self, text: str) -> None:
        """Send one text MESSAGE (raw Engine.IO use)."""
        self.send_message(raw_text(text))

    def send_binary(self, data: bytes) -> None:
        """Send one binary MESSAGE (raw Engine.IO use)."""
        self.send_message(raw_binary(bytes(data)))

    def close(self, reason: str = "server disconnect") -> None:
        """Close the session once, on the server's decision; the handler's ``connection_closed`` follows.

        On polling, packets still queued are delivered with a CLOSE packet on the
        pending GET, or on the next one, so a graceful close loses nothing.
        """
        state = self._state
        if state >= _CLOSING:
            return
        self._close_probe()
        wire = self._wire
        if wire is not None:
            self._wire = None
            if state is not _OPENING:
                _write(self.engine, wire, _CLOSE_FRAME)
            wire.close_transport()
            self._forget()
        else:
            poll, self._poll = self._poll, None
            if poll is not None or state is _OPENING:
                if poll is not None:
                    poll.deliver(self._drain() + [eio.CLOSE])
                self._forget()
            else:
                self._push(eio.CLOSE)
                self._move(_CLOSING)
                self.close_deadline = self.engine.clock() + self.engine.options.ping_timeout
                self.engine.wake(cast("EngineSession", self))
        self._tell_closed(reason)

    def abort(self, reason: str) -> None:
        """Drop the session at once after a failure (invalid packet, missed pong, overlapping GET).

        The sid is unknown from now on. A pending GET gets CLOSE; what was queued
        is dropped; a WebSocket is closed without a CLOSE packet.
        """
        if self._state >= _CLOSING:
            return
        self._close_probe()
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close_transport()
        poll, self._poll = self._poll, None
        if poll is not None:
            poll.deliver([eio.CLOSE])
        self._drain()
        self._forget()
        self._tell_closed(reason)

    # -- engine side -----------------------------------------------------------

    def opened(self, handshake: str) -> None:
        """The handler accepted the session.

        On WebSocket the OPEN packet *handshake* is written first, then what the
        handler sent while accepting. On polling the caller answers the handshake
        GET with *handshake*; anything queued waits for the next GET.
        """
        self._move(_OPEN)
        wire = self._wire
        if wire is not None:
            frames = _frame_of(handshake) + b"".join(_frame_of(item) for item in self._drain())
            if not _write(self.engine, wire, frames):
                self.abort("transport error")

    def refused(self) -> None:
        """The handler refused the session while opening: forget it without telling the handler."""
        self._forget()

    def next_due(self) -> float | None:
        """When :meth:`sweep` next has something to do (None: nothing, until something changes)."""
        state = self._state
        if state is _CLOSING:
            return self.close_deadline
        if state is _OPENING or state is _CLOSED:
            return None
        due = self.pong_deadline if self.pong_deadline is not None else self.next_ping
        for deadline in (self.connect_deadline, self.upgrade_deadline):
            if deadline is not None and deadline < due:
                due = deadline
        return due

    # -- receiving ---------------------------------------------------------

    def _client_closed(self) -> None:
        """The client sent CLOSE: a pending GET ends with NOOP (as in Node) and the session is gone."""
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close_transport()
        self._close_probe()
        poll, self._poll = self._poll, None
        if poll is not None:
            poll.deliver([eio.NOOP])
        self._drain()
        self._forget()
        self._tell_closed("transport close")

    # -- polling -------------------------------------------------------------

    def attach_poll(self, waiter: PollWaiter) -> str | None:
        """A polling GET arrived. Return an error (the caller answers 400), or None.

        The waiter's ``deliver(items)`` is called once: now when packets are
        queued, else when the first one is. An overlapping GET aborts the session
        (``transport error``; the first GET gets CLOSE), as the spec requires.
        """
        if self._wire is not None or self.transport != "polling":
            return "polling request on an upgraded session"
        if self._poll is not None:
            self.abort("transport error")
            return "overlapping polling GET; session closed"
        if self._state is _CLOSING:
            items = self._drain()
            if len(items) > 1 and items[-1] == eio.CLOSE:
                # What was queued goes out first and CLOSE on the next GET, as Node's
                # socket.close() drains its buffer before closing: a client that sees
                # both in one payload may close before it handles the packets
                # (socket.io-client then replays them twice after a recovery).
                self._push(eio.CLOSE)
                waiter.deliver(items[:-1])
            else:
                waiter.deliver(items)
                self._forget()
        elif self._queue:
            waiter.deliver(self._drain())
        else:
            self._poll = waiter
        return None

    def detach_poll(self, waiter: PollWaiter) -> None:
        """The pending GET's connection went away before anything was sent."""
        if self._poll is waiter:
            self._poll = None

    def _push(self, item: Item) -> None:
        if self._queue is None:
            self._queue = [item]
        else:
            self._queue.append(item)

    def _enqueue(self, items: Iterable[Item]) -> None:
        queue = self._queue
        if queue is None:
            queue = self._queue = []
        for item in items:
            queue.append(item)
            self._queued_bytes += len(item)
        limit = self.engine.options.max_send_buffer
        if self._queued_bytes > limit:
            self.engine.stats.warn_once(log, "polling-overflow", "session %s: polling queue over %d bytes (client "
                                        "not reading); closing (later ones at DEBUG)", self.sid, limit)
            self.engine.stats.overflowed(len(self._drain()))
            self.close("transport error")
            return
        poll = self._poll
        if poll is not None and self._state is not _OPENING:
            self._poll = None
            poll.deliver(self._drain())

    def _drain(self) -> list[Item]:
        items, self._queue = self._queue, None
        self._queued_bytes = 0
        return items if items is not None else []

    # -- upgrade ---------------------------------------------------------

    def begin_probe(self, wire: FrameWriter) -> str | None:
        """A WebSocket opened with this sid: it may probe, then take over. Return an error, or None.

        On an error the caller closes that WebSocket; the session goes on
        undisturbed (a second WebSocket for an upgraded session, or a second
        probe, is closed after its 101, as Node does).
        """
        if self._state is not _OPEN:
            return "session is closing" if self._state >= _CLOSING else "an upgrade is already in progress"
        if self._wire is not None or self.transport != "polling":
            return "session is already on websocket"
        if self._probe is not None:
            return "an upgrade is already in progress"
        self._probe = wire
        self.upgrade_deadline = self.engine.clock() + self.engine.options.upgrade_timeout
        self.engine.wake(cast("EngineSession", self))
        return None

    def probe_packet(self, wire: FrameWriter, packet: eio.Packet) -> bool:
        """A packet on a probing WebSocket; return True once it carries the session.

        ``2probe`` is answered ``3probe`` (and a pending GET is ended with NOOP so
        the client can pause polling); ``5`` then upgrades. Anything else raises
        :class:`~tornado_sio.exceptions.ProtocolError`.
        """
        if wire is not self._probe or self._state >= _CLOSING:
            raise ProtocolError("probe on a session that is not upgrading")
        if packet.type == eio.PacketType.PING and packet.data == eio.PING_PROBE:
            if self._state is _OPEN:
                self._move(_UPGRADING)
            _write(self.engine, wire, _PROBE_PONG_FRAME)
            self._enqueue((eio.NOOP,))
            return False
        if packet.type == eio.PacketType.UPGRADE and self._state is _UPGRADING:
            self._upgrade(wire)
            return True
        raise ProtocolError(f"unexpected {packet.type.name} packet during upgrade")

    def _upgrade(self, wire: FrameWriter) -> None:
        self._probe = None
        self.upgrade_deadline = None
        self._wire = wire
        self.transport = "websocket"
        self._move(_OPEN)
        poll, self._poll = self._poll, None
        if poll is not None:
            poll.deliver([eio.NOOP])
        queued = [item for item in self._drain() if item != eio.NOOP]
        if queued and not _write(self.engine, wire, b"".join(_frame_of(item) for item in queued)):
            self.abort("transport error")
            return
        self.engine.stats.upgrades += 1
        log.debug("session %s upgraded to websocket", self.sid)
        if self.engine.options.log_connections:
            connection_event("upgrade", self.sid, "websocket", self.request.remote_ip)

    def end_probe(self, wire: FrameWriter) -> None:
        """The probing WebSocket closed or failed: the session stays on polling."""
        if wire is self._probe:
            self._probe = None
            self.upgrade_deadline = None
            if self._state is _UPGRADING:
                self._move(_OPEN)

    def _close_probe(self) -> None:
        probe = self._probe
        if probe is not None:
            self.end_probe(probe)
            probe.close_transport()

    # -- closing ---------------------------------------------------------

    def transport_closed(self, wire: FrameWriter, reason: str = "transport close") -> None:
        """A WebSocket of this session closed: a probe ends; the carrying one ends the session."""
        if wire is self._probe:
            self.end_probe(wire)
        elif wire is self._wire:
            self._wire = None
            if self._state < _CLOSING:
                self._forget()
                self._tell_closed(reason)

    def _forget(self) -> None:
        if self._state is not _CLOSED:
            self._move(_CLOSED)
            self.engine.forget(cast("EngineSession", self))

    def _tell_closed(self, reason: str) -> None:
        engine = self.engine
        engine.stats.session_closed(reason)
        try:
            engine.handler.connection_closed(cast("EngineSession", self), reason)
        except Exception:
            log.exception("connection_closed handler failed for session %s", self.sid)
        if engine.options.log_connections:  # after its namespaces' lines
            connection_event("disconnect", self.sid, self.transport, self.request.remote_ip, reason)
        # The handler is done with it: drop its state, which refers back to this
        # session. Without this cycle a closed connection is freed by reference
        # counting alone, even when runtime.ManagedGC froze it while it was open.
        self.data = None


class EngineSession(_Session):
    """One Engine.IO client: sid, transport, outgoing queue, heartbeat and deadlines.

    It is a :class:`~tornado_sio.engine.connection.Connection`; ``data``
    belongs to the handler. The HTTP layer drives it with :meth:`receive`,
    :meth:`attach_poll`, :meth:`begin_probe`, :meth:`probe_packet` and
    :meth:`transport_closed`; the engine's sweep calls :meth:`sweep`.
    """

    __slots__ = ()

    def mark_connected(self) -> None:
        """The handler accepted the client (a namespace connected): no connect deadline."""
        self.connect_deadline = None

    def mark_idle(self) -> None:
        """The client has no namespace left: it must connect one within ``connect_timeout``."""
        timeout = self.engine.options.connect_timeout
        if timeout and self._state < _CLOSING:
            self.connect_deadline = self.engine.clock() + timeout
            self.engine.wake(self)

    def sweep(self, now: float) -> None:
        """Ping when due; close the silent, the late and the unconnected (run by the engine's sweep)."""
        state = self._state
        if state is _CLOSING:
            if self.close_deadline is not None and now >= self.close_deadline:
                self._forget()
            return
        if state is _OPENING or state is _CLOSED:
            return
        options = self.engine.options
        if self.upgrade_deadline is not None and now >= self.upgrade_deadline:
            log.info("session %s: upgrade did not complete in %.1fs", self.sid, options.upgrade_timeout)
            self._close_probe()
        if self.connect_deadline is not None and now >= self.connect_deadline:
            log.info("session %s: no namespace connected in %.1fs; closing", self.sid, options.connect_timeout)
            self.close("connect timeout")
            return
        if self.pong_deadline is not None:
            self.missed_pong(now)
            return
        if now >= self.next_ping:
            # The pong is due a ping_timeout after the ping was due, as with Node's timers, not
            # after the tick that got to it (up to a tick later); a ping held up longer than a
            # quarter of the timeout (a stalled loop) gives the client its whole timeout from now.
            due = self.next_ping
            self.pong_deadline = (due if now - due <= options.ping_timeout / 4 else now) + options.ping_timeout
            wire = self._wire
            if wire is None:
                self._enqueue((eio.PING,))
            elif not _write(self.engine, wire, _PING_FRAME):
                self.abort("transport error")

    def attach_poll(self, waiter: PollWaiter) -> str | None:
        """A polling GET arrived (see :meth:`_Session.attach_poll`); one after the pong deadline gets an error."""
        if self.missed_pong(self.engine.clock()):
            return "no pong within ping_timeout; session closed"
        return super().attach_poll(waiter)

    def missed_pong(self, now: float) -> bool:
        """Abort the session (``ping timeout``) if its pong deadline has passed at *now*.

        The heartbeat tick does this within a tick of the deadline; a polling GET
        calls it too, so a client that shows up after its deadline but before that
        tick finds its session gone, as with Node's exact timers.
        """
        deadline = self.pong_deadline
        if deadline is None or now < deadline or self._state >= _CLOSING:
            return False
        log.info("session %s: no pong in %.3fs; closing", self.sid, self.engine.options.ping_timeout)
        self.engine.stats.heartbeat_timeouts += 1
        self.abort("ping timeout")
        return True

    def pong(self, now: float) -> None:
        """The client answered the ping: the next one is due a ping interval after the last one was due.

        Counted from when the last ping was due, not from the pong (nor from
        when the tick got to it), so the interval between two pings is the
        setting however long the pong took and however late a tick ran; Node
        counts from the pong, so its interval grows by the round trip. After a
        stall longer than the interval, the next ping is due at once.
        """
        if self.pong_deadline is None:
            return  # an unsolicited pong
        self.pong_deadline = None
        due = self.next_ping + self.engine.options.ping_interval
        self.next_ping = due if due > now else now
        self.engine.wake(self)

    def queued_data(self) -> bool:
        """Whether packets other than the final CLOSE wait for a polling client."""
        return any(item != eio.CLOSE for item in self._queue or ())

    def receive(self, packet: eio.Packet) -> None:
        """Handle one decoded Engine.IO packet from the client (either transport).

        Raises :class:`~tornado_sio.exceptions.ProtocolError` for a packet a
        client must not send (PING, UPGRADE outside an upgrade); the transport
        then aborts the session with ``parse error``.
        """
        if self._state >= _CLOSING:
            return
        kind = packet.type
        if kind == eio.PacketType.MESSAGE:
            self.engine.stats.messages_in += 1
            data = packet.data
            self.engine.handler.connection_message(self, data if data is not None else "")
        elif kind == eio.PacketType.PONG:
            self.pong(self.engine.clock())
        elif kind == eio.PacketType.CLOSE:
            self._client_closed()
        elif kind == eio.PacketType.PING or kind == eio.PacketType.UPGRADE:
            raise ProtocolError(f"unexpected {kind.name} packet on the {self.transport} transport")
        # NOOP, and OPEN (which Node ignores too): nothing to do.

    def receive_all(self, packets: Iterable[eio.Packet]) -> None:
        """Handle the packets of one polling POST, in order, until the session closes."""
        for packet in packets:
            if self._state >= _CLOSING:
                return
            self.receive(packet)
