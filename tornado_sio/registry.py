"""Which function handles which event: decorated handlers, namespaces, error handlers.

:class:`Registry` is what ``@socketio.on(...)``, ``on_namespace`` and
``on_error`` fill, and what the dispatcher asks when a packet arrives.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, Union

from .namespace import Namespace
from .options import Namespaces

__all__ = ["Registry", "Registers", "Handler", "NamespaceKey", "positional_capacity", "routes_by_method",
           "SPECIAL_EVENTS", "MAX_DYNAMIC_NAMESPACES", "NO_ACK", "settle"]

log = logging.getLogger("tornado_sio.server")

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)

#: A namespace as handlers are registered for it: a name, or a dynamic parent
#: (a compiled regex, or a callable ``(name, auth) -> bool``), as Node's ``io.of(regex|fn)``.
NamespaceKey = Union[str, "re.Pattern[str]", Callable[[str, Any], bool]]

#: Events the server raises itself; never an incoming client event.
SPECIAL_EVENTS = ("connect", "disconnect", "disconnecting")

#: What a failed handler "returns" when no error handler answers: no ACK is sent.
NO_ACK: Any = object()


async def settle(result: Any) -> Any:
    """Await *result* until it is a value (a pooled plain handler may hand back a coroutine)."""
    while inspect.isawaitable(result):
        result = await result
    return result


#: How many concrete namespaces of dynamic parents are remembered; past it the
#: oldest is forgotten (it is matched again at its next CONNECT).
MAX_DYNAMIC_NAMESPACES = 10000


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
        #: Connection middlewares by namespace (``use``), in registration order.
        self.middlewares: Dict[str, List[Handler]] = {}
        #: The packet middleware of each namespace (``use_packet``).
        self.packet_middlewares: Dict[str, Handler] = {}
        #: Listeners of every incoming / outgoing event, by namespace (``on_any``, ``on_any_outgoing``).
        self.any_incoming: Dict[str, List[Handler]] = {}
        self.any_outgoing: Dict[str, List[Handler]] = {}
        #: ``server_side_emit`` handlers by event (``on_server_event``).
        self.server_events: Dict[str, Handler] = {}
        #: Dynamic parents: their key (a regex or a callable) under a synthetic name.
        self.parents: Dict[str, Any] = {}
        #: Concrete namespace -> the synthetic name of the parent it matched.
        self.concrete: Dict[str, str] = {}

    def key(self, namespace: Optional[NamespaceKey]) -> str:
        """Where handlers of *namespace* are stored: the name, or a dynamic parent's synthetic name."""
        if namespace is None:
            return "/"
        if isinstance(namespace, str):
            return namespace
        name = f"<dynamic {getattr(namespace, 'pattern', None) or getattr(namespace, '__qualname__', '?')}" \
               f" {id(namespace):x}>"
        self.parents.setdefault(name, namespace)
        return name

    def match_dynamic(self, namespace: str, auth: Any) -> bool:
        """Whether *namespace* is a child of a dynamic parent (remembered for lookups), as Node's
        ``io.of(regex|fn)``. The static name wins: a namespace with its own handlers is not a child."""
        if namespace in self.concrete:
            return True
        for name, parent in self.parents.items():
            if isinstance(parent, re.Pattern):
                matched = parent.fullmatch(namespace) is not None
            elif callable(parent):
                matched = bool(parent(namespace, auth))
            else:
                matched = False
            if matched:
                if len(self.concrete) >= MAX_DYNAMIC_NAMESPACES:
                    del self.concrete[next(iter(self.concrete))]
                self.concrete[namespace] = name
                return True
        return False

    def resolve(self, namespace: str) -> str:
        """The registration name serving concrete *namespace* (itself, or its dynamic parent)."""
        return self.concrete.get(namespace, namespace)

    def add(self, event: str, handler: Handler, namespace: Optional[NamespaceKey] = None) -> None:
        """Register *handler* for *event* in *namespace* (default ``/``; a regex or callable: dynamic)."""
        if not isinstance(event, str) or not event:
            raise ValueError("event names are non-empty strings")
        self.handlers.setdefault(self.key(namespace), {})[event] = handler

    def add_namespace(self, namespace: Namespace) -> None:
        """Register a class-based namespace object."""
        self.namespace_objects[namespace.namespace] = namespace

    def accepts(self, namespace: str, auth: Any) -> bool:
        """Whether a client may connect to *namespace*: a known one, or a child of a dynamic parent
        (a predicate that raises refuses it, and is logged)."""
        if namespace in self.handlers or namespace in self.namespace_objects or not self.parents:
            return self.namespace_allowed(namespace)
        try:
            if self.match_dynamic(namespace, auth):
                return True
        except Exception:  # a failing predicate refuses the namespace, and is logged
            log.exception("dynamic namespace predicate failed for %s", namespace)
            return False
        return self.namespace_allowed(namespace)

    def namespace_allowed(self, namespace: str) -> bool:
        """Whether a client may connect to *namespace*."""
        allowed = self.allowed
        if allowed == "*":
            return True
        if allowed is not None:
            return namespace in allowed
        return namespace == "/" or namespace in self.handlers or namespace in self.namespace_objects

    def special(self, namespace: str, event: str) -> Optional[Handler]:
        """The ``connect``, ``disconnecting`` or ``disconnect`` handler of *namespace* (or of ``'*'``)."""
        namespace = self.concrete.get(namespace, namespace)
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
        namespace = self.concrete.get(namespace, namespace)
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
        return self.error_handlers.get(self.concrete.get(namespace, namespace)) or self.default_error_handler

    def chain(self, table: Dict[str, List[Handler]], namespace: str) -> List[Handler]:
        """The listeners of *table* for *namespace*: those of ``'*'`` first, then its own."""
        return [*table.get("*", ()), *table.get(self.concrete.get(namespace, namespace), ())]

    def packet_middleware(self, namespace: str) -> Optional[Handler]:
        """The packet middleware of *namespace* (else of ``'*'``), if any."""
        found = self.packet_middlewares.get(self.concrete.get(namespace, namespace))
        return found if found is not None else self.packet_middlewares.get("*")


class Registers:
    """Flask-SocketIO's decorators, which fill ``self.registry`` (:class:`~tornado_sio.SocketIO` has them)."""

    registry: Registry

    def on(self, event: str, namespace: Optional[NamespaceKey] = None) -> Callable[[H], H]:
        """Decorator: handle *event* in *namespace* (default ``/``; ``'*'``: every namespace).

        Special events: ``connect`` (may take the client's ``auth``; return
        ``False`` or raise :class:`ConnectionRefusedError` to refuse),
        ``disconnecting`` (may take the reason; runs before ``disconnect``, while
        ``rooms()`` still lists the client's rooms), ``disconnect`` (may take
        the reason), ``message`` (the client's
        ``send()``), ``'*'`` (any event without a handler: ``(event, *args)``).
        Handlers of namespace ``'*'`` read ``request.namespace``, as in Flask-SocketIO.
        A compiled regex (matched in full) or a callable ``(name, auth) -> bool`` as
        *namespace* registers for a dynamic parent, as Node's ``io.of(regex|fn)``:
        every namespace it matches is accepted and served by these handlers
        (``request.namespace`` is the concrete one).
        """

        def decorator(handler: H) -> H:
            self.registry.add(event, handler, namespace)
            return handler

        return decorator

    def on_event(self, event: str, handler: Handler, namespace: Optional[NamespaceKey] = None) -> None:
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

    def on_error(self, namespace: Optional[NamespaceKey] = None) -> Callable[[H], H]:
        """Decorator: called with the exception when a handler of *namespace* raises.

        Its return value answers the event's ack; ``request.event`` is the failed
        event (``{"message": name, "args": args}``).
        """

        def decorator(handler: H) -> H:
            self.registry.error_handlers[self.registry.key(namespace)] = handler
            return handler

        return decorator

    def on_error_default(self, handler: H) -> H:
        """Decorator: the error handler of namespaces without ``on_error``."""
        self.registry.default_error_handler = handler
        return handler

    # -- Node's server API: middlewares, catch-all listeners, server events -------

    def use(self, middleware: Handler, namespace: Optional[NamespaceKey] = None) -> Handler:
        """Add a connection middleware to *namespace* (default ``/``; ``'*'``: every namespace),
        as Node's ``io.use()`` / ``io.of(ns).use()``.

        ``middleware(sid, auth, request)``, plain or ``async def``, runs when a
        client connects, in registration order, before the ``connect`` handler.
        Raising :class:`~tornado_sio.ConnectionRefusedError` (``message``, ``data``)
        refuses the client with a CONNECT_ERROR ``{message, data}`` (Node's
        ``next(err)`` with ``err.data``); returning ``False`` refuses with the
        default message; any other exception refuses with it too, and is logged.
        A middleware that never returns is given up after ``connect_timeout``.
        Usable as a decorator (``@socketio.use``). Returns *middleware*.
        """
        self.registry.middlewares.setdefault(self.registry.key(namespace), []).append(middleware)
        return middleware

    def use_packet(self, middleware: Handler, namespace: Optional[NamespaceKey] = None) -> Handler:
        """Set the packet middleware of *namespace* (one per namespace), as Node's ``socket.use()``.

        ``middleware(sid, event, args)``, plain or ``async def``, sees every
        incoming event before its handler, in order. It returns None to let it
        through unchanged, a list (or tuple) of new arguments, or ``False`` to
        drop the packet silently; raising :class:`~tornado_sio.PacketRejected`
        rejects it (see there). Returns *middleware*.
        """
        self.registry.packet_middlewares[self.registry.key(namespace)] = middleware
        return middleware

    def on_any(self, listener: Optional[Handler] = None, namespace: Optional[NamespaceKey] = None) -> Any:
        """Listen to every incoming event of *namespace*, handled or not (Node's ``socket.onAny``):
        ``listener(event, *args)`` runs before the event's handler, with the client in context.
        Usable as ``@socketio.on_any`` or ``@socketio.on_any(namespace='/chat')``."""
        if listener is None:
            return lambda fn: self.on_any(fn, namespace=namespace)
        self.registry.any_incoming.setdefault(self.registry.key(namespace), []).append(listener)
        return listener

    def on_any_outgoing(self, listener: Optional[Handler] = None, namespace: Optional[NamespaceKey] = None) -> Any:
        """Listen to every event emitted to a client of *namespace* (Node's ``socket.onAnyOutgoing``):
        ``listener(sid, event, *args)``, plain functions only, called as the packet is
        written to that client (broadcasts once per recipient). Keep it cheap."""
        if listener is None:
            return lambda fn: self.on_any_outgoing(fn, namespace=namespace)
        self.registry.any_outgoing.setdefault(self.registry.key(namespace), []).append(listener)
        return listener

    def on_server_event(self, event: str) -> Callable[[H], H]:
        """Decorator: handle *event* sent by another server's ``server_side_emit`` (Node's
        ``io.on(event)`` for ``serverSideEmit``). ``handler(*args)``; its return value
        answers an awaited ``server_side_emit`` (a tuple: several arguments)."""

        def decorator(handler: H) -> H:
            self.registry.server_events[event] = handler
            return handler

        return decorator
