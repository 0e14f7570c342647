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

With ``format='node'`` it publishes as Node's ``@socket.io/redis-emitter`` 5
does, to a cluster of Node socket.io servers on ``@socket.io/redis-adapter`` and
tornado-sio servers with ``message_queue_options={'format': 'node'}``::

    emitter = Emitter('redis://localhost:6379/0', format='node')   # channel: Node's key, 'socket.io'
    emitter.emit('update', 1, to='room1', skip_sid='muted')        # io.to('room1').except('muted')

It is thread-safe (the redis client pools its connections). Acknowledgements
(``callback=``) need a subscribed process: use ``SocketIO(message_queue=...,
write_only=True)`` in async code for those.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

from .adapter.base import BroadcastOptions, room_set
from .adapter.redis.nodewire import DEFAULT_KEY, NodeAdapterCodec, NodeWire
from .adapter.redis.sharded import is_cluster_url, parse_cluster_url
from .adapter.redis.streams import StreamLink, entry_fields
from .adapter.redis.wire import (
    DEFAULT_CHANNEL,
    Codec,
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

__all__ = ["Emitter", "stream_options"]

#: ``to=`` / ``skip_sid=``: one room or sid, several, or None.
Targets = Union[None, str, Iterable[str]]

#: The uid Node's ``@socket.io/redis-emitter`` publishes as (no server has it, so every server acts).
NODE_EMITTER_UID = "emitter"
#: Event names Node's emitter refuses (the clients keep them for themselves).
NODE_RESERVED_EVENTS = frozenset(("connect", "connect_error", "disconnect", "disconnecting",
                                  "newListener", "removeListener"))


class Emitter:
    """Publish emits and room operations for a tornado-sio cluster, synchronously.

    :param url: ``redis://[:password@]host:port/db``, or a Redis Cluster's
        ``redis+cluster://[:password@]host:port,host:port`` (redis-py's cluster
        client then routes each message to the primary of its channel's slot).
    :param channel: the cluster's channel (default ``'tornado-sio'``, or
        ``'socketio'`` with ``format='python-socketio'``; with ``format='node'``
        Node's ``key``, ``'socket.io'``).
    :param format: ``'native'`` (tornado-sio), ``'python-socketio'`` (reaches
        python-socketio / Flask-SocketIO servers and tornado-sio processes in
        that mode) or ``'node'`` (Node's ``@socket.io/redis-adapter`` 8 format,
        as ``@socket.io/redis-emitter`` 5 writes it: reaches Node socket.io
        servers and tornado-sio processes with ``format='node'``; one Redis,
        pub/sub only, needs the ``msgpack`` package).
    :param serializer: ``'json'`` or ``'msgpack'`` (native format; Node's is always msgpack).
    :param redis_options: extra keyword arguments for ``redis.Redis.from_url``.
    :param timeout: seconds for connecting and for each PUBLISH.
    :param sharded: on a Redis Cluster, ``SPUBLISH`` (the servers' default,
        ``message_queue_options={'sharded': True}``); False: classic ``PUBLISH``.
    :param stream: the stream of a cluster on the Redis Streams transport (its
        ``stream_name``, by default the channel): messages are appended to it
        (``XADD ... MAXLEN ~ stream_maxlen``) instead of published, and emits
        get offsets for connection state recovery. None: pub/sub.
    :param stream_maxlen: the cluster's ``stream_maxlen``.

    The messages are the adapter's own (:mod:`tornado_sio.adapter.redis.wire`),
    so an emit from here and one from a server process are the same bytes.
    """

    def __init__(self, url: str = "redis://localhost:6379/0", channel: str | None = None, *,
                 format: str = "native", serializer: str = "json",
                 redis_options: dict[str, Any] | None = None, timeout: float = 5.0, sharded: bool = True,
                 stream: str | None = None, stream_maxlen: int = 10_000) -> None:
        try:
            import redis  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise MessageQueueError("the emitter needs the redis package: pip install 'tornado-sio[redis]'") from None
        self.url = url
        self.codec: Codec | NodeAdapterCodec
        if format == "node":
            self.channel = channel or DEFAULT_KEY
            self.codec = _node_codec(self.channel, url, stream)
        else:
            self.channel = channel or DEFAULT_CHANNEL.get(format, "tornado-sio")
            self.codec = make_codec(format, self.channel, "emitter-" + uuid.uuid4().hex, serializer)
        if serializer == "msgpack" or format == "node":
            require_msgpack()
        options: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
        options.update(redis_options or {})
        self._command = "PUBLISH"
        self.stream, self.stream_maxlen = stream, stream_maxlen
        try:
            if is_cluster_url(url):
                self.redis = _cluster_client(url, options)
                self._command = "SPUBLISH" if sharded else "PUBLISH"
            else:
                self.redis = redis.Redis.from_url(url, **options)
        except Exception as exc:  # noqa: BLE001 - re-raised as MessageQueueError naming the reason
            raise MessageQueueError(f"invalid message queue URL {redact_url(url)!r}: {exc}") from None

    @property
    def format(self) -> str:
        """``'native'``, ``'python-socketio'`` (or ``'flask-socketio'``), or ``'node'``."""
        return self.codec.format

    def _publish(self, item: Item, recorded: bool = False) -> int:
        try:
            if self.stream is not None:  # every process reads the stream: 1 stands for "appended"
                fields = entry_fields(*item, self.codec.src.encode("ascii"), recorded)
                self.redis.xadd(self.stream, fields, maxlen=self.stream_maxlen, approximate=True)
                return 1
            return int(self.redis.execute_command(self._command, *item))
        except Exception as exc:
            raise MessageQueueError(f"cannot publish to Redis at {redact_url(self.url)}: {exc}") from exc

    def _operation(self, op: SocketsOp) -> int:
        return sum(self._publish(item) for item in self.codec.sockets(op))

    def emit(self, event: str, *args: Any, to: Targets = None, room: Targets = None,
             namespace: str | None = None, skip_sid: Targets = None) -> int:
        """Emit *event* to a room, a list of rooms, a sid, or (``to=None``) a whole namespace.

        Returns the number of processes Redis handed the message to (native
        format: 0 means no process holds anybody in that room or namespace;
        on a stream, 1: appended, every process reads it).
        Raises :class:`~tornado_sio.EncodeError` for data that is not JSON-able
        and :class:`~tornado_sio.MessageQueueError` when Redis cannot be reached.

        In Node's format *skip_sid* is the emitter's ``except()``: sids or rooms
        whose members are left out; a reserved name (``'connect'``,
        ``'disconnect'`` ...) raises ValueError, as Node's emitter throws.
        """
        if not isinstance(event, str):
            raise TypeError("event names are strings")
        if self.format == "node" and event in NODE_RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved event name")
        ns = namespace or "/"
        opts = BroadcastOptions(ns, room_set(to if to is not None else room), room_set(skip_sid))
        return self._publish(self.codec.emit(encode_event(ns, [event, *args]), opts), recorded=True)

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


def stream_options(adapter: Any) -> dict[str, Any]:
    """``stream`` and ``stream_maxlen`` for an :class:`Emitter` writing where *adapter* (a
    server's) reads: its Redis stream on the Streams transport; ``{}`` otherwise (pub/sub)."""
    link = getattr(adapter, "link", None)
    if not isinstance(link, StreamLink):
        return {}
    return {"stream": link.stream.stream_name, "stream_maxlen": link.stream.stream_maxlen}


def _node_codec(key: str, url: str, stream: str | None) -> NodeAdapterCodec:
    """Node's adapter format under *key*, published as Node's emitter publishes (its uid).

    The encoders are the server's own (:class:`~.adapter.redis.nodewire.NodeWire`),
    so an emit from here and one from a tornado-sio server in Node's format differ
    only in the uid. Node's format is classic pub/sub on one Redis: refused with
    *stream* or a ``redis+cluster://`` URL, as the server refuses them.
    """
    if stream is not None:
        raise ValueError("format='node' is Redis pub/sub: it does not combine with stream=")
    if is_cluster_url(url):
        raise ValueError("format='node' speaks Node's classic adapter (one Redis): not a redis+cluster:// URL")
    return NodeAdapterCodec(NodeWire(key, NODE_EMITTER_UID))


def _cluster_client(url: str, options: dict[str, Any]) -> Any:
    """redis-py's synchronous cluster client for a ``redis+cluster://`` URL (its seeds and credentials)."""
    from redis import cluster

    seeds, auth = parse_cluster_url(url)
    node: Any = cluster.ClusterNode  # untyped in redis-py
    return cluster.RedisCluster(startup_nodes=[node(host, port) for host, port in seeds], **auth, **options)
