"""Benchmark server: python-socketio's AsyncServer on Tornado (same behaviour as
tornado_sio_server.py).

    python bench/servers/pysio_tornado_server.py --port 8000 [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio

import socketio
import tornado.web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()

    mgr = socketio.AsyncRedisManager(args.redis) if args.redis else None
    sio = socketio.AsyncServer(async_mode="tornado", cors_allowed_origins="*", client_manager=mgr)

    @sio.on("echo")
    async def echo(sid, *a):
        await sio.emit("echo", a, to=sid)

    @sio.on("echo_ack")
    async def echo_ack(sid, *a):
        return a

    @sio.on("bcast")
    async def bcast(sid, *a):
        await sio.emit("bcast", a)

    async def run() -> None:
        app = tornado.web.Application([(r"/socket.io/", socketio.get_tornado_handler(sio))])
        app.listen(args.port, "127.0.0.1")
        print(f"READY {args.port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
