"""Serve the bundled browser client (``tornado_sio/static/tornado_sio.js``).

The script ships as package data, so a pip-installed tornado-sio serves it too,
with no CDN and no build step. Its URL carries a content hash
(``/tornado_sio/client.js?v=<12 hex of sha256>``): a request whose ``v`` matches
the current file is cached for a year as immutable; any other request (an old
page, a hand-typed URL) gets a short cache, and an ETag either way.

``SocketIO.routes()`` includes :func:`routes`; templates use
``SocketIO.client_script_url``, which is :func:`script_path`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources
from typing import List, NamedTuple

import tornado.web

__all__ = ["ClientScript", "ClientScriptHandler", "DEFAULT_PREFIX", "client_script", "routes", "script_path"]

#: Where the script is mounted unless told otherwise.
DEFAULT_PREFIX = "/tornado_sio"

#: Cache-Control for a request that names the current version.
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
#: Cache-Control for any other request: the file may change under that URL.
SHORT_CACHE = "public, max-age=300"


class ClientScript(NamedTuple):
    """The client's bytes and their identity, read once per process."""

    body: bytes
    sha256: str  #: full hex digest, used as the ETag

    @property
    def version(self) -> str:
        """The short content hash put in the URL (12 hex digits)."""
        return self.sha256[:12]


@functools.lru_cache(maxsize=None)
def client_script() -> ClientScript:
    """Read ``static/tornado_sio.js`` from the package (once) and hash it."""
    body = resources.files("tornado_sio").joinpath("static").joinpath("tornado_sio.js").read_bytes()
    return ClientScript(body, hashlib.sha256(body).hexdigest())


def _clean(prefix: str) -> str:
    return "/" + prefix.strip("/") if prefix.strip("/") else ""


def script_path(prefix: str = DEFAULT_PREFIX) -> str:
    """The URL of the client, with its content hash, e.g. ``/tornado_sio/client.js?v=0123456789ab``."""
    return f"{_clean(prefix)}/client.js?v={client_script().version}"


class ClientScriptHandler(tornado.web.RequestHandler):
    """GET/HEAD the client script with long-lived caching for versioned URLs."""

    def compute_etag(self) -> str:
        # Tornado sets this as ETag and answers If-None-Match with 304 itself.
        return f'"{client_script().sha256}"'

    def _prepare_headers(self) -> ClientScript:
        script = client_script()
        versioned = self.get_query_argument("v", None) == script.version
        self.set_header("Content-Type", "application/javascript; charset=UTF-8")
        self.set_header("Cache-Control", IMMUTABLE_CACHE if versioned else SHORT_CACHE)
        self.set_header("X-Content-Type-Options", "nosniff")
        return script

    def get(self) -> None:
        self.write(self._prepare_headers().body)

    def head(self) -> None:
        script = self._prepare_headers()
        self.set_header("Content-Length", str(len(script.body)))


def routes(prefix: str = DEFAULT_PREFIX) -> List[tornado.web.URLSpec]:
    """The route serving ``{prefix}/client.js``; add it to your Application."""
    pattern = re.escape(_clean(prefix)) + r"/client\.js"
    return [tornado.web.URLSpec(pattern, ClientScriptHandler)]
