"""The Autobahn|Testsuite against tornado-sio's owned WebSocket connection (opt-in).

Autobahn's ``wstest`` is a Python 2.7 program, so it is not installed with the
test dependencies: set ``AUTOBAHN_WSTEST`` to its path to run these tests
(``tools/autobahn.py`` says how to install it). The testee is the owned
connection production uses after the 101 (``owned.adopt``, the take-over of the
Engine.IO WebSocket, with permessage-deflate offered). In sections 1-7 and 10
every case must be OK or INFORMATIONAL, for the protocol and for the closing
handshake; Tornado's own ``WebSocketHandler`` has 9 FAILED and 4 NON-STRICT
there. Sections 12 and 13 (permessage-deflate) run their cases of up to 4 KiB
messages: all OK but the offers of a smaller server window, which the owned
connection declines (UNIMPLEMENTED). The larger deflate cases and section 9
(performance) are left to ``python tools/autobahn.py`` run by hand: they take
many minutes and judge no behaviour the cases here do not.
"""

from __future__ import annotations

import json
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


@pytest.mark.timeout(600)
def test_autobahn_permessage_deflate_cases_are_ok_or_a_declined_small_window(tmp_path):
    result = run_autobahn(tmp_path, "12.*.[1-5]$,13.*.[1-5]$", 580)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(tmp_path / "index.json") as f:
        verdicts = {case: r["behavior"] for case, r in json.load(f)["tornado-sio"].items()}
    declined = {case for case, verdict in verdicts.items() if verdict == "UNIMPLEMENTED"}
    # 13.3 and 13.5 offer server_max_window_bits=9: declined, each message is compressed once with the full window
    assert declined == {f"13.{group}.{n}" for group in (3, 5) for n in range(1, 6)}
    assert {verdicts[case] for case in verdicts.keys() - declined} == {"OK"}
