#!/usr/bin/env bash
# Build tornado-sio's sdist and wheel (the wheel from the sdist, as `python -m build`
# does) with no build warning, check both with `twine check --strict` (the README
# renders on PyPI), install the wheel into a fresh venv, and check it from outside the repo:
# the import, the metadata version, py.typed, an Engine.IO handshake and a Socket.IO
# CONNECT over long-polling, and the browser client served at client_script_url.
# Everything runs on 127.0.0.1 in one Python process; exits non-zero on any failure.
#
#   bash .ci/wheel-smoke.sh            # with `python`; PYTHON=python3.9 to pick another
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tornado-sio-wheel.XXXXXX")"
venv_pid=""
cleanup() {
  if [ -n "$venv_pid" ]; then kill "$venv_pid" 2>/dev/null || true; wait "$venv_pid" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '==> wheel smoke: %s\n' "$*"; }
pip_quiet=(-q --disable-pip-version-check --no-input)

step "build the sdist and the wheel"
"$PYTHON" -m venv "$WORK/venv" &  # the fresh venv for the wheel, made meanwhile
venv_pid=$!
"$PYTHON" -m venv "$WORK/build-venv"
"$WORK/build-venv/bin/python" -m pip install "${pip_quiet[@]}" build twine
# The sdist step writes tornado_sio.egg-info/ (git-ignored) into the repo; the wheel is
# built from the unpacked sdist in a temporary folder. PYTHONDONTWRITEBYTECODE would
# only add "byte-compiling is disabled" warnings.
env -u PYTHONDONTWRITEBYTECODE "$WORK/build-venv/bin/python" -m build --outdir "$WORK/dist" "$ROOT" \
  >"$WORK/build.log" 2>&1 || {
  cat "$WORK/build.log" >&2
  echo "wheel smoke: the build failed" >&2
  exit 1
}
# the build must not warn (setuptools' and MANIFEST.in's warnings); pip's notes about
# this machine's package index locations are not the project's
if grep -E '(^|[[:space:]])([A-Za-z]*Warning|warning|WARNING):' "$WORK/build.log" |
   grep -v "^WARNING: Location '.*' is ignored" >"$WORK/warnings.log"; then
  cat "$WORK/warnings.log" >&2
  echo "wheel smoke: the build warned; fix the causes above (python -m build shows the whole log)" >&2
  exit 1
fi
wheels=("$WORK"/dist/*.whl)
[ "${#wheels[@]}" -eq 1 ] && [ -f "${wheels[0]}" ] || { echo "wheel smoke: expected one wheel in ${WORK}/dist" >&2; exit 1; }
step "built $(basename "${wheels[0]}"); twine check"
"$WORK/build-venv/bin/python" -m twine check --strict "$WORK"/dist/*

step "install it into a fresh venv"
venv_status=0
wait "$venv_pid" || venv_status=$?
venv_pid=""  # reaped: cleanup must not signal a PID that may be reused
[ "$venv_status" -eq 0 ] || { echo "wheel smoke: python -m venv failed ($venv_status)" >&2; exit 1; }
"$WORK/venv/bin/python" -m pip install "${pip_quiet[@]}" "${wheels[0]}"

step "import it and serve a handshake from outside the repo"
cd "$WORK"  # -I below also keeps the current folder and PYTHONPATH off sys.path
timeout 60 "$WORK/venv/bin/python" -I -c '
import asyncio
import json
import sys
from importlib import metadata
from pathlib import Path

import tornado.httpserver
import tornado.netutil
import tornado.web
from tornado.httpclient import AsyncHTTPClient

import tornado_sio
from tornado_sio import SocketIO

package = Path(tornado_sio.__file__).resolve().parent
site = Path(sys.prefix).resolve()
assert site in package.parents, f"tornado_sio imported from {package}, not from the venv {site}"
assert (package / "py.typed").is_file(), f"no py.typed in {package}"
assert metadata.version("tornado-sio") == tornado_sio.__version__, (metadata.version("tornado-sio"), tornado_sio.__version__)
assert metadata.metadata("tornado-sio")["License-Expression"] == "MIT", metadata.metadata("tornado-sio")["License-Expression"]


async def main() -> None:
    socketio = SocketIO()
    connected = asyncio.Event()
    socketio.on("connect")(lambda auth=None: connected.set())
    app = tornado.web.Application(socketio.routes())
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    http = AsyncHTTPClient()
    base = f"http://127.0.0.1:{port}"
    try:
        reply = await http.fetch(f"{base}/socket.io/?EIO=4&transport=polling", request_timeout=10)
        body = reply.body.decode()
        assert body.startswith("0{\"sid\""), f"Engine.IO handshake: {body!r}"
        sid = json.loads(body[1:])["sid"]
        poll = f"{base}/socket.io/?EIO=4&transport=polling&sid={sid}"
        await http.fetch(poll, method="POST", body="40", request_timeout=10)
        body = (await http.fetch(poll, request_timeout=10)).body.decode()
        assert body.startswith("40{\"sid\""), f"Socket.IO CONNECT reply: {body!r}"
        await asyncio.wait_for(connected.wait(), 5)

        url = socketio.client_script_url
        reply = await http.fetch(base + url, request_timeout=10)
        assert reply.code == 200 and b"io" in reply.body, f"{url}: {reply.code}, {len(reply.body)} bytes"
        kind = reply.headers.get("Content-Type", "")
        assert "javascript" in kind, f"{url}: Content-Type {kind!r}"
        print(f"served {url}: {len(reply.body)} bytes, {kind}")
    finally:
        server.stop()
        await socketio.shutdown(timeout=1)
        await asyncio.wait_for(server.close_all_connections(), 5)
        http.close()


asyncio.run(asyncio.wait_for(main(), 30))
print(f"tornado-sio {tornado_sio.__version__} (Tornado {tornado.version}, Python {sys.version.split()[0]})"
      f" from {package}: handshake, CONNECT and client.js OK")
'
step "ok"
