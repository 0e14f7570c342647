#!/usr/bin/env python3
"""A small server for the Redis cluster tests, run as a child process.

    python tests/redis_app.py --port N --redis redis://127.0.0.1:P/0 [--format python-socketio]
    python tests/redis_app.py --port N --redis URL --impl python-socketio   # python-socketio's own server
    python tests/redis_app.py --port N --redis URL --transport streams --recovery 30 \
        --plugin tests.test_redis_streams_app   # Redis Streams, recovery, more handlers

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
    parser.add_argument("--format", default="native", choices=["native", "python-socketio", "flask-socketio", "node"])
    parser.add_argument("--serializer", default="json", choices=["json", "msgpack"])
    # the Socket.IO parser its clients speak (SocketIO(serializer=...); tests/test_msgpack_redis.py)
    parser.add_argument("--parser", default="json", choices=["json", "msgpack"])
    parser.add_argument("--node-key", default=None)
    parser.add_argument("--impl", default="tornado", choices=["tornado", "python-socketio", "flask-socketio"])
    parser.add_argument("--reconnect-max", type=float, default=1.0)
    parser.add_argument("--health", type=float, default=1.0)
    # Redis Streams and connection state recovery (tests/test_redis_streams*.py, test_redis_recovery*.py)
    parser.add_argument("--transport", default=None, choices=["pubsub", "streams"])
    parser.add_argument("--recovery", type=float, default=None, help="max_disconnection_duration; recovery on")
    parser.add_argument("--max-packets", type=int, default=1000)
    parser.add_argument("--stream-maxlen", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="heartbeats every 0.2 s, requests_timeout 2 s")
    parser.add_argument("--plugin", default=None, help="a tests module whose install(socketio, args) adds handlers")
    # Redis Cluster (tests/test_redis_sharded*.py): --redis redis+cluster://host:port,...
    parser.add_argument("--classic", action="store_true", help="Redis Cluster with classic PUBLISH, not sharded")
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
        socket_data,
    )
    from tornado_sio.adapter.redis import RedisAdapter

    options = {"format": args.format, "serializer": args.serializer, "node_emitter_key": args.node_key,
               "reconnect_delay": 0.1, "reconnect_max_delay": args.reconnect_max,
               "health_interval": args.health, "connect_timeout": 2.0}
    if args.format == "node":  # Node's adapter format: msgpack, the key is the channel
        del options["serializer"], options["node_emitter_key"]
    if args.transport:
        options["transport"] = args.transport
    if args.stream_maxlen:
        options["stream_maxlen"] = args.stream_maxlen
    if args.quick:
        options.update(heartbeat_interval=0.2, heartbeat_timeout=1.0, requests_timeout=2.0)
    if args.classic:
        options["sharded"] = False
    recovery = None if args.recovery is None else {"max_disconnection_duration": args.recovery,
                                                   "max_packets": args.max_packets}
    socketio = SocketIO(cors_allowed_origins="*", namespaces=list(NAMESPACES), message_queue=args.redis,
                        channel=args.channel, message_queue_options=options, connection_state_recovery=recovery,
                        serializer=args.parser)
    if args.plugin:  # more handlers, from a tests module
        __import__(args.plugin, fromlist=["install"]).install(socketio, args)
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
        return await cluster_event(event, ns, *data)

    async def cluster_event(event: str, ns: str, *data: Any) -> Any:
        """Node's server API from a client, for tests/test_redis_mixed*.py (``to`` is a list of rooms)."""
        if event == "fetch":
            found = await socketio.fetch_sockets(data[0] or None, namespace=ns)
            return sorted(({"id": s.sid, "rooms": sorted(s.rooms), "data": s.data, "query": s.handshake.get("query"),
                            "auth": s.handshake.get("auth")} for s in found), key=lambda s: s["id"])
        if event in ("sockets join", "sockets leave"):
            operation = socketio.sockets_join if event == "sockets join" else socketio.sockets_leave
            operation(data[1], to=data[0] or None, namespace=ns)
            return "ok"
        if event == "disconnect sockets":
            socketio.disconnect_sockets(to=data[0] or None, namespace=ns, close=bool(data[1]))
            return "ok"
        if event == "sse":
            socketio.server_side_emit(data[0], *data[1], namespace=ns)
            return "ok"
        if event == "sse call":
            return await socketio.server_side_call(data[0], *data[1], namespace=ns, timeout=data[2])
        if event == "call many":
            return await socketio.call(data[1], *data[2], to=data[0] or None, broadcast=not data[0], namespace=ns,
                                       timeout=data[3])
        if event == "all rooms":
            return sorted(await mq.all_rooms(ns)) if hasattr(mq, "all_rooms") else None
        if event == "server count":
            return await mq.server_count()
        if event == "sse seen":
            return seen
        return None

    seen: list[Any] = []

    @socketio.on_server_event("new-order")
    def new_order(*args: Any) -> Any:
        seen.append(list(args))
        return {"from": "tornado", "port": args_port}

    args_port = args.port

    def on_connect(auth: Any = None) -> None:
        socket_data.update(impl="tornado", port=args.port)  # what fetch_sockets shows of it, anywhere

    for namespace in NAMESPACES:
        socketio.on_event("*", any_event, namespace=namespace)
        socketio.on_event("connect", on_connect, namespace=namespace)
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


def run_flask_socketio(args: argparse.Namespace) -> None:
    """An unchanged Flask-SocketIO app (threading mode, default channel ``flask-socketio``), "/" only."""
    from flask import Flask
    from flask import request as flask_request
    from flask_socketio import SocketIO as FlaskSocketIO
    from flask_socketio import emit as flask_emit
    from flask_socketio import join_room as flask_join
    from flask_socketio import rooms as flask_rooms

    app = Flask(__name__)
    sio = FlaskSocketIO(app, message_queue=args.redis, async_mode="threading", cors_allowed_origins="*")

    @sio.on("whoami")
    def whoami() -> Any:
        return {"sid": flask_request.sid, "port": args.port, "pid": os.getpid()}  # type: ignore[attr-defined]

    @sio.on("join")
    def join(room: str) -> Any:
        flask_join(room)
        return "joined"

    @sio.on("broadcast")
    def broadcast(event: str, data: Any) -> Any:
        flask_emit(event, data, broadcast=True)
        return "ok"

    @sio.on("to room")
    def to_room(room: str, event: str, data: Any) -> Any:
        sio.emit(event, data, to=room)
        return "ok"

    @sio.on("my rooms")
    def my_rooms() -> Any:
        return sorted(flask_rooms())

    sio.run(app, host="127.0.0.1", port=args.port, allow_unsafe_werkzeug=True, log_output=False)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s [{args.impl}:{args.port}] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    if args.impl == "tornado":
        run_tornado(args)
    elif args.impl == "flask-socketio":
        run_flask_socketio(args)
    else:
        run_python_socketio(args)


if __name__ == "__main__":
    main()
