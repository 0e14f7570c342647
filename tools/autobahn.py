#!/usr/bin/env python3
"""Run the Autobahn|Testsuite against tornado-sio's owned WebSocket connection.

Usage::

    python tools/autobahn.py --wstest /path/to/wstest             # the owned connection
    python tools/autobahn.py --wstest /path/to/wstest --stock     # Tornado's own WebSocketHandler, to compare
    python tools/autobahn.py --wstest /path/to/wstest --fallback  # Tornado's handler on _fastpath's reader
    python tools/autobahn.py --wstest ... --cases '1.*,5.*'       # some sections only
    python tools/autobahn.py --serve 9001                         # only the echo server (run wstest yourself)

The default testee is what production uses for a plain WebSocket: a request
handler hands its connection to ``tornado_sio.http.owned.adopt`` (the take-over
``owned.take_over`` does for the Engine.IO WebSocket: header checks,
permessage-deflate negotiation, detach, asyncio ``BufferedProtocol`` on the
sans-I/O parser of ``tornado_sio/protocol/wsframe.py``) and an
``OwnedWebSocket`` subclass echoes every message, written as production writes
a prepared packet (``build_frame``, and ``deflate_payload`` with RSV1 when
permessage-deflate was negotiated). Autobahn needs an echo server, which the
Engine.IO endpoint is not. permessage-deflate is offered, so sections 12 and
13 run; ``--stock`` offers Tornado's own, ``--fallback`` (the reader Tornado's
handler gets from ``_fastpath.use_batched_reader`` when the owned connection
is off) offers none. ``max_message_size`` is 64 MiB, above section 9's largest
message. The default cases are sections 1-7, 9, 10, 12 and 13 (section 9, the
performance cases, takes several minutes).

``wstest`` is the Python 2.7 ``autobahntestsuite`` package. Where Docker is not
available, a Python 2.7 interpreter (e.g. pyenv's 2.7.18, whose ``virtualenv``
must be installed first) can install it; pip resolves most dependencies, the
pins keep versions that still run on 2.7::

    python2.7 -m pip install 'virtualenv<20.16'        # the last virtualenv that runs on 2.7
    python2.7 -m virtualenv /tmp/ab27
    /tmp/ab27/bin/pip install autobahntestsuite         # 25.10.1 when this was written
    /tmp/ab27/bin/pip install 'autobahn[accelerate,twisted]==0.10.9' Twisted==19.10.0 \\
        txaio==2.1.0 zope.interface==4.6.0 pyOpenSSL==19.1.0 cryptography==3.3.2 \\
        service_identity==18.1.0 klein==17.10.0 Werkzeug==1.0.1 jinja2==2.11.3 \\
        markupsafe==1.1.1 unittest2==1.1.0 six==1.16.0 incremental==16.10.1
    /tmp/ab27/bin/wstest --help                         # then: --wstest /tmp/ab27/bin/wstest

The summary printed at the end counts the cases by Autobahn's verdict
(``OK``, ``NON-STRICT``, ``INFORMATIONAL``, ``UNIMPLEMENTED``, ``FAILED``) for
the protocol behaviour and for the closing behaviour, and lists every case
that is neither OK nor INFORMATIONAL. UNIMPLEMENTED means the testee
declined the case's permessage-deflate offer (the owned connection declines a
``server_max_window_bits`` below 15: each message is compressed once, with
the full window, for every client; cases 13.3.* and 13.5.*); those are named
and do not fail the run. The exit status is 1 when any other case is neither
OK nor INFORMATIONAL. The HTML and JSON reports are in ``--outdir``.
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
DEFAULT_CASES = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,12.*,13.*"
#: The largest message the testee takes (above section 9's largest, 16 MiB).
MAX_MESSAGE = 64 * 1024 * 1024
#: The owned testee's send buffer bound (section 9 echoes 16 MiB messages back to back).
MAX_SEND_BUFFER = 256 * 1024 * 1024


def serve(port: int, testee: str) -> None:
    """Run the echo testee (``owned``, ``stock`` or ``fallback``) on 127.0.0.1:*port* until killed."""
    import tornado.web

    handler = owned_echo_handler() if testee == "owned" else tornado_echo_handler(testee == "fallback")

    async def main() -> None:
        app = tornado.web.Application([(r"/.*", handler)])
        app.listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


def owned_echo_handler() -> type:
    """A handler whose connections go to an echoing ``OwnedWebSocket``, through ``owned.adopt``.

    ``adopt`` is the take-over the Engine.IO WebSocket goes through
    (``owned.take_over``): the same header checks, permessage-deflate
    negotiation, detach and hand-over to asyncio. The echo writes each message
    back as production writes a prepared packet: one frame from
    ``build_frame``, compressed by ``deflate_payload`` when the client
    negotiated permessage-deflate.
    """
    import tornado.web

    from tornado_sio.http.owned import OwnedWebSocket, adopt
    from tornado_sio.protocol.wsframe import OP_BINARY, OP_TEXT, Inflater, build_frame, deflate_payload

    class EchoWebSocket(OwnedWebSocket):
        __slots__ = ()

        def on_message(self, data: str | bytes) -> None:
            opcode = OP_TEXT if isinstance(data, str) else OP_BINARY
            payload = data.encode("utf-8") if isinstance(data, str) else data
            if self.deflate:
                self.send(build_frame(deflate_payload(payload), opcode, compressed=True))
            else:
                self.send(build_frame(payload, opcode))

    def echo(head: bytes, leftover: bytes, inflater: Inflater | None) -> OwnedWebSocket:
        return EchoWebSocket(MAX_MESSAGE, MAX_SEND_BUFFER, head, leftover, inflater)

    class OwnedEcho(tornado.web.RequestHandler):
        async def get(self) -> None:
            await adopt(self, echo, compression=True)

    return OwnedEcho


def tornado_echo_handler(fallback: bool) -> type:
    """Tornado's own echo ``WebSocketHandler``; with *fallback*, on the batched reader of ``_fastpath``."""
    from tornado.websocket import WebSocketHandler, WebSocketProtocol

    from tornado_sio.http._fastpath import use_batched_reader

    class Echo(WebSocketHandler):
        def get_websocket_protocol(self) -> WebSocketProtocol | None:
            protocol = super().get_websocket_protocol()
            if fallback:
                use_batched_reader(protocol)
            return protocol

        def get_compression_options(self) -> dict[str, Any] | None:
            return None if fallback else {}

        @property
        def max_message_size(self) -> int:
            return MAX_MESSAGE

        def check_origin(self, origin: str) -> bool:
            return True

        def on_message(self, message: str | bytes) -> None:
            self.write_message(message, binary=isinstance(message, bytes))

    return Echo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def case_key(case: str) -> list[int]:
    """Sort key of a case id: ``"12.1.10"`` after ``"12.1.9"``."""
    return [int(part) for part in case.split(".")]


def summarize(outdir: str) -> int:
    """Print the verdict counts, per section and in all, and the cases to look at.

    UNIMPLEMENTED is Autobahn's verdict when the testee declined the
    extension offer of a case (RFC 7692 lets a server decline any offer):
    those cases are named but do not fail the run. 1 if any other case is
    neither OK nor INFORMATIONAL, for the protocol or the closing handshake.
    """
    with open(os.path.join(outdir, "index.json")) as f:
        results = json.load(f)[AGENT]
    behaviour: collections.Counter[str] = collections.Counter()
    closing: collections.Counter[str] = collections.Counter()
    sections: dict[str, tuple[collections.Counter[str], collections.Counter[str]]] = {}
    odd, declined = [], []
    for case, result in sorted(results.items(), key=lambda kv: case_key(kv[0])):
        verdict, close = result["behavior"], result["behaviorClose"]
        behaviour[verdict] += 1
        closing[close] += 1
        section = sections.setdefault(case.split(".")[0], (collections.Counter(), collections.Counter()))
        section[0][verdict] += 1
        section[1][close] += 1
        if verdict == "UNIMPLEMENTED" and close in ("OK", "INFORMATIONAL"):
            declined.append(case)
        elif verdict not in ("OK", "INFORMATIONAL") or close not in ("OK", "INFORMATIONAL"):
            odd.append(f"  {case}: {verdict} (close: {close})")
    print(f"{len(results)} cases")
    for name, (verdicts, closes) in sorted(sections.items(), key=lambda kv: int(kv[0])):
        print(f"section {name}: behaviour {dict(verdicts)}, closing {dict(closes)}")
    print("behaviour:", dict(behaviour))
    print("closing:  ", dict(closing))
    if declined:
        print(f"UNIMPLEMENTED (offer declined): {len(declined)} cases: {', '.join(declined)}")
    if odd:
        print("\n".join(odd))
    else:
        print("every case OK or INFORMATIONAL" + (" (or UNIMPLEMENTED)" if declined else ""))
    return 1 if odd else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wstest", help="path of Autobahn's wstest")
    ap.add_argument("--cases", default=DEFAULT_CASES, help=f"comma list of case patterns (default {DEFAULT_CASES})")
    testee = ap.add_mutually_exclusive_group()
    testee.add_argument("--stock", action="store_true",
                        help="Tornado's own WebSocketHandler (with its permessage-deflate), to compare")
    testee.add_argument("--fallback", action="store_true",
                        help="Tornado's WebSocketHandler on the batched reader of _fastpath (no deflate)")
    ap.add_argument("--outdir", default=None, help="where Autobahn writes its reports (default: a temporary folder)")
    ap.add_argument("--serve", type=int, metavar="PORT", help="only run the echo testee on PORT")
    args = ap.parse_args(argv)
    name = "stock" if args.stock else "fallback" if args.fallback else "owned"
    if args.serve:
        serve(args.serve, name)
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
    command = [sys.executable, os.path.abspath(__file__), "--serve", str(port)]
    command += [f"--{name}"] if name != "owned" else []
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
