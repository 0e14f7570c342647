"""Benchmark server: tornado-sio (the library in this repository).

Behaviour shared by every server in bench/servers/:
  'echo'     -> emit 'echo' back to the sender with the same arguments
  'echo_ack' -> return the arguments as the acknowledgement
  'bcast'    -> broadcast 'bcast' with the same arguments to the whole namespace

    python bench/servers/tornado_sio_server.py --port 8000 [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import tornado.web  # noqa: E402


def _trace_allocations(directory: str) -> None:
    import signal
    import tracemalloc

    tracemalloc.start(12)
    count = [0]

    def dump(*_: object) -> None:
        import gc

        gc.collect()
        count[0] += 1
        tracemalloc.take_snapshot().dump(os.path.join(directory, f"snapshot-{count[0]}.pickle"))

    signal.signal(signal.SIGUSR1, dump)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default=None, help="message queue URL (cross-process scenario)")
    parser.add_argument("--tracemalloc", default=None, metavar="DIR",
                        help="trace allocations; each SIGUSR1 writes DIR/snapshot-N.pickle (bench/profile_server.py)")
    parser.add_argument("--patch", action="append", default=[],
                        help="apply a candidate optimisation from bench/experiments/patches.py (measuring only)")
    args = parser.parse_args()
    if args.patch:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        from experiments import patches

        patches.apply(args.patch)
    if args.tracemalloc:
        _trace_allocations(args.tracemalloc)

    # imported after the patches (if any), so `emit` is the patched one
    from tornado_sio import SocketIO, emit

    kwargs = {"message_queue": args.redis} if args.redis else {}
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

    async def run() -> None:
        await sio.start()
        app = tornado.web.Application(sio.routes())
        app.listen(args.port, "127.0.0.1")
        print(f"READY {args.port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
