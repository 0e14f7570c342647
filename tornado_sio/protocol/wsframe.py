"""WebSocket frames (RFC 6455, section 5): a sans-I/O parser and the server's writers.

Why: the protocol layer keeps the framing rules testable on their own. Nothing
here touches a socket, an IOLoop or Tornado: bytes go in, events come out, and
the writers return the bytes to send.

Writers. A broadcast to many WebSocket clients sends the same message to each
of them. Building the frame once with :func:`build_frame` and writing the same
bytes to every stream saves the per-client framing work Tornado's
``write_message`` would redo. Frames sent by a server are never masked (RFC 6455
5.1) and here never fragmented. permessage-deflate (RFC 7692) is optional:
:func:`deflate_payload` compresses a message with no context kept (so the
result is the same for every client that negotiated it) and
``build_frame(..., compressed=True)`` marks it with RSV1; the parser takes an
:class:`Inflater` to read compressed messages.

Parser. :class:`FrameParser` reads what a client sends: :meth:`FrameParser.feed`
appends bytes, :meth:`FrameParser.next_event` or :meth:`FrameParser.events`
return :class:`Message`, :class:`Ping`, :class:`Pong` and :class:`Close`
events. Any breach of RFC 6455 raises :class:`WebSocketProtocolError`, which
carries the close code the server must send before it drops the connection.

Where RFC 6455 leaves the receiver a choice, this parser decides as follows:

* A data frame whose length uses more bytes than needed (a 16-bit field holding
  a value <= 125, a 64-bit field holding a value <= 65535) is accepted. RFC 6455
  5.2 puts the "minimal number of bytes" duty on the sender and names no close
  code for a receiver; Node's ``ws``, ``websockets`` and Tornado accept such
  frames too, and the message size limit applies to the value either way. A
  control frame never may use the extended forms (its payload is at most 125
  bytes, so any 16- or 64-bit length is either too long or not minimal): it
  fails with 1002 as soon as its second byte arrives.
* The message size limit counts payload bytes of a message, summed over its
  fragments, and is checked when a frame's length is known, before any of its
  payload is buffered. Control frames do not count toward it (they are at most
  125 bytes each). The failure is 1009 with an empty reason, as ``ws`` sends.
* Text is validated as UTF-8 while it arrives: the fragment, or the part of a
  frame received so far, that makes the text invalid fails with 1007 at once.
  A sequence still incomplete at the end of the final fragment fails with 1007.
* Once a Close frame has been parsed the client may send nothing more (RFC 6455
  5.5.1); any bytes after it, buffered or fed later, are discarded.
* After a :class:`WebSocketProtocolError` the parser is dead: every later
  ``feed``, ``next_event`` or iteration of ``events`` raises the error again
  (same code and reason); the buffered bytes are dropped.
"""

from __future__ import annotations

import codecs
import enum
import functools
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn, Union

from ..exceptions import ProtocolError

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Close",
    "Event",
    "FrameParser",
    "Inflater",
    "Message",
    "Ping",
    "Pong",
    "WebSocketProtocolError",
    "build_close",
    "build_frame",
    "build_ping",
    "build_pong",
    "deflate_payload",
]

OP_CONTINUATION = 0x0
"""Opcode of a continuation frame: the next fragment of a fragmented message."""
OP_TEXT = 0x1
"""Opcode of a text frame: the payload is UTF-8."""
OP_BINARY = 0x2
"""Opcode of a binary frame: the payload is arbitrary bytes."""
OP_CLOSE = 0x8
"""Opcode of a Close control frame: an optional 2-byte code and a UTF-8 reason."""
OP_PING = 0x9
"""Opcode of a Ping control frame: the peer must answer with a Pong of the same payload."""
OP_PONG = 0xA
"""Opcode of a Pong control frame: the answer to a Ping, or an unsolicited heartbeat."""

_FIN = 0x80
_HEADER_7 = struct.Struct("!BB")
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")
_CLOSE_CODE = struct.Struct("!H")

# A close frame's payload is at most 125 bytes: 2 for the code, 123 for the reason.
_MAX_CLOSE_REASON = 123

_PROTOCOL_ERROR = 1002
_INVALID_DATA = 1007
_MESSAGE_TOO_BIG = 1009

_utf8_incremental_decoder = codecs.getincrementaldecoder("utf-8")


def build_frame(payload: bytes | bytearray | memoryview, opcode: int = OP_TEXT, compressed: bool = False) -> bytes:
    """Return one complete, final, unmasked frame carrying *payload*.

    *compressed* sets RSV1: the payload is a permessage-deflate message (see
    :func:`deflate_payload`), only for a connection that negotiated it.

    The length takes the 7-bit form up to 125 bytes, the 16-bit form (126) up
    to 65535 bytes and the 64-bit form (127) beyond. A text frame's payload
    must already be UTF-8. Raises ``ValueError`` for an opcode outside 0..15 or
    a control frame (opcode >= 8) longer than 125 bytes, ``TypeError`` for a
    payload that is not bytes-like.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"frame payload must be bytes-like, not {type(payload).__name__}")
    if not 0 <= opcode <= 0xF:
        raise ValueError(f"invalid WebSocket opcode {opcode!r}")
    length = len(payload) if not isinstance(payload, memoryview) else payload.nbytes
    first = _FIN | opcode | (0x40 if compressed else 0)
    if length <= 125:
        header = _HEADER_7.pack(first, length)
    elif opcode >= 0x8:
        raise ValueError(f"control frame payload of {length} bytes exceeds 125")
    elif length <= 0xFFFF:
        header = _HEADER_16.pack(first, 126, length)
    else:
        header = _HEADER_64.pack(first, 127, length)
    return header + payload


def _is_valid_close_code(code: int) -> bool:
    """Whether *code* may appear in a Close frame on the wire (RFC 6455 7.4, IANA registry).

    1000-1003 and 1007-1014 are the registered codes an endpoint may send;
    1004 is reserved, 1005, 1006 and 1015 must never be sent, the rest of
    0-2999 is unassigned; 3000-3999 (registered by libraries) and 4000-4999
    (private use) are open to applications.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def build_close(code: int | None = 1000, reason: str = "") -> bytes:
    """Return an unmasked Close frame with *code* and *reason*.

    Why: a server closes with a code that tells the client what went wrong
    (for example the ``code`` of a :class:`WebSocketProtocolError`), and the
    reason must fit the 125-byte control frame. The reason is UTF-8 encoded and
    cut to 123 bytes on a character boundary, so the frame stays valid UTF-8.
    ``code=None`` builds the empty Close frame (no code, no reason), which is
    also the right echo of a client's empty Close. Raises ``ValueError`` for a
    code that may not be sent on the wire (see RFC 6455 7.4: for example 1005,
    1006, 1015, anything below 1000 or above 4999), for a reason given without
    a code, or for a reason that cannot be encoded (lone surrogates).
    """
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return build_frame(b"", OP_CLOSE)
    if not _is_valid_close_code(code):
        raise ValueError(f"close code {code!r} may not be sent in a Close frame")
    raw = reason.encode("utf-8")
    if len(raw) > _MAX_CLOSE_REASON:
        cut = _MAX_CLOSE_REASON
        # Step back over continuation bytes (10xxxxxx) to the start of the cut character.
        while raw[cut] & 0xC0 == 0x80:
            cut -= 1
        raw = raw[:cut]
    return build_frame(_CLOSE_CODE.pack(code) + raw, OP_CLOSE)


def build_ping(data: bytes | bytearray | memoryview = b"") -> bytes:
    """Return an unmasked Ping frame carrying *data* (at most 125 bytes).

    Why: a server pings to check that an idle client is still there; the client
    answers with a Pong carrying the same *data*. Raises ``ValueError`` when
    *data* is longer than 125 bytes, ``TypeError`` when it is not bytes-like.
    """
    return build_frame(data, OP_PING)


def build_pong(data: bytes | bytearray | memoryview = b"") -> bytes:
    """Return an unmasked Pong frame carrying *data* (at most 125 bytes).

    Why: RFC 6455 5.5.2 requires answering every Ping with a Pong whose payload
    is the Ping's payload. Raises ``ValueError`` when *data* is longer than 125
    bytes, ``TypeError`` when it is not bytes-like.
    """
    return build_frame(data, OP_PONG)


class WebSocketProtocolError(ProtocolError):
    """A client broke RFC 6455; the server must close with :attr:`code` and :attr:`reason`.

    Why one type: the code that drives a :class:`FrameParser` catches exactly
    this, sends ``build_close(exc.code, exc.reason)`` and drops the connection.
    :attr:`code` is 1002 (protocol error), 1007 (invalid UTF-8) or 1009
    (message too big); :attr:`reason` is the close reason to send (short, and
    empty for 1009). ``str(exc)`` is the same text, or a description of the
    code when the reason is empty, fit for a log line.
    """

    code: int
    reason: str

    def __init__(self, code: int, reason: str, description: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        #: For the log when the reason sent is empty (e.g. 1009 after decompression).
        self.description = description

    def __str__(self) -> str:
        return self.reason or self.description or _CODE_DESCRIPTIONS.get(self.code, f"close code {self.code}")


_CODE_DESCRIPTIONS = {
    _PROTOCOL_ERROR: "protocol error",
    _INVALID_DATA: "invalid frame payload data",
    _MESSAGE_TOO_BIG: "message too big",
}


class _FrozenEvent:
    """Base of the event classes: lets ``copy`` and ``pickle`` rebuild them.

    Their default way (set each slot on a bare object) is refused by a frozen
    dataclass before Python 3.10's ``slots=True``; calling the class is not.
    """

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), tuple(getattr(self, name) for name in self.__dataclass_fields__))


@dataclass(frozen=True)
class Message(_FrozenEvent):
    """A complete data message, reassembled from its fragments.

    :attr:`opcode` is :data:`OP_TEXT` or :data:`OP_BINARY`. A text message's
    :attr:`data` is a ``str`` (the UTF-8 was validated), a binary message's is
    ``bytes``: the type tells the two apart without looking at the opcode.
    """

    __slots__ = ("data", "opcode")
    opcode: int
    data: bytes | str


# The parser builds every Message through _message: setting the slots through
# their descriptors skips the frozen dataclass __init__ (one object.__setattr__
# call per field), which takes half the time on a small frame otherwise.
_new_object = object.__new__
_set_message_opcode = Message.__dict__["opcode"].__set__
_set_message_data = Message.__dict__["data"].__set__


def _message(opcode: int, data: bytes | str) -> Message:
    """Return ``Message(opcode, data)``, built twice as fast as by its constructor."""
    message: Message = _new_object(Message)
    _set_message_opcode(message, opcode)
    _set_message_data(message, data)
    return message


@dataclass(frozen=True)
class Ping(_FrozenEvent):
    """A Ping from the client; answer it with ``build_pong(event.data)``."""

    __slots__ = ("data",)
    data: bytes


@dataclass(frozen=True)
class Pong(_FrozenEvent):
    """A Pong from the client: the answer to a server Ping, or a heartbeat."""

    __slots__ = ("data",)
    data: bytes


@dataclass(frozen=True)
class Close(_FrozenEvent):
    """A Close from the client; the parser ignores everything after it.

    :attr:`code` is ``None`` when the Close frame had no payload (then
    :attr:`reason` is ``""``); otherwise it is a code valid on the wire. The
    server answers with a Close (``build_close(event.code)`` echoes it; for an
    empty Close that is again an empty Close) and then closes the TCP
    connection.
    """

    __slots__ = ("code", "reason")
    code: int | None
    reason: str

    @classmethod
    def parse(cls, payload: bytes) -> Close:
        """The Close a close frame's unmasked *payload* carries (RFC 6455 5.5.1, 7.4).

        Raises :class:`WebSocketProtocolError`: 1002 for a 1-byte payload or a
        code that may not be sent (see :func:`build_close`), 1007 for a reason
        that is not UTF-8.
        """
        if not payload:
            return cls(None, "")
        if len(payload) == 1:
            raise WebSocketProtocolError(_PROTOCOL_ERROR, "close frame payload of 1 byte")
        code = (payload[0] << 8) | payload[1]
        if not _is_valid_close_code(code):
            raise WebSocketProtocolError(_PROTOCOL_ERROR, f"invalid close code {code}")
        try:
            return cls(code, payload[2:].decode("utf-8"))
        except UnicodeDecodeError:
            raise WebSocketProtocolError(_INVALID_DATA, "invalid UTF-8 in close reason") from None


Event = Union[Message, Ping, Pong, Close]
"""What :class:`FrameParser` returns: one of :class:`Message`, :class:`Ping`, :class:`Pong`, :class:`Close`."""


class _Need(enum.Enum):
    """Marker of :meth:`FrameParser._step`: no complete frame in the buffer."""

    DATA = 0


def _first_byte_error(first: int) -> str | None:
    """The 1002 reason a frame's first byte earns on its own, or ``None`` when it is fine."""
    if first & 0x70:
        return "reserved bits set"
    opcode = first & 0x0F
    if 3 <= opcode <= 7 or opcode >= 11:
        return f"unknown opcode {opcode}"
    if opcode >= 8 and not first & _FIN:
        return "fragmented control frame"
    return None


# Indexed by the first byte of a frame: the reason it fails with 1002, if any.
_FIRST_BYTE_ERRORS = tuple(_first_byte_error(first) for first in range(256))


def _first_byte_error_in(first: int, message_open: bool) -> str | None:
    """The 1002 reason a frame's first byte earns while a fragmented message is open or not; else None."""
    reason = _FIRST_BYTE_ERRORS[first]
    opcode = first & 0x0F
    if reason is None and opcode == OP_CONTINUATION and not message_open:
        reason = "continuation frame without a message to continue"
    elif reason is None and 0 < opcode < 8 and message_open:
        reason = "new data frame inside a fragmented message"
    return reason


def _rsv1_error(first: int, message_open: bool) -> str | None:
    """The 1002 reason of a first byte with RSV1 set on a permessage-deflate connection, or None.

    RSV1 marks the first frame of a compressed message (RFC 7692 6.1); on a
    continuation or a control frame it is an error.
    """
    if not 0 < first & 0x0F < 3:
        return "RSV1 set on a continuation or control frame"
    return _first_byte_error_in(first & ~0x40, message_open)


def _whole_data_frame(buf: bytearray, pos: int, limit: int) -> tuple[int, int] | None:
    """``(start, end)`` of the payload when a whole, final, masked text or binary frame starts at *pos*.

    ``None`` unless the frame is of that common kind, with a 7- or 16-bit
    length within *limit*, and entirely in *buf*: any other frame takes the
    parser's general path, which applies every rule.
    """
    if len(buf) - pos < 6:
        return None
    first, second = buf[pos], buf[pos + 1]
    if (first != 0x81 and first != 0x82) or not 0x80 <= second <= 0xFE:
        return None
    if second < 0xFE:
        start, length = pos + 6, second & 0x7F
    else:
        start, length = pos + 8, (buf[pos + 2] << 8) | buf[pos + 3]
    end = start + length
    return (start, end) if length <= limit and end <= len(buf) else None


# _XOR_TABLES[m] maps each byte b to b ^ m, for bytes.translate.
_IDENTITY = int.from_bytes(bytes(range(256)), "big")
_XOR_TABLES = tuple((_IDENTITY ^ int.from_bytes(bytes((m,)) * 256, "big")).to_bytes(256, "big") for m in range(256))
# From this payload size up, four strided translate() calls beat the big-int XOR.
_TRANSLATE_FROM = 512


def _unmask(buf: bytearray, start: int, end: int, mask: bytes | bytearray) -> bytes:
    """Return ``buf[start:end]`` XOR-ed with the 4-byte *mask* repeated (RFC 6455 5.3).

    Why two ways: in CPython, reading the payload and the repeated mask as two
    big ints and XOR-ing them is the fastest for small payloads (5x a per-byte
    loop at 100 bytes); from about 500 bytes up, translating every fourth byte
    through a 256-byte XOR table is faster (1.6x the big-int way at 64 KiB, 2.7x
    at 1 MiB), since it stays a plain byte copy in C.
    """
    n = end - start
    if n < _TRANSLATE_FROM:
        repeated = (mask * ((n + 3) >> 2))[:n]
        return (int.from_bytes(buf[start:end], "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")
    out = bytearray(n)
    out[0::4] = buf[start:end:4].translate(_XOR_TABLES[mask[0]])
    out[1::4] = buf[start + 1 : end : 4].translate(_XOR_TABLES[mask[1]])
    out[2::4] = buf[start + 2 : end : 4].translate(_XOR_TABLES[mask[2]])
    out[3::4] = buf[start + 3 : end : 4].translate(_XOR_TABLES[mask[3]])
    return bytes(out)


Unmask = Callable[[bytes, bytes], bytes]
"""A masking function ``(mask, data) -> data`` XOR-ed with the 4-byte *mask* repeated (RFC 6455 5.3)."""


@functools.lru_cache(maxsize=8)
def _external_unmask(unmask: Unmask) -> Callable[[bytearray, int, int, bytes | bytearray], bytes]:
    """Adapt an ``(mask, data)`` masking function to :func:`_unmask`'s signature.

    Cached: every parser given the same function shares one adapter (a
    server holds one parser per open WebSocket).
    """

    def apply(buf: bytearray, start: int, end: int, mask: bytes | bytearray) -> bytes:
        return unmask(bytes(mask), bytes(buf[start:end]))

    return apply


_DEFLATE_TAIL = b"\x00\x00\xff\xff"


class Inflater:
    """permessage-deflate (RFC 7692) for the messages a client sends: raw DEFLATE, bounded output.

    Why bounded: a few kilobytes of compressed zeros inflate to gigabytes; the
    output is cut at *limit* + 1 bytes and the message refused with 1009, so a
    "bomb" never inflates in memory. With *no_context_takeover* (the client
    agreed to ``client_no_context_takeover``) each message starts a fresh
    window; otherwise the window carries over from message to message, as the
    client's compressor does (then the inflater holds zlib's state, about
    40 KiB, for the life of the connection).
    """

    __slots__ = ("_window", "_no_context_takeover")

    def __init__(self, no_context_takeover: bool = False) -> None:
        self._no_context_takeover = no_context_takeover
        self._window: Any = None  # zlib's decompressor, kept across messages (context takeover)

    def inflate(self, data: bytes, limit: int) -> bytes:
        """The message *data* (its fragments' payloads joined) inflated; 1009 past *limit*, 1007 if corrupt."""
        decompressor = self._window
        if decompressor is None or self._no_context_takeover:
            decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
            if not self._no_context_takeover:
                self._window = decompressor
        try:
            out = decompressor.decompress(data + _DEFLATE_TAIL, limit + 1)
        except zlib.error:
            raise WebSocketProtocolError(_INVALID_DATA, "invalid compressed data") from None
        if len(out) > limit or decompressor.unconsumed_tail:
            raise WebSocketProtocolError(_MESSAGE_TOO_BIG, "", "message too big after decompression")
        return bytes(out)


def deflate_payload(payload: bytes | bytearray | memoryview) -> bytes:
    """*payload* compressed for one message with no context kept (``server_no_context_takeover``).

    Why no context: then the same message compresses to the same bytes for
    every client, so a broadcast compresses once (see
    :attr:`~tornado_sio.protocol.outgoing.Prepared.ws_frames_deflated`).
    """
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(_DEFLATE_TAIL) else out


class FrameParser:
    """Incremental parser of the frames a WebSocket client sends to this server.

    Why sans-I/O: the transport reads from its socket, hands the bytes to
    :meth:`feed` and acts on the events, so the RFC 6455 rules are enforced in
    one place and tested without a network. Nothing is reparsed: the parser
    keeps its position in an internal buffer, and a large frame's payload is
    unmasked (and, for text, UTF-8 checked) as it arrives.

    *max_message_size* is the largest message accepted, in payload bytes summed
    over its fragments (larger ones fail with 1009 before their payload is
    read; 0 admits only empty messages, a negative size is a ``ValueError``).
    *require_mask* (default true, as RFC 6455 5.1 demands of a server)
    fails unmasked frames with 1002; when false, masked and unmasked frames are
    both accepted. *unmask*, a masking function ``(mask, data) -> bytes``,
    replaces the pure-Python one (e.g. Tornado's C ``websocket_mask``: 2x as
    fast on a small frame, 20x on 64 KiB) without this module depending on it.
    *inflater* (an :class:`Inflater`: permessage-deflate was negotiated) lets
    RSV1 mark compressed messages, checked for size and UTF-8 once inflated.

    Fairness: :meth:`events` takes a budget of frames (compare
    :attr:`frames_parsed` before and after), so one busy client cannot hold
    the event loop for a whole buffer's worth of tiny frames.
    """

    # _frame_*: the frame whose payload is being read in pieces (while _frame_active).
    # _message_*: the data message in progress (while _message_opcode is not 0).
    __slots__ = (
        "_buf", "_closed", "_error", "_frame_active", "_frame_control", "_frame_done", "_frame_fin",
        "_frame_mask", "_frame_opcode", "_frame_rsv1", "_frame_remaining", "_frames", "_inflater",
        "_max_message_size", "_message_compressed", "_message_decoder", "_message_opcode", "_message_parts",
        "_message_size", "_pos", "_require_mask", "_unmask",
    )

    def __init__(self, max_message_size: int, *, require_mask: bool = True, unmask: Unmask | None = None,
                 inflater: Inflater | None = None) -> None:
        if max_message_size < 0:
            raise ValueError(f"max_message_size must be >= 0, not {max_message_size!r}")
        self._max_message_size = max_message_size
        self._require_mask = require_mask
        self._unmask = _unmask if unmask is None else _external_unmask(unmask)
        self._buf = bytearray()
        self._pos = 0
        self._error: WebSocketProtocolError | None = None
        self._closed = False
        self._frames = 0
        self._frame_active = False
        self._frame_opcode = 0
        self._frame_rsv1 = False
        self._inflater = inflater
        self._message_compressed = False
        self._frame_fin = False
        self._frame_mask: bytearray | None = None
        self._frame_remaining = 0
        self._frame_done = 0
        # Control payloads are at most 125 bytes: plain bytes, no buffer held while idle.
        self._frame_control: bytes | bytearray = b""
        self._message_opcode = 0
        self._message_size = 0
        # The parts of the message in progress: str pieces of a text message, bytes of a binary one.
        self._message_parts: list[Any] = []
        self._message_decoder: codecs.IncrementalDecoder | None = None

    # -- public API ---------------------------------------------------------

    @property
    def frames_parsed(self) -> int:
        """How many complete frames this parser has consumed, events or not.

        Why: a fragment, or a frame that completes nothing, yields no event but
        still costs work; compare this counter before and after :meth:`events`
        to charge a client for every frame.
        """
        return self._frames

    @property
    def buffered(self) -> int:
        """How many fed bytes are not consumed yet (a partial frame, or frames left by a budget)."""
        return len(self._buf) - self._pos

    @property
    def closed(self) -> bool:
        """Whether a Close frame has been parsed; from then on input is discarded."""
        return self._closed

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append *data*, as read from the socket, to the bytes waiting to be parsed.

        Nothing is parsed here: call :meth:`next_event` or :meth:`events`.
        Bytes fed after a Close frame are discarded. Raises the parser's
        :class:`WebSocketProtocolError` again if it has already failed.
        """
        if self._error is not None:
            self._raise_again()
        if self._closed or not data:
            return
        buf = self._buf
        pos = self._pos
        if pos:
            # Compact only once the consumed head is at least as large as the
            # unconsumed tail: each byte is moved O(1) times, amortised.
            if pos == len(buf):
                buf.clear()
                self._pos = 0
            elif pos * 2 >= len(buf):
                del buf[:pos]
                self._pos = 0
        buf += data

    def next_event(self) -> Event | None:
        """Parse buffered frames up to the next event; ``None`` when more bytes are needed.

        Raises :class:`WebSocketProtocolError` when the client broke RFC 6455.
        """
        while True:
            result = self._step()
            if result is _Need.DATA:
                return None
            if result is not None:
                return result

    def events(self, max_frames: int | None = None) -> Iterator[Event]:
        """Yield the events of the buffered frames, consuming at most *max_frames* frames.

        Why a budget: it bounds the work done for one client per turn of the
        event loop. Every complete frame counts, including fragments and other
        frames that yield no event. What is not consumed stays buffered for the
        next call; stopping the iteration early loses nothing either, since each
        event is yielded only after its frame has been consumed. ``None`` (the
        default) means no limit. Raises :class:`WebSocketProtocolError` when
        the client broke RFC 6455.
        """
        if max_frames is not None and max_frames < 0:
            raise ValueError(f"max_frames must be >= 0, not {max_frames!r}")
        return self._events(max_frames)

    def _events(self, max_frames: int | None) -> Iterator[Event]:
        """The generator behind :meth:`events`: whole unfragmented text and binary frames (nearly
        all) are taken here, a third faster than by :meth:`_step`, which takes every other frame."""
        frames, step, limit = 0, self._step, self._max_message_size
        while max_frames is None or frames < max_frames:
            buf, pos = self._buf, self._pos
            if pos == len(buf) and self._error is None:
                return  # nothing buffered (what _step would find, at a fraction of the cost)
            span = None if self._message_opcode or self._frame_active else _whole_data_frame(buf, pos, limit)
            if span is not None:
                start, end = span
                payload = self._unmask(buf, start, end, buf[start - 4 : start])
                self._pos, self._frames, frames = end, self._frames + 1, frames + 1
                yield self._complete_message(buf[pos] & 0x0F, payload)
                continue
            result = step()
            if result is _Need.DATA:
                return
            frames += 1
            if result is not None:
                yield result

    # -- parsing ------------------------------------------------------------

    def _raise_again(self) -> NoReturn:
        """Raise a fresh copy of the error that killed this parser."""
        error = self._error
        assert error is not None
        raise WebSocketProtocolError(error.code, error.reason, error.description)

    def _fail(self, code: int, reason: str, description: str = "") -> WebSocketProtocolError:
        """Kill the parser with *code*/*reason* and return the error for the caller to raise."""
        error = WebSocketProtocolError(code, reason, description)
        self._error = error
        self._buf = bytearray()
        self._pos = 0
        self._message_parts = []
        self._message_decoder = None
        self._frame_control = b""
        return error

    def _check_first_byte(self, first: int) -> None:
        """Fail unless *first* may start a frame in the current message state (RSV1: see :func:`_rsv1_error`)."""
        if first & 0x40 and self._inflater is not None:
            reason = _rsv1_error(first, bool(self._message_opcode))
        else:
            reason = _first_byte_error_in(first, bool(self._message_opcode))
        if reason is not None:
            raise self._fail(_PROTOCOL_ERROR, reason)

    def _step(self) -> Event | None | _Need:
        """Consume at most one complete frame.

        Returns its event, ``None`` when the frame completed no event (a
        non-final fragment), or ``_Need.DATA`` when no complete frame is
        buffered (any available part of a frame's payload is still consumed and
        checked).
        """
        if self._error is not None:
            self._raise_again()
        if self._closed:
            return _Need.DATA
        if self._frame_active:
            return self._read_payload()
        buf = self._buf
        pos = self._pos
        available = len(buf) - pos
        if available < 2:
            if available:
                self._check_first_byte(buf[pos])
            return _Need.DATA

        first = buf[pos]
        if (first != 0x81 and first != 0x82) or self._message_opcode:
            # Anything but a whole text or binary message needs the full check.
            self._check_first_byte(first)
        opcode = first & 0x0F
        second = buf[pos + 1]
        if not second & 0x80 and self._require_mask:
            raise self._fail(_PROTOCOL_ERROR, "unmasked client frame")
        length = second & 0x7F
        header = 2
        if length >= 126:
            if opcode >= 8:
                raise self._fail(_PROTOCOL_ERROR, "control frame payload longer than 125 bytes")
            if length == 126:
                if available < 4:
                    return _Need.DATA
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                header = 4
            else:
                if available < 10:
                    return _Need.DATA
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                if length >> 63:
                    raise self._fail(_PROTOCOL_ERROR, "64-bit frame length with the high bit set")
                header = 10
        if opcode < 8:
            # Checked before the mask and payload are even waited for.
            previous = self._message_size if opcode == OP_CONTINUATION else 0
            if length > self._max_message_size - previous:
                raise self._fail(_MESSAGE_TOO_BIG, "")
        mask: bytearray | None = None
        if second & 0x80:
            if available < header + 4:
                return _Need.DATA
            mask = buf[pos + header : pos + header + 4]
            header += 4
        start = pos + header
        end = start + length
        fin = bool(first & _FIN)
        self._frame_rsv1 = bool(first & 0x40)

        if end <= len(buf):
            # The whole frame is buffered: the common case, with no frame state.
            payload = self._unmask(buf, start, end, mask) if mask is not None else bytes(buf[start:end])
            self._pos = end
            self._frames += 1
            return self._whole_frame(opcode, fin, length, payload)
        return self._begin_partial_frame(opcode, fin, length, start, mask)

    def _whole_frame(self, opcode: int, fin: bool, length: int, payload: bytes) -> Event | None:
        """The event of a frame whose whole payload was buffered (None for a non-final fragment)."""
        if opcode >= 8:
            return self._control_event(opcode, payload)
        if fin and opcode != OP_CONTINUATION:
            if self._frame_rsv1:
                return self._inflated_message(opcode, payload)
            return self._complete_message(opcode, payload)
        self._start_data_frame(opcode, length)
        self._add_data(payload)
        return self._finish_message() if fin else None

    def _complete_message(self, opcode: int, payload: bytes) -> Message:
        """The message of a whole unfragmented text or binary frame (text checked as UTF-8)."""
        if opcode == OP_TEXT:
            try:
                return _message(OP_TEXT, payload.decode("utf-8"))
            except UnicodeDecodeError:
                raise self._fail(_INVALID_DATA, "invalid UTF-8 in text message") from None
        return _message(OP_BINARY, payload)

    def _inflated_message(self, opcode: int, raw: bytes) -> Message:
        """The message of a compressed message's *raw* payload (RSV1 is refused without an inflater)."""
        try:
            data = self._inflater.inflate(raw, self._max_message_size)  # type: ignore[union-attr]
        except WebSocketProtocolError as exc:
            raise self._fail(exc.code, exc.reason, exc.description) from None
        return self._complete_message(opcode, data)

    def _begin_partial_frame(self, opcode: int, fin: bool, length: int, start: int,
                             mask: bytearray | None) -> Event | None | _Need:
        """Only part of the payload is here: keep the frame's state and read it as it comes."""
        self._pos = start
        self._frame_active = True
        self._frame_opcode = opcode
        self._frame_fin = fin
        self._frame_mask = mask
        self._frame_remaining = length
        self._frame_done = 0
        if opcode < 8:
            self._start_data_frame(opcode, length)
        return self._read_payload()

    def _start_data_frame(self, opcode: int, length: int) -> None:
        """Account for a data frame whose header was accepted: open or extend the message."""
        if opcode == OP_CONTINUATION:
            self._message_size += length
            return
        self._message_opcode = opcode
        self._message_size = length
        self._message_parts = []
        self._message_compressed = self._frame_rsv1
        if opcode == OP_TEXT and not self._frame_rsv1:  # compressed text is checked once inflated
            self._message_decoder = _utf8_incremental_decoder("strict")
        else:
            self._message_decoder = None

    def _add_data(self, chunk: bytes) -> None:
        """Append unmasked payload bytes to the message in progress, checking text as it goes."""
        decoder = self._message_decoder
        if decoder is None:
            self._message_parts.append(chunk)
            return
        try:
            self._message_parts.append(decoder.decode(chunk, False))
        except UnicodeDecodeError:
            raise self._fail(_INVALID_DATA, "invalid UTF-8 in text message") from None
        # CPython's decoder waits for the third byte of ED A0..BF (a UTF-16
        # surrogate, never valid UTF-8) before refusing it; refuse it now.
        pending = decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise self._fail(_INVALID_DATA, "invalid UTF-8 in text message")

    def _finish_message(self) -> Message:
        """Join the message in progress after its final fragment and reset the message state."""
        opcode = self._message_opcode
        decoder = self._message_decoder
        self._message_opcode = 0
        self._message_size = 0
        self._message_decoder = None
        if decoder is None:
            data = b"".join(self._message_parts)
            self._message_parts = []
            if self._message_compressed:
                self._message_compressed = False
                return self._inflated_message(opcode, data)
            return _message(opcode, data)
        text = self._message_parts
        self._message_parts = []
        try:
            text.append(decoder.decode(b"", True))
        except UnicodeDecodeError:
            raise self._fail(_INVALID_DATA, "incomplete UTF-8 at the end of a text message") from None
        return _message(opcode, "".join(text))

    def _read_payload(self) -> Event | None | _Need:
        """Consume what is buffered of the current frame's payload; finish the frame if complete."""
        buf = self._buf
        pos = self._pos
        count = min(len(buf) - pos, self._frame_remaining)
        if count:
            mask = self._frame_mask
            if mask is not None:
                shift = self._frame_done & 3
                chunk = self._unmask(buf, pos, pos + count, mask[shift:] + mask[:shift])
            else:
                chunk = bytes(buf[pos : pos + count])
            self._pos = pos + count
            self._frame_remaining -= count
            self._frame_done += count
            if self._frame_opcode >= 8:
                self._frame_control += chunk
            else:
                self._add_data(chunk)
        if self._frame_remaining:
            return _Need.DATA
        self._frame_active = False
        self._frames += 1
        opcode = self._frame_opcode
        if opcode >= 8:
            payload = bytes(self._frame_control)
            self._frame_control = b""
            return self._control_event(opcode, payload)
        return self._finish_message() if self._frame_fin else None

    def _control_event(self, opcode: int, payload: bytes) -> Event:
        """The event of a complete control frame; a Close also ends the parsing."""
        if opcode == OP_PING:
            return Ping(payload)
        if opcode == OP_PONG:
            return Pong(payload)
        try:
            close = Close.parse(payload)
        except WebSocketProtocolError as exc:
            raise self._fail(exc.code, exc.reason) from None
        self._closed = True
        self._buf = bytearray()
        self._pos = 0
        self._message_opcode = 0
        self._message_parts = []
        self._message_decoder = None
        return close
