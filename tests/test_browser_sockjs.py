"""The SockJS fallback in a real Chromium (Playwright), with sockjs-client from npm.

The example app (``handlers.make_app``) runs in a thread. sockjs-client is served
by the test itself from ``.cache/node`` (an extra route, and ``make_app``'s
``sockjs_client_url``, the option ``run.py --sockjs-client-url`` sets: the page
in SockJS mode and the SockJS iframe page both load it). Pages run with
``window.WebSocket`` removed, so SockJS has to use its HTTP transports.

Chromium is Debian's (``/usr/bin/chromium``); never ``playwright install``.
Every wait is bounded; no test asserts on timing.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import pytest
import tornado.web

from tests import support
from tests.test_browser import NO_WEBSOCKET, DemoPage, browser, serve_in_thread, token  # noqa: F401 (browser: a fixture)

SOCKJS_ASSET = "/test-assets/sockjs.min.js"


@pytest.fixture(scope="module")
def chromium(request: Any) -> Any:
    """tests/test_browser.py's ``browser`` (by another name, so no parameter shadows the import)."""
    return request.getfixturevalue("browser")


@pytest.fixture(scope="module")
def sockjs_dist() -> Path:
    return support.need_node_module("sockjs-client") / "sockjs-client" / "dist"


def sri(path: Path) -> str:
    """The SRI hash of a file (what ``openssl dgst -sha384 -binary | openssl base64 -A`` gives)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def demo_with_sockjs_client(dist: Path, socketio_kwargs: Optional[dict] = None,
                            extra_routes: Optional[Callable[[Any], list]] = None,
                            integrity: Optional[str] = None) -> Callable[[], tornado.web.Application]:
    """The example app, plus sockjs-client served for the tests at ``SOCKJS_ASSET``
    (with the SRI hash *integrity* when given)."""

    def make() -> tornado.web.Application:
        from handlers import make_app

        app, socketio = make_app(socketio_kwargs, sockjs_client_url=SOCKJS_ASSET, sockjs_client_integrity=integrity)
        rules: list = [(r"/test-assets/(sockjs\.min\.js)", tornado.web.StaticFileHandler, {"path": str(dist)})]
        if extra_routes is not None:
            rules += extra_routes(socketio)
        app.add_handlers(r".*", rules)
        return app

    return make


@pytest.fixture(scope="module")
def demo_url(chromium: Any, sockjs_dist: Path) -> Iterator[str]:
    """The example app with its defaults (SockJS mounted at /sockjs)."""
    with serve_in_thread(demo_with_sockjs_client(sockjs_dist)) as url:
        yield url


def echo_in_bin(socketio: Any) -> list:
    """An ``echo`` handler in namespace ``/bin`` (acks and re-emits what it gets)."""
    from tornado_sio import emit

    @socketio.on("echo", namespace="/bin")
    def echo(*args: Any) -> List[Any]:
        emit("echo", *args)
        return list(args)

    return []


@pytest.fixture(scope="module")
def iframe_demo_url(chromium: Any, sockjs_dist: Path) -> Iterator[str]:
    """The example app with an ``echo`` handler in ``/bin``; its iframe page loads the
    local sockjs-client too (``make_app(sockjs_client_url=...)``, no CDN)."""
    with serve_in_thread(demo_with_sockjs_client(sockjs_dist, extra_routes=echo_in_bin)) as url:
        yield url


@pytest.fixture(scope="module")
def sri_demo_url(chromium: Any, sockjs_dist: Path) -> Iterator[str]:
    """The example app loading sockjs-client with its SRI hash, on the page and in the iframe page."""
    make = demo_with_sockjs_client(sockjs_dist, extra_routes=echo_in_bin, integrity=sri(sockjs_dist / "sockjs.min.js"))
    with serve_in_thread(make) as url:
        yield url


@pytest.fixture(scope="module")
def wrong_sri_demo_url(chromium: Any, sockjs_dist: Path) -> Iterator[str]:
    """The example app with an SRI hash that is not sockjs-client's."""
    make = demo_with_sockjs_client(sockjs_dist, integrity="sha384-" + base64.b64encode(bytes(48)).decode())
    with serve_in_thread(make) as url:
        yield url


@pytest.fixture
def open_page(chromium: Any) -> Iterator[Callable[..., DemoPage]]:
    pages: List[DemoPage] = []

    def open_(url: str, init_script: Optional[str] = NO_WEBSOCKET) -> DemoPage:
        page = DemoPage(chromium, url, init_script)
        pages.append(page)
        return page.wait_connected()

    yield open_
    for page in pages:
        page.close()
    assert [e for p in pages for e in p.errors] == [], "uncaught errors in the page"


@pytest.mark.parametrize("sockjs_transport", ["xhr-streaming", "xhr-polling"])
def test_example_page_works_over_sockjs(open_page: Callable[..., DemoPage], demo_url: str,
                                        sockjs_transport: str) -> None:
    url = f"{demo_url}/?transport=sockjs&sockjs={sockjs_transport}"
    a, b = open_page(url), open_page(url)
    assert a.page.evaluate("typeof window.WebSocket") == "undefined"
    for page in (a, b):
        assert page.text("#mode") == "SockJS"
        assert page.text("#transport") == f"sockjs ({sockjs_transport})"
        page.wait_for_log("SockJS mode: Socket.IO over SockJS")

    echo = token("echo")
    a.echo(echo)
    a.wait_for_log(echo)

    shout = token("broadcast")
    b.broadcast(shout)
    a.wait_for_log(shout)
    b.wait_for_log(shout)

    room, message = token("room"), token("to-room")
    a.join(room)
    b.join(room)
    a.send_to_room(room, message)
    b.wait_for_log(message)

    a.page.wait_for_function("() => document.getElementById('latency').textContent.trim() !== '\u2013'")

    a.sync(b)
    assert a.page.locator("#log li", has_text=shout).count() == 1
    assert b.page.locator("#log li", has_text=shout).count() == 1

    a.submit("disconnect-form")
    a.wait_disconnected()
    a.wait_for_log("Disconnected: io server disconnect")


def test_sockjs_and_websocket_pages_share_broadcasts_once(open_page: Callable[..., DemoPage],
                                                         demo_url: str) -> None:
    sockjs_page = open_page(f"{demo_url}/?transport=sockjs")
    ws_page = open_page(f"{demo_url}/", init_script=None)
    assert ws_page.text("#transport") == "websocket"
    assert sockjs_page.text("#transport").startswith("sockjs (")

    from_sockjs, from_ws = token("from-sockjs"), token("from-ws")
    sockjs_page.broadcast(from_sockjs)
    ws_page.broadcast(from_ws)
    for page in (sockjs_page, ws_page):
        page.wait_for_log(from_sockjs)
        page.wait_for_log(from_ws)
    sockjs_page.sync(ws_page)
    ws_page.sync(sockjs_page)
    for page in (sockjs_page, ws_page):
        for text in (from_sockjs, from_ws):
            assert page.page.locator("#log li", has_text=text).count() == 1


CONNECT_WITH = """(order) => new Promise((resolve) => {
  const s = io('/test', {forceNew: true, transports: order, reconnection: false, timeout: 10000});
  s.on('connect', () => {
    const t = s.io.engine.transport;
    s.emit('my ping', () => { resolve(t.name + (t.subTransport ? '/' + t.subTransport : '')); s.disconnect(); });
  });
  s.on('connect_error', (err) => resolve('error: ' + err.message));
})"""


def test_transport_order_is_configurable_and_falls_back_to_sockjs(open_page: Callable[..., DemoPage],
                                                                  demo_url: str) -> None:
    page = open_page(f"{demo_url}/?transport=sockjs")
    assert page.page.evaluate(CONNECT_WITH, ["polling", "sockjs"]) == "polling"
    assert page.page.evaluate(CONNECT_WITH, ["sockjs", "polling"]) == "sockjs/xhr-streaming"
    # A network that lets neither WebSocket (removed) nor Engine.IO long-polling through:
    page.page.route("**/socket.io/**", lambda route: route.abort())
    assert page.page.evaluate(CONNECT_WITH, ["websocket", "polling", "sockjs"]) == "sockjs/xhr-streaming"
    assert page.page.evaluate(CONNECT_WITH, ["websocket", "polling"]).startswith("error: ")


def test_without_sockjs_client_the_page_says_so(open_page: Callable[..., DemoPage], chromium: Any,
                                                demo_url: str) -> None:
    page = DemoPage(chromium, f"{demo_url}/?transport=sockjs", NO_WEBSOCKET)
    try:
        page.page.route("**/test-assets/**", lambda route: route.abort())
        page.page.reload()
        page.wait_disconnected()
        assert "sockjs-client is not loaded" in page.text("#mode")
        page.wait_for_log("No transports available")
        assert page.errors == []
    finally:
        page.close()


ROUND_TRIP = """async (sub) => {
  const socket = io('/bin', {transports: ['sockjs'], sockjs: {transports: [sub]}, forceNew: true});
  const echoed = new Promise((resolve) => socket.once('echo', (...args) => resolve(args)));
  const sent = [new Uint8Array([1, 2, 3, 250]), {nested: new Uint8Array([9, 8]).buffer, text: 'ok'}];
  const acked = await socket.timeout(10000).emitWithAck('echo', ...sent);
  const pushed = await echoed;
  const bytes = (b) => (b instanceof ArrayBuffer ? Array.from(new Uint8Array(b)) : 'not an ArrayBuffer: ' + typeof b);
  const t = socket.io.engine.transport;
  const result = {transport: t.name + '/' + t.subTransport,
                  acked: [bytes(acked[0]), bytes(acked[1].nested), acked[1].text],
                  pushed: [bytes(pushed[0]), bytes(pushed[1].nested), pushed[1].text]};
  socket.disconnect();
  return result;
}"""


@pytest.mark.parametrize("sockjs_transport", ["xhr-streaming", "xhr-polling"])
def test_binary_data_over_sockjs_both_ways(open_page: Callable[..., DemoPage], iframe_demo_url: str,
                                           sockjs_transport: str) -> None:
    page = open_page(f"{iframe_demo_url}/?transport=sockjs")
    result = page.page.evaluate(ROUND_TRIP, sockjs_transport)
    expected = [[1, 2, 3, 250], [9, 8], "ok"]
    assert result == {"transport": "sockjs/" + sockjs_transport, "acked": expected, "pushed": expected}


@pytest.mark.parametrize("sockjs_transport", ["eventsource", "jsonp-polling", "iframe-xhr-polling",
                                              "iframe-eventsource", "htmlfile"])
def test_other_sockjs_transports(open_page: Callable[..., DemoPage], iframe_demo_url: str,
                                 sockjs_transport: str) -> None:
    page = open_page(f"{iframe_demo_url}/?transport=sockjs&sockjs={sockjs_transport}")
    assert page.text("#transport") == f"sockjs ({sockjs_transport})"
    message = token(sockjs_transport)
    page.echo(message)
    page.wait_for_log(message)


@pytest.mark.parametrize("sockjs_transport", ["xhr-streaming", "iframe-xhr-polling", "iframe-eventsource"])
def test_sockjs_client_with_its_sri_hash_loads_on_the_page_and_in_the_iframe(
        open_page: Callable[..., DemoPage], sri_demo_url: str, sockjs_transport: str) -> None:
    page = open_page(f"{sri_demo_url}/?transport=sockjs&sockjs={sockjs_transport}")
    assert page.page.locator("script[integrity][crossorigin=anonymous]").count() == 1
    assert page.text("#transport") == f"sockjs ({sockjs_transport})"
    if sockjs_transport.startswith("iframe-"):
        frame = page.page.frame_locator("iframe").first
        assert frame.locator("script[integrity][crossorigin=anonymous]").count() == 1
    message = token(sockjs_transport)
    page.echo(message)
    page.wait_for_log(message)


def test_a_wrong_sri_hash_keeps_sockjs_client_off_the_page(chromium: Any, wrong_sri_demo_url: str) -> None:
    page = DemoPage(chromium, f"{wrong_sri_demo_url}/?transport=sockjs", NO_WEBSOCKET)
    try:
        page.wait_disconnected()
        assert "sockjs-client is not loaded" in page.text("#mode")
        assert page.page.evaluate("typeof window.SockJS") == "undefined"
        assert any("integrity" in line for line in page.console), page.console
    finally:
        page.close()
