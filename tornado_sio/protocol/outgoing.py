"""Outgoing packets, encoded once for any number of recipients.

A broadcast to N clients costs one encode: :func:`prepare` turns a Socket.IO
packet into a :class:`Prepared`, whose Engine.IO items (for the polling queue)
and WebSocket frames (for a socket write) are built on first use and then
shared by every recipient. Pure: no I/O here.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

from ..exceptions import EncodeError
from .socketio import SIOPacket, encode
from .wsframe import OP_BINARY, OP_TEXT, build_frame, deflate_payload

__all__ = ["Prepared", "Item", "COMPRESS_THRESHOLD", "prepare", "binary_packet", "raw_text", "raw_binary",
           "CLIENT_MAX_ATTACHMENTS"]

#: One Engine.IO packet as it travels: text, or the bytes of a binary message.
Item = Union[str, bytes]

#: With permessage-deflate, messages shorter than this go uncompressed (engine.io's
#: ``perMessageDeflate.threshold``): compressing them costs more than it saves.
COMPRESS_THRESHOLD = 1024

#: socket.io-parser (4.2.6+, the CVE-2026-33151 fix) drops a connection that
#: receives a packet with more binary attachments than this.
CLIENT_MAX_ATTACHMENTS = 10


class Prepared:
    """One outgoing message: Socket.IO packet text and its binary attachments.

    ``eio_items`` are the Engine.IO packets for a polling queue; ``ws_frames``
    are the complete WebSocket frames. Both are built once, on first use.
    """

    __slots__ = ("sio_text", "attachments", "items", "frames", "deflated", "compress")

    def __init__(self, sio_text: str, attachments: Sequence[bytes] = (),
                 items: Optional[List[Item]] = None, frames: Optional[bytes] = None) -> None:
        self.sio_text = sio_text
        self.attachments = attachments
        #: Cached Engine.IO items (None until first asked for).
        self.items = items
        #: Cached WebSocket frames (None until first asked for).
        self.frames = frames
        #: Cached permessage-deflate frames (None until first asked for).
        self.deflated: Optional[bytes] = None
        #: False: never compressed, even where permessage-deflate was negotiated
        #: (``emit(..., compress=False)``, Node's ``compress(false)``).
        self.compress = True

    @property
    def eio_items(self) -> List[Item]:
        """The Engine.IO MESSAGE packet and its attachments, for a polling queue."""
        if self.items is None:
            self.items = ["4" + self.sio_text, *self.attachments]
        return self.items

    @property
    def ws_frames(self) -> bytes:
        """The complete, unmasked WebSocket frames of this message."""
        if self.frames is None:
            frames = build_frame(("4" + self.sio_text).encode("utf-8"), OP_TEXT)
            for attachment in self.attachments:
                frames += build_frame(attachment, OP_BINARY)
            self.frames = frames
        return self.frames

    @property
    def ws_frames_deflated(self) -> bytes:
        """The frames for a connection that negotiated permessage-deflate, built once.

        Each Engine.IO message of at least :data:`COMPRESS_THRESHOLD` bytes is
        compressed (RSV1 set) with no context kept, so the bytes are the same
        for every such connection; shorter ones are sent as they are.
        """
        if self.deflated is None:
            frames = b""
            for item in self.eio_items:
                text = isinstance(item, str)
                data = item.encode("utf-8") if isinstance(item, str) else item
                opcode = OP_TEXT if text else OP_BINARY
                if len(data) >= COMPRESS_THRESHOLD:
                    frames += build_frame(deflate_payload(data), opcode, compressed=True)
                else:
                    frames += build_frame(data, opcode)
            self.deflated = frames
        return self.deflated

    @property
    def messages(self) -> List[Item]:
        """This packet's Engine.IO MESSAGE payloads in order, as a client's decoder takes
        them: the text and its attachments (JSON parser), or the one binary message of
        :func:`binary_packet` (msgpack parser)."""
        if self.sio_text:
            return [self.sio_text, *self.attachments]
        return list(self.attachments)

    @property
    def size(self) -> int:
        """Roughly how many bytes this message puts on the wire."""
        return len(self.sio_text) + sum(len(a) for a in self.attachments)


def prepare(packet: SIOPacket) -> Prepared:
    """Encode a Socket.IO packet once, ready for any number of recipients.

    Raises :class:`~tornado_sio.EncodeError` for data that is not strict JSON,
    and for more binary attachments than the official clients accept.
    """
    text, attachments = encode(packet)
    if len(attachments) > CLIENT_MAX_ATTACHMENTS:
        raise EncodeError(f"{len(attachments)} binary attachments in one packet; the official "
                          f"clients accept at most {CLIENT_MAX_ATTACHMENTS}")
    return Prepared(text, attachments)


def binary_packet(payload: bytes) -> Prepared:
    """A Socket.IO packet that is one binary Engine.IO message (the msgpack parser).

    It has no text part (``sio_text`` is empty) and its one attachment is the
    whole packet; the polling item and the WebSocket frame are built here, once.
    """
    return Prepared("", (payload,), [payload], build_frame(payload, OP_BINARY))


def raw_text(text: str) -> Prepared:
    """A raw Engine.IO text MESSAGE (no Socket.IO framing), for ``EngineIOApp``."""
    return Prepared(text, (), ["4" + text])


def raw_binary(data: bytes) -> Prepared:
    """A raw Engine.IO binary MESSAGE, for ``EngineIOApp``."""
    return Prepared("", (), [data], build_frame(data, OP_BINARY))
