"""Where browsers load sockjs-client from: one script for the page and the iframe page.

sockjs-client runs twice in a browser that uses an iframe-based transport: on
the application's page, and inside the SockJS iframe page
(``<prefix>/iframe.html``) that the server renders. Both must load the same
version, so one option, ``sockjs_client_url``, names the script for both, and
``sockjs_client_integrity`` its Subresource Integrity hash.

The default is sockjs-client |version| on jsDelivr, pinned by its SRI hash, so a
CDN that serves other bytes cannot run code on the page. Any other URL on
another origin needs its hash too (:func:`client_script` refuses it otherwise);
a path on the server's own origin (``/static/sockjs.min.js``) needs none.

.. |version| replace:: 1.6.1
"""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Optional
from urllib.parse import urlsplit

from ...options import Options

__all__ = [
    "DEFAULT_SOCKJS_INTEGRITY",
    "DEFAULT_SOCKJS_URL",
    "SOCKJS_CLIENT_VERSION",
    "ClientScript",
    "client_script",
]

#: The sockjs-client release the default URL names (the npm package ``sockjs-client``).
SOCKJS_CLIENT_VERSION = "1.6.1"
#: sockjs-client on jsDelivr, the default ``sockjs_client_url``.
DEFAULT_SOCKJS_URL = f"https://cdn.jsdelivr.net/npm/sockjs-client@{SOCKJS_CLIENT_VERSION}/dist/sockjs.min.js"
#: The SRI hash of :data:`DEFAULT_SOCKJS_URL`: the sha384 of ``dist/sockjs.min.js`` in the
#: npm package sockjs-client 1.6.1 (``openssl dgst -sha384 -binary sockjs.min.js | openssl base64 -A``;
#: ``tests/test_sockjs.py`` recomputes it from the npm copy).
DEFAULT_SOCKJS_INTEGRITY = "sha384-svdnwiXBL+Js+yUneJSRFy24NgGiOfDM/vkQl/vCeVrcbYD6yW8EwPr1FnxTEZsR"

#: One or more SRI hashes, space-separated (the ``integrity`` attribute's syntax, options left out).
_INTEGRITY = re.compile(r"sha(?:256|384|512)-[A-Za-z0-9+/]+={0,2}(?:\s+sha(?:256|384|512)-[A-Za-z0-9+/]+={0,2})*")


@dataclasses.dataclass(frozen=True)
class ClientScript:
    """The sockjs-client script a page loads: its URL and, when given, its SRI hash.

    ``integrity`` is None for a same-origin path without a configured hash.
    """

    url: str
    integrity: Optional[str] = None

    @property
    def origin(self) -> Optional[str]:
        """The script's origin (``https://cdn.jsdelivr.net``) when the URL names a host, for a
        page's Content-Security-Policy ``script-src``; None for a path on the page's own origin."""
        parts = urlsplit(self.url)
        if not parts.netloc:
            return None
        # A scheme-relative URL (//cdn.example/...) takes the page's scheme, as a CSP host-source does.
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme else parts.netloc

    def attributes(self) -> str:
        """The ``<script>`` attributes, HTML-escaped: ``src``, and with a hash ``integrity``
        and ``crossorigin="anonymous"`` (SRI on a cross-origin script needs a CORS request)."""
        text = f'src="{html.escape(self.url, quote=True)}"'
        if self.integrity:
            text += f' integrity="{html.escape(self.integrity, quote=True)}" crossorigin="anonymous"'
        return text

    def tag(self) -> str:
        """The whole ``<script ...></script>`` element."""
        return f"<script {self.attributes()}></script>"


def client_script(options: Options) -> ClientScript:
    """The sockjs-client script of *options* (``sockjs_client_url``, ``sockjs_client_integrity``).

    ``sockjs_client_url=None`` is :data:`DEFAULT_SOCKJS_URL` with :data:`DEFAULT_SOCKJS_INTEGRITY`
    (also when that URL is given explicitly without a hash).

    Raises ``ValueError`` for a relative path (the page and the iframe page, at
    different paths, would resolve it differently), for an absolute URL other
    than the default without ``sockjs_client_integrity`` (a script from another
    origin runs with the page's rights: pin it), for a malformed hash, and for a
    hash without a URL.
    """
    url = options.sockjs_client_url
    integrity = options.sockjs_client_integrity
    if url is None and integrity is not None:
        raise ValueError("sockjs_client_integrity is the hash of sockjs_client_url: give the URL too")
    if url is None or url == DEFAULT_SOCKJS_URL:
        return ClientScript(DEFAULT_SOCKJS_URL, DEFAULT_SOCKJS_INTEGRITY if integrity is None else _checked(integrity))
    parts = urlsplit(url)
    if not url or "\\" in url or any(c.isspace() or ord(c) < 0x20 for c in url):
        # (browsers read "/\\host/x.js" as "//host/x.js": another origin that looks like a path)
        raise ValueError(f"sockjs_client_url must be a URL or an absolute path, not {url!r}")
    if parts.netloc:
        if parts.scheme not in ("https", "http", ""):
            raise ValueError(f"sockjs_client_url must be http(s), not {url!r}")
        if integrity is None:
            raise ValueError(
                f"sockjs_client_url {url!r} names a host: give sockjs_client_integrity, its SRI hash "
                "(\"sha384-\" + the output of `openssl dgst -sha384 -binary sockjs.min.js | openssl base64 -A`), "
                "or serve sockjs.min.js from this server (docs/sockjs.md)")
    elif parts.scheme or not url.startswith("/"):
        raise ValueError(f"sockjs_client_url must be an absolute path (/static/sockjs.min.js) or an "
                         f"http(s) URL, not {url!r}: the page and the iframe page would resolve it differently")
    return ClientScript(url, None if integrity is None else _checked(integrity))


def _checked(integrity: str) -> str:
    text = " ".join(integrity.split())
    if not _INTEGRITY.fullmatch(text):
        raise ValueError(f"sockjs_client_integrity must be an SRI hash like 'sha384-<base64>', not {integrity!r}")
    return text
