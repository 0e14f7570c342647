"""Minimal raw Engine.IO/Socket.IO clients for protocol-level tests.

They speak the wire format by hand (no official client), so tests can send
exactly the bytes they mean, malformed ones included, and see exactly what the
server answers.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Union

from tornado.httpclient import (
    AsyncHTTPClient,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
)
from tornado.websocket import WebSocketClientConnection, websocket_connect

Frame = Union[str, bytes]


class RawWebSocket:
    """An Engine.IO v4 client over WebSocket, one frame at a time."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        self.handshake: dict = {}

    @classmethod
    async def open(cls, base_url: str, path: str = "/socket.io/", query: str = "EIO=4&transport=websocket",
                   headers: dict | None = None, handshake: bool = True) -> RawWebSocket:
        url = base_url.replace("http://", "ws://").rstrip("/") + path + "?" + query
        conn = await websocket_connect(HTTPRequest(url, headers=headers or {}))
        self = cls(conn)
        if handshake:
            opening = await self.recv()
            assert isinstance(opening, str) and opening[0] == "0", opening
            self.handshake = json.loads(opening[1:])
        return self

    async def send(self, frame: Frame) -> None:
        await self.conn.write_message(frame, binary=isinstance(frame, bytes))

    async def recv(self, timeout: float = 5.0, skip_pings: bool = True) -> Frame | None:
        """The next frame (None when the server closed). Answers pings when *skip_pings*."""
        while True:
            frame = await asyncio.wait_for(self.conn.read_message(), timeout)
            if skip_pings and frame == "2":
                await self.send("3")
                continue
            return frame

    async def connect(self, namespace: str = "/", auth: Any = None) -> str:
        """Send CONNECT; return the CONNECT reply frame (e.g. ``40{"sid":...}``)."""
        ns = "" if namespace == "/" else namespace + ","
        await self.send("40" + ns + (json.dumps(auth) if auth is not None else ""))
        return await self.recv()  # type: ignore[return-value]

    async def emit(self, event: str, *args: Any, namespace: str = "/", ack: int | None = None) -> None:
        ns = "" if namespace == "/" else namespace + ","
        await self.send("42" + ns + ("" if ack is None else str(ack)) + json.dumps([event, *args]))

    async def recv_event(self, timeout: float = 5.0) -> list[Any]:
        """Skip to the next EVENT frame and return its ``[event, *args]``."""
        while True:
            frame = await self.recv(timeout)
            if frame is None:
                raise ConnectionError("closed while waiting for an event")
            if isinstance(frame, str) and frame.startswith("42"):
                body = frame[2:]
                if body.startswith("/"):
                    body = body.split(",", 1)[1]
                while body and body[0].isdigit():
                    body = body[1:]
                return json.loads(body)

    async def closed(self, timeout: float = 5.0) -> bool:
        """Read until the server closes; True if it did within *timeout*."""
        try:
            while True:
                frame = await asyncio.wait_for(self.conn.read_message(), timeout)
                if frame is None:
                    return True
        except asyncio.TimeoutError:
            return False

    def close(self) -> None:
        self.conn.close()


class RawPolling:
    """An Engine.IO v4 client over HTTP long-polling."""

    def __init__(self, base_url: str, path: str = "/socket.io/") -> None:
        self.url = base_url.rstrip("/") + path
        self.http = AsyncHTTPClient()
        self.sid: str | None = None
        self.handshake: dict = {}

    async def request(self, method: str = "GET", query: str = "", body: str | bytes | None = None,
                      headers: dict | None = None, timeout: float = 10.0) -> HTTPResponse:
        """Any request to the endpoint; HTTP errors are returned, not raised."""
        q = "EIO=4&transport=polling" + (f"&sid={self.sid}" if self.sid else "") + ("&" + query if query else "")
        req = HTTPRequest(self.url + "?" + q, method=method, body=body, headers=headers or {},
                          request_timeout=timeout, allow_nonstandard_methods=True)
        try:
            return await self.http.fetch(req)
        except HTTPClientError as exc:
            assert exc.response is not None, exc
            return exc.response

    async def open(self, headers: dict | None = None) -> RawPolling:
        response = await self.request(headers=headers)
        assert response.code == 200, (response.code, response.body)
        text = response.body.decode()
        assert text[0] == "0", text
        self.handshake = json.loads(text[1:])
        self.sid = self.handshake["sid"]
        return self

    async def get(self, timeout: float = 10.0) -> list[str]:
        response = await self.request(timeout=timeout)
        assert response.code == 200, (response.code, response.body)
        return response.body.decode().split("\x1e")

    async def post(self, *packets: str) -> HTTPResponse:
        return await self.request("POST", body="\x1e".join(packets))

    async def connect(self, namespace: str = "/", auth: Any = None) -> str:
        ns = "" if namespace == "/" else namespace + ","
        response = await self.post("40" + ns + (json.dumps(auth) if auth is not None else ""))
        assert response.code == 200, response.body
        packets = await self.get()
        return packets[0]


def error_of(response: HTTPResponse) -> dict:
    """The JSON error body of an Engine.IO HTTP error."""
    return json.loads(response.body.decode())
