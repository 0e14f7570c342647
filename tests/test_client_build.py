"""The checked-in client build (``tornado_sio/static/dist/``) matches its source.

``tools/build_client.py`` makes ``dist/`` from ``static/tornado_sio.js`` and the
hand-written ``static/tornado_sio.d.ts``; each generated text file's header names
the sha256 of the source it came from. The first tests need nothing but Python,
so a source edited without a rebuild fails everywhere; the last ones run the
build, Node and the TypeScript compiler from the npm cache.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import List

import pytest

from tests import support

ROOT = support.ROOT
STATIC = ROOT / "tornado_sio" / "static"
DIST = STATIC / "dist"
SOURCE = STATIC / "tornado_sio.js"
TYPES = STATIC / "tornado_sio.d.ts"
BUILD_SCRIPT = ROOT / "tools" / "build_client.py"

JS_OUTPUTS = ["tornado_sio.min.js", "tornado_sio.esm.js", "tornado_sio.esm.min.js"]
TYPE_OUTPUTS = ["tornado_sio.d.ts", "tornado_sio.esm.d.ts", "tornado_sio.esm.min.d.ts", "tornado_sio.global.d.ts"]
COMPRESSED = ["tornado_sio.min.js", "tornado_sio.esm.min.js"]
REBUILD = "run: python tools/build_client.py"


def load_build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_client", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_client = load_build_module()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def header_of(name: str) -> dict:
    fields = build_client.parse_header((DIST / name).read_text(encoding="utf-8"))
    assert fields is not None, f"{name} has no build header; {REBUILD}"
    return fields


# ---------------------------------------------------------------- up to date (Python only)


def test_dist_holds_exactly_the_files_the_build_makes():
    expected = set(JS_OUTPUTS + TYPE_OUTPUTS) | {n + ext for n in COMPRESSED for ext in (".gz", ".br")}

    assert {p.name for p in DIST.iterdir()} == expected, REBUILD


@pytest.mark.parametrize("name", JS_OUTPUTS)
def test_each_javascript_build_was_made_from_the_current_source(name):
    assert header_of(name)["sha256"] == sha256(SOURCE), f"{name} is stale: {SOURCE.name} changed; {REBUILD}"


@pytest.mark.parametrize("name", TYPE_OUTPUTS)
def test_each_declaration_file_was_made_from_the_current_declarations(name):
    assert header_of(name)["sha256"] == sha256(TYPES), f"{name} is stale: {TYPES.name} changed; {REBUILD}"


def test_declarations_are_the_hand_written_file_after_the_header():
    text = (DIST / "tornado_sio.d.ts").read_text(encoding="utf-8")

    assert text.split("\n", 1)[1] == TYPES.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", COMPRESSED)
def test_gzip_copy_holds_exactly_the_minified_file(name):
    assert gzip.decompress((DIST / (name + ".gz")).read_bytes()) == (DIST / name).read_bytes()


@pytest.mark.parametrize("name", COMPRESSED)
def test_brotli_copy_holds_exactly_the_minified_file(name):
    support.need_python_module("brotli")
    import brotli

    assert brotli.decompress((DIST / (name + ".br")).read_bytes()) == (DIST / name).read_bytes()


def test_minified_client_is_under_half_the_source_and_its_gzip_under_a_fifth_of_that():
    source, minified = SOURCE.stat().st_size, (DIST / "tornado_sio.min.js").stat().st_size
    gzipped = (DIST / "tornado_sio.min.js.gz").stat().st_size
    brotli = (DIST / "tornado_sio.min.js.br").stat().st_size

    assert minified * 2 < source
    assert gzipped * 3 < minified
    assert brotli < gzipped


def test_es_module_build_is_the_source_with_exports_instead_of_globals():
    text = (DIST / "tornado_sio.esm.js").read_text(encoding="utf-8")

    assert text.rstrip().endswith("export {io, io as connect, io as default, Manager, Socket, protocol};")
    assert "module.exports = io" not in text and "root.io = io" not in text
    assert build_client.to_esm(SOURCE.read_text(encoding="utf-8")) in text


def test_es_module_build_refuses_a_source_with_another_wrapper():
    with pytest.raises(build_client.BuildError, match="UMD wrapper"):
        build_client.to_esm("window.io = function () {};\n")


def test_check_names_a_file_that_differs_from_the_build():
    files = {p.name: p.read_bytes() for p in DIST.iterdir()}
    files["tornado_sio.min.js"] += b"// changed\n"
    del files["tornado_sio.global.d.ts"]

    problems = build_client.differences(files)

    assert problems == ["tornado_sio.global.d.ts: in dist/ but not built (stale)",
                        "tornado_sio.min.js: differs from a fresh build"]


# ---------------------------------------------------------------- the build itself (Node, terser)


def test_rebuilding_reproduces_the_checked_in_build():
    support.need_node_module("terser")

    proc = subprocess.run([sys.executable, str(BUILD_SCRIPT), "--check"], capture_output=True, text=True,
                          timeout=300, cwd=str(ROOT), check=False)

    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_build_records_the_terser_version_it_used():
    modules = support.need_node_module("terser")
    version = json.loads((modules / "terser" / "package.json").read_text())["version"]

    assert header_of("tornado_sio.min.js")["terser"] == version, f"terser changed; {REBUILD}"


def run_node(code: str, *args: str) -> str:
    node = support.need("node", "apt-get install nodejs")
    proc = subprocess.run([node, "--input-type=module", "-e", code, *args], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", ["tornado_sio.esm.js", "tornado_sio.esm.min.js"])
def test_es_module_build_exports_io_manager_and_socket(name):
    out = run_node("""
      const m = await import(process.argv[1]);
      const socket = m.io('http://127.0.0.1:9/', {autoConnect: false});
      console.log(JSON.stringify({exports: Object.keys(m).sort(), protocol: m.protocol,
        same: m.default === m.io && m.connect === m.io, socket: socket instanceof m.Socket,
        manager: socket.io instanceof m.Manager, global: typeof globalThis.io}));
    """, (DIST / name).as_uri())

    assert json.loads(out) == {"exports": ["Manager", "Socket", "connect", "default", "io", "protocol"],
                               "protocol": 5, "same": True, "socket": True, "manager": True,
                               "global": "undefined"}


def test_minified_classic_build_is_a_commonjs_module_too():
    out = run_node("""
      import {createRequire} from 'node:module';
      const io = createRequire(import.meta.url)(process.argv[1]);
      console.log(JSON.stringify([typeof io, io.protocol, typeof io.Manager, io.connect === io]));
    """, str(DIST / "tornado_sio.min.js"))

    assert json.loads(out) == ["function", 5, "function", True]


# ---------------------------------------------------------------- the declarations (tsc)

TYPED_PROGRAM = """
import io, { io as named, connect, Manager, Socket, protocol } from "./tornado_sio.esm.js";
import type { ExtendedError, ManagerOptions, SocketOptions } from "./tornado_sio";

interface ServerToClient { "my response": (msg: { data: string; count: number }) => void }
interface ClientToServer {
  "my event": (msg: { data: string }) => void;
  "my ping": (ack: (reply: string) => void) => void;
}

const socket: Socket<ServerToClient, ClientToServer> = io("/test", {
  transports: ["polling", "websocket"], extraHeaders: { "X-Token": "t" },
  transportOptions: { polling: { extraHeaders: { "X-Other": "o" } } },
  retries: 3, ackTimeout: 1000, auth: { token: "x" }, reconnectionDelayMax: 100, timeout: false,
});
socket.on("my response", (msg) => { const n: number = msg.count; void n; });
socket.on("connect_error", (err: ExtendedError) => console.log(err.message, err.data));
socket.on("disconnect", (reason) => { const r: Socket.DisconnectReason = reason; void r; });
socket.emit("my event", { data: "hi" });
socket.emit("my ping", (reply) => { const s: string = reply; void s; });
socket.timeout(100).emit("my ping", (err, reply) => { void err; void reply; });
async function ping(): Promise<string> { return socket.emitWithAck("my ping"); }
void ping;
socket.compress(false).volatile.emit("my event", { data: "x" });
socket.onAny((event, ...args) => console.log(event, args)).prependAny(() => {}).offAny();
socket.onAnyOutgoing(() => {}).prependAnyOutgoing(() => {}).offAnyOutgoing();
const all: ((...args: any[]) => void)[] = socket.listenersAny().concat(socket.listenersAnyOutgoing());
void all;
socket.removeAllListeners("my response").removeAllListeners();
const m: Manager = socket.io;
m.reconnection(false).reconnectionAttempts(3).reconnectionDelay(10).reconnectionDelayMax(20)
  .randomizationFactor(0).timeout(500);
const b: boolean = m.reconnection();
const d: number = m.reconnectionDelay();
const t: number | false = m.timeout();
void b; void d; void t;
m.on("reconnect_attempt", (attempt) => { const a: number = attempt; void a; });
m.opts.extraHeaders = { "X-New": "1" };
m.engine?.on("upgrade", (transport) => console.log(transport.name, m.engine?.transport.name));
new Manager("http://localhost:5000", { autoConnect: false }).socket("/chat", { auth: { a: 1 } }).connect();
const p: number = protocol + named.protocol + connect.protocol;
void p;
class Custom extends io.Transport {
  get name() { return "custom"; }
  protected doOpen() {}
  protected write() {}
  protected doClose() {}
}
io.transports.custom = Custom;
const opts: Partial<ManagerOptions & SocketOptions> = { path: "/socket.io" };
void opts;
"""

#: Each line must be a type error (line number -> what is wrong).
MISTYPED_PROGRAM = """
import { io, Socket } from "./tornado_sio.esm.js";
interface ClientToServer { "my event": (msg: { data: string }) => void }
const socket: Socket<{}, ClientToServer> = io("/test");
socket.emit("my event", 42);
socket.io.reconnectionDelay("soon");
io("/test", { transports: "polling" });
socket.onAny(42);
"""


def tsc(tmp_path: Path, program: str, *files: str) -> subprocess.CompletedProcess:
    """Type-check *program* (strict) beside a copy of the declarations."""
    modules = support.need_node_module("typescript")
    for name in TYPE_OUTPUTS:
        shutil.copy(DIST / name, tmp_path / name)
    (tmp_path / "program.ts").write_text(program)
    command = [support.need("node"), str(modules / "typescript" / "bin" / "tsc"), "--noEmit", "--strict",
               "--target", "es2017", "--module", "esnext", "--moduleResolution", "bundler",
               "--lib", "es2017,dom", "program.ts", *files]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=str(tmp_path), check=False)


def test_declarations_type_check_a_typical_program(tmp_path):
    proc = tsc(tmp_path, TYPED_PROGRAM)

    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_declarations_reject_wrongly_typed_calls(tmp_path):
    proc = tsc(tmp_path, MISTYPED_PROGRAM)

    error_lines: List[int] = sorted({int(line.split("(")[1].split(",")[0])
                                     for line in proc.stdout.splitlines() if line.startswith("program.ts(")})
    assert error_lines == [5, 6, 7, 8], proc.stdout


def test_global_declaration_types_the_classic_scripts_io(tmp_path):
    program = 'const socket = io("/test", { retries: 1 });\nsocket.emit("anything", 1).onAny(() => {});\n'
    proc = tsc(tmp_path, program + "export {};\n", "tornado_sio.global.d.ts")

    assert proc.returncode == 0, proc.stdout + proc.stderr
