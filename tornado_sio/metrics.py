"""Prometheus metrics of a :class:`~tornado_sio.SocketIO` server: :class:`Metrics`.

Turned on with ``SocketIO(metrics=True)`` (served at ``metrics_path``,
``/metrics``, on the application's own port) or ``SocketIO(metrics_port=9100)``
(a port of its own, listened on when the server starts); it needs the
``prometheus_client`` package (``pip install tornado-sio[metrics]``).
``socketio.metrics`` is then the :class:`Metrics` object.

Nothing is counted per packet by ``prometheus_client``: the server keeps plain
integers on objects it has anyway (the engine's
:class:`~tornado_sio.engine.stats.EngineStats`, the adapter's
``emits``/``delivered``/``volatile_dropped``), and a custom
collector reads them, and the live state (sessions by transport, sockets by
namespace, pending acks, the message queue's link), when Prometheus scrapes.
A scrape runs on the IOLoop, so it reads a consistent picture; its cost is
one pass over the open sessions (a scrape takes 2-3 ms of CPU with 10,000).
Handler errors and slow handlers come through the observer seam
(:mod:`tornado_sio.observe`): :class:`Metrics` is an
:class:`~tornado_sio.observe.Observer`.

The metric names and what they mean are listed in ``docs/operations.md``
(and in :data:`METRICS`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

import tornado.httpserver
import tornado.netutil
import tornado.web

from .observe import Observer

try:
    from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.exposition import choose_encoder
except ImportError as exc:  # pragma: no cover - the extra is installed wherever this module is used
    raise ImportError("metrics need the prometheus_client package: pip install 'tornado-sio[metrics]'") from exc

if TYPE_CHECKING:
    from .server import SocketIO

__all__ = ["METRICS", "Metrics", "MetricsCollector", "MetricsHandler"]

log = logging.getLogger("tornado_sio.server")

#: Every metric: name (as exposed), type, labels, meaning. ``docs/operations.md`` has the same table.
METRICS: List[Tuple[str, str, str, str]] = [
    ("tornado_sio_connections", "gauge", "transport",
     "Connections open now: Engine.IO sessions by transport (polling, websocket), and sockjs."),
    ("tornado_sio_connections_opened_total", "counter", "transport",
     "Engine.IO sessions accepted, by the transport they opened on."),
    ("tornado_sio_disconnections_total", "counter", "reason",
     "Engine.IO sessions ended, by reason (transport close, ping timeout, server disconnect ...)."),
    ("tornado_sio_upgrades_total", "counter", "", "Polling sessions that upgraded to WebSocket."),
    ("tornado_sio_sockets", "gauge", "namespace",
     "Sockets (clients in a namespace) connected now, by namespace."),
    ("tornado_sio_packets_received_total", "counter", "",
     "Engine.IO MESSAGE packets received (a Socket.IO packet with N binary attachments counts 1 + N)."),
    ("tornado_sio_packets_sent_total", "counter", "",
     "Engine.IO MESSAGE packets sent, counted the same way, one per recipient."),
    ("tornado_sio_bytes_received_total", "counter", "",
     "Bytes received: WebSocket message payloads, polling POST bodies."),
    ("tornado_sio_bytes_sent_total", "counter", "",
     "Bytes sent: WebSocket frames (headers included), polling response payloads."),
    ("tornado_sio_emits_total", "counter", "",
     "SocketIO.emit calls (from handlers, the server object, Namespaces)."),
    ("tornado_sio_broadcast_deliveries_total", "counter", "",
     "Emitted packets handed to a local socket: one per recipient (remote emits through Redis included)."),
    ("tornado_sio_pending_acks", "gauge", "", "Server-to-client acknowledgements waiting for their client."),
    ("tornado_sio_messages_dropped_total", "counter", "reason",
     "Packets that never reached a client: volatile (skipped for a busy transport), backpressure "
     "(discarded with a client closed for not reading), message_queue (not published to Redis)."),
    ("tornado_sio_backpressure_closes_total", "counter", "",
     "Clients closed because they did not read (max_send_buffer passed)."),
    ("tornado_sio_handler_errors_total", "counter", "namespace", "Handlers that raised, by namespace."),
    ("tornado_sio_slow_handlers_total", "counter", "namespace",
     "Handlers that took longer than slow_handler_threshold, by namespace."),
    ("tornado_sio_heartbeat_timeouts_total", "counter", "",
     "Sessions closed because no pong came within ping_timeout."),
    ("tornado_sio_message_queue_connected", "gauge", "",
     "1 while the Redis message queue is reachable and subscribed, else 0 (only with message_queue)."),
    ("tornado_sio_message_queue_pending", "gauge", "",
     "Messages waiting to be published to Redis or awaiting its answer: the outgoing lag."),
    ("tornado_sio_message_queue_lag_seconds", "gauge", "",
     "Seconds since Redis last answered the subscriber connection's health PING, which queues "
     "behind the messages it delivers: about health_interval at most on a healthy link."),
]

_HELP = {name: meaning for name, _, _, meaning in METRICS}


def _counter(name: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name[:-len("_total")], _HELP[name], value=value)


def _labelled(kind: type, name: str, label: str, values: Dict[str, int]) -> Metric:
    family: Any = kind(name[:-len("_total")] if kind is CounterMetricFamily else name, _HELP[name], labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    result: Metric = family
    return result


def _gauge(name: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, _HELP[name], value=value)


class MetricsCollector:
    """The custom ``prometheus_client`` collector: reads a server's counters and state at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> List[Metric]:
        """Nothing described in advance: the registry then does not collect at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every metric of :data:`METRICS` (the message queue's only with a Redis adapter)."""
        server = self.metrics.server
        engine = server.engine
        stats = engine.stats
        adapter = server.adapter
        yield _labelled(GaugeMetricFamily, "tornado_sio_connections", "transport", self.connections())
        yield _labelled(CounterMetricFamily, "tornado_sio_connections_opened_total", "transport", stats.opened)
        yield _labelled(CounterMetricFamily, "tornado_sio_disconnections_total", "reason", stats.closed)
        yield _counter("tornado_sio_upgrades_total", stats.upgrades)
        members: Dict[str, Dict[str, Any]] = getattr(adapter, "namespace_members", {})
        yield _labelled(GaugeMetricFamily, "tornado_sio_sockets", "namespace",
                        {ns: len(sockets) for ns, sockets in members.items()})
        yield _counter("tornado_sio_packets_received_total", stats.messages_in)
        yield _counter("tornado_sio_packets_sent_total", stats.messages_out)
        yield _counter("tornado_sio_bytes_received_total", stats.bytes_in)
        yield _counter("tornado_sio_bytes_sent_total", stats.bytes_out)
        yield _counter("tornado_sio_emits_total", getattr(adapter, "emits", 0))
        yield _counter("tornado_sio_broadcast_deliveries_total", getattr(adapter, "delivered", 0))
        yield _gauge("tornado_sio_pending_acks", sum(len(s.acks) for s in server.dispatcher.ack_waiting))
        link = getattr(adapter, "link", None)
        dropped = {"volatile": getattr(adapter, "volatile_dropped", 0), "backpressure": stats.backpressure_dropped,
                   "message_queue": int(getattr(link, "dropped", 0) or 0)}
        yield _labelled(CounterMetricFamily, "tornado_sio_messages_dropped_total", "reason", dropped)
        yield _counter("tornado_sio_backpressure_closes_total", stats.backpressure_closes)
        yield _labelled(CounterMetricFamily, "tornado_sio_handler_errors_total", "namespace",
                        self.metrics.handler_errors)
        yield _labelled(CounterMetricFamily, "tornado_sio_slow_handlers_total", "namespace",
                        self.metrics.slow_handlers)
        yield _counter("tornado_sio_heartbeat_timeouts_total", stats.heartbeat_timeouts)
        if link is not None:
            yield from self.message_queue(link)

    def connections(self) -> Dict[str, int]:
        """Open connections by transport: the engine's live sessions, and SockJS's when it is served."""
        server = self.metrics.server
        engine = server.engine
        counts = {"polling": 0, "websocket": 0}
        for session in list(engine.sessions.values()):
            if not session.closed:
                counts[session.transport] = counts.get(session.transport, 0) + 1
        if server.sockjs_endpoint is not None:
            # The SockJS endpoint counts its connections in the engine's capacity too.
            counts["sockjs"] = max(0, engine.capacity.count - len(engine.sessions))
        return counts

    @staticmethod
    def message_queue(link: Any) -> Iterator[Metric]:
        """The Redis link's state (read by duck typing: an adapter without these attributes reports 0)."""
        yield _gauge("tornado_sio_message_queue_connected", 1 if getattr(link, "connected", False) else 0)
        publisher = getattr(link, "publisher", None)
        pending = len(getattr(publisher, "queue", ()) or ()) + int(getattr(publisher, "inflight", 0) or 0)
        yield _gauge("tornado_sio_message_queue_pending", pending)
        last_pong = getattr(getattr(link, "subscriber", None), "last_pong", 0.0) or 0.0
        lag = 0.0
        if last_pong and getattr(link, "started", False):
            lag = max(0.0, _loop_time() - last_pong)
        yield _gauge("tornado_sio_message_queue_lag_seconds", lag)


def _loop_time() -> float:
    """The running loop's clock (the one the Redis link stamps its PONGs with)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class MetricsHandler(tornado.web.RequestHandler):
    """``GET metrics_path``: the registry in Prometheus's text format (OpenMetrics when asked)."""

    def initialize(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def get(self) -> None:
        body, content_type = self.metrics.render(self.request.headers.get("Accept"))
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.write(body)


class Metrics(Observer):
    """The Prometheus metrics of one server (``socketio.metrics``); see the module docstring.

    :param server: the :class:`~tornado_sio.SocketIO` to measure; the metrics
        register themselves as its observer.
    :param registry: where the collector is registered. By default a registry
        of this server's own, with the process, platform and GC collectors of
        ``prometheus_client`` (so two servers in one process never clash); pass
        ``prometheus_client.REGISTRY`` to expose them with the rest of your
        application's metrics instead.
    """

    def __init__(self, server: SocketIO, registry: Optional[CollectorRegistry] = None) -> None:
        self.server = server
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        #: The ``prometheus_client`` registry the scrape renders.
        self.registry = registry
        self.collector = MetricsCollector(self)
        registry.register(self.collector)
        #: Handlers that raised, by namespace.
        self.handler_errors: Dict[str, int] = {}
        #: Handlers past ``slow_handler_threshold``, by namespace.
        self.slow_handlers: Dict[str, int] = {}
        #: The port of :meth:`listen` (the one picked when ``metrics_port`` is 0), once listening.
        self.port: Optional[int] = None
        self.http_server: Optional[tornado.httpserver.HTTPServer] = None
        server.observe(self)

    def __repr__(self) -> str:
        return f"<Metrics port={self.port}>"

    # -- observer hooks ---------------------------------------------------------

    def handler_failed(self, namespace: str, event: str, exc: BaseException) -> None:
        """Count a handler that raised."""
        self.handler_errors[namespace] = self.handler_errors.get(namespace, 0) + 1

    def handler_slow(self, namespace: str, event: str, seconds: float) -> None:
        """Count a handler that took longer than ``slow_handler_threshold``."""
        self.slow_handlers[namespace] = self.slow_handlers.get(namespace, 0) + 1

    # -- serving ----------------------------------------------------------------

    def render(self, accept: Optional[str] = None) -> Tuple[bytes, str]:
        """The exposition of :attr:`registry` for an ``Accept`` header: (body, content type)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def routes(self) -> List[Any]:
        """The Tornado rule serving the metrics at ``metrics_path``."""
        return [(self.server.options.metrics_path, MetricsHandler, {"metrics": self})]

    def listen(self, port: Optional[int] = None, host: Optional[str] = None) -> int:
        """Serve the metrics on a port of their own (``metrics_port``/``metrics_host`` by default), on
        the running IOLoop; returns the port (the one picked for 0). Listening twice is once."""
        if self.http_server is not None and self.port is not None:
            return self.port
        options = self.server.options
        port = options.metrics_port if port is None else port
        host = options.metrics_host if host is None else host
        sockets = tornado.netutil.bind_sockets(port or 0, host)
        self.http_server = tornado.httpserver.HTTPServer(tornado.web.Application(self.routes()))
        self.http_server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d%s", host, self.port, options.metrics_path)
        return self.port

    def stop(self) -> None:
        """Stop listening on the metrics port (the application's route, if any, stays)."""
        if self.http_server is not None:
            self.http_server.stop()
            self.http_server = None
            self.port = None
