"""The Prometheus endpoint (``SocketIO(metrics=True)``), scraped over HTTP during a small run
with real clients, its values checked against exactly what the clients sent and received.

Each test runs its own server in process (so the counters start at zero), with a ping
interval long enough that no heartbeat packet shows up in the counts unless the test
wants one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, AsyncIterator, Dict, Tuple

import pytest

pytest.importorskip("prometheus_client", reason="metrics need the 'metrics' extra (prometheus_client)")

import socketio
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient

from tests.apps import async_test, close_client, listening, until
from tests.rawclient import RawPolling, RawWebSocket
from tornado_sio import SocketIO, emit

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]
QUIET = {"ping_interval": 60.0, "ping_timeout": 60.0, "cors_allowed_origins": "*"}


class Served:
    """A running server: its SocketIO, base URL, and a scrape of its metrics endpoint."""

    def __init__(self, sio: SocketIO, port: int) -> None:
        self.sio = sio
        self.url = f"http://127.0.0.1:{port}"

    async def scrape(self, url: str = "") -> Samples:
        response = await AsyncHTTPClient().fetch((url or self.url) + "/metrics", request_timeout=10)
        assert response.headers["Content-Type"].startswith("text/plain")
        samples: Samples = {}
        for family in text_string_to_metric_families(response.body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    async def value(self, name: str, **labels: str) -> float:
        return (await self.scrape()).get((name, tuple(sorted(labels.items()))), 0.0)

    async def until_value(self, name: str, want: float, **labels: str) -> None:
        """Wait (bounded) until the scraped *name* reaches *want*, then check it is exactly that."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while await self.value(name, **labels) < want and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert await self.value(name, **labels) == want


@contextlib.asynccontextmanager
async def serve(**options: Any) -> AsyncIterator[Served]:
    """A SocketIO server with metrics and a few handlers, on a free loopback port."""
    sio = SocketIO(**{"metrics": True, **QUIET, **options})

    @sio.on("echo")
    def echo(data: Any) -> None:
        emit("echo", data)

    @sio.on("everyone")
    def everyone(data: Any) -> None:
        sio.emit("everyone", data)

    @sio.on("boom")
    def boom() -> None:
        raise RuntimeError("handler failure on purpose")

    @sio.on("slow")
    async def slow() -> None:
        await asyncio.sleep(0.2)

    async with listening(sio) as port:
        yield Served(sio, port)


def frame_size(payload: str) -> int:
    """Bytes of an unmasked server-to-client WebSocket text frame carrying *payload*."""
    length = len(payload.encode("utf-8"))
    return length + (2 if length < 126 else 4 if length < 65536 else 10)


async def python_client(url: str, transport: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=[transport], wait_timeout=10)
    return client


@async_test()
async def test_connections_are_counted_by_transport_for_websocket_and_polling_clients():
    async with serve() as served:
        ws = await python_client(served.url, "websocket")
        polling = await python_client(served.url, "polling")
        try:
            await until(lambda: len(served.sio.adapter.by_sid) == 2, what="two sockets")
            samples = await served.scrape()
            assert samples[("tornado_sio_connections", (("transport", "websocket"),))] == 1
            assert samples[("tornado_sio_connections", (("transport", "polling"),))] == 1
            assert samples[("tornado_sio_connections_opened_total", (("transport", "websocket"),))] == 1
            assert samples[("tornado_sio_connections_opened_total", (("transport", "polling"),))] == 1
            assert samples[("tornado_sio_sockets", (("namespace", "/"),))] == 2
        finally:
            await close_client(ws)
            await close_client(polling)
        await served.until_value("tornado_sio_connections", 0, transport="websocket")
        await served.until_value("tornado_sio_connections", 0, transport="polling")
        samples = await served.scrape()
        assert sum(v for (name, _), v in samples.items() if name == "tornado_sio_disconnections_total") == 2


@async_test()
async def test_an_upgrade_is_counted_and_the_session_then_counts_as_websocket():
    async with serve() as served:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(served.url, transports=["polling", "websocket"], wait_timeout=10)
        try:
            await served.until_value("tornado_sio_upgrades_total", 1)
            samples = await served.scrape()
            assert samples[("tornado_sio_connections", (("transport", "websocket"),))] == 1
            assert samples[("tornado_sio_connections", (("transport", "polling"),))] == 0
            assert samples[("tornado_sio_connections_opened_total", (("transport", "polling"),))] == 1
        finally:
            await close_client(client)


@async_test()
async def test_websocket_packets_and_bytes_match_the_frames_exchanged():
    async with serve() as served:
        ws = await RawWebSocket.open(served.url)
        sent = ["40", '42["echo","hello"]', '42["echo",{"n":1}]']
        received = ["0" + json.dumps(ws.handshake, separators=(",", ":"))]
        await ws.send(sent[0])
        received.append(await ws.recv())
        for frame in sent[1:]:
            await ws.send(frame)
            received.append(await ws.recv())
        assert received[-1] == '42["echo",{"n":1}]'
        samples = await served.scrape()
        assert samples[("tornado_sio_packets_received_total", ())] == 3
        assert samples[("tornado_sio_bytes_received_total", ())] == sum(len(f) for f in sent)
        assert samples[("tornado_sio_packets_sent_total", ())] == 3  # the CONNECT reply and two echoes
        assert samples[("tornado_sio_bytes_sent_total", ())] == sum(frame_size(f) for f in received)
        ws.close()


@async_test()
async def test_polling_bytes_are_the_post_bodies_in_and_the_response_payloads_out():
    async with serve() as served:
        client = RawPolling(served.url)
        handshake = await client.request()
        client.sid = json.loads(handshake.body.decode()[1:])["sid"]
        post = await client.post("40")
        assert post.code == 200
        reply = await client.get()
        await client.post('42["echo","hi"]', '42["echo","there"]')
        echoes = await client.get()
        samples = await served.scrape()
        assert samples[("tornado_sio_packets_received_total", ())] == 3
        assert samples[("tornado_sio_bytes_received_total", ())] == len("40") + len('42["echo","hi"]\x1e42["echo","there"]')
        assert samples[("tornado_sio_packets_sent_total", ())] == 3
        bodies = len(handshake.body) + len("\x1e".join(reply).encode()) + len("\x1e".join(echoes).encode())
        assert samples[("tornado_sio_bytes_sent_total", ())] == bodies


@async_test()
async def test_node_client_packets_count_each_binary_attachment_as_a_packet_of_its_own():
    from tests.nodeclient import NodeClient

    async with serve() as served, NodeClient() as node:
        await node.send({"op": "connect", "id": "c1", "url": served.url, "opts": {"transports": ["websocket"]}})
        await node.expect(type="connect", id="c1")
        await node.send({"op": "on", "id": "c1", "event": "echo"})
        await node.send({"op": "emit", "id": "c1", "event": "echo", "args": ["text"]})
        assert (await node.expect(type="event", id="c1", event="echo"))["args"] == ["text"]
        await node.send({"op": "emit", "id": "c1", "event": "echo", "args": [{"$bin": "AAEC"}]})
        assert (await node.expect(type="event", id="c1", event="echo"))["args"] == [b"\x00\x01\x02"]
        samples = await served.scrape()
        # in: CONNECT, the text event, the binary event's header and its one attachment
        assert samples[("tornado_sio_packets_received_total", ())] == 4
        # out: the CONNECT reply, the text echo, the binary echo's header and attachment
        assert samples[("tornado_sio_packets_sent_total", ())] == 4
        assert samples[("tornado_sio_connections_opened_total", (("transport", "websocket"),))] == 1
        assert samples[("tornado_sio_emits_total", ())] == 2


@async_test()
async def test_an_emit_to_the_namespace_counts_one_emit_and_one_delivery_per_client():
    async with serve() as served:
        clients = [await python_client(served.url, "websocket") for _ in range(3)]
        got: asyncio.Queue = asyncio.Queue()
        for client in clients:
            client.on("everyone", got.put_nowait)
        try:
            await clients[0].emit("everyone", {"round": 1})
            for _ in range(3):
                assert await asyncio.wait_for(got.get(), 10) == {"round": 1}
            samples = await served.scrape()
            assert samples[("tornado_sio_emits_total", ())] == 1
            assert samples[("tornado_sio_broadcast_deliveries_total", ())] == 3
        finally:
            for client in clients:
                await close_client(client)


@async_test()
async def test_a_volatile_emit_to_a_polling_client_with_no_pending_get_is_counted_as_dropped():
    async with serve() as served:
        client = await RawPolling(served.url).open()
        await client.connect()  # and no GET waiting from now on: the transport cannot write
        served.sio.emit("news", 1, volatile=True)
        samples = await served.scrape()
        assert samples[("tornado_sio_messages_dropped_total", (("reason", "volatile"),))] == 1
        assert samples[("tornado_sio_broadcast_deliveries_total", ())] == 0
        assert samples[("tornado_sio_emits_total", ())] == 1


@async_test()
async def test_a_client_that_does_not_read_past_max_send_buffer_counts_a_backpressure_close_and_its_drops():
    async with serve(max_send_buffer=1000) as served:
        client = await RawPolling(served.url).open()
        await client.connect()  # no GET from now on: what is sent to it waits in its queue
        served.sio.emit("big", "x" * 600)
        served.sio.emit("big", "y" * 600)  # past 1000 bytes queued: closed, both discarded
        samples = await served.scrape()
        assert samples[("tornado_sio_backpressure_closes_total", ())] == 1
        assert samples[("tornado_sio_messages_dropped_total", (("reason", "backpressure"),))] == 2
        assert samples[("tornado_sio_disconnections_total", (("reason", "transport error"),))] == 1


@async_test()
async def test_a_handler_that_raises_is_counted_under_its_namespace():
    async with serve() as served:
        client = await python_client(served.url, "websocket")
        try:
            await client.emit("boom")
            await client.emit("boom")
            await served.until_value("tornado_sio_handler_errors_total", 2, namespace="/")
        finally:
            await close_client(client)


@async_test()
async def test_a_handler_past_slow_handler_threshold_is_counted_as_slow():
    async with serve(slow_handler_threshold=0.05) as served:
        client = await python_client(served.url, "websocket")
        try:
            await client.emit("slow")  # sleeps 0.2 s: past the threshold however fast the machine
            await served.until_value("tornado_sio_slow_handlers_total", 1, namespace="/")
        finally:
            await close_client(client)


@async_test()
async def test_a_silent_client_is_counted_as_a_heartbeat_timeout():
    async with serve(ping_interval=0.2, ping_timeout=0.2) as served:
        ws = await RawWebSocket.open(served.url)
        await ws.send("40")  # connected, and then never answers a ping
        await served.until_value("tornado_sio_heartbeat_timeouts_total", 1)
        assert await served.value("tornado_sio_disconnections_total", reason="ping timeout") == 1
        ws.close()


@async_test()
async def test_an_unanswered_ack_request_is_a_pending_ack_until_answered():
    async with serve() as served:
        ws = await RawWebSocket.open(served.url)
        await ws.connect()
        sid = next(iter(served.sio.adapter.by_sid))
        served.sio.emit("question", 1, to=sid, callback=lambda *answer: None)
        frame = await ws.recv()
        assert frame.startswith("420[")
        assert await served.value("tornado_sio_pending_acks") == 1
        await ws.send("430[42]")
        await served.until_value("tornado_sio_pending_acks", 0)
        ws.close()


@async_test()
async def test_metrics_port_serves_the_metrics_on_a_port_of_their_own_and_not_on_the_app():
    async with serve(metrics=False, metrics_port=0) as served:
        await served.sio.start()
        port = served.sio.metrics.port
        assert port
        samples = await served.scrape(f"http://127.0.0.1:{port}")
        assert samples[("tornado_sio_connections", (("transport", "websocket"),))] == 0
        assert ("process_cpu_seconds_total", ()) in samples  # the process collectors ride along
        on_app = await AsyncHTTPClient().fetch(served.url + "/metrics", raise_error=False)
        assert on_app.code == 404  # metrics=False: not on the application's port


@async_test()
async def test_the_message_queue_link_is_reported_connected_with_nothing_pending():
    from tests.redis_support import redis_server

    pytest.importorskip("redis", reason="the message queue needs the 'redis' extra")
    with redis_server() as redis:
        async with serve(message_queue=redis.url) as served:
            await served.sio.start()
            samples = await served.scrape()
            assert samples[("tornado_sio_message_queue_connected", ())] == 1
            assert samples[("tornado_sio_message_queue_pending", ())] == 0
            assert samples[("tornado_sio_messages_dropped_total", (("reason", "message_queue"),))] == 0


def test_the_prometheus_scrape_example_targets_the_metrics_ports_the_systemd_units_give():
    import re

    from tests.support import ROOT

    config = (ROOT / "deploy" / "prometheus.yml").read_text()
    assert re.search(r"^  - job_name: tornado-sio$", config, re.M) and "metrics_path: /metrics" in config
    targets = re.findall(r"^\s+- (127\.0\.0\.1:\d+)$", config, re.M)
    template = (ROOT / "deploy" / "tornado-sio@.service").read_text()
    assert "--port %i" in template and "--metrics-port 1%i" in template  # port 8001 -> metrics on 18001
    assert targets == [f"127.0.0.1:1{port}" for port in range(8001, 8005)]  # the template's 8001-8004
    assert "--metrics-port 9100" in (ROOT / "deploy" / "tornado-sio.service").read_text()
