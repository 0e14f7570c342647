"""Flask-SocketIO's API and semantics on tornado-sio, one behaviour per test.

Where a test matches a Flask-SocketIO behaviour it says which; the
side-by-side run against Flask-SocketIO itself is ``test_flask_parity.py``.
"""

import json as stdjson
import logging
import types
from datetime import date

import pytest
import socketio as python_socketio
import tornado.web
from tornado.testing import AsyncHTTPTestCase, gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawPolling
from tornado_sio import Namespace, Options, SocketIO, emit, join_room, request, rooms, send, session
from tornado_sio.adapter.memory import MemoryAdapter
from tornado_sio.options import ORIGIN_CHECKS_OFF

# -- emitting -------------------------------------------------------------------


def received(client, namespace="/"):
    return [(item["name"], item["args"]) for item in client.get_received(namespace)]


def test_emit_of_one_tuple_sends_its_items_as_arguments_as_flask_socketio_documents():
    sio = SocketIO()

    @sio.on("go")
    def go():
        emit("triple", ("a", "b", 3))

    client = sio.test_client()
    client.emit("go")
    assert received(client) == [("triple", ["a", "b", 3])]


def test_emit_of_several_arguments_sends_them_all():
    sio = SocketIO()

    @sio.on("go")
    def go():
        emit("pair", "a", "b")

    client = sio.test_client()
    client.emit("go")
    assert received(client) == [("pair", ["a", "b"])]


def test_send_json_true_sends_a_json_event_as_flask_socketio():
    sio = SocketIO()

    @sio.on("go")
    def go():
        send({"k": 1}, json=True)

    client = sio.test_client()
    client.emit("go")
    assert received(client) == [("json", {"k": 1})]


def test_server_emit_include_self_false_leaves_out_the_client_being_handled():
    sio = SocketIO()

    @sio.on("go")
    def go():
        sio.emit("all but me", 1, include_self=False)

    sender, other = sio.test_client(), sio.test_client()
    sender.emit("go")
    assert received(sender) == []
    assert received(other) == [("all but me", [1])]


def test_emit_ignore_queue_asks_the_adapter_for_this_process_only():
    broadcasts = []

    class Spy(MemoryAdapter):
        def broadcast(self, packet, opts):
            broadcasts.append(opts.local)
            super().broadcast(packet, opts)

    sio = SocketIO(client_manager=Spy)

    @sio.on("go")
    def go():
        emit("local", 1, broadcast=True, ignore_queue=True)
        sio.emit("everywhere", 2)

    client = sio.test_client()
    client.emit("go")
    assert broadcasts == [True, False]
    assert received(client) == [("local", [1]), ("everywhere", [2])]


# -- rooms and sessions ------------------------------------------------------------


def test_rooms_are_listed_in_join_order_with_the_clients_own_room_first():
    sio = SocketIO()

    @sio.on("join")
    def join(*names):
        for name in names:
            join_room(name)
        return rooms()

    sio.test_client().emit("join", "older")
    client = sio.test_client()
    assert client.emit("join", "new", "older", "b", callback=True) == [client.get_sid(), "new", "older", "b"]


def test_session_is_shared_by_the_namespaces_of_one_client_as_in_flask_socketio():
    sio = SocketIO()

    @sio.on("set")
    def set_value(value):
        session["value"] = value

    @sio.on("get", namespace="/chat")
    def get_value():
        return session.get("value")

    client = sio.test_client()
    client.connect("/chat")
    client.emit("set", "blue")
    assert client.emit("get", namespace="/chat", callback=True) == "blue"


def test_session_of_another_client_is_its_own():
    sio = SocketIO()

    @sio.on("set")
    def set_value(value):
        session["value"] = value

    @sio.on("get")
    def get_value():
        return {"value": session.get("value")}

    sio.test_client().emit("set", "blue")
    assert sio.test_client().emit("get", callback=True) == {"value": None}


def test_get_session_reads_the_session_by_sid():
    sio = SocketIO()

    @sio.on("set")
    def set_value(value):
        session["value"] = value

    client = sio.test_client()
    client.emit("set", 7)
    assert sio.get_session(client.get_sid()) == {"value": 7}


def test_save_session_replaces_the_session_by_sid():
    sio = SocketIO()

    @sio.on("get")
    def get_value():
        return dict(session)

    client = sio.test_client()
    sio.save_session(client.get_sid(), {"user": "ada"})
    assert client.emit("get", callback=True) == {"user": "ada"}


def test_session_context_manager_changes_the_session_by_sid():
    sio = SocketIO()

    @sio.on("get")
    def get_value():
        return session.get("user")

    client = sio.test_client()
    with sio.session(client.get_sid()) as data:
        data["user"] = "grace"
    assert client.emit("get", callback=True) == "grace"


def test_namespace_session_helpers_reach_the_same_session():
    sio = SocketIO()
    chat = Namespace("/chat")
    sio.on_namespace(chat)
    client = sio.test_client()
    chat.save_session(client.get_sid(), {"a": 1})
    with chat.session(client.get_sid()) as data:
        data["b"] = 2
    assert chat.get_session(client.get_sid()) == {"a": 1, "b": 2}


def test_get_session_of_an_unknown_sid_raises_key_error():
    with pytest.raises(KeyError):
        SocketIO().get_session("nobody")


# -- disconnect reasons -----------------------------------------------------------------


def reasons_server():
    sio = SocketIO()
    reasons = []

    @sio.on("disconnect")
    def on_disconnect(reason):
        reasons.append(reason)

    @sio.on("leave me")
    def leave_me():
        from tornado_sio import disconnect

        disconnect()

    return sio, reasons


def test_server_side_disconnect_reason_is_server_disconnect_as_python_socketio():
    sio, reasons = reasons_server()
    sio.test_client().emit("leave me")
    assert reasons == [SocketIO.reason.SERVER_DISCONNECT] == ["server disconnect"]


def test_client_leaving_a_namespace_gives_client_disconnect_as_python_socketio():
    sio, reasons = reasons_server()
    sio.test_client().disconnect()
    assert reasons == [SocketIO.reason.CLIENT_DISCONNECT] == ["client disconnect"]


def test_reason_constants_are_python_socketios():
    names = ("CLIENT_DISCONNECT", "SERVER_DISCONNECT", "PING_TIMEOUT", "TRANSPORT_CLOSE", "TRANSPORT_ERROR")
    assert {n: getattr(SocketIO.reason, n) for n in names} == {
        n: getattr(python_socketio.Server.reason, n) for n in names}


# -- error handlers ---------------------------------------------------------------------


def failing_server():
    sio = SocketIO()

    @sio.on("fail")
    def fail(x):
        raise ValueError(f"bad {x}")

    @sio.on("fail", namespace="/quiet")
    def fail_quietly():
        raise ValueError("nobody answers")

    return sio


def test_error_handler_return_value_answers_the_ack_as_in_flask_socketio():
    sio = failing_server()

    @sio.on_error_default
    def on_error(exc):
        return f"handled {exc}"

    assert sio.test_client().emit("fail", 1, callback=True) == "handled bad 1"


def test_request_event_in_an_error_handler_is_flask_socketios_dict():
    sio = failing_server()

    @sio.on_error()
    def on_error(exc):
        return request.event

    assert sio.test_client().emit("fail", 2, callback=True) == {"message": "fail", "args": [2]}


def test_async_error_handler_return_value_answers_the_ack():
    sio = failing_server()

    @sio.on_error_default
    async def on_error(exc):
        return type(exc).__name__

    assert sio.test_client().emit("fail", 3, callback=True) == "ValueError"


def test_without_an_error_handler_a_failing_handler_sends_no_ack(caplog):
    sio = failing_server()
    client = sio.test_client()
    client.connect("/quiet")
    with caplog.at_level(logging.ERROR, "tornado_sio.server"):
        assert client.emit("fail", namespace="/quiet", callback=True) is None
    assert "'fail'" in caplog.text


# -- namespaces ---------------------------------------------------------------------------


def test_handler_of_namespace_star_serves_every_namespace_reading_request_namespace():
    sio = SocketIO(namespaces="*")

    @sio.on("where", namespace="*")
    def where(data):
        return [request.namespace, data]

    client = sio.test_client(namespace="/a")
    client.connect("/b")
    assert client.emit("where", 1, namespace="/a", callback=True) == ["/a", 1]
    assert client.emit("where", 2, namespace="/b", callback=True) == ["/b", 2]


def test_connect_handler_of_namespace_star_runs_for_namespaces_without_their_own():
    sio = SocketIO(namespaces="*")

    @sio.on("connect", namespace="*")
    def any_connect(auth):
        emit("hello", request.namespace)

    client = sio.test_client(namespace="/x")
    assert received(client, "/x") == [("hello", ["/x"])]


def test_catch_all_event_of_namespace_star_gets_the_event_name_first():
    sio = SocketIO(namespaces="*")

    @sio.on("*", namespace="*")
    def anything(event, data):
        return [request.namespace, event, data]

    client = sio.test_client(namespace="/y")
    assert client.emit("whatever", 3, namespace="/y", callback=True) == ["/y", "whatever", 3]


class Router(Namespace):
    def __init__(self, namespace):
        super().__init__(namespace)
        self.routed = []

    def trigger_event(self, event, *args):
        self.routed.append((event, args))
        return ["routed", event]


def test_an_overridden_trigger_event_routes_every_event_connect_included():
    sio = SocketIO()
    router = Router("/r")
    sio.on_namespace(router)
    client = sio.test_client(namespace="/r", auth={"k": 1})
    assert client.emit("anything", 5, namespace="/r", callback=True) == ["routed", "anything"]
    assert router.routed == [("connect", ({"k": 1},)), ("anything", (5,))]


def test_namespace_has_the_server_as_socketio():
    sio = SocketIO()
    chat = Namespace("/chat")
    sio.on_namespace(chat)
    assert chat.socketio is sio


def test_namespace_emit_include_self_false_leaves_out_the_sender():
    sio = SocketIO()

    class Chat(Namespace):
        def on_shout(self, data):
            self.emit("shout", data, include_self=False)

    sio.on_namespace(Chat("/chat"))
    sender, other = sio.test_client(namespace="/chat"), sio.test_client(namespace="/chat")
    sender.emit("shout", "hi", namespace="/chat")
    assert received(sender, "/chat") == []
    assert received(other, "/chat") == [("shout", ["hi"])]


# -- construction and options ----------------------------------------------------------------


@pytest.mark.parametrize("mode", [None, "tornado"])
def test_async_mode_tornado_or_none_is_accepted(mode):
    assert SocketIO(async_mode=mode).async_mode == "tornado"


@pytest.mark.parametrize("mode", ["threading", "eventlet", "gevent"])
def test_other_async_modes_raise_naming_handler_threads(mode):
    with pytest.raises(ValueError, match="handler_threads"):
        SocketIO(async_mode=mode)


def test_cors_allowed_origins_empty_list_is_origin_checks_off():
    assert Options(cors_allowed_origins=[]).cors_allowed_origins is ORIGIN_CHECKS_OFF


def test_always_connect_accepts_first_then_a_refusal_is_a_disconnect():
    sio = SocketIO(always_connect=True)
    states = []

    @sio.on("connect")
    def on_connect(auth):
        states.append(request.sid in sio.adapter.by_sid and sio.local_socket(request.sid).connected)
        return auth != {"let me": "no"}

    accepted = sio.test_client(auth={"let me": "in"})
    refused = sio.test_client(auth={"let me": "no"})
    assert states == [True, True]
    assert accepted.is_connected()
    assert not refused.is_connected()


def test_json_option_passes_outgoing_data_through_the_custom_module():
    def dumps(obj, **kwargs):
        return stdjson.dumps(obj, default=lambda o: o.isoformat(), **kwargs)

    custom = types.SimpleNamespace(dumps=dumps, loads=stdjson.loads)
    sio = SocketIO(json=custom)

    @sio.on("today")
    def today():
        emit("date", date(2024, 5, 17))
        return date(2024, 5, 18)

    client = sio.test_client()
    assert client.emit("today", callback=True) == "2024-05-18"
    assert received(client) == [("date", ["2024-05-17"])]


def test_json_option_passes_incoming_data_through_the_custom_module():
    def loads(text, **kwargs):
        return stdjson.loads(text, object_hook=lambda d: {**d, "decoded": True}, **kwargs)

    sio = SocketIO(json=types.SimpleNamespace(dumps=stdjson.dumps, loads=loads))

    @sio.on("echo")
    def echo(data):
        return data

    assert sio.test_client().emit("echo", {"a": 1}, callback=True) == {"a": 1, "decoded": True}


def test_json_option_without_dumps_and_loads_raises():
    with pytest.raises(ValueError, match="dumps"):
        SocketIO(json=object())


def test_manage_session_false_is_accepted_and_session_still_works():
    sio = SocketIO(manage_session=False)

    @sio.on("count")
    def count():
        session["n"] = session.get("n", 0) + 1
        return session["n"]

    client = sio.test_client()
    client.emit("count")
    assert client.emit("count", callback=True) == 2


@pytest.fixture
def logging_restored():
    """Put back the level, handlers and propagation of tornado-sio's loggers after the test."""
    names = ("tornado_sio.server", "tornado_sio.adapter", "tornado_sio.engine", "tornado_sio.http",
             "tornado_sio.connections")
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers),
                    logging.getLogger(name).propagate) for name in names}
    yield
    for name, (level, handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers = handlers
        logger.propagate = propagate


def test_logger_true_logs_the_socketio_layer_at_info(logging_restored):
    logging.getLogger("tornado_sio.server").setLevel(logging.WARNING)
    SocketIO(logger=True)
    assert logging.getLogger("tornado_sio.server").getEffectiveLevel() == logging.INFO


def test_a_logger_given_as_engineio_logger_receives_the_engine_layers_records(logging_restored):
    target = logging.getLogger("test.engineio")
    target.setLevel(logging.DEBUG)
    got = []

    class Keep(logging.Handler):
        def emit(self, record):
            got.append(record.name)

    target.addHandler(Keep())
    SocketIO(engineio_logger=target)
    logging.getLogger("tornado_sio.engine").info("a record of the engine")
    logging.getLogger("tornado_sio.server").info("a record of the server")
    assert got == ["tornado_sio.engine"]


# -- request ---------------------------------------------------------------------------------


def test_request_has_url_host_path_method_and_the_tornado_request():
    sio = SocketIO()

    @sio.on("describe")
    def describe():
        return {"url": request.url, "full_url": request.full_url, "host": request.host, "path": request.path,
                "method": request.method, "query": request.tornado_request.query_arguments["foo"][0].decode()}

    client = sio.test_client(query_string="foo=bar")
    assert client.emit("describe", callback=True) == {
        "url": "http://localhost/socket.io/?EIO=4&transport=websocket&foo=bar",
        "full_url": "http://localhost/socket.io/?EIO=4&transport=websocket&foo=bar",
        "host": "localhost", "path": "/socket.io/", "method": "GET", "query": "bar"}


# -- the application ------------------------------------------------------------------------


class CatchAll(tornado.web.RequestHandler):
    def get(self, path):
        self.write("catch-all")


class SocketIOWithAppTest(AsyncHTTPTestCase):
    def get_app(self):
        self.app = tornado.web.Application([(r"/(.*)", CatchAll)])
        self.socketio = SocketIO(self.app)
        return self.app

    def tearDown(self):
        self.socketio.engine.stop()
        super().tearDown()

    @gen_test
    async def test_socketio_app_adds_the_endpoint_in_front_of_the_apps_routes(self):
        handshake = await RawPolling(self.get_url("")).request()
        assert handshake.code == 200 and handshake.body.startswith(b"0{")
        page = await self.http_client.fetch(self.get_url("/anything"))
        assert page.body == b"catch-all"


class InitAppTest(AsyncHTTPTestCase):
    def get_app(self):
        self.socketio = SocketIO()
        app = tornado.web.Application()
        self.socketio.init_app(app, cors_allowed_origins=[])
        return app

    def tearDown(self):
        self.socketio.engine.stop()
        super().tearDown()

    @gen_test
    async def test_init_app_takes_options_and_adds_the_routes(self):
        response = await RawPolling(self.get_url("")).request(headers={"Origin": "https://elsewhere.example"})
        assert response.code == 200


class OriginChecksOffTest(SocketIOTestCase):
    socketio_options = {"cors_allowed_origins": []}

    @gen_test
    async def test_cors_allowed_origins_empty_list_accepts_any_origin_as_flask_socketio_documents(self):
        response = await RawPolling(self.base_url).request(headers={"Origin": "https://elsewhere.example"})
        assert response.code == 200

    @gen_test
    async def test_cors_allowed_origins_empty_list_logs_a_warning_at_start(self):
        with self.assertLogs("tornado_sio.server", logging.WARNING) as logs:
            await self.socketio.start()
        assert "origin checks are off" in logs.output[0]
