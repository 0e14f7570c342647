"""The Socket.IO Admin UI protocol (tornado_sio/admin.py), with python-socketio's AsyncClient
playing the UI: authentication, what the UI is told, its operations, read-only and production
mode, and serving the UI build. The real UI in Chromium is tests/test_admin_browser.py; two
processes over Redis are tests/test_admin_redis.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Optional

import pytest
import tornado.httpclient
import tornado.web

from tests import support
from tests.apps import async_test, close_client, listening, until
from tests.rawclient import RawPolling, RawWebSocket
from tornado_sio import SocketIO, join_room, socket_data
from tornado_sio.admin import AdminAuth, ui_routes

try:
    import aiohttp  # noqa: F401  (python-socketio's AsyncClient runs on it)
    import socketio
except ImportError:
    if support.IN_CI:
        raise
    pytest.skip("python-socketio[asyncio-client] not found: pip install -e '.[test]'", allow_module_level=True)

CREDENTIALS = {"username": "admin", "password": "s3cret"}
STATS_EVERY = 0.2  # seconds between server_stats in these tests (the default is 2)


class Admin:
    """A python-socketio client on the admin namespace that keeps every event it gets, in order."""

    def __init__(self, serializer: str = "default") -> None:
        self.sio = socketio.AsyncClient(reconnection=False, serializer=serializer)
        self.events: List[tuple] = []
        #: The data of each CONNECT_ERROR (``{'message': ...}``).
        self.errors: List[Any] = []

        @self.sio.on("*", namespace="/admin")
        def anything(event: str, *args: Any) -> None:
            self.events.append((event, *args))

        @self.sio.on("connect_error", namespace="/admin")
        def refused(data: Any = None) -> None:
            self.errors.append(data)

    async def __aenter__(self) -> Admin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await close_client(self.sio)

    async def connect(self, url: str, auth: Any = CREDENTIALS, transports: Optional[List[str]] = None) -> None:
        await self.sio.connect(url, namespaces=["/admin"], auth=auth, transports=transports or ["websocket"],
                               wait_timeout=10)

    async def open(self, url: str) -> None:
        """Connect and wait for the first ``config``: the UI's side of the handshake is done."""
        await self.connect(url)
        await self.wait_for("config")

    async def refused(self, url: str, auth: Any) -> str:
        """Connect, expecting a refusal; return its message."""
        with pytest.raises(socketio.exceptions.ConnectionError):
            await self.connect(url, auth=auth)
        return str(self.errors[-1]["message"])

    def of(self, event: str) -> List[tuple]:
        return [e[1:] for e in self.events if e[0] == event]

    async def wait_for(self, event: str, predicate: Any = lambda args: True) -> tuple:
        await until(lambda: any(predicate(args) for args in self.of(event)), what=f"admin event {event}")
        return next(args for args in self.of(event) if predicate(args))

    async def emit(self, event: str, *args: Any) -> None:
        await self.sio.emit(event, tuple(args), namespace="/admin")  # a tuple: several arguments


class Served:
    """A tornado-sio server in this loop, instrumented, with an app handler or two."""

    def __init__(self, socketio_: SocketIO, port: int, instrumentation: Any) -> None:
        self.socketio = socketio_
        self.port = port
        self.instrumentation = instrumentation
        self.url = f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def serve(auth: Any = CREDENTIALS, serializer: str = "json", **instrument: Any) -> AsyncIterator[Served]:
    sio = SocketIO(cors_allowed_origins="*", **({} if serializer == "json" else {"serializer": serializer}))

    @sio.on("join")
    def on_join(room: str) -> str:
        join_room(room)
        return "joined"

    @sio.on("remember")
    def on_remember(value: Any) -> None:
        socket_data["value"] = value

    @sio.on("echo")
    def on_echo(*args: Any) -> Any:
        return args

    app = tornado.web.Application(sio.routes())
    instrument.setdefault("stats_interval", STATS_EVERY)
    instrumentation = sio.instrument(auth=auth, app=app, **instrument)
    async with listening(sio, app) as port:
        await sio.start()
        yield Served(sio, port, instrumentation)


class User:
    """An application client (python-socketio) on namespace /."""

    def __init__(self, serializer: str = "default") -> None:
        self.sio = socketio.AsyncClient(reconnection=False, serializer=serializer)
        self.received: List[tuple] = []
        self.disconnected = asyncio.Event()

        @self.sio.on("*")
        def anything(event: str, *args: Any) -> None:
            self.received.append((event, *args))

        @self.sio.on("disconnect")
        def gone(*reason: Any) -> None:
            self.disconnected.set()

    async def connect(self, url: str, transports: Optional[List[str]] = None) -> str:
        await self.sio.connect(url, transports=transports or ["websocket"], wait_timeout=10)
        return self.sio.get_sid("/")


@contextlib.asynccontextmanager
async def clients(*kinds: Any) -> AsyncIterator[List[Any]]:
    made = [kind() for kind in kinds]
    try:
        yield made
    finally:
        for client in made:
            await close_client(client.sio)


# ---------------------------------------------------------------- authentication


def test_instrument_without_auth_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="auth"):
        SocketIO().instrument()


def test_instrumenting_the_same_namespace_twice_is_refused() -> None:
    sio = SocketIO()
    sio.instrument(auth=False)
    with pytest.raises(RuntimeError, match="already"):
        sio.instrument(auth=False)


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        SocketIO().instrument(auth=False, mode="staging")


@async_test()
async def test_a_wrong_password_is_refused_with_invalid_credentials() -> None:
    async with serve() as served, clients(Admin) as (admin,):
        assert await admin.refused(served.url, {"username": "admin", "password": "wrong"}) == "invalid credentials"


@async_test()
async def test_the_right_password_gets_a_session_and_the_config() -> None:
    async with serve() as served, clients(Admin) as (admin,):
        await admin.connect(served.url)
        (session,) = await admin.wait_for("session")
        (config,) = await admin.wait_for("config")
    assert isinstance(session, str) and len(session) >= 16
    assert set(config["supportedFeatures"]) == {"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE",
                                                "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"}


@async_test()
async def test_the_session_id_lets_the_ui_reconnect_without_the_password() -> None:
    async with serve() as served, clients(Admin, Admin) as (first, second):
        await first.connect(served.url)
        (session,) = await first.wait_for("session")
        await second.connect(served.url, auth={"sessionId": session})
        await second.wait_for("config")
    assert second.of("session") == []


@async_test()
async def test_an_unknown_session_id_is_refused() -> None:
    async with serve() as served, clients(Admin) as (admin,):
        assert await admin.refused(served.url, {"sessionId": "0" * 32}) == "invalid credentials"


@async_test()
async def test_a_bcrypt_hashed_password_is_checked() -> None:
    bcrypt = pytest.importorskip("bcrypt")
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    async with serve(auth={"username": "admin", "password": hashed}) as served, \
            clients(Admin, Admin) as (right, wrong):
        await right.connect(served.url)
        await right.wait_for("config")
        assert await wrong.refused(served.url, {"username": "admin", "password": "s3cre"}) == "invalid credentials"


def test_a_malformed_bcrypt_hash_is_refused_at_instrument() -> None:
    with pytest.raises(ValueError, match="bcrypt"):
        AdminAuth({"username": "admin", "password": "$2b$12$tooshort"})


@async_test()
async def test_any_of_a_list_of_credentials_is_accepted() -> None:
    accounts = [{"username": "ops", "password": "one"}, {"username": "dev", "password": "two"}]
    async with serve(auth=accounts) as served, clients(Admin) as (admin,):
        await admin.connect(served.url, auth={"username": "dev", "password": "two"})
        await admin.wait_for("config")


@async_test()
async def test_a_callable_decides_who_gets_in() -> None:
    seen: List[Any] = []

    async def check(auth: Any) -> bool:
        seen.append(auth)
        return auth == {"token": "ok"}

    async with serve(auth=check) as served, clients(Admin, Admin) as (good, bad):
        await good.connect(served.url, auth={"token": "ok"})
        await good.wait_for("config")
        assert await bad.refused(served.url, {"token": "no"}) == "invalid credentials"
    assert {"token": "ok"} in seen and {"token": "no"} in seen


@async_test()
async def test_auth_false_lets_anyone_in() -> None:
    async with serve(auth=False) as served, clients(Admin) as (admin,):
        await admin.connect(served.url, auth=None)
        await admin.wait_for("config")


# ---------------------------------------------------------------- what the UI is told


@async_test()
async def test_all_sockets_lists_sockets_with_rooms_handshake_transport_and_data() -> None:
    async with serve() as served, clients(User, Admin) as (user, admin):
        sid = await user.connect(served.url)
        await user.sio.call("join", "lobby", timeout=5)
        await user.sio.emit("remember", 42)
        await until(lambda: served.socketio.local_socket(sid).data.get("value") == 42)
        await admin.connect(served.url)
        (listed,) = await admin.wait_for("all_sockets")
    mine = next(s for s in listed if s["id"] == sid)
    assert mine["nsp"] == "/" and set(mine["rooms"]) == {sid, "lobby"}
    assert mine["transport"] == "websocket" and mine["data"] == {"value": 42}
    assert mine["handshake"]["address"] == "127.0.0.1" and "user-agent" in mine["handshake"]["headers"]
    assert mine["clientId"] and mine["handshake"]["issued"] > 0


@async_test()
async def test_a_socket_connecting_and_leaving_is_reported() -> None:
    async with serve() as served, clients(Admin, User) as (admin, user):
        await admin.open(served.url)
        sid = await user.connect(served.url)
        (connected, when) = await admin.wait_for("socket_connected", lambda a: a[0]["id"] == sid)
        await user.sio.disconnect()
        gone = await admin.wait_for("socket_disconnected", lambda a: a[1] == sid)
    assert connected["nsp"] == "/" and connected["rooms"] == [sid] and when.endswith("Z")
    assert gone[0] == "/" and gone[2] in ("client disconnect", "transport close")  # python-socketio closes fast


@async_test()
async def test_rooms_joined_and_left_are_reported() -> None:
    async with serve() as served, clients(Admin, User) as (admin, user):
        await admin.open(served.url)
        sid = await user.connect(served.url)
        await user.sio.call("join", "lobby", timeout=5)
        joined = await admin.wait_for("room_joined", lambda a: a[2] == sid)
        served.socketio.leave_room(sid, "lobby")
        left = await admin.wait_for("room_left", lambda a: a[2] == sid)
    assert joined[:3] == ("/", "lobby", sid) and left[:3] == ("/", "lobby", sid)


@async_test()
async def test_events_received_and_sent_are_reported_in_development_mode() -> None:
    async with serve() as served, clients(Admin, User) as (admin, user):
        await admin.open(served.url)
        sid = await user.connect(served.url)
        await user.sio.emit("remember", {"a": 1})
        received = await admin.wait_for("event_received", lambda a: a[1] == sid)
        served.socketio.emit("news", "hello", to=sid)
        sent = await admin.wait_for("event_sent", lambda a: a[1] == sid)
    assert received[0] == "/" and received[2] == ["remember", {"a": 1}]
    assert sent[0] == "/" and sent[2] == ["news", "hello"]


@async_test()
async def test_server_stats_count_clients_namespaces_and_traffic() -> None:
    async with serve(server_id="here") as served, clients(Admin, User) as (admin, user):
        await user.connect(served.url)
        await admin.connect(served.url)
        await user.sio.emit("remember", "x" * 100)

        def traffic(args: tuple) -> bool:
            return any(e["type"] == "bytesIn" for e in args[0]["aggregatedEvents"])

        (stats,) = await admin.wait_for("server_stats", traffic)
    assert stats["serverId"] == "here" and stats["clientsCount"] == 2 and stats["pollingClientsCount"] == 0
    assert {"name": "/", "socketsCount": 1} in stats["namespaces"]
    assert {"name": "/admin", "socketsCount": 1} in stats["namespaces"]
    assert stats["uptime"] >= 0 and stats["pid"] > 0 and stats["memoryUsage"]["rss"] > 0
    kinds = {e["type"] for e in admin_events(admin)}
    assert {"rawConnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut"} <= kinds


def admin_events(admin: Admin) -> List[Dict[str, Any]]:
    return [e for (stats,) in admin.of("server_stats") for e in stats["aggregatedEvents"]]


@async_test()
async def test_a_polling_client_that_upgrades_is_reported_as_updated() -> None:
    async with serve() as served, clients(Admin) as (admin,):
        await admin.open(served.url)
        polling = await RawPolling(served.url).open()
        sid = json.loads((await polling.connect())[2:])["sid"]
        (connected, _) = await admin.wait_for("socket_connected", lambda a: a[0]["id"] == sid)
        ws = await RawWebSocket.open(served.url, handshake=False,
                                     query=f"EIO=4&transport=websocket&sid={polling.sid}")
        await ws.send("2probe")
        assert await ws.recv() == "3probe"
        await ws.send("5")
        (updated,) = await admin.wait_for("socket_updated", lambda a: a[0]["id"] == sid)
        ws.close()
    assert connected["transport"] == "polling"
    assert updated == {"id": sid, "nsp": "/", "transport": "websocket"}


@async_test()
async def test_a_change_of_socket_data_is_reported_as_updated() -> None:
    async with serve() as served, clients(Admin, User) as (admin, user):
        await admin.open(served.url)
        sid = await user.connect(served.url)
        await admin.wait_for("socket_connected", lambda a: a[0]["id"] == sid)
        await user.sio.emit("remember", "blue")
        (updated,) = await admin.wait_for("socket_updated", lambda a: a[0]["id"] == sid)
    assert updated == {"id": sid, "nsp": "/", "data": {"value": "blue"}}


@async_test()
async def test_a_msgpack_server_reports_to_a_msgpack_ui() -> None:
    support.need_python_module("msgpack")
    async with serve(serializer="msgpack") as served:
        admin, user = Admin(serializer="msgpack"), User(serializer="msgpack")
        try:
            await admin.open(served.url)
            sid = await user.connect(served.url)
            await user.sio.emit("remember", b"\x00\x01")
            received = await admin.wait_for("event_received", lambda a: a[1] == sid)
        finally:
            await close_client(admin.sio)
            await close_client(user.sio)
    assert received[2] == ["remember", b"\x00\x01"]


# ---------------------------------------------------------------- operations


@async_test()
async def test_emit_operation_reaches_the_sockets_of_the_room() -> None:
    async with serve() as served, clients(Admin, User, User) as (admin, inside, outside):
        await inside.connect(served.url)
        await outside.connect(served.url)
        await inside.sio.call("join", "lobby", timeout=5)
        await admin.open(served.url)
        await admin.emit("emit", "/", "lobby", "announce", {"text": "hi"})
        await until(lambda: ("announce", {"text": "hi"}) in inside.received)
        await inside.sio.call("echo", timeout=5)  # a round trip: the other client had its chance
        await outside.sio.call("echo", timeout=5)
    assert not any(e[0] == "announce" for e in outside.received)


@async_test()
async def test_join_and_leave_operations_move_a_socket() -> None:
    async with serve() as served, clients(Admin, User) as (admin, user):
        sid = await user.connect(served.url)
        await admin.open(served.url)
        await admin.emit("join", "/", "vip", sid)
        await until(lambda: "vip" in served.socketio.rooms(sid))
        await admin.emit("leave", "/", "vip", sid)
        await until(lambda: "vip" not in served.socketio.rooms(sid))


@async_test()
async def test_disconnect_operation_reaches_the_client() -> None:
    async with serve() as served, clients(Admin, User) as (admin, user):
        sid = await user.connect(served.url)
        await admin.open(served.url)
        await admin.emit("_disconnect", "/", False, sid)
        await asyncio.wait_for(user.disconnected.wait(), 10)
        await admin.wait_for("socket_disconnected", lambda a: a[1] == sid and a[2] == "server disconnect")


@async_test()
async def test_read_only_offers_no_operation_and_refuses_them() -> None:
    async with serve(read_only=True) as served, clients(Admin, User) as (admin, user):
        sid = await user.connect(served.url)
        await admin.connect(served.url)
        (config,) = await admin.wait_for("config")
        await admin.emit("_disconnect", "/", False, sid)
        await admin.emit("join", "/", "vip", sid)
        await admin.emit("emit", "/", None, "late")
        stats_before = len(admin.of("server_stats"))
        # the operations were sent before the next stats tick's event, on the same connection
        await until(lambda: len(admin.of("server_stats")) > stats_before + 1)
        await user.sio.call("echo", timeout=5)
        assert served.socketio.rooms(sid) == [sid]
        assert not user.disconnected.is_set()
    assert config["supportedFeatures"] == ["AGGREGATED_EVENTS", "ALL_EVENTS"]
    assert not any(e[0] == "late" for e in user.received)


@async_test()
async def test_production_mode_reports_stats_but_no_sockets_or_events() -> None:
    async with serve(mode="production") as served, clients(Admin, User) as (admin, user):
        await admin.connect(served.url)
        (config,) = await admin.wait_for("config")
        await user.connect(served.url)
        await user.sio.call("join", "lobby", timeout=5)
        await admin.wait_for("server_stats", lambda a: a[0]["clientsCount"] == 2)
    assert "ALL_EVENTS" not in config["supportedFeatures"] and "EMIT" in config["supportedFeatures"]
    kinds = {e[0] for e in admin.events}
    assert not kinds & {"all_sockets", "socket_connected", "room_joined", "event_received", "event_sent"}
    assert served.instrumentation not in served.socketio.observers.registered


# ---------------------------------------------------------------- serving the UI build


@async_test()
async def test_ui_path_serves_the_build_at_ui_url(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<title>Socket.IO Admin UI</title>")
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "app.js").write_text("console.log(1)")
    async with serve(ui_path=tmp_path, ui_url="/admin-ui/") as served:
        http = tornado.httpclient.AsyncHTTPClient()
        index = await http.fetch(served.url + "/admin-ui/")
        script = await http.fetch(served.url + "/admin-ui/js/app.js")
        bare = await http.fetch(served.url + "/admin-ui", follow_redirects=False, raise_error=False)
        missing = await http.fetch(served.url + "/admin-ui/nope.js", raise_error=False)
    assert b"Socket.IO Admin UI" in index.body and index.headers["X-Frame-Options"] == "DENY"
    assert script.body == b"console.log(1)"
    assert bare.code == 301 and bare.headers["Location"] == "/admin-ui/"
    assert missing.code == 404


def test_ui_path_without_an_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="index.html"):
        ui_routes(tmp_path)


def test_run_py_refuses_to_start_with_an_admin_ui_path_without_the_build(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(support.ROOT / "run.py"), "--port", str(support.free_port()),
                           "--admin-ui", "admin:pw", "--admin-ui-path", str(tmp_path)],
                          cwd=str(support.ROOT), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "cannot start the Admin UI" in done.stderr and "index.html" in done.stderr
