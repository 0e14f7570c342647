"""Class-based namespaces: ``on_<event>`` methods instead of decorators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional

from .rooms import Rooms

if TYPE_CHECKING:
    from .server import SocketIO

__all__ = ["Namespace"]


class Namespace:
    """Subclass and register with :meth:`SocketIO.on_namespace`::

        class Chat(Namespace):
            def on_connect(self, auth): ...
            def on_disconnect(self, reason): ...
            async def on_my_event(self, data):
                await self.emit('my response', data)   # server-level emit, like Flask-SocketIO

    An event named ``'my event'`` is handled by ``on_my_event``. Inside the
    methods the module-level ``emit()``/``join_room()``/``request`` work as in
    decorated handlers. The helpers below are server-level, defaulting to this
    namespace.
    """

    def __init__(self, namespace: str = "/") -> None:
        self.namespace = namespace or "/"
        self.server: Optional["SocketIO"] = None

    def handler_for(self, event: str) -> Optional[Callable[..., Any]]:
        """The bound ``on_<event>`` method, or None."""
        name = "on_" + event.replace(" ", "_")
        if not name.isidentifier():
            return None
        method = getattr(self, name, None)
        return method if callable(method) else None

    def _server(self) -> "SocketIO":
        if self.server is None:
            raise RuntimeError(f"namespace {self.namespace} is not registered (socketio.on_namespace)")
        return self.server

    def emit(self, event: str, *args: Any, to: Rooms = None, room: Rooms = None,
             skip_sid: Any = None, namespace: Optional[str] = None,
             callback: Optional[Callable[..., Any]] = None) -> None:
        self._server().emit(event, *args, to=to if to is not None else room, skip_sid=skip_sid,
                            namespace=namespace or self.namespace, callback=callback)

    def send(self, data: Any, to: Rooms = None, room: Rooms = None, skip_sid: Any = None,
             namespace: Optional[str] = None, callback: Optional[Callable[..., Any]] = None) -> None:
        self.emit("message", data, to=to, room=room, skip_sid=skip_sid, namespace=namespace,
                  callback=callback)

    async def call(self, event: str, *args: Any, to: str, namespace: Optional[str] = None,
                   timeout: Optional[float] = 60) -> Any:
        return await self._server().call(event, *args, to=to, namespace=namespace or self.namespace,
                                         timeout=timeout)

    def enter_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        self._server().enter_room(sid, room, namespace=namespace or self.namespace)

    def leave_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        self._server().leave_room(sid, room, namespace=namespace or self.namespace)

    def close_room(self, room: str, namespace: Optional[str] = None) -> None:
        self._server().close_room(room, namespace=namespace or self.namespace)

    def rooms(self, sid: str, namespace: Optional[str] = None) -> List[str]:
        return self._server().rooms(sid, namespace=namespace or self.namespace)

    def disconnect(self, sid: str, namespace: Optional[str] = None) -> None:
        self._server().disconnect(sid, namespace=namespace or self.namespace)
