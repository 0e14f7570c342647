"""The Autobahn|Testsuite against tornado-sio's owned WebSocket connection (opt-in).

Autobahn's ``wstest`` is a Python 2.7 program, so it is not installed with the
test dependencies: set ``AUTOBAHN_WSTEST`` to its path to run these tests
(``tools/autobahn.py`` says how to install it). The testee is the owned
connection production uses after the 101 (``owned.adopt``, the take-over of the
Engine.IO WebSocket, with permessage-deflate offered). Every case must be OK or
INFORMATIONAL, for the protocol and for the closing handshake; Tornado's own
``WebSocketHandler`` has 9 FAILED and 4 NON-STRICT in sections 1-7. Section 9
(performance) is left to ``python tools/autobahn.py`` run by hand: it takes
minutes and judges no behaviour the sections here do not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

WSTEST = os.environ.get("AUTOBAHN_WSTEST", "")
TOOL = Path(__file__).resolve().parent.parent / "tools" / "autobahn.py"

pytestmark = pytest.mark.skipif(not WSTEST, reason="set AUTOBAHN_WSTEST to Autobahn's wstest (see tools/autobahn.py)")


def run_autobahn(outdir: Path, cases: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``tools/autobahn.py`` on the owned testee for *cases*; its summary is on stdout."""
    return subprocess.run([sys.executable, str(TOOL), "--wstest", WSTEST, "--outdir", str(outdir), "--cases", cases],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(600)
def test_autobahn_framing_and_closing_sections_are_all_ok(tmp_path):
    result = run_autobahn(tmp_path, "1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*", 580)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every case OK or INFORMATIONAL" in result.stdout


@pytest.mark.timeout(900)
def test_autobahn_permessage_deflate_sections_are_all_ok(tmp_path):
    result = run_autobahn(tmp_path, "12.*,13.*", 880)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every case OK or INFORMATIONAL" in result.stdout
