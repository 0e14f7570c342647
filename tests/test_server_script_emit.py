"""Flask-SocketIO's "emit from an external process": ``SocketIO(message_queue=url).emit(...)`` in a script.

A process that runs no event loop publishes through the synchronous Redis
emitter at once, and fails loudly when Redis cannot take the message. The
receiving server is in this process (its test client's loop runs while the
test sleeps with ``socketio.sleep``); the script is a child process, as in
production.
"""

import subprocess
import sys
import time

import pytest

from tests import support
from tests.redis_support import redis_server
from tornado_sio import MessageQueueError, SocketIO, join_room, rooms

WAIT = 10.0


@pytest.fixture
def redis_url():
    support.need_python_module("redis")
    with redis_server() as server:
        yield server.url


def run_script(code: str) -> subprocess.CompletedProcess:
    """Run *code* as a plain Python script (no event loop anywhere), bounded."""
    return subprocess.run([sys.executable, "-c", code], cwd=str(support.ROOT), capture_output=True, text=True,
                          timeout=WAIT)


@pytest.fixture
def serve(redis_url):
    """``serve()``: a server on the message queue with one test client connected and subscribed;
    its Redis link is closed after the test."""
    servers = []

    def start():
        sio = SocketIO(message_queue=redis_url)

        @sio.on("join")
        def join(room):
            join_room(room)

        @sio.on("my rooms")
        def my_rooms():
            return rooms()

        client = sio.test_client()
        servers.append(sio)
        assert sio.home.wait_for(sio.adapter.sync(WAIT))
        return sio, client

    yield start
    for sio in servers:
        # close the Redis link only: a full shutdown() first unsubscribes the clients' rooms,
        # after which the Redis link takes ~15 s to stop (reported to the adapter's owner)
        sio.home.wait_for(sio.adapter.stop())


def wait_received(sio, client, count=1):
    deadline = time.monotonic() + WAIT
    got = []
    while len(got) < count and time.monotonic() < deadline:
        sio.sleep(0.02)  # runs the server's loop: the Redis subscriber delivers meanwhile
        got += client.get_received()
    return got


def test_emit_in_a_script_reaches_the_clients_of_a_server_through_redis(redis_url, serve):
    sio, client = serve()
    script = run_script(f"from tornado_sio import SocketIO\n"
                        f"SocketIO(message_queue={redis_url!r}).emit('news', {{'n': 1}})\n")
    assert script.returncode == 0, script.stderr
    assert wait_received(sio, client) == [{"name": "news", "args": [{"n": 1}], "namespace": "/"}]


def test_emit_to_a_room_in_a_script_reaches_only_that_room(redis_url, serve):
    sio, member = serve()
    outsider = sio.test_client()
    member.emit("join", "vip")
    sio.home.wait_for(sio.adapter.sync(WAIT))
    script = run_script(f"from tornado_sio import SocketIO\n"
                        f"SocketIO(message_queue={redis_url!r}).emit('offer', 5, to='vip')\n")
    assert script.returncode == 0, script.stderr
    assert wait_received(sio, member) == [{"name": "offer", "args": [5], "namespace": "/"}]
    assert outsider.get_received() == []


def test_enter_room_in_a_script_moves_a_client_of_a_server(redis_url, serve):
    sio, client = serve()
    sid = client.get_sid()
    script = run_script(f"from tornado_sio import SocketIO\n"
                        f"SocketIO(message_queue={redis_url!r}).enter_room({sid!r}, 'moved')\n")
    assert script.returncode == 0, script.stderr
    deadline = time.monotonic() + WAIT
    while "moved" not in client.emit("my rooms", callback=True) and time.monotonic() < deadline:
        sio.sleep(0.02)
    assert client.emit("my rooms", callback=True) == [sid, "moved"]


def test_emit_in_a_script_fails_loudly_when_redis_is_unreachable():
    support.need_python_module("redis")
    nowhere = f"redis://127.0.0.1:{support.free_port()}/0"
    with pytest.raises(MessageQueueError, match="cannot publish"):
        SocketIO(message_queue=nowhere).emit("news", 1)


def test_a_script_that_cannot_reach_redis_exits_with_an_error():
    support.need_python_module("redis")
    nowhere = f"redis://127.0.0.1:{support.free_port()}/0"
    script = run_script(f"from tornado_sio import SocketIO\nSocketIO(message_queue={nowhere!r}).emit('news', 1)\n")
    assert script.returncode != 0
    assert "MessageQueueError" in script.stderr
