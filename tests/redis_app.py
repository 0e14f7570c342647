#!/usr/bin/env python3
"""A small server for the Redis cluster tests, run as a child process.

    python tests/redis_app.py --port N --redis redis://127.0.0.1:P/0 [--format python-socketio]
    python tests/redis_app.py --port N --redis URL --impl python-socketio   # python-socketio's own server

Handlers (every namespace, the ack is the return value):

    whoami                       -> {"sid", "port", "pid"}
    join room / leave room       -> "joined" / "left" (subscriptions confirmed on Redis)
    to room, event, data, include_self=True          emit to a room
    broadcast, event, data, include_self=True        emit to the namespace
    emit skip, event, data, [sids]                   broadcast with skip_sid
    call, sid, event, data[, timeout]  -> ["ok", answer] | ["timeout"] | ["disconnected"]
    emit cb, to, event, data     emit with callback=; each ack comes back as a "callback" event
    enter / leave other, sid, room; close room, room; kick, sid   (any process's clients)
    my rooms                     -> rooms of the caller
    status                       -> {"connected": bool, "dropped": int}
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


NAMESPACES = ("/", "/test")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--channel", default=None)
    parser.add_argument("--format", default="native", choices=["native", "python-socketio"])
    parser.add_argument("--serializer", default="json", choices=["json", "msgpack"])
    parser.add_argument("--node-key", default=None)
    parser.add_argument("--impl", default="tornado", choices=["tornado", "python-socketio"])
    parser.add_argument("--reconnect-max", type=float, default=1.0)
    parser.add_argument("--health", type=float, default=1.0)
    return parser.parse_args()


def run_tornado(args: argparse.Namespace) -> None:
    import tornado.web

    from tornado_sio import (
        AckTimeout,
        DisconnectedError,
        SocketIO,
        emit,
        join_room,
        leave_room,
        request,
        rooms,
    )
    from tornado_sio.adapter.redis import RedisAdapter

    options = {"format": args.format, "serializer": args.serializer, "node_emitter_key": args.node_key,
               "reconnect_delay": 0.1, "reconnect_max_delay": args.reconnect_max,
               "health_interval": args.health, "connect_timeout": 2.0}
    socketio = SocketIO(cors_allowed_origins="*", namespaces=list(NAMESPACES), message_queue=args.redis,
                        channel=args.channel, message_queue_options=options)
    mq = socketio.adapter
    assert isinstance(mq, RedisAdapter)

    async def any_event(event: str, *data: Any) -> Any:
        ns = request.namespace
        if event == "whoami":
            return {"sid": request.sid, "port": args.port, "pid": os.getpid()}
        if event == "join":
            join_room(data[0])
            await mq.sync()
            return "joined"
        if event == "leave":
            leave_room(data[0])
            await mq.sync()
            return "left"
        if event == "to room":
            include_self = data[3] if len(data) > 3 else True
            emit(data[1], data[2], to=data[0], include_self=include_self)
            return "ok"
        if event == "broadcast":
            include_self = data[2] if len(data) > 2 else True
            emit(data[0], data[1], broadcast=True, include_self=include_self)
            return "ok"
        if event == "emit skip":
            socketio.emit(data[0], data[1], namespace=ns, skip_sid=data[2])
            return "ok"
        if event == "call":
            try:
                timeout = data[3] if len(data) > 3 else 3
                answer = await socketio.call(data[1], data[2], to=data[0], namespace=ns, timeout=timeout)
            except AckTimeout:
                return ["timeout"]
            except DisconnectedError:
                return ["disconnected"]
            return ["ok", answer]
        if event == "emit cb":
            me = request.sid

            def got(*answer: Any) -> None:
                socketio.emit("callback", list(answer), to=me, namespace=ns)

            socketio.emit(data[1], data[2], to=data[0], namespace=ns, callback=got)
            return "ok"
        if event == "enter":
            socketio.enter_room(data[0], data[1], namespace=ns)
            return "ok"
        if event == "leave other":
            socketio.leave_room(data[0], data[1], namespace=ns)
            return "ok"
        if event == "close room":
            socketio.close_room(data[0], namespace=ns)
            return "ok"
        if event == "kick":
            socketio.disconnect(data[0], namespace=ns)
            return "ok"
        if event == "my rooms":
            await mq.sync()
            return sorted(rooms())
        if event == "status":
            return {"connected": mq.connected, "dropped": mq.dropped}
        return None

    for namespace in NAMESPACES:
        socketio.on_event("*", any_event, namespace=namespace)
    app = tornado.web.Application(socketio.routes())
    socketio.run(app, host="127.0.0.1", port=args.port)


def run_python_socketio(args: argparse.Namespace) -> None:
    import socketio
    from aiohttp import web

    mgr = socketio.AsyncRedisManager(args.redis, channel=args.channel or "socketio")
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=mgr, cors_allowed_origins="*",
                               namespaces=list(NAMESPACES))
    app = web.Application()
    sio.attach(app)

    @sio.on("*", namespace="*")
    async def any_event(event: str, ns: str, sid: str, *data: Any) -> Any:
        if event == "whoami":
            return {"sid": sid, "port": args.port, "pid": os.getpid()}
        if event == "join":
            await sio.enter_room(sid, data[0], namespace=ns)
            return "joined"
        if event == "to room":
            await sio.emit(data[1], data[2], to=data[0], namespace=ns)
            return "ok"
        if event == "broadcast":
            await sio.emit(data[0], data[1], namespace=ns)
            return "ok"
        if event == "enter":
            await sio.enter_room(data[0], data[1], namespace=ns)
            return "ok"
        if event == "kick":
            await sio.disconnect(data[0], namespace=ns)
            return "ok"
        if event == "my rooms":
            return sorted(sio.rooms(sid, namespace=ns))
        if event == "call":
            try:
                answer = await sio.call(data[1], data[2], to=data[0], namespace=ns, timeout=3)
            except Exception as exc:
                return ["error", type(exc).__name__]
            return ["ok", answer]
        return None

    async def main() -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s [{args.impl}:{args.port}] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    if args.impl == "tornado":
        run_tornado(args)
    else:
        run_python_socketio(args)


if __name__ == "__main__":
    main()
