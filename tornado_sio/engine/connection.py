"""What the layers above the engine see of a client connection.

An Engine.IO session and a SockJS session are both a :class:`Connection`: an
object with a sid, the handshake request, a way to send a prepared Socket.IO
packet, and a way to close. The Socket.IO server implements
:class:`ConnectionHandler` and never asks which transport a connection uses.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, Union

from tornado.httputil import HTTPServerRequest

from ..protocol.outgoing import Prepared

__all__ = ["HandshakeRequest", "Connection", "ConnectionHandler"]


class HandshakeRequest:
    """What the server keeps of the HTTP request that opened a connection.

    ``remote_ip`` and ``protocol`` come from Tornado, so they honour the
    ``xheaders`` setting behind a proxy and TLS terminated by Tornado itself.
    ``request`` is the whole Tornado ``HTTPServerRequest`` of the handshake;
    ``headers`` is its headers object. ``cookies`` and ``args`` are plain
    dicts made the first time they are read: most connections never read them,
    and each idle client would otherwise hold two more dicts.
    """

    __slots__ = ("request", "headers", "_cookies", "_args", "remote_ip", "protocol", "host", "origin")

    def __init__(self, request: HTTPServerRequest) -> None:
        self.request = request
        self.headers = request.headers
        self._cookies: Optional[Dict[str, str]] = None
        self._args: Optional[Dict[str, str]] = None
        self.remote_ip: str = request.remote_ip or ""
        self.protocol: str = request.protocol
        self.host: str = request.host
        self.origin: Optional[str] = request.headers.get("Origin")

    @property
    def cookies(self) -> Dict[str, str]:
        """The request's cookies, name to value (empty for a malformed ``Cookie`` header)."""
        if self._cookies is None:
            # Tornado's ``cookies`` already tolerates a malformed Cookie header (empty result).
            self._cookies = {k: m.value for k, m in self.request.cookies.items()}
        return self._cookies

    @property
    def args(self) -> Dict[str, str]:
        """The query arguments, the last value of each, decoded as UTF-8 (invalid bytes replaced)."""
        if self._args is None:
            self._args = {
                k: v[-1].decode("utf-8", "replace") for k, v in self.request.query_arguments.items() if v
            }
        return self._args


class Connection(Protocol):
    """One client connection, whatever carries it.

    ``data`` belongs to the :class:`ConnectionHandler` (the Socket.IO server keeps
    its per-connection state there).
    """

    sid: str
    request: HandshakeRequest
    data: Any

    @property
    def transport(self) -> str:
        """The transport now in use (``polling``, ``websocket``, ``sockjs-...``)."""

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed."""

    @property
    def writable(self) -> bool:
        """Whether a packet sent now would go out at once (no buffering): ``volatile`` emits
        are dropped otherwise."""

    def send_message(self, prepared: Prepared) -> None:
        """Send one Socket.IO packet (and its attachments); ignored once closed."""

    def close(self, reason: str = "server disconnect") -> None:
        """Close the connection once; the handler's ``connection_closed`` follows."""

    def mark_connected(self) -> None:
        """A namespace connected: the connect deadline no longer applies."""

    def mark_idle(self) -> None:
        """No namespace is left: a namespace must connect within ``connect_timeout``."""


class ConnectionHandler(Protocol):
    """What a connection's owner (the Socket.IO server, ``EngineIOApp``) is told."""

    def connection_opened(self, conn: Connection) -> Optional[bool]:
        """A connection opened; returning False refuses it."""

    def connection_message(self, conn: Connection, data: Union[str, bytes]) -> None:
        """One message arrived on *conn*."""

    def connection_closed(self, conn: Connection, reason: str) -> None:
        """*conn* is gone, for *reason* (``transport close``, ``ping timeout`` ...)."""
