"""The Socket.IO server applications use: :class:`SocketIO`.

It is a facade. The settings live in :class:`~tornado_sio.options.Options`,
handlers in a :class:`~tornado_sio.registry.Registry`, the per-connection work
in a :class:`~tornado_sio.dispatch.Dispatcher` (the engine's connection
handler), and fan-out in an :class:`~tornado_sio.adapter.base.Adapter`: in
memory by default, Redis with ``message_queue=``. The server builds its
routes from the HTTP layer and never looks inside a transport.

Its methods are Flask-SocketIO's, and work from the places Flask-SocketIO code
calls them: handlers and coroutines on the IOLoop, threads (plain background
tasks, ``handler_threads``), and plain scripts with no loop at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

from tornado.ioloop import IOLoop

from . import context, runtime
from .adapter.base import Adapter, BroadcastOptions, Rooms, room_set
from .adapter.memory import MemoryAdapter
from .admin import AdminUI
from .dispatch import Dispatcher, convert_json
from .engine.server import EngineServer
from .logs import CONNECTIONS_LOGGER, socket_event, stderr_handler
from .observe import Observable, Observer, Observers
from .operations import Operations, event_args
from .options import ORIGIN_CHECKS_OFF, LoggerSetting, Options
from .protocol.socketio import SIOPacket, SIOType
from .recovery import Recovery
from .registry import Handler, Registers, Registry
from .socket import DisconnectReason
from .tasks import LoopHome, Sleep, running_loop
from .testing import SocketIOTestClient

__all__ = ["SocketIO"]

log = logging.getLogger("tornado_sio.server")

#: The loggers ``logger=`` and ``engineio_logger=`` configure.
LOGGERS = {"logger": ("tornado_sio.server", "tornado_sio.adapter"),
           "engineio_logger": ("tornado_sio.engine", "tornado_sio.http", CONNECTIONS_LOGGER)}


def build_adapter(options: Options) -> Adapter:
    """The adapter *options* ask for: ``client_manager``, Redis, or in memory."""
    if options.client_manager is not None:
        adapter: Adapter = options.client_manager(options)
        return adapter
    if options.message_queue is not None:
        from .adapter.redis import NodeRedisAdapter, RedisAdapter, is_node_format  # optional: imported on demand

        return NodeRedisAdapter(options) if is_node_format(options) else RedisAdapter(options)
    return MemoryAdapter(options)


class _Forward(logging.Handler):
    """Hands our records to the ``logging.Logger`` given as ``logger=``/``engineio_logger=``."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.handle(record)


def configure_logging(options: Options) -> None:
    """Apply ``logger`` and ``engineio_logger`` as python-socketio does: True logs INFO
    (to stderr when nothing else is configured), a Logger receives the records."""
    for field, names in LOGGERS.items():
        setting: LoggerSetting = getattr(options, field)
        if setting is False:
            continue
        for name in names:
            ours = logging.getLogger(name)
            if isinstance(setting, logging.Logger):
                ours.handlers = [h for h in ours.handlers if not isinstance(h, _Forward)] + [_Forward(setting)]
                ours.propagate = False
                ours.setLevel(setting.getEffectiveLevel())
            else:
                ours.setLevel(min(ours.getEffectiveLevel(), logging.INFO))
                if not ours.handlers and not logging.getLogger().handlers:
                    ours.addHandler(stderr_handler(options.log_json))
    if options.log_connections:
        lines = logging.getLogger(CONNECTIONS_LOGGER)
        lines.setLevel(min(lines.getEffectiveLevel(), logging.INFO))
        if not lines.handlers and not logging.getLogger().handlers:
            lines.addHandler(stderr_handler(options.log_json))


class SocketLog(Observer):
    """``log_connections``: a line per namespace connect and disconnect (:func:`tornado_sio.logs.socket_event`)."""

    def socket_connected(self, socket: Any) -> None:
        socket_event("socket connect", socket)

    def socket_disconnected(self, socket: Any, reason: str) -> None:
        socket_event("socket disconnect", socket, reason)


#: The one :class:`SocketLog` (it keeps no state): registered while ``log_connections`` is on.
SOCKET_LOG = SocketLog()


def add_routes(app: Any, rules: List[Any]) -> None:
    """Put *rules* in front of *app*'s own (a catch-all route of the app must not hide them)."""
    router = app.wildcard_router
    before = len(router.rules)
    router.add_rules(rules)
    router.rules[:] = router.rules[before:] + router.rules[:before]


def debug_mode(app: Any, debug: bool, log_output: bool) -> None:
    """``run(debug=True)``: Tornado's debug settings (tracebacks in error pages, no caches);
    ``log_output``: the access log (``tornado.access``) at INFO."""
    if debug:
        app.settings.update(debug=True, serve_traceback=True, compiled_template_cache=False,
                            static_hash_cache=False)
    if log_output:
        logging.getLogger("tornado.access").setLevel(logging.INFO)
        if not logging.getLogger().handlers:
            from tornado.log import enable_pretty_logging

            enable_pretty_logging()


async def serve(socketio: SocketIO, app: Any, host: str, port: int, reload: bool, extra_files: List[str],
                server_kwargs: Dict[str, Any], managed_gc: bool = False) -> None:
    """:meth:`SocketIO.run`'s loop: start, listen, wait for a signal or ``stop()``, shut down."""
    stop = socketio.stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if reload:
        from tornado import autoreload

        autoreload.start()
        for path in extra_files:
            autoreload.watch(path)
    await socketio.start()
    from .http.front import listen  # Application.listen, with the polling fast lane in front

    server = listen(app, port, host, **server_kwargs)
    collector = runtime.ManagedGC().start() if managed_gc else None
    log.info("listening on http://%s:%d (event loop: %s)", host, port, runtime.loop_name(loop))
    await stop.wait()
    log.info("shutting down")
    if collector is not None:
        collector.stop()
    server.stop()
    await socketio.shutdown()
    await asyncio.wait_for(server.close_all_connections(), 3)


class SocketIO(Operations, Registers, Observable, AdminUI):
    """A Socket.IO server on Tornado, with Flask-SocketIO's programming model.

    ::

        app = tornado.web.Application([(r'/', IndexHandler)])
        socketio = SocketIO(app, cors_allowed_origins='*')   # adds its routes to app

        @socketio.on('my event', namespace='/test')
        def on_my_event(message):
            emit('my response', {'data': message['data']})

        socketio.run(app, port=5000)

    Every keyword argument is a field of :class:`~tornado_sio.options.Options`
    (``ping_interval``, ``cors_allowed_origins``, ``message_queue``,
    ``handler_threads`` ...; ``docs/limits.md`` has the table). An ``Options``
    object may be passed as ``options=`` instead, with keywords overriding it.
    Without *app*, add :meth:`routes` to an application yourself, or call
    :meth:`init_app` later. Handlers are registered with the decorators of
    :class:`~tornado_sio.registry.Registers` (``on``, ``event``, ``on_error`` ...).
    """

    #: The reasons a ``disconnect`` handler receives (``socketio.reason.CLIENT_DISCONNECT`` ...).
    reason = DisconnectReason
    #: Flask-SocketIO's ``async_mode``: always the IOLoop here.
    async_mode = "tornado"

    def __init__(self, app: Any = None, *, options: Optional[Options] = None, **kwargs: Any) -> None:
        self.registry = Registry()
        #: Who watches this server (:meth:`observe`; the Admin UI, metrics, logs).
        self.observers = Observers()
        #: The loop the server lives on, bound at the first connection or :meth:`start`.
        self.home = LoopHome()
        self.started: Optional[asyncio.Future[None]] = None
        #: Set by :meth:`run` while it runs; :meth:`stop` sets it.
        self.stopping: Optional[asyncio.Event] = None
        self.emitter: Any = None
        #: The Prometheus metrics (:class:`tornado_sio.metrics.Metrics`) with ``metrics=True`` or
        #: ``metrics_port``; None otherwise.
        self.metrics: Any = None
        self.configure(Options.build(options, **kwargs))
        if app is not None:
            self.init_app(app)

    def configure(self, options: Options) -> None:
        """Build the server's parts from *options* (handlers already registered are kept)."""
        if self.loop is not None:
            raise RuntimeError("the server is running: options can only change before it starts")
        self.options = options
        self.path = options.path
        self.registry.allowed = Registry(options.namespaces).allowed
        self.dispatcher = Dispatcher(self, self.registry)
        self.engine = EngineServer(self.dispatcher, options)
        #: Where rooms live and emits go: see :mod:`tornado_sio.adapter`.
        self.adapter: Adapter = build_adapter(options)
        self.adapter.on_server_event(self.server_event_received)
        self.observers.attach(self.adapter)
        self.recovery = Recovery(options, self.adapter)
        self.sockjs_endpoint: Any = None
        configure_logging(options)
        (self.observe if options.log_connections else self.unobserve)(SOCKET_LOG)
        if (options.metrics or options.metrics_port is not None) and self.metrics is None:
            from .metrics import Metrics  # optional dependency (prometheus_client): imported on demand

            self.metrics = Metrics(self)
        if not options.manage_session:
            log.info("manage_session=False: Tornado has no HTTP session to share; `session` is the "
                     "connection's own dict either way")

    def init_app(self, app: Any, **kwargs: Any) -> None:
        """Serve this server from *app* (a ``tornado.web.Application``): its routes are added
        in front of the app's own. Keywords are options, as in Flask-SocketIO's app factories."""
        if kwargs:
            self.configure(Options.build(self.options, **kwargs))
        add_routes(app, self.routes())

    # ------------------------------------------------------------------
    # Emitting
    # ------------------------------------------------------------------

    def emit(self, event: str, *args: Any, to: Rooms = None, room: Rooms = None,
             namespace: Optional[str] = None, skip_sid: Any = None, include_self: bool = True,
             callback: Optional[Handler] = None, timeout: Optional[float] = None,
             ignore_queue: bool = False, local: bool = False, volatile: bool = False,
             compress: bool = True) -> None:
        """Emit *event* to a room, a list of rooms, a sid, or (``to=None``) the whole namespace.

        One tuple argument is several (``emit('e', (1, 2))`` sends two, as in
        Flask-SocketIO). ``skip_sid`` (a sid or a list) leaves clients out;
        ``include_self=False`` leaves out the client being handled. ``callback``
        receives each recipient's acknowledgement. ``ignore_queue=True`` reaches
        the clients of this process only (``local=True`` is the same, Node's
        ``io.local``). ``volatile=True`` skips each client whose transport
        cannot take it right now (Node's ``volatile``); ``compress=False`` asks
        that it not be compressed (see ``docs/node-api.md``). Safe from any coroutine on the IOLoop
        and from other threads (the emit is handed to the IOLoop). In a process
        that runs no event loop (a script) with ``message_queue``, it is
        published to Redis at once and raises
        :class:`~tornado_sio.MessageQueueError` if Redis cannot take it.
        Raises :class:`~tornado_sio.EncodeError` if the data is not valid JSON.
        """
        if not isinstance(event, str):
            raise TypeError("event names are strings")
        if not include_self:
            current = context.current()
            skip_sid = [*room_set(skip_sid), *([current.sid] if current is not None else [])]
        if self.home.off_loop():
            self.home.run(functools.partial(self.emit, event, *args, to=to, room=room, namespace=namespace,
                                           skip_sid=skip_sid, callback=callback, timeout=timeout,
                                           ignore_queue=ignore_queue or local, volatile=volatile,
                                           compress=compress))
            return
        ns = namespace or "/"
        target = to if to is not None else room
        # the hot path (one room, one plain argument list) without helper calls
        rooms = frozenset((target,)) if type(target) is str else room_set(target)
        if not rooms and target is not None:
            return  # an empty list of rooms reaches nobody (None is the whole namespace)
        data = [event, *args] if len(args) != 1 or type(args[0]) is not tuple else [event, *event_args(args)]
        if self.options.json is not None:
            data = convert_json(self.options.json, data, True)
        ignore_queue = ignore_queue or local
        if self.loop is None:  # not serving yet: a script, or a process that only emits
            emitter = None if ignore_queue else self.script_emitter()
            if emitter is not None:
                if callback is not None:
                    raise RuntimeError("callback= needs a running server; this process runs no event loop")
                emitter.emit(data[0], *data[1:], to=rooms, namespace=ns, skip_sid=skip_sid)
                return
            if self.started is None and running_loop() is not None:
                self.ensure_started()  # a process that only emits: connect its message queue
        opts = BroadcastOptions(ns, rooms, room_set(skip_sid) if skip_sid else frozenset(), ignore_queue,
                                volatile, compress)
        packet = SIOPacket(SIOType.EVENT, ns, data)
        self.adapter.emits += 1
        if callback is None:
            self.adapter.broadcast(packet, opts)
            return
        dispatcher = self.dispatcher
        self.adapter.broadcast_with_ack(
            packet, opts,
            lambda sid, ack: dispatcher.run_callback(callback, ack, "ack callback", self.local_socket(sid)),
            timeout or self.options.ack_timeout)

    def send(self, data: Any, json: bool = False, to: Rooms = None, room: Rooms = None,
             namespace: Optional[str] = None, skip_sid: Any = None, include_self: bool = True,
             callback: Optional[Handler] = None, ignore_queue: bool = False) -> None:
        """Send a ``message`` event, or with ``json=True`` a ``json`` event (see :meth:`emit`)."""
        self.emit("json" if json else "message", data, to=to, room=room, namespace=namespace,
                  skip_sid=skip_sid, include_self=include_self, callback=callback, ignore_queue=ignore_queue)

    def script_emitter(self) -> Any:
        """The synchronous Redis :class:`~tornado_sio.emitter.Emitter` this server publishes
        with when the process runs no event loop (a script); None otherwise."""
        if self.loop is not None or self.options.message_queue is None or running_loop() is not None:
            return None
        if self.emitter is None:
            from .emitter import Emitter, stream_options  # needs the redis package: imported on demand

            extra = self.options.message_queue_options
            self.emitter = Emitter(self.options.message_queue, self.options.channel,
                                   format=extra.get("format", "native"), serializer=extra.get("serializer", "json"),
                                   redis_options=extra.get("redis_options"),
                                   timeout=extra.get("connect_timeout", 5.0), sharded=extra.get("sharded", True),
                                   **stream_options(self.adapter))
        return self.emitter

    # ------------------------------------------------------------------
    # Rooms, clients and sessions from outside handlers
    # ------------------------------------------------------------------

    def enter_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Put client *sid* in *room* (any process's, with a message queue)."""
        ns = namespace or "/"
        opts = BroadcastOptions(ns, frozenset((sid,)))
        self.on_loop(functools.partial(self.adapter.add_sockets, opts, (room,)), "enter_room", sid, room, ns)

    def leave_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Take client *sid* out of *room*."""
        ns = namespace or "/"
        opts = BroadcastOptions(ns, frozenset((sid,)))
        self.on_loop(functools.partial(self.adapter.del_sockets, opts, (room,)), "leave_room", sid, room, ns)

    def close_room(self, room: str, namespace: Optional[str] = None) -> None:
        """Every client leaves *room*."""
        opts = BroadcastOptions(namespace or "/", frozenset((room,)))
        self.on_loop(functools.partial(self.adapter.del_sockets, opts, (room,)), "close_room", room, opts.namespace)

    def rooms(self, sid: str, namespace: Optional[str] = None) -> List[str]:
        """The rooms client *sid* is in, in join order, its own sid room first."""
        if self.home.off_loop():
            rooms: List[str] = self.home.run(functools.partial(self.rooms, sid, namespace), wait=True)
            return rooms
        if self.adapter.get_socket(sid, namespace or "/") is None:
            return []
        return self.adapter.socket_rooms(sid)

    def disconnect(self, sid: str, namespace: Optional[str] = None, ignore_queue: bool = False) -> None:
        """Disconnect client *sid* from its namespace; it receives a DISCONNECT
        (its ``disconnect`` handler gets ``server disconnect``)."""
        opts = BroadcastOptions(namespace or "/", frozenset((sid,)), local=ignore_queue)
        self.on_loop(functools.partial(self.adapter.disconnect_sockets, opts), "disconnect", sid, opts.namespace)

    def on_loop(self, fn: Callable[[], Any], *script: Any) -> Any:
        """Run *fn* on the IOLoop (see :meth:`LoopHome.run <tornado_sio.tasks.LoopHome.run>`), or in
        a script with a message queue and no loop, the *script* operation (an
        :class:`~tornado_sio.emitter.Emitter` method name, its arguments, the namespace) instead."""
        emitter = self.script_emitter() if script else None
        if emitter is not None:
            return getattr(emitter, script[0])(*script[1:-1], namespace=script[-1])
        return self.home.run(fn)

    def get_session(self, sid: str, namespace: Optional[str] = None) -> Dict[str, Any]:
        """The ``session`` dict of client *sid* (shared by its namespaces); KeyError if no client
        of this process has that sid."""
        socket = self.local_socket(sid, namespace)
        if socket is None:
            raise KeyError(f"no client {sid} in this process")
        return socket.session  # type: ignore[no-any-return]

    def save_session(self, sid: str, session: Dict[str, Any], namespace: Optional[str] = None) -> None:
        """Make *session* the contents of client *sid*'s ``session``."""
        live = self.get_session(sid, namespace)
        if live is not session:
            live.clear()
            live.update(session)

    @contextlib.contextmanager
    def session(self, sid: str, namespace: Optional[str] = None) -> Iterator[Dict[str, Any]]:
        """``with socketio.session(sid) as session:``: read and change client *sid*'s ``session``."""
        data = self.get_session(sid, namespace)
        yield data
        self.save_session(sid, data, namespace)

    def local_socket(self, sid: str, namespace: Optional[str] = None) -> Any:
        """The :class:`~tornado_sio.socket.Socket` *sid* of this process, or None."""
        return self.adapter.get_socket(sid, namespace)

    # ------------------------------------------------------------------
    # Tasks, routes, running
    # ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the adapter (connect to the message queue, if any).

        :meth:`run` calls this before listening, so a message queue that cannot
        be reached stops the server at once with a clear error. Otherwise it
        starts by itself with the first connection.
        """
        await asyncio.shield(self.ensure_started(awaited=True))

    def ensure_started(self, awaited: bool = False) -> asyncio.Future[None]:
        """Bind to the running loop and start the adapter, once.

        When nobody awaits the start (*awaited* False: the first connection
        started it), a failure is logged; otherwise it is raised to the caller.
        """
        if self.loop is None:
            self.home.bind(running_loop() or IOLoop.current().asyncio_loop)  # type: ignore[attr-defined]
            self.engine.sweeper.add_job(self.dispatcher.expire_acks, 1.0)
            if self.metrics is not None and self.options.metrics_port is not None:
                self.metrics.listen()  # an address in use raises here: run() and start() stop with it
            if self.options.cors_allowed_origins is ORIGIN_CHECKS_OFF:
                log.warning("cors_allowed_origins=[]: origin checks are off; any web page may connect")
        if self.started is None:
            starting = self.adapter.start()
            self.started = (asyncio.ensure_future(starting) if awaited
                            else self.dispatcher.tasks.spawn(starting))
        return self.started

    @property
    def loop(self) -> Optional[asyncio.AbstractEventLoop]:
        """The IOLoop's asyncio loop the server lives on (None until it starts)."""
        return self.home.loop

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run *target* alongside the server, as Flask-SocketIO does.

        An ``async def`` runs as a task on the IOLoop (returned). A plain function
        runs in a daemon thread (the started ``threading.Thread`` is returned; its
        ``join()`` waits), where ``socketio.sleep()`` blocks and ``socketio.emit()``
        is safe. Neither inherits the client of the handler that started it.
        """
        return self.home.start(target, *args, **kwargs)

    def sleep(self, seconds: float = 0) -> Sleep:
        """Sleep *seconds*: blocks in a thread, ``await socketio.sleep(s)`` on the IOLoop.

        Called on the IOLoop without ``await`` it cannot sleep, and says so once
        (see :func:`tornado_sio.tasks.sleep`). In a test, with the test client's
        loop idle in this thread, the loop runs meanwhile.
        """
        return self.home.sleep(seconds)

    def test_client(self, app: Any = None, namespace: Optional[str] = None, query_string: Optional[str] = None,
                    headers: Optional[Dict[str, str]] = None, auth: Any = None) -> SocketIOTestClient:
        """A connected :class:`~tornado_sio.testing.SocketIOTestClient` (Flask-SocketIO's test client):
        in process, no sockets, the same dispatch, rooms and broadcasts. *app* is not needed."""
        return SocketIOTestClient(self, namespace=namespace, query_string=query_string, headers=headers, auth=auth)

    def routes(self) -> List[Any]:
        """Tornado rules to add to any ``Application``: the endpoint, SockJS and the browser client."""
        from . import clientjs
        from .http.routes import endpoint_routes
        from .http.sockjs import SockJSEndpoint

        rules = endpoint_routes(self.engine, self.options)
        if self.options.sockjs and not self.dispatcher.serializer.text:
            # SockJS carries text and its clients speak the JSON parser: see docs/msgpack.md
            log.info("serializer=%r: the SockJS fallback is not served", self.options.serializer)
        elif self.options.sockjs:
            if self.sockjs_endpoint is None:
                self.sockjs_endpoint = SockJSEndpoint(self.dispatcher, self.engine, self.options)
            rules = rules + self.sockjs_endpoint.routes()
        if self.metrics is not None and self.options.metrics:
            rules = rules + self.metrics.routes()
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
        for socket in self.adapter.local_sockets():
            self.dispatcher.socket_gone(socket, "server shutting down")  # type: ignore[arg-type]
        endpoints: List[Any] = [self.engine]
        if self.sockjs_endpoint is not None:
            endpoints.append(self.sockjs_endpoint)
        for endpoint in endpoints:
            endpoint.close_all("server shutting down")
        deadline = time.monotonic() + timeout
        while any(e.undelivered() for e in endpoints) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for endpoint in reversed(endpoints):
            endpoint.stop()
        if self.dispatcher.pool is not None:
            self.dispatcher.pool.shutdown(wait=False)
        if self.metrics is not None:
            self.metrics.stop()
        await self.adapter.stop()

    def run(self, app: Any, host: Optional[str] = None, port: Optional[int] = None, debug: bool = False,
            use_reloader: Optional[bool] = None, log_output: Optional[bool] = None,
            extra_files: Optional[List[str]] = None, loop: Optional[str] = None, managed_gc: bool = False,
            **server_kwargs: Any) -> None:
        """Listen and run the IOLoop until SIGINT/SIGTERM or :meth:`stop`, then shut down gracefully.

        Flask-SocketIO's arguments map to Tornado: *host* (default 127.0.0.1),
        *port* (5000), ``debug=True`` (Tornado's debug settings),
        ``use_reloader`` (Tornado's autoreload, default: *debug*; ``extra_files``
        are watched too), ``log_output`` (the access log, default: *debug*).
        ``allow_unsafe_werkzeug`` and ``reloader_options`` are accepted and
        ignored (Tornado's server is made for production). Other *server_kwargs*
        go to Tornado's ``HTTPServer`` (``xheaders=True`` behind a proxy,
        ``ssl_options`` for TLS). Unless given, ``idle_connection_timeout`` is
        75 s (Tornado's default keeps an idle keep-alive connection for an hour)
        and ``body_timeout`` 30 s (Tornado's default waits forever for a slow
        body). The signal handlers are in place before "listening" is logged.

        The loop is uvloop when it is installed (the ``fast`` extra), else
        asyncio's own; *loop* (``"auto"``, ``"uvloop"``, ``"asyncio"``; default:
        the ``TORNADO_SIO_LOOP`` environment variable, else ``"auto"``) chooses,
        and the "listening" line names it (:func:`tornado_sio.runtime.run`).
        ``managed_gc=True`` runs :class:`~tornado_sio.runtime.ManagedGC` once
        listening: short collections with tens of thousands of connections, at
        the cost of keeping an application's reference cycles that formed in
        objects older than half a second (see its docstring).
        """
        for flask_only in ("allow_unsafe_werkzeug", "reloader_options"):
            server_kwargs.pop(flask_only, None)
        server_kwargs.setdefault("idle_connection_timeout", 75)
        server_kwargs.setdefault("body_timeout", 30)
        host, port = host or "127.0.0.1", 5000 if port is None else port
        debug_mode(app, debug, debug if log_output is None else log_output)

        reload = debug if use_reloader is None else use_reloader
        try:
            runtime.run(serve(self, app, host, port, reload, extra_files or [], server_kwargs, managed_gc), loop)
        finally:
            self.stopping = None

    def stop(self) -> None:
        """Stop :meth:`run` (from a handler, a thread or a coroutine): it shuts down gracefully."""
        stopping = self.stopping
        if stopping is None:
            raise RuntimeError("stop() ends socketio.run(), which is not running")
        self.home.run(stopping.set)
