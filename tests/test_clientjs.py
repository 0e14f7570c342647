"""The bundled browser client is served from package data with content-hashed caching."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import tornado.web
from tornado.testing import AsyncHTTPTestCase

from tornado_sio import clientjs

SCRIPT = Path(clientjs.__file__).with_name("static") / "tornado_sio.js"


def test_script_path_carries_twelve_hex_digits_of_the_content_sha256():
    expected = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()[:12]

    assert clientjs.script_path() == f"/tornado_sio/client.js?v={expected}"


def test_script_path_uses_the_given_prefix():
    assert re.fullmatch(r"/assets/sio/client\.js\?v=[0-9a-f]{12}", clientjs.script_path("/assets/sio/"))


def test_client_script_is_read_once_and_cached():
    assert clientjs.client_script() is clientjs.client_script()


class ClientScriptHandlerTest(AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(clientjs.routes() + clientjs.routes("/other.prefix"))

    def test_serves_the_packaged_script_as_javascript(self):
        response = self.fetch(clientjs.script_path())

        assert response.code == 200
        assert response.headers["Content-Type"] == "application/javascript; charset=UTF-8"
        assert response.body == SCRIPT.read_bytes()

    def test_current_version_is_cached_for_a_year_as_immutable(self):
        response = self.fetch(clientjs.script_path())

        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"

    def test_stale_version_gets_a_short_cache(self):
        response = self.fetch("/tornado_sio/client.js?v=000000000000")

        assert response.code == 200
        assert "immutable" not in response.headers["Cache-Control"]
        assert "max-age=300" in response.headers["Cache-Control"]

    def test_unversioned_url_gets_a_short_cache(self):
        response = self.fetch("/tornado_sio/client.js")

        assert "immutable" not in response.headers["Cache-Control"]

    def test_etag_is_the_content_hash(self):
        response = self.fetch(clientjs.script_path())

        assert response.headers["Etag"] == '"%s"' % hashlib.sha256(SCRIPT.read_bytes()).hexdigest()

    def test_matching_if_none_match_gets_304_without_body(self):
        etag = self.fetch(clientjs.script_path()).headers["Etag"]

        response = self.fetch(clientjs.script_path(), headers={"If-None-Match": etag})

        assert response.code == 304
        assert response.body == b""

    def test_head_sends_headers_and_length_only(self):
        response = self.fetch(clientjs.script_path(), method="HEAD")

        assert response.code == 200
        assert response.body == b""
        assert int(response.headers["Content-Length"]) == len(SCRIPT.read_bytes())
        assert response.headers["Cache-Control"].endswith("immutable")

    def test_route_honours_a_prefix_with_regex_characters(self):
        assert self.fetch("/other.prefix/client.js").code == 200
        assert self.fetch("/otherXprefix/client.js").code == 404
