"""The Redis adapter: fan-out across processes over Redis pub/sub.

:class:`RedisAdapter` (:mod:`.adapter`) routes; :mod:`.wire` holds the message
formats (pure), :mod:`.link` the connections. ``docs/redis.md`` describes all three.
"""

from __future__ import annotations

from .adapter import RedisAdapter
from .link import LinkSettings
from .nodeadapter import NodeRedisAdapter, is_node_format
from .wire import DEFAULT_CHANNEL, FORMATS, SERIALIZERS, WIRE_VERSION, redact_url

__all__ = ["DEFAULT_CHANNEL", "FORMATS", "SERIALIZERS", "WIRE_VERSION", "LinkSettings", "NodeRedisAdapter",
           "RedisAdapter", "is_node_format", "redact_url"]
