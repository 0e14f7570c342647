"""Socket.IO v5 packets: text encoding, binary attachments, strict decoding.

Socket.IO rides on Engine.IO MESSAGE packets. One Socket.IO packet is a text
part, and for BINARY_EVENT / BINARY_ACK that many binary Engine.IO messages
right after it::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]

    2["foo"]                                  EVENT on "/"
    2/admin,13["foo"]                         EVENT on "/admin" asking for ack 13
    51-["baz",{"_placeholder":true,"num":0}]  BINARY_EVENT + one attachment

:func:`encode` is on the hot path of every emit, so it tries plain JSON first
and only walks the data for bytes when JSON refuses it. :class:`Decoder` is the
per-connection state machine for incoming packets; it validates everything a
peer controls (types, namespace, ack id, JSON shape per packet type, attachment
count and total size, nesting depth) and raises only
:class:`~tornado_sio.exceptions.ProtocolError` (``PayloadTooLarge`` for the
size limits), mirroring the checks of the reference ``socket.io-parser``
including its ``maxAttachments`` limit (CVE-2026-33151), a little stricter
where noted on :class:`Decoder`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

from ..exceptions import EncodeError, PayloadTooLarge, ProtocolError
from .jsonutil import DEFAULT_MAX_DEPTH, dumps, loads

__all__ = [
    "deconstruct",
    "SIOType",
    "SIOPacket",
    "RESERVED_EVENTS",
    "MAX_ACK_ID",
    "encode",
    "is_binary",
    "Decoder",
    "split_event",
    "event_text",
    "reconstruct",
    "check_data",
]


class SIOType(enum.IntEnum):
    """Socket.IO packet types; the value is the digit sent on the wire."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


@dataclass
class SIOPacket:
    """One Socket.IO packet.

    ``data`` is the JSON-able payload (``bytes`` allowed anywhere inside for
    EVENT/ACK), ``None`` for none; ``id`` is the acknowledgement id or ``None``.
    """

    type: SIOType
    namespace: str = "/"
    data: Any = None
    id: Optional[int] = None


#: Event names a peer may not use: they have a meaning of their own.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
#: The largest ack id: ``Number.MAX_SAFE_INTEGER``, so JavaScript reads it exactly.
MAX_ACK_ID = 2**53 - 1

_BYTES_LIKE = (bytes, bytearray, memoryview)
_CONTAINERS = (list, tuple, dict)
_TYPE_BY_CHAR = {str(int(t)): t for t in SIOType}
_TYPE_CHARS = {t: str(int(t)) for t in SIOType}
_TO_BINARY = {
    SIOType.EVENT: SIOType.BINARY_EVENT,
    SIOType.ACK: SIOType.BINARY_ACK,
    SIOType.BINARY_EVENT: SIOType.BINARY_EVENT,
    SIOType.BINARY_ACK: SIOType.BINARY_ACK,
}
_FROM_BINARY = {SIOType.BINARY_EVENT: SIOType.EVENT, SIOType.BINARY_ACK: SIOType.ACK}
_ID_RE = re.compile(r"[0-9]{1,17}")
_ID_DIGITS = len(str(MAX_ACK_ID))


# ---------------------------------------------------------------- encoding


def is_binary(obj: Any) -> bool:
    """Whether *obj* is, or holds anywhere in lists/tuples/dict values, bytes-like data.

    Iterative and safe on circular structures.
    """
    if isinstance(obj, _BYTES_LIKE):
        return True
    if not isinstance(obj, _CONTAINERS):
        return False
    stack = [obj]
    seen = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, _BYTES_LIKE):
                return True
            if isinstance(child, _CONTAINERS):
                stack.append(child)
    return False


def _deconstruct(obj: Any, buffers: List[bytes]) -> Any:
    """A copy of *obj* with each bytes-like replaced by a placeholder, depth first."""
    if isinstance(obj, _BYTES_LIKE):
        buffers.append(bytes(obj))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(obj, (list, tuple)):
        return [_deconstruct(item, buffers) for item in obj]
    if isinstance(obj, dict):
        return {key: _deconstruct(value, buffers) for key, value in obj.items()}
    return obj


def deconstruct(obj: Any) -> Tuple[Any, List[bytes]]:
    """*obj* with each bytes-like value replaced by ``{"_placeholder":true,"num":n}``,
    and the values in placeholder order (what a BINARY packet carries)."""
    buffers: List[bytes] = []
    return _deconstruct(obj, buffers), buffers


def _encode_binary(ptype: SIOType, data: Any, error: EncodeError) -> Tuple[SIOType, str, List[bytes]]:
    binary_type = _TO_BINARY.get(ptype)
    if binary_type is None or not is_binary(data):
        raise error
    buffers: List[bytes] = []
    try:
        data = _deconstruct(data, buffers)
    except RecursionError:
        raise EncodeError("cannot encode as JSON: data is nested too deeply") from None
    return binary_type, dumps(data), buffers


def encode(packet: SIOPacket) -> Tuple[str, List[bytes]]:
    """Encode *packet* as its text part and its binary attachments.

    EVENT and ACK whose data holds bytes-like values become BINARY_EVENT and
    BINARY_ACK, each value replaced by ``{"_placeholder":true,"num":n}`` and
    returned as ``bytes`` in the list, in depth-first order. Tuples encode as
    lists. Raises :class:`~tornado_sio.exceptions.EncodeError` for data JSON
    cannot hold (NaN, sets, objects ...), data on DISCONNECT, top-level numeric
    data (it would read back as an ack id), a namespace that does not start
    with ``/`` or holds ``,``, and an ack id that is not an int in
    ``0..MAX_ACK_ID``.
    """
    ptype = packet.type
    data = packet.data
    attachments: List[bytes] = []
    if data is None:
        body = ""
    elif ptype == SIOType.DISCONNECT:
        raise EncodeError("a DISCONNECT packet carries no data")
    else:
        try:
            body = dumps(data)
        except EncodeError as exc:
            ptype, body, attachments = _encode_binary(ptype, data, exc)
        if body[0] in "-0123456789":
            raise EncodeError("Socket.IO packet data must be an object, array or string, not a number")
    head = _TYPE_CHARS[ptype]
    if ptype == SIOType.BINARY_EVENT or ptype == SIOType.BINARY_ACK:
        head += f"{len(attachments)}-"
    namespace = packet.namespace
    if namespace != "/":
        if not isinstance(namespace, str) or not namespace.startswith("/") or "," in namespace:
            raise EncodeError(f"invalid namespace {namespace!r}: must start with '/' and hold no ','")
        head += namespace + ","
    ack_id = packet.id
    if ack_id is not None:
        if type(ack_id) is not int or not 0 <= ack_id <= MAX_ACK_ID:
            raise EncodeError(f"invalid ack id {ack_id!r}: must be an int in 0..{MAX_ACK_ID}")
        head += str(ack_id)
    return head + body, attachments


def split_event(namespace: str, data: List[Any]) -> Tuple[str, str, List[bytes]]:
    """Encode the EVENT ``[event, *args]`` once: (packet text, JSON body, attachments).

    The body is the packet text without its header (type, attachment count,
    namespace): the JSON array alone, binary values as placeholders. A message
    queue carries the body, so a receiving process can send it with an ack id
    of its own (:func:`event_text`) without decoding and re-encoding it.
    Raises :class:`~tornado_sio.exceptions.EncodeError` as :func:`encode` does.
    """
    text, attachments = encode(SIOPacket(SIOType.EVENT, namespace, data))
    head = 1
    if attachments:
        head += len(str(len(attachments))) + 1
    if namespace != "/":
        head += len(namespace) + 1
    return text, text[head:], attachments


def event_text(namespace: str, body: str, attachments: int, ack_id: Optional[int] = None) -> str:
    """The packet text of an EVENT whose JSON body is *body* (see :func:`split_event`).

    *attachments* is the number of binary attachments the body refers to; with
    any, the packet is a BINARY_EVENT. *body* is trusted to be a JSON array.
    """
    head = f"5{attachments}-" if attachments else "2"
    if namespace != "/":
        head += namespace + ","
    if ack_id is not None:
        head += str(ack_id)
    return head + body


# ---------------------------------------------------------------- decoding


def check_data(ptype: SIOType, data: Any, ack_id: Optional[int]) -> None:
    """Raise :class:`~tornado_sio.exceptions.ProtocolError` unless *data* and *ack_id* suit a
    packet of type *ptype* (the shape rules every parser applies to incoming packets)."""
    name = ptype.name
    if ptype == SIOType.EVENT or ptype == SIOType.BINARY_EVENT:
        if type(data) is not list or not data:
            raise ProtocolError(f"{name} data must be a non-empty array")
        event = data[0]
        if type(event) is not str:
            raise ProtocolError(f"{name} name must be a string, not {type(event).__name__}")
        if event in RESERVED_EVENTS:
            raise ProtocolError(f"{name} name {event!r} is reserved")
        return
    if ptype == SIOType.ACK or ptype == SIOType.BINARY_ACK:
        if type(data) is not list:
            raise ProtocolError(f"{name} data must be an array")
        if ack_id is None:
            raise ProtocolError(f"{name} packet without an ack id")
        return
    if ack_id is not None:
        raise ProtocolError(f"{name} packet must not carry an ack id")
    if ptype == SIOType.CONNECT:
        if data is not None and type(data) is not dict:
            raise ProtocolError("CONNECT data must be an object")
    elif ptype == SIOType.DISCONNECT:
        if data is not None:
            raise ProtocolError("DISCONNECT packet must not carry data")
    elif type(data) is not dict and type(data) is not str:  # CONNECT_ERROR
        raise ProtocolError("CONNECT_ERROR data must be an object or a string")


def _reconstruct(data: List[Any], buffers: List[bytes]) -> None:
    """Replace, in place and iteratively, each placeholder in *data* by its buffer."""
    stack: List[Any] = [data]  # lists and dicts, indexed by position or key
    while stack:
        node = stack.pop()
        for key, child in list(node.items() if type(node) is dict else enumerate(node)):
            if type(child) is dict:
                if child.get("_placeholder") is True:
                    num = child.get("num")
                    if type(num) is not int or not 0 <= num < len(buffers):
                        raise ProtocolError(
                            f"invalid attachment placeholder num {num!r} "
                            f"({len(buffers)} attachment(s))"
                        )
                    node[key] = buffers[num]
                else:
                    stack.append(child)
            elif type(child) is list:
                stack.append(child)


def reconstruct(data: Any, buffers: List[bytes]) -> Any:
    """The reverse of :func:`deconstruct`: *data* with each placeholder replaced by its buffer.

    Lists and objects are changed in place (iteratively, so depth costs no
    stack) and *data* is returned. Raises
    :class:`~tornado_sio.exceptions.ProtocolError` for a placeholder whose
    ``num`` is not an index into *buffers*.
    """
    holder = [data]
    _reconstruct(holder, buffers)
    return holder[0]


class Decoder:
    """Per-connection decoder of incoming Socket.IO packets.

    Feed it each Engine.IO MESSAGE's data in order: text starts a packet, bytes
    are attachments of the pending BINARY_* packet. A complete packet comes
    back from :meth:`feed`; ``None`` means attachments are still awaited.

    Decoded BINARY_EVENT / BINARY_ACK packets are returned as EVENT / ACK with
    the bytes in place (as ``socket.io-parser`` does), so callers dispatch on
    two types, not four. Stricter than ``socket.io-parser``: event names must
    be strings (not numbers), the attachment count must have digits, an ack id
    is only allowed on EVENT/ACK, must fit ``Number.MAX_SAFE_INTEGER`` and ACK
    must have one, and attachment bytes are bounded in total.

    After any :class:`~tornado_sio.exceptions.ProtocolError` the decoder holds
    no pending packet; the connection should be closed anyway.
    """

    __slots__ = (
        "max_attachments",
        "max_attachment_bytes",
        "max_depth",
        "_packet",
        "_expected",
        "_buffers",
        "_size",
    )

    def __init__(
        self,
        max_attachments: int = 10,
        max_attachment_bytes: int = 1_000_000,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.max_attachments = max_attachments
        self.max_attachment_bytes = max_attachment_bytes
        self.max_depth = max_depth
        self._packet: Optional[SIOPacket] = None
        self._expected = 0
        self._buffers: List[bytes] = []
        self._size = 0

    @property
    def pending(self) -> bool:
        """Whether a binary packet is waiting for more attachments."""
        return self._packet is not None

    def reset(self) -> None:
        """Drop the pending packet and its attachments, if any."""
        self._packet = None
        self._expected = 0
        self._buffers = []
        self._size = 0

    def feed(self, data: Union[str, bytes]) -> Optional[SIOPacket]:
        """Take one Engine.IO message; return a complete packet or ``None``.

        Raises :class:`~tornado_sio.exceptions.ProtocolError` for malformed
        text, text while attachments are pending, bytes while none are, or a
        bad placeholder; :class:`~tornado_sio.exceptions.PayloadTooLarge` for
        too many attachments or too many attachment bytes.
        """
        if isinstance(data, str):
            if self._packet is not None:
                expected = self._expected - len(self._buffers)
                self.reset()
                raise ProtocolError(
                    f"text packet received while {expected} binary attachment(s) were expected"
                )
            packet, count = self._decode_text(data)
            binary_type = _FROM_BINARY.get(packet.type)
            if binary_type is None:
                return packet
            packet.type = binary_type
            if count == 0:
                _reconstruct(packet.data, [])
                return packet
            self._packet = packet
            self._expected = count
            return None
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self._take_attachment(bytes(data))
        raise ProtocolError(f"cannot decode a Socket.IO packet from {type(data).__name__}")

    def _take_attachment(self, chunk: bytes) -> Optional[SIOPacket]:
        packet = self._packet
        if packet is None:
            raise ProtocolError("binary data received while no binary packet was pending")
        self._size += len(chunk)
        if self._size > self.max_attachment_bytes:
            self.reset()
            raise PayloadTooLarge(
                f"binary attachments exceed {self.max_attachment_bytes} bytes in total"
            )
        buffers = self._buffers
        buffers.append(chunk)
        if len(buffers) < self._expected:
            return None
        self.reset()
        _reconstruct(packet.data, buffers)
        return packet

    def _decode_text(self, text: str) -> Tuple[SIOPacket, int]:
        """Parse a text packet; return it (type still BINARY_*) and its attachment count."""
        if not text:
            raise ProtocolError("empty Socket.IO packet")
        ptype = _TYPE_BY_CHAR.get(text[0])
        if ptype is None:
            raise ProtocolError(f"unknown Socket.IO packet type {text[0]!r}")
        pos = 1
        count = 0
        if ptype == SIOType.BINARY_EVENT or ptype == SIOType.BINARY_ACK:
            dash = text.find("-", 1)
            digits = text[1:dash] if dash > 0 else ""
            if not (digits.isascii() and digits.isdigit()):
                raise ProtocolError(f"{ptype.name} needs an attachment count followed by '-'")
            if len(digits) > 6 or int(digits) > self.max_attachments:
                raise PayloadTooLarge(
                    f"{ptype.name} announces {digits[:12]} attachments, "
                    f"more than the limit of {self.max_attachments}"
                )
            count = int(digits)
            pos = dash + 1
        namespace = "/"
        if text.startswith("/", pos):
            comma = text.find(",", pos)
            if comma < 0:
                namespace, pos = text[pos:], len(text)
            else:
                namespace, pos = text[pos:comma], comma + 1
        ack_id = None
        match = _ID_RE.match(text, pos)
        if match is not None:
            digits = match.group()
            if len(digits) > _ID_DIGITS or int(digits) > MAX_ACK_ID:
                raise ProtocolError(f"ack id {digits}... is larger than {MAX_ACK_ID}")
            ack_id = int(digits)
            pos = match.end()
        if pos < len(text):
            data = loads(text[pos:], self.max_depth)
            if data is None:  # "null" is data, and valid for no packet type
                raise ProtocolError(f"{ptype.name} data must not be null")
        else:
            data = None
        check_data(ptype, data, ack_id)
        return SIOPacket(ptype, namespace, data, ack_id), count
