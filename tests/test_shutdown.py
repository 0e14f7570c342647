"""Graceful shutdown of the demo app (``python run.py``) on SIGTERM.

With clients connected on every transport (WebSocket, long-polling over a
keep-alive connection as a browser keeps it, and SockJS), SIGTERM makes the
server send each of them what was queued for it, then close it: an Engine.IO
CLOSE (a SockJS close frame), as Node's ``io.close()`` does, not a Socket.IO
DISCONNECT, which the official clients would take as "kicked" and not
reconnect. The process exits 0 within a few seconds without logging an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import List, Optional, Tuple

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.rawclient import RawWebSocket
from tests.support import ROOT, free_port, missing, stop_process, wait_for_port

NS = "/test"  # the demo's namespace


class KeepAlivePolling:
    """A long-polling client on one keep-alive HTTP/1.1 connection (as browsers poll)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sid: Optional[str] = None
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None

    async def connect_tcp(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method: str = "GET", body: str = "") -> Tuple[int, str]:
        query = "EIO=4&transport=polling" + (f"&sid={self.sid}" if self.sid else "")
        data = body.encode()
        head = (f"{method} /socket.io/?{query} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(data)}\r\n\r\n")
        assert self.writer is not None and self.reader is not None
        self.writer.write(head.encode() + data)
        status_line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), 10)
        length = 0
        while True:
            line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), 10)
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        payload = await asyncio.wait_for(self.reader.readexactly(length), 10)
        return int(status_line.split()[1]), payload.decode()

    async def open(self) -> None:
        await self.connect_tcp()
        code, text = await self.request()
        assert code == 200 and text[0] == "0", (code, text)
        self.sid = json.loads(text[1:])["sid"]

    async def get(self) -> List[str]:
        code, text = await self.request()
        assert code == 200, (code, text)
        return text.split("\x1e")

    async def post(self, *packets: str) -> None:
        code, text = await self.request("POST", "\x1e".join(packets))
        assert code == 200, (code, text)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _event(packet: str) -> Optional[list]:
    """``[event, *args]`` of a ``42/test,...`` packet, else None."""
    prefix = "42" + NS + ","
    return json.loads(packet[len(prefix):]) if packet.startswith(prefix) else None


async def _ws_until_closed(ws: RawWebSocket) -> List[str]:
    frames: List[str] = []
    for _ in range(100):  # bounded
        frame = await ws.recv(timeout=10)
        if frame is None:
            return frames
        frames.append(frame)
    raise AssertionError(f"websocket never closed: {frames}")


async def _sockjs_until_closed(conn) -> List[str]:
    frames: List[str] = []
    for _ in range(100):  # bounded
        frame = await asyncio.wait_for(conn.read_message(), 10)
        if frame is None:
            return frames
        frames.append(frame)
    raise AssertionError(f"sockjs never closed: {frames}")


async def _connected_ws(base: str) -> RawWebSocket:
    ws = await RawWebSocket.open(base)
    reply = await ws.connect(NS)
    assert reply.startswith("40" + NS + ",{"), reply
    return ws


async def _websocket_and_polling(port: int, proc: subprocess.Popen) -> None:
    base = f"http://127.0.0.1:{port}"
    ws = await _connected_ws(base)

    # Long-polling client, connected to /test, with three replies queued for it.
    polling = KeepAlivePolling(port)
    await polling.open()
    await polling.post("40" + NS + ",")
    packets = await polling.get()
    assert packets[0].startswith("40" + NS + ",{"), packets
    await polling.post(*("42" + NS + "," + json.dumps(["my event", {"data": f"queued {i}"}]) for i in range(3)))

    # The WebSocket client has a reply in flight too.
    await ws.emit("my event", {"data": "in flight"}, namespace=NS)

    os.kill(proc.pid, signal.SIGTERM)

    # Polling: the queued replies, then the Engine.IO CLOSE.
    got: List[str] = []
    for _ in range(5):  # bounded: the flush may take more than one GET
        got += await polling.get()
        if "1" in got:
            break
    data = [e[1]["data"] for e in map(_event, got) if e and e[0] == "my response"]
    assert [d for d in data if d.startswith("queued")] == ["queued 0", "queued 1", "queued 2"], got
    assert got[-1] == "1", got
    polling.close()

    # WebSocket: the in-flight reply, then the Engine.IO CLOSE, then the connection ends.
    frames = await _ws_until_closed(ws)
    data = [e[1]["data"] for e in map(_event, frames) if e and e[0] == "my response"]
    assert "in flight" in data, frames
    assert frames[-1] == "1", frames


async def _sockjs(port: int, proc: subprocess.Popen) -> None:
    conn = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{port}/sockjs/000/shutdown1/websocket"))
    assert await asyncio.wait_for(conn.read_message(), 5) == "o"
    await conn.write_message(json.dumps(["0" + NS + ","]))
    first = await asyncio.wait_for(conn.read_message(), 5)
    assert first.startswith("a[") and ("0" + NS + ",") in first, first
    await conn.write_message(json.dumps(["2" + NS + "," + json.dumps(["my event", {"data": "in flight"}])]))
    os.kill(proc.pid, signal.SIGTERM)
    frames = await _sockjs_until_closed(conn)
    assert any("in flight" in f for f in frames), frames
    assert frames and frames[-1].startswith("c[3000,"), frames  # a close frame, not a dropped connection


def _run_demo_and(scenario, tmp_path) -> None:
    """Start ``run.py``, play *scenario* (which sends SIGTERM), and check a clean exit 0."""
    if not (ROOT / "run.py").exists():
        missing("run.py not found: git restore run.py")
    port = free_port()
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--host", "127.0.0.1", "--port", str(port)],
                                cwd=str(ROOT), stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc=proc)
            asyncio.run(asyncio.wait_for(scenario(port, proc), 30))
            returncode = proc.wait(timeout=10)  # "within a few seconds"
        finally:
            stop_process(proc)
    output = log_path.read_text(errors="replace")
    assert returncode == 0, output
    assert "Traceback" not in output and " ERROR " not in output, output


def test_sigterm_flushes_and_closes_websocket_and_polling_clients_and_exits_0(tmp_path):
    _run_demo_and(_websocket_and_polling, tmp_path)


def test_sigterm_closes_sockjs_clients_with_a_close_frame(tmp_path):
    _run_demo_and(_sockjs, tmp_path)


def test_sigterm_right_after_the_listening_line_exits_0():
    """The signal handlers are in place before "listening" is logged: a supervisor
    that stops the app as soon as it reports ready gets a clean exit, not -15."""
    for attempt in range(3):  # the window it guards is short: try it a few times
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--port", str(port)], cwd=str(ROOT),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert proc.stdout is not None
            fd, output, deadline = proc.stdout.fileno(), b"", time.monotonic() + 20
            while b"listening on" not in output and time.monotonic() < deadline:
                if select.select([fd], [], [], 1)[0]:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    output += chunk
            assert b"listening on" in output, output.decode(errors="replace")
            os.kill(proc.pid, signal.SIGTERM)
            rest, _ = proc.communicate(timeout=10)
        finally:
            stop_process(proc)

        assert proc.returncode == 0, f"attempt {attempt + 1}: " + (output + rest).decode(errors="replace")
