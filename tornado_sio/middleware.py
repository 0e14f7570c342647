"""Middlewares: connection middlewares (Node's ``io.use``) and packet middlewares
(Node's ``socket.use``), run by the :class:`~tornado_sio.dispatch.Dispatcher`.

A connection middleware runs before a namespace's ``connect`` handler and may
refuse the client. A packet middleware sees each incoming event before its
handler and may rewrite its arguments, drop it, or reject it. Both may be plain
or ``async def``; a synchronous chain runs at once, and the first awaitable
moves the rest into a task (bounded by ``connect_timeout`` for connections).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Optional, Tuple

from .context import bind
from .exceptions import ConnectionRefusedError, PacketRejected, ProtocolError
from .protocol.outgoing import Prepared
from .protocol.socketio import SIOPacket, SIOType
from .registry import NO_ACK, Handler, settle
from .socket import Socket

if TYPE_CHECKING:
    from .dispatch import Dispatcher

__all__ = ["run_connection_middlewares", "filter_packet", "after_middleware", "notify_outgoing", "DROP",
           "REJECTED_BY_SERVER"]

log = logging.getLogger("tornado_sio.server")

#: What :func:`filter_packet` returns for a packet that goes no further.
DROP: Any = object()

#: The message a client gets when a middleware fails with an unexpected exception
#: (its text is not sent: it may tell more than the client should know).
REJECTED_BY_SERVER = "rejected by server"


def run_connection_middlewares(dispatcher: Dispatcher, socket: Socket, chain: List[Handler],
                               then: Callable[[], None]) -> None:
    """Run *chain* for *socket* in order, then *then()*; a refusal refuses the socket instead."""
    for index, middleware in enumerate(chain):
        try:
            with bind(socket, "connect", (socket.auth,)):
                result = dispatcher.call_user(middleware, (socket.sid, socket.auth, socket.request),
                                              "connection middleware", socket)
        except Exception as exc:  # noqa: BLE001 - any failure refuses (logged unless a refusal)
            dispatcher.connect_failed(socket, exc)
            return
        if inspect.isawaitable(result):
            dispatcher.tasks.spawn(finish_chain(dispatcher, socket, result, chain[index + 1:], then))
            return
        if result is False:
            dispatcher.connect_failed(socket, ConnectionRefusedError())
            return
    then()


async def finish_chain(dispatcher: Dispatcher, socket: Socket, pending: Any, rest: List[Handler],
                       then: Callable[[], None]) -> None:
    """The asynchronous rest of a middleware chain, each step bounded by ``connect_timeout``."""
    limit = dispatcher.options.connect_timeout
    try:
        for middleware in [None, *rest]:
            with bind(socket, "connect", (socket.auth,)):  # the awaits below copy this context
                if middleware is not None:
                    pending = dispatcher.call_user(middleware, (socket.sid, socket.auth, socket.request),
                                                   "connection middleware", socket)
                result = await_bounded(pending, limit)
            result = await result
            if result is False:
                raise ConnectionRefusedError()
            if socket.client.sockets.get(socket.namespace) is not socket:
                return  # the connection closed meanwhile
    except asyncio.TimeoutError:
        log.warning("connection middleware of %s did not return within connect_timeout (%ss); refusing %s",
                    socket.namespace, limit, socket.sid)
        dispatcher.connect_failed(socket, ConnectionRefusedError("middleware timeout"))
        return
    except Exception as exc:  # noqa: BLE001 - as in run_connection_middlewares
        dispatcher.connect_failed(socket, exc)
        return
    then()


async def bounded(awaitable: Any, limit: Optional[float]) -> Any:
    """Await *awaitable* (and what it resolves to) for at most *limit* seconds in all."""
    async def settled() -> Any:
        result = awaitable
        while inspect.isawaitable(result):
            result = await result
        return result

    return await asyncio.wait_for(settled(), limit)


def await_bounded(awaitable: Any, limit: Optional[float]) -> Any:
    """:func:`bounded` as a task created now, so it runs in the current context."""
    return asyncio.ensure_future(bounded(awaitable, limit))


def filter_packet(dispatcher: Dispatcher, socket: Socket, middleware: Handler, event: str,
                  args: Tuple[Any, ...], ack_id: Optional[int]) -> Any:
    """Pass one incoming event through the packet middleware.

    Returns the (possibly new) argument tuple, :data:`DROP`, or an awaitable of
    either when the middleware is asynchronous. A rejection is reported here.
    """
    try:
        with bind(socket, event, args):
            result = dispatcher.call_user(middleware, (socket.sid, event, list(args)), "packet middleware", socket)
    except Exception as exc:  # noqa: BLE001 - a rejection, reported to both sides
        reject(dispatcher, socket, event, exc, ack_id)
        return DROP
    if inspect.isawaitable(result):
        return settle_packet(dispatcher, socket, result, event, args, ack_id)
    return outcome(result, args)


async def settle_packet(dispatcher: Dispatcher, socket: Socket, pending: Any, event: str,
                        args: Tuple[Any, ...], ack_id: Optional[int]) -> Any:
    """Await an asynchronous packet middleware (see :func:`filter_packet`)."""
    try:
        result = pending
        while inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # noqa: BLE001 - as in filter_packet
        reject(dispatcher, socket, event, exc, ack_id)
        return DROP
    return outcome(result, args)


def outcome(result: Any, args: Tuple[Any, ...]) -> Any:
    """A middleware's answer as arguments or :data:`DROP`."""
    if result is None:
        return args
    if result is False:
        return DROP
    if isinstance(result, (list, tuple)):
        return tuple(result)
    raise TypeError("a packet middleware returns None, False, or a list of arguments")


def reject(dispatcher: Dispatcher, socket: Socket, event: str, exc: BaseException, ack_id: Optional[int]) -> None:
    """A rejected packet: the error handler hears of it (Node's ``socket.on("error")``), and the
    client gets ``{message, data}`` through its ack, or as an ``error`` event."""
    if isinstance(exc, PacketRejected):
        payload = exc.error_payload()
    else:
        log.warning("packet middleware failed on %r (sid %s)", event, socket.sid,
                    exc_info=(type(exc), exc, exc.__traceback__))
        payload = {"message": REJECTED_BY_SERVER}
    if dispatcher.registry.error_handler(socket.namespace) is not None:
        result = dispatcher.handler_failed(socket, event, exc)
        if inspect.isawaitable(result):
            dispatcher.tasks.spawn(result)
    if not socket.connected:
        return
    if ack_id is not None:
        socket.send_packet(SIOPacket(SIOType.ACK, socket.namespace, [payload], ack_id))
    else:
        socket.send_packet(SIOPacket(SIOType.EVENT, socket.namespace, ["error", payload]))


def notify_outgoing(dispatcher: Dispatcher, socket: Socket, prepared: Prepared) -> None:
    """Tell the ``on_any_outgoing`` listeners of an EVENT written to *socket* (Node's
    ``notifyOutgoingListeners``): ``listener(sid, event, *args)``. The packet is decoded
    again in the server's parser, which costs only while listeners exist."""
    try:
        packet = dispatcher.serializer.decode_prepared(prepared)
    except ProtocolError:
        return
    if packet is None or packet.type not in (SIOType.EVENT, SIOType.BINARY_EVENT):
        return
    data = packet.data
    for listener in dispatcher.registry.chain(dispatcher.registry.any_outgoing, socket.namespace):
        try:
            listener(socket.sid, *data)
        except Exception:  # a failing listener is logged; the packet is still sent
            log.exception("on_any_outgoing listener failed (sid %s)", socket.sid)


async def after_middleware(dispatcher: Dispatcher, socket: Socket, event: str, filtered: Awaitable[Any]) -> Any:
    """Await an async packet middleware, then run the event's handler (its return is the ack)."""
    args = await filtered
    if args is DROP:
        return NO_ACK
    found = dispatcher.lookup(socket, event, args)
    if found is None:
        return NO_ACK
    handler, args = found
    try:
        return await settle(dispatcher.call_user(handler, args, event, socket))
    except Exception as exc:  # noqa: BLE001 - as in Dispatcher.invoke()
        return await settle(dispatcher.handler_failed(socket, event, exc))
