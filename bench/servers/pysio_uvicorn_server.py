"""Benchmark server: python-socketio's AsyncServer as an ASGI app on uvicorn
(uvicorn[standard]: uvloop, httptools, websockets; access log off). Same
behaviour as tornado_sio_server.py.

    python bench/servers/pysio_uvicorn_server.py --port 8000 [--redis URL]
"""

from __future__ import annotations

import argparse

import socketio
import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()

    mgr = socketio.AsyncRedisManager(args.redis) if args.redis else None
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", client_manager=mgr)

    @sio.on("echo")
    async def echo(sid, *a):
        await sio.emit("echo", a, to=sid)

    @sio.on("echo_ack")
    async def echo_ack(sid, *a):
        return a

    @sio.on("bcast")
    async def bcast(sid, *a):
        await sio.emit("bcast", a)

    app = socketio.ASGIApp(sio)
    print(f"READY {args.port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                backlog=2048)


if __name__ == "__main__":
    main()
