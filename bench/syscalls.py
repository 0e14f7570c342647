#!/usr/bin/env python3
"""Count the system calls a server makes per operation under one of bench/run.py's cases (strace -c).

    python bench/syscalls.py poll_10 echo_10                       # this tree
    python bench/syscalls.py poll_10 --baseline .cache/snap-pre17  # a snapshot or git revision
    python bench/syscalls.py idle_5000 --trace getpid,epoll_ctl

Why: Python 3.11's ``asyncio.get_running_loop()`` calls ``getpid()`` (a real
system call on current glibc) for every new Future, and Tornado makes one per
stream read; ``epoll_ctl`` counts the re-registration churn. Prints the calls
per operation (round trip, delivery) and, for idle cases, per second.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run as bench


def trace_case(env: bench.Env, peer: str, case: bench.Case, trace: str) -> str:
    """Run *case* against a fresh *peer* server with strace -c attached over the measured window."""
    cid = case.id
    port = bench.free_port()
    server = env.start_server(peer, port, f"strace-{cid}")
    out_path = os.path.join(bench.LOGS, f"strace-{peer}-{cid}.txt")
    tracer = None
    out = bench.Outcome(peer, cid)
    marks = {}

    def on_phase(name: str) -> None:
        nonlocal tracer
        if name in ("measure_start", "loaded") and tracer is None:
            tracer = subprocess.Popen(["strace", "-f", "-c", "-e", f"trace={trace}", "-o", out_path,
                                       "-p", str(server.pid)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            marks["t0"] = time.monotonic()
            if name == "loaded":
                time.sleep(10.0)  # idle: ten seconds of held connections
                tracer.send_signal(2)
                tracer.wait(20)
                marks["t1"] = time.monotonic()
        elif name == "measure_end" and tracer is not None and tracer.poll() is None:
            tracer.send_signal(2)
            tracer.wait(20)
            marks["t1"] = time.monotonic()

    try:
        bench.wait_port(port, server)
        cfg = dict(case.cfg, url=f"http://127.0.0.1:{port}", syncTimeout=30)
        bench.run_loadgen(env, cfg, case.budget + 60, [server.pid], out, on_phase)
    finally:
        if tracer is not None and tracer.poll() is None:
            tracer.send_signal(2)
            tracer.wait(20)
        bench.stop(server)
    counts = {}
    with open(out_path, encoding="utf-8") as fh:
        for line in fh:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
            if m and m.group(2) != "total":
                counts[m.group(2)] = int(m.group(1))
    r = out.result
    seconds = marks.get("t1", 0) - marks.get("t0", 0)
    ops = (r.get("rate") or 0) * (r.get("seconds") or 0)
    unit = (r.get("unit") or "operation").split("/")[0].rstrip("s")
    return f"{bench.PEERS[peer]['label']} {cid}: " + ", ".join(
        f"{name} {n / ops:.2f} per {unit}" if ops else f"{name} {n / max(seconds, 1e-9):,.0f}/s"
        for name, n in sorted(counts.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+")
    ap.add_argument("--baseline", default=None, help="a git revision or snapshot directory (see run.py)")
    ap.add_argument("--peer", default=bench.SUBJECT)
    ap.add_argument("--trace", default="getpid,epoll_ctl,sendto,recvfrom,epoll_wait")
    args = ap.parse_args()
    if shutil.which("strace") is None:
        print("strace is not installed (apt-get install strace)", file=sys.stderr)
        return 2
    bench.raise_nofile()
    bench.ensure_node_packages(False)
    peer = bench.add_baseline_peer(args.baseline) if args.baseline else args.peer
    cases = {c.id: c for c in bench.make_cases(False, 5.0)}
    pin = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    env = bench.Env(pin)
    for cid in args.cases:
        print(trace_case(env, peer, cases[cid], args.trace), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
