"""Handlers that ``tests/redis_app.py --plugin tests.test_redis_streams_app`` adds to a
child server for the Streams and recovery tests (no tests here; pytest collects none).

    (auth {"refuse": true})      a connection middleware refuses: CONNECT_ERROR
                                 {"message": "refused by middleware", "data": {"port": N}}
    set data, key, value         socket_data[key] = value -> "ok"
    emit flagged, room, event, data, {"volatile": bool, "local": bool}
                                 socketio.emit(...) with those flags -> "ok"
    emit many, room, event, count
                                 emits event 0..count-1 to room, in order -> "ok" once all are on Redis
    adapter                      -> {"transport": "streams"|"pubsub", "position": last entry read}
    close my transport           -> "closing"; then the server closes the caller's transport
                                 ("forced close": a recoverable disconnect)
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def install(socketio: Any, args: argparse.Namespace) -> None:
    """Register the handlers above on every namespace of *socketio*."""
    from tornado_sio import ConnectionRefusedError, request, socket_data
    from tornado_sio.adapter.redis.streams import StreamLink

    def refuse(sid: str, auth: Any, environ: Any) -> None:
        if isinstance(auth, dict) and auth.get("refuse"):
            raise ConnectionRefusedError("refused by middleware", {"port": args.port})

    socketio.use(refuse, namespace="*")

    def set_data(key: str, value: Any) -> str:
        socket_data[key] = value
        return "ok"

    def emit_flagged(room: Any, event: str, data: Any, flags: dict) -> str:
        socketio.emit(event, data, to=room or None, namespace=request.namespace,
                      volatile=bool(flags.get("volatile")), local=bool(flags.get("local")))
        return "ok"

    async def emit_many(room: Any, event: str, count: int) -> str:
        for i in range(count):
            socketio.emit(event, i, to=room or None, namespace=request.namespace)
        await socketio.adapter.flush()  # every one is on Redis when the caller hears "ok"
        return "ok"

    def adapter() -> dict:
        link = socketio.adapter.link
        stream = isinstance(link, StreamLink)
        return {"transport": "streams" if stream else "pubsub", "position": link.position if stream else None}

    def close_my_transport() -> str:
        socket = socketio.adapter.get_socket(request.sid)
        asyncio.get_running_loop().call_later(0.05, socket.client.conn.close, "forced close")
        return "closing"

    for namespace in ("/", "/test"):
        socketio.on_event("close my transport", close_my_transport, namespace=namespace)
        socketio.on_event("set data", set_data, namespace=namespace)
        socketio.on_event("emit flagged", emit_flagged, namespace=namespace)
        socketio.on_event("emit many", emit_many, namespace=namespace)
        socketio.on_event("adapter", adapter, namespace=namespace)
