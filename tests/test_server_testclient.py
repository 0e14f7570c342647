"""The test client (``socketio.test_client()``): Flask-SocketIO's API, in process, on the real dispatch.

Most tests are plain pytest functions, where the client runs the loop itself;
the last ones run inside ``AsyncHTTPTestCase``, next to a real client.
"""

import asyncio

import pytest
from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawWebSocket
from tornado_sio import (
    ConnectionRefusedError,
    SocketIO,
    SocketIOTestClient,
    emit,
    join_room,
    request,
    send,
)


def make_server(**options):
    sio = SocketIO(**options)
    seen = []

    @sio.on("connect")
    def on_connect(auth):
        if auth == {"token": "bad"}:
            raise ConnectionRefusedError("unauthorized")
        emit("welcome", {"auth": auth, "foo": request.args.get("foo"), "header": request.headers.get("X-Test")})

    @sio.on("disconnect")
    def on_disconnect(reason):
        seen.append(("disconnect", reason))

    @sio.on("echo")
    def echo(data):
        emit("echo", data)
        return data

    @sio.on("pair")
    def pair():
        return 1, 2

    @sio.on("nothing")
    def nothing():
        return None

    @sio.on("slow echo")
    async def slow_echo(data):
        await asyncio.sleep(0.05)
        emit("slow echo", data)
        return data

    @sio.on("message")
    def on_message(data):
        send(data)

    @sio.on("json")
    def on_json(data):
        send(data, json=True)

    @sio.on("join")
    def join(room):
        join_room(room)

    @sio.on("shout")
    def shout(room, data):
        emit("shout", data, to=room)

    @sio.on("echo", namespace="/chat")
    def chat_echo(data):
        emit("chat echo", data)

    return sio, seen


def test_test_client_is_connected_and_got_the_connect_handlers_emit():
    sio, _ = make_server()
    client = sio.test_client(auth={"token": "ok"})
    assert isinstance(client, SocketIOTestClient)
    assert client.is_connected()
    assert client.get_received() == [
        {"name": "welcome", "args": [{"auth": {"token": "ok"}, "foo": None, "header": None}], "namespace": "/"}]


def test_query_string_and_headers_reach_request():
    sio, _ = make_server()
    client = sio.test_client(query_string="foo=bar", headers={"X-Test": "yes"})
    assert client.get_received()[0]["args"][0]["foo"] == "bar"
    assert sio.test_client(query_string="?foo=baz").get_received()[0]["args"][0]["foo"] == "baz"
    client = sio.test_client(headers={"X-Test": "yes"})
    assert client.get_received()[0]["args"][0]["header"] == "yes"


def test_refused_client_is_not_connected():
    sio, _ = make_server()
    client = sio.test_client(auth={"token": "bad"})
    assert not client.is_connected()


def test_emit_with_callback_returns_the_handlers_ack():
    sio, _ = make_server()
    client = sio.test_client()
    assert client.emit("echo", {"a": 1}, callback=True) == {"a": 1}


def test_ack_with_several_arguments_comes_back_as_a_list():
    sio, _ = make_server()
    assert sio.test_client().emit("pair", callback=True) == [1, 2]


def test_ack_without_arguments_comes_back_as_an_empty_list():
    sio, _ = make_server()
    assert sio.test_client().emit("nothing", callback=True) == []


def test_emit_without_callback_returns_none_and_the_handler_ran():
    sio, _ = make_server()
    client = sio.test_client()
    client.get_received()
    assert client.emit("echo", 5) is None
    assert client.get_received() == [{"name": "echo", "args": [5], "namespace": "/"}]


def test_async_handler_has_finished_when_emit_returns():
    sio, _ = make_server()
    client = sio.test_client()
    client.get_received()
    assert client.emit("slow echo", "x", callback=True) == "x"
    assert client.get_received() == [{"name": "slow echo", "args": ["x"], "namespace": "/"}]


def test_send_reaches_the_message_handler_and_message_args_are_the_value():
    sio, _ = make_server()
    client = sio.test_client()
    client.get_received()
    client.send("hello")
    assert client.get_received() == [{"name": "message", "args": "hello", "namespace": "/"}]


def test_send_json_reaches_the_json_handler():
    sio, _ = make_server()
    client = sio.test_client()
    client.get_received()
    client.send({"k": 1}, json=True)
    assert client.get_received() == [{"name": "json", "args": {"k": 1}, "namespace": "/"}]


def test_get_received_is_per_namespace_and_takes_what_it_returns():
    sio, _ = make_server()
    client = sio.test_client()
    client.connect("/chat")
    client.emit("echo", 1, namespace="/chat")
    assert client.get_received("/chat") == [{"name": "chat echo", "args": [1], "namespace": "/chat"}]
    assert client.get_received("/chat") == []
    assert [item["name"] for item in client.get_received()] == ["welcome"]


def test_broadcast_from_one_test_client_reaches_another():
    sio, _ = make_server()
    first, second = sio.test_client(), sio.test_client()
    first.emit("join", "room")
    second.emit("join", "room")
    first.get_received()
    second.get_received()
    first.emit("shout", "room", "hi")
    assert second.get_received() == [{"name": "shout", "args": ["hi"], "namespace": "/"}]


def test_server_emit_from_the_test_reaches_the_test_client():
    sio, _ = make_server()
    client = sio.test_client()
    client.get_received()
    sio.emit("news", 42)
    assert client.get_received() == [{"name": "news", "args": [42], "namespace": "/"}]


def test_disconnect_runs_the_disconnect_handler_with_client_disconnect():
    sio, seen = make_server()
    client = sio.test_client()
    client.disconnect()
    assert not client.is_connected()
    assert seen == [("disconnect", "client disconnect")]


def test_server_side_disconnect_disconnects_the_test_client():
    sio, seen = make_server()
    client = sio.test_client()
    sio.disconnect(client.get_sid())
    assert not client.is_connected()
    assert seen == [("disconnect", "server disconnect")]


def test_calls_on_an_unconnected_namespace_raise_runtime_error():
    sio, _ = make_server()
    client = sio.test_client()
    with pytest.raises(RuntimeError, match="not connected"):
        client.emit("echo", 1, namespace="/chat")
    with pytest.raises(RuntimeError, match="not connected"):
        client.get_received("/chat")


def test_get_sid_is_request_sid_in_the_handlers():
    sio = SocketIO()

    @sio.on("whoami")
    def whoami():
        return request.sid

    client = sio.test_client()
    assert client.emit("whoami", callback=True) == client.get_sid()


class TestClientInAsyncHTTPTestCase(SocketIOTestCase):
    def setup_handlers(self, sio):
        @sio.on("join")
        def join(room):
            join_room(room)
            return "joined"

        @sio.on("shout")
        def shout(room, data):
            emit("shout", data, to=room)

        @sio.on("slow")
        async def slow(data):
            await asyncio.sleep(0.02)
            emit("slow", data)
            return data

    def test_plain_test_method_drives_the_test_cases_loop_and_reaches_a_real_client(self):
        async def real_client():
            ws = await RawWebSocket.open(self.base_url)
            await ws.connect()
            await ws.emit("join", "room", ack=1)
            assert await ws.recv() == '431["joined"]'
            return ws

        ws = self.io_loop.run_sync(real_client)
        client = self.socketio.test_client()
        client.emit("shout", "room", "from the test client")
        assert self.io_loop.run_sync(ws.recv_event) == ["shout", "from the test client"]
        assert client.emit("slow", 1, callback=True) == 1
        ws.close()

    @gen_test
    async def test_inside_a_coroutine_settle_waits_for_async_handlers(self):
        client = self.socketio.test_client()
        client.emit("slow", 2)
        assert client.get_received() == []
        await client.settle()
        assert client.get_received() == [{"name": "slow", "args": [2], "namespace": "/"}]

    @gen_test
    async def test_inside_a_coroutine_an_ack_of_a_plain_handler_comes_back_at_once(self):
        client = self.socketio.test_client()
        assert client.emit("join", "room", callback=True) == "joined"

    @gen_test
    async def test_inside_a_coroutine_the_ack_of_an_async_handler_cannot_be_waited_for(self):
        client = self.socketio.test_client()
        with pytest.raises(RuntimeError, match="settle"):
            client.emit("slow", 3, callback=True)
        await client.settle()


@pytest.mark.parametrize("index", [0, 1])
def test_the_testing_guides_examples_pass_as_tests(index, tmp_path):
    """The Python examples of docs/testing.md are test modules: each passes under pytest."""
    import re
    import subprocess
    import sys

    from tests import support

    guide = (support.ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", guide, re.DOTALL)
    assert len(blocks) == 2
    module = tmp_path / f"test_guide_example_{index}.py"
    module.write_text(blocks[index], encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
                            cwd=str(support.ROOT), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "skipped" not in result.stdout
