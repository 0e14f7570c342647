#!/usr/bin/env python3
"""Measure candidate optimisations (bench/experiments/patches.py) against the
unmodified library, on bench/run.py's cases, alternating, best of --repeats.

    python bench/experiments/compare.py --patches lean_dispatch ws_raw_transport all \\
        --scenarios echo_10,bcast_1000,poll_10 --repeats 3 --nice -10

Writes bench/results/experiments.md. Measuring only: nothing here changes the
library.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import run as bench  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patches", nargs="+", required=True, help="patch names (comma-joined for a combination)")
    ap.add_argument("--scenarios", default="echo_10,echo_ack_10,bcast_1000,poll_10")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(bench.RESULTS, "experiments.md"))
    args = ap.parse_args()
    import signal

    signal.signal(signal.SIGTERM, bench._interrupt)
    signal.signal(signal.SIGINT, bench._interrupt)
    bench.raise_nofile()
    bench.ensure_node_packages(False)
    variants = ["tornado-sio"]
    for p in args.patches:
        name = f"tornado-sio+{p}"
        bench.PEERS[name] = {"label": name, "cmd": [sys.executable, "servers/tornado_sio_server.py", "--patch", p]}
        variants.append(name)
    cases = bench.select(bench.make_cases(args.quick, 5.0), args.scenarios)
    pin = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    env = bench.Env(pin, args.nice)
    best: Dict[tuple, bench.Outcome] = {}
    cheapest: Dict[tuple, float] = {}  # lowest server CPU per operation over the repeats
    for i, case in enumerate(cases):
        for rep in range(args.repeats):
            order = variants[(i + rep) % len(variants):] + variants[:(i + rep) % len(variants)]
            for v in order:
                t0 = time.monotonic()
                o = bench.run_case(env, v, case, None, 3.0)
                o.disturbed = bool(o.result) and o.other_max() > 0.5
                prev = best.get((v, case.id))
                if prev is None or bench.better(o, prev):
                    best[(v, case.id)] = o
                key = "saturation" if case.group in ("bcast", "redis") else "main"
                if o.result and o.result.get("rate") and key in o.server_cpu:
                    c = o.server_cpu[key] / o.result["rate"] * 1e6
                    cheapest[(v, case.id)] = min(c, cheapest.get((v, case.id), c))
                bench.log(f"{case.id:<12} {v:<40} {o.error or bench.short(case, o)}  ({time.monotonic() - t0:.1f}s)")

    lines = ["# Candidate optimisations, measured", "",
             f"{time.strftime('%Y-%m-%d %H:%M')} · best of {args.repeats} (undisturbed runs first, then the "
             f"highest rate) · "
             f"{'pinned' if pin else 'not pinned'}{f', nice {args.nice}' if args.nice else ''} · "
             f"`python bench/experiments/compare.py --patches {' '.join(args.patches)} --scenarios {args.scenarios}`",
             "", "| Case | Metric | " + " | ".join(variants) + " |", "|---|---|" + "---:|" * len(variants)]
    for case in cases:
        base = best.get(("tornado-sio", case.id))
        if base is None or not base.result:
            continue
        for idx, (label, _, digits, _) in enumerate(bench.metrics_for(case, base)):
            row = [case.title if idx == 0 else "", label]
            for v in variants:
                o = best.get((v, case.id))
                if o is None or not o.result:
                    row.append("error")
                    continue
                val = bench.metrics_for(case, o)[idx][1]
                txt = bench.cell(val, digits)
                if v != "tornado-sio" and not isinstance(val, tuple):
                    r = bench.ratio(val, bench.metrics_for(case, base)[idx][1])
                    if r:
                        txt += f" ({r:.2f}×)"
                row.append(txt)
            lines.append("| " + " | ".join(row) + " |")
        if any((v, case.id) in cheapest for v in variants):
            row = ["", "lowest server CPU per operation over the repeats, µs"]
            b = cheapest.get(("tornado-sio", case.id))
            for v in variants:
                c = cheapest.get((v, case.id))
                txt = "—" if c is None else f"{c:,.2f}"
                if c is not None and b and v != "tornado-sio":
                    txt += f" ({c / b:.2f}×)"
                row.append(txt)
            lines.append("| " + " | ".join(row) + " |")
        cpu = []
        for v in variants:
            o = best.get((v, case.id))
            key = "saturation" if case.group in ("bcast", "redis") else "main"
            cpu.append(f"{o.server_cpu.get(key, 0):.2f} / {o.other_cpu.get(key, 0):.2f}" if o and o.result else "—")
        lines.append("| | server CPU / other CPU | " + " | ".join(cpu) + " |")
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
