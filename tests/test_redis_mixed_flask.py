"""An unchanged Flask-SocketIO worker and tornado-sio on one Redis, with one option.

The Flask-SocketIO app (``tests/redis_app.py --impl flask-socketio``) keeps
every default, so it publishes and listens on the channel ``flask-socketio``;
the tornado-sio server sets only ``message_queue_options={'format':
'flask-socketio'}``. Each side's emits reach the other side's clients exactly once.
"""

from __future__ import annotations

import pytest

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")
support.need_python_module("flask_socketio")
support.need_python_module("simple_websocket")

from tests.apps import async_test
from tests.redis_support import AppProcess, close_all, connect_all, redis_server, running, settle
from tests.test_redis_mixed import START_WAIT

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def pair():
    """(flask, tornado) on one redis-server; stopped by PID afterwards."""
    with redis_server() as redis, running([AppProcess(redis.url, "--impl", "flask-socketio").spawn(),
                                           AppProcess(redis.url, "--format", "flask-socketio").spawn()],
                                          START_WAIT) as (flask, tornado):
        yield flask, tornado


@async_test(40)
async def test_a_flask_socketio_broadcast_reaches_tornado_clients_once(pair):
    flask, tornado = pair
    clients = await connect_all([(flask, ["/"]), (tornado, ["/"]), (tornado, ["/"])])
    try:
        assert await clients[0].ask("broadcast", "from flask", {"n": 1}) == "ok"
        for c in clients:
            assert await c.expect("from flask") == [[{"n": 1}]]
        await settle()
        assert [len(c.got("from flask")) for c in clients] == [1, 1, 1]
    finally:
        await close_all(clients)


@async_test(40)
async def test_a_tornado_broadcast_reaches_flask_socketio_clients_once(pair):
    flask, tornado = pair
    clients = await connect_all([(flask, ["/"]), (flask, ["/"]), (tornado, ["/"])])
    try:
        assert await clients[2].ask("broadcast", "from tornado", [1, 2]) == "ok"
        for c in clients:
            assert await c.expect("from tornado") == [[[1, 2]]]
        await settle()
        assert [len(c.got("from tornado")) for c in clients] == [1, 1, 1]
    finally:
        await close_all(clients)


@async_test(40)
async def test_room_emits_cross_both_ways_to_the_members_only(pair):
    flask, tornado = pair
    clients = await connect_all([(flask, ["/"]), (flask, ["/"]), (tornado, ["/"]), (tornado, ["/"])])
    try:
        assert await clients[0].ask("join", "mixed") == "joined"
        assert await clients[2].ask("join", "mixed") == "joined"
        assert await clients[1].ask("to room", "mixed", "flask to room", "f") == "ok"
        assert await clients[3].ask("to room", "mixed", "tornado to room", "t") == "ok"
        for c in (clients[0], clients[2]):
            await c.expect("flask to room")
            await c.expect("tornado to room")
        await settle()
        assert [len(c.got("flask to room")) for c in clients] == [1, 0, 1, 0]
        assert [len(c.got("tornado to room")) for c in clients] == [1, 0, 1, 0]
    finally:
        await close_all(clients)
