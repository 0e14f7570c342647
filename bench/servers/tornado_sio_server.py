"""Benchmark server: tornado-sio (the library in this repository).

Behaviour shared by every server in bench/servers/:
  'echo'     -> emit 'echo' back to the sender with the same arguments
  'echo_ack' -> return the arguments as the acknowledgement
  'bcast'    -> broadcast 'bcast' with the same arguments to the whole namespace

    python bench/servers/tornado_sio_server.py --port 8000 [--redis redis://127.0.0.1:6379/0]
        [--loop asyncio|uvloop] [--gc default|managed] [--gc-report FILE] [--ping-interval S] [--metrics]

--loop uvloop runs on uvloop (tornado_sio.runtime.run); --gc managed applies
tornado_sio.runtime.ManagedGC once listening; --gc-report writes the GC pauses
measured with gc.callbacks (tornado_sio.runtime.GCPauses) and the heartbeat
sweep's figures as JSON on SIGUSR2 and at exit (the soak in bench/soak.py reads it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import tornado.web


def _trace_allocations(directory: str) -> None:
    import signal
    import tracemalloc

    tracemalloc.start(12)
    count = [0]

    def dump(*_: object) -> None:
        import gc

        gc.collect()
        count[0] += 1
        with open(os.path.join(directory, f"snapshot-{count[0]}.gc"), "w", encoding="utf-8") as fh:
            fh.write(str(len(gc.get_objects())))  # GC-tracked objects (what a full collection walks)
        tracemalloc.take_snapshot().dump(os.path.join(directory, f"snapshot-{count[0]}.pickle"))

    signal.signal(signal.SIGUSR1, dump)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default=None, help="message queue URL (cross-process scenario)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="event loop (default asyncio: the same loop as before unless asked)")
    parser.add_argument("--gc", choices=("default", "managed"), default="default",
                        help="managed: tornado_sio.runtime.ManagedGC once listening")
    parser.add_argument("--gc-report", default=None, metavar="FILE",
                        help="measure GC pauses and sweep ticks; write them as JSON on SIGUSR2 and at exit")
    parser.add_argument("--ping-interval", type=float, default=None, help="Engine.IO ping interval, s")
    parser.add_argument("--metrics", action="store_true",
                        help="SocketIO(metrics=True), scraped (rendered) once a second as Prometheus would")
    parser.add_argument("--tracemalloc", default=None, metavar="DIR",
                        help="trace allocations; each SIGUSR1 writes DIR/snapshot-N.pickle (bench/profile_server.py)")
    args = parser.parse_args()
    if args.tracemalloc:
        _trace_allocations(args.tracemalloc)

    from tornado_sio import SocketIO, emit, runtime
    from tornado_sio.http.front import listen

    kwargs = {"message_queue": args.redis} if args.redis else {}
    if args.ping_interval:
        kwargs["ping_interval"] = args.ping_interval
    if args.metrics:
        kwargs["metrics"] = True
    sio = SocketIO(cors_allowed_origins="*", **kwargs)

    @sio.on("echo")
    def echo(*a):
        emit("echo", *a)

    @sio.on("echo_ack")
    def echo_ack(*a):
        return a

    @sio.on("bcast")
    def bcast(*a):
        sio.emit("bcast", *a)

    pauses = runtime.GCPauses(keep=20000).start() if args.gc_report else None

    def report(*_: object) -> None:
        if args.gc_report and pauses is not None:
            data = {"gc": pauses.summary(), "gc_slow": [list(entry) for entry in pauses.slow],
                    "loop": loop_used[0], "sessions": len(sio.engine.sessions)}
            stats = getattr(sio.engine, "heartbeat_stats", None)
            if callable(stats):
                data["heartbeat"] = stats()
            with open(args.gc_report + ".tmp", "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(args.gc_report + ".tmp", args.gc_report)

    loop_used = ["?"]

    async def run() -> None:
        import signal

        await sio.start()
        app = tornado.web.Application(sio.routes())
        listen(app, args.port, "127.0.0.1", backlog=2048)  # as SocketIO.run: the polling fast lane in front
        loop = asyncio.get_running_loop()
        loop_used[0] = runtime.loop_name(loop)
        if args.metrics:
            def scrape() -> None:
                sio.metrics.render()
                loop.call_later(1.0, scrape)

            loop.call_later(1.0, scrape)
        if args.gc == "managed":
            runtime.ManagedGC().start()
        if args.gc_report:
            loop.add_signal_handler(signal.SIGUSR2, report)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print(f"READY {args.port} loop={loop_used[0]} gc={args.gc}", flush=True)
        await stop.wait()
        report()

    runtime.run(run(), args.loop)


if __name__ == "__main__":
    main()
