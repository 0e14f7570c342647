"""The Admin UI across processes: two tornado-sio servers (tests/redis_app.py) on a real
redis-server, each instrumented; python-socketio's AsyncClient plays the UI on one of them.
It sees the stats and the sockets of both, and its operations reach the other one's clients."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Iterator, List

import pytest

from tests import support
from tests.redis_support import WAIT, AppProcess, Client, app_processes, redis_server

try:
    import aiohttp  # noqa: F401
    import socketio
except ImportError:
    if support.IN_CI:
        raise
    pytest.skip("python-socketio[asyncio-client] not found: pip install -e '.[test,redis]'", allow_module_level=True)

CREDENTIALS = {"username": "admin", "password": "s3cret"}
PLUGIN = ("--plugin", "tests.test_admin_redis", "--quick")


def install(sio: Any, args: Any) -> None:
    """Called by tests/redis_app.py (``--plugin``) in each server process."""
    sio.instrument(auth=CREDENTIALS, server_id=f"proc-{args.port}", stats_interval=0.3)


@pytest.fixture(scope="module")
def servers() -> Iterator[List[AppProcess]]:
    with redis_server() as redis, app_processes(redis.url, 2, *PLUGIN) as procs:
        yield procs


class AdminUI:
    """python-socketio on the admin namespace of one server, keeping every event."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: List[tuple] = []

        @self.sio.on("*", namespace="/admin")
        def anything(event: str, *args: Any) -> None:
            self.events.append((event, *args))

    async def __aenter__(self) -> AdminUI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.disconnect(), 5)
        http = getattr(self.sio.eio, "http", None)
        if http is not None and not http.closed:
            await http.close()

    async def connect(self, server: AppProcess) -> AdminUI:
        await self.sio.connect(server.url, namespaces=["/admin"], auth=CREDENTIALS, transports=["websocket"],
                               wait_timeout=WAIT)
        return self

    def of(self, event: str) -> List[tuple]:
        return [e[1:] for e in self.events if e[0] == event]

    async def wait_for(self, event: str, predicate: Any = lambda args: True) -> tuple:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not any(predicate(args) for args in self.of(event)):
            if loop.time() > deadline:
                raise AssertionError(f"no matching {event!r}; got {[e[0] for e in self.events][-20:]}")
            await asyncio.sleep(0.02)
        return next(args for args in self.of(event) if predicate(args))

    async def emit(self, event: str, *args: Any) -> None:
        await self.sio.emit(event, tuple(args), namespace="/admin")


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_the_ui_sees_the_stats_of_every_process(servers: List[AppProcess]) -> None:
    async def scenario() -> set:
        async with AdminUI() as ui:
            await ui.connect(servers[0])
            ids = {f"proc-{s.port}" for s in servers}
            await ui.wait_for("server_stats", lambda a: a[0]["serverId"] == f"proc-{servers[1].port}")
            return {stats["serverId"] for (stats,) in ui.of("server_stats")} & ids

    assert run(scenario()) == {f"proc-{s.port}" for s in servers}


def test_all_sockets_lists_the_sockets_of_another_process(servers: List[AppProcess]) -> None:
    async def scenario() -> dict:
        user = await Client("user").connect(servers[1])
        try:
            async with AdminUI() as ui:
                await ui.connect(servers[0])
                (listed,) = await ui.wait_for("all_sockets", lambda a: any(s["id"] == user.sid["/"] for s in a[0]))
                return next(s for s in listed if s["id"] == user.sid["/"])
        finally:
            await user.close()

    remote = run(scenario())
    assert remote["nsp"] == "/" and remote["transport"] == "websocket"
    assert remote["data"] == {"impl": "tornado", "port": servers[1].port}
    assert remote["rooms"] == [remote["id"]] and remote["handshake"]["address"] == "127.0.0.1"


def test_a_socket_connecting_to_another_process_is_reported(servers: List[AppProcess]) -> None:
    async def scenario() -> tuple:
        async with AdminUI() as ui:
            await ui.connect(servers[0])
            await ui.wait_for("config")
            user = await Client("user").connect(servers[1])
            try:
                sid = user.sid["/"]
                (connected, _) = await ui.wait_for("socket_connected", lambda a: a[0]["id"] == sid)
                await user.ask("join", "lobby")
                joined = await ui.wait_for("room_joined", lambda a: a[2] == sid)
                return sid, connected, joined
            finally:
                await user.close()

    sid, connected, joined = run(scenario())
    assert connected["nsp"] == "/" and connected["data"]["port"] == servers[1].port
    assert joined[:3] == ("/", "lobby", sid)


def test_a_disconnect_from_the_ui_reaches_a_client_of_another_process(servers: List[AppProcess]) -> None:
    async def scenario() -> List[str]:
        user = await Client("user").connect(servers[1])
        try:
            async with AdminUI() as ui:
                await ui.connect(servers[0])
                await ui.wait_for("config")
                await ui.emit("_disconnect", "/", False, user.sid["/"])
                loop = asyncio.get_running_loop()
                deadline = loop.time() + WAIT
                while not user.disconnected and loop.time() < deadline:
                    await asyncio.sleep(0.02)
                await ui.wait_for("socket_disconnected", lambda a: a[1] == user.sid["/"])
                return user.disconnected
        finally:
            await user.close()

    assert run(scenario()) == ["/"]


def test_join_from_the_ui_moves_a_socket_of_another_process(servers: List[AppProcess]) -> None:
    async def scenario() -> List[str]:
        user = await Client("user").connect(servers[1])
        try:
            async with AdminUI() as ui:
                await ui.connect(servers[0])
                await ui.wait_for("config")
                await ui.emit("join", "/", "vip", user.sid["/"])
                await ui.wait_for("room_joined", lambda a: a[1] == "vip" and a[2] == user.sid["/"])
                rooms: List[str] = await user.ask("my rooms")
                return rooms
        finally:
            await user.close()

    assert "vip" in run(scenario())


def test_emit_from_the_ui_reaches_a_client_of_another_process(servers: List[AppProcess]) -> None:
    async def scenario() -> List[List[Any]]:
        user = await Client("user").connect(servers[1])
        try:
            async with AdminUI() as ui:
                await ui.connect(servers[0])
                await ui.wait_for("config")
                await ui.emit("emit", "/", user.sid["/"], "announce", {"text": "hi"})
                return await user.expect("announce")
        finally:
            await user.close()

    assert run(scenario()) == [[{"text": "hi"}]]
