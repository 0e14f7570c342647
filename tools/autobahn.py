#!/usr/bin/env python3
"""Run the Autobahn|Testsuite (sections 1-7 and 9) against tornado-sio's WebSocket reader.

Usage::

    python tools/autobahn.py --wstest /path/to/wstest            # tornado-sio's reader
    python tools/autobahn.py --wstest /path/to/wstest --stock    # Tornado's own reader, to compare
    python tools/autobahn.py --wstest ... --cases '1.*,5.*'      # some sections only
    python tools/autobahn.py --serve 9001                        # only the echo server (run wstest yourself)

The testee is a plain echo ``WebSocketHandler`` whose protocol object gets the
reader of ``tornado_sio/http/_fastpath.py`` (``use_batched_reader``), exactly
as the Engine.IO and SockJS handlers do; Autobahn needs an echo server, which
the Engine.IO endpoint is not. permessage-deflate is off (sections 12 and 13
are not run), and ``max_message_size`` is 64 MiB, above section 9's largest
message.

``wstest`` is the Python 2.7 ``autobahntestsuite`` package. Where Docker is not
available, a Python 2.7 interpreter (e.g. pyenv's 2.7.18) can install it::

    python2.7 -m virtualenv /tmp/ab27
    /tmp/ab27/bin/pip install autobahntestsuite        # its sdist declares no dependencies, so also:
    /tmp/ab27/bin/pip install 'autobahn[accelerate,twisted]==0.10.9' Twisted==19.10.0 \\
        txaio==2.1.0 zope.interface==4.6.0 pyOpenSSL==19.1.0 cryptography==3.3.2 \\
        service_identity==18.1.0 klein==17.10.0 Werkzeug==1.0.1 jinja2==2.11.3 \\
        markupsafe==1.1.1 unittest2==1.1.0 six==1.16.0 incremental==16.10.1

The summary printed at the end counts the cases by Autobahn's verdict
(``OK``, ``NON-STRICT``, ``INFORMATIONAL``, ``UNIMPLEMENTED``, ``FAILED``) for
the protocol behaviour and for the closing behaviour, and lists every case
that is neither OK nor INFORMATIONAL. The exit status is 1 when there is
any such case. The HTML and JSON reports are in ``--outdir``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

AGENT = "tornado-sio"
DEFAULT_CASES = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*"


def serve(port: int, stock: bool) -> None:
    """Run the echo testee on 127.0.0.1:*port* until killed."""
    import tornado.web
    from tornado.websocket import WebSocketHandler, WebSocketProtocol

    from tornado_sio.http._fastpath import use_batched_reader

    class Echo(WebSocketHandler):
        def get_websocket_protocol(self) -> WebSocketProtocol | None:
            protocol = super().get_websocket_protocol()
            if not stock:
                use_batched_reader(protocol)
            return protocol

        def get_compression_options(self) -> dict[str, Any] | None:
            return None

        @property
        def max_message_size(self) -> int:  # type: ignore[override]
            return 64 * 1024 * 1024

        def check_origin(self, origin: str) -> bool:
            return True

        def on_message(self, message: str | bytes) -> None:
            self.write_message(message, binary=isinstance(message, bytes))

    async def main() -> None:
        app = tornado.web.Application([(r"/.*", Echo)])
        app.listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def summarize(outdir: str) -> int:
    """Print the verdict counts and the cases to look at; 1 if any case is neither OK nor INFORMATIONAL."""
    with open(os.path.join(outdir, "index.json")) as f:
        results = json.load(f)[AGENT]
    behaviour: collections.Counter[str] = collections.Counter()
    closing: collections.Counter[str] = collections.Counter()
    odd = []
    for case, result in sorted(results.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]):
        behaviour[result["behavior"]] += 1
        closing[result["behaviorClose"]] += 1
        if result["behavior"] not in ("OK", "INFORMATIONAL") or result["behaviorClose"] not in ("OK", "INFORMATIONAL"):
            odd.append(f"  {case}: {result['behavior']} (close: {result['behaviorClose']})")
    print(f"{len(results)} cases")
    print("behaviour:", dict(behaviour))
    print("closing:  ", dict(closing))
    print("\n".join(odd) if odd else "every case OK or INFORMATIONAL")
    return 1 if odd else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wstest", help="path of Autobahn's wstest")
    ap.add_argument("--cases", default=DEFAULT_CASES, help=f"comma list of case patterns (default {DEFAULT_CASES})")
    ap.add_argument("--stock", action="store_true", help="use Tornado's own reader instead of tornado-sio's")
    ap.add_argument("--outdir", default=None, help="where Autobahn writes its reports (default: a temporary folder)")
    ap.add_argument("--serve", type=int, metavar="PORT", help="only run the echo testee on PORT")
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve, args.stock)
        return 0
    if not args.wstest:
        ap.error("--wstest is required (or --serve PORT)")
    port = free_port()
    outdir = args.outdir or tempfile.mkdtemp(prefix="autobahn-")
    spec = {
        "outdir": outdir,
        "servers": [{"agent": AGENT, "url": f"ws://127.0.0.1:{port}/"}],
        "cases": args.cases.split(","),
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    os.makedirs(outdir, exist_ok=True)
    spec_path = os.path.join(outdir, "fuzzingclient.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    command = [sys.executable, os.path.abspath(__file__), "--serve", str(port)] + (["--stock"] if args.stock else [])
    server = subprocess.Popen(command)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run([args.wstest, "-m", "fuzzingclient", "-s", spec_path], cwd=outdir, check=True,
                       stdout=subprocess.DEVNULL)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    print(f"reports: {outdir}")
    return summarize(outdir)


if __name__ == "__main__":
    sys.exit(main())
