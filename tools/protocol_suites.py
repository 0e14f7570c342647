#!/usr/bin/env python3
"""Run Socket.IO's public protocol test suites (Engine.IO v4, Socket.IO v5) against tornado-sio.

Usage::

    python tools/protocol_suites.py SUITE [SUITE ...]
    python tools/protocol_suites.py --serve engine.io --port 3000   # only the server

A SUITE is the ``test-suite/`` folder of github:socketio/engine.io-protocol or
github:socketio/socket.io-protocol (a checkout, or an export such as
``git -C REPO archive HEAD test-suite | tar -x -C /tmp/eio``), the folder
holding it, or the bare git directory of such a repository (the tool exports
``HEAD:test-suite`` itself). Which suite it is comes from its
``package.json`` name.

For each suite the tool installs its npm dev dependencies with ``npm ci``
into a cache directory (``--cache``, default ``.cache/protocol-suites``; once
per ``package-lock.json``), copies the suite into a temporary folder that uses
them, points the copy's fixed ``http://localhost:3000`` at a free 127.0.0.1
port (the copy only: the suite itself is not touched), starts the tornado-sio
server the suite's README describes in a child process, runs mocha, and prints
one line per test and a summary.

A few tests fail now and then against any server, Node's reference servers
included (:data:`KNOWN_RACES` says why); they are reported as ``RACE`` and do
not fail the run unless ``--strict``. ``--queue-messages`` replaces the
suites' ``waitFor`` by one that keeps early messages (socketio/socket.io-protocol#32),
which removes most of them; the exit status is 1 when any other test failed or
a suite did not run.

The servers are configured as the READMEs' reference Node servers:

* Engine.IO: an :class:`~tornado_sio.engine_app.EngineIOApp` at ``/engine.io/``
  echoing every message, pingInterval 300 ms, pingTimeout 200 ms,
  maxPayload 1,000,000 bytes, CORS for any origin.
* Socket.IO: a :class:`~tornado_sio.SocketIO` at ``/socket.io/`` with the
  same heartbeat, a 1 s connect timeout, and the namespaces ``/`` and
  ``/custom``; both emit ``auth`` (the handshake's auth, ``{}`` when none) on
  connection; ``/`` answers ``message`` with ``message-back`` and the same
  arguments, and acknowledges ``message-with-ack`` with its arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent

#: package.json ``name`` of each suite -> the server it needs.
SUITES = {
    "engine.io-protocol-test-suite": "engine.io",
    "socket.io-protocol-test-suite": "socket.io",
}
#: The files of a suite that the tool copies (its browser page is not needed).
SUITE_FILES = ("package.json", "package-lock.json", "test-suite.js", "node-imports.js")
#: The base URL hard-coded in both suites.
SUITE_URL = re.compile(r'const URL = "http://localhost:3000";')
#: Both suites' ``waitFor``: a ``once`` listener added anew after each ``await``.
SUITE_WAIT_FOR = re.compile(r"function waitFor\(socket, eventType\) \{\n.*?\n\}\n", re.S)
#: ``--queue-messages``'s ``waitFor``: events that came while nobody waited are kept for the next call.
#: The suites' own loses the second of two messages that arrive in one TCP read, since ``ws`` 8.5 emits
#: both before the awaiting test can listen again (socketio/socket.io-protocol#32, open).
QUEUED_WAIT_FOR = """function waitFor(socket, eventType) {
  // patched by tornado-sio's tools/protocol_suites.py --queue-messages (socketio/socket.io-protocol#32)
  const queues = socket.queuedEvents || (socket.queuedEvents = {});
  let queue = queues[eventType];
  if (!queue) {
    queue = queues[eventType] = { events: [], waiters: [] };
    socket.addEventListener(eventType, (event) => {
      const waiter = queue.waiters.shift();
      if (waiter) waiter(event); else queue.events.push(event);
    });
  }
  if (queue.events.length) return Promise.resolve(queue.events.shift());
  return new Promise((resolve) => queue.waiters.push(resolve));
}
"""

#: Tests that fail now and then against any server, Node's reference servers included, and why.
#: Their failures are reported as such and do not fail the run unless ``--strict``.
WAIT_FOR_RACE = ("the suite's waitFor loses a message that arrives in the same TCP read as the one "
                 "before it (socketio/socket.io-protocol#32; Node's socket.io 4.8 fails it too)")
POST_BEFORE_GET = ("the GET and the POST carrying CLOSE go on two connections at once; when the POST is "
                   "handled first the session is gone and the GET is 400, as Node answers too (Tornado's "
                   "HTTP server handles the new connection's POST first more often than Node's does)")
KNOWN_RACES: Dict[str, str] = {
    "Socket.IO protocol connect should allow connection to the main namespace": WAIT_FOR_RACE,
    "Socket.IO protocol connect should allow connection to the main namespace with a payload": WAIT_FOR_RACE,
    "Socket.IO protocol connect should allow connection to a custom namespace": WAIT_FOR_RACE,
    "Socket.IO protocol connect should allow connection to a custom namespace with a payload": WAIT_FOR_RACE,
    "Socket.IO protocol disconnect should disconnect from the main namespace": WAIT_FOR_RACE,
    "Socket.IO protocol disconnect should connect then disconnect from a custom namespace": WAIT_FOR_RACE,
    "Engine.IO protocol close HTTP long-polling forcefully closes the session": POST_BEFORE_GET,
    "Engine.IO protocol close HTTP long-polling should forcefully close the session": POST_BEFORE_GET,
}

PING_INTERVAL = 0.3
PING_TIMEOUT = 0.2
MAX_PAYLOAD = 1_000_000
CONNECT_TIMEOUT = 1.0


# -- the servers ------------------------------------------------------------

def engineio_app() -> Any:
    """The Engine.IO suite's server: an echoing :class:`EngineIOApp` at ``/engine.io/``."""
    import tornado.web

    from tornado_sio.engine_app import EngineIOApp

    eio = EngineIOApp(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT,
                      max_http_buffer_size=MAX_PAYLOAD, cors_allowed_origins="*")

    @eio.on("message")
    def echo(sid: str, data: Any) -> None:
        eio.send(sid, data)

    return tornado.web.Application(eio.routes("/engine.io/"))


def socketio_app() -> Any:
    """The Socket.IO suite's server: ``/`` and ``/custom`` as in the suite's README."""
    import tornado.web

    from tornado_sio import SocketIO, emit

    sio = SocketIO(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT, max_http_buffer_size=MAX_PAYLOAD,
                   connect_timeout=CONNECT_TIMEOUT, cors_allowed_origins="*", namespaces=["/", "/custom"])

    for namespace in ("/", "/custom"):
        @sio.on("connect", namespace=namespace)
        def tell_auth(auth: Any = None) -> None:
            emit("auth", {} if auth is None else auth)

    @sio.on("message")
    def message_back(*args: Any) -> None:
        emit("message-back", *args)

    @sio.on("message-with-ack")
    def ack_back(*args: Any) -> Tuple[Any, ...]:
        return args

    return tornado.web.Application(sio.routes())


def serve(kind: str, port: int) -> None:
    """Run the server for *kind* (``engine.io`` or ``socket.io``) on 127.0.0.1:*port* until SIGTERM."""
    import asyncio
    import logging

    import tornado.httpserver

    logging.basicConfig(level=logging.WARNING, format="server: %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.ERROR)  # the suites' bad requests are on purpose
    app = engineio_app() if kind == "engine.io" else socketio_app()

    async def main() -> None:
        server = tornado.httpserver.HTTPServer(app)
        server.listen(port, "127.0.0.1")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.stop()

    asyncio.run(main())


# -- preparing a suite ------------------------------------------------------

def locate(source: Path, scratch: Path) -> Path:
    """The folder holding the suite's ``package.json``: *source* itself, its ``test-suite/``,
    or, for a bare git directory, ``HEAD:test-suite`` exported under *scratch*."""
    for candidate in (source, source / "test-suite"):
        if (candidate / "package.json").is_file():
            return candidate
    if (source / "HEAD").is_file() and (source / "objects").is_dir():
        out = scratch / hashlib.sha1(str(source).encode()).hexdigest()[:12]
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(source), "archive", "HEAD", "test-suite"],
                                 check=True, capture_output=True, timeout=60).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True, timeout=60)
        return out / "test-suite"
    raise SystemExit(f"{source}: no package.json, no test-suite/ folder, not a git directory")


def install(suite: Path, name: str, cache: Path) -> Path:
    """The folder under *cache* holding the suite's npm dev dependencies, installed with
    ``npm ci`` the first time its ``package-lock.json`` is seen (under a lock: runs may overlap)."""
    import fcntl

    lock = (suite / "package-lock.json").read_bytes()
    deps = cache / f"{name}-{hashlib.sha256(lock).hexdigest()[:12]}"
    deps.mkdir(parents=True, exist_ok=True)
    with open(deps / ".install-lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (deps / "node_modules" / "mocha" / "bin" / "mocha").exists():
            npm = shutil.which("npm")
            if npm is None:
                raise SystemExit("npm is not installed")
            for file in ("package.json", "package-lock.json"):
                shutil.copyfile(suite / file, deps / file)
            print(f"installing {name}'s npm dependencies into {deps}", flush=True)
            subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=deps, check=True,
                           timeout=600)
    return deps


def prepare(suite: Path, cache: Path, scratch: Path, port: int, queue_messages: bool = False) -> Tuple[str, Path]:
    """Copy *suite* into a new folder under *scratch* whose ``node_modules`` is the installed
    one of :func:`install`, and point the copy's URL at 127.0.0.1:*port* (with
    *queue_messages*, also replace its ``waitFor``: see :data:`QUEUED_WAIT_FOR`).
    Returns (server kind, working folder)."""
    name = json.loads((suite / "package.json").read_text())["name"]
    if name not in SUITES:
        raise SystemExit(f"{suite}: unknown suite {name!r} (expected one of {sorted(SUITES)})")
    deps = install(suite, name, cache)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
    for file in SUITE_FILES:
        shutil.copyfile(suite / file, work / file)
    (work / "node_modules").symlink_to(deps / "node_modules", target_is_directory=True)
    source = (work / "test-suite.js").read_text()
    if not SUITE_URL.search(source):
        raise SystemExit(f"{suite}: the suite's URL line was not found; it may have changed")
    source = SUITE_URL.sub(f'const URL = "http://127.0.0.1:{port}";', source)
    if queue_messages:
        if not SUITE_WAIT_FOR.search(source):
            raise SystemExit(f"{suite}: the suite's waitFor was not found; it may have changed")
        source = SUITE_WAIT_FOR.sub(lambda _: QUEUED_WAIT_FOR, source, count=1)
    (work / "test-suite.js").write_text(source)
    return SUITES[name], work


# -- running ----------------------------------------------------------------

def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Wait (bounded) until 127.0.0.1:*port* accepts, or fail when *proc* ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not listen on port {port} within {timeout} s")


def run_mocha(work: Path, timeout: float) -> Dict[str, Any]:
    """Run the suite with mocha's JSON reporter; its parsed report."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not installed")
    mocha = work / "node_modules" / "mocha" / "bin" / "mocha"
    result = subprocess.run([node, str(mocha), "--reporter", "json", "test-suite.js"], cwd=work,
                            capture_output=True, text=True, timeout=timeout)
    start = result.stdout.find("{")
    if start < 0:
        raise SystemExit(f"mocha printed no report (status {result.returncode}):\n{result.stdout}{result.stderr}")
    report: Dict[str, Any] = json.loads(result.stdout[start:])
    return report


def run_suite(source: Path, cache: Path, scratch: Path, timeout: float, queue_messages: bool = False,
              strict: bool = False) -> bool:
    """Prepare, serve and run one suite; print its results. True when every test passed, or
    (unless *strict*) failed only as one of :data:`KNOWN_RACES`."""
    port = free_port()
    kind, work = prepare(locate(source, scratch), cache, scratch, port, queue_messages)
    server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", kind,
                               "--port", str(port)], cwd=str(ROOT))
    try:
        wait_for_port(port, server)
        report = run_mocha(work, timeout)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    failed = {test["fullTitle"]: test.get("err", {}) for test in report.get("failures", [])}
    patched = " (waitFor queued)" if queue_messages else ""
    print(f"== {kind} protocol suite{patched} ({source})")
    unexplained = 0
    for test in report.get("tests", []):
        title = test["fullTitle"]
        if title not in failed:
            print(f"  ok   {title}")
            continue
        message = (failed[title].get("message") or "").splitlines()[:1]
        race = KNOWN_RACES.get(title)
        if queue_messages and race == WAIT_FOR_RACE:
            race = None  # the queued waitFor leaves no room for this race
        if race is None or strict:
            unexplained += 1
            print(f"  FAIL {title}\n       {message}")
        else:
            print(f"  RACE {title}\n       {message}\n       known race: {race}")
    stats = report.get("stats", {})
    print(f"{kind}{patched}: {stats.get('passes', 0)} passing, {stats.get('failures', 0)} failing "
          f"({stats.get('failures', 0) - unexplained} of them known races), {stats.get('pending', 0)} pending, "
          f"of {stats.get('tests', 0)}", flush=True)
    return unexplained == 0 and stats.get("tests", 0) > 0


def main(argv: Optional[List[str]] = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suites", nargs="*", type=Path, help="test-suite folders, their parents or bare git dirs")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "protocol-suites",
                        help="where the suites' copies and npm dependencies are kept")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for one suite's mocha run")
    parser.add_argument("--queue-messages", action="store_true",
                        help="replace the suites' racy waitFor by one that keeps early events (see QUEUED_WAIT_FOR)")
    parser.add_argument("--strict", action="store_true", help="a known race's failure fails the run too")
    parser.add_argument("--serve", choices=sorted(set(SUITES.values())), help="only run that server")
    parser.add_argument("--port", type=int, default=3000, help="the port of --serve")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if not args.suites:
        parser.error("give at least one suite (or --serve)")
    ok = True
    with tempfile.TemporaryDirectory() as scratch:
        for source in args.suites:
            ok = run_suite(source.resolve(), args.cache.resolve(), Path(scratch), args.timeout,
                                 args.queue_messages, args.strict) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
