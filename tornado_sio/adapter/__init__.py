"""Fan-out behind one interface: :class:`~.base.Adapter`, with the in-memory
adapter (:mod:`.memory`, the default) and the Redis adapter (:mod:`.redis`)."""

from __future__ import annotations

from .base import Adapter, BroadcastOptions, Recipient, SocketDetails
from .memory import MemoryAdapter

__all__ = ["Adapter", "BroadcastOptions", "Recipient", "SocketDetails", "MemoryAdapter"]
