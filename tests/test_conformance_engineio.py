"""Engine.IO v4 at the edges: the spec (socketio/engine.io-protocol) and, where it is silent, Node.

Each test is one behaviour, against a raw Engine.IO endpoint (``EngineIOApp``)
driven byte for byte, so that nothing of Socket.IO is in the way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, ClassVar

import tornado.web
from tornado.httpclient import (
    AsyncHTTPClient,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
)
from tornado.testing import AsyncHTTPTestCase, gen_test

from tests.rawclient import RawPolling, RawWebSocket, error_of
from tornado_sio.engine_app import EngineIOApp

PATH = "/engine.io/"


class EngineCase(AsyncHTTPTestCase):
    """An ``EngineIOApp`` echoing messages and recording events."""

    options: ClassVar[dict[str, Any]] = {}

    def get_app(self) -> tornado.web.Application:
        self.eio = EngineIOApp(**{"cors_allowed_origins": "*", **self.options})
        self.events: list[tuple[str, Any]] = []

        @self.eio.on("connect")
        def on_connect(sid: str, request: Any) -> None:
            self.events.append(("connect", sid))

        @self.eio.on("message")
        def on_message(sid: str, data: Any) -> None:
            self.events.append(("message", data))
            self.eio.send(sid, data)

        @self.eio.on("disconnect")
        def on_disconnect(sid: str, reason: str) -> None:
            self.events.append(("disconnect", reason))

        return tornado.web.Application(self.eio.routes(PATH))

    def tearDown(self) -> None:
        self.eio.stop()
        super().tearDown()

    @property
    def base(self) -> str:
        return self.get_url("")

    async def polling(self) -> RawPolling:
        return await RawPolling(self.base, path=PATH).open()

    async def websocket(self, query: str = "EIO=4&transport=websocket", handshake: bool = True) -> RawWebSocket:
        return await RawWebSocket.open(self.base, path=PATH, query=query, handshake=handshake)

    async def fetch(self, method: str, query: str, body: Any = None, **kwargs: Any) -> HTTPResponse:
        request = HTTPRequest(self.get_url(PATH + "?" + query), method=method, body=body,
                              allow_nonstandard_methods=True, **kwargs)
        return await AsyncHTTPClient().fetch(request, raise_error=False)

    async def until(self, predicate: Any, timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
            await asyncio.sleep(0.01)

    def reasons(self) -> list[Any]:
        return [reason for kind, reason in self.events if kind == "disconnect"]

    async def upgrade(self, client: RawPolling) -> RawWebSocket:
        ws = await self.websocket(f"EIO=4&transport=websocket&sid={client.sid}", handshake=False)
        await ws.send("2probe")
        assert await ws.recv() == "3probe"
        await ws.send("5")
        await self.until(lambda: self.eio.engine.sessions[client.sid].transport == "websocket")
        return ws


# ---------------------------------------------------------------- handshake


class HandshakeTest(EngineCase):
    @gen_test
    async def test_a_handshake_by_any_method_but_get_is_400_bad_handshake_method(self):
        for method in ("POST", "PUT", "DELETE", "PATCH", "HEAD", "FROB"):
            response = await self.fetch(method, "EIO=4&transport=polling",
                                        body=b"" if method in ("POST", "PUT", "PATCH") else None)
            assert response.code == 400, method
            if method != "HEAD":
                assert error_of(response) == {"code": 2, "message": "Bad handshake method"}, method
        assert not self.eio.engine.sessions

    @gen_test
    async def test_a_non_get_handshake_for_websocket_is_400_bad_handshake_method(self):
        response = await self.fetch("PUT", "EIO=4&transport=websocket", body=b"")
        assert response.code == 400
        assert error_of(response) == {"code": 2, "message": "Bad handshake method"}

    @gen_test
    async def test_an_odd_method_on_a_session_is_400_bad_request_and_leaves_it_open(self):
        client = await self.polling()
        response = await self.fetch("DELETE", f"EIO=4&transport=polling&sid={client.sid}")
        assert response.code == 400
        assert error_of(response) == {"code": 3, "message": "Bad request"}
        assert not self.eio.engine.sessions[client.sid].closed

    @gen_test
    async def test_transport_names_must_match_exactly(self):
        for name in ("polling%00", "polling%20", "%20polling", "Polling", "websocket%00", "polling&transport=polling"):
            response = await self.fetch("GET", f"EIO=4&transport={name}")
            assert response.code == 400, name
            assert error_of(response) == {"code": 0, "message": "Transport unknown"}, name
        assert not self.eio.engine.sessions

    @gen_test
    async def test_a_websocket_with_an_inexact_transport_name_is_refused_before_its_101(self):
        with self.assertRaises(HTTPClientError) as ctx:
            await self.websocket("EIO=4&transport=websocket%00")
        assert ctx.exception.code == 400
        assert not self.eio.engine.sessions


# ---------------------------------------------------------------- closed sessions


class ClosedSessionTest(EngineCase):
    options: ClassVar[dict[str, Any]] = {"ping_interval": 0.2, "ping_timeout": 0.2}

    @gen_test
    async def test_a_session_closed_for_an_invalid_packet_is_unknown_at_once(self):
        client = await self.polling()
        response = await client.request("POST", body="abc")
        assert response.code == 400
        for method in ("GET", "POST"):
            late = await client.request(method, body="4x" if method == "POST" else None)
            assert (late.code, error_of(late)) == (400, {"code": 1, "message": "Session ID unknown"}), method
        assert self.reasons() == ["parse error"]

    @gen_test
    async def test_a_pending_get_is_answered_with_close_when_its_session_fails(self):
        client = await self.polling()
        pending = asyncio.ensure_future(client.request())
        await self.until(lambda: self.eio.engine.sessions[client.sid].polling)
        assert (await client.request("POST", body="abc")).code == 400
        assert (await pending).body == b"1"
        assert (await client.request()).code == 400

    @gen_test
    async def test_a_session_that_missed_its_pong_is_unknown_at_once(self):
        client = await self.polling()
        assert await client.get() == ["2"]  # the ping, never answered
        await self.until(lambda: client.sid not in self.eio.engine.sessions)
        assert (await client.request()).code == 400
        assert self.reasons() == ["ping timeout"]

    @gen_test
    async def test_overlapping_gets_answer_the_first_with_close_the_second_400_and_end_the_session(self):
        client = await self.polling()
        first = asyncio.ensure_future(client.request())
        await self.until(lambda: self.eio.engine.sessions[client.sid].polling)
        second = await client.request()
        assert second.code == 400
        assert (await first).body == b"1"
        assert (await client.request()).code == 400
        assert self.reasons() == ["transport error"]

    @gen_test
    async def test_a_server_close_hands_the_queue_then_close_to_the_next_gets_then_the_sid_is_unknown(self):
        client = await self.polling()
        self.eio.send(client.sid, "last words")
        self.eio.disconnect(client.sid)
        assert self.reasons() == ["server disconnect"]
        assert (await client.request("POST", body="4late")).code == 400  # nothing more is accepted
        # as Node's socket.close(): the buffer drains first, then the CLOSE goes out on the next GET
        assert await client.get() == ["4last words"]
        assert await client.get() == ["1"]
        assert (await client.request()).code == 400

    @gen_test
    async def test_a_server_close_answers_a_pending_get_with_the_queue_and_close(self):
        client = await self.polling()
        pending = asyncio.ensure_future(client.request())
        await self.until(lambda: self.eio.engine.sessions[client.sid].polling)
        self.eio.disconnect(client.sid)
        assert (await pending).body == b"1"
        assert (await client.request()).code == 400

    @gen_test
    async def test_a_server_closed_polling_session_is_freed_when_its_client_never_comes_back(self):
        client = await self.polling()
        self.eio.disconnect(client.sid)
        await self.until(lambda: client.sid not in self.eio.engine.sessions)  # after ping_timeout
        assert (await client.request()).code == 400


class ClientCloseTest(EngineCase):
    @gen_test
    async def test_a_close_packet_answers_the_pending_get_with_noop_and_ends_the_session(self):
        client = await self.polling()
        pending = asyncio.ensure_future(client.request())
        await self.until(lambda: self.eio.engine.sessions[client.sid].polling)
        assert (await client.request("POST", body="1")).body == b"ok"
        answer = await pending
        assert (answer.code, answer.body) == (200, b"6")
        late = await client.request()
        assert (late.code, error_of(late)["code"]) == (400, 1)
        assert self.reasons() == ["transport close"]

    @gen_test
    async def test_a_close_packet_without_a_pending_get_ends_the_session(self):
        client = await self.polling()
        self.eio.send(client.sid, "never collected")
        assert (await client.request("POST", body="1")).code == 200
        assert client.sid not in self.eio.engine.sessions
        assert (await client.request()).code == 400

    @gen_test
    async def test_a_close_packet_over_websocket_closes_it(self):
        ws = await self.websocket()
        await ws.send("1")
        assert await ws.closed()
        await self.until(lambda: self.reasons() == ["transport close"])


# ---------------------------------------------------------------- WebSocket


class SecondWebSocketTest(EngineCase):
    @gen_test
    async def test_a_second_websocket_after_an_upgrade_gets_its_101_then_is_closed(self):
        client = await self.polling()
        first = await self.upgrade(client)
        second = await self.websocket(f"EIO=4&transport=websocket&sid={client.sid}", handshake=False)
        assert await second.closed()
        await first.send("4still here")
        assert await first.recv() == "4still here"
        assert self.reasons() == []

    @gen_test
    async def test_a_second_websocket_for_a_websocket_session_gets_its_101_then_is_closed(self):
        first = await self.websocket()
        second = await self.websocket(f"EIO=4&transport=websocket&sid={first.handshake['sid']}", handshake=False)
        assert await second.closed()
        await first.send("4mine")
        assert await first.recv() == "4mine"

    @gen_test
    async def test_a_websocket_for_an_unknown_sid_is_refused_before_its_101(self):
        with self.assertRaises(HTTPClientError) as ctx:
            await self.websocket("EIO=4&transport=websocket&sid=nobody", handshake=False)
        assert ctx.exception.code == 400

    @gen_test
    async def test_a_polling_request_after_the_upgrade_is_400_and_the_websocket_goes_on(self):
        client = await self.polling()
        ws = await self.upgrade(client)
        assert (await client.request()).code == 400
        await ws.send("4hello")
        assert await ws.recv() == "4hello"


class ForceBase64Test(EngineCase):
    @gen_test
    async def test_a_base64_text_frame_is_a_binary_message(self):
        ws = await self.websocket()
        await ws.send("bAQID")  # engine.io-client with forceBase64: binary as "b" + base64 text
        assert await ws.recv() == b"\x01\x02\x03"
        assert ("message", b"\x01\x02\x03") in self.events

    @gen_test
    async def test_an_empty_base64_text_frame_is_an_empty_binary_message(self):
        ws = await self.websocket()
        await ws.send("b")
        assert await ws.recv() == b""

    @gen_test
    async def test_invalid_base64_in_a_text_frame_closes_that_session(self):
        ws = await self.websocket()
        await ws.send("b!!!")
        assert await ws.closed()
        await self.until(lambda: self.reasons() == ["parse error"])


# ---------------------------------------------------------------- limits


class PayloadTooLargeTest(EngineCase):
    options: ClassVar[dict[str, Any]] = {"max_http_buffer_size": 100}

    @gen_test
    async def test_a_polling_post_over_max_http_buffer_size_is_413_with_an_empty_body(self):
        client = await self.polling()
        response = await client.request("POST", body="4" + "x" * 200)
        assert (response.code, response.body) == (413, b"")

    @gen_test
    async def test_the_session_of_an_oversized_post_stays_open_for_its_client_to_end(self):
        client = await self.polling()
        await client.request("POST", body="4" + "x" * 200)
        assert not self.eio.engine.sessions[client.sid].closed
        assert self.reasons() == []
        assert (await client.post("4small")).code == 200
        assert await client.get() == ["4small"]


# ---------------------------------------------------------------- handshake headers


class NoCookieTest(EngineCase):
    @gen_test
    async def test_no_cookie_is_set_by_default(self):
        response = await RawPolling(self.base, path=PATH).request()
        assert "Set-Cookie" not in response.headers


class CookieTest(EngineCase):
    options: ClassVar[dict[str, Any]] = {"cookie": "io"}

    @gen_test
    async def test_the_polling_handshake_sets_a_cookie_holding_the_sid(self):
        response = await RawPolling(self.base, path=PATH).request()
        sid = json.loads(response.body[1:])["sid"]
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith(f"io={sid};"), cookie
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"path=/", "httponly", "samesite=lax"} <= attributes, cookie

    @gen_test
    async def test_only_the_handshake_sets_the_cookie(self):
        client = await self.polling()
        await client.post("4hi")
        response = await client.request()
        assert "Set-Cookie" not in response.headers


class CookieAttributesTest(EngineCase):
    options: ClassVar[dict[str, Any]] = {
        "cookie": {"name": "lb", "path": "/engine.io", "SameSite": "Strict", "secure": True,
                   "max_age": 3600, "domain": "example.com"},
    }

    @gen_test
    async def test_cookie_attributes_are_applied(self):
        response = await RawPolling(self.base, path=PATH).request()
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("lb="), cookie
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"path=/engine.io", "httponly", "samesite=strict", "secure", "max-age=3600",
                "domain=example.com"} <= attributes, cookie


class InitialHeadersTest(EngineCase):
    options: ClassVar[dict[str, Any]] = {
        "initial_headers": lambda request: {"X-Node": "node-7", "X-Path": request.path},
    }

    @gen_test
    async def test_the_hook_adds_headers_to_the_polling_handshake_only(self):
        response = await RawPolling(self.base, path=PATH).request()
        assert response.headers["X-Node"] == "node-7"
        assert response.headers["X-Path"] == PATH
        client = await self.polling()
        await client.post("4hi")
        assert "X-Node" not in (await client.request()).headers

    @gen_test
    async def test_the_hook_adds_headers_to_the_websocket_handshake(self):
        ws = await self.websocket()
        assert ws.conn.headers["X-Node"] == "node-7"


class InitialHeadersDictTest(EngineCase):
    options: ClassVar[dict[str, Any]] = {"initial_headers": {"X-Served-By": "a"}}

    @gen_test
    async def test_a_dict_of_headers_is_added_to_the_handshake(self):
        response = await RawPolling(self.base, path=PATH).request()
        assert response.headers["X-Served-By"] == "a"


class FailingInitialHeadersTest(EngineCase):
    options: ClassVar[dict[str, Any]] = {"initial_headers": lambda request: 1 / 0}

    @gen_test
    async def test_a_failing_hook_is_logged_and_the_handshake_goes_on(self):
        with self.assertLogs("tornado_sio.http", logging.ERROR):
            response = await RawPolling(self.base, path=PATH).request()
        assert response.code == 200


class MaxPacketsTest(EngineCase):
    options: ClassVar[dict[str, Any]] = {"max_packets": 3}

    @gen_test
    async def test_a_polling_post_with_more_packets_than_max_packets_is_400_and_closes_the_session(self):
        client = await self.polling()
        assert (await client.post("4a", "4b", "4c")).code == 200
        assert (await client.post("4a", "4b", "4c", "4d")).code == 400
        assert self.reasons() == ["parse error"]
