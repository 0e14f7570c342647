"""The Admin UI across processes: two tornado-sio servers (tests/redis_app.py) on a real
redis-server, each instrumented; python-socketio's AsyncClient plays the UI on one of them.
It sees the stats and the sockets of both, and its operations reach the other one's clients."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator, List

import pytest

from tests import support
from tests.redis_support import WAIT, AppProcess, Client, app_processes, redis_server
from tests.test_admin import CREDENTIALS, Admin

try:
    import aiohttp  # noqa: F401
    import socketio  # noqa: F401  (the Admin client runs on it)
except ImportError:
    if support.IN_CI:
        raise
    pytest.skip("python-socketio[asyncio-client] not found: pip install -e '.[test,redis]'", allow_module_level=True)

PLUGIN = ("--plugin", "tests.test_admin_redis", "--quick")


def install(sio: Any, args: Any) -> None:
    """Called by tests/redis_app.py (``--plugin``) in each server process."""
    sio.instrument(auth=CREDENTIALS, server_id=f"proc-{args.port}", stats_interval=0.3)


@pytest.fixture(scope="module")
def servers() -> Iterator[List[AppProcess]]:
    with redis_server() as redis, app_processes(redis.url, 2, *PLUGIN) as procs:
        yield procs


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_the_ui_sees_the_stats_of_every_process(servers: List[AppProcess]) -> None:
    async def scenario() -> set:
        async with Admin() as ui:
            await ui.connect(servers[0].url)
            ids = {f"proc-{s.port}" for s in servers}
            await ui.wait_for("server_stats", lambda a: a[0]["serverId"] == f"proc-{servers[1].port}")
            return {stats["serverId"] for (stats,) in ui.of("server_stats")} & ids

    assert run(scenario()) == {f"proc-{s.port}" for s in servers}


def test_all_sockets_lists_the_sockets_of_another_process(servers: List[AppProcess]) -> None:
    async def scenario() -> dict:
        user = await Client("user").connect(servers[1])
        try:
            async with Admin() as ui:
                await ui.connect(servers[0].url)
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
        async with Admin() as ui:
            await ui.open(servers[0].url)
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
            async with Admin() as ui:
                await ui.open(servers[0].url)
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
            async with Admin() as ui:
                await ui.open(servers[0].url)
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
            async with Admin() as ui:
                await ui.open(servers[0].url)
                await ui.emit("emit", "/", user.sid["/"], "announce", {"text": "hi"})
                return await user.expect("announce")
        finally:
            await user.close()

    assert run(scenario()) == [[{"text": "hi"}]]
