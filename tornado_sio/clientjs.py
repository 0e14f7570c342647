"""Serve the bundled browser client, minified and pre-compressed.

The client ships as package data, so a pip-installed tornado-sio serves it too,
with no CDN and no build step at install time. ``static/tornado_sio.js`` is the
readable source; ``tools/build_client.py`` builds ``static/dist/`` from it (the
minified script, an ES module, TypeScript declarations, and ``.gz``/``.br`` copies
of the minified files), and the build is checked in.

Under the prefix (``/tornado_sio`` by default):

======================  =====================================================
``client.js``           the client (``window.io``), minified
``client.esm.js``       the ES module build, minified: ``import {io} from ...``
``client.dev.js``       the readable source, for debugging
``client.esm.dev.js``   the ES module build, not minified
``client.d.ts``         TypeScript declarations of the client's API
======================  =====================================================

Each is sent in the best encoding the request's ``Accept-Encoding`` allows: brotli
when a ``.br`` file was built (it is when the ``brotli`` package was installed at
build time), else gzip, else as it is, with ``Vary: Accept-Encoding``, the
``Content-Encoding``, and an ETag per encoding (so If-None-Match gets a 304 only
for the bytes the client holds). A URL carrying the file's content hash
(``client.js?v=<12 hex of sha256>``, from :func:`script_path` and friends) is cached
for a year as immutable; any other request (an old page, a hand-typed URL) gets a
short cache.

``SocketIO.routes()`` includes :func:`routes`; templates use
``SocketIO.client_script_url``, which is :func:`script_path`.

.. versionchanged:: 0.2.0
   ``client.js`` is the minified build, sent pre-compressed; the ES module,
   the source (``client.dev.js``) and ``client.d.ts`` are new.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import re
from importlib import resources
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

import tornado.web
from tornado.routing import URLSpec

__all__ = [
    "ASSETS",
    "DEFAULT_PREFIX",
    "ClientScript",
    "ClientScriptHandler",
    "asset_path",
    "client_asset",
    "client_script",
    "dev_script_path",
    "esm_path",
    "negotiate_encoding",
    "routes",
    "script_path",
    "types_path",
]

log = logging.getLogger(__name__)

#: Where the client is mounted unless told otherwise.
DEFAULT_PREFIX = "/tornado_sio"

#: Cache-Control for a request that names the current version.
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
#: Cache-Control for any other request: the file may change under that URL.
SHORT_CACHE = "public, max-age=300"

JAVASCRIPT = "application/javascript; charset=UTF-8"
TYPESCRIPT = "application/typescript; charset=UTF-8"

#: URL name -> (Content-Type, files under ``tornado_sio/static/`` to serve, the first
#: that exists). ``client.js`` falls back to the source when the build is missing
#: (a checkout whose ``dist/`` was deleted), with a warning.
ASSETS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "client.js": (JAVASCRIPT, ("dist/tornado_sio.min.js", "tornado_sio.js")),
    "client.esm.js": (JAVASCRIPT, ("dist/tornado_sio.esm.min.js",)),
    "client.dev.js": (JAVASCRIPT, ("tornado_sio.js",)),
    "client.esm.dev.js": (JAVASCRIPT, ("dist/tornado_sio.esm.js",)),
    "client.d.ts": (TYPESCRIPT, ("dist/tornado_sio.d.ts",)),
}

#: Content codings in order of preference (smallest first); "identity" is always there.
PREFERENCE = ("br", "gzip", "identity")


class ClientScript(NamedTuple):
    """One served file: its bytes in every encoding there is, and their identities."""

    body: bytes  #: the file as it is (identity)
    sha256: str  #: full hex digest of ``body``
    content_type: str
    #: Content coding ("identity", "gzip", maybe "br") -> the bytes sent for it.
    encodings: Dict[str, bytes]
    #: Content coding -> its ETag (quoted sha256 of those bytes).
    etags: Dict[str, str]
    source: str  #: the file it came from, under ``tornado_sio/static/``

    @property
    def version(self) -> str:
        """The short content hash put in the URL (12 hex digits)."""
        return self.sha256[:12]


def _read(path: str) -> Optional[bytes]:
    node = resources.files("tornado_sio").joinpath("static")
    for part in path.split("/"):
        node = node.joinpath(part)
    return node.read_bytes() if node.is_file() else None


def _brotli(data: bytes) -> Optional[bytes]:
    try:
        import brotli
    except ImportError:
        return None
    compressed: bytes = brotli.compress(data, mode=brotli.MODE_TEXT, quality=11)
    return compressed


@functools.cache
def client_asset(name: str) -> Optional[ClientScript]:
    """The file served as *name* (a key of :data:`ASSETS`), read once; None if absent.

    Its ``.gz`` and ``.br`` copies are read from beside it; one that was not built is
    made here, once (brotli only when the ``brotli`` package is installed).
    """
    content_type, candidates = ASSETS[name]
    for path in candidates:
        body = _read(path)
        if body is not None:
            break
    else:
        return None
    if path != candidates[0]:
        log.warning("tornado-sio: %s is missing (run python tools/build_client.py); "
                    "serving %s unminified", candidates[0], path)
    encodings = {"identity": body}
    gzipped = _read(path + ".gz") or gzip.compress(body, compresslevel=9, mtime=0)
    encodings["gzip"] = gzipped
    brotli_body = _read(path + ".br") or _brotli(body)
    if brotli_body is not None:
        encodings["br"] = brotli_body
    etags = {coding: '"%s"' % hashlib.sha256(data).hexdigest() for coding, data in encodings.items()}
    return ClientScript(body, hashlib.sha256(body).hexdigest(), content_type, encodings, etags, path)


def client_script() -> ClientScript:
    """The client served as ``client.js`` (the minified build)."""
    script = client_asset("client.js")
    if script is None:  # the source itself is missing: a broken install
        raise RuntimeError("tornado_sio/static/tornado_sio.js is missing from the package")
    return script


def _quality(value: str) -> Optional[float]:
    try:
        return min(max(float(value), 0.0), 1.0)
    except ValueError:
        return None


def negotiate_encoding(accept_encoding: Optional[str], available: Iterable[str]) -> str:
    """The content coding to send: the one of *available* the client rates highest.

    *accept_encoding* is the request's header (RFC 9110 §12.5.3: codings with
    optional ``;q=`` weights, ``*`` for any other). Ties go to the smaller coding
    (br, then gzip). "identity" is always acceptable unless refused, and is also
    the answer when nothing else is acceptable (rather than a 406).
    """
    weights: Dict[str, float] = {}
    for item in (accept_encoding or "").split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                parsed = _quality(value.strip())
                q = parsed if parsed is not None else 0.0
        weights[coding] = q
    star = weights.get("*")
    codings = [c for c in PREFERENCE if c in set(available) | {"identity"}]
    rated: List[Tuple[float, int, str]] = []
    for rank, coding in enumerate(codings):
        # identity not named (nor "*"): acceptable, but after any coding the client named
        q = weights.get(coding, star if star is not None else (0.001 if coding == "identity" else 0.0))
        if q > 0:
            rated.append((q, -rank, coding))
    return max(rated)[2] if rated else "identity"


def _clean(prefix: str) -> str:
    return "/" + prefix.strip("/") if prefix.strip("/") else ""


def asset_path(name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The versioned URL of the file served as *name*, e.g. ``/tornado_sio/client.esm.js?v=0123456789ab``."""
    script = client_asset(name)
    version = f"?v={script.version}" if script is not None else ""
    return f"{_clean(prefix)}/{name}{version}"


def script_path(prefix: str = DEFAULT_PREFIX) -> str:
    """The URL of the client, with its content hash, e.g. ``/tornado_sio/client.js?v=0123456789ab``."""
    return asset_path("client.js", prefix)


def esm_path(prefix: str = DEFAULT_PREFIX) -> str:
    """The URL of the ES module build (``import {io} from "<this URL>"``)."""
    return asset_path("client.esm.js", prefix)


def dev_script_path(prefix: str = DEFAULT_PREFIX) -> str:
    """The URL of the readable, unminified client: a drop-in for :func:`script_path` when debugging."""
    return asset_path("client.dev.js", prefix)


def types_path(prefix: str = DEFAULT_PREFIX) -> str:
    """The URL of the TypeScript declarations."""
    return asset_path("client.d.ts", prefix)


class ClientScriptHandler(tornado.web.RequestHandler):
    """GET/HEAD one client file: negotiated encoding, per-encoding ETag, versioned caching."""

    script: ClientScript
    coding: str

    def compute_etag(self) -> Optional[str]:
        # Tornado sets this as ETag and answers a matching If-None-Match with 304.
        return self.script.etags[self.coding]

    def _prepare_headers(self, name: str) -> bytes:
        script = client_asset(name)
        if script is None:
            raise tornado.web.HTTPError(404)
        self.script = script
        self.coding = negotiate_encoding(self.request.headers.get("Accept-Encoding"), script.encodings)
        versioned = self.get_query_argument("v", None) == script.version
        self.set_header("Content-Type", script.content_type)
        self.set_header("Cache-Control", IMMUTABLE_CACHE if versioned else SHORT_CACHE)
        self.set_header("X-Content-Type-Options", "nosniff")
        if not (self.settings.get("compress_response") or self.settings.get("gzip")):
            # (with compress_response, Tornado's GZipContentEncoding adds it)
            self.set_header("Vary", "Accept-Encoding")
        if self.coding != "identity":
            self.set_header("Content-Encoding", self.coding)
        return script.encodings[self.coding]

    def get(self, name: str) -> None:
        self.write(self._prepare_headers(name))

    def head(self, name: str) -> None:
        self.set_header("Content-Length", str(len(self._prepare_headers(name))))


def routes(prefix: str = DEFAULT_PREFIX) -> List[URLSpec]:
    """The route serving ``{prefix}/client.js`` and the other files of :data:`ASSETS`."""
    names = "|".join(re.escape(name) for name in ASSETS)
    return [URLSpec(re.escape(_clean(prefix)) + f"/({names})", ClientScriptHandler)]
