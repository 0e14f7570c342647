"""Class-based namespaces: ``on_<event>`` methods instead of decorators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ContextManager, Dict, List, Optional

from .adapter.base import Rooms

if TYPE_CHECKING:
    from .server import SocketIO

__all__ = ["Namespace"]


class Namespace:
    """Subclass and register with :meth:`SocketIO.on_namespace`::

        class Chat(Namespace):
            def on_connect(self, auth): ...
            def on_disconnect(self, reason): ...
            async def on_my_event(self, data):
                self.emit('my response', data)   # server-level emit, like Flask-SocketIO

    An event named ``'my event'`` is handled by ``on_my_event``. Inside the
    methods the module-level ``emit()``/``join_room()``/``request`` work as in
    decorated handlers. The helpers below are the server's, defaulting to this
    namespace; ``self.socketio`` is the server.
    """

    def __init__(self, namespace: Optional[str] = None) -> None:
        self.namespace = namespace or "/"
        #: The :class:`~tornado_sio.SocketIO` this namespace is registered with.
        self.socketio: Optional[SocketIO] = None

    @property
    def server(self) -> Optional[SocketIO]:
        """The server (the same as :attr:`socketio`)."""
        return self.socketio

    @server.setter
    def server(self, value: Optional[SocketIO]) -> None:
        self.socketio = value

    def handler_for(self, event: str) -> Optional[Callable[..., Any]]:
        """The bound ``on_<event>`` method, or None."""
        name = "on_" + event.replace(" ", "_")
        if not name.isidentifier():
            return None
        method = getattr(self, name, None)
        return method if callable(method) else None

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Run the ``on_<event>`` method for *event* and return its result (the ack).

        Override it to route events yourself, as in Flask-SocketIO: every event
        of this namespace, ``connect`` (with the auth) and ``disconnect`` (with
        the reason) included, then comes here. An unknown event returns None.
        """
        method = self.handler_for(event)
        return method(*args) if method is not None else None

    def _server(self) -> SocketIO:
        if self.socketio is None:
            raise RuntimeError(f"namespace {self.namespace} is not registered (socketio.on_namespace)")
        return self.socketio

    def emit(self, event: str, *args: Any, to: Rooms = None, room: Rooms = None, include_self: bool = True,
             skip_sid: Any = None, namespace: Optional[str] = None, callback: Optional[Callable[..., Any]] = None,
             ignore_queue: bool = False) -> None:
        """Emit to a room, a sid, or the whole namespace (see :meth:`SocketIO.emit`)."""
        self._server().emit(event, *args, to=to, room=room, include_self=include_self, skip_sid=skip_sid,
                            namespace=namespace or self.namespace, callback=callback, ignore_queue=ignore_queue)

    def send(self, data: Any, to: Rooms = None, room: Rooms = None, include_self: bool = True,
             skip_sid: Any = None, namespace: Optional[str] = None, callback: Optional[Callable[..., Any]] = None,
             ignore_queue: bool = False) -> None:
        """Send a ``message`` event (see :meth:`SocketIO.send`)."""
        self._server().send(data, to=to, room=room, include_self=include_self, skip_sid=skip_sid,
                            namespace=namespace or self.namespace, callback=callback, ignore_queue=ignore_queue)

    def call(self, event: str, *args: Any, to: Optional[str] = None, sid: Optional[str] = None,
             namespace: Optional[str] = None, timeout: Optional[float] = 60.0, ignore_queue: bool = False) -> Any:
        """Emit to one client and return its acknowledgement (see :meth:`SocketIO.call`)."""
        return self._server().call(event, *args, to=to, sid=sid, namespace=namespace or self.namespace,
                                   timeout=timeout, ignore_queue=ignore_queue)

    def enter_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Put client *sid* in *room*."""
        self._server().enter_room(sid, room, namespace=namespace or self.namespace)

    def leave_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Take client *sid* out of *room*."""
        self._server().leave_room(sid, room, namespace=namespace or self.namespace)

    def close_room(self, room: str, namespace: Optional[str] = None) -> None:
        """Every client leaves *room*."""
        self._server().close_room(room, namespace=namespace or self.namespace)

    def rooms(self, sid: str, namespace: Optional[str] = None) -> List[str]:
        """The rooms of client *sid*, in join order, its own sid room first."""
        return self._server().rooms(sid, namespace=namespace or self.namespace)

    def disconnect(self, sid: str, namespace: Optional[str] = None) -> None:
        """Disconnect client *sid* from this namespace."""
        self._server().disconnect(sid, namespace=namespace or self.namespace)

    def get_session(self, sid: str) -> Dict[str, Any]:
        """The ``session`` of client *sid* (see :meth:`SocketIO.get_session`)."""
        return self._server().get_session(sid)

    def save_session(self, sid: str, session: Dict[str, Any]) -> None:
        """Replace the ``session`` of client *sid* (see :meth:`SocketIO.save_session`)."""
        self._server().save_session(sid, session)

    def session(self, sid: str) -> ContextManager[Dict[str, Any]]:
        """``with self.session(sid) as s:`` (see :meth:`SocketIO.session`)."""
        return self._server().session(sid)
