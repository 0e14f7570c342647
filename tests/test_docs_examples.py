"""The docs run: every ```python block of README.md and docs/*.md, against a real server and client.

Each block is one test case, named after its file and the line of its opening
fence (``README.md:47``). The block runs as a real server in a child process
(``tests/docs_runner.py``: ``socketio.run(app, host=..., port=...)`` listens on
a free port of 127.0.0.1 instead), and python-socketio's ``AsyncClient`` checks
what the text around the block says it does.

**Fragments.** A block that is not a program (a configuration excerpt, a
snippet that needs a context it does not show) is marked on the line right
before its fence with an HTML comment, invisible on GitHub, PyPI and in the
Sphinx build::

    <!-- fragment -->
    ```python
    socketio = SocketIO(message_queue="redis://127.0.0.1:6379/0")
    ```

Fragments are still checked without running: they parse, their ``tornado_sio``
imports import, and the keywords they pass to ``SocketIO(...)`` are settings.

**Checks.** Every runnable block needs a check below, registered with
:func:`check` under a line of code that only that block has. A runnable block
without a check fails (say what the block should do, or mark it a fragment),
and so does a check whose line no longer matches any block.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import importlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Callable

import pytest

from tests import support
from tests.apps import close_client

try:
    import aiohttp
    import socketio
except ImportError:
    if support.IN_CI:
        raise
    pytest.skip("python-socketio[asyncio-client] not found: pip install -e '.[test,redis,fast]'",
                allow_module_level=True)

from tests.docs_runner import READY

ROOT = support.ROOT
RUNNER = ROOT / "tests" / "docs_runner.py"
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FRAGMENT = "<!-- fragment -->"
PYTHON_INFO = {"python", "py", "python3"}
WAIT = 10.0  # bound on any single wait; never a timing assertion
BLOCK_TIMEOUT = 30.0  # bound on one block's whole check


# ---------------------------------------------------------------------------
# Finding the blocks
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # of the opening fence, 1-based
    info: str
    code: str
    fragment: bool

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def source(self) -> str:
        """The code, preceded by blank lines so its line numbers are the Markdown file's."""
        return "\n" * self.line + self.code


_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of *path* (CommonMark fences: ``` or ~~~, closed by a longer-or-equal run)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening.group("fence")
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            body.append(lines[j])
            j += 1
        fragment = i > 0 and lines[i - 1].strip() == FRAGMENT
        blocks.append(Block(path, i + 1, opening.group("info").lower(), "\n".join(body) + "\n", fragment))
        i = j + 1
    return blocks


def python_blocks() -> list[Block]:
    return [block for path in DOC_FILES for block in read_blocks(path) if block.info in PYTHON_INFO]


BLOCKS = python_blocks()
RUNNABLE = [block for block in BLOCKS if not block.fragment]


# ---------------------------------------------------------------------------
# Running a block as a server
# ---------------------------------------------------------------------------

class ExampleServer:
    """A block run by ``tests/docs_runner.py`` in a child process, on a free port."""

    def __init__(self, block: Block, workdir: Path) -> None:
        self.block = block
        self.port = support.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.file = workdir / "block.py"
        self.file.write_text(block.source(), encoding="utf-8")
        self.stdout = workdir / "stdout.txt"
        self.stderr = workdir / "stderr.txt"
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None

    def start(self) -> ExampleServer:
        """Start the block; return once it listens (or has run to its end, for a block without a server)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, str(RUNNER), str(self.file), str(self.port)],
                                         cwd=str(self.file.parent), env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err)
        deadline = time.monotonic() + WAIT
        while READY not in self.stdout.read_text(encoding="utf-8", errors="replace"):
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                if self.returncode != 0:
                    raise AssertionError(f"{self.block.name} exited with {self.returncode}:\n{self.output()}")
                return self
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.block.name} did not listen within {WAIT}s:\n{self.output()}")
            time.sleep(0.02)
        return self

    def stop(self) -> int:
        """SIGTERM (``socketio.run`` shuts down gracefully), bounded; the exit code."""
        if self.proc is not None and self.returncode is None:
            self.returncode = support.stop_process(self.proc)
        return self.returncode if self.returncode is not None else 0

    def output(self) -> str:
        """What the block printed and logged so far (stdout, then stderr), without the runner's marker."""
        text = self.stdout.read_text(encoding="utf-8", errors="replace").replace(READY + "\n", "")
        return text + self.stderr.read_text(encoding="utf-8", errors="replace")


class Client:
    """python-socketio's ``AsyncClient``, queueing what it receives per (namespace, event)."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.inbox: list[tuple[str, str, list[Any]]] = []
        #: (namespace, event) -> a function of the event's args whose result is the ack
        self.answers: dict[tuple[str, str], Callable[..., Any]] = {}

        @self.sio.on("*", namespace="*")
        def any_event(event: str, namespace: str, *args: Any) -> Any:
            self.inbox.append((namespace, event, list(args)))
            answer = self.answers.get((namespace, event))
            return answer(*args) if answer is not None else None

        @self.sio.on("connect_error", namespace="*")
        def on_connect_error(namespace: str, *data: Any) -> None:
            self.inbox.append((namespace, "connect_error", list(data)))

    async def connect(self, server: ExampleServer, namespaces: Any = "/", auth: Any = None) -> None:
        await self.sio.connect(server.url, namespaces=namespaces, auth=auth, wait_timeout=WAIT)

    async def expect(self, event: str, namespace: str = "/") -> list[Any]:
        """The args of the first *event* received in *namespace* (bounded wait)."""
        deadline = time.monotonic() + WAIT
        while True:
            for i, (ns, name, args) in enumerate(self.inbox):
                if (ns, name) == (namespace, event):
                    del self.inbox[i]
                    return args
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event!r} in {namespace} within {WAIT}s; got {self.inbox}")
            await asyncio.sleep(0.01)

    def received(self, event: str, namespace: str = "/") -> bool:
        return any((ns, name) == (namespace, event) for ns, name, _ in self.inbox)

    async def close(self) -> None:
        await close_client(self.sio)


# ---------------------------------------------------------------------------
# What each block is said to do
# ---------------------------------------------------------------------------

CheckFn = Callable[[ExampleServer], Awaitable[None]]


@dataclasses.dataclass
class Check:
    doc: str  # file name relative to ROOT
    signature: str  # a line of code that only this block has
    run: CheckFn

    def matches(self, block: Block) -> bool:
        return str(block.path.relative_to(ROOT)) == self.doc and self.signature in block.code


CHECKS: list[Check] = []


def check(doc: str, signature: str) -> Callable[[CheckFn], CheckFn]:
    """Register what the block of *doc* that contains *signature* must do."""

    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append(Check(doc, signature, fn))
        return fn

    return register


@check("README.md", 'emit("my response", {"data": message["data"]})')
async def ten_line_app_echoes_and_says_where_it_listens(server: ExampleServer) -> None:
    client = Client()
    try:
        await client.connect(server)
        await client.sio.emit("my event", {"data": "hello"})
        assert await client.expect("my response") == [{"data": "hello"}]
    finally:
        await client.close()
    # the README: it logs "INFO:tornado_sio.server:listening on http://127.0.0.1:5000 (event loop: uvloop)"
    assert f"INFO:tornado_sio.server:listening on http://127.0.0.1:{server.port} (event loop: " in server.output()
    assert server.stop() == 0, server.output()


@check("README.md", 'answer = await socketio.call("question", question, to=request.sid, timeout=10)')
async def api_overview_auth_rooms_acks_and_call(server: ExampleServer) -> None:
    refused, alice, bob = Client(), Client(), Client()
    alice.answers["/chat", "question"] = lambda question: "42"  # the ack socketio.call() waits for

    try:
        # connect: a bad token is refused with the message and data of ConnectionRefusedError
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(server, namespaces=["/chat"], auth={"token": "wrong"})
        assert await refused.expect("connect_error", "/chat") == [
            {"message": "unauthorized", "data": {"retry": False}}]

        # a good token: "welcome" with the client's sid in /chat
        await alice.connect(server, namespaces=["/chat"], auth={"token": "secret"})
        await bob.connect(server, namespaces=["/chat"], auth={"token": "secret"})
        assert await alice.expect("welcome", "/chat") == [{"sid": alice.sio.get_sid("/chat")}]

        # join: acked with "ok"; the others in the room hear "joined", the sender does not
        assert await alice.sio.call("join", "room1", namespace="/chat", timeout=WAIT) == "ok"
        assert await bob.sio.call("join", "room1", namespace="/chat", timeout=WAIT) == "ok"
        assert await alice.expect("joined", "/chat") == ["room1"]
        assert not bob.received("joined", "/chat")

        # ask: the server calls "question" on the asking client in /chat (the handler's
        # namespace), waits for its ack, then broadcasts the answer to everybody
        await alice.sio.emit("ask", "the answer?", namespace="/chat")
        assert await alice.expect("answer", "/chat") == ["42"]
        assert await bob.expect("answer", "/chat") == ["42"]
        assert await alice.expect("question", "/chat") == ["the answer?"]
        assert not bob.received("question", "/chat")

        alice_sid = alice.sio.get_sid("/chat")
    finally:
        for client in (refused, alice, bob):
            await client.close()
    # disconnect: the handler prints who left and why
    deadline = time.monotonic() + WAIT
    while f"{alice_sid} left: " not in server.output() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert f"{alice_sid} left: " in server.output()
    assert server.stop() == 0, server.output()


@check("README.md", "socketio.on_namespace(Chat(\"/chat\"))")
async def namespace_class_handles_my_event(server: ExampleServer) -> None:
    client = Client()
    try:
        await client.connect(server, namespaces=["/chat"])
        await client.sio.emit("my event", {"x": 1}, namespace="/chat")
        assert await client.expect("my response", "/chat") == [{"x": 1}]
    finally:
        await client.close()
    assert server.stop() == 0, server.output()


@check("docs/sockjs.md", 'sockjs_client_url="/static/sockjs.min.js",')
async def sockjs_settings_and_client_url_reach_the_sockjs_router(server: ExampleServer) -> None:
    base = f"{server.url}/sockjs"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/info") as reply:
            assert reply.status == 200
            assert (await reply.json(content_type=None))["websocket"] is False
        async with http.get(f"{base}/000/docs0/websocket") as reply:
            assert reply.status == 404  # the websocket transport is not mounted
        async with http.get(f"{base}/iframe.html") as reply:
            assert 'src="/static/sockjs.min.js"' in await reply.text()  # the iframe page loads sockjs_client_url
        # a SockJS session over xhr-polling is a Socket.IO client: CONNECT / is answered
        async with http.post(f"{base}/000/docs1/xhr") as reply:
            assert await reply.text() == "o\n"
        async with http.post(f"{base}/000/docs1/xhr_send", data='["0"]') as reply:
            assert reply.status == 204
        async with http.post(f"{base}/000/docs1/xhr") as reply:
            assert (await reply.text()).startswith('a["0{\\"sid\\":')
    client = Client()  # and the Socket.IO endpoint is there as usual
    try:
        await client.connect(server)
        assert client.sio.get_sid("/")
    finally:
        await client.close()
    assert server.stop() == 0, server.output()


@check("docs/sockjs.md", 'socketio = SocketIO(sockjs_client_url="/vendor/sockjs.min.js")')
async def sockjs_client_served_by_the_app(server: ExampleServer) -> None:
    # what `npm install sockjs-client@1.6` leaves in the working directory
    dist = server.file.parent / "node_modules" / "sockjs-client" / "dist"
    dist.mkdir(parents=True)
    (dist / "sockjs.min.js").write_text("/* sockjs-client */\n", encoding="utf-8")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/vendor/sockjs.min.js") as reply:
            assert reply.status == 200
            assert await reply.text() == "/* sockjs-client */\n"
        async with http.get(f"{server.url}/sockjs/iframe.html") as reply:
            assert 'src="/vendor/sockjs.min.js"' in await reply.text()  # the iframe page loads it too
    client = Client()
    try:
        await client.connect(server)
        assert client.sio.get_sid("/")
    finally:
        await client.close()
    assert server.stop() == 0, server.output()


@check("docs/migrating-from-flask-socketio.md", 'self.write("<h1>chat</h1>")')
async def ported_flask_socketio_chat_keeps_its_behaviour(server: ExampleServer) -> None:
    ada, bob = Client(), Client()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/") as page:
                assert await page.text() == "<h1>chat</h1>"
        # connect: the nickname from the auth goes to the session; a welcome names it
        await ada.connect(server, auth={"name": "ada"})
        await bob.connect(server, auth={"name": "bob"})
        assert await ada.expect("welcome") == [{"name": "ada", "sid": ada.sio.get_sid("/")}]
        # join: acked with rooms() (own sid first); the others in the room hear who joined
        assert await ada.sio.call("join", "lobby", timeout=WAIT) == [ada.sio.get_sid("/"), "lobby"]
        assert await bob.sio.call("join", "lobby", timeout=WAIT) == [bob.sio.get_sid("/"), "lobby"]
        assert await ada.expect("joined") == [{"name": "bob", "room": "lobby"}]
        # say: delivered to the room, not back to the sender
        assert await bob.sio.call("say", ("lobby", "hello"), timeout=WAIT) == "delivered"
        assert await ada.expect("said") == [{"name": "bob", "text": "hello"}]
        assert not bob.received("said")
        # the clock thread ticks every second with socketio.sleep(1), for everybody
        first = (await ada.expect("clock"))[0]
        assert (await ada.expect("clock"))[0] == first + 1
        # leave: acked with the rooms left; an unknown event's arguments hit the error handler
        assert await ada.sio.call("leave", "lobby", timeout=WAIT) == [ada.sio.get_sid("/")]
        assert await ada.sio.call("say", "too few arguments", timeout=WAIT) == {
            "error": "on_say() missing 1 required positional argument: 'text'", "event": "say"}
        # bye: the server disconnects the client
        await bob.sio.emit("bye")
        deadline = time.monotonic() + WAIT
        while bob.sio.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert not bob.sio.connected
    finally:
        await ada.close()
        await bob.close()
    assert server.stop() == 0, server.output()


# ---------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------

def checks_for(block: Block) -> list[Check]:
    return [c for c in CHECKS if c.matches(block)]


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.name for block in RUNNABLE])
def test_runnable_block_does_what_the_doc_says(block: Block, tmp_path: Path) -> None:
    found = checks_for(block)
    assert found, (f"{block.name} is runnable but no check says what it should do: add one to "
                   f"{Path(__file__).name}, or mark it a fragment with {FRAGMENT} on the line before its fence")
    assert len(found) == 1, f"{block.name} matches several checks: {[c.run.__name__ for c in found]}"
    server = ExampleServer(block, tmp_path)
    try:
        server.start()
        try:
            asyncio.run(asyncio.wait_for(found[0].run(server), BLOCK_TIMEOUT))
        except (AssertionError, asyncio.TimeoutError) as exc:
            server.stop()
            raise AssertionError(f"{exc!r}\n--- what {block.name} printed and logged ---\n{server.output()}") from exc
    finally:
        server.stop()


FRAGMENTS = [block for block in BLOCKS if block.fragment]


@pytest.mark.parametrize("block", FRAGMENTS, ids=[block.name for block in FRAGMENTS])
def test_fragment_names_what_exists(block: Block) -> None:
    """A fragment does not run, but it parses, its tornado_sio imports import, and the
    keywords it passes to ``SocketIO(...)`` are settings (fields of ``Options``)."""
    from tornado_sio import Options

    tree = ast.parse(block.source(), str(block.path))  # `await` at top level parses too
    settings = {field.name for field in dataclasses.fields(Options)} | {"options"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tornado_sio":
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{block.name}: {node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tornado_sio":
                    importlib.import_module(alias.name)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "SocketIO":
            unknown = {kw.arg for kw in node.keywords if kw.arg is not None} - settings
            assert not unknown, f"{block.name}, line {node.lineno}: SocketIO() has no setting {sorted(unknown)}"


def test_every_check_matches_one_runnable_block() -> None:
    stale = [f"{c.doc}: {c.signature!r} ({c.run.__name__})" for c in CHECKS
             if sum(c.matches(block) for block in RUNNABLE) != 1]
    assert not stale, f"checks matching no runnable block, or several: {stale}"


def test_fragment_markers_stand_right_before_a_python_block() -> None:
    fences = {(block.path, block.line) for block in BLOCKS if block.fragment}
    stray = []
    for path in DOC_FILES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip() == FRAGMENT and (path, number + 1) not in fences:
                stray.append(f"{path.relative_to(ROOT)}:{number}")
    assert not stray, f"{FRAGMENT} must be on the line right before a ```python fence: {stray}"


def test_the_docs_have_python_blocks() -> None:
    # the parser found the README's examples (a parser that finds nothing would pass everything)
    assert any(block.path.name == "README.md" for block in RUNNABLE)

