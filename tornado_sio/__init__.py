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

A Flask-SocketIO application moves by changing its imports (``docs/migrating-from-flask-socketio.md``).
"""

from .context import (
    bind,
    call,
    close_room,
    disconnect,
    emit,
    join_room,
    leave_room,
    request,
    rooms,
    send,
    session,
    socket_data,
)
from .engine.server import EngineServer
from .engine.session import EngineSession
from .engine_app import EngineIOApp
from .exceptions import (
    AckTimeout,
    BroadcastAckTimeout,
    ConnectionRefusedError,
    DisconnectedError,
    EncodeError,
    MessageQueueError,
    PacketRejected,
    PayloadTooLarge,
    ProtocolError,
    TornadoSIOError,
)
from .namespace import Namespace
from .operations import RemoteSocket
from .options import Options
from .server import SocketIO
from .testing import SocketIOTestClient

__version__ = "0.2.0"

__all__ = [
    "SocketIO", "Namespace", "Options", "SocketIOTestClient",
    "emit", "send", "call", "join_room", "leave_room", "close_room", "rooms", "disconnect", "request", "session",
    "socket_data", "bind", "RemoteSocket",
    "EngineIOApp", "EngineServer", "EngineSession",
    "TornadoSIOError", "ProtocolError", "PayloadTooLarge", "EncodeError", "ConnectionRefusedError",
    "AckTimeout", "BroadcastAckTimeout", "PacketRejected", "DisconnectedError", "MessageQueueError",
    "__version__",
]
