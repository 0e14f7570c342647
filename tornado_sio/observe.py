"""Watching a server from the side: :class:`Observer` and the hooks that call it.

An observer is told what happened to a :class:`~tornado_sio.SocketIO` server
(sockets connected and gone, rooms joined and left, events in and out, handlers
that failed or ran long) after the fact, on the IOLoop. The Admin UI
(:mod:`tornado_sio.admin`), metrics and operator logs are observers; none of
them needs a hook of its own in the dispatcher.

Register one with :meth:`SocketIO.observe <tornado_sio.SocketIO.observe>`::

    class Count(Observer):
        def __init__(self) -> None:
            self.events = 0

        def event_received(self, namespace, sid, event, args):
            self.events += 1

    socketio.observe(Count())

What it costs: only the methods an observer overrides are called. At
registration each hook gets the list of overriding observers' bound methods
(:class:`Observers`), and the server calls a hook only while its list is not
empty, so an unused hook is one truthiness test of an empty list, and
``event_sent`` (once per recipient of every emit) is not even decoded unless
someone overrides it.

An observer must not block: it runs on the IOLoop, inside the server's own
work. An exception it raises is logged once (per observer and method, then at
DEBUG) and swallowed, so a faulty observer never disturbs a client.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Set, Tuple

from .exceptions import ProtocolError
from .protocol.socketio import Decoder, SIOType

if TYPE_CHECKING:
    from .adapter.base import Adapter
    from .protocol.outgoing import Prepared
    from .socket import Socket

__all__ = ["Observer", "Observers", "HOOKS"]

log = logging.getLogger("tornado_sio.server")

#: The methods of :class:`Observer`, in the order they are documented.
HOOKS = ("socket_connected", "socket_disconnected", "room_joined", "room_left", "event_received",
         "event_sent", "handler_failed", "handler_slow")


class Observer:
    """Base class for code that watches a SocketIO server (Admin UI, metrics, logs).

    Every method is a no-op here; override what you need. Methods are called on
    the IOLoop, synchronously, after the fact, and must not block. An exception
    raised by an observer is logged once (per observer and method) and
    swallowed. Methods left as the base no-op are never called, so they cost
    nothing on the hot path.
    """

    def socket_connected(self, socket: Socket) -> None:
        """*socket* is connected: its ``connect`` handler (and the middlewares) accepted it.

        ``socket.sid``, ``.namespace``, ``.rooms``, ``.data`` and the handshake
        (``socket.details().handshake``, ``socket.request``) are readable.
        """

    def socket_disconnected(self, socket: Socket, reason: str) -> None:
        """A connected *socket* is gone, for *reason* (a
        :class:`~tornado_sio.socket.DisconnectReason` value or an Engine.IO one).
        Its ``disconnect`` handler has run and its rooms are already left."""

    def room_joined(self, namespace: str, room: str, sid: str) -> None:
        """Socket *sid* of this process joined *room* (never called for its own sid room)."""

    def room_left(self, namespace: str, room: str, sid: str) -> None:
        """Socket *sid* of this process left *room*, also as it disconnects (not its own sid room)."""

    def event_received(self, namespace: str, sid: str, event: str, args: List[Any]) -> None:
        """Socket *sid* sent *event* with *args*, before middlewares and handlers see it."""

    def event_sent(self, namespace: str, sid: str, event: str, args: List[Any]) -> None:
        """*event* with *args* is written to socket *sid* (once per recipient of a broadcast).

        Overriding this costs a decode of each emitted packet (once per packet,
        not per recipient), for as long as the observer is registered.
        """

    def handler_failed(self, namespace: str, event: str, exc: BaseException) -> None:
        """The handler of *event* (``connect`` included) raised *exc*."""

    def handler_slow(self, namespace: str, event: str, seconds: float) -> None:
        """The handler of *event* took *seconds*, past ``Options.slow_handler_threshold``.

        A plain handler is timed while it holds the IOLoop; an ``async def`` (or
        pooled) one from its start to its end, awaits included.
        """


#: One hook's callers: the bound methods of the observers that override it.
Callers = List[Callable[..., None]]


class Observers:
    """The observers registered on one server, as one list of callers per hook.

    The server layer reads the lists (``if observers.event_received:``) to
    decide whether to pay for a hook at all, and calls :meth:`notify` (or one of
    the helpers below) when one is non-empty.
    """

    def __init__(self) -> None:
        self.registered: List[Observer] = []
        self.socket_connected: Callers = []
        self.socket_disconnected: Callers = []
        self.room_joined: Callers = []
        self.room_left: Callers = []
        self.event_received: Callers = []
        self.event_sent: Callers = []
        self.handler_failed: Callers = []
        self.handler_slow: Callers = []
        #: (observer id, method) pairs whose failure was logged at ERROR already.
        self.logged_failures: Set[Tuple[int, str]] = set()
        #: The adapter told of membership while someone watches rooms.
        self.adapter: Optional[Adapter] = None
        #: The last packets decoded for ``event_sent``, newest first (a broadcast hands the same one
        #: to every recipient).
        self.last_sent: List[Tuple[Prepared, Optional[List[Any]]]] = []

    def __bool__(self) -> bool:
        return bool(self.registered)

    def add(self, observer: Observer) -> None:
        """Register *observer*: each hook it overrides gets its bound method (twice is once)."""
        if not isinstance(observer, Observer):
            raise TypeError("observe() takes an instance of a tornado_sio.observe.Observer subclass")
        if observer in self.registered:
            return
        self.registered.append(observer)
        self.rebuild()

    def remove(self, observer: Observer) -> None:
        """Unregister *observer* (one not registered is ignored)."""
        if observer in self.registered:
            self.registered.remove(observer)
            self.rebuild()

    def rebuild(self) -> None:
        """Give each hook a new list of the overriding methods of the registered observers.

        New lists, not changed in place: an observer that registers or unregisters one
        from inside a hook does not disturb the list being walked.
        """
        for hook in HOOKS:
            base = getattr(Observer, hook)
            setattr(self, hook, [getattr(obs, hook) for obs in self.registered if getattr(type(obs), hook) is not base])
        self.last_sent = []
        self.attach(self.adapter)

    def attach(self, adapter: Optional[Adapter]) -> None:
        """Follow room membership of *adapter* (the server's, again after ``configure``), while
        some observer watches rooms; otherwise leave the adapter's hook empty (free)."""
        if self.adapter is not None and self.adapter is not adapter:
            self.adapter.membership_listener = None
        self.adapter = adapter
        if adapter is not None:
            adapter.membership_listener = self.membership if (self.room_joined or self.room_left) else None

    # -- calling ---------------------------------------------------------------

    def notify(self, callers: Callers, *args: Any) -> None:
        """Call each of *callers* with *args*; a failure is logged once per observer and method."""
        for caller in callers:
            try:
                caller(*args)
            except Exception:  # an observer's bug must not reach the client being served
                key = (id(getattr(caller, "__self__", caller)), getattr(caller, "__name__", "?"))
                if key in self.logged_failures:
                    log.debug("observer %r failed again", caller, exc_info=True)
                else:
                    self.logged_failures.add(key)
                    log.exception("observer %r failed; later failures of it are logged at DEBUG", caller)

    # The server layer's calls: each tests its hook's list first, so an unwatched hook costs that test.

    def connected(self, socket: Socket) -> None:
        """The connect decision about *socket* is made: tell ``socket_connected`` if it was accepted."""
        if self.socket_connected and socket.connected:
            self.notify(self.socket_connected, socket)

    def disconnected(self, socket: Socket, reason: str, was_connected: bool) -> None:
        """*socket* is gone (and forgotten): tell ``socket_disconnected`` if it had been connected."""
        if was_connected and self.socket_disconnected:
            self.notify(self.socket_disconnected, socket, reason)

    def received(self, socket: Socket, event: str, args: Tuple[Any, ...]) -> None:
        """An EVENT came from *socket*: tell ``event_received``."""
        if self.event_received:
            self.notify(self.event_received, socket.namespace, socket.sid, event, list(args))

    def failed(self, namespace: str, event: str, exc: BaseException) -> None:
        """The handler of *event* raised *exc*."""
        if self.handler_failed:
            self.notify(self.handler_failed, namespace, event, exc)

    def timed(self, socket: Optional[Socket], what: str, seconds: float, threshold: float) -> None:
        """A handler (of *socket*, for *what*) ran *seconds*: tell ``handler_slow`` past *threshold* (0: off)."""
        if self.handler_slow and threshold and seconds > threshold:
            self.notify(self.handler_slow, socket.namespace if socket is not None else "/", what, seconds)

    def membership(self, namespace: str, room: str, sid: str, joined: bool) -> None:
        """The adapter's ``membership_listener``: a local socket joined or left *room*."""
        if room == sid:
            return
        self.notify(self.room_joined if joined else self.room_left, namespace, room, sid)

    def sent(self, socket: Socket, prepared: Prepared) -> None:
        """*prepared* is written to *socket*: tell ``event_sent`` when it is an EVENT.

        The packet is decoded again from its text, once per packet: a broadcast
        hands the same prepared packet to each recipient, so the last ones decoded
        are kept.
        """
        for seen, decoded in self.last_sent:
            if seen is prepared:
                data = decoded
                break
        else:
            data = decoded_event(prepared, getattr(socket.dispatcher, "serializer", None))
            # two kept: an observer that emits for each recipient (the Admin UI) interleaves its own packets
            self.last_sent = [(prepared, data), *self.last_sent[:1]]
        if data:
            self.notify(self.event_sent, socket.namespace, socket.sid, data[0], data[1:])


def decoded_event(prepared: Prepared, serializer: Any = None) -> Optional[List[Any]]:
    """The ``[event, *args]`` of a prepared EVENT packet (binary parts included), else None.

    *serializer* is the server's parser (its ``decode_prepared``); without one, the
    packet is Socket.IO's JSON text.
    """
    try:
        if serializer is not None:
            packet = serializer.decode_prepared(prepared)
        else:
            decoder = Decoder()
            packet = decoder.feed(prepared.sio_text)
            for attachment in prepared.attachments:
                packet = decoder.feed(attachment)
    except ProtocolError:
        return None
    if packet is None or packet.type not in (SIOType.EVENT, SIOType.BINARY_EVENT):
        return None
    data = packet.data
    return data if isinstance(data, list) and data and isinstance(data[0], str) else None


class Observable:
    """What :class:`~tornado_sio.SocketIO` offers observers (a mixin): :meth:`observe` and :meth:`unobserve`."""

    observers: Observers

    def observe(self, observer: Observer) -> None:
        """Register *observer* (an :class:`Observer` subclass instance), at any time; start-up is usual.

        Only the methods it overrides are called (see :mod:`tornado_sio.observe`).
        Registering the same observer twice registers it once.
        """
        self.observers.add(observer)

    def unobserve(self, observer: Observer) -> None:
        """Stop telling *observer*; one that is not registered is ignored."""
        self.observers.remove(observer)
