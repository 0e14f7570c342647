"""The pure, sans-I/O protocol layer of tornado-sio.

Each module here turns values into wire text/bytes and back, and does nothing
else: no sockets, no IOLoop, no Tornado import. That keeps the rules of
Engine.IO v4 (:mod:`.engineio`), Socket.IO v5 (:mod:`.socketio`), RFC 6455
server frames (:mod:`.wsframe`) and strict JSON (:mod:`.jsonutil`) testable on
their own, and lets the engine and server import exactly what they need.

Nothing is re-exported here on purpose: import the submodule you use.
"""

from __future__ import annotations

__all__: list[str] = []
