"""The Redis adapter speaking Node's ``@socket.io/redis-adapter`` 8.x protocol end to end.

``SocketIO(message_queue=URL, message_queue_options={'format': 'node'})`` (the
key is ``channel``, ``'socket.io'`` unless given) makes a tornado-sio server a
full member of a Node cluster: its emits, room operations, ``fetch_sockets``,
``server_side_emit`` and broadcasts with acks reach Node servers' clients, and
theirs reach its clients. Routing is :class:`~.adapter.RedisAdapter`'s; the
format is :mod:`.nodewire`'s, the requests and answers :mod:`.nodecluster`'s.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from ...options import Options
from ...protocol.socketio import SIOPacket, SIOType
from ..base import AckCallback, BroadcastOptions
from ..memory import MemoryAdapter
from .adapter import RedisAdapter
from .nodecluster import NodeSide
from .nodewire import DEFAULT_KEY, NodeAdapterCodec
from .wire import EncodedEvent, encode_event

__all__ = ["NodeRedisAdapter", "is_node_format"]


def is_node_format(options: Options) -> bool:
    """Whether *options* ask for Node's adapter format (``message_queue_options={'format': 'node'}``)."""
    return (options.message_queue_options or {}).get("format") == "node"


def _event(packet: SIOPacket) -> EncodedEvent:
    if packet.type not in (SIOType.EVENT, SIOType.BINARY_EVENT) or not isinstance(packet.data, list):
        raise ValueError(f"only events travel across processes, not {SIOType(packet.type).name}")
    return encode_event(packet.namespace, packet.data)


class NodeRedisAdapter(RedisAdapter):
    """:class:`~.adapter.RedisAdapter` on Node's channels and messages (``format='node'``).

    Everything the Redis adapter does, in Node's format: servers are counted
    by ``PUBSUB NUMSUB`` on the request channel (no heartbeats), requests wait
    ``requests_timeout`` for every other server, acks of a broadcast carry one
    value each (Node forwards the first argument of a client's answer).
    """

    def __init__(self, options: Options) -> None:
        settings = dict(options.message_queue_options or {})
        if settings.get("format") != "node":
            raise ValueError("NodeRedisAdapter needs message_queue_options={'format': 'node'}")
        key = options.channel or DEFAULT_KEY
        if settings.get("node_emitter_key") not in (None, key):
            raise ValueError("with format='node', the Node key is `channel`; node_emitter_key must be unset or equal")
        if settings.get("serializer", "msgpack") != "msgpack":
            raise ValueError("Node's adapter format is msgpack (with JSON requests); serializer cannot be changed")
        settings.pop("serializer", None)
        if settings.get("transport", "pubsub") != "pubsub" or options.connection_state_recovery:
            raise ValueError("Node's adapter format is Redis pub/sub: it does not combine with the Streams "
                             "transport nor with connection_state_recovery")
        if str(options.message_queue or "").split("://", 1)[0].lower().endswith("+cluster"):
            raise ValueError("format='node' speaks Node's classic adapter (one Redis): not a redis+cluster:// URL")
        # the base class is built in the native format, then switched over: what it wanted is released
        settings.update(format="native", node_emitter_key=None)
        super().__init__(dataclasses.replace(options, channel=f"{key}-tornado-sio", message_queue_options=settings))
        self.options = options
        for channel, kind in self.codec.fixed_channels(self.write_only):
            self.link.want(channel, kind, False)
        node = NodeSide(self, key, True, self.cluster.settings["requests_timeout"])
        self.node = node
        self.cluster = node  # type: ignore[assignment]  # the same interface, Node's protocol
        self.codec = NodeAdapterCodec(node.wire)  # type: ignore[assignment]
        self.channel = key
        self.format = "node"
        self.link.needs_msgpack = True
        for channel, kind in node.fixed_channels():
            self.link.want(channel, kind, True)

    @property
    def side(self) -> NodeSide:
        """The Node protocol side (requests, answers, server counting)."""
        assert self.node is not None
        return self.node

    async def server_count(self) -> int:
        """Servers subscribed to ``/``'s request channel, as Node's ``serverCount()``."""
        return await self.side.server_count("/")

    async def all_rooms(self, namespace: str = "/") -> set[str]:
        """Every room of *namespace* on every server, sid rooms included (Node's ``allRooms()``)."""
        local = set(self.room_members.get(namespace, {}))
        return local | await self.side.all_rooms(namespace)

    def broadcast_with_ack(self, packet: SIOPacket, opts: BroadcastOptions, on_ack: AckCallback,
                           timeout: float | None, on_count: Callable[[int], None] | None = None) -> None:
        """Local sockets now; every other server gets a ``BROADCAST`` request (as Node, even
        for one local sid: each server answers with its count)."""
        event = _event(packet)  # raises EncodeError before anything is sent
        MemoryAdapter.broadcast_with_ack(self, packet, opts, on_ack, timeout, on_count)
        if not opts.local:
            wait = timeout or self.options.ack_timeout or 3600.0
            self.side.broadcast_with_ack(event, opts, on_ack, wait, on_count)

    async def call(self, packet: SIOPacket, sid: str, timeout: float | None) -> list[Any]:
        """Client *sid* here, or on any server through a one-sid ``BROADCAST`` request."""
        if self.get_socket(sid, packet.namespace) is not None:
            return await MemoryAdapter.call(self, packet, sid, timeout)
        return await self.side.call(_event(packet), sid, timeout)
