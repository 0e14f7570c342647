"""Benchmark server: python-socketio's AsyncServer, on Tornado or as an ASGI app
on uvicorn (uvicorn[standard]: uvloop, httptools, websockets; access log off).
Same behaviour as tornado_sio_server.py.

    python bench/servers/pysio_server.py --on tornado --port 8000 [--redis URL]
    python bench/servers/pysio_server.py --on uvicorn --port 8000 [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio

import socketio


def make_server(async_mode: str, redis_url: str | None) -> socketio.AsyncServer:
    """The AsyncServer with the bench handlers: echo, echo_ack, bcast."""
    mgr = socketio.AsyncRedisManager(redis_url) if redis_url else None
    sio = socketio.AsyncServer(async_mode=async_mode, cors_allowed_origins="*", client_manager=mgr)

    @sio.on("echo")
    async def echo(sid, *a):
        await sio.emit("echo", a, to=sid)

    @sio.on("echo_ack")
    async def echo_ack(sid, *a):
        return a

    @sio.on("bcast")
    async def bcast(sid, *a):
        await sio.emit("bcast", a)

    return sio


def run_tornado(port: int, redis_url: str | None) -> None:
    import tornado.web

    async def run() -> None:
        sio = make_server("tornado", redis_url)
        app = tornado.web.Application([(r"/socket.io/", socketio.get_tornado_handler(sio))])
        app.listen(port, "127.0.0.1")
        print(f"READY {port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


def run_uvicorn(port: int, redis_url: str | None) -> None:
    import uvicorn

    app = socketio.ASGIApp(make_server("asgi", redis_url))
    print(f"READY {port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=2048)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--on", choices=("tornado", "uvicorn"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    (run_tornado if args.on == "tornado" else run_uvicorn)(args.port, args.redis)


if __name__ == "__main__":
    main()
