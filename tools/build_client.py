#!/usr/bin/env python3
"""Build the browser client: ``tornado_sio/static/tornado_sio.js`` -> ``tornado_sio/static/dist/``.

Usage::

    python tools/build_client.py           # write the build
    python tools/build_client.py --check   # rebuild in memory; exit 1 if dist/ differs

The source stays the one readable file; the build makes, in ``dist/``:

=============================  ====================================================
``tornado_sio.min.js``         the classic script, minified (sets ``window.io``)
``tornado_sio.min.js.gz``      the same, gzip -9 (what most browsers get)
``tornado_sio.min.js.br``      the same, brotli -q 11 (only when the ``brotli``
                               Python package is installed at build time)
``tornado_sio.esm.js``         an ES module exporting ``io`` (also ``default`` and
                               ``connect``), ``Manager``, ``Socket``, ``protocol``
``tornado_sio.esm.min.js``     the same, minified (+ ``.gz`` and ``.br``)
``tornado_sio.d.ts``           the TypeScript declarations, copied from the
                               hand-written ``static/tornado_sio.d.ts``
``tornado_sio.esm.d.ts``,      one-line re-exports, so that TypeScript finds the
``tornado_sio.esm.min.d.ts``   types beside each ES module file
``tornado_sio.global.d.ts``    ``declare const io``: the classic script's global
=============================  ====================================================

The minifier is terser, run by Node from the project's npm cache (``.cache/node``,
or ``$TORNADO_SIO_NODE_CACHE``): ``npm install --prefix .cache/node terser@5.51``.
Every generated text file starts with a header naming the sha256 of the source it
was built from and the terser version, so ``tests/test_client_build.py`` can tell
that the checked-in build is stale without Node, and ``--check`` can rebuild it
byte for byte (the compressed files are compared by their content, since their
bytes depend on the zlib and brotli versions).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "tornado_sio" / "static"
SOURCE = STATIC / "tornado_sio.js"
TYPES_SOURCE = STATIC / "tornado_sio.d.ts"
DIST = STATIC / "dist"
NODE_CACHE = Path(os.environ.get("TORNADO_SIO_NODE_CACHE", ROOT / ".cache" / "node"))

#: The source's UMD wrapper, replaced by a module scope for the ES module build.
UMD_HEAD = """(function (root, factory) {
  'use strict';
  const io = factory(root);
  if (typeof module === 'object' && module && module.exports) module.exports = io;
  if (root) root.io = io;
})(typeof window !== 'undefined' ? window : typeof self !== 'undefined' ? self : undefined, function (root) {
"""
UMD_TAIL = "\n});\n"
ESM_HEAD = "const io = (function (root) {\n"
ESM_TAIL = """
})(typeof window !== 'undefined' ? window : typeof self !== 'undefined' ? self : undefined);

const {Manager, Socket, protocol} = io;
export {io, io as connect, io as default, Manager, Socket, protocol};
"""

#: terser's options: ES2017 like the source, no comments (the header is added after).
TERSER_OPTIONS = {"ecma": 2017, "compress": {"passes": 2}, "mangle": True, "format": {"comments": False}}

#: Runs terser on {code, module} read from stdin; prints the minified code.
TERSER_SCRIPT = """
const {minify} = require(process.argv[1]);
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', async () => {
  const {code, module, options} = JSON.parse(input);
  const result = await minify(code, Object.assign({}, options, {module}));
  process.stdout.write(result.code);
});
"""

HEADER_RE = re.compile(r"^/\*! tornado-sio (?P<what>[^|]+)\| source sha256 (?P<sha256>[0-9a-f]{64})"
                       r"(?: \| terser (?P<terser>[0-9.]+))? \*/\n")


class BuildError(Exception):
    """The build cannot run (no Node, no terser, a source it does not recognise)."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def header(what: str, source_sha256: str, terser_version: Optional[str] = None) -> str:
    """The first line of a generated file: what it is, and what it was built from."""
    tool = f" | terser {terser_version}" if terser_version else ""
    return f"/*! tornado-sio {what} (MIT) | source sha256 {source_sha256}{tool} */\n"


def parse_header(text: str) -> Optional[Dict[str, str]]:
    """The fields of a generated file's header line, or None if it has none."""
    match = HEADER_RE.match(text)
    return {k: v for k, v in match.groupdict().items() if v is not None} if match else None


def to_esm(source: str) -> str:
    """The source with its UMD wrapper replaced by an ES module's exports."""
    start = source.find(UMD_HEAD)
    if start == -1 or source.count(UMD_HEAD) != 1 or not source.endswith(UMD_TAIL):
        raise BuildError(f"{SOURCE.name}: the UMD wrapper is not the one tools/build_client.py expects "
                         "(update UMD_HEAD/UMD_TAIL there together with the source)")
    body = source[start + len(UMD_HEAD):-len(UMD_TAIL)]
    return source[:start] + ESM_HEAD + body + ESM_TAIL


def terser_module() -> Path:
    """The terser package in the npm cache."""
    if not shutil.which("node"):
        raise BuildError("node is not installed (apt-get install nodejs)")
    module = NODE_CACHE / "node_modules" / "terser"
    if not (module / "package.json").exists():
        raise BuildError(f"terser is not in {NODE_CACHE} (npm install --prefix {NODE_CACHE} terser@5.51)")
    return module


def terser_version() -> str:
    return json.loads((terser_module() / "package.json").read_text(encoding="utf-8"))["version"]


def minify(code: str, module: bool) -> str:
    """Minify with terser (Node); raises BuildError if it fails."""
    request = json.dumps({"code": code, "module": module, "options": TERSER_OPTIONS})
    proc = subprocess.run(["node", "-e", TERSER_SCRIPT, str(terser_module())], input=request,
                          capture_output=True, text=True, encoding="utf-8", timeout=120, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise BuildError(f"terser failed: {proc.stderr.strip()}")
    return proc.stdout


def gzip_bytes(data: bytes) -> bytes:
    """gzip -9 with no timestamp or file name, so the same input gives the same bytes."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def brotli_bytes(data: bytes) -> Optional[bytes]:
    """brotli -q 11 for text, or None when the brotli package is not installed."""
    try:
        import brotli  # type: ignore[import-not-found]
    except ImportError:
        return None
    return brotli.compress(data, mode=brotli.MODE_TEXT, quality=11)


def build() -> Dict[str, bytes]:
    """Every file of dist/, by name."""
    source = SOURCE.read_text(encoding="utf-8")
    source_hash = sha256(source.encode("utf-8"))
    types = TYPES_SOURCE.read_text(encoding="utf-8")
    types_hash = sha256(types.encode("utf-8"))
    version = terser_version()
    esm = to_esm(source)

    files: Dict[str, bytes] = {}

    def minified(name: str, what: str, code: str, module: bool) -> None:
        text = header(what, source_hash, version) + minify(code, module) + "\n"
        data = text.encode("utf-8")
        files[name] = data
        files[name + ".gz"] = gzip_bytes(data)
        compressed = brotli_bytes(data)
        if compressed is not None:
            files[name + ".br"] = compressed

    minified("tornado_sio.min.js", "browser client, minified", source, module=False)
    files["tornado_sio.esm.js"] = (header("browser client, ES module", source_hash) + esm).encode("utf-8")
    minified("tornado_sio.esm.min.js", "browser client, ES module, minified", esm, module=True)
    files["tornado_sio.d.ts"] = (header("browser client, TypeScript declarations", types_hash) + types).encode("utf-8")
    types_header = header("browser client, TypeScript declarations", types_hash)
    for name in ("tornado_sio.esm.d.ts", "tornado_sio.esm.min.d.ts"):
        files[name] = (types_header + 'export * from "./tornado_sio";\n'
                       'export { default } from "./tornado_sio";\n').encode("utf-8")
    files["tornado_sio.global.d.ts"] = (
        types_header + "// The classic script's global: add this file to a compilation that loads\n"
        "// tornado_sio.min.js (or /tornado_sio/client.js) with a <script> tag.\n"
        'declare const io: typeof import("./tornado_sio").io;\n').encode("utf-8")
    return files


def decompressed(name: str, data: bytes) -> bytes:
    """The content of a .gz or .br file (other files as they are)."""
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".br"):
        import brotli  # type: ignore[import-not-found]

        return brotli.decompress(data)
    return data


def differences(files: Dict[str, bytes]) -> List[str]:
    """How dist/ differs from *files* (compressed files compared by content).

    Without the brotli package the .br files on disk are left unchecked (and said so).
    """
    problems = []
    on_disk = {p.name for p in DIST.iterdir() if p.is_file()} if DIST.is_dir() else set()
    if brotli_bytes(b"") is None:
        unchecked = sorted(n for n in on_disk if n.endswith(".br"))
        if unchecked:
            print(f"build_client: not checked without the brotli package: {', '.join(unchecked)}",
                  file=sys.stderr)
        on_disk -= set(unchecked)
    for name in sorted(on_disk - set(files)):
        problems.append(f"{name}: in dist/ but not built (stale)")
    for name, data in sorted(files.items()):
        path = DIST / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif decompressed(name, path.read_bytes()) != decompressed(name, data):
            problems.append(f"{name}: differs from a fresh build")
    return problems


def write(files: Dict[str, bytes]) -> None:
    DIST.mkdir(exist_ok=True)
    for path in DIST.iterdir():
        if path.is_file() and path.name not in files:
            path.unlink()  # e.g. a .br from an earlier build, now built without brotli
    for name, data in files.items():
        (DIST / name).write_bytes(data)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="rebuild in memory and fail if tornado_sio/static/dist/ differs")
    args = parser.parse_args(argv)
    try:
        files = build()
    except BuildError as exc:
        print(f"build_client: {exc}", file=sys.stderr)
        return 2
    if "tornado_sio.min.js.br" not in files:
        print("build_client: the brotli package is not installed: no .br files "
              "(pip install brotli)", file=sys.stderr)
    if args.check:
        problems = differences(files)
        for problem in problems:
            print(f"build_client: {problem}", file=sys.stderr)
        if problems:
            print("build_client: run python tools/build_client.py and commit tornado_sio/static/dist/",
                  file=sys.stderr)
            return 1
        print(f"build_client: tornado_sio/static/dist/ is up to date ({len(files)} files)")
        return 0
    write(files)
    for name, data in sorted(files.items()):
        print(f"{len(data):>8}  {DIST.relative_to(ROOT) / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
