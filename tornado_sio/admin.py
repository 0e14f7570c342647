"""The Socket.IO Admin UI: :meth:`SocketIO.instrument <tornado_sio.SocketIO.instrument>`.

It speaks the protocol of ``@socket.io/admin-ui`` 0.5, the instrumentation
Node's socket.io servers run, so the official UI (https://admin.socket.io, or
its build served by this server with ``ui_path=``) connects to the admin
namespace (``/admin``) of a tornado-sio server as it would to a Node one:

* on connect: ``session`` (an id the UI reconnects with), ``config`` (the
  operations it may offer) and, in development mode, ``all_sockets``;
* every ``stats_interval`` seconds, each process emits ``server_stats`` (clients,
  polling clients, sockets per namespace, uptime, memory, and the engine's
  connections, packets and bytes in and out since the last one);
* in development mode, as they happen: ``socket_connected``,
  ``socket_updated`` (a polling client that upgraded), ``socket_disconnected``,
  ``room_joined``, ``room_left``, ``event_received``, ``event_sent``;
* operations from the UI, unless ``read_only``: ``emit``, ``join``, ``leave``,
  ``_disconnect``, each on a room or a socket of a namespace.

Everything goes through the adapter, as in Node: the admin events are emits to
the admin namespace, sockets are listed with ``fetch_sockets``, operations are
``sockets_join`` / ``sockets_leave`` / ``disconnect_sockets``. With the Redis
adapter every process that calls ``instrument()`` reports to the UI wherever it
is connected, and the UI's operations reach sockets on any process.

The events of development mode come from an :class:`~tornado_sio.observe.Observer`;
production mode registers none (only the periodic stats run), so it costs
nothing per message.
"""

from __future__ import annotations

import asyncio
import datetime
import hmac
import inspect
import json
import logging
import os
import re
import secrets
import socket as socketlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

import tornado.web
from tornado.routing import URLSpec

from .context import current
from .exceptions import ConnectionRefusedError, TornadoSIOError
from .observe import Observer
from .tasks import TaskSet

if TYPE_CHECKING:
    from .socket import Socket

__all__ = ["AdminUI", "AdminAuth", "Instrumentation", "AdminUIHandler", "ui_routes", "serialize_socket",
           "MODES", "MAX_SESSIONS", "SESSION_LIFETIME", "MAX_WATCHED_SOCKETS"]

log = logging.getLogger("tornado_sio.server")

#: ``mode=``: development reports every socket, room and event; production only the stats.
MODES = ("development", "production")
#: Session ids (what the UI reconnects with instead of the password) kept per process; the oldest go first.
MAX_SESSIONS = 1000
#: Seconds a session id stays valid (Node's ``RedisStore`` default: a day).
SESSION_LIFETIME = 86400.0
#: Past this many local sockets, development mode stops looking for ``data`` changes at each tick.
MAX_WATCHED_SOCKETS = 10000

#: What ``auth=`` accepts: credentials (one dict or several), a callable, or False.
AuthSetting = Union[bool, Dict[str, str], List[Dict[str, str]], Callable[[Any], Any], None]

_BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
_HOSTNAME = socketlib.gethostname()


def iso(timestamp: float) -> str:
    """*timestamp* as JavaScript's ``Date.toJSON()`` writes it (what the UI parses)."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def resident_memory() -> int:
    """This process's resident memory in bytes (its peak where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        import resource  # not on Windows; /proc is read first anyway

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def process_started() -> float:
    """When this process started (``time.time()`` scale), for Node's ``process.uptime()``;
    now where /proc is missing."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            after_name = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            since_boot = float(uptime.read().split()[0])
        started_after_boot = int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat(5)
        return time.time() - (since_boot - started_after_boot)
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


def serialize_socket(sid: str, namespace: str, rooms: List[str], data: Dict[str, Any],
                     handshake: Dict[str, Any]) -> Dict[str, Any]:
    """A socket as the UI lists it, from what ``fetch_sockets`` reports (local or remote).

    ``clientId``, ``transport`` and the time of the handshake travel in
    ``data['_admin']`` (as Node's instrumentation keeps them), so a socket of
    another process is shown the same; the UI never sees ``_admin`` in ``data``.
    """
    found = data.get("_admin")
    admin: Dict[str, Any] = found if isinstance(found, dict) else {}
    headers = {str(k).lower(): v for k, v in (handshake.get("headers") or {}).items()}
    issued = admin.get("issued") or 0
    return {
        "id": sid,
        "clientId": admin.get("clientId"),
        "transport": admin.get("transport"),
        "nsp": namespace,
        "data": user_data(data),
        "handshake": {
            "address": headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or handshake.get("address"),
            "headers": headers,
            "query": handshake.get("query") or {},
            "issued": issued,
            "secure": bool(handshake.get("secure")),
            "time": iso(issued / 1000) if issued else "",
            "url": admin.get("url", ""),
            "xdomain": "origin" in headers,
        },
        "rooms": list(rooms),
    }


class AdminAuth:
    """Who may open the admin namespace: ``auth=`` of :meth:`AdminUI.instrument`.

    * ``{'username': ..., 'password': ...}`` (or a list of them): the password in
      clear, or a bcrypt hash (``$2b$...``, checked with the ``bcrypt`` package, the
      ``admin`` extra, in a thread: a check takes tens of milliseconds);
    * a callable ``auth(client_auth) -> bool`` (or an awaitable of it): the UI sends
      ``{'username', 'password'}`` as its ``auth``;
    * ``False``: anyone may connect (logged as a WARNING). There is no default.

    A client that passed gets a session id (emitted as ``session``), which the UI
    sends instead of the password when it reconnects; it is valid on this process
    for :data:`SESSION_LIFETIME` seconds.
    """

    def __init__(self, auth: AuthSetting) -> None:
        if auth is None or auth is True:
            raise ValueError("instrument() needs auth=: {'username': ..., 'password': ...} (the password may be a "
                             "bcrypt hash), a list of them, a callable, or auth=False to let anyone in")
        self.open = auth is False
        self.check_fn: Optional[Callable[[Any], Any]] = None
        self.credentials: List[Tuple[str, str]] = []
        #: Session id -> when it expires (``time.monotonic()``), oldest first.
        self.sessions: Dict[str, float] = {}
        if self.open:
            log.warning("the Admin UI accepts anyone (auth=False): do not expose it")
        elif callable(auth):
            self.check_fn = auth
        else:
            for entry in [auth] if isinstance(auth, dict) else list(auth):  # type: ignore[arg-type]
                self.credentials.append(self.credential(entry))
            if not self.credentials:
                raise ValueError("instrument(auth=[]) lets nobody in; use auth=False to let anyone in")

    @staticmethod
    def credential(entry: Any) -> Tuple[str, str]:
        """Check one ``{'username', 'password'}`` entry; a bcrypt hash needs the bcrypt package now."""
        if not isinstance(entry, dict) or not isinstance(entry.get("username"), str) \
                or not isinstance(entry.get("password"), str):
            raise TypeError("instrument(auth=...) credentials are {'username': str, 'password': str}")
        password = entry["password"]
        if password.startswith("$2"):
            if not _BCRYPT_HASH.match(password):
                raise ValueError("the password starts like a bcrypt hash but is not a valid one")
            try:
                import bcrypt  # noqa: F401  - optional dependency (the `admin` extra)
            except ImportError as exc:
                raise ImportError("a bcrypt-hashed Admin UI password needs the bcrypt package: "
                                  "pip install 'tornado-sio[admin]'") from exc
        return entry["username"], password

    async def check(self, client_auth: Any) -> Tuple[bool, bool]:
        """Whether *client_auth* (the UI's ``auth``) may in, and whether it deserves a new session id."""
        if self.open:
            return True, False
        if isinstance(client_auth, dict) and self.session_valid(client_auth.get("sessionId")):
            return True, False
        if self.check_fn is not None:
            result = self.check_fn(client_auth)
            if inspect.isawaitable(result):
                result = await result
            return bool(result), bool(result)
        if not isinstance(client_auth, dict):
            return False, False
        username, password = client_auth.get("username"), client_auth.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return False, False
        for known_user, known_password in self.credentials:
            if hmac.compare_digest(username.encode(), known_user.encode()) \
                    and await self.password_matches(password, known_password):
                return True, True
        return False, False

    @staticmethod
    async def password_matches(given: str, known: str) -> bool:
        """Compare in constant time; a bcrypt hash is checked in a thread (it is slow on purpose)."""
        if not known.startswith("$2"):
            return hmac.compare_digest(given.encode(), known.encode())
        import bcrypt  # checked importable at instrument()

        loop = asyncio.get_running_loop()
        return bool(await loop.run_in_executor(None, bcrypt.checkpw, given.encode(), known.encode()))

    def new_session(self) -> str:
        """A fresh session id, remembered (the oldest dropped past :data:`MAX_SESSIONS`)."""
        while len(self.sessions) >= MAX_SESSIONS:
            del self.sessions[next(iter(self.sessions))]
        session = secrets.token_hex(16)
        self.sessions[session] = time.monotonic() + SESSION_LIFETIME
        return session

    def session_valid(self, session: Any) -> bool:
        """Whether *session* is an id this process gave out and that has not expired."""
        if not isinstance(session, str) or not session:
            return False
        expires = self.sessions.get(session)
        if expires is None:
            return False
        if expires < time.monotonic():
            del self.sessions[session]
            return False
        return True


class AdminUIHandler(tornado.web.StaticFileHandler):
    """Serves the Admin UI's build (``ui/dist`` of the npm package) for offline deployments."""

    def set_extra_headers(self, path: str) -> None:
        # the UI is an admin tool: not framed by other sites, not cached by shared proxies
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Cache-Control", "private, max-age=300")


def ui_routes(ui_path: Union[str, os.PathLike[str]], ui_url: str = "/admin-ui/") -> List[URLSpec]:
    """Tornado rules serving the Admin UI build in *ui_path* at *ui_url* (``/admin-ui`` redirects)."""
    root = Path(ui_path)
    if not (root / "index.html").is_file():
        raise ValueError(f"ui_path={str(ui_path)!r} holds no index.html (give the ui/dist folder of "
                         "@socket.io/admin-ui)")
    prefix = "/" + ui_url.strip("/")
    if prefix == "/":
        raise ValueError("ui_url must be a path below the root, such as '/admin-ui/'")
    return [
        URLSpec(re.escape(prefix), tornado.web.RedirectHandler, {"url": prefix + "/"}),
        URLSpec(re.escape(prefix) + "/(.*)", AdminUIHandler, {"path": str(root), "default_filename": "index.html"}),
    ]


class Instrumentation(Observer):
    """One server's Admin UI instrumentation (see the module docstring); made by ``instrument()``.

    In development mode it is registered as an observer of the server; its
    hooks turn what happens into admin events. :meth:`stop` ends it.
    """

    def __init__(self, server: Any, auth: AuthSetting, *, namespace: str = "/admin", read_only: bool = False,
                 mode: str = "development", server_id: Optional[str] = None,
                 ui_path: Optional[Union[str, os.PathLike[str]]] = None, ui_url: str = "/admin-ui/",
                 app: Any = None, stats_interval: float = 2.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if not isinstance(namespace, str) or not namespace.startswith("/"):
            raise ValueError("namespace must start with '/'")
        if not stats_interval > 0:
            raise ValueError("stats_interval must be positive")
        self.server = server
        self.auth = AdminAuth(auth)
        self.namespace = namespace
        self.read_only = read_only
        self.development = mode == "development"
        self.server_id = server_id or _HOSTNAME
        self.started = process_started()
        self.tasks = TaskSet("admin ui task")
        #: Sockets of this process still on polling: told to the UI when they upgrade.
        self.polling: Dict[str, Socket] = {}
        #: The ``data`` of each local socket as last told to the UI (JSON text), to report changes.
        self.data_told: Dict[str, str] = {}
        #: The engine's counters at the last stats (their differences are the aggregated events).
        self.last_counts: Dict[Tuple[str, Optional[str]], int] = {}
        self.features = self.supported_features()
        self.register()
        if self.development:
            server.observe(self)
        self.job = server.engine.sweeper.add_job(self.tick, stats_interval)
        self.routes: List[URLSpec] = ui_routes(ui_path, ui_url) if ui_path is not None else []
        if app is not None and self.routes:
            rules = app.wildcard_router.rules
            before = len(rules)
            app.wildcard_router.add_rules(self.routes)
            rules[:] = rules[before:] + rules[:before]  # in front: an app's catch-all must not hide them

    def supported_features(self) -> List[str]:
        """The ``config`` the UI gets: which operations to offer, and which events to expect."""
        features = [] if self.read_only else ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE",
                                               "MDISCONNECT"]
        features.append("AGGREGATED_EVENTS")
        if self.development:
            features.append("ALL_EVENTS")
        return features

    def register(self) -> None:
        """Handlers of the admin namespace: the authenticated connect, and the UI's operations."""
        server, ns = self.server, self.namespace
        if "_disconnect" in server.registry.handlers.get(ns, {}):
            raise RuntimeError(f"the Admin UI is already served on {ns} by this server")
        allowed = server.registry.allowed
        if isinstance(allowed, set):
            allowed.add(ns)  # a server with an explicit list of namespaces still serves the admin one
        server.on_event("connect", self.admin_connected, namespace=ns)
        server.on_event("emit", self.op_emit, namespace=ns)
        server.on_event("join", self.op_join, namespace=ns)
        server.on_event("leave", self.op_leave, namespace=ns)
        server.on_event("_disconnect", self.op_disconnect, namespace=ns)

    def stop(self) -> None:
        """Stop the stats and the events (the admin namespace then only refuses operations)."""
        self.server.engine.sweeper.remove_job(self.job)
        self.server.unobserve(self)
        self.read_only = True
        self.polling.clear()
        self.tasks.cancel_all()

    # -- the admin namespace ---------------------------------------------------------

    async def admin_connected(self, auth: Any = None) -> None:
        """A UI connects: check its credentials, then send its session, config, stats and sockets."""
        socket = current()
        accepted, fresh = await self.auth.check(auth)
        if not accepted or socket is None:
            raise ConnectionRefusedError("invalid credentials")  # the UI shows its login form on this message
        sid = socket.sid
        log.info("Admin UI: %s connected to %s from %s%s", sid, self.namespace, socket.request.remote_ip,
                 " (new session)" if fresh else "")
        if fresh:
            self.to(sid, "session", self.auth.new_session())
        self.to(sid, "config", {"supportedFeatures": self.features})
        self.to(sid, "server_stats", self.stats(consume=False))
        if self.development:
            self.tasks.spawn(self.send_all_sockets(sid))

    async def send_all_sockets(self, sid: str) -> None:
        """``all_sockets``: every socket of every namespace this process knows, on every process."""
        namespaces = self.known_namespaces()
        found = await asyncio.gather(*(self.server.fetch_sockets(namespace=ns) for ns in namespaces),
                                     return_exceptions=True)
        sockets: List[Dict[str, Any]] = []
        for ns, result in zip(namespaces, found):
            if isinstance(result, BaseException):
                log.warning("Admin UI: listing the sockets of %s failed: %s", ns, result)
                continue
            sockets.extend(serialize_socket(s.sid, s.namespace, s.rooms, s.data, s.handshake) for s in result)
        self.to(sid, "all_sockets", sockets)

    def known_namespaces(self) -> List[str]:
        """Namespaces with handlers here, or with sockets on this process (sorted)."""
        registry = self.server.registry
        names = {n for n in [*registry.handlers, *registry.namespace_objects] if n.startswith("/")}
        names.update(getattr(self.server.adapter, "namespace_members", {}))
        return sorted(names)

    def refused(self, operation: str) -> bool:
        """Whether *operation* is refused (read-only); logged."""
        if self.read_only:
            socket = current()
            log.info("Admin UI %s: %s refused (read_only)", getattr(socket, "sid", "-"), operation)
        return self.read_only

    def op_emit(self, namespace: Any = None, room: Any = None, event: Any = None, *args: Any) -> None:
        """``emit``: send *event* to the sockets of *room* (or all) in *namespace*, on every process."""
        if self.refused("emit") or not valid_target(namespace, room) or not isinstance(event, str):
            return
        self.server.emit(event, *args, to=room or None, namespace=namespace)

    def op_join(self, namespace: Any = None, room: Any = None, target: Any = None) -> None:
        """``join``: the sockets of *target* (a room or a sid; None: all) in *namespace* join *room*."""
        if not self.refused("join") and valid_target(namespace, target) and isinstance(room, str):
            self.server.sockets_join(room, to=target or None, namespace=namespace)

    def op_leave(self, namespace: Any = None, room: Any = None, target: Any = None) -> None:
        """``leave``: the sockets of *target* in *namespace* leave *room*."""
        if not self.refused("leave") and valid_target(namespace, target) and isinstance(room, str):
            self.server.sockets_leave(room, to=target or None, namespace=namespace)

    def op_disconnect(self, namespace: Any = None, close: Any = False, target: Any = None) -> None:
        """``_disconnect``: disconnect the sockets of *target* in *namespace* (*close*: their connections)."""
        if not self.refused("disconnect") and valid_target(namespace, target):
            self.server.disconnect_sockets(to=target or None, namespace=namespace, close=bool(close))

    # -- emitting to the UI ----------------------------------------------------------

    def to(self, sid: str, event: str, *args: Any) -> None:
        """Emit to one admin socket of this process (held until its connect is accepted); never
        through the message queue, so a session id stays in this process."""
        self.server.emit(event, *args, to=sid, namespace=self.namespace, local=True)

    def broadcast(self, event: str, *args: Any) -> None:
        """Emit to every admin socket on every process; data that is not JSON is logged, not sent."""
        try:
            self.server.emit(event, *args, namespace=self.namespace)
        except (TornadoSIOError, TypeError, ValueError) as exc:
            log.info("Admin UI: %s not sent: %s", event, exc)

    # -- the periodic stats ----------------------------------------------------------

    def tick(self, now: float = 0.0) -> None:
        """The sweeper's job: report upgrades (development) and this process's ``server_stats``."""
        if self.polling:
            self.report_upgrades()
        if self.development:
            self.report_data_changes()
        self.broadcast("server_stats", self.stats())

    def report_upgrades(self) -> None:
        """``socket_updated`` for each socket of this process that left polling since the last tick."""
        for sid, socket in list(self.polling.items()):
            transport = socket.client.conn.transport
            if transport == "polling":
                continue
            del self.polling[sid]
            admin = socket.data.get("_admin")
            if isinstance(admin, dict):
                admin["transport"] = transport
            self.broadcast("socket_updated", {"id": sid, "nsp": socket.namespace, "transport": transport})

    def report_data_changes(self) -> None:
        """``socket_updated`` with ``data`` for each local socket whose ``data`` changed since it was
        last told (Node's instrumentation sees each change through a proxy; here, once per tick)."""
        sockets = self.server.adapter.local_sockets()
        if len(sockets) > MAX_WATCHED_SOCKETS:
            self.data_told.clear()
            return
        told: Dict[str, str] = {}
        for socket in sockets:
            data = user_data(socket.data)
            text = json_text(data)
            if text is None:
                continue
            told[socket.sid] = text
            before = self.data_told.get(socket.sid)
            if before is not None and before != text:
                self.broadcast("socket_updated", {"id": socket.sid, "nsp": socket.namespace, "data": data})
        self.data_told = told

    def stats(self, consume: bool = True) -> Dict[str, Any]:
        """``server_stats`` of this process; *consume*: the aggregated events since the last ones."""
        engine = self.server.engine
        sessions = list(engine.sessions.values())
        members = getattr(self.server.adapter, "namespace_members", {})
        return {
            "serverId": self.server_id,
            "hostname": _HOSTNAME,
            "pid": os.getpid(),
            "uptime": time.time() - self.started,
            "clientsCount": len(sessions),
            "pollingClientsCount": sum(1 for s in sessions if s.transport == "polling"),
            "aggregatedEvents": self.aggregated_events() if consume else [],
            "namespaces": [{"name": name, "socketsCount": len(found)} for name, found in sorted(members.items())],
            "memoryUsage": {"rss": resident_memory()},
        }

    def aggregated_events(self) -> List[Dict[str, Any]]:
        """What the engine counted since the last call, as the UI's ``aggregatedEvents``."""
        counters = getattr(self.server.engine, "stats", None)
        if counters is None:
            return []
        counts: Dict[Tuple[str, Optional[str]], int] = {
            ("rawConnection", None): sum(counters.opened.values()),
            ("packetsIn", None): counters.messages_in, ("packetsOut", None): counters.messages_out,
            ("bytesIn", None): counters.bytes_in, ("bytesOut", None): counters.bytes_out,
        }
        for reason, count in counters.closed.items():
            counts[("rawDisconnection", reason)] = count
        second = int(time.time()) * 1000
        events = []
        for (kind, sub), count in counts.items():
            delta = count - self.last_counts.get((kind, sub), 0)
            if delta > 0:
                event: Dict[str, Any] = {"timestamp": second, "type": kind, "count": delta}
                if sub is not None:
                    event["subType"] = sub
                events.append(event)
        self.last_counts = counts
        return events

    # -- the observer (development mode) ---------------------------------------------

    def socket_connected(self, socket: Socket) -> None:
        conn = socket.client.conn
        issued = int(time.time() * 1000)
        request = getattr(conn.request, "request", None)
        socket.data["_admin"] = {"clientId": conn.sid[:12], "transport": conn.transport, "issued": issued,
                                 "url": getattr(request, "uri", "")}
        if conn.transport == "polling":
            self.polling[socket.sid] = socket
        text = json_text(user_data(socket.data))
        if text is not None:
            self.data_told[socket.sid] = text
        details = socket.details()
        self.broadcast("socket_connected", serialize_socket(details.sid, details.namespace, details.rooms,
                                                            details.data, details.handshake), iso(issued / 1000))

    def socket_disconnected(self, socket: Socket, reason: str) -> None:
        self.polling.pop(socket.sid, None)
        self.data_told.pop(socket.sid, None)
        self.broadcast("socket_disconnected", socket.namespace, socket.sid, reason, iso(time.time()))

    def room_joined(self, namespace: str, room: str, sid: str) -> None:
        self.broadcast("room_joined", namespace, room, sid, iso(time.time()))

    def room_left(self, namespace: str, room: str, sid: str) -> None:
        self.broadcast("room_left", namespace, room, sid, iso(time.time()))

    def event_received(self, namespace: str, sid: str, event: str, args: List[Any]) -> None:
        if namespace != self.namespace:
            self.broadcast("event_received", namespace, sid, [event, *args], iso(time.time()))

    def event_sent(self, namespace: str, sid: str, event: str, args: List[Any]) -> None:
        if namespace != self.namespace:
            self.broadcast("event_sent", namespace, sid, [event, *args], iso(time.time()))


def user_data(data: Dict[str, Any]) -> Dict[str, Any]:
    """A socket's ``data`` without the instrumentation's own ``_admin`` entry."""
    return {k: v for k, v in data.items() if k != "_admin"}


def json_text(data: Any) -> Optional[str]:
    """*data* as canonical JSON text, to compare; None when it is not JSON (never sent then)."""
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None


def valid_target(namespace: Any, target: Any) -> bool:
    """Whether an operation's namespace and target (a room or sid, or nothing) are well formed."""
    if not isinstance(namespace, str) or not namespace.startswith("/"):
        log.info("Admin UI: operation on an invalid namespace %r ignored", namespace)
        return False
    if target is not None and not isinstance(target, str):
        log.info("Admin UI: operation on an invalid room %r ignored", target)
        return False
    return True


class AdminUI:
    """:meth:`instrument`, as a mixin of :class:`~tornado_sio.SocketIO`."""

    def instrument(self, auth: AuthSetting = None, *, namespace: str = "/admin", read_only: bool = False,
                   mode: str = "development", server_id: Optional[str] = None,
                   ui_path: Optional[Union[str, os.PathLike[str]]] = None, ui_url: str = "/admin-ui/",
                   app: Any = None, stats_interval: float = 2.0) -> Instrumentation:
        """Serve the Socket.IO Admin UI (``@socket.io/admin-ui`` 0.5's protocol) on *namespace*.

        *auth* is required: ``{'username': ..., 'password': ...}`` (the password in
        clear or a bcrypt hash; a list of several), a callable given the UI's
        ``auth`` that returns (or awaits) a bool, or ``False`` for none.
        *read_only* offers no operations; ``mode='production'`` reports only the
        periodic stats (no sockets, rooms or events); *server_id* names this
        process in the UI (default: the host name). *ui_path* serves the UI's
        build (``ui/dist`` of the npm package) at *ui_url*, added to *app* (or to
        an app of yours with ``instrumentation.routes``). *stats_interval*:
        seconds between ``server_stats``. Call it in every process of a cluster.
        See ``docs/admin-ui.md``.
        """
        return Instrumentation(self, auth, namespace=namespace, read_only=read_only, mode=mode,
                               server_id=server_id, ui_path=ui_path, ui_url=ui_url, app=app,
                               stats_interval=stats_interval)
