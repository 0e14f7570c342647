"""The side-by-side check: one application on Flask-SocketIO and on tornado-sio, seen by one client.

``tests/parity_app.py`` is a Flask-SocketIO application whose tornado-sio
version differs in its imports only. It runs three times, each in a child
process on 127.0.0.1: on Flask-SocketIO 5 (threading mode, werkzeug and
simple-websocket), on tornado-sio with its defaults (plain handlers on the
IOLoop), and on tornado-sio with ``handler_threads=4``. python-socketio's client
drives each the same way (``tests/parity_observe.py``) and records named
observations; every name is one test here.

Where tornado-sio differs on purpose, the test names what Flask-SocketIO does
and what tornado-sio does instead, and ``docs/migrating-from-flask-socketio.md``
says why (a test checks that it lists each one, and its figures).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tempfile
from typing import Any, Callable, Dict, Union

import pytest

from tests import support

try:
    import flask_socketio
except ImportError:
    flask_socketio = None

APP = support.ROOT / "tests" / "parity_app.py"
GUIDE = support.ROOT / "docs" / "migrating-from-flask-socketio.md"
#: Every observation's name, read from the observer (so each is a test of its own).
NAMES = re.findall(r'seen\["(.+?)"\]', (support.ROOT / "tests" / "parity_observe.py").read_text(encoding="utf-8"))
#: How each server runs: the flavour of tests/parity_app.py and its extra options.
SERVERS = {"flask": ("flask", {"async_mode": "threading"}), "tornado": ("tornado", {}),
           "threads": ("tornado", {"handler_threads": 4})}

Expected = Union[Any, Callable[[Any], bool]]


class Difference:
    """What Flask-SocketIO shows, what tornado-sio shows instead, and whether ``handler_threads`` closes it."""

    def __init__(self, flask: Any, tornado: Expected, threads_match_flask: bool = False) -> None:
        self.flask = flask
        self.tornado = tornado
        self.threads_match_flask = threads_match_flask

    def tornado_ok(self, value: Any) -> bool:
        return self.tornado(value) if callable(self.tornado) else value == self.tornado


def refuses_blocking_call(ack: Any) -> bool:
    return isinstance(ack, dict) and ack["error"] == "RuntimeError" and "handler_threads" in ack["message"]


#: The deliberate differences (docs/migrating-from-flask-socketio.md, "Differences"), by observation.
DIFFERENCES: Dict[str, Difference] = {
    # rooms: python-socketio lists rooms in the order the namespace first saw them
    "rooms() order: own sid first, then join order": Difference(["zz", "<sid>", "new"], ["<sid>", "new", "zz"]),
    # python-socketio lets a '*'-namespace handler shadow a class-based namespace's method
    "class namespace: on_connect over a '*' connect handler": Difference(["any welcome"], ["class welcome"]),
    # Flask-SocketIO looks for a method named "on_my event", which cannot exist: the event goes unhandled
    "class namespace: an event name with spaces reaches on_<name_with_underscores>": Difference(None, "handled"),
    # Flask-SocketIO passes the sid first (and no request context) to an overriding trigger_event
    "an overridden trigger_event: its arguments": Difference(2, 1),
    # Flask-SocketIO sends to the sender's sid of namespace / in /chat, where no client has that sid
    "emit(namespace=other) from a handler reaches the client there": Difference(False, True),
    # python-socketio answers with a bare string; Node's server (and the JS client) use an object
    "unknown namespace: connect_error data": Difference(["Unable to connect"], [{"message": "Invalid namespace"}]),
    # plain handlers run on the IOLoop unless handler_threads is set
    "call() in a plain handler returns the client's ack": Difference(
        "answer to q1", refuses_blocking_call, threads_match_flask=True),
    "socketio.sleep() in a plain handler sleeps": Difference(0.3, 0.0, threads_match_flask=True),
    "a blocking plain handler delays other clients": Difference(False, True, threads_match_flask=True),
}

SAME = [name for name in NAMES if name not in DIFFERENCES]
SAME_WITH_THREADS = [name for name in NAMES if name not in DIFFERENCES or DIFFERENCES[name].threads_match_flask]


def serve_and_observe(flavour: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """Run the parity app as *flavour* in a child process and observe it with python-socketio's client."""
    from tests.parity_observe import observe

    port = support.free_port()
    command = [sys.executable, str(APP), flavour, str(port), json.dumps(options)]
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(command, cwd=str(support.ROOT), stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT)
        try:
            support.wait_for_port(port, proc=proc)
            return asyncio.run(asyncio.wait_for(observe(f"http://127.0.0.1:{port}"), 90))
        except Exception as exc:
            output.seek(0)
            raise AssertionError(f"{flavour} {options}: {exc!r}\n{output.read().decode(errors='replace')}") from exc
        finally:
            support.stop_process(proc)


_observed: Dict[str, Dict[str, Any]] = {}


@pytest.fixture
def seen():
    """``seen(server)``: the observations of *server* (``flask``, ``tornado``, ``threads``), made once."""
    if flask_socketio is None:
        support.missing("Flask-SocketIO not found: pip install flask-socketio")
    support.need_python_module("socketio")

    def get(server: str) -> Dict[str, Any]:
        if server not in _observed:
            _observed[server] = serve_and_observe(*SERVERS[server])
        return _observed[server]

    return get


@pytest.mark.parametrize("name", SAME)
def test_tornado_sio_observes_what_flask_socketio_does(seen, name):
    assert seen("tornado")[name] == seen("flask")[name]


@pytest.mark.parametrize("name", SAME_WITH_THREADS)
def test_with_handler_threads_tornado_sio_observes_what_flask_socketio_does(seen, name):
    assert seen("threads")[name] == seen("flask")[name]


@pytest.mark.parametrize("name", list(DIFFERENCES))
def test_flask_socketio_shows_the_documented_behaviour(seen, name):
    assert seen("flask")[name] == DIFFERENCES[name].flask


@pytest.mark.parametrize("name", list(DIFFERENCES))
def test_tornado_sio_shows_its_documented_behaviour_instead(seen, name):
    assert DIFFERENCES[name].tornado_ok(seen("tornado")[name]), seen("tornado")[name]


@pytest.mark.parametrize("name", [n for n, d in DIFFERENCES.items() if not d.threads_match_flask])
def test_handler_threads_keeps_the_deliberate_difference(seen, name):
    assert DIFFERENCES[name].tornado_ok(seen("threads")[name]), seen("threads")[name]


def test_all_three_servers_answer_every_observation(seen):
    assert set(seen("flask")) == set(seen("tornado")) == set(seen("threads")) == set(NAMES)


@pytest.mark.parametrize("name", list(DIFFERENCES))
def test_the_migration_guide_explains_each_difference(name):
    assert f"`{name}`" in GUIDE.read_text(encoding="utf-8")


def test_the_migration_guide_states_the_side_by_side_figures():
    text = GUIDE.read_text(encoding="utf-8")
    figures = (f"{len(NAMES)} observations", f"{len(SAME)} are the same by default",
               f"{len(SAME_WITH_THREADS)} with `handler_threads`")
    assert all(figure in text for figure in figures), figures
