"""The current client, for module-level helpers inside handlers (as in Flask-SocketIO).

While a handler runs, the client that sent the event is in a ``ContextVar``
(async handlers keep it across awaits, since each runs in a task that copied the
context). ``emit()`` with no ``to`` answers that client; ``join_room()`` moves it;
``request`` and ``session`` describe it.

:func:`bind` is the one way to put a client in context; the dispatcher uses it
around every handler, and tests or background code may use it too::

    with bind(socket, "my event"):
        emit("reply", 42)          # goes to socket
"""

from __future__ import annotations

from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

from .adapter.base import Rooms

if TYPE_CHECKING:
    from .socket import Socket

__all__ = [
    "emit", "send", "call", "join_room", "leave_room", "close_room", "rooms", "disconnect",
    "request", "session", "socket_data", "current", "current_socket", "bind",
]

_current: ContextVar[Optional[Socket]] = ContextVar("tornado_sio_socket", default=None)
#: (event name, its arguments) of the handler running now.
_current_event: ContextVar[Optional[Tuple[str, Tuple[Any, ...]]]] = ContextVar("tornado_sio_event", default=None)


class bind:
    """Make *socket* the current client (and *event*, with *args*, the current event) inside the block.

    A small class rather than a generator-based context manager: every handler
    call goes through it, and this costs a third as much.
    """

    __slots__ = ("socket", "event", "tokens")

    def __init__(self, socket: Optional[Socket], event: Optional[str] = None, args: Tuple[Any, ...] = ()) -> None:
        self.socket = socket
        self.event = None if event is None else (event, args)
        self.tokens: Any = None

    def __enter__(self) -> None:
        self.tokens = (_current.set(self.socket), _current_event.set(self.event))

    def __exit__(self, *exc: object) -> None:
        socket_token, event_token = self.tokens
        _current_event.reset(event_token)
        _current.reset(socket_token)


def current() -> Optional[Socket]:
    """The client whose handler is running, or None outside a handler."""
    return _current.get()


def current_socket() -> Socket:
    """The client whose handler is running; RuntimeError outside a handler."""
    socket = _current.get()
    if socket is None:
        raise RuntimeError("no Socket.IO client in context: call this inside an event handler, "
                           "or use the SocketIO object's methods")
    return socket


def emit(event: str, *args: Any, to: Rooms = None, room: Rooms = None, include_self: bool = True,
         broadcast: bool = False, namespace: Optional[str] = None,
         callback: Optional[Callable[..., Any]] = None, skip_sid: Any = None, ignore_queue: bool = False) -> None:
    """Emit *event* from inside a handler, as Flask-SocketIO's ``emit()``.

    With no ``to``/``room`` and no ``broadcast``, it goes to the client being
    handled. ``broadcast=True`` sends to the whole namespace; ``to`` to one room or
    a list of rooms (each client once). ``include_self=False`` leaves the sender
    out. ``callback`` is called with the client's acknowledgement. One tuple
    argument is several arguments: ``emit('e', (1, 2))`` sends two.
    ``ignore_queue=True`` reaches the clients of this process only.
    """
    socket = current_socket()
    ns = namespace or socket.namespace
    target = to if to is not None else room
    if target is None and not broadcast:
        target = socket.sid_in(ns)
        if target is None:
            return
    skip = _skip_list(skip_sid)
    if not include_self:
        skip.append(socket.sid)
    socket.server.emit(event, *args, to=target, namespace=ns, skip_sid=skip or None, callback=callback,
                       ignore_queue=ignore_queue)


def send(message: Any, json: bool = False, to: Rooms = None, room: Rooms = None, include_self: bool = True,
         broadcast: bool = False, namespace: Optional[str] = None,
         callback: Optional[Callable[..., Any]] = None, skip_sid: Any = None, ignore_queue: bool = False) -> None:
    """Send a ``message`` event (what the client's ``socket.send()`` sends), or with
    ``json=True`` a ``json`` event, as Flask-SocketIO does."""
    emit("json" if json else "message", message, to=to, room=room, include_self=include_self,
         broadcast=broadcast, namespace=namespace, callback=callback, skip_sid=skip_sid,
         ignore_queue=ignore_queue)


def call(event: str, *args: Any, to: Optional[str] = None, namespace: Optional[str] = None,
         timeout: Optional[float] = 60.0, ignore_queue: bool = False) -> Any:
    """Emit *event* to the client being handled (or *to*) and return its acknowledgement.

    Flask-SocketIO's module-level ``call()``: see :meth:`SocketIO.call
    <tornado_sio.SocketIO.call>` for where it blocks and where it is awaited.
    """
    socket = current_socket()
    ns = namespace or socket.namespace
    return socket.server.call(event, *args, to=to or socket.sid_in(ns), namespace=ns, timeout=timeout,
                              ignore_queue=ignore_queue)


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


def disconnect(sid: Optional[str] = None, namespace: Optional[str] = None) -> None:
    """Disconnect the current client (or *sid*) from its namespace; it gets a DISCONNECT."""
    socket = current_socket()
    socket.server.disconnect(sid or socket.sid, namespace=namespace or socket.namespace)


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
    def event(self) -> Optional[Dict[str, Any]]:
        """The event being handled, as Flask-SocketIO gives it: ``{"message": name, "args": args}``.

        ``args`` is the tuple of the event's arguments (``(auth,)`` in ``connect``,
        ``(reason,)`` in ``disconnect``). Inside an error handler it is the failed event.
        None outside handlers.
        """
        current = _current_event.get()
        return None if current is None else {"message": current[0], "args": current[1]}

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
    def tornado_request(self) -> Any:
        """The whole ``tornado.httputil.HTTPServerRequest`` of the handshake.

        The closest thing to Flask's ``request.environ``: ``.uri``, ``.headers``,
        ``.query_arguments``, ``.connection``, ``.protocol`` and the rest.
        """
        return current_socket().request.request

    @property
    def url(self) -> str:
        """The handshake's full URL, query string included (Flask's ``request.url``)."""
        return str(self.tornado_request.full_url())

    full_url = url

    @property
    def host(self) -> str:
        """The ``Host`` the client connected to."""
        return current_socket().request.host

    @property
    def path(self) -> str:
        """The handshake's path (the endpoint, ``/socket.io/`` by default)."""
        return str(self.tornado_request.path)

    @property
    def method(self) -> str:
        """The handshake's HTTP method (``GET``)."""
        return str(self.tornado_request.method)

    @property
    def auth(self) -> Any:
        """The auth payload the client sent with CONNECT."""
        return current_socket().auth

    @property
    def recovered(self) -> bool:
        """Whether connection state recovery restored this client (Node's ``socket.recovered``)."""
        return current_socket().recovered

    def __repr__(self) -> str:
        socket = _current.get()
        return f"<request {socket.sid if socket else 'outside a handler'}>"


class _SessionProxy(MutableMapping):  # type: ignore[type-arg]
    """``session`` inside a handler: a dict that lives as long as the client's connection."""

    attribute = "session"

    def _data(self) -> Dict[str, Any]:
        return getattr(current_socket(), self.attribute)  # type: ignore[no-any-return]

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
        return repr(getattr(socket, self.attribute)) if socket else f"<{self.attribute} outside a handler>"


class _SocketDataProxy(_SessionProxy):
    """``socket_data`` inside a handler: the client's per-namespace ``data`` dict (Node's
    ``socket.data``), JSON-serialisable, visible through ``fetch_sockets`` from any process
    and kept by connection state recovery."""

    attribute = "data"


request = _RequestProxy()
session = _SessionProxy()
socket_data = _SocketDataProxy()
