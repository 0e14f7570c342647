"""The Socket.IO v5 server: registry, dispatch, connect/refuse, acks, emit, call.

:class:`SocketIO` is what applications use. It is the Engine.IO handler for its
endpoint (``on_open``/``on_message``/``on_close``) and knows connections only as
objects with ``sid``, ``request``, ``send_message``, ``close`` and
``mark_connected``/``mark_idle``; it never imports a transport.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Union

from tornado.httputil import HTTPServerRequest
from tornado.ioloop import IOLoop, PeriodicCallback

from . import context
from .engine import EngineServer, EngineSession, Origins
from .exceptions import ConnectionRefusedError, ProtocolError
from .manager import LocalManager
from .namespace import Namespace
from .protocol.socketio import Decoder, SIOPacket, SIOType
from .rooms import Rooms, RoomStore
from .socket import Client, Socket, SocketState, prepare

__all__ = ["SocketIO"]

log = logging.getLogger("tornado_sio.server")

Handler = Callable[..., Any]

_SPECIAL = ("connect", "disconnect")


def _positional_capacity(fn: Handler) -> float:
    """How many positional arguments *fn* takes (inf with ``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return float("inf")
    count = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return float("inf")
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def _ack_args(result: Any) -> List[Any]:
    """A handler's return value as ack arguments: a tuple spreads, None is none."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


class SocketIO:
    """A Socket.IO server on Tornado, with Flask-SocketIO's programming model.

    ::

        socketio = SocketIO(cors_allowed_origins='*')

        @socketio.on('my event', namespace='/test')
        def on_my_event(message):
            emit('my response', {'data': message['data']})

        app = tornado.web.Application(socketio.routes() + [(r'/', IndexHandler)])
        socketio.run(app, port=5000)

    Engine.IO settings (``ping_interval``, ``ping_timeout``,
    ``max_http_buffer_size``, ``cors_allowed_origins``, ``allow_request``,
    ``websocket_compression``, ``max_connections``, ``connect_timeout``,
    ``upgrade_timeout``, ``max_send_buffer``, ``transports``) are passed to
    :class:`~tornado_sio.engine.EngineServer`; see ``docs/limits.md`` for the table.

    :param path: the endpoint (``/socket.io`` as the official clients expect).
    :param namespaces: ``None`` accepts ``/`` and every namespace with a handler;
        ``'*'`` accepts any; a list names them.
    :param async_handlers: ``False`` (default) handles one client's events one at a
        time in arrival order, an ``async def`` handler finishing before the next
        starts; ``True`` runs async handlers concurrently.
    :param max_pending_events: events queued behind a running handler of one client
        before that client is disconnected.
    :param max_pending_acks: unanswered server-to-client acks per client.
    :param ack_timeout: seconds before an unanswered ``callback=`` is dropped.
    :param max_attachments: binary attachments per packet (socket.io-parser's 10).
    :param max_depth: nesting depth of decoded JSON.
    :param message_queue: ``redis://host:port/db`` to share emits and rooms with
        other processes (needs ``pip install tornado-sio[redis]``); ``None`` keeps
        everything in this process.
    :param channel: the pub/sub channel (prefix) on the message queue; by default
        ``tornado-sio`` (``socketio`` in the python-socketio-compatible format).
    :param write_only: only emit through the message queue (a process that
        serves no clients, e.g. a worker).
    :param message_queue_options: further ``RedisManager`` options, e.g.
        ``{'format': 'python-socketio'}`` to share Redis with python-socketio or
        Flask-SocketIO processes, or ``{'node_emitter_key': 'socket.io'}`` to accept
        broadcasts from Node's ``@socket.io/redis-emitter`` (see ``docs/redis.md``).
    :param client_manager: a factory ``(server) -> manager`` to use instead.
    :param sockjs: also serve the SockJS fallback router from :meth:`routes` (the same
        handlers, rooms and limits; see ``docs/sockjs.md``); ``False`` turns it off.
    :param sockjs_prefix: where the SockJS router is mounted.
    """

    def __init__(
        self,
        *,
        path: str = "/socket.io",
        cors_allowed_origins: Origins = None,
        cors_credentials: bool = True,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_http_buffer_size: int = 1_000_000,
        max_send_buffer: int = 4_000_000,
        connect_timeout: Optional[float] = 45.0,
        upgrade_timeout: float = 10.0,
        max_connections: Optional[int] = None,
        allow_request: Optional[Callable[[HTTPServerRequest], bool]] = None,
        websocket_compression: bool = False,
        transports: Sequence[str] = ("polling", "websocket"),
        allow_upgrades: bool = True,
        namespaces: Union[None, str, Iterable[str]] = None,
        async_handlers: bool = False,
        max_pending_events: int = 256,
        max_pending_acks: int = 1000,
        ack_timeout: Optional[float] = 60.0,
        max_attachments: int = 10,
        max_depth: int = 32,
        message_queue: Optional[str] = None,
        channel: Optional[str] = None,
        write_only: bool = False,
        message_queue_options: Optional[Dict[str, Any]] = None,
        client_manager: Optional[Callable[["SocketIO"], LocalManager]] = None,
        sockjs: bool = True,
        sockjs_prefix: str = "/sockjs",
    ) -> None:
        self.path = "/" + path.strip("/")
        self.engine = EngineServer(
            self,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_http_buffer_size=max_http_buffer_size,
            max_send_buffer=max_send_buffer,
            connect_timeout=connect_timeout,
            upgrade_timeout=upgrade_timeout,
            max_connections=max_connections,
            cors_allowed_origins=cors_allowed_origins,
            cors_credentials=cors_credentials,
            allow_request=allow_request,
            websocket_compression=websocket_compression,
            allow_upgrades=allow_upgrades,
            transports=transports,
        )
        self.namespaces = namespaces if namespaces is None or namespaces == "*" else set(namespaces)
        self.async_handlers = async_handlers
        self.max_pending_events = max_pending_events
        self.max_pending_acks = max_pending_acks
        self.ack_timeout = ack_timeout
        self.max_attachments = max_attachments
        self.max_depth = max_depth
        self.rooms_store = RoomStore()
        self.handlers: Dict[str, Dict[str, Handler]] = {}
        self.namespace_objects: Dict[str, Namespace] = {}
        self.error_handlers: Dict[str, Handler] = {}
        self.default_error_handler: Optional[Handler] = None
        self._ack_waiting: Set[Socket] = set()
        self._ack_sweeper: Optional[PeriodicCallback] = None
        self._tasks: Set["asyncio.Future[Any]"] = set()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[int] = None
        self.write_only = write_only
        self.sockjs = sockjs
        self.sockjs_prefix = sockjs_prefix
        self._started: Optional["asyncio.Future[None]"] = None
        if client_manager is not None:
            self.manager: LocalManager = client_manager(self)
        elif message_queue is not None:
            from .redis_manager import RedisManager

            self.manager = RedisManager(self, message_queue, channel=channel, write_only=write_only,
                                        **(message_queue_options or {}))
        else:
            self.manager = LocalManager(self)

    # ------------------------------------------------------------------
    # Registry
    # ------------------------------------------------------------------

    def on(self, event: str, namespace: Optional[str] = None) -> Callable[[Handler], Handler]:
        """Decorator: handle *event* in *namespace* (default ``/``).

        Special events: ``connect`` (may take the client's ``auth``; return
        ``False`` or raise :class:`ConnectionRefusedError` to refuse),
        ``disconnect`` (may take the reason), ``message`` (the client's
        ``send()``), ``'*'`` (any event without a handler: ``(event, *args)``).
        """

        def decorator(handler: Handler) -> Handler:
            self.on_event(event, handler, namespace)
            return handler

        return decorator

    def on_event(self, event: str, handler: Handler, namespace: Optional[str] = None) -> None:
        """Register *handler* for *event*, without decorator syntax."""
        if not isinstance(event, str) or not event:
            raise ValueError("event names are non-empty strings")
        self.handlers.setdefault(namespace or "/", {})[event] = handler

    def event(self, handler: Optional[Handler] = None, namespace: Optional[str] = None) -> Any:
        """Decorator: the function's name is the event name (``@socketio.event``)."""
        if handler is None:
            return lambda fn: self.event(fn, namespace=namespace)
        self.on_event(handler.__name__, handler, namespace)
        return handler

    def on_namespace(self, namespace_handler: Namespace) -> None:
        """Register a class-based :class:`Namespace`."""
        if not isinstance(namespace_handler, Namespace):
            raise TypeError("on_namespace takes a tornado_sio.Namespace instance")
        namespace_handler.server = self
        self.namespace_objects[namespace_handler.namespace] = namespace_handler

    def on_error(self, namespace: Optional[str] = None) -> Callable[[Handler], Handler]:
        """Decorator: called with the exception when a handler of *namespace* raises."""

        def decorator(handler: Handler) -> Handler:
            self.error_handlers[namespace or "/"] = handler
            return handler

        return decorator

    def on_error_default(self, handler: Handler) -> Handler:
        """Decorator: called with the exception for namespaces without ``on_error``."""
        self.default_error_handler = handler
        return handler

    def _namespace_allowed(self, namespace: str) -> bool:
        if self.namespaces == "*":
            return True
        if self.namespaces is not None:
            return namespace in self.namespaces  # type: ignore[operator]
        return namespace == "/" or namespace in self.handlers or namespace in self.namespace_objects

    def _special_handler(self, namespace: str, event: str) -> Optional[Handler]:
        handler = self.handlers.get(namespace, {}).get(event)
        if handler is None:
            obj = self.namespace_objects.get(namespace)
            if obj is not None:
                handler = obj.handler_for(event)
        return handler

    def _event_handler(self, namespace: str, event: str, args: tuple) -> Any:
        """The handler and arguments for an event, or None."""
        handlers = self.handlers.get(namespace)
        if handlers is not None:
            handler = handlers.get(event)
            if handler is not None:
                return handler, args
        obj = self.namespace_objects.get(namespace)
        if obj is not None:
            method = obj.handler_for(event)
            if method is not None:
                return method, args
        if handlers is not None:
            catch_all = handlers.get("*")
            if catch_all is not None:
                return catch_all, (event, *args)
        return None

    # ------------------------------------------------------------------
    # Engine.IO handler: connections in and out
    # ------------------------------------------------------------------

    def on_open(self, conn: Any) -> None:
        """A connection opened (Engine.IO session or SockJS session)."""
        if self._started is None:
            self._bind_loop()
            self._started = self._spawn(self.manager.start())
        conn.data = Client(conn, Decoder(max_attachments=self.max_attachments,
                                         max_attachment_bytes=self.engine.max_http_buffer_size,
                                         max_depth=self.max_depth))

    def on_message(self, conn: Any, data: Union[str, bytes]) -> None:
        """One Engine.IO message: a Socket.IO packet or one of its attachments."""
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
            self._on_connect(client, packet)
            return
        socket = client.sockets.get(packet.namespace)
        if socket is None:
            client.note("unjoined", "%s for namespace %s it has not joined; ignored",
                        kind.name, packet.namespace)
            return
        if kind == SIOType.EVENT or kind == SIOType.BINARY_EVENT:
            self._on_event(socket, packet)
        elif kind == SIOType.ACK or kind == SIOType.BINARY_ACK:
            socket.resolve_ack(packet.id, packet.data)
        elif kind == SIOType.DISCONNECT:
            self._socket_gone(socket, "client namespace disconnect")
        else:
            log.info("connection %s: unexpected %s from a client; closing", conn.sid, kind.name)
            conn.close("parse error")

    def on_close(self, conn: Any, reason: str) -> None:
        """The connection is gone: every namespace of it disconnects with *reason*."""
        client: Optional[Client] = conn.data
        if client is None:
            return
        for socket in list(client.sockets.values()):
            self._socket_gone(socket, reason)
        client.decoder.reset()

    # ------------------------------------------------------------------
    # Connect / disconnect
    # ------------------------------------------------------------------

    def _on_connect(self, client: Client, packet: SIOPacket) -> None:
        namespace = packet.namespace
        conn = client.conn
        if namespace in client.sockets:
            client.note("reconnect", "second CONNECT to %s; ignored", namespace)
            return
        if not self._namespace_allowed(namespace):
            client.note("bad namespace", "refused unknown namespace %s", namespace)
            conn.send_message(prepare(SIOPacket(SIOType.CONNECT_ERROR, namespace,
                                                {"message": "Invalid namespace"})))
            return
        socket = Socket(self, client, namespace, packet.data)
        client.sockets[namespace] = socket
        self.rooms_store.add(socket)
        handler = self._special_handler(namespace, "connect")
        if handler is None:
            self._accept(socket)
            return
        args = (packet.data,) if _positional_capacity(handler) >= 1 else ()
        token = context._current.set(socket)
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                self._spawn(self._finish_connect(socket, result))
                return
        except ConnectionRefusedError as exc:
            self._refuse(socket, exc.error_payload())
            return
        except Exception as exc:
            self._handler_failed(socket, "connect", exc)
            self._refuse(socket, {"message": "Connection rejected by server"})
            return
        finally:
            context._current.reset(token)
        self._decide_connect(socket, result)

    async def _finish_connect(self, socket: Socket, awaitable: Any) -> None:
        try:
            result = await awaitable
        except ConnectionRefusedError as exc:
            self._refuse(socket, exc.error_payload())
            return
        except Exception as exc:
            self._handler_failed(socket, "connect", exc)
            self._refuse(socket, {"message": "Connection rejected by server"})
            return
        self._decide_connect(socket, result)

    def _decide_connect(self, socket: Socket, result: Any) -> None:
        if socket.state != SocketState.CONNECTING:
            return  # the connection closed while the handler ran
        if result is False:
            self._refuse(socket, {"message": "Connection rejected by server"})
        else:
            self._accept(socket)

    def _accept(self, socket: Socket) -> None:
        socket.client.conn.mark_connected()
        socket.accept()
        self._drain_queue(socket)

    def _refuse(self, socket: Socket, payload: Dict[str, Any]) -> None:
        if socket.state == SocketState.DISCONNECTED:
            return
        log.info("connection %s: connect to %s refused: %s", socket.client.conn.sid, socket.namespace,
                 payload.get("message"))
        socket.state = SocketState.DISCONNECTED
        socket.drop_held()
        self._forget_socket(socket)
        socket.client.conn.send_message(prepare(SIOPacket(SIOType.CONNECT_ERROR, socket.namespace, payload)))

    def _socket_gone(self, socket: Socket, reason: str) -> None:
        """Run the disconnect handler (if the socket was connected) and free everything."""
        if socket.state == SocketState.DISCONNECTED:
            return
        was_connected = socket.state == SocketState.CONNECTED
        socket.state = SocketState.DISCONNECTED
        if was_connected:
            handler = self._special_handler(socket.namespace, "disconnect")
            if handler is not None:
                args = (reason,) if _positional_capacity(handler) >= 1 else ()
                self._invoke(socket, handler, args, None, "disconnect")
        self._forget_socket(socket)

    def _forget_socket(self, socket: Socket) -> None:
        socket.fail_acks()
        self._ack_waiting.discard(socket)
        self.rooms_store.remove(socket)
        client = socket.client
        if client.sockets.get(socket.namespace) is socket:
            del client.sockets[socket.namespace]
        if not client.sockets:
            client.conn.mark_idle()

    # ------------------------------------------------------------------
    # Events
    # ------------------------------------------------------------------

    def _on_event(self, socket: Socket, packet: SIOPacket) -> None:
        data = packet.data
        event = data[0]
        found = self._event_handler(socket.namespace, event, tuple(data[1:]))
        if found is None:
            log.debug("socket %s: no handler for %r in %s", socket.sid, event, socket.namespace)
            return
        handler, args = found
        if not self.async_handlers and (socket.running or socket.queue or not socket.connected):
            if len(socket.queue) >= self.max_pending_events:
                log.warning("socket %s: %d events waiting (max_pending_events); disconnecting",
                            socket.sid, len(socket.queue))
                socket.client.conn.close("transport error")
                return
            socket.queue.append((handler, args, packet.id, event))
            return
        self._invoke(socket, handler, args, packet.id, event)

    def _invoke(self, socket: Socket, handler: Handler, args: tuple, ack_id: Optional[int], event: str) -> None:
        """Run a handler with *socket* in context; async ones become a task."""
        token = context._current.set(socket)
        event_token = context._current_event.set(event if event not in _SPECIAL else None)
        try:
            result = handler(*args)
            if result is not None and inspect.isawaitable(result):
                if not self.async_handlers and event not in _SPECIAL:
                    socket.running = True
                self._spawn(self._finish_handler(socket, result, ack_id, event))
                return
        except Exception as exc:
            self._handler_failed(socket, event, exc)
            return
        finally:
            context._current_event.reset(event_token)
            context._current.reset(token)
        if ack_id is not None:
            self._send_ack(socket, ack_id, result)

    async def _finish_handler(self, socket: Socket, awaitable: Any, ack_id: Optional[int], event: str) -> None:
        try:
            result = await awaitable
        except Exception as exc:
            self._handler_failed(socket, event, exc)
        else:
            if ack_id is not None:
                self._send_ack(socket, ack_id, result)
        finally:
            if event not in _SPECIAL and not self.async_handlers:
                socket.running = False
                self._drain_queue(socket)

    def _drain_queue(self, socket: Socket) -> None:
        while socket.queue and not socket.running and socket.connected:
            handler, args, ack_id, event = socket.queue.pop(0)
            self._invoke(socket, handler, args, ack_id, event)

    def _send_ack(self, socket: Socket, ack_id: int, result: Any) -> None:
        try:
            socket.send_packet(SIOPacket(SIOType.ACK, socket.namespace, _ack_args(result), ack_id))
        except Exception as exc:
            self._handler_failed(socket, "ack", exc)

    def _handler_failed(self, socket: Socket, event: str, exc: BaseException) -> None:
        """Log a handler's exception (event and sid), then give it to ``on_error``."""
        error_handler = self.error_handlers.get(socket.namespace) or self.default_error_handler
        if error_handler is None:
            log.error("handler for %r failed (sid %s, namespace %s)", event, socket.sid, socket.namespace,
                      exc_info=(type(exc), exc, exc.__traceback__))
            return
        log.debug("handler for %r failed (sid %s); calling the error handler", event, socket.sid)
        token = context._current.set(socket)
        try:
            result = error_handler(exc)
            if inspect.isawaitable(result):
                self._spawn(result)
        except Exception:
            log.exception("error handler failed for %r (sid %s)", event, socket.sid)
        finally:
            context._current.reset(token)

    def _call_plain(self, fn: Handler, args: List[Any], what: str, socket: Optional[Socket] = None) -> None:
        """Call a user callback; log its failure; run it as a task if it is async."""
        token = context._current.set(socket)
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                self._spawn(result)
        except Exception:
            log.exception("%s failed (sid %s)", what, getattr(socket, "sid", "-"))
        finally:
            context._current.reset(token)

    # ------------------------------------------------------------------
    # Emitting
    # ------------------------------------------------------------------

    def emit(self, event: str, *args: Any, to: Rooms = None, room: Rooms = None,
             namespace: Optional[str] = None, skip_sid: Any = None,
             callback: Optional[Handler] = None, timeout: Optional[float] = None) -> None:
        """Emit *event* to a room, a list of rooms, a sid, or (``to=None``) the whole namespace.

        Safe to call from any coroutine on the IOLoop, and from other threads
        (the emit is then handed to the IOLoop). The packet is encoded once for
        all recipients. ``skip_sid`` (a sid or a list) leaves clients out.
        ``callback`` receives each recipient's acknowledgement.
        Raises :class:`~tornado_sio.EncodeError` if the data is not valid JSON.
        """
        if not isinstance(event, str):
            raise TypeError("event names are strings")
        if self._off_loop():
            self._loop.call_soon_threadsafe(  # type: ignore[union-attr]
                lambda: self.emit(event, *args, to=to, room=room, namespace=namespace,
                                  skip_sid=skip_sid, callback=callback, timeout=timeout))
            return
        skip = {skip_sid} if isinstance(skip_sid, str) else set(skip_sid or ())
        self.manager.emit(namespace or "/", [event, *args], to if to is not None else room, skip,
                          callback, timeout)

    def send(self, data: Any, to: Rooms = None, room: Rooms = None, namespace: Optional[str] = None,
             skip_sid: Any = None, callback: Optional[Handler] = None) -> None:
        """Send a ``message`` event (see :meth:`emit`)."""
        self.emit("message", data, to=to, room=room, namespace=namespace, skip_sid=skip_sid,
                  callback=callback)

    async def call(self, event: str, *args: Any, to: str, namespace: Optional[str] = None,
                   timeout: Optional[float] = 60.0) -> Any:
        """Emit to one client and wait for its acknowledgement.

        Returns the ack's argument (several as a tuple, none as None). Raises
        :class:`~tornado_sio.AckTimeout` after *timeout* seconds and
        :class:`~tornado_sio.DisconnectedError` if the client is not connected or
        leaves before answering. ACKs are processed as they arrive, never behind a
        running handler, so awaiting this inside a handler cannot deadlock.
        """
        return await self.manager.call(namespace or "/", [event, *args], to, timeout)

    # ------------------------------------------------------------------
    # Rooms and clients from outside handlers
    # ------------------------------------------------------------------

    def enter_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Put client *sid* in *room*."""
        self.manager.enter_room(sid, room, namespace or "/")

    def leave_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Take client *sid* out of *room*."""
        self.manager.leave_room(sid, room, namespace or "/")

    def close_room(self, room: str, namespace: Optional[str] = None) -> None:
        """Every client leaves *room*."""
        self.manager.close_room(room, namespace or "/")

    def rooms(self, sid: str, namespace: Optional[str] = None) -> List[str]:
        """The rooms client *sid* is in (its own sid room included)."""
        return self.manager.rooms(sid, namespace or "/")

    def disconnect(self, sid: str, namespace: Optional[str] = None) -> None:
        """Disconnect client *sid* from its namespace; it receives a DISCONNECT packet."""
        self.manager.disconnect(sid, namespace or "/")

    def get_session(self, sid: str, namespace: Optional[str] = None) -> Dict[str, Any]:
        """The ``session`` dict of local client *sid* (empty if unknown)."""
        socket = self.manager.socket(sid, namespace or "/")
        return socket.session if socket is not None else {}

    # ------------------------------------------------------------------
    # Tasks, routes, running
    # ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the manager (connect to the message queue, if any).

        :meth:`run` calls this before listening, so a message queue that cannot
        be reached stops the server at once with a clear error. Otherwise it
        starts by itself with the first connection.
        """
        self._bind_loop()
        if self._started is None:
            self._started = asyncio.ensure_future(self.manager.start())
        await asyncio.shield(self._started)

    def _bind_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop() if _loop_running() else IOLoop.current().asyncio_loop  # type: ignore[attr-defined]
            self._loop_thread = threading.get_ident()
            self._ack_sweeper = PeriodicCallback(self._expire_acks, 1000)
            self._ack_sweeper.start()

    def _off_loop(self) -> bool:
        return self._loop_thread is not None and threading.get_ident() != self._loop_thread

    def _spawn(self, awaitable: Any) -> "asyncio.Future[Any]":
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: "asyncio.Future[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def _expire_acks(self) -> None:
        now = time.monotonic()
        for socket in list(self._ack_waiting):
            if not socket.expire_acks(now):
                self._ack_waiting.discard(socket)

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> "asyncio.Future[Any]":
        """Run *target* alongside the server: an ``async def`` as a task, a plain
        function in a worker thread (``socketio.emit`` is thread-safe)."""
        if inspect.iscoroutinefunction(target):
            return self._spawn(target(*args, **kwargs))
        loop = asyncio.get_event_loop()
        return loop.run_in_executor(None, lambda: target(*args, **kwargs))

    @staticmethod
    async def sleep(seconds: float) -> None:
        """``await socketio.sleep(s)``: yield to the IOLoop for *seconds*."""
        await asyncio.sleep(seconds)

    def routes(self) -> list:
        """Tornado rules to add to any ``Application``: the endpoint and the browser client."""
        from . import clientjs

        rules = self.engine.routes(self.path)
        if self.sockjs:
            from .transports import sockjs as sockjs_transport

            rules = rules + sockjs_transport.routes(self, self.sockjs_prefix)
            self.engine.extra_connections = lambda: len(sockjs_transport.connections(self))
        return rules + clientjs.routes()

    @property
    def client_script_url(self) -> str:
        """URL of the bundled browser client, with its content hash."""
        from . import clientjs

        return clientjs.script_path()

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Close every connection, flush what is queued, and stop the timers.

        Each client gets an Engine.IO CLOSE (as from Node's ``io.close()``), not
        a Socket.IO DISCONNECT: the official clients read the latter as "kicked by
        the server" and would not reconnect when the server comes back. The
        server-side ``disconnect`` handlers run with ``"server shutting down"``.
        """
        from .transports import sockjs as sockjs_transport

        for socket in list(self.rooms_store.sockets.values()):
            self._socket_gone(socket, "server shutting down")
        self.engine.close_all("server shutting down")
        sockjs_transport.close_all(self, "server shutting down")
        deadline = time.monotonic() + timeout
        while ((self.engine.undelivered() or sockjs_transport.undelivered(self))
               and time.monotonic() < deadline):
            await asyncio.sleep(0.05)
        self.engine.stop()
        sockjs_transport.stop(self)
        if self._ack_sweeper is not None:
            self._ack_sweeper.stop()
            self._ack_sweeper = None
        await self.manager.stop()

    def run(self, app: Any, host: str = "127.0.0.1", port: int = 5000, **server_kwargs: Any) -> None:
        """Listen and run the IOLoop until SIGINT/SIGTERM, then shut down gracefully.

        *server_kwargs* go to Tornado's ``HTTPServer`` (``xheaders=True`` behind a
        proxy, ``ssl_options`` for TLS). Unless given, ``idle_connection_timeout``
        is 75 s (Tornado's default keeps an idle keep-alive connection for an
        hour) and ``body_timeout`` 30 s (Tornado's default waits forever for a
        slow body).
        """
        server_kwargs.setdefault("idle_connection_timeout", 75)
        server_kwargs.setdefault("body_timeout", 30)

        async def main() -> None:
            await self.start()
            server = app.listen(port, host, **server_kwargs)
            log.info("listening on http://%s:%d", host, port)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            log.info("shutting down")
            server.stop()
            await self.shutdown()
            await asyncio.wait_for(server.close_all_connections(), 3)

        asyncio.run(main())


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
