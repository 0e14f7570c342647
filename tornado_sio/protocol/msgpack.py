"""The msgpack parser: each Socket.IO packet is one binary Engine.IO message.

Wire-compatible with the npm ``socket.io-msgpack-parser`` (3.x, on
``notepack.io``) and python-socketio's ``serializer='msgpack'``. A packet is a
msgpack map::

    {"type": 2, "data": ["chat", "hi", <bin 3 bytes>], "nsp": "/", "id": 7}

``type`` is 0..4 (CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR; there are no
BINARY_* types, binary values sit in place as msgpack ``bin``), ``nsp`` the
namespace, ``data`` and ``id`` are left out when there are none (the npm
decoder refuses a DISCONNECT whose ``data`` is ``nil``). Other keys (the npm
client adds ``options``) are ignored.

Incoming packets get the JSON parser's rules (:mod:`.socketio`): the shape per
packet type (:func:`~.socketio.check_data`: an EVENT is a non-empty array whose
name is a string and not reserved, an ack id is an int up to
``Number.MAX_SAFE_INTEGER`` ...), a size bound, a depth bound, and only the
types JSON has plus ``bin``: nil, booleans, integers, floats, strings, binary,
arrays, and maps with string keys. Extension types are refused (msgpack's
timestamp too), except the one ``notepack.io`` writes for JavaScript's
``undefined`` (type 0, one zero byte: the npm client's CONNECT without ``auth``
carries it), which reads as None. Every failure is a
:class:`~tornado_sio.exceptions.ProtocolError`. Pure: no I/O here.
"""

from __future__ import annotations

import enum
import threading
import uuid
from typing import Any, Dict, List, Optional, Union

import msgpack

from ..exceptions import EncodeError, PayloadTooLarge, ProtocolError
from .jsonutil import DEFAULT_MAX_DEPTH
from .outgoing import Prepared, binary_packet
from .socketio import MAX_ACK_ID, SIOPacket, SIOType, check_data

__all__ = ["encode_packet", "decode_packet", "prepare", "MsgpackDecoder"]

#: What each packet type is written as: the BINARY_* types do not exist in this parser.
_WIRE_TYPE = {
    SIOType.CONNECT: 0,
    SIOType.DISCONNECT: 1,
    SIOType.EVENT: 2,
    SIOType.ACK: 3,
    SIOType.CONNECT_ERROR: 4,
    SIOType.BINARY_EVENT: 2,
    SIOType.BINARY_ACK: 3,
}
_TYPE_BY_NUMBER = {number: SIOType(number) for number in range(5)}
_SCALARS = frozenset({type(None), bool, int, float, str, bytes})


class _Undefined:
    """JavaScript's ``undefined`` as notepack.io writes it (extension type 0, one zero byte)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED = _Undefined()


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0 and data == b"\x00":
        return _UNDEFINED
    raise ProtocolError(f"msgpack extension type {code} is not accepted (send binary as bin)")


# One Packer per thread (handlers may emit from handler_threads): building one per packet
# costs more than the packing of a small event.
_local = threading.local()


def _default(obj: Any) -> Any:
    """Encode what the JSON parser also encodes beyond plain types: enums (their value), UUIDs."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, memoryview):
        return obj.tobytes()
    raise TypeError(f"cannot serialize {type(obj).__name__!r} object")


# ---------------------------------------------------------------- encoding


def encode_packet(packet: SIOPacket) -> bytes:
    """*packet* as one msgpack message.

    Raises :class:`~tornado_sio.exceptions.EncodeError` for data msgpack
    cannot hold (sets, datetimes, arbitrary objects, integers past 64 bits,
    strings with lone surrogates, circular or absurdly deep data), data on a
    DISCONNECT, a namespace not starting with ``/``, and an ack id that is not
    an int in ``0..MAX_ACK_ID``.
    """
    wire_type = _WIRE_TYPE[packet.type]
    body: Dict[str, Any] = {"type": wire_type}
    data = packet.data
    if data is not None:
        if wire_type == 1:
            raise EncodeError("a DISCONNECT packet carries no data")
        body["data"] = data
    namespace = packet.namespace
    if not isinstance(namespace, str) or not namespace.startswith("/"):
        raise EncodeError(f"invalid namespace {namespace!r}: must start with '/'")
    body["nsp"] = namespace
    ack_id = packet.id
    if ack_id is not None:
        if type(ack_id) is not int or not 0 <= ack_id <= MAX_ACK_ID:
            raise EncodeError(f"invalid ack id {ack_id!r}: must be an int in 0..{MAX_ACK_ID}")
        body["id"] = ack_id
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(default=_default, use_bin_type=True)
    try:
        payload: bytes = packer.pack(body)
    except (TypeError, ValueError, OverflowError) as exc:  # UnicodeEncodeError is a ValueError
        raise EncodeError(f"cannot encode as msgpack: {exc}") from None
    return payload


def prepare(packet: SIOPacket) -> Prepared:
    """Encode *packet* once for any number of recipients (one binary message)."""
    return binary_packet(encode_packet(packet))


# ---------------------------------------------------------------- decoding


def _refuse_type(value: Any) -> ProtocolError:
    return ProtocolError(f"msgpack value of type {type(value).__name__} is not accepted")


def _check_tree(root: Any, max_depth: int) -> None:
    """Check, iteratively, the types and nesting of packet data; ``undefined`` becomes None in place."""
    kind = type(root)
    if kind is not list and kind is not dict:
        if kind not in _SCALARS:
            raise _refuse_type(root)
        return
    stack: List[Any] = [(root, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            raise ProtocolError(f"msgpack data nested deeper than {max_depth} levels")
        pairs = node.items() if type(node) is dict else enumerate(node)
        for key, child in pairs:
            if type(key) is not str and type(node) is dict:
                raise ProtocolError(f"msgpack map key of type {type(key).__name__}: keys must be strings")
            kind = type(child)
            if kind is list or kind is dict:
                push((child, depth + 1))
            elif kind not in _SCALARS:
                if child is not _UNDEFINED:
                    raise _refuse_type(child)
                node[key] = None  # replaces a value, so iterating on goes on safely


def decode_packet(obj: Any, max_depth: int = DEFAULT_MAX_DEPTH) -> SIOPacket:
    """The Socket.IO packet in an unpacked msgpack message *obj* (a map), checked.

    Raises :class:`~tornado_sio.exceptions.ProtocolError` for anything that is
    not a valid packet a peer may send.
    """
    if type(obj) is not dict:
        raise ProtocolError(f"a msgpack packet must be a map, not {type(obj).__name__}")
    number = obj.get("type")
    if type(number) is not int or number not in _TYPE_BY_NUMBER:
        raise ProtocolError(f"invalid msgpack packet type {number!r}")
    ptype = _TYPE_BY_NUMBER[number]
    namespace = obj.get("nsp")
    if type(namespace) is not str or not namespace.startswith("/"):
        raise ProtocolError("a msgpack packet needs a namespace (nsp) starting with '/'")
    ack_id = obj.get("id")
    if ack_id is _UNDEFINED:
        ack_id = None
    elif ack_id is not None and (type(ack_id) is not int or not 0 <= ack_id <= MAX_ACK_ID):
        raise ProtocolError(f"invalid ack id {ack_id!r}: must be an int in 0..{MAX_ACK_ID}")
    data = obj.get("data")
    if data is _UNDEFINED:  # absent, as nil is (python-socketio writes data: nil)
        data = None
    elif data is not None:
        _check_tree(data, max_depth)
    check_data(ptype, data, ack_id)
    return SIOPacket(ptype, namespace, data, ack_id)


def _unpack(payload: bytes) -> Any:
    try:
        return msgpack.unpackb(payload, ext_hook=_ext_hook, raw=False, strict_map_key=True)
    except ProtocolError:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack raises ValueError/TypeError subclasses and more
        raise ProtocolError(f"invalid msgpack ({type(exc).__name__}: {exc})") from None


class MsgpackDecoder:
    """Per-connection decoder: each binary message is one whole packet (nothing is ever pending).

    *max_bytes* bounds one packet (``max_http_buffer_size`` already bounds the
    message; this keeps the codec safe on its own), *max_depth* its data's nesting.
    """

    __slots__ = ("max_bytes", "max_depth")

    def __init__(self, max_bytes: int = 1_000_000, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    @property
    def pending(self) -> bool:
        """Always False: the msgpack parser has no attachments to wait for."""
        return False

    def reset(self) -> None:
        """Nothing to drop: no packet is ever half-received."""

    def feed(self, data: Union[str, bytes]) -> Optional[SIOPacket]:
        """Decode one binary message into a packet.

        Raises :class:`~tornado_sio.exceptions.ProtocolError` for a text message
        (a client not using the msgpack parser), invalid msgpack or an invalid
        packet; :class:`~tornado_sio.exceptions.PayloadTooLarge` past *max_bytes*.
        """
        if isinstance(data, str):
            raise ProtocolError("text message on a msgpack connection: the client does not use the "
                                "msgpack parser (socket.io-msgpack-parser / serializer='msgpack')")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ProtocolError(f"cannot decode a Socket.IO packet from {type(data).__name__}")
        if len(data) > self.max_bytes:
            raise PayloadTooLarge(f"msgpack packet of {len(data)} bytes exceeds {self.max_bytes}")
        return decode_packet(_unpack(bytes(data)), self.max_depth)
