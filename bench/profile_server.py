#!/usr/bin/env python3
"""Profile the tornado-sio bench server under one of bench/run.py's cases with py-spy.

    python bench/profile_server.py echo_10 bcast_1000 poll_10 idle_5000
    python bench/profile_server.py --peer pysio-tornado echo_10      # profile a Python peer instead

For each case: starts the server pinned like bench/run.py does, attaches
``py-spy record`` (sampling, non-blocking, idle excluded), runs the load
generator, then writes bench/results/profile-<peer>-<case>.txt: the busiest
functions by own time and by inclusive time, as shares of the samples taken
while the server was on CPU. The raw collapsed stacks are kept in
bench/.cache/profiles/ (feed them to speedscope or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run as bench

RAW_DIR = os.path.join(bench.BENCH, ".cache", "profiles")


def frame_key(frame: str) -> str:
    """'func (path/file.py:123)' -> 'func (path/file.py)': aggregate over lines."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarize(raw_path: str, top: int = 30) -> Tuple[str, int]:
    own: Counter = Counter()
    incl: Counter = Counter()
    lines_own: Counter = Counter()
    total = 0
    with open(raw_path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            try:
                n = int(count)
            except ValueError:
                continue
            frames = [f for f in stack.split(";") if f and not f.startswith("process ")
                      and not f.startswith("thread ")]
            if not frames:
                continue
            total += n
            keys = [frame_key(f) for f in frames]
            own[keys[-1]] += n
            lines_own[frames[-1]] += n
            for k in set(keys):
                incl[k] += n
    if not total:
        return "no samples\n", 0
    out: List[str] = [f"samples on CPU: {total}", "", "## own time (function)", ""]
    out += [f"{100 * n / total:6.1f}%  {k}" for k, n in own.most_common(top)]
    out += ["", "## own time (line)", ""]
    out += [f"{100 * n / total:6.1f}%  {k}" for k, n in lines_own.most_common(top)]
    out += ["", "## inclusive time", ""]
    out += [f"{100 * n / total:6.1f}%  {k}" for k, n in incl.most_common(top * 2)]
    return "\n".join(out) + "\n", total


def memory_profile(env: bench.Env, case: bench.Case, peer: str) -> None:
    import signal
    import tracemalloc

    snapdir = os.path.join(RAW_DIR, f"tracemalloc-{peer}-{case.id}")
    os.makedirs(snapdir, exist_ok=True)
    for f in os.listdir(snapdir):
        os.remove(os.path.join(snapdir, f))
    port = bench.free_port()
    server = env.start_server(peer, port, f"memory-{case.id}", ["--tracemalloc", snapdir])
    taken = [0]

    def on_phase(name: str) -> None:
        if name not in ("baseline", "loaded"):
            return
        taken[0] += 1
        os.kill(server.pid, signal.SIGUSR1)
        path = os.path.join(snapdir, f"snapshot-{taken[0]}.pickle")
        deadline = time.monotonic() + 120
        last = -1
        while time.monotonic() < deadline:  # wait until the dump is complete
            size = os.path.getsize(path) if os.path.exists(path) else -1
            if size > 0 and size == last:
                break
            last = size
            time.sleep(0.5)

    out = bench.Outcome(peer, case.id)
    try:
        bench.wait_port(port, server)
        cfg = dict(case.cfg, url=f"http://127.0.0.1:{port}", syncTimeout=150)
        bench.run_loadgen(env, cfg, case.budget + 300, [server.pid], out, on_phase)
    finally:
        bench.stop(server)
    n = out.result.get("alive") or case.cfg["clients"]
    s1 = tracemalloc.Snapshot.load(os.path.join(snapdir, "snapshot-1.pickle"))
    s2 = tracemalloc.Snapshot.load(os.path.join(snapdir, "snapshot-2.pickle"))
    rss = (out.rss_kb.get("loaded", 0) - out.rss_kb.get("baseline", 0)) * 1024 / n
    lines = [f"# tracemalloc: {bench.PEERS[peer]['label']}, {n} idle WebSocket clients", "",
             f"RSS growth per client: {rss:,.0f} B (tracemalloc sees Python allocations only)", ""]
    total = sum(d.size_diff for d in s2.compare_to(s1, "filename"))
    lines.append(f"traced Python heap growth per client: {total / n:,.0f} B")
    counts = []
    for k in (1, 2):
        path = os.path.join(snapdir, f"snapshot-{k}.gc")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                counts.append(int(fh.read().strip() or 0))
    if len(counts) == 2:
        lines.append(f"GC-tracked objects per client: {(counts[1] - counts[0]) / n:,.1f} "
                     f"({counts[1]:,} tracked with every client connected)")
    lines += ["", "## by line (bytes per client, allocations per client)", ""]
    import linecache

    for d in s2.compare_to(s1, "lineno")[:40]:
        fr = d.traceback[0]
        src = linecache.getline(fr.filename, fr.lineno).strip()[:70]
        lines.append(f"{d.size_diff / n:8.0f} B  {d.count_diff / n:6.2f}  {short_path(fr.filename)}:{fr.lineno}  {src}")
    lines += ["", "## by call site in tornado / tornado_sio (first such frame of each allocation)", ""]
    sites: Dict[str, List[int]] = {}
    for d in s2.compare_to(s1, "traceback"):
        key = "?"
        for fr in reversed(d.traceback):  # most recent call first
            f = fr.filename
            if "tornado_sio" in f or "/tornado/" in f:
                key = f"{short_path(f)}:{fr.lineno}"
                break
        agg = sites.setdefault(key, [0, 0])
        agg[0] += d.size_diff
        agg[1] += d.count_diff
    for key, (size, count) in sorted(sites.items(), key=lambda kv: -kv[1][0])[:40]:
        if size / n < 8:
            break
        fname, _, lno = key.rpartition(":")
        src = ""
        for full in (fname, os.path.join(bench.ROOT, fname)):
            src = src or linecache.getline(full, int(lno)).strip()[:70] if lno.isdigit() else src
        if not src and lno.isdigit():
            import importlib.util as _u
            spec = _u.find_spec(fname.replace("/", ".")[:-3]) if fname.endswith(".py") else None
            if spec and spec.origin:
                src = linecache.getline(spec.origin, int(lno)).strip()[:70]
        lines.append(f"{size / n:8.0f} B  {count / n:6.2f}  {key}  {src}")
    dest = os.path.join(bench.RESULTS, f"memory-{peer}-{case.id}.txt")
    with open(dest, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    bench.log(f"{case.id}: memory profile -> {os.path.relpath(dest)}")


def short_path(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", help="case ids from bench/run.py (echo_10, bcast_1000, poll_10, ...)")
    ap.add_argument("--baseline", metavar="REV_OR_DIR", default=None,
                    help="profile tornado-sio at a git revision, or a snapshot directory, instead (see run.py)")
    ap.add_argument("--peer", default=bench.SUBJECT, choices=[p for p in bench.PEERS if p != "node"])
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--quick", action="store_true", help="use the --quick variants of the cases")
    ap.add_argument("--memory", action="store_true",
                    help="for an idle_* case: tracemalloc snapshots at the baseline and with every client "
                         "connected; writes the allocation sites that grew (tornado-sio only)")
    ap.add_argument("--duration", type=float, default=8.0, help="measured seconds (longer than run.py's, "
                                                                "for enough samples)")
    args = ap.parse_args()
    if shutil.which("py-spy") is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    bench.raise_nofile()
    bench.ensure_node_packages(False)
    if args.baseline:
        args.peer = bench.add_baseline_peer(args.baseline)
    cases: Dict[str, bench.Case] = {c.id: c for c in bench.make_cases(args.quick, 5.0)}
    pin = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    env = bench.Env(pin)
    os.makedirs(RAW_DIR, exist_ok=True)
    for cid in args.cases:
        case = cases.get(cid)
        if case is None or case.servers != 1:
            print(f"unknown or multi-process case {cid}; known: {', '.join(c for c in cases if cases[c].servers == 1)}")
            continue
        if args.memory:
            memory_profile(env, case, args.peer)
            continue
        raw = os.path.join(RAW_DIR, f"{args.peer}-{cid}.txt")
        port = bench.free_port()
        server = env.start_server(args.peer, port, f"profile-{cid}")
        spy = None
        try:
            bench.wait_port(port, server)
            spy = subprocess.Popen(bench.pinned(["py-spy", "record", "--pid", str(server.pid), "--rate",
                                                 str(args.rate), "--nonblocking", "--format", "raw",
                                                 "--output", raw], env.loadgen_cpu),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            out = bench.Outcome(args.peer, cid)
            cfg = dict(case.cfg, url=f"http://127.0.0.1:{port}")
            if "duration" in cfg:
                cfg["duration"] = args.duration
            bench.run_loadgen(env, cfg, case.budget, [server.pid], out)
        finally:
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
                try:
                    spy.wait(20)
                except subprocess.TimeoutExpired:
                    bench.stop(spy)
            bench.stop(server)
        text, total = summarize(raw)
        head = (f"# py-spy profile: {bench.PEERS[args.peer]['label']}, case {cid}\n\n"
                f"result: {bench.short(case, out) if out.result else out.error}\n\n")
        dest = os.path.join(bench.RESULTS, f"profile-{args.peer}-{cid}.txt")
        with open(dest, "w", encoding="utf-8") as fh:
            fh.write(head + text)
        bench.log(f"{cid}: {total} samples -> {os.path.relpath(dest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
