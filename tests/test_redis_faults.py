"""Faults around the Redis message queue: Redis missing at start, Redis going away
and coming back, a stopped process, the subscriber task dying, and messages that
must be ignored (unknown version, other channel, garbage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
import tornado.httpserver
import tornado.testing
import tornado.web

from tests import support

support.need_python_module("socketio")
support.need_python_module("redis")

from tests.apps import async_test
from tests.redis_support import (
    Client,
    RedisServer,
    app_processes,
    close_all,
    connect_all,
    redis_server,
    settle,
)
from tornado_sio import MessageQueueError, SocketIO, join_room
from tornado_sio.adapter.redis import WIRE_VERSION, RedisAdapter
from tornado_sio.adapter.redis.wire import dump

pytestmark = pytest.mark.timeout(60)


class _Local:
    def __init__(self, socketio: SocketIO, port: int) -> None:
        self.socketio = socketio
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    @property
    def adapter(self) -> RedisAdapter:
        adapter = self.socketio.adapter
        assert isinstance(adapter, RedisAdapter)
        return adapter


@contextlib.asynccontextmanager
async def local_server(redis_url: str, **options: Any) -> AsyncIterator[_Local]:
    """A tornado-sio server with a RedisAdapter in this process and loop."""
    socketio = SocketIO(message_queue=redis_url,
                        message_queue_options={"reconnect_delay": 0.05, "reconnect_max_delay": 0.5,
                                               "health_interval": 0.5, **options})

    @socketio.on("join")
    async def on_join(room: str) -> str:
        join_room(room)
        await socketio.adapter.sync()  # type: ignore[attr-defined]
        return "joined"

    await socketio.start()
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(tornado.web.Application(socketio.routes()))
    server.add_sockets([sock])
    try:
        yield _Local(socketio, port)
    finally:
        server.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(socketio.shutdown(timeout=2), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.close_all_connections(), 5)


@async_test(20)
async def test_unreachable_redis_at_start_raises_message_queue_error_naming_the_url():
    port = support.free_port()  # nothing listens there
    socketio = SocketIO(message_queue=f"redis://:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(MessageQueueError) as info:
        await asyncio.wait_for(socketio.start(), 15)
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text and "s3cret" not in text
    assert text.split(": ", 1)[1]  # the reason, not only the URL
    assert not socketio.adapter.connected  # type: ignore[attr-defined]


@async_test(45)
async def test_redis_outage_keeps_local_delivery_and_cross_process_delivery_resumes():
    redis = RedisServer().start()  # our own: it gets killed
    try:
        with app_processes(redis.url, 2) as (p0, p1):
            a, a2, b = await connect_all([(p0, ["/"]), (p0, ["/"]), (p1, ["/"])])
            try:
                assert await a.ask("join", "local room") == "joined"
                assert await a2.ask("join", "local room") == "joined"
                assert await a.ask("broadcast", "before", 0) == "ok"
                for c in (a, a2, b):
                    await c.expect("before")

                redis.kill()
                for proc_client in (a, b):
                    for _ in range(250):
                        if not (await proc_client.ask("status"))["connected"]:
                            break
                        await asyncio.sleep(0.02)
                    else:
                        raise AssertionError("the adapter did not notice Redis going away")
                # local clients keep working; local emits are still delivered
                assert await a.ask("broadcast", "during", 1) == "ok"
                assert await a2.ask("to room", "local room", "room during", 2) == "ok"
                await a.expect("during")
                await a2.expect("during")
                await a.expect("room during")
                await a2.expect("room during")

                redis.start()  # same port, empty: every subscription is gone
                for proc_client in (a, b):
                    for _ in range(500):
                        if (await proc_client.ask("status"))["connected"]:
                            break
                        await asyncio.sleep(0.02)
                    else:
                        raise AssertionError("the adapter did not reconnect to Redis")
                # cross-process delivery resumes by itself, rooms included
                assert await b.ask("broadcast", "after", 3) == "ok"
                assert await b.ask("to room", "local room", "room after", 4) == "ok"
                for c in (a, a2, b):
                    await c.expect("after")
                await a.expect("room after")
                await a2.expect("room after")
                await settle()
                for c in (a, a2, b):
                    assert c.got("before") == [[0]] and c.got("after") == [[3]]
                assert b.got("during") == []  # lost in the outage, as documented
                assert a.got("room after") == a2.got("room after") == [[4]]
                logs = p0.output()
                assert logs.count("lost the connection to Redis") == 1, logs
                assert logs.count("reconnected to Redis") == 1, logs
            finally:
                await close_all([a, a2, b])
    finally:
        redis.stop()


@async_test(40)
async def test_a_stopped_process_does_not_hold_up_the_others():
    with redis_server() as redis, app_processes(redis.url, 3) as (p0, p1, frozen):
        a, b, f = await connect_all([(p0, ["/"]), (p1, ["/"]), (frozen, ["/"])])
        try:
            os.kill(frozen.proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
            try:
                for i in range(20):
                    assert await a.ask("broadcast", "while frozen", i) == "ok"
                assert await b.ask("call", a.sid["/"], "anything", 1) == ["ok", None]
                await b.expect("while frozen", count=20)
            finally:
                os.kill(frozen.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
            # Redis kept the frozen process's messages: it catches up, in order
            await f.expect("while frozen", count=20)
            assert f.got("while frozen") == [[i] for i in range(20)]
        finally:
            await close_all([a, b, f])


@async_test(30)
async def test_unknown_version_other_channel_and_garbage_are_ignored_with_a_log_line(caplog):
    import redis.asyncio as aioredis

    caplog.set_level(logging.INFO, logger="tornado_sio.redis")
    with redis_server() as redis:
        async with local_server(redis.url) as server:
            client = Client("local")
            await client.connect(server)
            publisher = aioredis.Redis.from_url(redis.url)
            try:
                channel = b"tornado-sio#/#"

                def message(**over: Any) -> dict:
                    base = {"v": WIRE_VERSION, "ch": "tornado-sio", "src": "test", "op": "emit", "ns": "/",
                            "to": None, "json": '["hi",1]'}
                    base.update(over)
                    return base

                await publisher.publish(channel, dump(message(v=99, json='["v99"]')))
                await publisher.publish(channel, dump(message(ch="another-app", json='["other"]')))
                await publisher.publish(channel, b"\x80\x04garbage")
                await publisher.publish(channel, b"not json at all")
                await publisher.publish(channel, dump(message(op="launch")))
                await publisher.publish(channel, dump(message(json='["msgpack",2]'), "msgpack"))
                await publisher.publish(channel, dump(message(json='["json",3]')))
                await client.expect("json")
                await client.expect("msgpack")
                await settle(0.1)
                assert [m["event"] for m in client.inbox] == ["msgpack", "json"]
                text = caplog.text
                assert "unknown wire version 99" in text
                assert "from channel 'another-app'" in text
                assert text.count("undecodable") == 2
                assert "unknown op 'launch'" in text
            finally:
                await publisher.aclose()
                await client.close()


@async_test(30)
async def test_a_dead_subscriber_task_is_restarted_and_logged(caplog):
    from tornado_sio.emitter import Emitter

    caplog.set_level(logging.INFO, logger="tornado_sio.redis")
    with redis_server() as redis:
        async with local_server(redis.url) as server:
            client = Client("local")
            await client.connect(server)
            try:
                link = server.adapter.link
                old = {name: link.tasks[name] for name in ("subscriber", "publisher")}
                for task in old.values():
                    task.cancel()
                for _ in range(250):
                    if link.connected and all(link.tasks.get(n) not in (None, t) for n, t in old.items()):
                        break
                    await asyncio.sleep(0.02)
                else:
                    raise AssertionError(f"not restarted: {link.tasks}, connected={link.connected}")
                assert "the subscriber task stopped unexpectedly (cancelled); restarting it" in caplog.text
                assert "the publisher task stopped unexpectedly (cancelled); restarting it" in caplog.text
                # it hears again: an emit from outside reaches the client, a join works
                assert await client.ask("join", "again") == "joined"
                with Emitter(redis.url) as emitter:
                    assert await asyncio.to_thread(emitter.emit, "back", 1, to="again") == 1
                await client.expect("back")
            finally:
                await client.close()
