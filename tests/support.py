"""Helpers shared by the test suite: outside programs, free ports, child servers.

Tests that need an outside program (node, Chromium, redis-server) call
:func:`need`. On a user's machine a missing program skips the test with a clear
reason; under ``CI=true`` it fails the test, because ``.ci/run`` installs them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
#: Where .ci/run installs npm packages (socket.io-client, ws, sockjs-client, ...).
NODE_CACHE = Path(os.environ.get("TORNADO_SIO_NODE_CACHE", ROOT / ".cache" / "node"))


def missing(reason: str) -> None:
    """Skip (on a user's machine) or fail (under CI=true) for a missing prerequisite."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: .ci/run should have installed it)", pytrace=False)
    pytest.skip(reason)


def need(program: str, hint: str = "") -> str:
    """Return the path of *program* (a name on PATH or an absolute path), or skip/fail."""
    path = program if os.path.isabs(program) and os.access(program, os.X_OK) else shutil.which(program)
    if not path:
        missing(f"{program} is not installed{': ' + hint if hint else ''}")
    return path  # type: ignore[return-value]


def need_node_module(name: str) -> Path:
    """Return the node_modules folder holding *name* in the npm cache, or skip/fail."""
    need("node", "apt-get install nodejs")
    modules = NODE_CACHE / "node_modules"
    if not (modules / name / "package.json").exists():
        missing(f"npm package {name} is not in {NODE_CACHE} (run: npm install --prefix {NODE_CACHE} {name})")
    return modules


def need_python_module(name: str) -> None:
    """Import-check an optional Python dependency, or skip/fail."""
    try:
        __import__(name)
    except ImportError:
        missing(f"Python package {name} is not installed (pip install -e '.[test]')")


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
