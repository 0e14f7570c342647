"""Helpers shared by the test suite: outside programs, free ports, child servers.

Tests that need an outside program (node, Chromium, redis-server) call
:func:`need`, and tests that need an npm package call :func:`need_node_module`.
On a user's machine a missing prerequisite skips the test with a reason that
names what is missing and the command that adds it; under ``CI=true`` it fails
the test, because ``.ci/run`` installs them all.

The npm packages (``tests/node/packages.txt``, the list ``.ci/run`` installs too)
are installed into the node cache on first use when ``npm`` is present: once per
run, under a file lock, so pytest-xdist workers wait for one install instead of
racing in the same ``node_modules``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
#: Where the npm packages are installed (by .ci/run, or on first use by :func:`need_node_module`).
NODE_CACHE = Path(os.environ.get("TORNADO_SIO_NODE_CACHE", ROOT / ".cache" / "node"))
#: The npm packages the suite drives, one ``name@version-prefix`` a line; .ci/run reads it too.
NODE_PACKAGES_FILE = ROOT / "tests" / "node" / "packages.txt"
#: Held (``flock``) while npm installs into NODE_CACHE; it also records a failed install.
NODE_LOCK = NODE_CACHE.with_name(NODE_CACHE.name + ".lock")
NODE_HINT = "apt-get install nodejs npm"
NPM_INSTALL_TIMEOUT = 100.0  # seconds; below the suite's 120 s per-test timeout


def missing(reason: str) -> None:
    """Skip (on a user's machine) or fail (under CI=true) for a missing prerequisite."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: .ci/run should have installed it)", pytrace=False)
    pytest.skip(reason)


def need(program: str, hint: str = "") -> str:
    """Return the path of *program* (a name on PATH or an absolute path), or skip/fail.

    *hint* is the command that installs it: the reason reads
    ``"redis-server not found: apt-get install redis-server"``.
    """
    path = program if os.path.isabs(program) and os.access(program, os.X_OK) else shutil.which(program)
    if not path:
        missing(f"{program} not found: {hint}" if hint else f"{program} not found on PATH")
    return path  # type: ignore[return-value]


def node_packages() -> List[str]:
    """The specs of ``tests/node/packages.txt`` (``#`` starts a comment)."""
    lines = NODE_PACKAGES_FILE.read_text(encoding="utf-8").splitlines()
    return [spec for spec in (line.split("#", 1)[0].strip() for line in lines) if spec]


def split_spec(spec: str) -> Tuple[str, str]:
    """``"@socket.io/redis-emitter@5"`` -> ``("@socket.io/redis-emitter", "5")``; no version -> ``""``."""
    name, _, version = spec.rpartition("@")
    return (name, version) if name else (spec, "")


def node_package_version(name: str) -> Optional[str]:
    """The version of *name* installed in the node cache, or None."""
    try:
        manifest = NODE_CACHE / "node_modules" / name / "package.json"
        return json.loads(manifest.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def missing_node_packages() -> List[str]:
    """The specs of packages.txt not installed, or installed outside their version prefix."""
    absent = []
    for spec in node_packages():
        name, want = split_spec(spec)
        have = node_package_version(name)
        if have is None or (want and have != want and not have.startswith(want + ".")):
            absent.append(spec)
    return absent


def _run_id() -> str:
    """The same string in every pytest-xdist worker of one run; this process otherwise."""
    return os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid-{os.getpid()}"


_npm_outcome: Optional[str] = None  # None: not tried in this process; "": installed; else why it failed


def install_node_packages() -> str:
    """Install packages.txt into the node cache if any is missing; ``""`` when done, else why not.

    Runs ``npm install`` at most once per run: the workers of one pytest-xdist
    run take turns on an ``flock`` of :data:`NODE_LOCK`, the first installs, the
    next find the packages there, or find the first one's failure recorded in
    the lock file and do not try again.
    """
    global _npm_outcome
    if _npm_outcome is not None:
        return _npm_outcome
    npm = shutil.which("npm")
    if npm is None:
        _npm_outcome = f"npm not found: {NODE_HINT}"
        return _npm_outcome
    NODE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(NODE_LOCK, "a+", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or if this process dies
        lock.seek(0)
        try:
            earlier = json.loads(lock.read() or "{}")
        except ValueError:
            earlier = {}
        if not missing_node_packages():
            _npm_outcome = ""
        elif earlier.get("run") == _run_id() and earlier.get("error"):
            _npm_outcome = earlier["error"]
        else:
            _npm_outcome = _npm_install(npm, node_packages())
            lock.seek(0)
            lock.truncate()
            lock.write(json.dumps({"run": _run_id(), "error": _npm_outcome}))
    return _npm_outcome


def _npm_install(npm: str, specs: List[str]) -> str:
    """``npm install --prefix NODE_CACHE specs...`` (as .ci/run does); ``""`` or why it failed."""
    command = [npm, "install", "--prefix", str(NODE_CACHE), "--no-audit", "--no-fund", "--loglevel=error", *specs]
    retry = f"run: npm install --prefix {NODE_CACHE} {' '.join(specs)}"
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    print(f"\ninstalling npm packages into {NODE_CACHE}: {' '.join(specs)}", file=sys.stderr)
    try:
        proc = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=NPM_INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"npm install took over {NPM_INSTALL_TIMEOUT:.0f} s; {retry}"
    if proc.returncode != 0:
        head = " | ".join(proc.stdout.decode("utf-8", "replace").strip().splitlines()[:4])
        return f"npm install failed (exit {proc.returncode}: {head}); {retry}"
    still = missing_node_packages()
    return f"npm install left {' '.join(still)} missing; {retry}" if still else ""


def need_node_module(name: str) -> Path:
    """Return the node_modules folder holding *name* in the node cache, or skip/fail.

    Installs the packages of ``tests/node/packages.txt`` first if any is
    missing (see :func:`install_node_packages`).
    """
    need("node", NODE_HINT)
    modules = NODE_CACHE / "node_modules"
    if node_package_version(name) is None or missing_node_packages():
        reason = install_node_packages() or f"add it to {NODE_PACKAGES_FILE}"
        if node_package_version(name) is None:
            missing(f"npm package {name} not found in {NODE_CACHE}: {reason}")
    return modules


def need_python_module(name: str) -> None:
    """Import-check an optional Python dependency, or skip/fail."""
    try:
        __import__(name)
    except ImportError:
        missing(f"Python module {name} not found: pip install -e '.[test,redis,fast]'")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, proc: Optional[subprocess.Popen] = None) -> None:
    """Block until something accepts on 127.0.0.1:*port* (bounded by *timeout*)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM *proc* by its PID, then SIGKILL if it lingers; return its exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


@contextlib.contextmanager
def run_app(args: Sequence[str] = (), port: Optional[int] = None, env: Optional[dict] = None) -> Iterator[int]:
    """Run ``python run.py --port N`` (the example app) as a child; yield the port; stop it by PID."""
    port = port or free_port()
    cmd = [sys.executable, str(ROOT / "run.py"), "--host", "127.0.0.1", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env={**os.environ, **(env or {})})
    try:
        wait_for_port(port, proc=proc)
        yield port
    finally:
        stop_process(proc)
