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

from tornado_sio import SocketIO, emit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default=None, help="message queue URL (cross-process scenario)")
    args = parser.parse_args()

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
