"""tornado-sio: a Socket.IO server native to Tornado, with Flask-SocketIO's model.

Wire-compatible with Engine.IO v4 / Socket.IO v5, so the official clients
connect unmodified::

    from tornado_sio import SocketIO, emit

    socketio = SocketIO()

    @socketio.on('my event')
    def handle(data):
        emit('my response', data)

    app = tornado.web.Application(socketio.routes())
    socketio.run(app, port=5000)
"""

from .context import close_room, disconnect, emit, join_room, leave_room, request, rooms, send, session
from .engine import EngineServer, EngineSession
from .exceptions import (
    AckTimeout,
    ConnectionRefusedError,
    DisconnectedError,
    EncodeError,
    MessageQueueError,
    PayloadTooLarge,
    ProtocolError,
    TornadoSIOError,
)
from .namespace import Namespace
from .server import SocketIO

__version__ = "0.1.0"

__all__ = [
    "SocketIO", "Namespace",
    "emit", "send", "join_room", "leave_room", "close_room", "rooms", "disconnect", "request", "session",
    "EngineServer", "EngineSession",
    "TornadoSIOError", "ProtocolError", "PayloadTooLarge", "EncodeError", "ConnectionRefusedError",
    "AckTimeout", "DisconnectedError", "MessageQueueError",
    "__version__",
]
