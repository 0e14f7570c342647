"""Connections in, handlers out: the Socket.IO side of every connection.

:class:`Dispatcher` is the engine's :class:`~tornado_sio.engine.connection.ConnectionHandler`
for a :class:`~tornado_sio.SocketIO` server. It decodes Socket.IO packets, runs
the connect handshake (accept or refuse), keeps one client's events in arrival
order, runs handlers with the client in context, answers acks (with the error
handler's answer when a handler fails), and frees a socket when it goes. It
never asks which transport carries a connection.

Where a handler runs: an ``async def`` handler is a task on the IOLoop; a plain
one runs on the IOLoop too (Tornado's model, timed against
``slow_handler_warning``), or with ``handler_threads=N`` in a pool of threads,
where it may block. Either way one client's events run one at a time, in order.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json as stdjson
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import TYPE_CHECKING, Any, Awaitable, Dict, List, Optional, Set, Tuple, Union

from .context import bind
from .engine.connection import Connection
from .exceptions import ConnectionRefusedError, ProtocolError
from .middleware import DROP, after_middleware, filter_packet, notify_outgoing, run_connection_middlewares
from .protocol.serializer import get_serializer
from .protocol.socketio import SIOPacket, SIOType, is_binary
from .recovery import recover
from .registry import NO_ACK, SPECIAL_EVENTS, Handler, Registry, positional_capacity, settle
from .socket import Client, DisconnectReason, Socket, SocketState
from .tasks import TaskSet, plain_calls, warn_once

if TYPE_CHECKING:
    from .server import SocketIO

__all__ = ["Dispatcher", "ack_args", "convert_json", "settle", "NO_ACK"]

log = logging.getLogger("tornado_sio.server")

_REFUSED = {"message": "Connection rejected by server"}


def convert_json(module: Any, data: Any, outgoing: bool) -> Any:
    """Pass event data through a custom JSON module (the ``json`` option).

    Outgoing data goes through its ``dumps`` (so it may encode types strict JSON
    refuses, dates say); incoming data through its ``loads`` (its hooks apply).
    Data with binary parts, and everything when *module* is None, is left as is.
    """
    if module is None or is_binary(data):
        return data
    if outgoing:
        return stdjson.loads(module.dumps(data))
    return module.loads(stdjson.dumps(data))


def ack_args(result: Any) -> List[Any]:
    """A handler's return value as ack arguments: a tuple spreads, None is none."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


class Dispatcher:
    """Runs a server's handlers for its connections (see the module docstring)."""

    def __init__(self, server: SocketIO, registry: Registry) -> None:
        self.server = server
        self.registry = registry
        self.options = server.options
        self.tasks = TaskSet("handler task")
        #: Sockets with unanswered acks, swept for expired ones.
        self.ack_waiting: Set[Socket] = set()
        threads = self.options.handler_threads
        #: The threads plain handlers run in (``handler_threads``); None: on the IOLoop.
        self.pool = ThreadPoolExecutor(threads, "tornado-sio-handler") if threads else None
        #: The server's parser (``serializer``); its encode-once ``prepare`` is kept as a plain function.
        self.serializer = get_serializer(self.options.serializer)
        self.prepare = self.serializer.prepare

    # -- the engine's ConnectionHandler interface ---------------------------

    def connection_opened(self, conn: Connection) -> Optional[bool]:
        """A connection opened (Engine.IO or SockJS session): give it a decoder."""
        self.server.ensure_started()
        options = self.options
        conn.data = Client(conn, self.serializer.decoder(options.max_attachments, options.max_http_buffer_size,
                                                         options.max_depth))
        return None

    def connection_message(self, conn: Connection, data: Union[str, bytes]) -> None:
        """One message: a Socket.IO packet or one of its attachments."""
        client: Optional[Client] = conn.data
        if client is None:
            return
        try:
            packet = client.decoder.feed(data)
        except ProtocolError as exc:
            log.info("connection %s: invalid Socket.IO packet (%s); closing", conn.sid, exc)
            conn.close("parse error")
            return
        if packet is None:
            return
        kind = packet.type
        if kind == SIOType.CONNECT:
            self.connect(client, packet)
            return
        socket = client.sockets.get(packet.namespace)
        if socket is None:
            client.note("unjoined", "%s for namespace %s it has not joined; ignored",
                        kind.name, packet.namespace)
            return
        if kind == SIOType.EVENT or kind == SIOType.BINARY_EVENT:
            self.event(socket, packet)
        elif kind == SIOType.ACK or kind == SIOType.BINARY_ACK:
            socket.resolve_ack(packet.id, convert_json(self.options.json, packet.data, False))
        elif kind == SIOType.DISCONNECT:
            self.socket_gone(socket, DisconnectReason.CLIENT_DISCONNECT)
        else:
            log.info("connection %s: unexpected %s from a client; closing", conn.sid, kind.name)
            conn.close("parse error")

    def connection_closed(self, conn: Connection, reason: str) -> None:
        """The connection is gone: every namespace of it disconnects with *reason*."""
        client: Optional[Client] = conn.data
        if client is None:
            return
        for socket in list(client.sockets.values()):
            self.socket_gone(socket, reason)
        client.decoder.reset()

    # -- connect ------------------------------------------------------------

    def connect(self, client: Client, packet: SIOPacket) -> None:
        """A CONNECT to a namespace: run its connect handler, then accept or refuse.

        With ``always_connect`` the client is accepted first, and a refusal is a DISCONNECT.
        """
        namespace = packet.namespace
        if namespace in client.sockets:
            client.note("reconnect", "second CONNECT to %s; ignored", namespace)
            return
        auth = convert_json(self.options.json, packet.data, False)
        if not self.registry.accepts(namespace, auth):
            client.note("bad namespace", "refused unknown namespace %s", namespace)
            client.conn.send_message(self.prepare(SIOPacket(SIOType.CONNECT_ERROR, namespace,
                                                            {"message": "Invalid namespace"})))
            return
        wanted = self.server.recovery.wanted(auth)
        if wanted is not None:
            self.tasks.spawn(recover(self, client, namespace, auth, wanted))
            return
        self.open_socket(client, namespace, auth, None)

    def open_socket(self, client: Client, namespace: str, auth: Any, session: Optional[Dict[str, Any]]) -> None:
        """Create the socket (restored from *session* when recovered), then middlewares and ``connect``."""
        socket = Socket(self.server, self, client, namespace, auth)
        recovery = self.server.recovery
        rooms = recovery.start(socket, session)
        client.sockets[namespace] = socket
        self.server.adapter.add_socket(socket)
        if session is not None:
            self.server.adapter.add_all(socket.sid, rooms)
            for data in session.get("missed_packets") or ():
                if isinstance(data, list) and data:  # sent right after the CONNECT reply
                    socket.held.append(self.prepare(SIOPacket(SIOType.EVENT, namespace, data)))
        chain = self.registry.chain(self.registry.middlewares, namespace)
        if session is not None and recovery.skip_middlewares:
            chain = []
        if chain:
            run_connection_middlewares(self, socket, chain, functools.partial(self.connect_handler, socket))
        else:
            self.connect_handler(socket)

    def connect_handler(self, socket: Socket) -> None:
        """The middlewares let *socket* through: run its ``connect`` handler, then accept or refuse."""
        if socket.state == SocketState.DISCONNECTED:
            return
        namespace, auth = socket.namespace, socket.auth
        if self.options.always_connect:
            self.accept(socket)
        handler = self.registry.special(namespace, "connect")
        if handler is None:
            self.decide_connect(socket, None)
            return
        args = (auth,) if positional_capacity(handler) >= 1 else ()
        with bind(socket, "connect", (auth,)):
            try:
                result = self.call_user(handler, args, "connect", socket)
            except Exception as exc:  # noqa: BLE001 - any failure refuses, and is logged
                self.connect_failed(socket, exc)
                return
            if inspect.isawaitable(result):
                # spawned inside bind(): the task copies the context with the client in it
                self.tasks.spawn(self.finish_connect(socket, result))
                return
        self.decide_connect(socket, result)

    async def finish_connect(self, socket: Socket, awaitable: Awaitable[Any]) -> None:
        """Await an ``async def`` (or pooled) connect handler, then accept or refuse."""
        try:
            result = await settle(awaitable)
        except Exception as exc:  # noqa: BLE001 - any failure refuses, and is logged
            self.connect_failed(socket, exc)
            return
        self.decide_connect(socket, result)

    def connect_failed(self, socket: Socket, exc: Exception) -> None:
        """The connect handler raised: refuse (the error handler hears of anything but a refusal).

        Unlike Flask-SocketIO, whose error handler's return value would accept the
        client, a failing connect handler never lets it in.
        """
        if isinstance(exc, ConnectionRefusedError):
            self.refuse(socket, exc.error_payload())
            return
        if self.registry.error_handler(socket.namespace) is not None:
            result = self.handler_failed(socket, "connect", exc)
            if inspect.isawaitable(result):
                self.tasks.spawn(result)
        else:
            log.error("connect handler failed (sid %s, namespace %s); refusing", socket.sid, socket.namespace,
                      exc_info=(type(exc), exc, exc.__traceback__))
            self.server.observers.failed(socket.namespace, "connect", exc)
        self.refuse(socket, _REFUSED)

    def decide_connect(self, socket: Socket, result: Any) -> None:
        """The connect handler answered *result*: False refuses, anything else accepts."""
        if socket.state == SocketState.DISCONNECTED:
            return  # the connection closed while the handler ran
        if result is False:
            self.refuse(socket, _REFUSED)
        elif socket.state == SocketState.CONNECTING:
            self.accept(socket)
        self.server.observers.connected(socket)

    def accept(self, socket: Socket) -> None:
        socket.client.conn.mark_connected()
        socket.accept()
        self.drain_queue(socket)

    def refuse(self, socket: Socket, payload: Dict[str, Any]) -> None:
        if socket.state == SocketState.DISCONNECTED:
            return
        log.info("connection %s: connect to %s refused: %s", socket.client.conn.sid, socket.namespace,
                 payload.get("message"))
        self.forget(socket)
        socket.refuse(payload)

    # -- disconnect -----------------------------------------------------------

    def socket_gone(self, socket: Socket, reason: str) -> None:
        """Run the disconnect handler (if the socket was connected) and free everything."""
        if socket.state == SocketState.DISCONNECTED:
            return
        if was_connected := socket.end():
            for event in ("disconnecting", "disconnect"):  # disconnecting: rooms() still lists them
                handler = self.registry.special(socket.namespace, event)
                if handler is not None:
                    args = (reason,) if positional_capacity(handler) >= 1 else ()
                    self.invoke(socket, handler, args, None, event, (reason,))
            self.server.recovery.socket_left(socket, reason)
        self.forget(socket)
        self.server.observers.disconnected(socket, reason, was_connected)

    def forget(self, socket: Socket) -> None:
        """Drop every trace of *socket*: acks, rooms, and its place in the client."""
        socket.fail_acks()
        self.ack_waiting.discard(socket)
        self.server.adapter.delete_all(socket.sid)
        client = socket.client
        if client.sockets.get(socket.namespace) is socket:
            del client.sockets[socket.namespace]
        if not client.sockets:
            client.conn.mark_idle()

    # -- events ---------------------------------------------------------------

    def event(self, socket: Socket, packet: SIOPacket) -> None:
        """An EVENT: run its handler now, or queue it behind the running one."""
        data = packet.data
        event = data[0]
        args = tuple(data[1:]) if self.options.json is None else tuple(convert_json(self.options.json, data[1:], False))
        self.server.observers.received(socket, event, args)
        registry = self.registry
        middleware = registry.packet_middleware(socket.namespace) if registry.packet_middlewares else None
        if middleware is not None:
            filtered = filter_packet(self, socket, middleware, event, args, packet.id)
            if filtered is DROP:
                return
            if inspect.isawaitable(filtered):  # an async middleware: it holds the client's order
                self.enqueue(socket, functools.partial(after_middleware, self, socket, event, filtered),
                             (), packet.id, event)
                return
            args = filtered
        found = self.lookup(socket, event, args)
        if found is None:
            return
        self.enqueue(socket, found[0], found[1], packet.id, event)

    def lookup(self, socket: Socket, event: str, args: Tuple[Any, ...]) -> Optional[Tuple[Handler, tuple]]:  # type: ignore[type-arg]
        """The handler of *event*, after the ``on_any`` listeners heard of it (None: no handler)."""
        registry = self.registry
        if registry.any_incoming:
            for listener in registry.chain(registry.any_incoming, socket.namespace):
                self.run_callback(listener, [event, *args], "on_any listener", socket, event)
        found = registry.event(socket.namespace, event, args)
        if found is None:
            log.debug("socket %s: no handler for %r in %s", socket.sid, event, socket.namespace)
        return found

    def enqueue(self, socket: Socket, handler: Handler, args: Tuple[Any, ...], ack_id: Optional[int],
                event: str) -> None:
        """Run *handler* now, or queue it behind the client's running one (arrival order)."""
        if not self.options.async_handlers and (socket.running or socket.queue or not socket.connected):
            if len(socket.queue) >= self.options.max_pending_events:
                log.warning("socket %s: %d events waiting (max_pending_events); disconnecting",
                            socket.sid, len(socket.queue))
                socket.client.conn.close("transport error")
                return
            socket.queue.append((handler, args, ack_id, event))
            return
        self.invoke(socket, handler, args, ack_id, event)

    def invoke(self, socket: Socket, handler: Handler, args: Tuple[Any, ...], ack_id: Optional[int],
               event: str, event_args: Optional[Tuple[Any, ...]] = None) -> None:
        """Run a handler with *socket* (and ``request.event``) in context; answer its ack.

        An ``async def`` or pooled handler becomes a task, and holds the
        client's next events back until it ends. A handler that raises is
        answered by the error handler, whose return value is the ack.
        """
        with bind(socket, event, args if event_args is None else event_args):
            try:
                result = self.call_user(handler, args, event, socket)
            except Exception as exc:  # noqa: BLE001 - logged, or handed to the error handler
                result = self.handler_failed(socket, event, exc)
            if result is not None and inspect.isawaitable(result):
                if not self.options.async_handlers and event not in SPECIAL_EVENTS:
                    socket.running = True
                self.tasks.spawn(self.finish_handler(socket, result, ack_id, event, perf_counter()))
                return
        if ack_id is not None and result is not NO_ACK:
            self.send_ack(socket, ack_id, result)

    async def finish_handler(self, socket: Socket, awaitable: Awaitable[Any], ack_id: Optional[int],
                             event: str, started: float = 0.0) -> None:
        """Await an async (or pooled) handler called at *started*, answer its ack, then run the client's next event."""
        try:
            try:
                result = await settle(awaitable)
            except Exception as exc:  # noqa: BLE001 - logged, or handed to the error handler
                result = await settle(self.handler_failed(socket, event, exc))
            if ack_id is not None and result is not NO_ACK:
                self.send_ack(socket, ack_id, result)
        finally:
            self.server.observers.timed(socket, event, perf_counter() - started, self.options.slow_handler_threshold)
            if event not in SPECIAL_EVENTS and not self.options.async_handlers:
                socket.running = False
                self.drain_queue(socket)

    def drain_queue(self, socket: Socket) -> None:
        """Run queued events of *socket* until one of them is async (or none is left)."""
        while socket.queue and not socket.running and socket.connected:
            handler, args, ack_id, event = socket.queue.pop(0)
            self.invoke(socket, handler, args, ack_id, event)

    def send_ack(self, socket: Socket, ack_id: int, result: Any) -> None:
        try:
            data = convert_json(self.options.json, ack_args(result), True)
            socket.send_packet(SIOPacket(SIOType.ACK, socket.namespace, data, ack_id))
        except Exception as exc:  # noqa: BLE001 - an unencodable ack is the handler's failure
            self.handler_failed(socket, "ack", exc)

    # -- calling user code ----------------------------------------------------

    def call_user(self, fn: Handler, args: Tuple[Any, ...], what: str, socket: Optional[Socket]) -> Any:
        """Call *fn* with the current context: its result, or an awaitable of it.

        Under ``handler_threads`` a plain function runs in the pool (the result
        is an asyncio future). Otherwise it runs here, on the IOLoop, counted in
        :data:`~tornado_sio.tasks.plain_calls` (so ``call()`` and ``sleep()`` know
        they must not block) and timed against ``slow_handler_warning``.
        """
        if self.pool is not None and not inspect.iscoroutinefunction(fn):
            call = functools.partial(contextvars.copy_context().run, fn, *args)
            return asyncio.get_running_loop().run_in_executor(self.pool, call)
        plain_calls.depth += 1
        started = perf_counter()
        try:
            return fn(*args)
        finally:
            plain_calls.depth -= 1
            held = perf_counter() - started
            self.server.observers.timed(socket, what, held, self.options.slow_handler_threshold)
            limit = self.options.slow_handler_warning
            if limit is not None and held > limit:
                # keyed by the handler, not the event name: a catch-all must not grow the set per name
                key = f"slow {getattr(fn, '__qualname__', id(fn))}"
                warn_once(key, "handler for %r held the IOLoop for %.0f ms (sid %s): every client waited. Make "
                          "it async def, or run plain handlers in threads with SocketIO(handler_threads=N). "
                          "Later ones of this handler are logged at DEBUG.",
                          what, held * 1000, getattr(socket, "sid", "-"), logger=log)

    def handler_failed(self, socket: Socket, event: str, exc: BaseException) -> Any:
        """Log a handler's exception (event and sid), or give it to ``on_error``.

        Returns what answers the event's ack: the error handler's return value
        (an awaitable of it for an async or pooled one), or :data:`NO_ACK`.
        """
        self.server.observers.failed(socket.namespace, event, exc)
        error_handler = self.registry.error_handler(socket.namespace)
        if error_handler is None:
            log.error("handler for %r failed (sid %s, namespace %s)", event, socket.sid, socket.namespace,
                      exc_info=(type(exc), exc, exc.__traceback__))
            return NO_ACK
        log.debug("handler for %r failed (sid %s); calling the error handler", event, socket.sid)
        return self.guarded(error_handler, [exc], f"error handler for {event!r}", socket)

    def run_callback(self, fn: Handler, args: List[Any], what: str, socket: Optional[Socket] = None,
                     event: Optional[str] = None) -> None:
        """Call a user callback (an ack callback) with *socket* in context; log its failure."""
        with bind(socket, event, tuple(args)):
            result = self.guarded(fn, args, what, socket)
            if inspect.isawaitable(result):
                self.tasks.spawn(result)

    def guarded(self, fn: Handler, args: List[Any], what: str, socket: Optional[Socket]) -> Any:
        """``call_user``, logging a failure as *what* (then :data:`NO_ACK`); an awaitable stays guarded."""
        sid = getattr(socket, "sid", "-")
        try:
            result = self.call_user(fn, tuple(args), what, socket)
        except Exception:  # a failing callback is logged, the server goes on
            log.exception("%s failed (sid %s)", what, sid)
            return NO_ACK
        if not inspect.isawaitable(result):
            return result

        async def finish() -> Any:
            try:
                return await settle(result)
            except Exception:  # as above
                log.exception("%s failed (sid %s)", what, sid)
                return NO_ACK

        return finish()

    def outgoing(self, socket: Socket, prepared: Any) -> None:
        """A packet is written to *socket* while ``on_any_outgoing`` listeners exist."""
        notify_outgoing(self, socket, prepared)

    # -- acks -------------------------------------------------------------------

    def acks_pending(self, socket: Socket) -> None:
        """*socket* waits for an ack: the ack sweep looks at it."""
        self.ack_waiting.add(socket)

    def expire_acks(self, now: Optional[float] = None) -> None:
        """Drop acks past their deadline (run by the engine's sweeper)."""
        now = time.monotonic() if now is None else now
        for socket in list(self.ack_waiting):
            if not socket.expire_acks(now):
                self.ack_waiting.discard(socket)
