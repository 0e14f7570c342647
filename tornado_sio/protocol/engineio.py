"""Engine.IO v4 packets and HTTP long-polling payloads, without I/O.

Engine.IO is the transport layer under Socket.IO: it frames messages, keeps
the connection alive (the server sends PING, the client answers PONG) and
upgrades from long-polling to WebSocket (the client's ``2probe``/``3probe``
exchange, then ``5``). This module only converts between :class:`Packet`
values and the wire form; the engine decides what to do with them.

Wire forms (protocol v4):

* a text packet is ``"<type digit><data>"``, e.g. ``4hello`` or ``2probe``;
* a binary message is the raw bytes (a WebSocket binary frame carries it as is);
* a long-polling body joins packets with the record separator ``"\\x1e"``, a
  binary message inside it being ``"b" + base64(bytes)``; a client that cannot
  send binary frames (engine.io-client's ``forceBase64``) sends that same
  ``"b" + base64`` text over WebSocket too.

Decoding raises only :class:`~tornado_sio.exceptions.ProtocolError` (or its
subclass ``PayloadTooLarge``), so the engine can answer HTTP 400 or close one
client with a single ``except``.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..exceptions import EncodeError, PayloadTooLarge, ProtocolError
from .jsonutil import as_text, dumps

__all__ = [
    "BASE64_PREFIX",
    "CLOSE",
    "ERROR_CODES",
    "NOOP",
    "OPEN",
    "PING",
    "PING_PROBE",
    "PONG",
    "PROBE_PING",
    "PROBE_PONG",
    "RECORD_SEPARATOR",
    "UPGRADE",
    "ErrorCode",
    "Packet",
    "PacketType",
    "decode_packet",
    "decode_payload",
    "encode_packet",
    "encode_payload",
    "error_body",
    "handshake_payload",
]

#: The data of the ``ping``/``pong`` packets exchanged while probing a WebSocket upgrade.
PING_PROBE = "probe"
#: Separates packets in a long-polling body.
RECORD_SEPARATOR = "\x1e"
#: Marks a binary MESSAGE sent as text: ``"b" + base64(bytes)``.
BASE64_PREFIX = "b"

# The wire text of the control packets, so the engine never spells a digit.
#: OPEN: the prefix of the handshake packet (the JSON follows).
OPEN = "0"
#: CLOSE: the sender is closing the session.
CLOSE = "1"
#: PING: the server's heartbeat.
PING = "2"
#: PONG: the client's answer to PING.
PONG = "3"
#: UPGRADE: the client switches to the probed WebSocket.
UPGRADE = "5"
#: NOOP: ends a pending long-polling GET with nothing to deliver.
NOOP = "6"
#: The client's probe on a WebSocket that may take over a polling session.
PROBE_PING = "2" + PING_PROBE
#: The server's answer to :data:`PROBE_PING`.
PROBE_PONG = "3" + PING_PROBE


class PacketType(enum.IntEnum):
    """Engine.IO packet types; the value is the digit sent on the wire."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


@dataclass(frozen=True)
class Packet:
    """One Engine.IO packet.

    ``data`` is ``str`` for text packets (the handshake JSON of OPEN, ``"probe"``
    on PING/PONG, the text of a MESSAGE), ``bytes`` for a binary MESSAGE, and
    ``None`` when the packet carries nothing. A decoded text MESSAGE always has
    ``str`` data, ``""`` when empty.
    """

    type: PacketType
    data: str | bytes | None = None


class ErrorCode(enum.IntEnum):
    """The error codes of the Engine.IO HTTP error responses (``{"code", "message"}``)."""

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    @property
    def message(self) -> str:
        """The standard message of this code, as the reference server sends it."""
        return ERROR_CODES[self]


#: Every :class:`ErrorCode` with its standard message (read-only).
ERROR_CODES: Mapping[ErrorCode, str] = MappingProxyType(
    {
        ErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
        ErrorCode.UNKNOWN_SID: "Session ID unknown",
        ErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
        ErrorCode.BAD_REQUEST: "Bad request",
        ErrorCode.FORBIDDEN: "Forbidden",
        ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
    }
)

# Indexed by the type character; a dict lookup also rejects non-ASCII digits.
_TYPE_BY_CHAR = {str(int(t)): t for t in PacketType}
_TYPE_CHARS = {t: str(int(t)) for t in PacketType}
_NO_DATA_TYPES = frozenset({PacketType.CLOSE, PacketType.UPGRADE, PacketType.NOOP})
_PROBE_TYPES = frozenset({PacketType.PING, PacketType.PONG})
_BYTES_LIKE = (bytes, bytearray, memoryview)


def encode_packet(packet: Packet) -> str | bytes:
    """Return the wire form of *packet*: text, or the raw bytes of a binary MESSAGE.

    Raises :class:`~tornado_sio.exceptions.EncodeError` for bytes data on a
    packet type other than MESSAGE.
    """
    data = packet.data
    if data is None:
        return _TYPE_CHARS[packet.type]
    if isinstance(data, str):
        return _TYPE_CHARS[packet.type] + data
    if packet.type == PacketType.MESSAGE and isinstance(data, _BYTES_LIKE):
        return bytes(data)
    raise EncodeError(
        f"cannot encode {type(data).__name__} data on an Engine.IO {PacketType(packet.type).name} packet"
    )


def decode_packet(data: str | bytes) -> Packet:
    """Decode one packet: ``str`` is a text packet, ``bytes`` a binary MESSAGE.

    Text rules: the first character is the type digit and the rest is the data.
    CLOSE, UPGRADE and NOOP take no data; PING and PONG take none or
    ``"probe"``; MESSAGE takes any text (``""`` included); OPEN takes any text.
    ``"b"`` + standard, padded base64 is a binary MESSAGE (engine.io-parser
    decodes it so on every transport: it is how ``forceBase64`` clients send
    binary over WebSocket). Binary input may be empty (an empty attachment is
    legal).

    Raises :class:`~tornado_sio.exceptions.ProtocolError` otherwise.
    """
    if isinstance(data, str):
        if not data:
            raise ProtocolError("empty Engine.IO packet")
        if data[0] == BASE64_PREFIX:
            try:
                return Packet(PacketType.MESSAGE, base64.b64decode(data[1:], validate=True))
            except (binascii.Error, ValueError):
                raise ProtocolError("invalid base64 in a binary Engine.IO packet") from None
        ptype = _TYPE_BY_CHAR.get(data[0])
        if ptype is None:
            raise ProtocolError(f"unknown Engine.IO packet type {data[0]!r}")
        rest = data[1:]
        if ptype is PacketType.MESSAGE:
            return Packet(ptype, rest)
        if not rest:
            return Packet(ptype)
        if ptype in _NO_DATA_TYPES or (ptype in _PROBE_TYPES and rest != PING_PROBE):
            raise ProtocolError(
                f"Engine.IO {ptype.name} packet must not carry data {rest[:40]!r}"
            )
        return Packet(ptype, rest)
    if isinstance(data, _BYTES_LIKE):
        return Packet(PacketType.MESSAGE, bytes(data))
    raise ProtocolError(f"cannot decode an Engine.IO packet from {type(data).__name__}")


def encode_payload(items: Iterable[str | bytes]) -> str:
    """Join already-encoded packets into one long-polling response body.

    *items* are :func:`encode_packet` results: text as is, bytes as
    ``"b" + base64``. An empty *items* gives ``""`` (send a NOOP instead).
    """
    return RECORD_SEPARATOR.join(
        item if isinstance(item, str) else "b" + base64.b64encode(item).decode("ascii")
        for item in items
    )


def decode_payload(body: str | bytes, max_packets: int | None = None) -> list[Packet]:
    """Split a long-polling request body into packets.

    ``bytes`` is read as UTF-8. Raises
    :class:`~tornado_sio.exceptions.ProtocolError` for an empty body, an empty
    packet, invalid UTF-8, invalid (or unpadded) base64 after ``b``, or any
    packet :func:`decode_packet` rejects; and
    :class:`~tornado_sio.exceptions.PayloadTooLarge` for more than
    *max_packets* packets (the engine passes ``Options.max_packets``; ``None``
    sets no bound). The body size limit is the transport's job.
    """
    body = as_text(body, "polling payload")
    if not body:
        raise ProtocolError("empty polling payload")
    if max_packets is None:
        parts = body.split(RECORD_SEPARATOR)
    else:
        parts = body.split(RECORD_SEPARATOR, max_packets)
        if len(parts) > max_packets:
            raise PayloadTooLarge(f"polling payload holds more than {max_packets} packets")
    packets = []
    for index, part in enumerate(parts):
        if not part:
            raise ProtocolError(f"empty packet at position {index} of polling payload")
        try:
            packets.append(decode_packet(part))
        except ProtocolError as exc:
            raise ProtocolError(f"{exc} (at position {index} of polling payload)") from None
    return packets


def error_body(code: ErrorCode | int) -> str:
    """The JSON body of an Engine.IO HTTP error, e.g. ``{"code":1,"message":"Session ID unknown"}``."""
    code = ErrorCode(code)
    return dumps({"code": int(code), "message": code.message})


def handshake_payload(
    sid: str,
    upgrades: list[str],
    ping_interval_ms: int,
    ping_timeout_ms: int,
    max_payload: int,
) -> str:
    """The data of the OPEN packet: compact JSON with the keys in the spec's order."""
    return dumps(
        {
            "sid": sid,
            "upgrades": list(upgrades),
            "pingInterval": ping_interval_ms,
            "pingTimeout": ping_timeout_ms,
            "maxPayload": max_payload,
        }
    )
