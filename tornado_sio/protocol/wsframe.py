"""Server-to-client WebSocket frames (RFC 6455, section 5.2), built as plain bytes.

Why: a broadcast to many WebSocket clients sends the same message to each of
them. Building the frame once and writing the same bytes to every stream saves
the per-client framing work Tornado's ``write_message`` would redo. Frames sent
by a server are never masked (RFC 6455 5.1) and here never fragmented, and no
extension (permessage-deflate) is applied: use this only on connections that
did not negotiate compression.
"""

from __future__ import annotations

import struct
from typing import Union

__all__ = ["OP_CONTINUATION", "OP_TEXT", "OP_BINARY", "OP_CLOSE", "OP_PING", "OP_PONG", "build_frame"]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_FIN = 0x80
_HEADER_7 = struct.Struct("!BB")
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")


def build_frame(payload: Union[bytes, bytearray, memoryview], opcode: int = OP_TEXT) -> bytes:
    """Return one complete, final, unmasked frame carrying *payload*.

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
    first = _FIN | opcode
    if length <= 125:
        header = _HEADER_7.pack(first, length)
    elif opcode >= 0x8:
        raise ValueError(f"control frame payload of {length} bytes exceeds 125")
    elif length <= 0xFFFF:
        header = _HEADER_16.pack(first, 126, length)
    else:
        header = _HEADER_64.pack(first, 127, length)
    return header + payload
