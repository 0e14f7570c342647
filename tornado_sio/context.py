"""The current client, for module-level helpers inside handlers (as in Flask-SocketIO).

While a handler runs, the client that sent the event is in a ``ContextVar``
(async handlers keep it across awaits, since each runs in a task that copied the
context). ``emit()`` with no ``to`` answers that client; ``join_room()`` moves it;
``request`` and ``session`` describe it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional

from .rooms import Rooms

if TYPE_CHECKING:
    from .socket import Socket

__all__ = [
    "emit", "send", "join_room", "leave_room", "close_room", "rooms", "disconnect",
    "request", "session", "current_socket",
]

_current: ContextVar[Optional["Socket"]] = ContextVar("tornado_sio_socket", default=None)
_current_event: ContextVar[Optional[str]] = ContextVar("tornado_sio_event", default=None)


def current_socket() -> "Socket":
    """The client whose handler is running; RuntimeError outside a handler."""
    socket = _current.get()
    if socket is None:
        raise RuntimeError("no Socket.IO client in context: call this inside an event handler, "
                           "or use the SocketIO object's methods")
    return socket


def emit(event: str, *args: Any, to: Rooms = None, room: Rooms = None, include_self: bool = True,
         broadcast: bool = False, namespace: Optional[str] = None,
         callback: Optional[Callable[..., Any]] = None, skip_sid: Any = None) -> None:
    """Emit *event* from inside a handler.

    With no ``to``/``room`` and no ``broadcast``, it goes to the client being
    handled. ``broadcast=True`` sends to the whole namespace; ``to`` to one room or
    a list of rooms (each client once). ``include_self=False`` leaves the sender
    out. ``callback`` is called with the client's acknowledgement.
    """
    socket = current_socket()
    server = socket.server
    ns = namespace or socket.namespace
    target = to if to is not None else room
    if target is None and not broadcast:
        target = _own_sid(socket, ns)
        if target is None:
            return
    skip = _skip_list(skip_sid)
    if not include_self:
        skip.append(socket.sid)
    server.emit(event, *args, to=target, namespace=ns, skip_sid=skip or None, callback=callback)


def send(data: Any, to: Rooms = None, room: Rooms = None, include_self: bool = True,
         broadcast: bool = False, namespace: Optional[str] = None,
         callback: Optional[Callable[..., Any]] = None) -> None:
    """Send a ``message`` event (what the client's ``socket.send()`` sends)."""
    emit("message", data, to=to, room=room, include_self=include_self, broadcast=broadcast,
         namespace=namespace, callback=callback)


def join_room(room: str, sid: Optional[str] = None, namespace: Optional[str] = None) -> None:
    """Put the current client (or *sid*) in *room*."""
    socket = current_socket()
    socket.server.enter_room(sid or socket.sid, room, namespace=namespace or socket.namespace)


def leave_room(room: str, sid: Optional[str] = None, namespace: Optional[str] = None) -> None:
    """Take the current client (or *sid*) out of *room*."""
    socket = current_socket()
    socket.server.leave_room(sid or socket.sid, room, namespace=namespace or socket.namespace)


def close_room(room: str, namespace: Optional[str] = None) -> None:
    """Empty *room*: every client leaves it."""
    socket = current_socket()
    socket.server.close_room(room, namespace=namespace or socket.namespace)


def rooms(sid: Optional[str] = None, namespace: Optional[str] = None) -> List[str]:
    """The rooms of the current client (or *sid*), its own sid room included."""
    socket = current_socket()
    return socket.server.rooms(sid or socket.sid, namespace=namespace or socket.namespace)


def disconnect(sid: Optional[str] = None, namespace: Optional[str] = None, silent: bool = False) -> None:
    """Disconnect the current client (or *sid*) from its namespace; it gets a DISCONNECT."""
    socket = current_socket()
    socket.server.disconnect(sid or socket.sid, namespace=namespace or socket.namespace)


def _own_sid(socket: "Socket", namespace: str) -> Optional[str]:
    if namespace == socket.namespace:
        return socket.sid
    other = socket.client.sockets.get(namespace)
    return other.sid if other is not None else None


def _skip_list(skip_sid: Any) -> List[str]:
    if skip_sid is None:
        return []
    if isinstance(skip_sid, str):
        return [skip_sid]
    return list(skip_sid)


class _RequestProxy:
    """``request`` inside a handler: the current client's handshake, Flask-style."""

    __slots__ = ()

    @property
    def sid(self) -> str:
        return current_socket().sid

    @property
    def namespace(self) -> str:
        return current_socket().namespace

    @property
    def event(self) -> Optional[str]:
        """The event being handled (None in connect/disconnect)."""
        return _current_event.get()

    @property
    def eio_sid(self) -> str:
        return current_socket().client.conn.sid

    @property
    def headers(self) -> Any:
        return current_socket().request.headers

    @property
    def cookies(self) -> Dict[str, str]:
        return current_socket().request.cookies

    @property
    def args(self) -> Dict[str, str]:
        """Query arguments of the handshake (last value of each)."""
        return current_socket().request.args

    @property
    def remote_addr(self) -> str:
        """The client's address (Tornado's ``remote_ip``, honouring ``xheaders``)."""
        return current_socket().request.remote_ip

    remote_ip = remote_addr

    @property
    def auth(self) -> Any:
        """The auth payload the client sent with CONNECT."""
        return current_socket().auth

    def __repr__(self) -> str:
        socket = _current.get()
        return f"<request {socket.sid if socket else 'outside a handler'}>"


class _SessionProxy(MutableMapping):
    """``session`` inside a handler: a dict that lives as long as the client's connection."""

    def _data(self) -> Dict[str, Any]:
        return current_socket().session

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        socket = _current.get()
        return repr(socket.session) if socket else "<session outside a handler>"


request = _RequestProxy()
session = _SessionProxy()
