"""Every exception tornado-sio raises, in one hierarchy.

Catch :class:`TornadoSIOError` to catch them all. Malformed input from a peer is
always a :class:`ProtocolError`; the engine turns it into an HTTP 400 or a clean
close of that one client, never into an exception on the IOLoop.
"""

from __future__ import annotations

import asyncio
import builtins
import sys
from typing import Any, Dict, List, Optional

__all__ = [
    "TornadoSIOError",
    "ProtocolError",
    "PayloadTooLarge",
    "EncodeError",
    "ConnectionRefusedError",
    "AckTimeout",
    "BroadcastAckTimeout",
    "PacketRejected",
    "DisconnectedError",
    "MessageQueueError",
]


class TornadoSIOError(Exception):
    """Base class of every tornado-sio exception."""


class ProtocolError(TornadoSIOError, ValueError):
    """Input from a peer does not follow the Engine.IO v4 / Socket.IO v5 protocol.

    The message says what was wrong, in words fit for a log line. Decoders raise
    only this type (never ``KeyError``, ``json.JSONDecodeError`` and the like), so
    one ``except ProtocolError`` is enough around any decode.
    """


class PayloadTooLarge(ProtocolError):
    """A packet or payload is larger than a configured limit."""


class EncodeError(TornadoSIOError, ValueError):
    """Outgoing data cannot be encoded as strict JSON.

    Raised to the code that emits (for example for ``float('nan')``, a ``set`` or
    an arbitrary object), so an invalid packet never reaches a client.
    """


class ConnectionRefusedError(TornadoSIOError, builtins.ConnectionRefusedError):
    """Raise in a ``connect`` handler to refuse the connection.

    The client receives a CONNECT_ERROR packet. With one argument that is a
    string, it becomes the ``message``; further arguments become ``data``
    (one argument as is, several as a list)::

        raise ConnectionRefusedError('unauthorized', {'retry': False})
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        message: str = "Connection rejected by server"
        data: Any = None
        rest = list(args)
        if rest and isinstance(rest[0], str):
            message = rest.pop(0)
        if len(rest) == 1:
            data = rest[0]
        elif rest:
            data = rest
        self.message = message
        self.data = data

    def error_payload(self) -> Dict[str, Any]:
        """The JSON object sent in the CONNECT_ERROR packet."""
        payload: Dict[str, Any] = {"message": self.message}
        if self.data is not None:
            payload["data"] = self.data
        return payload


if sys.version_info >= (3, 11):
    _Timeout = builtins.TimeoutError  # asyncio.TimeoutError is this very class
else:
    class _Timeout(asyncio.TimeoutError, builtins.TimeoutError):
        """Both timeouts, which are distinct classes before Python 3.11."""


class AckTimeout(TornadoSIOError, _Timeout):
    """``SocketIO.call()`` got no acknowledgement from the client in time.

    It is a builtin :class:`TimeoutError` (as Flask-SocketIO's ``call()`` raises)
    and an :class:`asyncio.TimeoutError`, on every Python version.
    """


class BroadcastAckTimeout(AckTimeout):
    """``call()`` to several clients (``to=[...]`` or ``broadcast=True``) did not get
    every answer in time, as Node's ``emitWithAck()`` rejects after ``timeout()``.

    :attr:`responses` holds the answers received before the deadline, in arrival
    order (each one as ``call()`` returns it); :attr:`expected` is how many the
    servers reported sending, or None when not every server reported.
    """

    def __init__(self, message: str, responses: Optional[List[Any]] = None,
                 expected: Optional[int] = None) -> None:
        super().__init__(message)
        self.responses: List[Any] = list(responses or [])
        self.expected = expected


class PacketRejected(TornadoSIOError):
    """Raise in a packet middleware (``SocketIO.use_packet``) to reject one event.

    As :class:`ConnectionRefusedError`, the first string argument is the
    ``message`` and the rest is ``data``. The server's error handler receives it
    (Node's ``socket.on("error")``), and the client gets ``{message, data}``:
    as the answer of its ack when it asked for one, otherwise as an ``error`` event.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        refused = ConnectionRefusedError(*args) if args else ConnectionRefusedError("packet rejected")
        self.message: str = refused.message
        self.data: Any = refused.data

    def error_payload(self) -> Dict[str, Any]:
        """What the client receives: ``{"message": ..., "data": ...}`` (no ``data`` when None)."""
        payload: Dict[str, Any] = {"message": self.message}
        if self.data is not None:
            payload["data"] = self.data
        return payload


class DisconnectedError(TornadoSIOError):
    """The client went away before the operation could complete."""


class MessageQueueError(TornadoSIOError):
    """The message queue (Redis) could not be reached or used."""
