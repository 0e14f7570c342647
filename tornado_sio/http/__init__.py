"""The Tornado side (layer 3): HTTP long-polling, WebSocket and SockJS handlers.

* ``routes``: :func:`~tornado_sio.http.routes.endpoint_routes`, the rules of an
  Engine.IO endpoint;
* ``policy``: the handshake gate, the origin/CORS policy and the body-size guard
  shared by every handler;
* ``endpoint``, ``polling``, ``websocket``: the Engine.IO handlers;
* ``sockjs``: :class:`~tornado_sio.http.sockjs.SockJSEndpoint`, the SockJS fallback;
* ``_fastpath``: the only code on Tornado's and sockjs-tornado's private API.

It imports the engine, never the Socket.IO server.
"""

__all__: list[str] = []
