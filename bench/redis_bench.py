#!/usr/bin/env python3
"""Cross-process broadcast throughput over Redis, against one process alone.

    python bench/redis_bench.py                      # starts its own redis-server
    python bench/redis_bench.py --redis redis://127.0.0.1:6379/0 --processes 4 --clients 200

Two runs with the same clients and the same broadcasts:

* ``single``: one tornado-sio process without a message queue; every client on it.
* ``cluster``: N processes on one Redis, the clients spread evenly; the
  broadcasts are emitted in process 0, so (N-1)/N of the deliveries cross Redis.

A run: every client connects (raw Engine.IO v4 over WebSocket, counted in
``--workers`` client processes so the clients are not the bottleneck), one
client asks its server to emit ``--messages`` broadcasts of ``--payload`` bytes
back to back, and the clock stops when every client has received every one.
Reported: deliveries (clients x messages) per second, and the cluster's rate
as a fraction of the single process's. Everything binds 127.0.0.1; every child
is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- the server


def serve(port: int, redis_url: str | None, transport: str = "pubsub") -> None:
    import logging

    import tornado.web

    from tornado_sio import SocketIO

    logging.basicConfig(level=logging.WARNING)
    socketio = SocketIO(message_queue=redis_url, max_send_buffer=64_000_000,
                        message_queue_options={"transport": transport} if redis_url else {})

    @socketio.on("blast")
    async def blast(count: int, size: int) -> str:
        if redis_url:
            await socketio.adapter.sync()  # type: ignore[attr-defined]
        payload = "x" * size
        for i in range(count):
            socketio.emit("b", i, payload)
            if i % 200 == 199:
                await asyncio.sleep(0)  # let the writes and the publisher run
        return "sent"

    @socketio.on("ready")
    async def ready() -> bool:
        if redis_url:
            return await socketio.adapter.sync()  # type: ignore[attr-defined]
        return True

    socketio.run(tornado.web.Application(socketio.routes()), host="127.0.0.1", port=port)


# ---------------------------------------------------------------- raw clients


async def raw_client(port: int):
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
                                   max_message_size=16_000_000)
    opening = await conn.read_message()
    assert isinstance(opening, str) and opening.startswith("0"), opening
    await conn.write_message("40")
    while True:
        frame = await conn.read_message()
        if isinstance(frame, str) and frame.startswith("40"):
            return conn


async def count_until(conn: Any, expected: int) -> float:
    """Read until *expected* broadcast frames arrived; return the monotonic time then."""
    got = 0
    while got < expected:
        frame = await conn.read_message()
        if frame is None:
            raise ConnectionError("server closed the connection")
        if frame == "2":
            await conn.write_message("3")
        elif frame.startswith("42"):
            got += 1
    return time.monotonic()


def client_worker(ports: list[int], messages: int, pipe: Any) -> None:
    async def main() -> None:
        conns = [await raw_client(port) for port in ports]
        for conn in conns:  # each client's subscriptions are active before the run
            await conn.write_message('421["ready"]')
        pipe.send("connected")
        pipe.recv()  # "go"
        done = await asyncio.wait_for(asyncio.gather(*(count_until(c, messages) for c in conns)), 600)
        pipe.send(max(done))
        for conn in conns:
            conn.close()

    asyncio.run(main())


# ---------------------------------------------------------------- a run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def run(processes: int, redis_url: str | None, clients: int, messages: int, size: int, workers: int,
        transport: str = "pubsub") -> float:
    ports = [free_port() for _ in range(processes)]
    servers = [subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--transport", transport]
                                + (["--redis", redis_url] if redis_url else []), cwd=str(ROOT))
               for port in ports]
    try:
        for port, proc in zip(ports, servers):
            wait_port(port, proc)
        assignment = [ports[i % processes] for i in range(clients)]
        ctx = multiprocessing.get_context("spawn")
        pipes, children = [], []
        for w in range(workers):
            mine = assignment[w::workers]
            if not mine:
                continue
            parent, child = ctx.Pipe()
            p = ctx.Process(target=client_worker, args=(mine, messages, child), daemon=True)
            p.start()
            pipes.append(parent)
            children.append(p)
        for pipe in pipes:
            if not pipe.poll(120):
                raise TimeoutError("client workers did not connect")
            assert pipe.recv() == "connected"

        async def trigger() -> float:
            conn = await raw_client(ports[0])
            start = time.monotonic()
            for pipe in pipes:
                pipe.send("go")
            await conn.write_message(f'420["blast",{messages},{size}]')
            conn.close()
            return start

        start = asyncio.run(trigger())
        ends = []
        for pipe in pipes:
            if not pipe.poll(600):
                raise TimeoutError("client workers did not receive everything")
            ends.append(pipe.recv())
        for p in children:
            p.join(10)
        return max(ends) - start
    finally:
        for proc in servers:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--payload", type=int, default=100, help="bytes of text per broadcast")
    parser.add_argument("--workers", type=int, default=max(1, min(4, (os.cpu_count() or 2) - 1)),
                        help="client processes")
    parser.add_argument("--redis", help="use this Redis instead of starting redis-server")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--transport", choices=["pubsub", "streams"], default="pubsub",
                        help="the Redis adapter's transport (docs/redis.md)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.redis, args.transport)
        return

    redis_proc = None
    redis_url = args.redis
    if redis_url is None:
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("redis-server is not installed (or pass --redis URL)")
        port = free_port()
        redis_proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no"], stdout=subprocess.DEVNULL)
        wait_port(port, redis_proc)
        redis_url = f"redis://127.0.0.1:{port}/0"
    try:
        deliveries = args.clients * args.messages
        single = run(1, None, args.clients, args.messages, args.payload, args.workers)
        cluster = run(args.processes, redis_url, args.clients, args.messages, args.payload, args.workers,
                      args.transport)
    finally:
        if redis_proc is not None:
            stop(redis_proc)
    results = {
        "clients": args.clients, "messages": args.messages, "payload": args.payload, "deliveries": deliveries,
        "single": {"processes": 1, "seconds": round(single, 3), "deliveries_per_s": round(deliveries / single)},
        "cluster": {"processes": args.processes, "transport": args.transport, "seconds": round(cluster, 3),
                    "deliveries_per_s": round(deliveries / cluster)},
        "cluster_vs_single": round(single / cluster, 2),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.clients} clients x {args.messages} broadcasts of {args.payload} B = {deliveries} deliveries")
    print(f"{'mode':<10}{'processes':>10}{'seconds':>10}{'deliveries/s':>15}")
    for mode in ("single", "cluster"):
        r = results[mode]
        print(f"{mode:<10}{r['processes']:>10}{r['seconds']:>10.3f}{r['deliveries_per_s']:>15,}")
    print(f"cluster / single throughput: {results['cluster_vs_single']:.2f}x")


if __name__ == "__main__":
    main()
