"""Socket.IO's public protocol test suites against tornado-sio (opt-in).

The suites are the ``test-suite/`` folders of github:socketio/engine.io-protocol
(Engine.IO v4) and github:socketio/socket.io-protocol (Socket.IO v5). CI cannot
fetch GitHub, so this test runs only when ``TORNADO_SIO_PROTOCOL_SUITES`` names
them: paths separated by ``os.pathsep``, each a ``test-suite/`` folder, its
parent, or the bare git directory of the repository. ``tools/protocol_suites.py``
installs each suite's npm dependencies (the npm registry must be reachable the
first time), starts the server its README describes and runs mocha.

Two runs per suite: the suite as published, where every test must pass except
the known races (``KNOWN_RACES`` in the tool: Node's reference servers fail
them now and then too); and with the suite's ``waitFor`` queueing early
messages (socketio/socket.io-protocol#32), where only the race between two
HTTP connections is left excused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import NODE_HINT, need

SUITES = [path for path in os.environ.get("TORNADO_SIO_PROTOCOL_SUITES", "").split(os.pathsep) if path]
TOOL = Path(__file__).resolve().parent.parent / "tools" / "protocol_suites.py"

pytestmark = pytest.mark.skipif(
    not SUITES, reason="set TORNADO_SIO_PROTOCOL_SUITES to the exported test-suite folders (see tools/protocol_suites.py)")


def run_tool(suite: str, *flags: str) -> subprocess.CompletedProcess:
    """The tool's run of *suite*, bounded."""
    need("node", NODE_HINT)
    need("npm", NODE_HINT)
    return subprocess.run([sys.executable, str(TOOL), *flags, suite], capture_output=True, text=True, timeout=580)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("suite", SUITES or ["unset"])
def test_every_test_of_the_published_suite_passes_but_its_known_races(suite):
    result = run_tool(suite)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passing, " in result.stdout
    assert "  FAIL " not in result.stdout


@pytest.mark.timeout(600)
@pytest.mark.parametrize("suite", SUITES or ["unset"])
def test_with_a_queueing_wait_for_no_message_is_lost(suite):
    result = run_tool(suite, "--queue-messages")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(waitFor queued): " in result.stdout
    assert "  FAIL " not in result.stdout  # the tool excuses no waitFor race here
