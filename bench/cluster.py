#!/usr/bin/env python3
"""Clusters on Redis: tornado-sio against Node socket.io + @socket.io/redis-adapter, same run.

    python bench/cluster.py                  # both parts, about 2 minutes on 2 cores
    python bench/cluster.py --part nodes     # only the broadcast comparison
    python bench/cluster.py --part formats   # only the message queue format comparison

Part ``nodes``: broadcast to ``--clients`` (1,000) clients spread over two
server processes on one ``redis-server``, measured by bench/loadgen.js (its
``bcast`` scenario: a client of process 0 asks for a broadcast, ``window``
rounds in flight, deliveries per second over ``--duration`` s), for

* tornado-sio, native format (its default);
* tornado-sio in Node's format (``message_queue_options={'format': 'node'}``);
* Node socket.io 4.8 on ``@socket.io/redis-adapter`` 8 (bench/servers/node_server.js);
* mixed clusters: tornado-sio (Node's format) emitting with a Node server
  beside it, and the reverse.

The setups alternate round by round (``--rounds``) and each keeps its best.

Part ``formats``: whether python-socketio's format could be tornado-sio's
default. Three tornado-sio processes, every client in a room of its own;
process 0 emits ``--room-messages`` messages, each to one client's room, round
robin. Measured: deliveries per second and the CPU seconds of all three
servers per 1,000 deliveries, native (per-room channels: only the process
holding the room reads a message) against python-socketio (one channel: every
process reads every message). Everything binds 127.0.0.1; every child is
stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, ROOT)


def _load(name: str, filename: str) -> Any:
    """A sibling script as a module, by its path (the repository's own run.py shadows bench/run.py)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCH, filename))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


suite = _load("bench_suite", "run.py")  # the load generator, servers, CPU accounting
redis_bench = _load("bench_redis", "redis_bench.py")  # raw Engine.IO clients

#: setup name -> the two servers: "native" / "node-format" (tornado-sio, this file) or "node" (Node).
SETUPS: dict[str, tuple[str, str]] = {
    "tornado-sio (native)": ("native", "native"),
    "tornado-sio (node format)": ("node-format", "node-format"),
    "node socket.io + redis-adapter": ("node", "node"),
    "mixed: tornado-sio emits, node beside": ("node-format", "node"),
    "mixed: node emits, tornado-sio beside": ("node", "node-format"),
}


# ---------------------------------------------------------------- the tornado-sio server


def serve(port: int, redis_url: str, fmt: str) -> None:
    """A tornado-sio server answering the load generator's ``bcast`` and this file's room blasts."""
    import logging

    import tornado.web

    from tornado_sio import SocketIO, join_room

    logging.basicConfig(level=logging.WARNING)
    socketio = SocketIO(message_queue=redis_url, message_queue_options={"format": fmt, "max_queue": 100_000},
                        cors_allowed_origins="*", max_send_buffer=64_000_000)

    @socketio.on("bcast")
    def bcast(*args: Any) -> None:
        socketio.emit("bcast", *args)

    @socketio.on("join")
    async def join(room: str) -> bool:
        join_room(room)
        return await socketio.adapter.sync()  # type: ignore[attr-defined,no-any-return]

    @socketio.on("ready")
    async def ready() -> bool:
        return await socketio.adapter.sync()  # type: ignore[attr-defined,no-any-return]

    @socketio.on("rooms blast")
    async def rooms_blast(count: int, rooms: int, size: int) -> str:
        payload = "x" * size
        for i in range(count):
            socketio.emit("r", i, payload, to=f"u{i % rooms}")
            if i % 200 == 199:
                await socketio.adapter.flush()  # type: ignore[attr-defined]  # keep the queue short: none dropped
        return "sent"

    socketio.run(tornado.web.Application(socketio.routes()), host="127.0.0.1", port=port)


def start(kind: str, port: int, redis_url: str, env: Any, label: str) -> subprocess.Popen:
    if kind == "node":
        cmd = ["node", os.path.join(BENCH, "servers", "node_server.js"), "--port", str(port), "--redis", redis_url]
    else:
        fmt = {"native": "native", "node-format": "node"}.get(kind, kind)
        cmd = [sys.executable, __file__, "--serve", str(port), "--redis", redis_url, "--format", fmt]
    log = open(os.path.join(suite.LOGS, f"cluster-{label}-{port}.log"), "w")
    proc = subprocess.Popen(env.wrap(cmd, env.server_cpu), cwd=BENCH, env=env.env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    return proc


# ---------------------------------------------------------------- part "nodes"


def broadcast_run(env: Any, redis: Any, name: str, args: argparse.Namespace) -> dict[str, Any]:
    ports = [suite.free_port() for _ in range(2)]
    servers = [start(kind, port, redis.url, env, f"{i}") for i, (kind, port) in enumerate(zip(SETUPS[name], ports))]
    out = suite.Outcome(name, "cluster")
    try:
        for proc, port in zip(servers, ports):
            suite.wait_port(port, proc)
        time.sleep(0.5)  # the Node adapter subscribes asynchronously
        cfg = {"scenario": "bcast", "clients": args.clients, "duration": args.duration, "warmup": 1.0, "window": 4,
               "urls": [f"http://127.0.0.1:{p}" for p in ports]}
        suite.run_loadgen(env, cfg, 150, [p.pid for p in servers] + [redis.proc.pid], out)
    finally:
        for proc in servers:
            suite.stop(proc)
    if out.error:
        return {"error": out.error}
    return {"deliveries_per_s": round(out.result["rate"]), "p50_ms": out.result["latency_ms"].get("p50"),
            "incomplete_rounds": out.result.get("incomplete_rounds", 0),
            "server_cpu": round(out.server_cpu.get("saturation", 0.0), 2)}


def part_nodes(args: argparse.Namespace, env: Any, redis: Any) -> dict[str, Any]:
    best: dict[str, dict[str, Any]] = {}
    for round_no in range(args.rounds):
        for name in SETUPS:
            result = broadcast_run(env, redis, name, args)
            suite.log(f"round {round_no + 1} {name}: {result}")
            kept = best.get(name)
            if kept is None or result.get("deliveries_per_s", -1) > kept.get("deliveries_per_s", -1):
                best[name] = result
    return best


# ---------------------------------------------------------------- part "formats"


def rooms_run(fmt: str, redis: Any, env: Any, args: argparse.Namespace) -> dict[str, Any]:
    processes, clients, messages = 3, args.room_clients, args.room_messages
    ports = [suite.free_port() for _ in range(processes)]
    servers = [start(fmt, port, redis.url, env, fmt) for port in ports]
    try:
        for proc, port in zip(servers, ports):
            suite.wait_port(port, proc)
        ctx = multiprocessing.get_context("spawn")
        assignment = [ports[i % processes] for i in range(clients)]
        workers, pipes = [], []
        for w in range(2):
            mine = list(range(w, clients, 2))
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_indexed_worker, args=([assignment[i] for i in mine], mine, messages // clients,
                                                             child), daemon=True)
            proc.start()
            workers.append(proc)
            pipes.append(parent)
        for pipe in pipes:
            if not pipe.poll(120) or pipe.recv() != "connected":
                raise TimeoutError("room clients did not connect")
        cpu_before = sum(suite.cpu_seconds(p.pid) for p in servers)

        async def trigger() -> float:
            conn = await redis_bench.raw_client(ports[0])
            began = time.monotonic()
            for pipe in pipes:
                pipe.send("go")
            await conn.write_message(f'420["rooms blast",{messages},{clients},{args.payload}]')
            conn.close()
            return began

        began = asyncio.run(trigger())
        ends = []
        for pipe in pipes:
            if not pipe.poll(150):
                raise TimeoutError("room clients did not receive everything")
            ends.append(pipe.recv())
        cpu = sum(suite.cpu_seconds(p.pid) for p in servers) - cpu_before
        for proc in workers:
            proc.join(10)
        seconds = max(ends) - began
        return {"deliveries_per_s": round(messages / seconds), "server_cpu_s_per_1000": round(1000 * cpu / messages, 3)}
    finally:
        for proc in servers:
            suite.stop(proc)


def _indexed_worker(ports: list[int], rooms: list[int], share: int, pipe: Any) -> None:
    async def main() -> None:
        conns = []
        for port, room in zip(ports, rooms):
            conn = await redis_bench.raw_client(port)
            await conn.write_message(f'421["join","u{room}"]')
            while True:
                frame = await conn.read_message()
                if frame is None or frame.startswith("431"):
                    break
            conns.append(conn)
        pipe.send("connected")
        pipe.recv()
        done = await asyncio.wait_for(asyncio.gather(*(redis_bench.count_until(c, share) for c in conns)), 120)
        pipe.send(max(done))
        for conn in conns:
            conn.close()

    asyncio.run(main())


def part_formats(args: argparse.Namespace, env: Any, redis: Any) -> dict[str, Any]:
    best: dict[str, dict[str, Any]] = {}
    for round_no in range(args.rounds):
        for fmt in ("native", "python-socketio"):
            result = rooms_run(fmt, redis, env, args)
            suite.log(f"round {round_no + 1} {fmt}: {result}")
            if fmt not in best or result["deliveries_per_s"] > best[fmt]["deliveries_per_s"]:
                best[fmt] = result
    return best


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "nodes", "formats"), default="all")
    parser.add_argument("--clients", type=int, default=1000, help="broadcast clients over the two processes")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per broadcast run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per setup, alternating; the best is kept")
    parser.add_argument("--room-clients", type=int, default=60)
    parser.add_argument("--room-messages", type=int, default=12000)
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and load generator to CPUs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--format", default="native", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.redis, args.format)
        return
    suite.raise_nofile()
    if not suite.ensure_node_packages(need_redis_adapter=True):
        sys.exit("npm packages @socket.io/redis-adapter@8 and redis@4 are needed")
    if suite.redis_available() is not None:
        sys.exit(suite.redis_available())
    env = suite.Env(pin=not args.no_pin and (os.cpu_count() or 1) >= 2)
    redis = suite.Redis(env)
    results: dict[str, Any] = {"clients": args.clients}
    try:
        if args.part in ("all", "nodes"):
            results["broadcast"] = part_nodes(args, env, redis)
        if args.part in ("all", "formats"):
            results["formats"] = part_formats(args, env, redis)
    finally:
        redis.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, r in results.get("broadcast", {}).items():
        print(f"{name:<42}{r.get('deliveries_per_s', r.get('error')):>12} deliveries/s  p50 {r.get('p50_ms')} ms"
              f"  server CPU {r.get('server_cpu')}")
    for fmt, r in results.get("formats", {}).items():
        print(f"rooms, {fmt:<35}{r['deliveries_per_s']:>12} deliveries/s  {r['server_cpu_s_per_1000']} CPU s/1000")


if __name__ == "__main__":
    main()
