"""Node's server API beyond Flask-SocketIO's, as a mixin of :class:`~tornado_sio.SocketIO`.

Everything here goes through the adapter (:mod:`tornado_sio.adapter.base`), so
it acts on every process when the adapter is a cluster one (Redis), and on this
process with ``local=True`` or the in-memory adapter:

* ``call()`` to one client, or to many (``to=[...]``/``broadcast=True``: a list
  of every recipient's answer, Node's ``io.timeout(ms).emitWithAck()``);
* ``fetch_sockets()`` and the :class:`RemoteSocket` handles it returns;
* ``sockets_join()``, ``sockets_leave()``, ``disconnect_sockets()``;
* ``server_side_emit()`` / ``server_side_call()`` and the handlers of
  ``@socketio.on_server_event``.

``docs/node-api.md`` maps each one to Node's name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from . import context
from .adapter.base import Adapter, BroadcastOptions, Rooms, SocketDetails, room_set
from .dispatch import ack_args, convert_json
from .exceptions import BroadcastAckTimeout, DisconnectedError
from .protocol.socketio import SIOPacket, SIOType
from .registry import NO_ACK, settle
from .tasks import plain_calls, running_loop

if TYPE_CHECKING:
    from .dispatch import Dispatcher
    from .options import Options
    from .registry import Registry
    from .tasks import LoopHome

__all__ = ["Operations", "RemoteSocket", "AckCollector", "call_result", "event_args", "ordered"]

log = logging.getLogger("tornado_sio.server")


def call_result(args: List[Any]) -> Any:
    """``call()``'s return: one ack argument as is, several as a tuple, none as None."""
    if not args:
        return None
    return args[0] if len(args) == 1 else tuple(args)


def event_args(args: Tuple[Any, ...]) -> List[Any]:
    """The arguments of an emitted event: one tuple argument is several, as Flask-SocketIO documents."""
    if len(args) == 1 and isinstance(args[0], tuple):
        return list(args[0])
    return list(args)


def ordered(rooms: Rooms) -> List[str]:
    """*rooms* as a list in the order given, each once (joins keep their order)."""
    if rooms is None:
        return []
    return list(dict.fromkeys([rooms] if isinstance(rooms, str) else rooms))


class AckCollector:
    """Answers of a broadcast with acks, complete as Node's ``BroadcastOperator.emitWithAck`` decides:
    one client count from every server (``server_count``) and as many answers as they add up to."""

    def __init__(self, future: asyncio.Future[List[Any]], what: str) -> None:
        self.future = future
        self.what = what
        self.responses: List[Any] = []
        self.expected_servers: Optional[int] = None
        self.servers = 0
        self.clients = 0

    def on_count(self, count: int) -> None:
        self.servers += 1
        self.clients += count
        self.check()

    def on_answer(self, answer: Any) -> None:
        self.responses.append(answer)
        self.check()

    def set_server_count(self, count: int) -> None:
        self.expected_servers = count
        self.check()

    def check(self) -> None:
        if (not self.future.done() and self.expected_servers is not None
                and self.servers >= self.expected_servers and len(self.responses) >= self.clients):
            self.future.set_result(list(self.responses))

    def timed_out(self, timeout: Optional[float]) -> BroadcastAckTimeout:
        complete = self.expected_servers is not None and self.servers >= self.expected_servers
        return BroadcastAckTimeout(
            f"{self.what}: {len(self.responses)} answer(s) within {timeout}s"
            + (f" of {self.clients} expected" if complete else " (not every server reported)"),
            self.responses, self.clients if complete else None)


@dataclasses.dataclass
class RemoteSocket:
    """A socket as :meth:`Operations.fetch_sockets` returns it, on this process or another
    (Node's ``RemoteSocket``). Its attributes are a snapshot; its methods act through
    the adapter, wherever the socket is."""

    server: Any = dataclasses.field(repr=False)
    sid: str
    namespace: str
    rooms: List[str]
    #: The socket's ``data`` dict (a copy for a remote socket).
    data: Dict[str, Any]
    #: ``headers``, ``address``, ``query``, ``auth``, ``secure`` of the connection's handshake.
    handshake: Dict[str, Any]

    @classmethod
    def of(cls, server: Any, details: SocketDetails) -> RemoteSocket:
        return cls(server, details.sid, details.namespace, list(details.rooms), details.data, details.handshake)

    def emit(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Emit to this socket (keywords as :meth:`SocketIO.emit <tornado_sio.SocketIO.emit>`)."""
        self.server.emit(event, *args, to=self.sid, namespace=self.namespace, **kwargs)

    def call(self, event: str, *args: Any, timeout: Optional[float] = 60.0) -> Any:
        """Emit to this socket and return its answer (see ``SocketIO.call``)."""
        return self.server.call(event, *args, to=self.sid, namespace=self.namespace, timeout=timeout)

    def join(self, rooms: Rooms) -> None:
        """This socket joins *rooms* (one room or several)."""
        self.server.sockets_join(rooms, to=self.sid, namespace=self.namespace)

    def leave(self, rooms: Rooms) -> None:
        """This socket leaves *rooms*."""
        self.server.sockets_leave(rooms, to=self.sid, namespace=self.namespace)

    def disconnect(self, close: bool = False) -> None:
        """Disconnect this socket; with *close*, its whole connection (Node's ``disconnect(true)``)."""
        self.server.disconnect_sockets(to=self.sid, namespace=self.namespace, close=close)


class Operations:
    """The mixin of :class:`~tornado_sio.SocketIO` with Node's server API (module docstring)."""

    adapter: Adapter
    options: Options
    dispatcher: Dispatcher
    registry: Registry
    home: LoopHome

    @staticmethod
    def default_namespace() -> str:
        """The namespace of the handler running now, else ``/``."""
        socket = context.current()
        return socket.namespace if socket is not None else "/"

    def selection(self, to: Rooms, namespace: Optional[str], local: bool = False,
                  skip_sid: Rooms = None) -> BroadcastOptions:
        """The :class:`BroadcastOptions` of a ``to=``/``namespace=`` pair (``to=None``: everyone)."""
        return BroadcastOptions(namespace or self.default_namespace(), room_set(to), room_set(skip_sid),
                                local=local)

    # -- acks: one client or many ---------------------------------------------------

    def call(self, event: str, *args: Any, to: Rooms = None, sid: Optional[str] = None,
             namespace: Optional[str] = None, timeout: Optional[float] = 60.0, ignore_queue: bool = False,
             broadcast: bool = False, skip_sid: Rooms = None,
             callback: Optional[Callable[[Optional[BaseException], List[Any]], Any]] = None) -> Any:
        """Emit *event* and return the acknowledgement(s).

        ``to=<sid>`` (a string) asks one client and returns its answer (several
        arguments as a tuple), as Flask-SocketIO's ``call()``. ``to=[room, ...]``
        (a list, tuple or set of rooms or sids), or ``broadcast=True`` with
        ``to=`` a room, rooms or None (the whole namespace), asks every recipient,
        on every process, and returns the list of their answers, as Node's
        ``io.to(room).timeout(ms).emitWithAck()``; past *timeout* it raises
        :class:`~tornado_sio.BroadcastAckTimeout`, whose ``responses`` holds the
        answers received so far. With *callback* the many-client form returns
        at once and calls ``callback(error_or_None, responses)`` later.

        Where it runs decides how it waits: in a thread it blocks; in a coroutine
        on the IOLoop, ``await`` it; in a plain handler on the IOLoop it cannot
        block and raises :class:`RuntimeError` saying what to do instead. For one
        client it raises :class:`~tornado_sio.AckTimeout` (a :class:`TimeoutError`)
        and :class:`~tornado_sio.DisconnectedError`. ``ignore_queue=True`` asks this
        process's clients only. Inside a handler, *namespace* defaults to the handler's.
        """
        many = broadcast or (to is not None and not isinstance(to, str))
        target = to if to is not None else sid
        if target is None and not many:
            raise ValueError("call() needs the client (to=<sid>), or rooms: to=[...] or broadcast=True")
        packet = SIOPacket(SIOType.EVENT, namespace or self.default_namespace(),
                           convert_json(self.options.json, [event, *event_args(args)], True))
        if many:
            opts = BroadcastOptions(packet.namespace, room_set(target), room_set(skip_sid), local=ignore_queue)
            asking: Any = self.ask_many(packet, opts, timeout)
            if callback is not None:
                return self.home.run(lambda: self.dispatcher.tasks.spawn(self.report(asking, callback)))
        else:
            asking = self.ask(packet, target, timeout, ignore_queue)  # type: ignore[arg-type]
        here = running_loop()
        if here is not None and plain_calls.depth:
            asking.close()
            raise RuntimeError(f"socketio.call({event!r}) in a plain handler: it runs on the IOLoop, which must "
                               "keep running to receive the ack. Make the handler `async def` and `await "
                               "socketio.call(...)`, or run plain handlers in threads: SocketIO(handler_threads=N)")
        if here is None:
            return self.home.wait_for(asking)
        loop = self.home.loop
        if loop is None or here is loop:
            return asking
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(asking, loop))

    async def ask(self, packet: SIOPacket, sid: str, timeout: Optional[float], local: bool = False) -> Any:
        """Send *packet* to client *sid* with an ack id and return the answer (:meth:`call`)."""
        if local and self.adapter.get_socket(sid, packet.namespace) is None:
            raise DisconnectedError(f"no client {sid} in namespace {packet.namespace} in this process")
        return call_result(convert_json(self.options.json, await self.adapter.call(packet, sid, timeout), False))

    async def ask_many(self, packet: SIOPacket, opts: BroadcastOptions, timeout: Optional[float]) -> List[Any]:
        """Send *packet* to every client *opts* selects and return every answer (:meth:`call`)."""
        future: asyncio.Future[List[Any]] = asyncio.get_running_loop().create_future()
        collector = AckCollector(future, f"call({packet.data[0]!r})")
        json_module = self.options.json
        self.adapter.broadcast_with_ack(
            packet, opts, lambda sid, args: collector.on_answer(call_result(convert_json(json_module, args, False))),
            timeout, on_count=collector.on_count)
        collector.set_server_count(1 if opts.local else await self.adapter.server_count())
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            raise collector.timed_out(timeout) from None

    async def report(self, asking: Any, callback: Callable[[Optional[BaseException], List[Any]], Any]) -> None:
        """The callback form of a many-client :meth:`call`: ``callback(error, responses)``."""
        try:
            responses: List[Any] = await asking
            error: Optional[BaseException] = None
        except BroadcastAckTimeout as exc:
            responses, error = exc.responses, exc
        self.dispatcher.run_callback(callback, [error, responses], "call callback")

    # -- operations on selected sockets ---------------------------------------------

    async def fetch_sockets(self, to: Rooms = None, namespace: Optional[str] = None,
                            local: bool = False) -> List[RemoteSocket]:
        """The sockets in *to* (a room, rooms, sids; None: the namespace), on every process
        (Node's ``io.in(room).fetchSockets()``): :class:`RemoteSocket` handles."""
        found = await self.adapter.fetch_sockets(self.selection(to, namespace, local))
        return [RemoteSocket.of(self, details) for details in found]

    def sockets_join(self, rooms: Rooms, to: Rooms = None, namespace: Optional[str] = None,
                     local: bool = False) -> None:
        """The sockets in *to* join *rooms*, on every process (Node's ``io.in(to).socketsJoin(rooms)``)."""
        opts, joined = self.selection(to, namespace, local), ordered(rooms)
        self.home.run(lambda: self.adapter.add_sockets(opts, joined))

    def sockets_leave(self, rooms: Rooms, to: Rooms = None, namespace: Optional[str] = None,
                      local: bool = False) -> None:
        """The sockets in *to* leave *rooms* (Node's ``io.in(to).socketsLeave(rooms)``)."""
        opts, left = self.selection(to, namespace, local), ordered(rooms)
        self.home.run(lambda: self.adapter.del_sockets(opts, left))

    def disconnect_sockets(self, to: Rooms = None, namespace: Optional[str] = None, close: bool = False,
                           local: bool = False) -> None:
        """Disconnect the sockets in *to* (None: the whole namespace), on every process; with
        *close*, their whole connections (Node's ``io.in(to).disconnectSockets(close)``)."""
        opts = self.selection(to, namespace, local)
        self.home.run(lambda: self.adapter.disconnect_sockets(opts, close))

    # -- between servers -------------------------------------------------------------

    def server_side_emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        """Emit *event* to the ``@on_server_event`` handlers of every other server (Node's
        ``io.serverSideEmit``); needs a cluster adapter (``message_queue=``), as in Node."""
        data = convert_json(self.options.json, [event, *args], True)
        self.home.run(lambda: self.adapter.server_side_emit(namespace, data))

    async def server_side_call(self, event: str, *args: Any, namespace: str = "/",
                               timeout: Optional[float] = 5.0) -> List[Any]:
        """:meth:`server_side_emit` and return every other server's answer (Node's
        ``io.serverSideEmitWithAck``); :class:`~tornado_sio.BroadcastAckTimeout` past *timeout*."""
        others = await self.adapter.server_count() - 1
        if others <= 0:
            return []
        future: asyncio.Future[List[Any]] = asyncio.get_running_loop().create_future()
        collector = AckCollector(future, f"server_side_call({event!r})")
        collector.on_count(others)
        collector.set_server_count(1)
        self.adapter.server_side_emit(namespace, convert_json(self.options.json, [event, *args], True),
                                      lambda answer: collector.on_answer(call_result(answer)))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            raise collector.timed_out(timeout) from None

    def server_event_received(self, namespace: str, data: List[Any],
                              reply: Optional[Callable[[List[Any]], None]]) -> None:
        """The adapter's callback for another server's ``server_side_emit``: run its handler."""
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            return
        handler = self.registry.server_events.get(data[0])
        if handler is None:
            log.debug("no on_server_event handler for %r", data[0])
            return
        result = self.dispatcher.guarded(handler, convert_json(self.options.json, data[1:], False),
                                         f"server event handler for {data[0]!r}", None)
        if reply is None:
            if inspect.isawaitable(result):
                self.dispatcher.tasks.spawn(result)
            return

        async def answer() -> None:
            value = await settle(result)
            reply([] if value is NO_ACK else convert_json(self.options.json, ack_args(value), True))

        self.dispatcher.tasks.spawn(answer())
