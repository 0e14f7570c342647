"""The socket.io-client API of the bundled client, in a real Chromium against tornado-sio.

Each test opens a page of a tornado-sio app run in a thread (namespace ``/api``),
runs a script in it, and checks what the page and the server saw. The page loads
the client as served (``client.js``: the minified build, compressed), except the
tests of the other builds. Semantics follow socket.io-client 4.8; where this
client differs on purpose the test says so.

Every wait is bounded; no test asserts on timing (reconnection delays are read
from a recording ``setTimeout``, not measured). An ackTimeout that a reply must
beat is a second, far above a reply's time on a loaded machine.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Iterator, List

import pytest
import tornado.web

from tests import support
from tests.test_browser import Page, browser, serve_in_thread, token  # noqa: F401 (browser: a fixture)
from tornado_sio import SocketIO, emit, join_room, request

NS = "/api"

#: Helpers every test page has: a socket of /api that is connected, and a wait.
HELPERS = """
window.connected = (socket) => new Promise((resolve, reject) => {
  if (socket.connected) return resolve(socket);
  socket.once('connect', () => resolve(socket));
  socket.once('connect_error', (err) => reject(new Error('connect_error: ' + err.message)));
});
window.apiSocket = (opts) => connected(io('/api', Object.assign({forceNew: true}, opts)));
window.nextEvent = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
"""

PAGE = """<!doctype html><meta charset="utf-8"><title>api</title>
<script src="%(script)s"></script><script>%(helpers)s</script>"""

#: A page without the classic script: the ES module build is imported by the test.
BARE_PAGE = """<!doctype html><meta charset="utf-8"><title>bare</title>"""


class Server:
    """What the app's handlers saw, by key (a token chosen by each test)."""

    def __init__(self) -> None:
        self.url = ""
        self.record: Dict[str, List[Any]] = {}

    def seen(self, key: str) -> List[Any]:
        return list(self.record.get(key, []))


class NoAck(Exception):
    """Raised by a handler so that no acknowledgement is sent (as if it were lost)."""


def make_app(server: Server) -> tornado.web.Application:
    socketio = SocketIO()

    @socketio.on("echo", namespace=NS)
    def echo(*args: Any) -> List[Any]:
        emit("echo", *args)
        return list(args)

    @socketio.on("push", namespace=NS)
    def push(*events: List[Any]) -> int:
        """Send back each [event, *args] given, then acknowledge."""
        for name, *args in events:
            emit(name, *args)
        return len(events)

    @socketio.on("record", namespace=NS)
    def record(key: str, value: Any) -> Any:
        server.record.setdefault(key, []).append(value)
        return value

    @socketio.on("flaky", namespace=NS)
    def flaky(key: str, failures: int) -> int:
        """Record the try; the first *failures* tries get no acknowledgement."""
        tries = server.record.setdefault(key, [])
        tries.append(len(tries) + 1)
        if len(tries) <= failures:
            raise NoAck(key)
        return len(tries)

    @socketio.on("silent", namespace=NS)
    def silent() -> None:
        raise NoAck("never acknowledged")

    @socketio.on("headers", namespace=NS)
    def headers(*names: str) -> Dict[str, Any]:
        """The handshake request's headers of those names (None when absent)."""
        return {name: request.headers.get(name) for name in names}

    # No error handler for NS: a handler that raises (NoAck) then sends no ack. An error
    # handler's return value would answer the ack, as in Flask-SocketIO.

    class ApiPage(tornado.web.RequestHandler):
        def get(self, build: str) -> None:
            from tornado_sio import clientjs

            script = {"": clientjs.script_path(), "dev": clientjs.dev_script_path()}[build]
            self.write(PAGE % {"script": script, "helpers": HELPERS})

    class BarePage(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write(BARE_PAGE)

    class Hang(tornado.web.RequestHandler):
        """An endpoint that never answers (for the connection timeout)."""

        async def get(self) -> None:
            await asyncio.sleep(60)

    return tornado.web.Application(socketio.routes() + [
        (r"/(|dev)", ApiPage),
        (r"/bare", BarePage),
        (r"/hang/?", Hang),
    ])


@pytest.fixture(scope="module")
def api_server() -> Iterator[Server]:
    server = Server()
    with serve_in_thread(lambda: make_app(server)) as url:
        server.url = url
        yield server


@pytest.fixture
def open_page(browser: Any, api_server: Any) -> Iterator[Callable[..., Page]]:  # noqa: F811
    pages: List[Page] = []

    def open_(path: str = "/") -> Page:
        page = Page(browser, api_server.url + path)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()
    assert [e for p in pages for e in p.errors] == [], "uncaught errors in the page"


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Any:
    """The Playwright page of a fresh tab with the served client and the helpers."""
    return open_page().page


# ---------------------------------------------------------------- catch-all listeners (incoming)


def test_on_any_gets_every_incoming_event_before_its_own_listeners(page: Any) -> None:
    seen = page.evaluate("""async () => {
      const socket = await apiSocket();
      const seen = [];
      socket.on('a', (...args) => seen.push(['own a'].concat(args)));
      socket.onAny((event, ...args) => seen.push(['any ' + event].concat(args)));
      await socket.emitWithAck('push', ['a', 1, 'x'], ['b', {k: 2}]);
      return seen;
    }""")

    assert seen == [["any a", 1, "x"], ["own a", 1, "x"], ["any b", {"k": 2}]]


def test_prepend_any_runs_before_the_catch_all_listeners_already_added(page: Any) -> None:
    seen = page.evaluate("""async () => {
      const socket = await apiSocket();
      const seen = [];
      socket.onAny((event) => seen.push('first added ' + event));
      socket.prependAny((event) => seen.push('prepended ' + event));
      await socket.emitWithAck('push', ['a']);
      return seen;
    }""")

    assert seen == ["prepended a", "first added a"]


def test_off_any_removes_the_given_catch_all_listener(page: Any) -> None:
    seen = page.evaluate("""async () => {
      const socket = await apiSocket();
      const seen = [];
      const one = (event) => seen.push('one ' + event);
      socket.onAny(one).onAny((event) => seen.push('two ' + event));
      socket.offAny(one);
      await socket.emitWithAck('push', ['a']);
      return seen;
    }""")

    assert seen == ["two a"]


def test_off_any_without_a_listener_removes_them_all(page: Any) -> None:
    result = page.evaluate("""async () => {
      const socket = await apiSocket();
      const seen = [];
      socket.onAny(() => seen.push(1)).onAny(() => seen.push(2));
      socket.offAny();
      await socket.emitWithAck('push', ['a']);
      return {seen, left: socket.listenersAny().length};
    }""")

    assert result == {"seen": [], "left": 0}


def test_listeners_any_lists_the_catch_all_listeners_in_call_order(page: Any) -> None:
    result = page.evaluate("""async () => {
      const socket = io('/api', {forceNew: true, autoConnect: false});
      const one = () => {}, two = () => {}, zero = () => {};
      socket.onAny(one).onAny(two).prependAny(zero);
      const listed = socket.listenersAny();
      return listed.length === 3 && listed[0] === zero && listed[1] === one && listed[2] === two;
    }""")

    assert result is True


def test_on_any_is_not_called_for_connect_and_disconnect(page: Any) -> None:
    seen = page.evaluate("""async () => {
      const socket = io('/api', {forceNew: true, autoConnect: false});
      const seen = [];
      socket.onAny((event) => seen.push(event));
      await connected(socket.connect());
      await socket.emitWithAck('push', ['a']);
      const gone = nextEvent(socket, 'disconnect');
      socket.disconnect();
      await gone;
      return seen;
    }""")

    assert seen == ["a"]


# ---------------------------------------------------------------- catch-all listeners (outgoing)


def test_on_any_outgoing_gets_each_event_sent_without_its_ack_callback(page: Any) -> None:
    seen = page.evaluate("""async () => {
      const socket = await apiSocket();
      const seen = [];
      socket.onAnyOutgoing((...args) => seen.push(args));
      await new Promise((resolve) => socket.emit('echo', 1, {two: 2}, resolve));
      return seen;
    }""")

    assert seen == [["echo", 1, {"two": 2}]]


def test_on_any_outgoing_is_called_when_a_buffered_event_goes_out(page: Any) -> None:
    result = page.evaluate("""async () => {
      const socket = io('/api', {forceNew: true, autoConnect: false});
      const seen = [];
      socket.onAnyOutgoing((event, ...args) => seen.push([event].concat(args)));
      const replied = new Promise((resolve) => socket.emit('echo', 'early', resolve));
      const beforeConnect = seen.length;
      socket.connect();
      await replied;
      return {beforeConnect, seen};
    }""")

    assert result == {"beforeConnect": 0, "seen": [["echo", "early"]]}


def test_prepend_any_outgoing_runs_before_the_outgoing_listeners_already_added(page: Any) -> None:
    seen = page.evaluate("""async () => {
      const socket = await apiSocket();
      const seen = [];
      socket.onAnyOutgoing((event) => seen.push('first added ' + event));
      socket.prependAnyOutgoing((event) => seen.push('prepended ' + event));
      await socket.emitWithAck('echo');
      return seen;
    }""")

    assert seen == ["prepended echo", "first added echo"]


def test_off_any_outgoing_removes_one_listener_or_all(page: Any) -> None:
    result = page.evaluate("""async () => {
      const socket = await apiSocket();
      const seen = [];
      const one = () => seen.push('one');
      socket.onAnyOutgoing(one).onAnyOutgoing(() => seen.push('two'));
      socket.offAnyOutgoing(one);
      await socket.emitWithAck('echo');
      const afterOne = seen.slice();
      socket.offAnyOutgoing();
      await socket.emitWithAck('echo');
      return {afterOne, afterAll: seen.slice(afterOne.length), left: socket.listenersAnyOutgoing().length};
    }""")

    assert result == {"afterOne": ["two"], "afterAll": [], "left": 0}


def test_listeners_any_outgoing_lists_the_outgoing_listeners_in_call_order(page: Any) -> None:
    result = page.evaluate("""async () => {
      const socket = io('/api', {forceNew: true, autoConnect: false});
      const one = () => {}, zero = () => {};
      socket.onAnyOutgoing(one).prependAnyOutgoing(zero);
      const listed = socket.listenersAnyOutgoing();
      return listed.length === 2 && listed[0] === zero && listed[1] === one && socket.listenersAny().length === 0;
    }""")

    assert result is True


# ---------------------------------------------------------------- compress, removeAllListeners


def test_compress_is_chainable_and_the_event_still_arrives(page: Any) -> None:
    result = page.evaluate("""async () => {
      const socket = await apiSocket();
      const chained = socket.compress(true) === socket;
      const reply = await socket.compress(false).emitWithAck('echo', 'uncompressed');
      const after = await socket.emitWithAck('echo', 'next');
      return {chained, reply, after};
    }""")

    assert result == {"chained": True, "reply": ["uncompressed"], "after": ["next"]}


def test_remove_all_listeners_of_one_event_keeps_the_other_events(page: Any) -> None:
    seen = page.evaluate("""async () => {
      const socket = await apiSocket();
      const seen = [];
      socket.on('a', () => seen.push('a1')).on('a', () => seen.push('a2')).on('b', () => seen.push('b'));
      const chained = socket.removeAllListeners('a') === socket;
      await socket.emitWithAck('push', ['a'], ['b']);
      return {chained, seen, hasA: socket.hasListeners('a')};
    }""")

    assert seen == {"chained": True, "seen": ["b"], "hasA": False}


def test_remove_all_listeners_without_an_event_removes_every_listener(page: Any) -> None:
    result = page.evaluate("""async () => {
      const socket = await apiSocket();
      const seen = [];
      socket.on('a', () => seen.push('a')).on('b', () => seen.push('b')).on('disconnect', () => seen.push('gone'));
      socket.removeAllListeners();
      await socket.emitWithAck('push', ['a'], ['b']);
      socket.disconnect();
      return {seen, any: ['a', 'b', 'connect', 'disconnect'].some((e) => socket.hasListeners(e))};
    }""")

    assert result == {"seen": [], "any": False}


def test_remove_listener_removes_one_listener(page: Any) -> None:
    seen = page.evaluate("""async () => {
      const socket = await apiSocket();
      const seen = [];
      const one = () => seen.push('one');
      socket.on('a', one).on('a', () => seen.push('two'));
      socket.removeListener('a', one);
      await socket.emitWithAck('push', ['a']);
      return seen;
    }""")

    assert seen == ["two"]


# ---------------------------------------------------------------- ackTimeout and retries


def test_ack_timeout_option_gives_ack_callbacks_an_error_first_argument(page: Any) -> None:
    result = page.evaluate("""async () => {
      const socket = await apiSocket({ackTimeout: 10000});
      return new Promise((resolve) => socket.emit('echo', 'x', (err, reply) => resolve({err, reply})));
    }""")

    assert result == {"err": None, "reply": ["x"]}


def test_ack_timeout_option_times_out_an_unanswered_event(page: Any) -> None:
    message = page.evaluate("""async () => {
      const socket = await apiSocket({ackTimeout: 200});
      return new Promise((resolve) => socket.emit('silent', (err) => resolve(err && err.message)));
    }""")

    assert message == "operation has timed out"


def test_emit_with_ack_rejects_when_the_socket_disconnects(page: Any) -> None:
    message = page.evaluate("""async () => {
      const socket = await apiSocket();
      const pending = socket.emitWithAck('silent');
      socket.disconnect();
      return pending.then(() => 'resolved', (err) => err.message);
    }""")

    assert message == "socket has been disconnected"


def test_retries_resend_an_unacknowledged_event_until_it_is_acknowledged(page: Any, api_server: Any) -> None:
    key = token("flaky")

    reply = page.evaluate("""async (key) => {
      const socket = await apiSocket({retries: 3, ackTimeout: 1000});
      return socket.emitWithAck('flaky', key, 2);
    }""", key)

    assert reply == 3
    assert api_server.seen(key) == [1, 2, 3]


def test_retries_give_up_after_retries_plus_one_tries_with_the_timeout_error(page: Any, api_server: Any) -> None:
    key = token("flaky")

    message = page.evaluate("""async (key) => {
      const socket = await apiSocket({retries: 2, ackTimeout: 200});
      return socket.emitWithAck('flaky', key, 99).then(() => 'acknowledged', (err) => err.message);
    }""", key)

    assert message == "operation has timed out"
    assert api_server.seen(key) == [1, 2, 3]


def test_retries_send_queued_events_one_at_a_time_in_order(page: Any, api_server: Any) -> None:
    key = token("order")

    replies = page.evaluate("""async (key) => {
      const socket = await apiSocket({retries: 3, ackTimeout: 1000});
      const acks = [];
      const ack = (label) => (err, value) => acks.push([label, err && err.message, value]);
      socket.emit('flaky', key, 1, ack('flaky'));
      socket.emit('record', key, 'b', ack('b'));
      await socket.emitWithAck('record', key, 'c');
      return acks;
    }""", key)

    assert api_server.seen(key) == [1, 2, "b", "c"]
    assert replies == [["flaky", None, 2], ["b", None, "b"]]


def test_retries_keep_events_emitted_before_the_connection_in_order(page: Any, api_server: Any) -> None:
    key = token("early")

    page.evaluate("""async (key) => {
      const socket = io('/api', {forceNew: true, autoConnect: false, retries: 1, ackTimeout: 5000});
      socket.emit('record', key, 1);
      socket.emit('record', key, 2);
      const last = socket.emitWithAck('record', key, 3);
      socket.connect();
      await last;
    }""", key)

    assert api_server.seen(key) == [1, 2, 3]


def test_server_acknowledging_with_no_value_is_a_success_with_retries(page: Any, api_server: Any) -> None:
    # socket.io-client 4.8 takes the server's first ack argument for an error in the
    # retry queue when there is no ackTimeout, and resends; this client does not.
    key = token("no-timeout")

    result = page.evaluate("""async (key) => {
      const socket = await apiSocket({retries: 2});
      return new Promise((resolve) => socket.emit('record', key, null, (err, value) => resolve({err, value})));
    }""", key)

    assert result == {"err": None, "value": None}
    assert api_server.seen(key) == [None]


# ---------------------------------------------------------------- Manager setters


def test_manager_setters_chain_and_getters_return_the_values(page: Any) -> None:
    result = page.evaluate("""() => {
      const m = io('/api', {forceNew: true, autoConnect: false}).io;
      const chained = m.reconnection(false).reconnectionAttempts(3).reconnectionDelay(10)
        .reconnectionDelayMax(20).randomizationFactor(0.25).timeout(1234) === m;
      return {chained, reconnection: m.reconnection(), attempts: m.reconnectionAttempts(),
              delay: m.reconnectionDelay(), max: m.reconnectionDelayMax(),
              factor: m.randomizationFactor(), timeout: m.timeout()};
    }""")

    assert result == {"chained": True, "reconnection": False, "attempts": 3, "delay": 10, "max": 20,
                      "factor": 0.25, "timeout": 1234}


def test_manager_getters_return_the_options_and_defaults(page: Any) -> None:
    result = page.evaluate("""() => {
      const m = io('/api', {forceNew: true, autoConnect: false, reconnectionDelay: 300}).io;
      return [m.reconnection(), m.reconnectionAttempts(), m.reconnectionDelay(), m.reconnectionDelayMax(),
              m.randomizationFactor(), m.timeout()];
    }""")

    assert result == [True, float("inf"), 300, 5000, 0.5, 20000]


#: Runs `scenario(manager, delays)` on a Manager whose server refuses connections,
#: with window.setTimeout recording the delays it is given (the connection
#: timeout, 4321 ms, left out), until reconnect_failed or connect_error.
UNREACHABLE = """async ([port, scenario, until]) => {
  const delays = [];
  const realSetTimeout = window.setTimeout;
  window.setTimeout = function (fn, ms, ...rest) {
    if (typeof ms === 'number' && ms !== 4321) delays.push(ms);
    return realSetTimeout.call(window, fn, ms, ...rest);
  };
  try {
    const socket = io('http://127.0.0.1:' + port + '/', {forceNew: true, autoConnect: false, transports: ['websocket']});
    const m = socket.io.timeout(4321);
    const attempts = [];
    m.on('reconnect_attempt', (n) => attempts.push(n));
    (new Function('m', scenario))(m);
    const done = nextEvent(until === 'connect_error' ? socket : m, until);
    socket.connect();
    await done;
    await new Promise((resolve) => realSetTimeout(resolve, 0)); // anything scheduled right after
    m.reconnection(false);
    socket.disconnect();
    return {delays, attempts};
  } finally {
    window.setTimeout = realSetTimeout;
  }
}"""


def test_reconnection_delay_setters_set_the_backoff_delays(page: Any) -> None:
    result = page.evaluate(UNREACHABLE, [support.free_port(), """
      m.reconnectionAttempts(4).reconnectionDelay(40).reconnectionDelayMax(100).randomizationFactor(0);
    """, "reconnect_failed"])

    assert result == {"delays": [40, 80, 100, 100], "attempts": [1, 2, 3, 4]}


def test_randomization_factor_setter_sets_the_jitter_of_each_delay(page: Any) -> None:
    # With Math.random() at 0.99 socket.io-client's backoff adds floor(0.99 * factor * d).
    result = page.evaluate(UNREACHABLE, [support.free_port(), """
      Math.random = () => 0.99;
      m.reconnectionAttempts(2).reconnectionDelay(40).reconnectionDelayMax(1000).randomizationFactor(0.5);
    """, "reconnect_failed"])

    assert result["delays"] == [40 + 19, 80 + 39]


def test_reconnection_attempts_setter_limits_the_attempts(page: Any) -> None:
    result = page.evaluate(UNREACHABLE, [support.free_port(), """
      m.reconnectionAttempts(2).reconnectionDelay(5).reconnectionDelayMax(5);
    """, "reconnect_failed"])

    assert result["attempts"] == [1, 2]


def test_reconnection_setter_false_stops_reconnecting(page: Any) -> None:
    disabled = page.evaluate(UNREACHABLE, [support.free_port(), "m.reconnection(false);", "connect_error"])
    enabled = page.evaluate(UNREACHABLE, [support.free_port(), "m.reconnectionDelay(5000);", "connect_error"])

    assert disabled == {"delays": [], "attempts": []}
    assert len(enabled["delays"]) == 1  # the control: a reconnection was scheduled


def test_timeout_setter_limits_a_connection_attempt(page: Any) -> None:
    message = page.evaluate("""async () => {
      const socket = io('/api', {forceNew: true, autoConnect: false, path: '/hang', transports: ['polling'],
                                 reconnection: false});
      socket.io.timeout(300);
      const failed = nextEvent(socket, 'connect_error');
      socket.connect();
      const [err] = await failed;
      return err.message;
    }""")

    assert message == "timeout"


def test_manager_made_directly_opens_a_namespace(page: Any) -> None:
    reply = page.evaluate("""async () => {
      const manager = new io.Manager(location.origin, {autoConnect: false});
      const socket = manager.socket('/api');
      socket.connect();
      await connected(socket);
      const reply = await socket.emitWithAck('echo', 'direct');
      manager.disconnect();
      return reply;
    }""")

    assert reply == ["direct"]


# ---------------------------------------------------------------- extraHeaders, transportOptions

HEADER_NAMES = ["X-Client-Token", "X-Polling-Only", "X-Websocket-Only"]


def headers_seen(page: Any, opts: Dict[str, Any]) -> Dict[str, Any]:
    """The HEADER_NAMES the server saw at the handshake of a socket made with *opts*."""
    return page.evaluate("""async ([opts, names]) => {
      const socket = await apiSocket(opts);
      const seen = await socket.emitWithAck('headers', ...names);
      socket.disconnect();
      return seen;
    }""", [opts, HEADER_NAMES])


def test_extra_headers_are_sent_on_long_polling(page: Any) -> None:
    seen = headers_seen(page, {"transports": ["polling"], "extraHeaders": {"X-Client-Token": "abc"}})

    assert seen == {"X-Client-Token": "abc", "X-Polling-Only": None, "X-Websocket-Only": None}


def test_extra_headers_are_not_sent_on_websocket_which_still_connects(page: Any) -> None:
    # A browser's WebSocket takes no headers: documented, and not an error.
    seen = headers_seen(page, {"transports": ["websocket"], "extraHeaders": {"X-Client-Token": "abc"}})

    assert seen == {"X-Client-Token": None, "X-Polling-Only": None, "X-Websocket-Only": None}


def test_transport_options_give_polling_its_own_extra_headers(page: Any) -> None:
    # As in socket.io-client, the transport's options replace the top-level ones
    # (a shallow merge): its extraHeaders win whole.
    seen = headers_seen(page, {
        "transports": ["polling"], "extraHeaders": {"X-Client-Token": "top"},
        "transportOptions": {"polling": {"extraHeaders": {"X-Polling-Only": "yes"}}},
    })

    assert seen == {"X-Client-Token": None, "X-Polling-Only": "yes", "X-Websocket-Only": None}


def test_transport_options_of_another_transport_are_not_applied(page: Any) -> None:
    seen = headers_seen(page, {
        "transports": ["polling"],
        "transportOptions": {"websocket": {"extraHeaders": {"X-Websocket-Only": "yes"}}},
    })

    assert seen == {"X-Client-Token": None, "X-Polling-Only": None, "X-Websocket-Only": None}


def test_changed_extra_headers_are_sent_from_the_next_reconnection_on(page: Any) -> None:
    seen = page.evaluate("""async () => {
      const socket = await apiSocket({transports: ['polling'], extraHeaders: {'X-Client-Token': 'first'},
                                      reconnectionDelay: 10, reconnectionDelayMax: 10});
      const first = await socket.emitWithAck('headers', 'X-Client-Token');
      socket.io.opts.extraHeaders = {'X-Client-Token': 'second'};
      const back = nextEvent(socket, 'connect');
      socket.io.engine.close();
      await back;
      const second = await socket.emitWithAck('headers', 'X-Client-Token');
      socket.disconnect();
      return [first['X-Client-Token'], second['X-Client-Token']];
    }""")

    assert seen == ["first", "second"]


# ---------------------------------------------------------------- the builds


def test_browser_receives_the_client_compressed(open_page: Callable[..., Page]) -> None:
    page = open_page()

    encoding = page.page.evaluate("""async () => {
      const entry = performance.getEntriesByType('resource').find((e) => e.name.includes('/client.js'));
      return {transferSmaller: entry.encodedBodySize < entry.decodedBodySize, loaded: typeof io === 'function'};
    }""")

    assert encoding == {"transferSmaller": True, "loaded": True}


@pytest.mark.parametrize("build", ["", "dev"], ids=["minified", "unminified"])
def test_classic_script_builds_connect_and_round_trip(open_page: Callable[..., Page], build: str) -> None:
    page = open_page("/" + build)

    reply = page.page.evaluate("""async () => {
      const socket = await apiSocket();
      return socket.emitWithAck('echo', 'hi', new Uint8Array([1, 2]).buffer)
        .then(([text, bytes]) => [text, Array.from(new Uint8Array(bytes))]);
    }""")

    assert reply == ["hi", [1, 2]]


@pytest.mark.parametrize("name", ["client.esm.js", "client.esm.dev.js"])
def test_es_module_build_exports_the_api_and_connects(open_page: Callable[..., Page], name: str) -> None:
    from tornado_sio import clientjs

    page = open_page("/bare")

    result = page.page.evaluate("""async (url) => {
      const m = await import(url);
      const socket = m.io('/api', {forceNew: true});
      await new Promise((resolve) => socket.once('connect', resolve));
      const reply = await socket.emitWithAck('echo', 'esm');
      const result = {exports: Object.keys(m).sort(), reply, isSocket: socket instanceof m.Socket,
                      isManager: socket.io instanceof m.Manager, sameIo: m.default === m.io && m.connect === m.io,
                      protocol: m.protocol, noGlobal: typeof window.io === 'undefined'};
      socket.disconnect();
      return result;
    }""", clientjs.asset_path(name))

    assert result == {"exports": ["Manager", "Socket", "connect", "default", "io", "protocol"], "reply": ["esm"],
                      "isSocket": True, "isManager": True, "sameIo": True, "protocol": 5, "noGlobal": True}


# ---------------------------------------------------------------- connection state recovery


@pytest.fixture(scope="module")
def recovery_url() -> Iterator[str]:
    """An app with connection state recovery on: namespace /rec, whose ``burst(room, count)``
    emits ``n 1..count`` to *room*, one every 10 ms, from a background task."""

    def make() -> tornado.web.Application:
        socketio = SocketIO(connection_state_recovery=True)

        @socketio.on("join", namespace="/rec")
        def join(room: str) -> str:
            join_room(room)
            return "joined"

        @socketio.on("burst", namespace="/rec")
        def burst(room: str, count: int) -> None:
            async def run() -> None:
                for i in range(1, count + 1):
                    socketio.emit("n", i, to=room, namespace="/rec")
                    await asyncio.sleep(0.01)

            socketio.start_background_task(run)

        class Page_(tornado.web.RequestHandler):
            def get(self) -> None:
                from tornado_sio import clientjs

                self.write(PAGE % {"script": clientjs.script_path(), "helpers": HELPERS})

        return tornado.web.Application(socketio.routes() + [(r"/", Page_)])

    with serve_in_thread(make) as url:
        yield url


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
def test_killed_transport_is_recovered_with_every_missed_event_once(
        browser: Any, recovery_url: str, transports: List[str]) -> None:  # noqa: F811
    page = Page(browser, recovery_url + "/")
    try:
        result = page.page.evaluate("""async (transports) => {
          const socket = io('/rec', {forceNew: true, transports, reconnectionDelay: 300,
                                     reconnectionDelayMax: 300, randomizationFactor: 0});
          await connected(socket);
          const first = {id: socket.id, recovered: socket.recovered};
          const seen = [];
          const offsets = [];
          socket.on('n', (i, offset) => { seen.push(i); offsets.push(offset); });
          await socket.emitWithAck('join', 'r');
          const again = new Promise((resolve) => socket.once('connect', () => resolve(
              {id: socket.id, recovered: socket.recovered})));
          const done = new Promise((resolve) => socket.on('n', (i) => { if (i === 40) resolve(); }));
          socket.emit('burst', 'r', 40);
          await new Promise((resolve) => socket.once('n', resolve));  // an offset is known
          socket.io.engine.close();  // kill the transport; the Manager reconnects
          const second = await again;
          await done;
          socket.disconnect();
          return {first, second, seen, lastOffset: socket._lastOffset, offsets};
        }""", transports)
    finally:
        page.close()
    assert result["first"]["recovered"] is False
    assert result["second"] == {"id": result["first"]["id"], "recovered": True}
    assert result["seen"] == list(range(1, 41))
    assert all(isinstance(o, str) for o in result["offsets"])
    assert result["lastOffset"] == result["offsets"][-1]
    assert page.errors == []
