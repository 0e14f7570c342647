"""The bundled browser client is served from package data: minified, pre-compressed
(negotiated by Accept-Encoding), with content-hashed caching and an ETag per encoding."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path
from typing import Any, Dict

import pytest
import tornado.web
from tornado.testing import AsyncHTTPTestCase

from tests import support
from tornado_sio import clientjs

STATIC = Path(clientjs.__file__).with_name("static")
SOURCE = STATIC / "tornado_sio.js"
MINIFIED = STATIC / "dist" / "tornado_sio.min.js"
ESM = STATIC / "dist" / "tornado_sio.esm.min.js"
TYPES = STATIC / "dist" / "tornado_sio.d.ts"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def brotli_decompress(data: bytes) -> bytes:
    support.need_python_module("brotli")  # the .br files are served from disk; reading them needs it
    import brotli

    return brotli.decompress(data)


# ---------------------------------------------------------------- URLs


def test_script_path_carries_twelve_hex_digits_of_the_minified_clients_sha256():
    expected = sha256(MINIFIED.read_bytes())[:12]

    assert clientjs.script_path() == f"/tornado_sio/client.js?v={expected}"


def test_script_path_uses_the_given_prefix():
    assert re.fullmatch(r"/assets/sio/client\.js\?v=[0-9a-f]{12}", clientjs.script_path("/assets/sio/"))


def test_esm_dev_and_types_paths_carry_their_own_content_hash():
    assert clientjs.esm_path() == f"/tornado_sio/client.esm.js?v={sha256(ESM.read_bytes())[:12]}"
    assert clientjs.dev_script_path() == f"/tornado_sio/client.dev.js?v={sha256(SOURCE.read_bytes())[:12]}"
    assert clientjs.types_path() == f"/tornado_sio/client.d.ts?v={sha256(TYPES.read_bytes())[:12]}"


def test_client_script_is_read_once_and_cached():
    assert clientjs.client_script() is clientjs.client_script()


# ---------------------------------------------------------------- negotiation


@pytest.mark.parametrize("accept, expected", [
    (None, "identity"),
    ("", "identity"),
    ("gzip", "gzip"),
    ("gzip, deflate", "gzip"),
    ("gzip, deflate, br", "br"),
    ("br", "br"),
    ("BR;Q=0.5, gzip;q=0.5", "br"),
    ("br;q=0.4, gzip;q=0.8", "gzip"),
    ("br;q=0, gzip", "gzip"),
    ("gzip;q=0", "identity"),
    ("*", "br"),
    ("*;q=0.5, br;q=0", "gzip"),
    ("identity;q=0", "identity"),
    ("deflate, zstd", "identity"),
    ("gzip;q=banana, br;q=0.1", "br"),
])
def test_negotiation_picks_the_best_accepted_coding(accept, expected):
    assert clientjs.negotiate_encoding(accept, ["identity", "gzip", "br"]) == expected


def test_negotiation_falls_back_to_gzip_when_no_brotli_copy_exists():
    assert clientjs.negotiate_encoding("gzip, deflate, br", ["identity", "gzip"]) == "gzip"


# ---------------------------------------------------------------- serving


class ClientScriptHandlerTest(AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(clientjs.routes() + clientjs.routes("/other.prefix"))

    def get(self, url: str, accept_encoding: str = "", **headers: Any) -> Any:
        """GET without the client's own decompression, so the raw variant is seen."""
        sent: Dict[str, str] = {"Accept-Encoding": accept_encoding} if accept_encoding else {}
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        return self.fetch(url, headers=sent, decompress_response=False)

    def test_client_without_accept_encoding_gets_the_minified_script_as_is(self):
        response = self.get(clientjs.script_path())

        assert response.code == 200
        assert response.headers["Content-Type"] == "application/javascript; charset=UTF-8"
        assert "Content-Encoding" not in response.headers
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.body == MINIFIED.read_bytes()

    def test_gzip_client_gets_the_gzip_variant(self):
        response = self.get(clientjs.script_path(), "gzip, deflate")

        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Vary"] == "Accept-Encoding"
        assert gzip.decompress(response.body) == MINIFIED.read_bytes()

    def test_brotli_client_gets_the_brotli_variant(self):
        response = self.get(clientjs.script_path(), "gzip, deflate, br")

        assert response.headers["Content-Encoding"] == "br"
        assert response.headers["Vary"] == "Accept-Encoding"
        assert brotli_decompress(response.body) == MINIFIED.read_bytes()

    def test_gzip_variant_is_smaller_than_the_source_and_brotli_smaller_still(self):
        identity = self.get(clientjs.script_path()).body
        gzipped = self.get(clientjs.script_path(), "gzip").body
        brotli = self.get(clientjs.script_path(), "br").body

        assert len(brotli) < len(gzipped) < len(identity) < len(SOURCE.read_bytes())
        assert len(gzipped) * 4 < len(SOURCE.read_bytes())

    def test_each_encoding_has_its_own_etag(self):
        etags = {coding: self.get(clientjs.script_path(), coding).headers["Etag"]
                 for coding in ("identity", "gzip", "br")}

        assert len(set(etags.values())) == 3
        assert etags["identity"] == '"%s"' % sha256(MINIFIED.read_bytes())

    def test_matching_if_none_match_gets_304_without_body_for_each_encoding(self):
        for coding in ("identity", "gzip", "br"):
            etag = self.get(clientjs.script_path(), coding).headers["Etag"]

            response = self.get(clientjs.script_path(), coding, If_None_Match=etag)

            assert response.code == 304, coding
            assert response.body == b""

    def test_etag_of_another_encoding_gets_the_full_response(self):
        gzip_etag = self.get(clientjs.script_path(), "gzip").headers["Etag"]

        response = self.get(clientjs.script_path(), "br", If_None_Match=gzip_etag)

        assert response.code == 200
        assert response.headers["Content-Encoding"] == "br"

    def test_current_version_is_cached_for_a_year_as_immutable(self):
        response = self.get(clientjs.script_path(), "gzip")

        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"

    def test_stale_version_gets_a_short_cache(self):
        response = self.get("/tornado_sio/client.js?v=000000000000")

        assert response.code == 200
        assert "immutable" not in response.headers["Cache-Control"]
        assert "max-age=300" in response.headers["Cache-Control"]

    def test_unversioned_url_gets_a_short_cache(self):
        response = self.get("/tornado_sio/client.js")

        assert "immutable" not in response.headers["Cache-Control"]

    def test_head_sends_headers_and_the_length_of_the_negotiated_variant(self):
        gzipped = self.get(clientjs.script_path(), "gzip").body

        response = self.fetch(clientjs.script_path(), method="HEAD", decompress_response=False,
                              headers={"Accept-Encoding": "gzip"})

        assert response.code == 200
        assert response.body == b""
        assert response.headers["Content-Encoding"] == "gzip"
        assert int(response.headers["Content-Length"]) == len(gzipped)
        assert response.headers["Cache-Control"].endswith("immutable")

    def test_route_honours_a_prefix_with_regex_characters(self):
        assert self.get("/other.prefix/client.js").code == 200
        assert self.get("/otherXprefix/client.js").code == 404

    def test_unminified_source_is_served_for_debugging(self):
        response = self.get(clientjs.dev_script_path())

        assert response.code == 200
        assert response.headers["Content-Type"] == "application/javascript; charset=UTF-8"
        assert response.headers["Cache-Control"].endswith("immutable")
        assert response.body == SOURCE.read_bytes()

    def test_unminified_source_is_compressed_too(self):
        response = self.get(clientjs.dev_script_path(), "gzip")

        assert response.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(response.body) == SOURCE.read_bytes()

    def test_es_module_build_is_served_minified_and_compressed(self):
        response = self.get(clientjs.esm_path(), "br")

        assert response.headers["Content-Type"] == "application/javascript; charset=UTF-8"
        assert brotli_decompress(response.body) == ESM.read_bytes()
        assert b"export{" in ESM.read_bytes()

    def test_es_module_build_is_served_unminified_for_debugging(self):
        response = self.get("/tornado_sio/client.esm.dev.js")

        assert response.code == 200
        assert response.body == (STATIC / "dist" / "tornado_sio.esm.js").read_bytes()

    def test_type_declarations_are_served_as_typescript(self):
        response = self.get(clientjs.types_path())

        assert response.code == 200
        assert response.headers["Content-Type"] == "application/typescript; charset=UTF-8"
        assert response.body == TYPES.read_bytes()

    def test_other_file_names_under_the_prefix_are_not_found(self):
        assert self.get("/tornado_sio/client.min.js").code == 404
        assert self.get("/tornado_sio/tornado_sio.js").code == 404


class CompressResponseAppTest(AsyncHTTPTestCase):
    """An app with Tornado's own compress_response on."""

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application(clientjs.routes(), compress_response=True)

    def test_brotli_variant_is_not_gzipped_again_and_vary_is_not_doubled(self):
        response = self.fetch(clientjs.script_path(), decompress_response=False,
                              headers={"Accept-Encoding": "gzip, br"})

        assert response.headers["Content-Encoding"] == "br"
        assert response.headers["Vary"] == "Accept-Encoding"
        assert brotli_decompress(response.body) == MINIFIED.read_bytes()

    def test_gzip_variant_is_sent_once_compressed(self):
        response = self.fetch(clientjs.script_path(), decompress_response=False,
                              headers={"Accept-Encoding": "gzip"})

        assert response.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(response.body) == MINIFIED.read_bytes()
