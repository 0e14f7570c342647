"""The bundled browser client recovers its session on ANOTHER process of a cluster (issue #13).

Two tornado-sio processes (``tests/redis_app.py`` with connection state recovery
over Redis Streams, the flags of ``tests/test_redis_recovery.py``) share a
throwaway ``redis-server``. A page in headless Chromium loads the client as
served (``client.js``, from the cluster) and connects over WebSocket through the TCP switch of
``tests/test_redis_recovery.py``, standing for a load balancer. The switch
drops the connection (or the server closes the transport) and sends the
client's reconnect to the other process: the client must see
``socket.recovered === true``, keep its id, rooms and ``data``, and get every
event emitted meanwhile once, in order. Events come from a script: the
synchronous :class:`~tornado_sio.emitter.Emitter` appending to the stream.

The reconnect is held at the switch until the process that lost the client has
kept its session in Redis, so no timing decides the outcome; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, Callable, TypeVar

import pytest
import tornado.web

from tests import support

support.need_python_module("redis")
support.need_python_module("socketio")

from tests.redis_support import WAIT, AppProcess, redis_server, running
from tests.test_browser import browser, serve_in_thread  # noqa: F401 (browser: a fixture)
from tests.test_redis_recovery import FLAGS, Switch
from tornado_sio import clientjs

pytestmark = pytest.mark.timeout(90)

T = TypeVar("T")

#: The page (from a small server of its own): the client script and the socket through the
#: switch (``start(url)``), and helpers. ``window.seen``: ``[n, offset]`` of each ``n`` event;
#: ``window.connects``: ``{id, recovered}`` of each connect after the first.
PAGE = """<!doctype html><meta charset="utf-8"><title>cluster recovery</title>
<script>
window.seen = [];
window.connects = [];
window.load = (src) => new Promise((resolve, reject) => {
  const script = Object.assign(document.createElement('script'), {src, onload: resolve, onerror: reject});
  document.head.appendChild(script);
});
window.start = async (url) => {
  const socket = io(url, {transports: ['websocket'], reconnectionDelay: 300, reconnectionDelayMax: 300,
                          randomizationFactor: 0});
  window.socket = socket;
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', (err) => reject(new Error('connect_error: ' + err.message)));
  });
  socket.on('n', (i, offset) => seen.push([i, offset]));
  socket.on('connect', () => connects.push({id: socket.id, recovered: socket.recovered}));
  const joined = await socket.emitWithAck('join', 'r');
  const data = await socket.emitWithAck('set data', 'color', 'red');
  return {id: socket.id, recovered: socket.recovered, hasPid: typeof socket._pid === 'string', joined, data};
};
</script>"""


class ThreadedSwitch:
    """:class:`~tests.test_redis_recovery.Switch` on an event loop of its own thread, driven
    from the (synchronous) Playwright test: each call waits, bounded, until done."""

    def __init__(self, target: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="switch", daemon=True)
        self.target = target

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def call(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self.run(call())

    def __enter__(self) -> ThreadedSwitch:
        self.thread.start()

        async def start() -> Switch:  # built on its loop: its asyncio.Event belongs there (Python 3.9)
            return await Switch(self.target).__aenter__()

        self.switch = self.run(start())
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.run(self.switch.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(WAIT)
            self.loop.close()

    @property
    def url(self) -> str:
        return self.switch.url

    def move(self, port: int) -> None:
        """New connections go to *port* from now on, and wait until :meth:`release`."""

        def move() -> None:
            self.switch.target = port
            self.switch.hold()

        self.call(move)

    def cut(self) -> None:
        """Drop every open connection (both sides see the TCP connection go)."""
        self.call(self.switch.cut)

    def release(self) -> None:
        self.call(self.switch.release)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, list[AppProcess]]]:
    """(redis URL, [p0, p1]): two servers with connection state recovery over Redis Streams."""
    with redis_server() as redis:
        with running([AppProcess(redis.url, *FLAGS).spawn() for _ in range(2)]) as procs:
            yield redis.url, procs


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    """The URL of :data:`PAGE`, served by a tornado app in a thread (not by the cluster, so
    that the switch carries nothing but the client's connections)."""

    class PageHandler(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write(PAGE)

    with serve_in_thread(lambda: tornado.web.Application([(r"/", PageHandler)])) as url:
        yield url + "/"


@contextlib.contextmanager
def cluster_page(browser: Any, page_url: str, switch: ThreadedSwitch) -> Iterator[tuple[Any, str]]:  # noqa: F811
    """(page, sid): a Chromium page with the client loaded from the cluster and connected
    (``start()`` has run: it is in room ``r``, its data's color is red)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT * 1000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(page_url)
        page.evaluate("(src) => load(src)", switch.url + clientjs.script_path())
        switch.cut()  # the script's HTTP connection: only the client's own go through the switch from here
        first = page.evaluate("(url) => start(url)", switch.url)
        assert first["recovered"] is False and first["hasPid"] is True
        assert (first["joined"], first["data"]) == ("joined", "ok")
        yield page, first["id"]
        assert errors == []
    finally:
        context.close()


def emit_n(redis_url: str, values: range, room: str = "r") -> None:
    """Emit ``n <value>`` to *room* from a script: the Emitter appends to the cluster's stream."""
    from tornado_sio.emitter import Emitter

    with Emitter(redis_url, stream="tornado-sio") as emitter:
        for value in values:
            emitter.emit("n", value, to=room)


def wait_for_n(page: Any, value: int) -> None:
    page.wait_for_function("(v) => seen.some(([i]) => i === v)", arg=value)


def kept(redis_url: str, sid: str) -> None:
    """Wait (bounded) until the process that lost *sid* has kept its session in Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            for key in client.scan_iter(match="tornado-sio:session:*"):
                raw = client.get(key)
                if raw is not None and json.loads(raw)["sid"] == sid:
                    return
            assert time.monotonic() < deadline, f"no session kept for {sid}"
            time.sleep(0.02)
    finally:
        client.close()


def reconnected(page: Any, count: int = 1) -> dict[str, Any]:
    """The *count*-th connect after the first: ``{id, recovered}``."""
    page.wait_for_function("(count) => connects.length >= count", arg=count)
    return dict(page.evaluate("connects")[count - 1])


def call(page: Any, event: str, *args: Any) -> Any:
    return page.evaluate("([event, args]) => socket.emitWithAck(event, ...args)", [event, list(args)])


def received(page: Any) -> list[int]:
    """The ``n`` values the page got, in order; their offsets (stream entry ids) must increase."""
    seen = page.evaluate("seen")
    ids = [tuple(int(part) for part in offset.split("-")) for _, offset in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), seen
    return [value for value, _ in seen]


def hop(redis_url: str, page: Any, sid: str, switch: ThreadedSwitch, to: AppProcess, missed: range,
        close: Callable[[], None]) -> dict[str, Any]:
    """Send the client's reconnect to *to*, drop its transport with *close*, emit *missed*
    while it is away, let it through once its session is kept; its connect ``{id, recovered}``."""
    connects = len(page.evaluate("connects"))
    switch.move(to.port)
    close()
    emit_n(redis_url, missed)
    kept(redis_url, sid)
    switch.release()
    return reconnected(page, connects + 1)


# ---------------------------------------------------------------- tests


def test_cut_connection_is_recovered_on_the_other_process_with_every_missed_event_once(
        browser: Any, page_url: str, cluster: tuple[str, list[AppProcess]]) -> None:  # noqa: F811
    redis_url, (p0, p1) = cluster
    with ThreadedSwitch(p0.port) as switch, cluster_page(browser, page_url, switch) as (page, sid):
        assert call(page, "whoami")["port"] == p0.port
        emit_n(redis_url, range(0, 5))
        wait_for_n(page, 4)
        again = hop(redis_url, page, sid, switch, p1, range(5, 40), switch.cut)
        assert again == {"id": sid, "recovered": True}
        emit_n(redis_url, range(40, 41))
        wait_for_n(page, 40)
        assert received(page) == list(range(41))
        assert call(page, "whoami")["port"] == p1.port
        (found,) = call(page, "fetch", [sid])
        assert sorted(found["rooms"]) == sorted(["r", sid])
        assert found["data"]["color"] == "red"


def test_a_second_cut_back_to_the_first_process_is_recovered_again(
        browser: Any, page_url: str, cluster: tuple[str, list[AppProcess]]) -> None:  # noqa: F811
    redis_url, (p0, p1) = cluster
    with ThreadedSwitch(p0.port) as switch, cluster_page(browser, page_url, switch) as (page, sid):
        emit_n(redis_url, range(0, 1))
        wait_for_n(page, 0)
        first_hop = hop(redis_url, page, sid, switch, p1, range(1, 10), switch.cut)
        emit_n(redis_url, range(10, 11))
        wait_for_n(page, 10)  # an offset written by p1 is the client's last one now
        second_hop = hop(redis_url, page, sid, switch, p0, range(11, 20), switch.cut)
        emit_n(redis_url, range(20, 21))
        wait_for_n(page, 20)
        assert [first_hop, second_hop] == [{"id": sid, "recovered": True}] * 2
        assert received(page) == list(range(21))
        assert call(page, "whoami")["port"] == p0.port


def test_server_side_transport_close_is_recovered_on_the_other_process(
        browser: Any, page_url: str, cluster: tuple[str, list[AppProcess]]) -> None:  # noqa: F811
    redis_url, (p0, p1) = cluster
    with ThreadedSwitch(p1.port) as switch, cluster_page(browser, page_url, switch) as (page, sid):
        emit_n(redis_url, range(0, 1))
        wait_for_n(page, 0)
        again = hop(redis_url, page, sid, switch, p0, range(1, 20),
                    lambda: page.evaluate("socket.emitWithAck('close my transport')"))
        assert again == {"id": sid, "recovered": True}
        emit_n(redis_url, range(20, 21))
        wait_for_n(page, 20)
        assert received(page) == list(range(21))
        assert call(page, "whoami")["port"] == p0.port
        assert "r" in call(page, "my rooms")
