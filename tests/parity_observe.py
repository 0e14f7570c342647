"""What python-socketio's client sees of ``tests/parity_app.py``, as named observations.

:func:`observe` connects a few clients to a running parity app and records, one
behaviour per entry, what they received: ``{"tuple emit: arguments": ["a",
"b", 3], ...}``. Sids are written as labels (``<a>``, ``<a/chat>``), bytes as
``{"bytes": hex}`` and tuples as lists, so two servers' observations compare
with ``==``. ``tests/test_flask_parity.py`` runs it against Flask-SocketIO and
tornado-sio.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import socketio

WAIT = 5.0  # bound on any single wait
QUIET = 0.3  # how long "nothing arrives" is watched for


def wire_data(args: Tuple[Any, ...]) -> Any:
    """python-socketio's ``data`` for *args*: None for none, the value for one, a tuple for several."""
    if not args:
        return None
    return args[0] if len(args) == 1 else args


class Peer:
    """A python-socketio ``AsyncClient`` that keeps what it receives, per namespace and event.

    It answers the server's ``question`` with ``"answer to <question>"``.
    """

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.inbox: List[Tuple[str, str, List[Any]]] = []

        @self.sio.on("*", namespace="*")
        def any_event(event: str, namespace: str, *args: Any) -> Any:
            self.inbox.append((namespace, event, list(args)))
            return f"answer to {args[0]}" if event == "question" else None

        @self.sio.on("connect_error", namespace="*")
        def on_connect_error(namespace: str, *data: Any) -> None:
            self.inbox.append((namespace, "connect_error", list(data)))

        @self.sio.on("disconnect", namespace="*")
        def on_disconnect(namespace: str, *reason: Any) -> None:
            self.inbox.append((namespace, "disconnect", list(reason)))

    async def connect(self, url: str, namespaces: Sequence[str] = ("/",), auth: Any = None,
                      headers: Optional[Dict[str, str]] = None) -> bool:
        """Connect; False (and the connect_error in the inbox) when refused."""
        try:
            await self.sio.connect(url, namespaces=list(namespaces), auth=auth, headers=headers or {},
                                   transports=["websocket"], wait_timeout=WAIT)
        except socketio.exceptions.ConnectionError:
            return False
        return True

    def sid(self, namespace: str = "/") -> Optional[str]:
        return self.sio.get_sid(namespace)

    async def call(self, event: str, *args: Any, namespace: str = "/", timeout: float = WAIT) -> Any:
        """The server's ack of *event* (several arguments as a tuple), or ``"timeout"``."""
        try:
            return await self.sio.call(event, wire_data(args), namespace=namespace, timeout=timeout)
        except socketio.exceptions.TimeoutError:
            return "timeout"

    async def emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        await self.sio.emit(event, wire_data(args), namespace=namespace)

    async def take(self, event: str, namespace: str, within: float) -> Optional[List[Any]]:
        """The args of the first *event* in *namespace* arriving *within* seconds (taken from the inbox)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for i, (ns, name, args) in enumerate(self.inbox):
                if (ns, name) == (namespace, event):
                    del self.inbox[i]
                    return args
            await asyncio.sleep(0.01)
        return None

    async def expect(self, event: str, namespace: str = "/") -> Any:
        """The args of the first *event* in *namespace*, or ``"nothing"``."""
        args = await self.take(event, namespace, WAIT)
        return "nothing" if args is None else args

    async def received(self, event: str, namespace: str = "/") -> bool:
        """Whether *event* arrives in *namespace* within a short watch."""
        return await self.take(event, namespace, QUIET) is not None

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # whatever state it is in, it goes
            await asyncio.wait_for(self.sio.disconnect(), WAIT)
        http = getattr(self.sio.eio, "http", None)
        if http is not None and not http.closed:
            await http.close()


def plain(value: Any, labels: Dict[str, str]) -> Any:
    """*value* with sids as labels, tuples as lists and bytes as ``{"bytes": hex}``."""
    if isinstance(value, (list, tuple)):
        return [plain(v, labels) for v in value]
    if isinstance(value, dict):
        return {k: plain(v, labels) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, str):
        return labels.get(value, value)
    return value


async def observe(url: str) -> Dict[str, Any]:
    """Every observation of the parity app at *url*, labelled (see the module docstring)."""
    seen: Dict[str, Any] = {}
    peers: List[Peer] = []
    labels: Dict[str, str] = {}

    async def peer(label: str, namespaces: Sequence[str] = ("/",), auth: Any = None, query: str = "",
                   headers: Optional[Dict[str, str]] = None) -> Peer:
        p = Peer()
        peers.append(p)
        await p.connect(url + query, namespaces, auth, headers)
        for ns in namespaces:
            sid = p.sid(ns)
            if sid:
                labels[sid] = f"<{label}>" if ns == "/" else f"<{label}{ns}>"
        return p

    try:
        watcher = await peer("watcher")
        await watcher.call("join", "watchers")
        a = await peer("a", ["/", "/chat"], {"name": "a"}, "?foo=bar", {"X-Parity": "yes"})
        b = await peer("b", ["/", "/chat"], {"name": "b"})
        await observe_connect(seen, a)
        await observe_events(seen, a, b, watcher)
        await observe_rooms(seen, a, b, watcher, peer)
        await observe_sessions_and_errors(seen, a, b)
        await observe_namespaces(seen, a, peer)
        await observe_refusals(seen, peer)
        await observe_threads_and_waiting(seen, a, b)
        await observe_disconnects(seen, a, watcher, peer)
    finally:
        for p in peers:
            await p.close()
    return plain(seen, labels)  # type: ignore[no-any-return]


async def observe_connect(seen: Dict[str, Any], a: Peer) -> None:
    welcome = await a.expect("welcome")
    seen["connect handler gets the auth"] = welcome[0]["auth"]
    seen["request.args holds the query string"] = welcome[0]["foo"]
    seen["request.headers holds the handshake headers"] = welcome[0]["header"]
    seen["request.sid in connect is the client's sid"] = welcome[0]["sid"] == a.sid("/")
    seen["request.namespace in connect"] = welcome[0]["namespace"]
    chat = await a.expect("welcome", "/chat")
    seen["a second namespace has its own sid"] = chat[0]["sid"] == a.sid("/chat") != a.sid("/")


async def observe_events(seen: Dict[str, Any], a: Peer, b: Peer, watcher: Peer) -> None:
    seen["handler return value is the ack"] = await a.call("echo", {"x": [1, "é"]})
    seen["emit() answers the sender"] = await a.expect("echo")
    seen["binary data round-trips"] = await a.call("echo", b"\x00\xff")
    await a.emit("tuple")
    seen["emit of one tuple sends its items as arguments"] = await a.expect("tuple")
    seen["a tuple return value is several ack arguments"] = await a.call("ack tuple")
    seen["a None return value acks without arguments"] = await a.call("ack none")
    await a.sio.send("hi")
    seen["send() answers a message with a message event"] = await a.expect("message")
    await a.emit("json", {"k": 1})
    seen["send(json=True) sends a json event"] = await a.expect("json")
    await a.emit("broadcast", 1)
    seen["broadcast=True reaches the sender"] = await a.expect("broadcast")
    seen["broadcast=True reaches the others"] = await b.expect("broadcast")
    await a.emit("broadcast others", 2)
    seen["include_self=False: the others get it"] = await b.expect("broadcast others")
    seen["include_self=False: the sender does not"] = await a.received("broadcast others")
    await a.emit("server broadcast others", 3)
    seen["socketio.emit(include_self=False): the others get it"] = await b.expect("server broadcast others")
    seen["socketio.emit(include_self=False): the sender does not"] = await a.received("server broadcast others")
    await a.emit("mystery event", 1)
    seen["'*' handler gets unhandled events, name first"] = await a.expect("caught")
    await a.emit("star", 6)
    seen["a namespace's own '*' handler wins over namespace '*'"] = await a.expect("caught")
    seen["watcher saw none of it"] = [name for _, name, _ in watcher.inbox]


async def observe_rooms(seen: Dict[str, Any], a: Peer, b: Peer, watcher: Peer, peer: Any) -> None:
    seen["rooms() after join_room"] = await a.call("join", "r1")
    seen["rooms() of a second member"] = await b.call("join", "r1")
    await a.emit("to room", "r1", "m1")
    seen["to=room reaches the sender in it"] = await a.expect("room message")
    seen["to=room reaches the others in it"] = await b.expect("room message")
    seen["to=room skips clients outside it"] = await watcher.received("room message")
    await a.emit("to room others", "r1", "m2")
    seen["to=room, include_self=False: others"] = await b.expect("room message others")
    seen["to=room, include_self=False: not the sender"] = await a.received("room message others")
    await a.emit("skip me", "r1", "m3")
    seen["skip_sid leaves that client out"] = [await b.received("skip message"), await a.received("skip message")]
    await b.call("join", "r2")
    await a.emit("to rooms", ["r1", "r2"], "m4")
    seen["to=[rooms] reaches a member of both once"] = [await b.expect("rooms message"),
                                                       await b.received("rooms message")]
    await a.emit("server send", "r1", "m5")
    seen["socketio.send(to=room) sends a message event"] = await b.expect("message")
    await a.call("join", "zz")
    c = await peer("c")
    seen["rooms() order: own sid first, then join order"] = await c.call("join", "new", "zz")
    seen["rooms() after leave_room"] = await a.call("leave", "r1")
    await b.emit("to room", "r1", "m6")
    seen["a client that left a room gets nothing sent to it"] = await a.received("room message")
    await b.emit("close", "r2")
    await a.emit("to room", "r2", "m7")
    seen["close_room empties the room"] = await b.received("room message")


async def observe_sessions_and_errors(seen: Dict[str, Any], a: Peer, b: Peer) -> None:
    seen["session: set"] = await a.call("set session", "blue")
    seen["session: read back in the same namespace"] = await a.call("get session")
    seen["session: shared by the client's namespaces"] = await a.call("get session", namespace="/chat")
    seen["session: another client's is its own"] = await b.call("get session")
    seen["request.namespace and request.sid in a second namespace"] = await a.call("whoami", namespace="/chat")
    seen["on_error_default answers the ack, with request.event"] = await a.call("fail", 7)
    seen["on_error(namespace) answers the ack"] = await a.call("fail", 8, namespace="/chat")


async def observe_namespaces(seen: Dict[str, Any], a: Peer, peer: Any) -> None:
    anyone = await peer("any", ["/any"])
    seen["connect handler of namespace '*'"] = await anyone.expect("any welcome", "/any")
    await anyone.emit("star", 5, namespace="/any")
    seen["event handler of namespace '*' reads request.namespace"] = await anyone.expect("star", "/any")
    first, second = await peer("class1", ["/class"], {"k": 1}), await peer("class2", ["/class"])
    seen["class namespace: on_connect over a '*' connect handler"] = [
        name for ns, name, _ in first.inbox if ns == "/class"]
    seen["class namespace: on_<event> answers the ack"] = await first.call("my_event", {"x": 1}, namespace="/class")
    seen["class namespace: emit() inside a method"] = await first.expect("my response", "/class")
    seen["class namespace: an event name with spaces reaches on_<name_with_underscores>"] = await first.call(
        "my event", {"x": 2}, namespace="/class")
    await first.emit("shout", "s", namespace="/class")
    seen["class namespace: self.emit() broadcasts"] = [await first.expect("shout", "/class"),
                                                       await second.expect("shout", "/class")]
    await first.emit("shout_others", "t", namespace="/class")
    seen["class namespace: self.emit(include_self=False)"] = [await first.received("shout others", "/class"),
                                                              await second.expect("shout others", "/class")]
    seen["class namespace: self.socketio is the server"] = await first.call("server", namespace="/class")
    custom = await peer("custom", ["/custom"])
    routed = await custom.call("anything", 1, namespace="/custom")
    seen["an overridden trigger_event routes every event"] = [routed["routed"], routed["last argument"]]
    seen["an overridden trigger_event: its arguments"] = routed["arguments"]
    await a.emit("cross namespace", "x")
    seen["emit(namespace=other) from a handler reaches the client there"] = await a.received("cross", "/chat")


async def observe_refusals(seen: Dict[str, Any], peer: Any) -> None:
    raised = await peer("refused1", auth={"refuse": "raise"})
    seen["ConnectionRefusedError: connect_error data"] = await raised.expect("connect_error")
    falsy = await peer("refused2", auth={"refuse": "false"})
    seen["connect handler returning False: connect_error data"] = await falsy.expect("connect_error")
    nowhere = await peer("nowhere", ["/nowhere"])
    seen["unknown namespace: connect_error data"] = await nowhere.expect("connect_error", "/nowhere")


async def observe_threads_and_waiting(seen: Dict[str, Any], a: Peer, b: Peer) -> None:
    seen["call() in a plain handler returns the client's ack"] = await a.call("ask", "q1")
    await a.emit("ask callback", "q2")
    seen["emit(callback=) gets the client's ack"] = await a.expect("answered")
    seen["socketio.sleep() in a plain handler sleeps"] = await a.call("sleep", 0.3)
    await a.emit("block", 0.6)
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await b.call("echo", "ping")
    seen["a blocking plain handler delays other clients"] = time.monotonic() - started > 0.3
    await a.expect("echo")
    started = time.monotonic()
    await a.emit("ticker", 3)
    ticks = [await a.expect("tick") for _ in range(3)]
    seen["start_background_task + socketio.sleep in a plain function"] = [ticks, time.monotonic() - started > 0.25]


async def observe_disconnects(seen: Dict[str, Any], a: Peer, watcher: Peer, peer: Any) -> None:
    kicked = await peer("kicked")
    await kicked.emit("kick")
    seen["disconnect(): the handler's reason"] = await watcher.expect("gone")
    seen["disconnect(): the client's reason"] = await kicked.expect("disconnect")
    other = await peer("other")
    await a.emit("kick other", other.sid())
    seen["disconnect(sid=): the handler's reason"] = await watcher.expect("gone")
    leaving = await peer("leaving", ["/", "/class"])
    await leaving.sio.disconnect()
    seen["client disconnect: the handlers' reasons"] = sorted(
        [await watcher.expect("gone"), await watcher.expect("gone")], key=lambda item: item[0]["namespace"])
    dropped = await peer("dropped")
    await dropped.sio.eio.ws.close()
    seen["transport closed: the handler's reason"] = await watcher.expect("gone")
