"""One Flask-SocketIO application, served by Flask-SocketIO or by tornado-sio.

``python tests/parity_app.py flask PORT`` serves it with Flask-SocketIO 5
(threading mode: werkzeug and simple-websocket); ``python tests/parity_app.py
tornado PORT [OPTIONS_JSON]`` with tornado-sio. The two differ in their imports
only (the ``if`` below): every handler is the same code.
``tests/test_flask_parity.py`` drives both with python-socketio's client and
compares what it sees. The handlers, by event:

============  =================================================================
connect       refuses ``auth.refuse == "raise"`` (ConnectionRefusedError with
              data) or ``"false"``; otherwise greets with ``welcome``: the sid,
              the auth, the ``foo`` query argument and the ``X-Parity`` header
disconnect    tells the ``watchers`` room who left, and why
echo ...      one handler each: see their bodies
============  =================================================================
"""

import json
import sys
import time

FLAVOUR = sys.argv[1]
PORT = int(sys.argv[2])
OPTIONS = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}

if FLAVOUR == "flask":
    from flask import Flask, request, session
    from flask_socketio import (
        ConnectionRefusedError,
        Namespace,
        SocketIO,
        call,
        close_room,
        disconnect,
        emit,
        join_room,
        leave_room,
        rooms,
        send,
    )

    app = Flask(__name__)
    app.config["SECRET_KEY"] = "parity"
else:
    import tornado.web

    from tornado_sio import (
        ConnectionRefusedError,
        Namespace,
        SocketIO,
        call,
        close_room,
        disconnect,
        emit,
        join_room,
        leave_room,
        request,
        rooms,
        send,
        session,
    )

    app = tornado.web.Application()

# ---- from here on, the same code for both ------------------------------------

socketio = SocketIO(app, cors_allowed_origins="*", namespaces=["/", "/chat", "/any", "/class", "/custom"],
                    **OPTIONS)
NAMESPACES = ("/", "/chat")


def mine(value):
    """*value* with the caller's own sid written as ``<sid>`` (sids differ between runs)."""
    if isinstance(value, (list, tuple)):
        return [mine(v) for v in value]
    return "<sid>" if value == request.sid else value


def on_connect(auth):
    if auth and auth.get("refuse") == "raise":
        raise ConnectionRefusedError("nope", {"why": "test"})
    if auth and auth.get("refuse") == "false":
        return False
    emit("welcome", {"sid": request.sid, "namespace": request.namespace, "auth": auth,
                     "foo": request.args.get("foo"), "header": request.headers.get("X-Parity")})
    return None


def on_disconnect(reason):
    socketio.emit("gone", {"sid": request.sid, "namespace": request.namespace, "reason": reason},
                  to="watchers", namespace="/")


def register(ns):
    socketio.on_event("connect", on_connect, namespace=ns)
    socketio.on_event("disconnect", on_disconnect, namespace=ns)

    @socketio.on("echo", namespace=ns)
    def echo(data):
        emit("echo", data)
        return data

    @socketio.on("set session", namespace=ns)
    def set_session(value):
        session["value"] = value
        return "ok"

    @socketio.on("get session", namespace=ns)
    def get_session():
        return session.get("value")

    @socketio.on("whoami", namespace=ns)
    def whoami():
        return {"namespace": request.namespace, "sid": request.sid}

    @socketio.on("fail", namespace=ns)
    def fail(data):
        raise ValueError(f"failed with {data}")


for _ns in NAMESPACES:
    register(_ns)


@socketio.on("tuple")
def tuple_emit():
    emit("tuple", ("a", "b", 3))


@socketio.on("ack tuple")
def ack_tuple():
    return "x", 2


@socketio.on("ack none")
def ack_none():
    return None


@socketio.on("message")
def on_message(data):
    send(data)


@socketio.on("json")
def on_json(data):
    send(data, json=True)


@socketio.on("broadcast")
def broadcast(data):
    emit("broadcast", data, broadcast=True)


@socketio.on("broadcast others")
def broadcast_others(data):
    emit("broadcast others", data, broadcast=True, include_self=False)


@socketio.on("server broadcast others")
def server_broadcast_others(data):
    socketio.emit("server broadcast others", data, include_self=False)


@socketio.on("join")
def join(*names):
    for name in names:
        join_room(name)
    return mine(rooms())


@socketio.on("leave")
def leave(name):
    leave_room(name)
    return mine(rooms())


@socketio.on("close")
def close(name):
    close_room(name)


@socketio.on("to room")
def to_room(name, data):
    emit("room message", data, to=name)


@socketio.on("to room others")
def to_room_others(name, data):
    emit("room message others", data, to=name, include_self=False)


@socketio.on("to rooms")
def to_rooms(names, data):
    emit("rooms message", data, to=names)


@socketio.on("skip me")
def skip_me(name, data):
    emit("skip message", data, to=name, skip_sid=request.sid)


@socketio.on("server send")
def server_send(name, data):
    socketio.send(data, to=name)


@socketio.on("cross namespace")
def cross_namespace(data):
    emit("cross", data, namespace="/chat")


@socketio.on("kick")
def kick():
    disconnect()


@socketio.on("kick other")
def kick_other(sid):
    disconnect(sid=sid)


@socketio.on("ask")
def ask(question):
    return call("question", question, timeout=5)


@socketio.on("ask callback")
def ask_callback(question):
    emit("question", question, callback=lambda *answer: emit("answered", list(answer)))


@socketio.on("sleep")
def sleep_handler(seconds):
    started = time.monotonic()
    socketio.sleep(seconds)
    return round(time.monotonic() - started, 1)


@socketio.on("block")
def block(seconds):
    time.sleep(seconds)
    return "blocked"


@socketio.on("ticker")
def ticker(count):
    def tick(sid):
        for i in range(count):
            socketio.sleep(0.1)
            socketio.emit("tick", i, to=sid)

    socketio.start_background_task(tick, request.sid)


@socketio.on("*")
def catch_all(event, *args):
    emit("caught", {"event": event, "args": list(args)})


@socketio.on("connect", namespace="*")
def any_connect(auth):
    emit("any welcome", request.namespace)


@socketio.on("star", namespace="*")
def star(data):
    emit("star", {"namespace": request.namespace, "data": data})


@socketio.on_error("/chat")
def chat_error(exc):
    return {"chat error": type(exc).__name__, "message": str(exc)}


@socketio.on_error_default
def default_error(exc):
    event = request.event
    return {"error": type(exc).__name__, "message": str(exc),
            "event": {"message": event["message"], "args": list(event["args"])}}


class ClassNamespace(Namespace):
    def on_connect(self, auth):
        emit("class welcome", auth)

    def on_disconnect(self, reason):
        self.socketio.emit("gone", {"sid": request.sid, "namespace": "/class", "reason": reason},
                           to="watchers", namespace="/")

    def on_my_event(self, data):
        emit("my response", data)
        return "handled"

    def on_shout(self, data):
        self.emit("shout", data)

    def on_shout_others(self, data):
        self.emit("shout others", data, include_self=False)

    def on_server(self):
        return self.socketio is socketio


class CustomNamespace(Namespace):
    def trigger_event(self, event, *args):
        if event in ("connect", "disconnect"):
            return None
        return {"routed": event, "last argument": args[-1], "arguments": len(args)}


socketio.on_namespace(ClassNamespace("/class"))
socketio.on_namespace(CustomNamespace("/custom"))

if __name__ == "__main__":
    socketio.run(app, host="127.0.0.1", port=PORT, allow_unsafe_werkzeug=True)
