#!/usr/bin/env python3
"""The soak: N idle WebSocket clients plus paced echo, broadcast and churn, beside Node, in one run.

    python bench/soak.py                          # 10,000 idle clients, 60 s window, all peers
    python bench/soak.py --clients 19500          # the most one process can hold here (RLIMIT_NOFILE 20,000)
    python bench/soak.py --clients 2000 --duration 20 --peers tornado-sio,node   # a quick look

For each peer, one after the other, on a fresh server pinned like bench/run.py
pins it (server on CPU 1, load generator on CPU 0), with a ping interval of
5 s: connect N idle clients (they answer every ping; the time of each ping is
kept), settle, then three measured phases, one after the other:

1. paced echo, ``--duration`` s: 10 clients x 50 echoes/s, open loop: latency
   of every reply;
2. churn, ``--churn-seconds`` s: a new client every 1/``--churn-rate`` s, its
   connect time (TCP connect to the Socket.IO CONNECT), closed after a second;
3. broadcast, ``--bcast-seconds`` s: one emit to every client each
   ``--bcast-every`` s: latency of every delivery.

Throughout: the ping interval each idle client sees (within ±5% of 5 s?) and,
tornado-sio only, every garbage-collection pause (``gc.callbacks``, through
the bench server's ``--gc-report``) and the heartbeat's largest tick.

Peers: ``tornado-sio`` (tornado_sio.runtime.ManagedGC on), ``tornado-sio-gc-default``
(CPython's collector as it comes, for comparison), ``tornado-sio-uvloop``
(managed GC, uvloop) and ``node`` (socket.io 4.8). The open-file limit is
raised to its hard limit; every server binds 127.0.0.1 and is stopped by PID;
every loop of the load generator is bounded in time and count.

Writes bench/results/soak-latest.md and .json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import signal
import sys
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run as bench

PY = sys.executable
SERVER = "servers/tornado_sio_server.py"
PEERS: Dict[str, Dict[str, Any]] = {
    "tornado-sio": {"label": "tornado-sio (managed GC)", "cmd": [PY, SERVER, "--gc", "managed"], "gc": True},
    "tornado-sio-gc-default": {"label": "tornado-sio (default GC)", "cmd": [PY, SERVER], "gc": True},
    "tornado-sio-uvloop": {"label": "tornado-sio (managed GC, uvloop)",
                           "cmd": [PY, SERVER, "--gc", "managed", "--loop", "uvloop"], "gc": True},
    "node": {"label": "Node socket.io 4.8", "cmd": ["node", "servers/node_server.js"], "gc": False},
}


def gc_in_window(report: Dict[str, Any], start: float, end: float) -> Dict[str, Any]:
    """The GC pauses of a --gc-report that fell inside [start, end] (monotonic seconds)."""
    slow = [(p, g) for p, g, t in report.get("gc_slow", []) if start <= t <= end + 2.0]
    return {"pauses_5ms_or_more": len(slow), "over_50ms": sum(1 for p, _ in slow if p >= 0.05),
            "max_ms": round(max((p for p, _ in slow), default=0.0) * 1000, 1),
            "full_collections": sum(1 for _, g in slow if g == 2)}


def read_report(path: str, pid: int, timeout: float = 10.0) -> Dict[str, Any]:
    """Ask the server for its --gc-report (SIGUSR2) and read it."""
    before = os.path.getmtime(path) if os.path.exists(path) else 0.0
    try:
        os.kill(pid, signal.SIGUSR2)
    except ProcessLookupError:
        return {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getmtime(path) > before:
            try:
                with open(path, encoding="utf-8") as fh:
                    return json.load(fh)
            except ValueError:
                pass
        time.sleep(0.1)
    return {}


def run_peer(env: bench.Env, peer: str, args: argparse.Namespace) -> Dict[str, Any]:
    spec = PEERS[peer]
    port = bench.free_port()
    report_path = os.path.join(bench.LOGS, f"soak-{peer}-gc.json")
    extra = ["--ping-interval", str(args.ping_interval)]
    if spec["gc"]:
        extra += ["--gc-report", report_path]
        if os.path.exists(report_path):
            os.remove(report_path)
    bench.PEERS[f"soak:{peer}"] = {"label": spec["label"], "cmd": spec["cmd"]}
    server = env.start_server(f"soak:{peer}", port, f"soak-{args.clients}", extra)
    out = bench.Outcome(peer, "soak")
    marks: Dict[str, float] = {}
    reports: Dict[str, Dict[str, Any]] = {}

    def on_phase(name: str) -> None:
        marks[name] = time.monotonic()
        if name in ("connected", "measure_start", "measure_end"):
            out.rss_kb[name] = bench.rss_kb(server.pid)
        if spec["gc"] and name == "measure_end":
            reports["end"] = read_report(report_path, server.pid)

    try:
        bench.wait_port(port, server)
        time.sleep(0.3)
        cfg = {"scenario": "soak", "url": f"http://127.0.0.1:{port}", "clients": args.clients,
               "duration": args.duration, "settle": args.settle, "echoClients": 10, "echoRate": 50,
               "bcastEvery": args.bcast_every, "bcastSeconds": args.bcast_seconds, "churnRate": args.churn_rate,
               "churnSeconds": args.churn_seconds, "churnHold": 1.0, "pingInterval": args.ping_interval,
               "concurrency": 100, "syncTimeout": 30}
        budget = (args.clients / 500 + args.settle + args.duration + args.churn_seconds + args.bcast_seconds
                  + 90)
        bench.run_loadgen(env, cfg, budget, [server.pid], out, on_phase)
        if server.poll() is not None and not out.error:
            out.error = f"server exited with {server.returncode}"
    except Exception as exc:  # one failed peer must not stop the soak
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        bench.stop(server, grace=10)
    result: Dict[str, Any] = {"peer": peer, "label": spec["label"], "error": out.error, **out.result,
                              "server_cpu": out.server_cpu.get("main"), "other_cpu": out.other_cpu.get("main"),
                              "rss_kb": out.rss_kb}
    end = reports.get("end") or {}
    if end and "measure_start" in marks and "measure_end" in marks:
        result["gc_window"] = gc_in_window(end, marks["measure_start"], marks["measure_end"])
        result["gc_since_start"] = end.get("gc")
        result["heartbeat"] = end.get("heartbeat")
        result["loop"] = end.get("loop")
    return result


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def lat(d: Optional[Dict[str, Any]]) -> str:
    if not d or "p50" not in d:
        return "—"
    return f"{d['p50']:.1f} / {d['p99']:.1f} / {d['max']:.1f}"


def build_report(results: List[Dict[str, Any]], args: argparse.Namespace, info: Dict[str, str], wall: float,
                 pinning: str) -> str:
    lines = ["# tornado-sio soak", "",
             f"Run: {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')} · wall time {wall:.0f} s · "
             f"`python bench/soak.py{''.join(' ' + a for a in sys.argv[1:])}`", "",
             f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory']} RAM, {info['os']}. {pinning}", "",
             f"tornado-sio: commit {info['commit']}. Python {info['python']}, Node {info['node']}, "
             f"Tornado {info['tornado']}, uvloop {info['uvloop']}, Node socket.io {info['socket.io (node)']}.", "",
             f"{args.clients:,} idle WebSocket clients (ping interval {args.ping_interval:g} s), then one after "
             f"the other: echo 10 clients × 50/s, open loop ({args.duration:g} s); churn {args.churn_rate:g} new "
             f"clients/s, each closed after 1 s ({args.churn_seconds:g} s); a broadcast to every client every "
             f"{args.bcast_every:g} s ({args.bcast_seconds:g} s). Latencies p50 / p99 / max, ms. Ping intervals "
             "and GC pauses over all three phases.", ""]
    head = ["", *[r["label"] for r in results]]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|" + "---:|" * len(results))

    def row(label: str, f: Any) -> None:
        cells = []
        for r in results:
            try:
                cells.append("error" if r.get("error") and "echo" not in r else f(r))
            except (KeyError, TypeError, ValueError):
                cells.append("—")
        lines.append("| " + " | ".join([label, *cells]) + " |")

    row("clients held / connects/s", lambda r: f"{r['alive']:,} / {r['connects_per_s']:,.0f}")
    row("echo latency, ms", lambda r: lat(r["echo"]["latency_ms"]))
    row("echo replies lost", lambda r: fmt(r["echo"]["lost"]))
    row("broadcast delivery latency, ms", lambda r: lat(r["bcast"]["latency_ms"]))
    row("churn connect, ms", lambda r: lat(r["churn"]["connect_ms"]))
    row("ping interval min / p50 / max, s", lambda r: "{:.2f} / {:.2f} / {:.2f}".format(
        r["ping_interval_ms"]["min"] / 1000, r["ping_interval_ms"]["p50"] / 1000, r["ping_interval_ms"]["max"] / 1000))
    row("ping intervals outside ±5%", lambda r: "{} of {:,}".format(r["ping_interval_ms"]["outside_5pct"],
                                                                     r["ping_interval_ms"]["count"]))
    row("GC pauses ≥ 50 ms in the window (longest, ms)", lambda r: "{} ({})".format(
        r["gc_window"]["over_50ms"], r["gc_window"]["max_ms"]) if "gc_window" in r else "n/a")
    row("GC pauses ≥ 5 ms in the window / full collections", lambda r: "{} / {}".format(
        r["gc_window"]["pauses_5ms_or_more"], r["gc_window"]["full_collections"]) if "gc_window" in r else "n/a")
    row("longest heartbeat tick, ms / most sessions in one tick", lambda r: "{} / {}".format(
        r["heartbeat"]["longest_tick_ms"], r["heartbeat"]["most_in_a_tick"]) if r.get("heartbeat") else "n/a")
    row("server CPU (share of a core) / RSS, MB", lambda r: "{:.2f} / {:,.0f}".format(
        r["server_cpu"], r["rss_kb"].get("measure_end", 0) / 1024))
    row("load generator CPU / other processes' CPU in the window", lambda r: "{:.2f} / {:.2f}".format(
        r["loadgen_cpu"], r["other_cpu"]))
    lines.append("")
    errors = [f"- {r['label']}: {r['error']}" for r in results if r.get("error")]
    if errors:
        lines += ["## Errors", "", *errors, ""]
    lines += ["## Targets (issue #17, at 19,500 clients)", "", "| Target | " + " | ".join(
        r["label"] for r in results if r["peer"] != "node") + " |",
        "|---|" + "---|" * sum(1 for r in results if r["peer"] != "node")]
    mine = [r for r in results if r["peer"] != "node"]

    def target(label: str, ok: Any) -> None:
        cells = []
        for r in mine:
            try:
                cells.append(ok(r))
            except (KeyError, TypeError, ValueError):
                cells.append("—")
        lines.append("| " + " | ".join([label, *cells]) + " |")

    def verdict(value: float, limit: float, unit: str = " ms") -> str:
        return f"{value:,.1f}{unit} " + ("met" if value <= limit else "**missed**")

    target("echo p99 ≤ 10 ms", lambda r: verdict(r["echo"]["latency_ms"]["p99"], 10))
    target("echo max ≤ 100 ms", lambda r: verdict(r["echo"]["latency_ms"]["max"], 100))
    target("no GC pause over 50 ms", lambda r: verdict(r["gc_window"]["max_ms"], 50))
    target("ping interval within ±5%", lambda r: "{} outside ".format(r["ping_interval_ms"]["outside_5pct"]) + (
        "met" if r["ping_interval_ms"]["outside_5pct"] == 0 else "**missed**"))
    target("churn connect p99 ≤ 100 ms", lambda r: verdict(r["churn"]["connect_ms"]["p99"], 100))
    lines.append("")
    if args.clients != 19500:
        lines.append(f"(These targets are stated for 19,500 clients; this run held {args.clients:,}.)")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    signal.signal(signal.SIGTERM, bench._interrupt)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=10000, help="idle WebSocket clients (default 10,000)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of paced echo (default 60)")
    ap.add_argument("--churn-seconds", type=float, default=20.0, help="seconds of churn (default 20)")
    ap.add_argument("--bcast-seconds", type=float, default=20.0, help="seconds of broadcasts (default 20)")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds between connecting and measuring")
    ap.add_argument("--ping-interval", type=float, default=5.0)
    ap.add_argument("--bcast-every", type=float, default=2.0, help="seconds between broadcasts (0: none)")
    ap.add_argument("--churn-rate", type=float, default=20.0, help="new clients per second (0: none)")
    ap.add_argument("--peers", default="tornado-sio,tornado-sio-gc-default,node",
                    help=f"comma list from {', '.join(PEERS)}")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--nice", type=int, default=0,
                    help="run servers and load generator at this nice value (e.g. -15, as root), so that other "
                         "work on a shared machine disturbs the tails less (the same for every peer)")
    ap.add_argument("--out", default=os.path.join(bench.RESULTS, "soak-latest.md"))
    args = ap.parse_args(argv)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in peers:
        if p not in PEERS:
            raise SystemExit(f"unknown peer {p}; known: {', '.join(PEERS)}")
    bench.raise_nofile()
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.clients + 400:
        raise SystemExit(f"RLIMIT_NOFILE is {soft}: {args.clients:,} clients need about {args.clients + 400:,}")
    bench.ensure_node_packages(False)
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    env = bench.Env(pin, args.nice)
    pinning = ("Server pinned to CPU 1, load generator to CPU 0 (taskset)." if pin else "Not pinned.")
    if args.nice:
        pinning += f" Servers and load generator at nice {args.nice}."
    info = bench.machine_info()
    t0 = time.monotonic()
    results = []
    try:
        for peer in peers:
            bench.wait_quiet(10.0)
            bench.log(f"soak {PEERS[peer]['label']}: {args.clients:,} clients, {args.duration:g} s")
            r = run_peer(env, peer, args)
            results.append(r)
            summary = r.get("error") or (f"echo p99 {r['echo']['latency_ms'].get('p99', 0):.1f} ms max "
                                         f"{r['echo']['latency_ms'].get('max', 0):.1f} ms; churn p99 "
                                         f"{r['churn']['connect_ms'].get('p99', 0):.1f} ms; gc "
                                         f"{r.get('gc_window', {}).get('max_ms', 'n/a')} ms")
            bench.log(f"soak {PEERS[peer]['label']}: {summary}")
    except KeyboardInterrupt:
        bench.log("interrupted: writing the partial report")
    report = build_report(results, args, info, time.monotonic() - t0, pinning)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(report)
    with open(os.path.splitext(args.out)[0] + ".json", "w", encoding="utf-8") as fh:
        json.dump({"args": vars(args), "machine": info, "results": results}, fh, indent=1)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
