"""Operator logs: the connection lifecycle lines (``log_connections``), the JSON formatter,
client failures logged at WARNING once, and ``run.py --log-json --log-connections --metrics-port``
as a process an operator would run."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import urllib.request
from typing import Any, AsyncIterator, Iterator, List, Tuple

import pytest
import socketio

from tests import support
from tests.apps import async_test, close_client, listening, until
from tests.rawclient import RawPolling, RawWebSocket
from tornado_sio import SocketIO
from tornado_sio.logs import CONNECTIONS_LOGGER, JSONFormatter

QUIET = {"ping_interval": 60.0, "ping_timeout": 60.0, "cors_allowed_origins": "*"}


@contextlib.asynccontextmanager
async def serve(**options: Any) -> AsyncIterator[Tuple[str, SocketIO]]:
    """A SocketIO server on a free loopback port; yields its base URL and the server."""
    sio = SocketIO(**{**QUIET, **options})
    async with listening(sio) as port:
        yield f"http://127.0.0.1:{port}", sio


class Kept(logging.Handler):
    """Keeps the records of the lifecycle logger, on the logger itself (propagation aside)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def lines() -> Iterator[Kept]:
    """The lifecycle logger's records during the test, at INFO; the logger is put back after."""
    logger = logging.getLogger(CONNECTIONS_LOGGER)
    level, kept = logger.level, Kept()
    logger.setLevel(logging.INFO)
    logger.addHandler(kept)
    try:
        yield kept
    finally:
        logger.removeHandler(kept)
        logger.setLevel(level)


def lifecycle(kept: Kept) -> List[logging.LogRecord]:
    return list(kept.records)


def test_a_connection_logs_connect_upgrade_socket_connect_and_disconnects_with_their_reasons(lines):

    @async_test()
    async def run() -> None:
        async with serve(log_connections=True) as (url, _):
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(url, transports=["polling", "websocket"], wait_timeout=10)
            await until(lambda: any(r.event == "upgrade" for r in lifecycle(lines)), what="the upgrade line")
            await close_client(client)
            await until(lambda: any(r.event == "disconnect" for r in lifecycle(lines)), what="the disconnect line")

    run()
    records = lifecycle(lines)
    events = [r.event for r in records]
    # the client may send its namespace CONNECT before or after the upgrade completes
    assert events[0] == "connect" and events[-2:] == ["socket disconnect", "disconnect"]
    assert sorted(events[1:3]) == ["socket connect", "upgrade"]
    by_event = {r.event: r for r in records}
    sid = records[0].sid
    assert all(r.sid == sid and r.remote == "127.0.0.1" and r.levelno == logging.INFO for r in records)
    assert by_event["connect"].transport == "polling" and by_event["upgrade"].transport == "websocket"
    assert by_event["socket disconnect"].reason in ("client disconnect", "transport close")  # the client's timing
    assert by_event["socket disconnect"].namespace == "/"
    assert by_event["disconnect"].reason == "transport close"
    assert by_event["connect"].getMessage() == f"connect sid={sid} transport=polling remote=127.0.0.1"
    assert by_event["disconnect"].getMessage() == \
        f'disconnect sid={sid} transport=websocket remote=127.0.0.1 reason="transport close"'


def test_a_namespace_left_then_a_closed_websocket_log_their_own_reasons(lines):

    @async_test()
    async def run() -> None:
        async with serve(log_connections=True) as (url, _):
            ws = await RawWebSocket.open(url)
            await ws.connect()
            await ws.send("41")
            await until(lambda: any(r.event == "socket disconnect" for r in lifecycle(lines)), what="socket line")
            ws.close()
            await until(lambda: any(r.event == "disconnect" for r in lifecycle(lines)), what="the disconnect line")

    run()
    records = lifecycle(lines)
    assert [(r.event, getattr(r, "reason", None)) for r in records] == [
        ("connect", None), ("socket connect", None), ("socket disconnect", "client disconnect"),
        ("disconnect", "transport close")]
    assert records[1].socket != records[1].sid  # the namespace's socket id, beside the connection's


def test_no_lifecycle_lines_unless_log_connections_is_on(lines):

    @async_test()
    async def run() -> None:
        async with serve() as (url, _):
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(url, transports=["websocket"], wait_timeout=10)
            await close_client(client)

    run()
    assert lifecycle(lines) == []


def test_log_connections_turns_the_lifecycle_logger_on_at_info():
    lines = logging.getLogger(CONNECTIONS_LOGGER)
    before = lines.level
    lines.setLevel(logging.WARNING)
    try:
        SocketIO(log_connections=True)
        assert lines.isEnabledFor(logging.INFO)
    finally:
        lines.setLevel(before)


def test_clients_not_reading_are_logged_at_warning_once_per_server_then_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="tornado_sio")

    @async_test()
    async def run() -> None:
        async with serve(max_send_buffer=1000) as (url, sio):
            for _ in range(2):
                client = await RawPolling(url).open()
                await client.connect()  # then no GET: what is emitted waits in its queue
            sio.emit("big", "x" * 1200)  # over max_send_buffer for both: both closed

    run()
    said = [r for r in caplog.records if "polling queue over" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.WARNING, logging.DEBUG]


def test_json_formatter_writes_one_json_object_with_the_extra_fields():
    record = logging.LogRecord("tornado_sio.connections", logging.INFO, __file__, 1, "connect %s", ("abc",), None)
    record.sid = "abc"
    record.transport = "polling"
    line = JSONFormatter(static={"service": "chat"}).format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "connect abc"
    assert data["level"] == "INFO" and data["logger"] == "tornado_sio.connections"
    assert data["sid"] == "abc" and data["transport"] == "polling" and data["service"] == "chat"
    assert data["time"].endswith("Z")
    assert "args" not in data and "msg" not in data


def test_json_formatter_keeps_the_traceback_and_writes_unknown_values_as_text():
    try:
        raise ValueError("broken on purpose")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    record.thing = object()
    data = json.loads(JSONFormatter().format(record))
    assert "ValueError: broken on purpose" in data["exc"]
    assert data["thing"].startswith("<object object")


def test_extra_fields_never_replace_the_message_or_level():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "real message", (), None)
    record.level = "forged"
    data = json.loads(JSONFormatter().format(record))
    assert data["level"] == "WARNING" and data["message"] == "real message"


def test_run_py_with_log_json_writes_json_lifecycle_lines_and_serves_metrics(tmp_path):
    pytest.importorskip("prometheus_client", reason="--metrics-port needs the 'metrics' extra")
    port, metrics_port = support.free_port(), support.free_port()
    err = tmp_path / "stderr.log"
    cmd = [sys.executable, str(support.ROOT / "run.py"), "--port", str(port), "--metrics-port", str(metrics_port),
           "--log-json", "--log-connections"]
    with open(err, "wb") as sink:
        proc = subprocess.Popen(cmd, cwd=str(support.ROOT), stdout=subprocess.DEVNULL, stderr=sink)
    try:
        support.wait_for_port(port, proc=proc)
        support.wait_for_port(metrics_port, proc=proc)

        @async_test()
        async def visit() -> None:
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=10)
            await close_client(client)

        visit()
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        assert 'tornado_sio_connections_opened_total{transport="websocket"} 1.0' in text
    finally:
        assert support.stop_process(proc) == 0
    lines = [json.loads(line) for line in err.read_text().splitlines() if line.strip()]
    events = [line["event"] for line in lines if line.get("logger") == CONNECTIONS_LOGGER]
    assert events == ["connect", "socket connect", "socket disconnect", "disconnect"]
    assert any(line["message"].startswith("listening on http://127.0.0.1") for line in lines)
