"""The polling fast lane (``tornado_sio.http.front.EngineFront``) keeps every rule of the endpoint.

Every test case of the polling, Engine.IO conformance and hardening suites runs
a second time here with the front in front of the application (the ``...Front``
classes below), plus the front's own behaviours: what it serves itself, what it
hands to the application, and that Tornado's checks of the request still apply.
"""

from __future__ import annotations

import asyncio
import unittest
from typing import Any

import tornado.web
from tornado.httputil import HTTPHeaders, HTTPInputError, HTTPServerRequest, RequestStartLine
from tornado.iostream import StreamClosedError
from tornado.tcpclient import TCPClient
from tornado.testing import gen_test

import tests.test_conformance_engineio as conformance
import tests.test_engine_polling as polling
import tests.test_hardening_input as hardening_input
import tests.test_hardening_limits as hardening_limits
from tests.base import SocketIOTestCase
from tests.rawclient import RawPolling
from tornado_sio.http.front import EngineFront, find_endpoints, install, listen
from tornado_sio.http.polling import PollingExchange, PollingRequest


class FrontMixin:
    """Serve the test case's application behind an :class:`EngineFront` (mixed in before an ``AsyncHTTPTestCase``)."""

    http_server: Any

    def get_app(self) -> Any:
        return EngineFront(super().get_app())  # type: ignore[misc]

    def test_the_server_has_the_front_in_front_of_the_application(self) -> None:
        assert isinstance(self.http_server.request_callback, EngineFront)


def _front_variants(module: Any) -> dict[str, type]:
    """A ``<Name>Front`` subclass of every test case class defined in *module*."""
    made = {}
    for name, cls in vars(module).items():
        if (isinstance(cls, type) and issubclass(cls, unittest.TestCase) and cls.__module__ == module.__name__
                and any(attr.startswith("test_") for attr in dir(cls))):
            made[f"{name}Front"] = type(f"{name}Front", (FrontMixin, cls), {"__module__": __name__})
    return made


for _module in (polling, conformance, hardening_input, hardening_limits):
    globals().update(_front_variants(_module))


# ---------------------------------------------------------------- the front's own behaviours


async def raw_requests(port: int, *requests: bytes) -> bytes:
    """Send raw HTTP/1.1 requests on one connection, one after the other; return the replies."""
    stream = await TCPClient().connect("127.0.0.1", port)
    got = b""
    try:
        for raw in requests:
            await stream.write(raw)
            head = await asyncio.wait_for(stream.read_until(b"\r\n\r\n"), 5)
            length = int(next((line.split(b":", 1)[1] for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), b"0"))
            got += head + (await asyncio.wait_for(stream.read_bytes(length), 5) if length else b"")
    except StreamClosedError:
        pass
    finally:
        stream.close()
    return got


def tornado_refuses_host(host: str) -> bool:
    """Whether Tornado's own ``HTTPServerRequest`` refuses this ``Host`` value (its 400)."""
    try:
        HTTPServerRequest(start_line=RequestStartLine("GET", "/", "HTTP/1.1"), headers=HTTPHeaders({"Host": host}))
    except HTTPInputError:
        return True
    return False


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("hello")


class FrontTest(SocketIOTestCase):
    """What the front serves itself and what it hands to the application."""

    def get_app(self) -> Any:
        self.socketio = self.make_socketio()
        self.application = tornado.web.Application([*self.socketio.routes(), (r"/hello", Hello)])
        self.front = EngineFront(self.application)
        return self.front

    def served(self) -> list[Any]:
        """The requests the polling exchanges of the endpoint saw (recorded by wrapping ``finish``)."""
        seen: list[Any] = []
        original = PollingExchange.finish

        def finish(exchange: PollingExchange) -> None:
            seen.append(exchange.request)
            original(exchange)

        PollingExchange.finish = finish  # type: ignore[method-assign]
        self.addCleanup(setattr, PollingExchange, "finish", original)
        return seen

    def test_the_front_finds_the_applications_polling_endpoint(self):
        assert [target for _, target in find_endpoints(self.application)] == [
            target for _, target in self.front.endpoints]
        assert len(self.front.endpoints) == 1

    @gen_test
    async def test_the_applications_other_routes_are_served_as_before(self):
        response = await self.http_client.fetch(self.get_url("/hello"))
        assert response.body == b"hello"

    @gen_test
    async def test_requests_on_a_session_get_the_lean_request_once_the_host_was_seen(self):
        seen = self.served()
        client = await RawPolling(self.base_url).open()
        await client.connect()
        assert not isinstance(seen[0], PollingRequest)  # the handshake: Tornado's request
        assert isinstance(seen[-1], PollingRequest)

    @gen_test
    async def test_a_handshake_hands_tornados_own_request_to_the_application(self):
        requests: list[Any] = []

        @self.socketio.on("connect")
        def connect(auth: Any = None) -> None:
            from tornado_sio import request

            requests.append(request.tornado_request)

        client = await RawPolling(self.base_url).open()
        await client.connect()
        assert type(requests[0]).__name__ == "HTTPServerRequest"

    @gen_test
    async def test_a_host_tornado_refuses_is_refused_even_after_good_requests(self):
        good = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: example.com\r\n\r\n"
        bad = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a,b\r\n\r\n"
        replies = await raw_requests(self.get_http_port(), good, bad)
        assert replies.startswith(b"HTTP/1.1 200 OK")
        if tornado_refuses_host("a,b"):  # Tornado 6.6 refuses a comma; older ones accept it
            assert replies.count(b"HTTP/1.1 200 OK") == 1 and b"HTTP/1.1 400" in replies
        else:
            assert replies.count(b"HTTP/1.1 200 OK") == 2

    @gen_test
    async def test_a_query_with_many_fields_gets_tornados_request(self):
        seen = self.served()
        many = "&".join(f"f{i}=x" for i in range(20))
        warm = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: h\r\n\r\n"
        request = f"GET /socket.io/?EIO=4&transport=polling&{many} HTTP/1.1\r\nHost: h\r\n\r\n".encode()
        replies = await raw_requests(self.get_http_port(), warm, request)
        assert replies.count(b"HTTP/1.1 200 OK") == 2
        assert not isinstance(seen[-1], PollingRequest)

    @gen_test
    async def test_a_websocket_request_goes_to_the_application(self):
        from tornado.websocket import websocket_connect

        url = self.get_url("/socket.io/?EIO=4&transport=websocket").replace("http", "ws", 1)
        connection = await websocket_connect(url)
        try:
            opening = await asyncio.wait_for(connection.read_message(), 5)
            assert isinstance(opening, str) and opening.startswith("0{")
        finally:
            connection.close()

    @gen_test
    async def test_a_keep_alive_connection_serves_polling_then_other_routes(self):
        poll = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: h\r\n\r\n"
        hello = b"GET /hello HTTP/1.1\r\nHost: h\r\n\r\n"
        replies = await raw_requests(self.get_http_port(), poll, poll, hello)
        assert replies.count(b"HTTP/1.1 200 OK") == 3
        assert replies.endswith(b"hello")


class ListenTest(unittest.TestCase):
    """``listen()`` is ``Application.listen`` with the front; ``install()`` puts it on a listening server once."""

    def test_install_puts_the_front_before_the_application_once(self):
        from tornado.httpserver import HTTPServer

        application = tornado.web.Application([])
        server = HTTPServer(application)
        assert install(install(server)) is server
        assert isinstance(server.request_callback, EngineFront)
        assert server.request_callback.application is application

    def test_listen_serves_the_application_behind_the_front(self):
        from tornado.httpclient import AsyncHTTPClient

        from tests.support import free_port
        from tornado_sio import SocketIO

        async def main() -> tuple[Any, bytes]:
            socketio = SocketIO()
            port = free_port()
            server = listen(tornado.web.Application([*socketio.routes(), (r"/hello", Hello)]), port,
                            "127.0.0.1", backlog=16)
            try:
                response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/hello")
                return server.request_callback, response.body
            finally:
                server.stop()
                await server.close_all_connections()
                socketio.engine.stop()

        callback, body = asyncio.run(main())
        assert isinstance(callback, EngineFront)
        assert body == b"hello"


QUERIES = ["", "a", "a=", "=b", "a=b&&c=d", "&", "a=1&a=2&b", "EIO=4&transport=polling&t=Ocdx.1&sid=Ab-_c",
           "x==y", "a=b=c", "é=ü", "a&b&c=", "a;b=c", "sid=%20x", "t=a+b", "&&&a=1&", "transport=polling%00"]


def test_the_fronts_query_parser_agrees_with_tornados():
    from tornado.escape import parse_qs_bytes

    from tornado_sio.http.front import parse_query

    for query in QUERIES:
        assert parse_query(query) == parse_qs_bytes(query, keep_blank_values=True), query
