"""What a session needs of the transports that carry it, as typing Protocols.

The engine never imports the HTTP layer. A session holds at most one
:class:`FrameWriter` (the WebSocket carrying it, or one probing an upgrade) and
at most one :class:`PollWaiter` (the pending long-polling GET); the handlers of
``tornado_sio.http`` implement them.
"""

from __future__ import annotations

from typing import Protocol

from ..protocol.outgoing import Item

__all__ = ["FrameWriter", "Item", "PollWaiter"]


class FrameWriter(Protocol):
    """A transport that takes complete, unmasked WebSocket frames (the WebSocket handler).

    A writer may also have a ``deflate`` attribute: True when it negotiated
    permessage-deflate and takes :attr:`~tornado_sio.protocol.outgoing.Prepared.ws_frames_deflated`
    (the session reads it with ``getattr``, False when absent).
    """

    def write_frames(self, data: bytes) -> bool:
        """Write ready frame bytes; False when the client is gone or too slow (then it is closed)."""

    def close_transport(self) -> None:
        """Close the connection (a close frame, then TCP); the session hears of it via ``transport_closed``."""

    def write_pending(self) -> bool:
        """Whether bytes of earlier writes still wait in the send buffer (the client is behind)."""


class PollWaiter(Protocol):
    """A pending long-polling GET."""

    def deliver(self, items: list[Item]) -> None:
        """Answer the GET with these Engine.IO packets (called once)."""
