"""Flask-SocketIO's test client, for tornado-sio: :class:`SocketIOTestClient`.

``socketio.test_client()`` returns one. It is a client in the same process,
without sockets or HTTP: it hands Socket.IO packets to the server's
dispatcher through an in-memory :class:`~tornado_sio.engine.connection.Connection`
and keeps what the server sends. Everything else is the real server: the same
handlers, context, rooms, acks and broadcasts (a broadcast from one test
client reaches the others, and real clients too).

It drives the event loop itself: from a plain ``pytest`` function or a plain
test method (``AsyncHTTPTestCase`` included), each call runs the loop until
the handlers it started have finished, async ones included. Inside a coroutine
the loop is already running, so a call returns at once; ``await
client.settle()`` then waits for async handlers. See ``docs/testing.md``.
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from .engine.connection import HandshakeRequest
from .protocol.outgoing import Prepared
from .protocol.socketio import SIOPacket, SIOType

if TYPE_CHECKING:
    from .server import SocketIO

__all__ = ["SocketIOTestClient", "TestConnection"]


def current_loop() -> Optional[asyncio.AbstractEventLoop]:
    """The loop running in this thread, or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def loop_for(server: SocketIO) -> asyncio.AbstractEventLoop:
    """The loop the test client drives: the server's, else this thread's (``AsyncTestCase``
    sets one), else a new one."""
    loop = server.loop or current_loop()
    if loop is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                loop = asyncio.get_event_loop_policy().get_event_loop()
            except RuntimeError:
                loop = None
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
    return loop


def handshake(path: str, query_string: Optional[str], headers: Optional[Dict[str, str]]) -> HandshakeRequest:
    """The handshake request a test client "sent": a Tornado request that never touched a socket."""
    query = "EIO=4&transport=websocket"
    if query_string:
        query += "&" + query_string.lstrip("?")
    all_headers = HTTPHeaders({"Host": "localhost"})
    for name, value in (headers or {}).items():
        all_headers[name] = value
    request = HTTPServerRequest(headers=all_headers, start_line=RequestStartLine("GET", f"{path}/?{query}", "HTTP/1.1"))
    request.remote_ip = "127.0.0.1"
    return HandshakeRequest(request)


class TestConnection:
    """The :class:`~tornado_sio.engine.connection.Connection` of a test client: in memory."""

    __test__ = False  # not a pytest test class

    def __init__(self, client: SocketIOTestClient, request: HandshakeRequest) -> None:
        self.sid = uuid.uuid4().hex
        self.request = request
        self.data: Any = None
        self.client = client
        self.close_reason: Optional[str] = None

    @property
    def transport(self) -> str:
        return "test"

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    @property
    def writable(self) -> bool:
        """A test connection delivers at once while open."""
        return not self.closed

    def send_message(self, prepared: Prepared) -> None:
        if not self.closed:
            self.client.receive(prepared)

    def close(self, reason: str = "server disconnect") -> None:
        if self.closed:
            return
        self.close_reason = reason
        self.client.connected.clear()
        self.client.socketio.dispatcher.connection_closed(self, reason)

    def mark_connected(self) -> None:
        """No connect deadline to lift: a test connection has none."""

    def mark_idle(self) -> None:
        """No connect deadline to set: a test connection has none."""


class SocketIOTestClient:
    """A Socket.IO client in the test's process (Flask-SocketIO's ``SocketIOTestClient``).

    Created connected to *namespace* by :meth:`SocketIO.test_client
    <tornado_sio.SocketIO.test_client>`. Its namespaces share one connection
    (one handshake: the *query_string* and *headers* of the first
    :meth:`connect`), as a real client's do. It does not answer the server's
    ``call()``/``callback=`` requests.
    """

    __test__ = False  # not a pytest test class
    #: Seconds a call waits for the handlers it started; past it, ``TimeoutError``.
    timeout = 10.0

    def __init__(self, socketio: SocketIO, namespace: Optional[str] = None, query_string: Optional[str] = None,
                 headers: Optional[Dict[str, str]] = None, auth: Any = None) -> None:
        self.socketio = socketio
        self.loop = loop_for(socketio)
        self.conn: Optional[TestConnection] = None
        #: Events received and not yet taken by :meth:`get_received`.
        self.queue: List[Dict[str, Any]] = []
        #: namespace -> connected; namespace -> sid.
        self.connected: Dict[str, bool] = {}
        self.sids: Dict[str, str] = {}
        #: (namespace, ack id) -> the server's ack arguments.
        self.acks: Dict[Tuple[str, int], List[Any]] = {}
        self.ack_seq = 0
        #: Decodes what the server sends, in the server's parser (``serializer``).
        self.decoder = socketio.dispatcher.serializer.decoder(1000, 1 << 40, 1000)
        self.connect(namespace, query_string, headers, auth)

    # -- Flask-SocketIO's API ------------------------------------------------

    def is_connected(self, namespace: Optional[str] = None) -> bool:
        """Whether *namespace* (default ``/``) is connected."""
        return self.connected.get(namespace or "/", False)

    def get_sid(self, namespace: Optional[str] = None) -> Optional[str]:
        """This client's sid in *namespace* (``request.sid`` in its handlers), or None."""
        return self.sids.get(namespace or "/") if self.is_connected(namespace) else None

    def connect(self, namespace: Optional[str] = None, query_string: Optional[str] = None,
                headers: Optional[Dict[str, str]] = None, auth: Any = None) -> None:
        """Connect *namespace*; the connect handler gets *auth*. Refused, it stays unconnected."""
        namespace = namespace or "/"

        def feed() -> None:
            if self.conn is None or self.conn.closed:
                self.conn = TestConnection(self, handshake(self.socketio.options.path, query_string, headers))
                self.socketio.dispatcher.connection_opened(self.conn)
            self.send_packet(SIOPacket(SIOType.CONNECT, namespace, auth))

        self.drive(feed)

    def disconnect(self, namespace: Optional[str] = None) -> None:
        """Leave *namespace*: the server's ``disconnect`` handler gets ``client disconnect``."""
        namespace = namespace or "/"
        self.require(namespace)
        self.drive(lambda: self.send_packet(SIOPacket(SIOType.DISCONNECT, namespace)))
        self.connected.pop(namespace, None)

    def emit(self, event: str, *args: Any, callback: bool = False, namespace: Optional[str] = None) -> Any:
        """Emit *event* to the server. With ``callback=True`` return the handler's ack (one
        argument as is, several as a list, as Flask-SocketIO's test client), None without one."""
        namespace = namespace or "/"
        self.require(namespace)
        ack_id = None
        if callback:
            self.ack_seq += 1
            ack_id = self.ack_seq
        self.drive(lambda: self.send_packet(SIOPacket(SIOType.EVENT, namespace, [event, *args], ack_id)))
        if ack_id is None:
            return None
        if (namespace, ack_id) not in self.acks and current_loop() is not None and self.busy():
            raise RuntimeError(f"the handler of {event!r} is still running: inside a coroutine the test client "
                               "cannot wait for it. Call it from a plain test function or method, or emit "
                               "without callback=True and `await client.settle()`")
        ack = self.acks.pop((namespace, ack_id), None)
        if ack is None:
            return None
        return ack[0] if len(ack) == 1 else ack

    def send(self, data: Any, json: bool = False, callback: bool = False, namespace: Optional[str] = None) -> Any:
        """Send a ``message`` (or with ``json=True`` a ``json``) event (see :meth:`emit`)."""
        return self.emit("json" if json else "message", data, callback=callback, namespace=namespace)

    def get_received(self, namespace: Optional[str] = None) -> List[Dict[str, Any]]:
        """The events received in *namespace* since the last call, in order:
        ``{"name": event, "args": [...], "namespace": ns}`` (``message`` and ``json``
        carry their one argument as ``args``, as in Flask-SocketIO)."""
        namespace = namespace or "/"
        self.require(namespace)
        taken = [item for item in self.queue if item["namespace"] == namespace]
        self.queue = [item for item in self.queue if item["namespace"] != namespace]
        return taken

    # -- the loop ------------------------------------------------------------

    async def settle(self) -> None:
        """Wait (bounded by :attr:`timeout`) until the server's handler tasks have ended and
        this client's events are all handled. Background tasks are not waited for."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            await asyncio.sleep(0)  # let callbacks handed over by threads run
            pending = [task for task in self.socketio.dispatcher.tasks.tasks if not task.done()]
            if not pending and not self.busy():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"handlers still running after {self.timeout}s: {pending}")
            if pending:
                await asyncio.wait(pending, timeout=remaining)
            else:
                await asyncio.sleep(0.001)  # a pooled handler is finishing in its thread

    def busy(self) -> bool:
        """Whether one of this client's sockets is connecting, or has a handler running or queued."""
        client = self.conn.data if self.conn is not None else None
        sockets = client.sockets.values() if client is not None else ()
        return any(s.running or s.queue or not s.connected for s in sockets)

    def drive(self, feed: Callable[[], None]) -> None:
        """Run *feed* on the loop, then the loop until the handlers settle.

        Inside a coroutine on that loop, only *feed* runs: the loop cannot be
        run from within itself.
        """
        here = current_loop()
        if here is not None:
            if here is not self.loop:
                raise RuntimeError("the test client runs on the server's loop, not this one")
            feed()
            return

        async def operation() -> None:
            feed()
            await self.settle()

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(operation(), self.loop).result()
        else:
            self.loop.run_until_complete(operation())

    # -- packets -------------------------------------------------------------

    def require(self, namespace: str) -> None:
        if not self.is_connected(namespace):
            raise RuntimeError("not connected")

    def send_packet(self, packet: SIOPacket) -> None:
        """Encode *packet* as a client would, in the server's parser, and hand it to the server
        (a JSON packet's attachments after it)."""
        assert self.conn is not None
        dispatcher = self.socketio.dispatcher
        for message in dispatcher.serializer.encode(packet):
            dispatcher.connection_message(self.conn, message)

    def receive(self, prepared: Prepared) -> None:
        """A packet from the server: decoded as a client would, then kept."""
        for message in prepared.messages:
            packet = self.decoder.feed(message)
            if packet is not None:
                self.take(packet)

    def take(self, packet: SIOPacket) -> None:
        namespace, kind, data = packet.namespace, packet.type, packet.data
        if kind == SIOType.EVENT:
            args = data[1] if data[0] in ("message", "json") and len(data) > 1 else data[1:]
            self.queue.append({"name": data[0], "args": args, "namespace": namespace})
        elif kind == SIOType.ACK and packet.id is not None:
            self.acks[namespace, packet.id] = data
        elif kind == SIOType.CONNECT:
            self.connected[namespace] = True
            self.sids[namespace] = data["sid"]
        else:  # DISCONNECT, CONNECT_ERROR
            self.connected[namespace] = False
