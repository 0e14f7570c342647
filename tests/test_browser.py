"""The browser client and the example app, in a real Chromium driven by Playwright.

Most tests open the demo page of ``run.py`` (one app for the module; the restart
test runs its own). The bad-input tests use small servers run in a thread: a
scripted fake Engine.IO endpoint that refuses, vanishes or sends malformed
frames, and a tornado-sio app echoing binary data.

Chromium is Debian's (``/usr/bin/chromium``); never ``playwright install``.
Every wait is bounded; no test asserts on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import tornado.web
import tornado.websocket

from tests import support

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--no-first-run",
]
WAIT_MS = 15_000  # bound on one wait in the page

# Init scripts run before any page script: take WebSocket away (and, for the
# upgrade test, give it back as soon as the page's first io() call returns, that is
# once the client has started on long-polling and before its handshake comes back).
NO_WEBSOCKET = "window.__savedWebSocket = window.WebSocket; delete window.WebSocket;"
RESTORE_WEBSOCKET_AFTER_IO = NO_WEBSOCKET + """
(() => {
  let wrapped;
  Object.defineProperty(window, 'io', {configurable: true, get: () => wrapped, set: (io) => {
    wrapped = Object.assign(function () {
      const socket = io.apply(this, arguments);
      window.WebSocket = window.__savedWebSocket;
      return socket;
    }, io);
  }});
})();
"""


def token(label: str) -> str:
    """A message no other test sends."""
    return f"{label}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    support.need(CHROMIUM, "apt-get install chromium")
    support.need_python_module("playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def demo_url(browser: Any) -> Iterator[str]:
    with support.run_app() as port:
        yield f"http://127.0.0.1:{port}/"


class Page:
    """One browser tab, recording page errors, console output and dialogs."""

    def __init__(self, browser: Any, url: str, init_script: Optional[str] = None,
                 context_options: Optional[Dict[str, Any]] = None) -> None:
        self.context = browser.new_context(**(context_options or {}))
        if init_script:
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.errors: List[str] = []
        self.console: List[str] = []
        self.dialogs: List[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        self.page.on("dialog", self._on_dialog)
        self.page.goto(url)

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def close(self) -> None:
        self.context.close()


class DemoPage(Page):
    """The demo page, driven through its forms as a person would."""

    def wait_connected(self) -> DemoPage:
        self.page.wait_for_selector('#status[data-state="connected"]')
        return self

    def wait_disconnected(self) -> None:
        self.page.wait_for_selector('#status[data-state="disconnected"]')

    def submit(self, form: str, **fields: str) -> None:
        for name, value in fields.items():
            self.page.fill(f"#{form} [name={name}]", value)
        self.page.click(f"#{form} button[type=submit]")

    def echo(self, text: str) -> None:
        self.submit("emit-form", data=text)

    def broadcast(self, text: str) -> None:
        self.submit("broadcast-form", data=text)

    def join(self, room: str) -> None:
        """Join *room* and wait for the server's confirmation."""
        self.submit("join-form", room=room)
        self.page.locator("#log li", has_text=re.compile(r"In rooms: .*" + re.escape(room))).first.wait_for()

    def leave(self, room: str) -> None:
        """Leave *room*; done once a marker sent after it comes back."""
        self.submit("leave-form", room=room)
        self.sync()

    def send_to_room(self, room: str, text: str) -> None:
        self.submit("room-form", room=room, data=text)

    def close_room(self, room: str) -> None:
        self.submit("close-form", room=room)

    def wait_for_log(self, text: str) -> None:
        self.page.locator("#log li", has_text=text).first.wait_for()

    def logged(self, text: str) -> bool:
        return self.page.locator("#log li", has_text=text).count() > 0

    def text(self, selector: str) -> str:
        return self.page.text_content(selector) or ""

    def sync(self, *others: DemoPage) -> None:
        """Broadcast a marker and wait until every page has it. Events to one client
        arrive in order, so anything sent to a page before the marker is there by now."""
        marker = token("sync")
        self.broadcast(marker)
        for page in (self, *others):
            page.wait_for_log(marker)


@pytest.fixture
def open_demo(browser: Any, demo_url: str) -> Iterator[Callable[..., DemoPage]]:
    pages: List[DemoPage] = []

    def open_(init_script: Optional[str] = None, url: Optional[str] = None) -> DemoPage:
        page = DemoPage(browser, url or demo_url, init_script)
        pages.append(page)
        return page.wait_connected()

    yield open_
    for page in pages:
        page.close()
    assert [e for p in pages for e in p.errors] == [], "uncaught errors in the page"


# ---------------------------------------------------------------- the demo app


def test_echo_reaches_only_the_sender(open_demo: Callable[..., DemoPage]) -> None:
    a, b = open_demo(), open_demo()
    message = token("echo")

    a.echo(message)
    a.wait_for_log(message)
    a.sync(b)

    assert not b.logged(message)


def test_broadcast_reaches_every_page(open_demo: Callable[..., DemoPage]) -> None:
    a, b = open_demo(), open_demo()
    message = token("broadcast")

    a.broadcast(message)

    a.wait_for_log(message)
    b.wait_for_log(message)


def test_room_message_reaches_members_only(open_demo: Callable[..., DemoPage]) -> None:
    a, b = open_demo(), open_demo()
    room, message = token("room"), token("to-room")
    a.join(room)

    a.send_to_room(room, message)
    a.wait_for_log(message)
    a.sync(b)

    assert not b.logged(message)


def test_joined_page_receives_room_messages(open_demo: Callable[..., DemoPage]) -> None:
    a, b = open_demo(), open_demo()
    room, message = token("room"), token("to-room")
    a.join(room)
    b.join(room)

    a.send_to_room(room, message)

    a.wait_for_log(message)
    b.wait_for_log(message)


def test_left_page_no_longer_receives_room_messages(open_demo: Callable[..., DemoPage]) -> None:
    a, b = open_demo(), open_demo()
    room, message = token("room"), token("after-leave")
    a.join(room)
    b.join(room)
    b.leave(room)

    a.send_to_room(room, message)
    a.wait_for_log(message)
    a.sync(b)

    assert not b.logged(message)


def test_close_room_tells_the_members_and_empties_the_room(open_demo: Callable[..., DemoPage]) -> None:
    a, b = open_demo(), open_demo()
    room, message = token("room"), token("after-close")
    a.join(room)
    b.join(room)

    a.close_room(room)
    a.wait_for_log(f"Room {room} is closing.")
    b.wait_for_log(f"Room {room} is closing.")
    a.send_to_room(room, message)
    a.sync(b)

    assert not a.logged(message)
    assert not b.logged(message)


def test_disconnect_request_shows_disconnected(open_demo: Callable[..., DemoPage]) -> None:
    page = open_demo()

    page.page.click("#disconnect-button")

    page.wait_disconnected()
    page.wait_for_log("Disconnected!")
    assert "io server disconnect" in page.text("#status-detail")


def test_connect_button_reconnects_after_a_disconnect_request(open_demo: Callable[..., DemoPage]) -> None:
    page = open_demo()
    page.page.click("#disconnect-button")
    page.wait_disconnected()

    page.page.click("#connect-button")

    page.wait_connected()


def test_messages_sent_while_disconnected_are_delivered_after_reconnect(
        open_demo: Callable[..., DemoPage]) -> None:
    page = open_demo()
    page.page.click("#disconnect-button")
    page.wait_disconnected()
    message = token("buffered")

    page.echo(message)
    page.page.click("#connect-button")

    page.wait_for_log(message)


def test_page_shows_transport_and_latency(open_demo: Callable[..., DemoPage]) -> None:
    page = open_demo()

    page.page.wait_for_function("() => /^[0-9.]+$/.test(document.getElementById('latency').textContent)")

    assert page.text("#transport") == "websocket"


def test_received_html_is_shown_as_text(open_demo: Callable[..., DemoPage]) -> None:
    page = open_demo()
    payload = "<img src=x onerror=alert(1)><b>bold</b>"

    page.echo(payload)
    page.wait_for_log(payload)

    assert page.page.locator("#log img, #log b").count() == 0
    assert page.dialogs == []


def test_page_without_websocket_falls_back_to_polling_and_every_form_works(
        open_demo: Callable[..., DemoPage]) -> None:
    page = open_demo(NO_WEBSOCKET)
    room = token("room")
    assert page.text("#transport") == "polling"

    page.echo(token("echo"))
    page.broadcast(token("broadcast"))
    page.join(room)
    page.send_to_room(room, "in the room")
    page.wait_for_log("in the room")
    page.leave(room)
    page.join(room)
    page.close_room(room)
    page.wait_for_log(f"Room {room} is closing.")
    page.sync()
    page.page.click("#disconnect-button")
    page.wait_disconnected()

    assert page.text("#transport") == "polling"
    for text in ("Received #1: echo-", "Received #2: broadcast-", "In rooms: " + room, "Disconnected!"):
        assert page.logged(text), text


def test_restored_websocket_is_upgraded_to(open_demo: Callable[..., DemoPage]) -> None:
    page = open_demo(RESTORE_WEBSOCKET_AFTER_IO)

    # The client started on polling (WebSocket was missing when io() ran); at the
    # handshake it finds WebSocket and probes it: "2probe", "3probe", "5".
    page.page.wait_for_function("() => document.getElementById('transport').textContent === 'websocket'")

    assert page.logged("Transport upgraded to websocket")
    message = token("after-upgrade")
    page.echo(message)
    page.wait_for_log(message)


def test_stopped_server_shows_disconnected_and_restart_reconnects(browser: Any) -> None:
    port = support.free_port()
    with support.run_app(port=port):
        page = DemoPage(browser, f"http://127.0.0.1:{port}/").wait_connected()
    try:
        page.wait_disconnected()
        page.wait_for_log("Disconnected: ")
        # A Socket.IO DISCONNECT means "you were kicked, stay away": clients do not
        # reconnect after one. A server going down must close the transport instead.
        assert not page.logged("Disconnected: io server disconnect"), \
            "shutdown sent a Socket.IO DISCONNECT; clients will not reconnect"

        with support.run_app(port=port):
            page.wait_connected()
            message = token("after-restart")
            page.echo(message)
            page.wait_for_log(message)
        assert page.errors == []
    finally:
        page.close()


#: A 390x844 phone (an iPhone 12-15's viewport in CSS pixels).
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def in_viewport(page: DemoPage, selector: str, text: str) -> bool:
    """Whether the element matching *selector* and holding *text* is wholly on screen."""
    box = page.page.locator(selector, has_text=text).first.bounding_box()
    size = page.page.viewport_size
    return (box is not None and box["x"] >= 0 and box["y"] >= 0
            and box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"])


def test_phone_shows_the_echo_reply_without_scrolling(browser: Any, demo_url: str) -> None:
    page = DemoPage(browser, demo_url, context_options=PHONE).wait_connected()
    try:
        message = token("phone")
        assert in_viewport(page, "#emit-form button", "Echo"), "the echo form is below the fold"

        page.echo(message)
        page.wait_for_log(message)
        page.page.screenshot(path="/tmp/tornado-sio-demo-phone.png")

        assert page.page.evaluate("() => window.scrollY") == 0
        assert in_viewport(page, "#log li", message)
        assert page.errors == []
    finally:
        page.close()


def test_phone_keeps_the_newest_message_in_view_while_the_forms_scroll(browser: Any, demo_url: str) -> None:
    # The same phone with its on-screen keyboard up: 500 px of height left, so the
    # page scrolls to reach the last forms; the log stays pinned at the top.
    keyboard_up = dict(PHONE, viewport={"width": 390, "height": 500})
    page = DemoPage(browser, demo_url, context_options=keyboard_up).wait_connected()
    try:
        room = token("room")
        page.join(room)

        page.close_room(room)  # the last room form: Playwright scrolls down to it
        page.wait_for_log(f"Room {room} is closing.")
        page.page.screenshot(path="/tmp/tornado-sio-demo-phone-scrolled.png")

        assert page.page.evaluate("() => window.scrollY") > 0
        assert in_viewport(page, "#close-form button", "Close Room")
        assert in_viewport(page, "#log li", f"Room {room} is closing.")
        assert page.errors == []
    finally:
        page.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_py_logs_its_address_and_exits_cleanly_on_signal(signum: int) -> None:
    port = support.free_port()
    proc = subprocess.Popen([sys.executable, str(support.ROOT / "run.py"), "--port", str(port)],
                            cwd=str(support.ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        support.wait_for_port(port, proc=proc)
        os.kill(proc.pid, signum)
        output, _ = proc.communicate(timeout=10)
    finally:
        support.stop_process(proc)

    assert proc.returncode == 0, output
    assert f"listening on http://127.0.0.1:{port}" in output


# ---------------------------------------------------------------- servers in a thread


@contextlib.contextmanager
def serve_in_thread(make_app: Callable[[], tornado.web.Application]) -> Iterator[str]:
    """Run ``make_app()`` on 127.0.0.1 in a thread with its own event loop; yield its URL."""
    port = support.free_port()
    ready = threading.Event()
    state: Dict[str, Any] = {}

    async def main() -> None:
        server = make_app().listen(port, "127.0.0.1")
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready.set()
        await state["stop"].wait()
        server.stop()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(10), "test server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)


# The page for the fake server: one socket in namespace /x, every event recorded.
FAKE_PAGE = """<!doctype html><meta charset="utf-8"><script src="%s"></script><script>
window.events = [];
const mode = new URLSearchParams(location.search).get('mode');
const socket = io('/x', {transports: ['websocket'], query: {mode}, reconnectionDelay: 50, reconnectionDelayMax: 200});
socket.on('connect', () => events.push('connect'));
socket.on('disconnect', (reason) => events.push('disconnect:' + reason));
socket.on('connect_error', (err) => events.push('connect_error:' + err.message + ':' + JSON.stringify(err.data === undefined ? null : err.data)));
socket.on('my response', (msg) => events.push('message:' + JSON.stringify(msg)));
</script>"""

HANDSHAKE = "0" + json.dumps({"sid": "fake", "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000,
                              "maxPayload": 1000000})

#: What the fake server sends on the first connection after accepting the CONNECT.
MALFORMED = {
    "unknown-engine-packet": ["9hello"],
    "empty-frame": [""],
    "invalid-json": ['42/x,["my response",{broken'],
    "event-not-an-array": ['42/x,{"not":"an array"}'],
    "event-name-not-a-string": ['42/x,[{"a":1}]'],
    "unexpected-binary": [b"\x01\x02"],
    "text-while-awaiting-attachment": ['451-/x,["my response",{"_placeholder":true,"num":0}]', '42/x,["my response"]'],
    "placeholder-out-of-range": ['451-/x,["my response",{"_placeholder":true,"num":7}]', b"\x00"],
}


class FakeEngineIO(tornado.websocket.WebSocketHandler):
    """A scripted Engine.IO v4 endpoint: misbehaves on a mode's first connection."""

    def initialize(self, connections: Dict[str, int]) -> None:
        self.connections = connections

    def open(self) -> None:
        self.mode = self.get_query_argument("mode", "")
        self.nth = self.connections[self.mode] = self.connections.get(self.mode, 0) + 1
        first = self.nth == 1
        self.write_message("0{not json" if first and self.mode == "bad-handshake" else HANDSHAKE)

    def on_message(self, message: Any) -> None:
        if message == "2":
            return
        if not (isinstance(message, str) and message.startswith("40/x,")):
            return
        if self.mode == "refuse":
            self.write_message('44/x,{"message":"not authorized","data":{"code":42}}')
            return
        self.write_message('40/x,{"sid":"s%d"}' % self.nth)
        if self.nth > 1:
            self.write_message('42/x,["my response","welcome back"]')
        elif self.mode == "vanish":
            self.close()
        else:
            for frame in MALFORMED.get(self.mode, []):
                self.write_message(frame, binary=isinstance(frame, bytes))


@pytest.fixture(scope="module")
def fake_server() -> Iterator[str]:
    from tornado_sio import clientjs

    class FakePage(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write(FAKE_PAGE % clientjs.script_path())

    connections: Dict[str, int] = {}
    with serve_in_thread(lambda: tornado.web.Application(clientjs.routes() + [
        (r"/socket\.io/?", FakeEngineIO, {"connections": connections}),
        (r"/", FakePage),
    ])) as url:
        yield url


def fake_events(page: Page, until: str) -> List[str]:
    page.page.wait_for_function(f"() => {until}")
    return page.page.evaluate("() => window.events")


@pytest.mark.parametrize("mode", sorted(MALFORMED))
def test_malformed_frame_closes_and_reconnects_without_page_errors(
        browser: Any, fake_server: str, mode: str) -> None:
    page = Page(browser, f"{fake_server}/?mode={mode}")
    try:
        events = fake_events(page, "events.filter(e => e === 'connect').length >= 2")

        assert events[:3] == ["connect", "disconnect:parse error", "connect"]
        assert any("[tornado-sio]" in line for line in page.console)
        assert page.errors == []
    finally:
        page.close()


def test_malformed_handshake_is_a_connect_error_then_reconnects(
        browser: Any, fake_server: str) -> None:
    page = Page(browser, f"{fake_server}/?mode=bad-handshake")
    try:
        events = fake_events(page, "events.includes('connect')")

        assert events[0].startswith("connect_error:parse error")
        assert page.errors == []
    finally:
        page.close()


def test_refused_connection_reports_the_servers_message_and_data(
        browser: Any, fake_server: str) -> None:
    page = Page(browser, f"{fake_server}/?mode=refuse")
    try:
        events = fake_events(page, "events.length >= 1")

        assert events == ['connect_error:not authorized:{"code":42}']
        assert page.page.evaluate("() => socket.active") is False
        assert page.errors == []
    finally:
        page.close()


def test_server_closing_the_connection_is_a_disconnect_then_reconnect(
        browser: Any, fake_server: str) -> None:
    page = Page(browser, f"{fake_server}/?mode=vanish")
    try:
        events = fake_events(page, "events.some(e => e.includes('welcome back'))")

        assert events[:3] == ["connect", "disconnect:transport close", "connect"]
        assert page.errors == []
    finally:
        page.close()


# ---------------------------------------------------------------- the client against tornado-sio

BINARY_PAGE = """<!doctype html><meta charset="utf-8"><script src="%s"></script><script>
window.roundTrip = async (transports) => {
  const socket = io('/bin', {transports, forceNew: true});
  const echoed = new Promise((resolve) => socket.once('echo', (...args) => resolve(args)));
  const sent = [new Uint8Array([1, 2, 3, 250]), {nested: new Uint8Array([9, 8]).buffer, text: 'ok'}];
  const acked = await socket.timeout(10000).emitWithAck('echo', ...sent);
  const pushed = await echoed;
  const bytes = (b) => (b instanceof ArrayBuffer ? Array.from(new Uint8Array(b)) : 'not an ArrayBuffer: ' + typeof b);
  const result = {transport: socket.io.engine.transport.name,
                  acked: [bytes(acked[0]), bytes(acked[1].nested), acked[1].text],
                  pushed: [bytes(pushed[0]), bytes(pushed[1].nested), pushed[1].text]};
  socket.disconnect();
  return result;
};
window.twoNamespaces = async () => {
  const a = io('/bin', {forceNew: true});
  const b = a.io.socket('/');
  await Promise.all([a, b].map((s) => new Promise((resolve) => s.once('connect', resolve))));
  const result = {shared: a.io === b.io, ids: [a.id, b.id].every((id) => typeof id === 'string')};
  a.disconnect(); b.disconnect();
  return result;
};
window.viaRegisteredTransport = async () => {
  // A third transport plugged in by name (what the SockJS transport does).
  io.transports.custom = class extends io.transports.websocket {
    get name() { return 'custom'; }
    doOpen() { this.query.transport = 'websocket'; super.doOpen(); }
  };
  const socket = io('/bin', {transports: ['custom'], forceNew: true});
  const reply = await socket.timeout(10000).emitWithAck('echo', 'hi');
  const result = {transport: socket.io.engine.transport.name, reply};
  socket.disconnect();
  return result;
};
</script>"""


@pytest.fixture(scope="module")
def sio_server() -> Iterator[str]:
    from tornado_sio import SocketIO, emit

    def make_app() -> tornado.web.Application:
        socketio = SocketIO()

        @socketio.on("echo", namespace="/bin")
        def echo(*args: Any) -> List[Any]:
            emit("echo", *args)
            return list(args)

        class BinaryPage(tornado.web.RequestHandler):
            def get(self) -> None:
                self.write(BINARY_PAGE % socketio.client_script_url)

        return tornado.web.Application(socketio.routes() + [(r"/", BinaryPage)])

    with serve_in_thread(make_app) as url:
        yield url


def test_namespaces_share_one_connection(browser: Any, sio_server: str) -> None:
    page = Page(browser, sio_server + "/")
    try:
        assert page.page.evaluate("() => twoNamespaces()") == {"shared": True, "ids": True}
    finally:
        page.close()


def test_registered_transport_is_used_by_name(browser: Any, sio_server: str) -> None:
    page = Page(browser, sio_server + "/")
    try:
        assert page.page.evaluate("() => viaRegisteredTransport()") == {"transport": "custom", "reply": ["hi"]}
    finally:
        page.close()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_binary_data_round_trips_both_ways(browser: Any, sio_server: str,
                                           transport: str) -> None:
    page = Page(browser, sio_server + "/")
    try:
        result = page.page.evaluate("(t) => roundTrip([t])", transport)

        expected = [[1, 2, 3, 250], [9, 8], "ok"]
        assert result == {"transport": transport, "acked": expected, "pushed": expected}
        assert page.errors == []
    finally:
        page.close()

