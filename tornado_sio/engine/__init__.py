"""The Engine.IO v4 layer: sessions and their state machine, the handshake, the sweep.

Layer 2: it imports only ``protocol``, ``options`` and ``exceptions``; the
Tornado handlers of ``tornado_sio.http`` drive it, and it tells a
:class:`~tornado_sio.engine.connection.ConnectionHandler` about connections.
"""

from .connection import Connection, ConnectionHandler, HandshakeRequest
from .server import Capacity, EngineServer
from .session import EngineSession, IllegalTransition, SessionState
from .sweeper import JobHandle, Sweeper
from .transport import FrameWriter, PollWaiter

__all__ = [
    "Capacity",
    "Connection",
    "ConnectionHandler",
    "EngineServer",
    "EngineSession",
    "FrameWriter",
    "HandshakeRequest",
    "IllegalTransition",
    "JobHandle",
    "PollWaiter",
    "SessionState",
    "Sweeper",
]
