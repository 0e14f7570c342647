"""Every setting and limit of tornado-sio, in one dataclass.

:class:`Options` is shared by :class:`~tornado_sio.SocketIO`,
:class:`~tornado_sio.EngineIOApp` and the SockJS router, so a limit has one
name, one default and one place where it is checked for sense.
``docs/limits.md`` documents each one; a test reads that table and compares its
defaults with the fields below, so the two cannot drift apart.

``SocketIO(ping_interval=10)`` and ``SocketIO(options=Options(ping_interval=10))``
are the same thing: the keyword arguments of the server are the fields of this
class.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple, Union

__all__ = ["Options", "Origins", "Namespaces", "Cookie", "InitialHeaders", "LoggerSetting", "TRANSPORTS",
           "COOKIE_DEFAULTS", "COOKIE_ATTRIBUTES", "ORIGIN_CHECKS_OFF", "ASYNC_MODES", "SERIALIZERS",
           "RECOVERY_DEFAULTS", "recovery_settings"]

#: ``cors_allowed_origins``: None (same origin), ``'*'``, one origin, a list, or a predicate.
Origins = Union[None, str, Sequence[str], Callable[[str], bool]]

#: ``namespaces``: None (``/`` and every namespace with a handler), ``'*'`` (any), or a list.
Namespaces = Union[None, str, Iterable[str]]

#: The Engine.IO transports a server can offer.
TRANSPORTS = ("polling", "websocket")

#: ``cookie``: None (no cookie), True (``io``), a cookie name, or a dict of attributes.
Cookie = Union[None, bool, str, Dict[str, Any]]

#: ``initial_headers``: None, a dict of headers, or ``callable(tornado_request) -> dict``.
InitialHeaders = Union[None, Dict[str, str], Callable[[Any], Dict[str, str]]]

#: The attributes ``cookie=True`` or ``cookie="name"`` stand for (Node's engine.io defaults).
COOKIE_DEFAULTS: Dict[str, Any] = {"name": "io", "path": "/", "httponly": True, "samesite": "Lax"}

#: ``logger`` / ``engineio_logger``: False (leave logging as configured), True (INFO to stderr), or a Logger.
LoggerSetting = Union[bool, logging.Logger]

#: The ``serializer`` values accepted: ``default`` is python-socketio's name for ``json``.
SERIALIZERS = ("json", "default", "msgpack")

#: The ``async_mode`` values accepted: tornado-sio runs on Tornado's IOLoop only.
ASYNC_MODES = (None, "tornado")


class _OriginChecksOff(str):
    """``'*'``, written as Flask-SocketIO's ``cors_allowed_origins=[]`` ("origin checks off")."""

    __slots__ = ()


#: What ``cors_allowed_origins=[]`` becomes: equal to ``'*'`` (any origin passes), and
#: recognisable, so the server can warn at start that origin checks are off.
ORIGIN_CHECKS_OFF = _OriginChecksOff("*")

#: The attributes a ``cookie`` dict may set (case and ``-``/``_`` do not matter: ``SameSite``, ``max-age``).
COOKIE_ATTRIBUTES = frozenset({"name", "path", "httponly", "samesite", "secure", "max_age", "expires", "domain"})


#: ``connection_state_recovery`` settings and their defaults (Node's ``connectionStateRecovery``).
RECOVERY_DEFAULTS: Dict[str, Any] = {"max_disconnection_duration": 120.0, "skip_middlewares": True,
                                     "max_packets": 1000}


def recovery_settings(value: Any) -> Optional[Dict[str, Any]]:
    """``connection_state_recovery`` completed with its defaults: None or False is off,
    True or a dict is on. Unknown keys and values out of range raise ``ValueError``."""
    if value is None or value is False:
        return None
    given = {} if value is True else value
    if not isinstance(given, dict):
        raise ValueError("connection_state_recovery must be None, True or a dict")
    unknown = sorted(set(given) - set(RECOVERY_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown connection_state_recovery keys {unknown}; known: {sorted(RECOVERY_DEFAULTS)}")
    settings = {**RECOVERY_DEFAULTS, **given}
    if not float(settings["max_disconnection_duration"]) > 0 or int(settings["max_packets"]) < 1:
        raise ValueError("connection_state_recovery: max_disconnection_duration must be positive "
                         "and max_packets at least 1")
    settings["max_disconnection_duration"] = float(settings["max_disconnection_duration"])
    settings["max_packets"] = int(settings["max_packets"])
    settings["skip_middlewares"] = bool(settings["skip_middlewares"])
    return settings


@dataclasses.dataclass
class Options:
    """The settings of a server; every field has a safe default.

    Endpoint and policy
        ``path``, ``transports``, ``allow_upgrades``, ``cors_allowed_origins``,
        ``cors_credentials``, ``allow_request``, ``websocket_compression``,
        ``websocket_owned``.
    Heartbeat and deadlines (seconds)
        ``ping_interval``, ``ping_timeout``, ``connect_timeout``, ``upgrade_timeout``,
        ``ack_timeout``.
    Limits
        ``max_http_buffer_size``, ``max_send_buffer``, ``max_connections``,
        ``max_packets``, ``max_attachments``, ``max_depth``, ``max_pending_events``,
        ``max_pending_acks``.
    Socket.IO
        ``namespaces``, ``async_handlers``, ``always_connect``, ``json``, ``serializer``,
        ``manage_session``, ``connection_state_recovery``.
    Where handlers run
        ``async_mode``, ``handler_threads``, ``slow_handler_warning``, ``slow_handler_threshold``.
    Logging
        ``logger``, ``engineio_logger``, ``log_connections``, ``log_json``.
    Metrics
        ``metrics``, ``metrics_path``, ``metrics_port``, ``metrics_host``.
    Message queue
        ``message_queue``, ``channel``, ``write_only``, ``message_queue_options``,
        ``client_manager``.
    SockJS
        ``sockjs``, ``sockjs_prefix``, ``sockjs_settings``, ``sockjs_client_url``,
        ``sockjs_client_integrity``.
    """

    # -- endpoint and policy ---------------------------------------------
    #: Where the Engine.IO endpoint is served (``/socket.io`` as the official clients expect).
    path: str = "/socket.io"
    #: The transports served; others get 400.
    transports: Tuple[str, ...] = TRANSPORTS
    #: Whether a polling session may upgrade to WebSocket.
    allow_upgrades: bool = True
    #: Which ``Origin`` may use the endpoint (see :data:`Origins`).
    cors_allowed_origins: Origins = None
    #: Whether allowed origins get ``Access-Control-Allow-Credentials``.
    cors_credentials: bool = True
    #: ``callable(tornado_request) -> bool`` run before a session is created; False refuses (403).
    allow_request: Optional[Callable[[Any], bool]] = None
    #: permessage-deflate on WebSocket connections.
    websocket_compression: bool = False
    #: After the 101, a WebSocket moves to tornado-sio's own connection (``http/owned.py``);
    #: False keeps every WebSocket on Tornado's ``WebSocketHandler``.
    websocket_owned: bool = True
    #: A cookie holding the sid on the polling handshake response, for sticky load balancing
    #: (see :data:`Cookie`; ``docs/limits.md``). None: no cookie, as Node's engine.io >= 4.
    cookie: Cookie = None
    #: Headers added to handshake responses (polling and WebSocket), like engine.io's
    #: ``initial_headers`` event (see :data:`InitialHeaders`).
    initial_headers: InitialHeaders = None

    # -- heartbeat and deadlines -------------------------------------------
    #: Seconds between server pings.
    ping_interval: float = 25.0
    #: Seconds to wait for a pong.
    ping_timeout: float = 20.0
    #: Seconds a connection may stay open without a connected namespace; None disables.
    connect_timeout: Optional[float] = 45.0
    #: Seconds for a probing WebSocket to finish the upgrade.
    upgrade_timeout: float = 10.0
    #: Seconds before an unanswered ``callback=`` is dropped; None keeps it until the client leaves.
    ack_timeout: Optional[float] = 60.0

    # -- limits ----------------------------------------------------------
    #: Bytes in one polling POST, one WebSocket message, and the attachments of one packet.
    max_http_buffer_size: int = 1_000_000
    #: Bytes waiting for one client that does not read.
    max_send_buffer: int = 4_000_000
    #: Connections open at once (Engine.IO and SockJS together); None: no limit.
    max_connections: Optional[int] = None
    #: Engine.IO packets in one polling POST.
    max_packets: int = 1000
    #: Binary attachments one packet may carry (socket.io-parser's limit).
    max_attachments: int = 10
    #: Nesting depth of incoming JSON.
    max_depth: int = 32
    #: Events of one client queued behind its running handler.
    max_pending_events: int = 256
    #: Server-to-client acks one client has not answered yet.
    max_pending_acks: int = 1000

    # -- Socket.IO ---------------------------------------------------------
    #: Which namespaces a client may connect to (see :data:`Namespaces`).
    namespaces: Namespaces = None
    #: False: one client's events are handled one at a time, in order; True: concurrently.
    async_handlers: bool = False
    #: True: a client is connected before its ``connect`` handler runs, and gets a DISCONNECT
    #: if the handler refuses (python-socketio's ``always_connect``); False: CONNECT_ERROR.
    always_connect: bool = False
    #: A JSON module (``dumps`` and ``loads``) for event data, as Flask-SocketIO's ``json``:
    #: outgoing data goes through its ``dumps``, incoming through its ``loads``. None: strict JSON.
    json: Any = None
    #: The Socket.IO parser the clients use, one per server (see :data:`SERIALIZERS`): ``'json'``
    #: (``socket.io-parser``, every client's default; python-socketio's ``'default'``) or
    #: ``'msgpack'`` (``socket.io-msgpack-parser``, python-socketio's ``serializer='msgpack'``;
    #: the ``msgpack`` extra). msgpack serves no SockJS fallback (``docs/msgpack.md``).
    serializer: str = "json"
    #: Flask-SocketIO's ``manage_session``. Tornado has no HTTP session to share, so ``session``
    #: is always a dict per connection that tornado-sio manages; False is accepted and logged.
    manage_session: bool = True
    #: Connection state recovery (socket.io >= 4.6): None (off), or a dict with
    #: ``max_disconnection_duration`` (seconds a disconnected socket's state and missed
    #: packets are kept, default 120), ``skip_middlewares`` (default True) and
    #: ``max_packets`` (packets kept per namespace, the oldest evicted, default 1000).
    connection_state_recovery: Optional[Dict[str, Any]] = None

    # -- where handlers run --------------------------------------------------
    #: Flask-SocketIO's ``async_mode``: only ``'tornado'`` (or None) exists here; plain
    #: handlers in threads are ``handler_threads``.
    async_mode: Optional[str] = None
    #: 0: plain (``def``) handlers run on the IOLoop, Tornado's model. N: they run in a pool
    #: of N threads, where blocking (``time.sleep``, ``socketio.call()``) is fine; each
    #: client's events still run one at a time, in order.
    handler_threads: int = 0
    #: Seconds a plain handler may hold the IOLoop before a WARNING names its event; None: never.
    slow_handler_warning: Optional[float] = 0.1
    #: Seconds a handler (plain, or ``async def`` from start to end) may take before
    #: observers' ``handler_slow`` hears of it (metrics, logs; :mod:`tornado_sio.observe`); 0: never.
    slow_handler_threshold: float = 1.0

    # -- logging -----------------------------------------------------------
    #: The Socket.IO layer's logging (``tornado_sio.server``, ``tornado_sio.adapter``):
    #: False leaves it to your logging configuration, True logs INFO to stderr, a Logger gets it.
    logger: LoggerSetting = False
    #: The same for the Engine.IO and HTTP layers (``tornado_sio.engine``, ``tornado_sio.http``).
    engineio_logger: LoggerSetting = False
    #: One INFO line per connection event (connect, upgrade, namespace connect and disconnect,
    #: disconnect with its reason) on ``tornado_sio.connections`` (:mod:`tornado_sio.logs`).
    log_connections: bool = False
    #: Handlers that ``logger=True``/``engineio_logger=True``/``log_connections`` add write JSON
    #: lines (:class:`tornado_sio.logs.JSONFormatter`) instead of text.
    log_json: bool = False

    # -- metrics -------------------------------------------------------------
    #: Serve Prometheus metrics (:mod:`tornado_sio.metrics`; ``pip install tornado-sio[metrics]``)
    #: at ``metrics_path`` on the application's own port.
    metrics: bool = False
    #: Where ``metrics=True`` serves them.
    metrics_path: str = "/metrics"
    #: Also (or only) serve the metrics on this port of their own, at ``metrics_path``; None: no port.
    metrics_port: Optional[int] = None
    #: The address ``metrics_port`` listens on.
    metrics_host: str = "127.0.0.1"

    # -- message queue ---------------------------------------------------
    #: ``redis://host:port/db`` to share emits and rooms with other processes, or a
    #: Redis Cluster's ``redis+cluster://host:port,host:port`` (sharded pub/sub).
    message_queue: Optional[str] = None
    #: The pub/sub channel (prefix) on the message queue.
    channel: Optional[str] = None
    #: Only emit through the message queue (a process that serves no clients).
    write_only: bool = False
    #: Further options of the Redis adapter (``format``, ``node_emitter_key`` ...).
    message_queue_options: Dict[str, Any] = dataclasses.field(default_factory=dict)
    #: A factory ``(options) -> Adapter`` to use instead of the built-in adapters.
    client_manager: Optional[Callable[[Options], Any]] = None

    # -- SockJS ------------------------------------------------------------
    #: Also serve the SockJS fallback router from ``routes()``.
    sockjs: bool = True
    #: Where the SockJS router is mounted.
    sockjs_prefix: str = "/sockjs"
    #: sockjs-tornado settings overriding the defaults derived from the fields above.
    sockjs_settings: Dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Where browsers load sockjs-client from, on the page and in the SockJS iframe page:
    #: an absolute path on this server, or an http(s) URL. None: sockjs-client 1.6.1 on
    #: jsDelivr, pinned by its SRI hash.
    sockjs_client_url: Optional[str] = None
    #: The SRI hash (``sha384-...``) of ``sockjs_client_url``; required for a URL on another origin.
    sockjs_client_integrity: Optional[str] = None

    def __post_init__(self) -> None:
        self.path = "/" + self.path.strip("/")
        origins = self.cors_allowed_origins
        if isinstance(origins, (list, tuple)) and not origins:
            self.cors_allowed_origins = ORIGIN_CHECKS_OFF
        if self.async_mode not in ASYNC_MODES:
            raise ValueError(f"async_mode={self.async_mode!r}: tornado-sio runs on Tornado's IOLoop "
                             "('tornado' or None); for plain handlers in threads, set handler_threads=N")
        if self.json is not None and not (callable(getattr(self.json, "dumps", None))
                                          and callable(getattr(self.json, "loads", None))):
            raise ValueError("json must be a module or object with dumps() and loads()")
        if self.serializer not in SERIALIZERS:
            raise ValueError(f"serializer={self.serializer!r}: known are {', '.join(SERIALIZERS)} "
                             "(pickle is not offered: it would run code a client sends)")
        if self.serializer == "msgpack" and importlib.util.find_spec("msgpack") is None:
            raise ImportError("serializer='msgpack' needs the msgpack package: pip install 'tornado-sio[msgpack]'")
        if int(self.handler_threads) < 0:
            raise ValueError("handler_threads must be 0 (handlers on the IOLoop) or a number of threads")
        self.transports = tuple(self.transports)
        unknown = [t for t in self.transports if t not in TRANSPORTS]
        if unknown or not self.transports:
            raise ValueError(f"transports must be a non-empty subset of {TRANSPORTS}, not {self.transports!r}")
        for name in ("ping_interval", "ping_timeout", "upgrade_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in ("connect_timeout", "ack_timeout", "slow_handler_warning"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None")
        if not self.slow_handler_threshold >= 0:
            raise ValueError("slow_handler_threshold must be 0 (off) or positive")
        for name in ("max_http_buffer_size", "max_send_buffer", "max_packets", "max_attachments",
                     "max_depth", "max_pending_events", "max_pending_acks"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        self.metrics_path = "/" + self.metrics_path.strip("/")
        if self.metrics_port is not None and not 0 <= int(self.metrics_port) < 65536:
            raise ValueError("metrics_port must be None or a port number (0: any free port)")
        if self.max_connections is not None and self.max_connections < 0:
            raise ValueError("max_connections must be None or at least 0")
        self.ping_interval = float(self.ping_interval)
        self.ping_timeout = float(self.ping_timeout)
        self.upgrade_timeout = float(self.upgrade_timeout)
        self.max_http_buffer_size = int(self.max_http_buffer_size)
        self.max_send_buffer = int(self.max_send_buffer)
        _ = self.handshake_cookie  # raises ValueError for a malformed ``cookie``
        if self.initial_headers is not None and not (callable(self.initial_headers)
                                                     or isinstance(self.initial_headers, dict)):
            raise ValueError("initial_headers must be None, a dict or a callable")
        # With message_queue, recovery runs on the Redis Streams transport: the Redis adapter
        # chooses it, and refuses at start-up what cannot work (pub/sub, python-socketio's format).
        self.connection_state_recovery = recovery_settings(self.connection_state_recovery)
        self.message_queue_options = dict(self.message_queue_options or {})
        self.sockjs_settings = dict(self.sockjs_settings or {})

    @classmethod
    def build(cls, options: Optional[Options] = None, **overrides: Any) -> Options:
        """*options* (or the defaults) with *overrides* applied; unknown names raise TypeError."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"unknown option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
        if options is None:
            return cls(**overrides)
        return dataclasses.replace(options, **overrides) if overrides else options

    @property
    def handshake_cookie(self) -> Optional[Dict[str, Any]]:
        """The ``cookie`` option as a full dict of attributes (lower-case keys), or None.

        Raises ``ValueError`` for an unknown attribute or a cookie without a name.
        """
        value = self.cookie
        if value is None or value is False:
            return None
        attributes = dict(COOKIE_DEFAULTS)
        if value is True:
            return attributes
        if isinstance(value, str):
            attributes["name"] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                name = str(key).lower().replace("-", "_")
                if name not in COOKIE_ATTRIBUTES:
                    raise ValueError(f"unknown cookie attribute {key!r}; known: {sorted(COOKIE_ATTRIBUTES)}")
                attributes[name] = item
            if "httponly" not in {str(k).lower() for k in value} and not attributes.get("path"):
                attributes["httponly"] = False  # Node: httpOnly defaults to (path !== false)
        else:
            raise ValueError("cookie must be None, True, a name or a dict of attributes")
        if not attributes.get("name") or not isinstance(attributes["name"], str):
            raise ValueError("the cookie needs a name")
        return attributes

    @property
    def upgrades(self) -> bool:
        """Whether polling sessions are offered the WebSocket upgrade."""
        return self.allow_upgrades and "websocket" in self.transports
