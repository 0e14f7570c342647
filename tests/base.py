"""A ``tornado.testing.AsyncHTTPTestCase`` base for the in-process server tests."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict

import tornado.web
from tornado.testing import AsyncHTTPTestCase

from tornado_sio import SocketIO


class SocketIOTestCase(AsyncHTTPTestCase):
    """Serves ``self.socketio`` (built by :meth:`make_socketio`) on a test port."""

    socketio_options: Dict[str, Any] = {"cors_allowed_origins": "*"}
    app_settings: Dict[str, Any] = {}

    def make_socketio(self) -> SocketIO:
        return SocketIO(**self.socketio_options)

    def setup_handlers(self, socketio: SocketIO) -> None:
        """Register the handlers the test case needs."""

    def get_app(self) -> tornado.web.Application:
        self.socketio = self.make_socketio()
        self.setup_handlers(self.socketio)
        return tornado.web.Application(self.socketio.routes(), **self.app_settings)

    def tearDown(self) -> None:
        self.socketio.engine.stop()  # the one sweeper: heartbeats, SockJS expiry, ack expiry
        super().tearDown()

    @property
    def base_url(self) -> str:
        return self.get_url("")

    async def until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> None:
        """Wait (bounded) until *predicate()* is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.01)
