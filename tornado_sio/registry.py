"""Which function handles which event: decorated handlers, namespaces, error handlers.

:class:`Registry` is what ``@socketio.on(...)``, ``on_namespace`` and
``on_error`` fill, and what the dispatcher asks when a packet arrives.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar

from .namespace import Namespace
from .options import Namespaces

__all__ = ["Registry", "Registers", "Handler", "positional_capacity", "routes_by_method", "SPECIAL_EVENTS"]

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)

#: Events the server raises itself; never an incoming client event.
SPECIAL_EVENTS = ("connect", "disconnect")


def positional_capacity(fn: Handler) -> float:
    """How many positional arguments *fn* takes (inf with ``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return float("inf")
    count = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return float("inf")
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def routes_by_method(namespace: Namespace) -> bool:
    """Whether *namespace* keeps the default ``trigger_event`` (``on_<event>`` methods),
    so its methods can be looked up directly; an override routes every event itself."""
    return type(namespace).trigger_event is Namespace.trigger_event


class Registry:
    """Handlers by namespace and event, class-based namespaces, and error handlers."""

    def __init__(self, namespaces: Namespaces = None) -> None:
        self.allowed: Any = namespaces if namespaces is None or namespaces == "*" else set(namespaces)
        self.handlers: Dict[str, Dict[str, Handler]] = {}
        self.namespace_objects: Dict[str, Namespace] = {}
        self.error_handlers: Dict[str, Handler] = {}
        self.default_error_handler: Optional[Handler] = None

    def add(self, event: str, handler: Handler, namespace: Optional[str] = None) -> None:
        """Register *handler* for *event* in *namespace* (default ``/``)."""
        if not isinstance(event, str) or not event:
            raise ValueError("event names are non-empty strings")
        self.handlers.setdefault(namespace or "/", {})[event] = handler

    def add_namespace(self, namespace: Namespace) -> None:
        """Register a class-based namespace object."""
        self.namespace_objects[namespace.namespace] = namespace

    def namespace_allowed(self, namespace: str) -> bool:
        """Whether a client may connect to *namespace*."""
        allowed = self.allowed
        if allowed == "*":
            return True
        if allowed is not None:
            return namespace in allowed
        return namespace == "/" or namespace in self.handlers or namespace in self.namespace_objects

    def special(self, namespace: str, event: str) -> Optional[Handler]:
        """The ``connect`` or ``disconnect`` handler of *namespace* (or of ``'*'``), if any."""
        handler = self.handlers.get(namespace, {}).get(event)
        if handler is None:
            obj = self.namespace_objects.get(namespace)
            if obj is not None:
                handler = obj.handler_for(event) if routes_by_method(obj) else functools.partial(
                    obj.trigger_event, event)
        if handler is None:
            handler = self.handlers.get("*", {}).get(event)
        return handler

    def event(self, namespace: str, event: str, args: tuple) -> Optional[Tuple[Handler, tuple]]:  # type: ignore[type-arg]
        """The handler and arguments for an incoming event, or None.

        In order: a decorated handler of the namespace; the namespace object (its
        ``on_<event>`` method, or every event when it overrides ``trigger_event``);
        the namespace's ``'*'`` handler, given the event name first; then the same
        two among the handlers of namespace ``'*'``, which serve every namespace
        (``request.namespace`` tells which, as in Flask-SocketIO).
        """
        handlers = self.handlers.get(namespace)
        if handlers is not None:
            handler = handlers.get(event)
            if handler is not None:
                return handler, args
        obj = self.namespace_objects.get(namespace)
        if obj is not None:
            if not routes_by_method(obj):
                return obj.trigger_event, (event, *args)
            method = obj.handler_for(event)
            if method is not None:
                return method, args
        if handlers is not None and "*" in handlers:
            return handlers["*"], (event, *args)
        anywhere = self.handlers.get("*")
        if anywhere is not None:
            if event in anywhere:
                return anywhere[event], args
            if "*" in anywhere:
                return anywhere["*"], (event, *args)
        return None

    def error_handler(self, namespace: str) -> Optional[Handler]:
        """The ``on_error`` handler of *namespace*, else the default one."""
        return self.error_handlers.get(namespace) or self.default_error_handler


class Registers:
    """Flask-SocketIO's decorators, which fill ``self.registry`` (:class:`~tornado_sio.SocketIO` has them)."""

    registry: Registry

    def on(self, event: str, namespace: Optional[str] = None) -> Callable[[H], H]:
        """Decorator: handle *event* in *namespace* (default ``/``; ``'*'``: every namespace).

        Special events: ``connect`` (may take the client's ``auth``; return
        ``False`` or raise :class:`ConnectionRefusedError` to refuse),
        ``disconnect`` (may take the reason), ``message`` (the client's
        ``send()``), ``'*'`` (any event without a handler: ``(event, *args)``).
        Handlers of namespace ``'*'`` read ``request.namespace``, as in Flask-SocketIO.
        """

        def decorator(handler: H) -> H:
            self.registry.add(event, handler, namespace)
            return handler

        return decorator

    def on_event(self, event: str, handler: Handler, namespace: Optional[str] = None) -> None:
        """Register *handler* for *event*, without decorator syntax."""
        self.registry.add(event, handler, namespace)

    def event(self, handler: Optional[Handler] = None, namespace: Optional[str] = None) -> Any:
        """Decorator: the function's name is the event name (``@socketio.event``)."""
        if handler is None:
            return lambda fn: self.event(fn, namespace=namespace)
        self.registry.add(handler.__name__, handler, namespace)
        return handler

    def on_namespace(self, namespace_handler: Namespace) -> None:
        """Register a class-based :class:`Namespace`."""
        if not isinstance(namespace_handler, Namespace):
            raise TypeError("on_namespace takes a tornado_sio.Namespace instance")
        namespace_handler.socketio = self  # type: ignore[assignment]  # a SocketIO, which registers
        self.registry.add_namespace(namespace_handler)

    def on_error(self, namespace: Optional[str] = None) -> Callable[[H], H]:
        """Decorator: called with the exception when a handler of *namespace* raises.

        Its return value answers the event's ack; ``request.event`` is the failed
        event (``{"message": name, "args": args}``).
        """

        def decorator(handler: H) -> H:
            self.registry.error_handlers[namespace or "/"] = handler
            return handler

        return decorator

    def on_error_default(self, handler: H) -> H:
        """Decorator: the error handler of namespaces without ``on_error``."""
        self.registry.default_error_handler = handler
        return handler
