"""Engine.IO v4 over HTTP long-polling, byte for byte (raw client)."""

import asyncio
import json
from typing import Any, ClassVar

from tornado.testing import gen_test

from tests.base import SocketIOTestCase
from tests.rawclient import RawPolling, error_of


class PollingHandshakeTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {
        "cors_allowed_origins": "*", "ping_interval": 0.25, "ping_timeout": 0.5,
    }

    @gen_test
    async def test_handshake_returns_open_packet_with_exact_sub_second_timings(self):
        client = await RawPolling(self.base_url).open()
        assert client.handshake["upgrades"] == ["websocket"]
        assert client.handshake["pingInterval"] == 250
        assert client.handshake["pingTimeout"] == 500
        assert client.handshake["maxPayload"] == 1_000_000
        assert len(client.sid) >= 20

    @gen_test
    async def test_handshake_json_is_compact(self):
        response = await RawPolling(self.base_url).request()
        assert b": " not in response.body and b", " not in response.body

    @gen_test
    async def test_wrong_eio_version_is_400_with_code_5(self):
        client = RawPolling(self.base_url)
        response = await client.http.fetch(client.url + "?EIO=3&transport=polling", raise_error=False)
        assert response.code == 400
        assert error_of(response) == {"code": 5, "message": "Unsupported protocol version"}

    @gen_test
    async def test_unknown_transport_is_400_with_code_0(self):
        client = RawPolling(self.base_url)
        response = await client.http.fetch(client.url + "?EIO=4&transport=carrier-pigeon", raise_error=False)
        assert response.code == 400
        assert error_of(response) == {"code": 0, "message": "Transport unknown"}

    @gen_test
    async def test_unknown_sid_is_400_with_code_1(self):
        client = RawPolling(self.base_url)
        client.sid = "nope"
        response = await client.request()
        assert response.code == 400
        assert error_of(response) == {"code": 1, "message": "Session ID unknown"}

    @gen_test
    async def test_post_without_sid_is_400_with_code_2(self):
        response = await RawPolling(self.base_url).request("POST", body="40")
        assert response.code == 400
        assert error_of(response)["code"] == 2

    @gen_test
    async def test_post_answers_lowercase_ok(self):
        client = await RawPolling(self.base_url).open()
        response = await client.post("40")
        assert response.code == 200
        assert response.body == b"ok"

    @gen_test
    async def test_connect_over_polling_returns_namespace_sid(self):
        client = await RawPolling(self.base_url).open()
        reply = await client.connect()
        assert reply.startswith("40{")
        assert json.loads(reply[2:])["sid"] != client.sid

    @gen_test
    async def test_server_pings_and_pong_keeps_session(self):
        client = await RawPolling(self.base_url).open()
        await client.connect()
        for _ in range(3):
            assert await client.get() == ["2"]
            await client.post("3")
        assert client.sid in self.socketio.engine.sessions

    @gen_test
    async def test_missed_pong_closes_session(self):
        client = await RawPolling(self.base_url).open()
        await client.connect()
        assert await client.get() == ["2"]
        await self.until(lambda: client.sid not in self.socketio.engine.sessions)

    @gen_test
    async def test_overlapping_get_is_refused_and_closes_session(self):
        client = await RawPolling(self.base_url).open()
        await client.connect()
        first = asyncio.ensure_future(client.request())
        await self.until(lambda: self.socketio.engine.sessions[client.sid].polling)  # the first GET waits
        second = await client.request()
        assert second.code == 400
        assert error_of(second)["code"] == 3
        first_response = await first
        assert first_response.body.decode().split("\x1e")[-1] == "1"
        assert client.sid not in self.socketio.engine.sessions

    @gen_test
    async def test_invalid_payload_closes_session_with_400(self):
        client = await RawPolling(self.base_url).open()
        response = await client.post("9garbage")
        assert response.code == 400
        assert error_of(response)["code"] == 3
        assert client.sid not in self.socketio.engine.sessions or \
            self.socketio.engine.sessions[client.sid].closed

    @gen_test
    async def test_post_after_close_is_refused(self):
        client = await RawPolling(self.base_url).open()
        await client.post("1")
        await asyncio.sleep(0.05)
        response = await client.post("40")
        assert response.code == 400

    @gen_test
    async def test_binary_payload_is_base64_prefixed_b(self):
        got = []

        @self.socketio.on("bin")
        def on_bin(data):
            got.append(data)
            return data

        client = await RawPolling(self.base_url).open()
        await client.connect()
        # 451-["bin",{"_placeholder":true,"num":0}] followed by the attachment.
        response = await client.post('451-1["bin",{"_placeholder":true,"num":0}]', "bAQID")
        assert response.code == 200
        # (a ping may come first on a loaded machine: the interval here is 0.25 s)
        packets = [packet for packet in await client.get() if packet != "2"]
        assert got == [b"\x01\x02\x03"]
        assert packets == ['461-1[{"_placeholder":true,"num":0}]', "bAQID"]


class PollingLimitsTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_http_buffer_size": 1000}

    @gen_test
    async def test_post_over_max_http_buffer_size_is_413_from_content_length(self):
        client = await RawPolling(self.base_url).open()
        response = await client.post("4" + "x" * 2000)
        assert response.code == 413

    @gen_test
    async def test_handshake_announces_max_payload(self):
        client = await RawPolling(self.base_url).open()
        assert client.handshake["maxPayload"] == 1000


class CorsTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": ["https://good.example"]}

    @gen_test
    async def test_allowed_origin_gets_cors_headers(self):
        response = await RawPolling(self.base_url).request(headers={"Origin": "https://good.example"})
        assert response.code == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://good.example"
        assert response.headers["Access-Control-Allow-Credentials"] == "true"

    @gen_test
    async def test_disallowed_origin_is_403_with_code_4(self):
        response = await RawPolling(self.base_url).request(headers={"Origin": "https://evil.example"})
        assert response.code == 403
        assert error_of(response) == {"code": 4, "message": "Forbidden"}

    @gen_test
    async def test_preflight_allows_methods_and_requested_headers(self):
        response = await RawPolling(self.base_url).request(
            "OPTIONS", headers={"Origin": "https://good.example", "Access-Control-Request-Headers": "x-token"})
        assert response.code == 204
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert response.headers["Access-Control-Allow-Headers"] == "x-token"

    @gen_test
    async def test_request_without_origin_is_allowed(self):
        response = await RawPolling(self.base_url).request()
        assert response.code == 200


class SameOriginDefaultTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {}

    @gen_test
    async def test_default_policy_accepts_same_origin(self):
        origin = self.base_url.rstrip("/")
        response = await RawPolling(self.base_url).request(headers={"Origin": origin})
        assert response.code == 200

    @gen_test
    async def test_default_policy_refuses_cross_origin(self):
        response = await RawPolling(self.base_url).request(headers={"Origin": "http://other.example"})
        assert response.code == 403


class AllowRequestTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*",
                        "allow_request": lambda req: req.headers.get("X-Token") == "letmein"}

    @gen_test
    async def test_allow_request_false_refuses_handshake(self):
        response = await RawPolling(self.base_url).request()
        assert response.code == 403

    @gen_test
    async def test_allow_request_true_admits_handshake(self):
        response = await RawPolling(self.base_url).request(headers={"X-Token": "letmein"})
        assert response.code == 200


class MaxConnectionsTest(SocketIOTestCase):
    socketio_options: ClassVar[dict[str, Any]] = {"cors_allowed_origins": "*", "max_connections": 1}

    @gen_test
    async def test_handshake_past_max_connections_is_503(self):
        await RawPolling(self.base_url).open()
        response = await RawPolling(self.base_url).request()
        assert response.code == 503


class RemoteAddressTest(SocketIOTestCase):
    app_settings: ClassVar[dict[str, Any]] = {}

    def setup_handlers(self, socketio):
        from tornado_sio import request

        @socketio.on("whoami")
        def whoami():
            return request.remote_addr

    def get_httpserver_options(self):
        return {"xheaders": True}

    @gen_test
    async def test_remote_addr_honours_xheaders(self):
        client = await RawPolling(self.base_url).open(headers={"X-Real-Ip": "203.0.113.9"})
        await client.connect()
        await client.post('421["whoami"]')
        assert await client.get() == ['431["203.0.113.9"]']


# ---------------------------------------------------------------- the lean path (no RequestHandler)


class LeanPathTest(SocketIOTestCase):
    """Polling requests are served by tornado_sio.http.polling.PollingExchange, not a RequestHandler."""

    def get_app(self):
        import tornado.web

        class Hello(tornado.web.RequestHandler):
            def get(self):
                self.write("hello")

        self.socketio = self.make_socketio()
        return tornado.web.Application([*self.socketio.routes(), (r"/hello", Hello)])

    async def raw_exchange(self, *requests: bytes, bodies: bool = True) -> bytes:
        """Send raw HTTP/1.1 requests on one connection, one after the other; return the replies."""
        from tornado.iostream import StreamClosedError
        from tornado.tcpclient import TCPClient

        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        got = b""
        try:
            for raw in requests:
                await stream.write(raw)
                head = await asyncio.wait_for(stream.read_until(b"\r\n\r\n"), 5)
                length = int(next((line.split(b":", 1)[1] for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), b"0"))
                got += head + (await stream.read_bytes(length) if length and bodies else b"")
        except StreamClosedError:
            pass
        finally:
            stream.close()
        return got

    @gen_test
    async def test_the_applications_other_routes_are_served_as_before(self):
        response = await self.http_client.fetch(self.get_url("/hello"))
        assert response.body == b"hello"

    @gen_test
    async def test_a_polling_connection_stays_alive_for_the_next_request(self):
        get = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"
        replies = await self.raw_exchange(get, get)
        assert replies.count(b"HTTP/1.1 200 OK") == 2
        assert b"Connection: close" not in replies

    @gen_test
    async def test_a_polling_reply_carries_date_type_length_and_no_store(self):
        response = await RawPolling(self.base_url).request()
        assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
        assert response.headers["Cache-Control"] == "no-store"
        assert int(response.headers["Content-Length"]) == len(response.body)
        assert "Date" in response.headers

    @gen_test
    async def test_a_head_request_is_400_without_a_body(self):
        replies = await self.raw_exchange(b"HEAD /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n",
                                          bodies=False)
        assert replies.startswith(b"HTTP/1.1 400 ")
        assert replies.endswith(b"\r\n\r\n")

    @gen_test
    async def test_a_waiting_get_whose_client_goes_away_leaves_the_session_open(self):
        from tornado.tcpclient import TCPClient

        client = await RawPolling(self.base_url).open()
        await client.connect()
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        await stream.write(f"GET /socket.io/?EIO=4&transport=polling&sid={client.sid} HTTP/1.1\r\nHost: x\r\n\r\n"
                           .encode())
        session = self.socketio.engine.sessions[client.sid]
        await self.until(lambda: session.polling)
        stream.close()
        await self.until(lambda: not session.polling)
        assert not session.closed
        waiting = asyncio.ensure_future(client.get())  # the next GET is no "overlapping" one
        await self.until(lambda: session.polling)
        session.send_text("still here")
        assert await waiting == ["4still here"]

    @gen_test
    async def test_the_access_log_has_tornados_line_when_that_logger_is_on(self):
        import logging

        seen = []

        class Keep(logging.Handler):
            def emit(self, record):
                seen.append(record.getMessage())

        access = logging.getLogger("tornado.access")
        keep, level = Keep(), access.level
        access.addHandler(keep)
        access.setLevel(logging.INFO)
        try:
            await RawPolling(self.base_url).request()
        finally:
            access.removeHandler(keep)
            access.setLevel(level)
        assert any(line.startswith("200 GET /socket.io/?EIO=4&transport=polling (127.0.0.1) ") for line in seen), seen
