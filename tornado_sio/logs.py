"""Logs an operator can use: connection lifecycle lines and a JSON formatter.

Lifecycle lines (opt-in, ``Options.log_connections``). One INFO line per event
in the life of a connection, on the ``tornado_sio.connections`` logger, each
carrying the Engine.IO sid, the transport, the client's address and, for an
end, the reason::

    connect sid=Vb3... transport=polling remote=203.0.113.7
    upgrade sid=Vb3... transport=websocket remote=203.0.113.7
    socket connect sid=Vb3... transport=websocket remote=203.0.113.7 namespace=/chat socket=k2P...
    socket disconnect sid=Vb3... transport=websocket remote=203.0.113.7 namespace=/chat socket=k2P...
        reason="client disconnect"
    disconnect sid=Vb3... transport=websocket remote=203.0.113.7 reason="transport close"

The same values travel as attributes of the log record (``event``, ``sid``,
``transport``, ``remote``, ``reason``, ``namespace``, ``socket``), so
:class:`JSONFormatter` writes them as JSON keys and a log pipeline can filter
on them without parsing the text.

:class:`JSONFormatter` is the standard library's ``logging.Formatter`` writing
one JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
``message``, any ``extra=`` attributes, and ``exc`` with the traceback. Use it
with any handler::

    handler = logging.StreamHandler()
    handler.setFormatter(tornado_sio.logs.JSONFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])

or let ``SocketIO(logger=True, log_json=True)`` set it up.

This module uses nothing but the standard library, so every layer may log
through it.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any, Dict, Optional

__all__ = ["CONNECTIONS_LOGGER", "JSONFormatter", "connection_event", "lifecycle", "socket_event",
           "stderr_handler"]

#: The logger of the lifecycle lines.
CONNECTIONS_LOGGER = "tornado_sio.connections"

#: The lifecycle logger itself.
lifecycle = logging.getLogger(CONNECTIONS_LOGGER)

#: The attributes every ``LogRecord`` has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """One JSON object per record, on one line (stdlib only; see the module docstring).

    :param static: keys added to every line (``{"service": "chat"}``), e.g. to
        tell processes apart in a shared pipeline.

    Values that JSON cannot hold are written as their ``str()``. Keys of the
    record's ``extra=`` attributes never replace ``time``, ``level``,
    ``logger`` or ``message``.
    """

    def __init__(self, static: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line: Dict[str, Any] = dict(self.static)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        line.update(
            time=datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            level=record.levelname,
            logger=record.name,
            message=record.getMessage(),
        )
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


def _text(fields: Dict[str, Any]) -> str:
    """``key=value`` pairs, quoting values with spaces (``reason="ping timeout"``)."""
    parts = []
    for key, value in fields.items():
        text = str(value)
        parts.append(f"{key}={json.dumps(text) if (' ' in text or not text) else text}")
    return " ".join(parts)


def connection_event(event: str, sid: str, transport: str, remote: str, reason: Optional[str] = None) -> None:
    """Log one Engine.IO connection event (``connect``, ``upgrade``, ``disconnect``) at INFO.

    The caller decides whether lifecycle lines are on (``Options.log_connections``).
    """
    fields: Dict[str, Any] = {"sid": sid, "transport": transport, "remote": remote or "-"}
    if reason is not None:
        fields["reason"] = reason
    lifecycle.info("%s %s", event, _text(fields), extra={"event": event, **fields})


def socket_event(event: str, socket: Any, reason: Optional[str] = None) -> None:
    """Log one namespace event (``socket connect``, ``socket disconnect``) of a
    :class:`~tornado_sio.socket.Socket` at INFO, naming its connection's sid, transport and address."""
    conn = socket.client.conn
    fields: Dict[str, Any] = {"sid": conn.sid, "transport": conn.transport, "remote": conn.request.remote_ip or "-",
                              "namespace": socket.namespace, "socket": socket.sid}
    if reason is not None:
        fields["reason"] = reason
    lifecycle.info("%s %s", event, _text(fields), extra={"event": event, **fields})


def stderr_handler(json_lines: bool = False) -> logging.Handler:
    """A handler to stderr, writing JSON lines (:class:`JSONFormatter`) when *json_lines*, else
    the message alone (logging's default); what ``logger=True`` and ``log_connections`` add when
    logging is not configured."""
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JSONFormatter())
    return handler
