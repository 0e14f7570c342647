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
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from .exceptions import MessageQueueError
from .redis_manager import DEFAULT_CHANNEL, Wire, redact_url
from .rooms import room_list

__all__ = ["Emitter"]


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
    """

    def __init__(self, url: str = "redis://localhost:6379/0", channel: Optional[str] = None, *,
                 format: str = "native", serializer: str = "json",
                 redis_options: Optional[Dict[str, Any]] = None, timeout: float = 5.0) -> None:
        try:
            import redis  # type: ignore[import-not-found]
        except ImportError:
            raise MessageQueueError("the emitter needs the redis package: pip install 'tornado-sio[redis]'") from None
        self.url = url
        self.channel = channel or DEFAULT_CHANNEL.get(format, "tornado-sio")
        self.wire = Wire(self.channel, "emitter-" + uuid.uuid4().hex, format, serializer)
        if serializer == "msgpack":
            from .redis_manager import _msgpack

            _msgpack()
        options: Dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
        options.update(redis_options or {})
        try:
            self.redis = redis.Redis.from_url(url, **options)
        except Exception as exc:
            raise MessageQueueError(f"invalid message queue URL {redact_url(url)!r}: {exc}") from None

    def _publish(self, item: Tuple[bytes, bytes]) -> int:
        try:
            return int(self.redis.publish(*item))
        except Exception as exc:
            raise MessageQueueError(f"cannot publish to Redis at {redact_url(self.url)}: {exc}") from exc

    def emit(self, event: str, *args: Any, to: Union[None, str, Iterable[str]] = None,
             room: Union[None, str, Iterable[str]] = None, namespace: Optional[str] = None,
             skip_sid: Union[None, str, Iterable[str]] = None) -> int:
        """Emit *event* to a room, a list of rooms, a sid, or (``to=None``) a whole namespace.

        Returns the number of processes Redis handed the message to (native
        format: 0 means no process holds anybody in that room or namespace).
        Raises :class:`~tornado_sio.EncodeError` for data that is not JSON-able
        and :class:`~tornado_sio.MessageQueueError` when Redis cannot be reached.
        """
        if not isinstance(event, str):
            raise TypeError("event names are strings")
        rooms = room_list(to if to is not None else room)
        skip: List[str] = [skip_sid] if isinstance(skip_sid, str) else list(skip_sid or ())
        return self._publish(self.wire.emit(namespace or "/", [event, *args], rooms, skip))

    def send(self, data: Any, to: Union[None, str, Iterable[str]] = None, room: Union[None, str, Iterable[str]] = None,
             namespace: Optional[str] = None, skip_sid: Union[None, str, Iterable[str]] = None) -> int:
        """Send a ``message`` event (see :meth:`emit`)."""
        return self.emit("message", data, to=to, room=room, namespace=namespace, skip_sid=skip_sid)

    def enter_room(self, sid: str, room: str, namespace: Optional[str] = None) -> int:
        """Put client *sid* (held by any process) in *room*."""
        return self._publish(self.wire.enter_room(namespace or "/", sid, room))

    def leave_room(self, sid: str, room: str, namespace: Optional[str] = None) -> int:
        """Take client *sid* out of *room*."""
        return self._publish(self.wire.leave_room(namespace or "/", sid, room))

    def close_room(self, room: str, namespace: Optional[str] = None) -> int:
        """Every client, in every process, leaves *room*."""
        return self._publish(self.wire.close_room(namespace or "/", room))

    def disconnect(self, sid: str, namespace: Optional[str] = None) -> int:
        """Disconnect client *sid* from *namespace*, whichever process holds it."""
        return self._publish(self.wire.disconnect(namespace or "/", sid))

    def close(self) -> None:
        """Release the Redis connections."""
        self.redis.close()

    def __enter__(self) -> "Emitter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Emitter {redact_url(self.url)} channel={self.channel!r} format={self.wire.format}>"
