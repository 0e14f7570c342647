"""A synchronous, write-only emitter: reach tornado-sio clients from any Python code.

For plain scripts, cron jobs and task workers (Celery, RQ ...) that are not
running an asyncio loop. It publishes the same messages a tornado-sio process
publishes (see ``docs/redis.md``), with the synchronous ``redis`` client::

    from tornado_sio.emitter import Emitter

    emitter = Emitter('redis://localhost:6379/0', channel='tornado-sio')
    emitter.emit('news', {'title': 'hello'}, to='room1', namespace='/feed')
    emitter.emit('tick', 42)                       # every client of namespace '/'
    emitter.enter_room(sid, 'vip', namespace='/')  # a client held by any process
    emitter.close()

It is thread-safe (the redis client pools its connections). Acknowledgements
(``callback=``) need a subscribed process: use ``SocketIO(message_queue=...,
write_only=True)`` in async code for those.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

from .adapter.base import BroadcastOptions, room_set
from .adapter.redis.wire import (
    DEFAULT_CHANNEL,
    Item,
    SocketsOp,
    encode_event,
    make_codec,
    redact_url,
    require_msgpack,
)
from .exceptions import MessageQueueError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Emitter"]

#: ``to=`` / ``skip_sid=``: one room or sid, several, or None.
Targets = Union[None, str, Iterable[str]]


class Emitter:
    """Publish emits and room operations for a tornado-sio cluster, synchronously.

    :param url: ``redis://[:password@]host:port/db``.
    :param channel: the cluster's channel (default ``'tornado-sio'``, or
        ``'socketio'`` with ``format='python-socketio'``).
    :param format: ``'native'`` (tornado-sio) or ``'python-socketio'`` (reaches
        python-socketio / Flask-SocketIO servers and tornado-sio processes in
        that mode).
    :param serializer: ``'json'`` or ``'msgpack'`` (native format).
    :param redis_options: extra keyword arguments for ``redis.Redis.from_url``.
    :param timeout: seconds for connecting and for each PUBLISH.

    The messages are the adapter's own (:mod:`tornado_sio.adapter.redis.wire`),
    so an emit from here and one from a server process are the same bytes.
    """

    def __init__(self, url: str = "redis://localhost:6379/0", channel: str | None = None, *,
                 format: str = "native", serializer: str = "json",
                 redis_options: dict[str, Any] | None = None, timeout: float = 5.0) -> None:
        try:
            import redis  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise MessageQueueError("the emitter needs the redis package: pip install 'tornado-sio[redis]'") from None
        self.url = url
        self.channel = channel or DEFAULT_CHANNEL.get(format, "tornado-sio")
        self.codec = make_codec(format, self.channel, "emitter-" + uuid.uuid4().hex, serializer)
        if serializer == "msgpack":
            require_msgpack()
        options: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
        options.update(redis_options or {})
        try:
            self.redis = redis.Redis.from_url(url, **options)
        except Exception as exc:  # noqa: BLE001 - re-raised as MessageQueueError naming the reason
            raise MessageQueueError(f"invalid message queue URL {redact_url(url)!r}: {exc}") from None

    @property
    def format(self) -> str:
        """``'native'`` or ``'python-socketio'``."""
        return self.codec.format

    def _publish(self, item: Item) -> int:
        try:
            return int(self.redis.publish(*item))
        except Exception as exc:
            raise MessageQueueError(f"cannot publish to Redis at {redact_url(self.url)}: {exc}") from exc

    def _operation(self, op: SocketsOp) -> int:
        return sum(self._publish(item) for item in self.codec.sockets(op))

    def emit(self, event: str, *args: Any, to: Targets = None, room: Targets = None,
             namespace: str | None = None, skip_sid: Targets = None) -> int:
        """Emit *event* to a room, a list of rooms, a sid, or (``to=None``) a whole namespace.

        Returns the number of processes Redis handed the message to (native
        format: 0 means no process holds anybody in that room or namespace).
        Raises :class:`~tornado_sio.EncodeError` for data that is not JSON-able
        and :class:`~tornado_sio.MessageQueueError` when Redis cannot be reached.
        """
        if not isinstance(event, str):
            raise TypeError("event names are strings")
        ns = namespace or "/"
        opts = BroadcastOptions(ns, room_set(to if to is not None else room), room_set(skip_sid))
        return self._publish(self.codec.emit(encode_event(ns, [event, *args]), opts))

    def send(self, data: Any, to: Targets = None, room: Targets = None, namespace: str | None = None,
             skip_sid: Targets = None) -> int:
        """Send a ``message`` event (see :meth:`emit`)."""
        return self.emit("message", data, to=to, room=room, namespace=namespace, skip_sid=skip_sid)

    def enter_room(self, sid: str, room: str, namespace: str | None = None) -> int:
        """Put client *sid* (held by any process) in *room*."""
        return self._operation(SocketsOp("add", BroadcastOptions(namespace or "/", frozenset((sid,))), (room,)))

    def leave_room(self, sid: str, room: str, namespace: str | None = None) -> int:
        """Take client *sid* out of *room*."""
        return self._operation(SocketsOp("del", BroadcastOptions(namespace or "/", frozenset((sid,))), (room,)))

    def close_room(self, room: str, namespace: str | None = None) -> int:
        """Every client, in every process, leaves *room*."""
        return self._operation(SocketsOp("del", BroadcastOptions(namespace or "/", frozenset((room,))), (room,)))

    def disconnect(self, sid: str, namespace: str | None = None) -> int:
        """Disconnect client *sid* from *namespace*, whichever process holds it."""
        return self._operation(SocketsOp("disconnect", BroadcastOptions(namespace or "/", frozenset((sid,)))))

    def close(self) -> None:
        """Release the Redis connections."""
        self.redis.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Emitter {redact_url(self.url)} channel={self.channel!r} format={self.format}>"
