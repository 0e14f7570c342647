"""The serializer seam: how Socket.IO packets become Engine.IO messages and back.

A server speaks one parser, chosen once (``SocketIO(serializer=...)``), and every
place that encodes or decodes a Socket.IO packet asks the :class:`Serializer`
it was given instead of naming a format:

* :meth:`Serializer.prepare` encodes an outgoing packet once, for any number of
  recipients (:class:`~tornado_sio.protocol.outgoing.Prepared`);
* :meth:`Serializer.decoder` makes the per-connection decoder of incoming
  messages (a :class:`PacketDecoder`);
* :meth:`Serializer.encode` encodes a packet as a client sends it (the test client);
* :meth:`Serializer.decode_prepared` reads an outgoing packet back (for listeners
  of outgoing packets, such as ``on_any_outgoing``).

Two parsers exist, as in Node (``socket.io-parser`` and
``socket.io-msgpack-parser``) and python-socketio (``serializer='default'`` and
``'msgpack'``):

``json`` (:data:`JSON`)
    A text message per packet, binary values as attachments after it
    (:mod:`.socketio`). The default; every client speaks it.
``msgpack`` (:mod:`.msgpack`)
    One binary message per packet, a msgpack map ``{type, nsp, data, id}``
    with binary values in place. Needs the ``msgpack`` package.

Why an object and not a flag: the emit path looks ``prepare`` up once, when the
server (or adapter) is built, and then calls it as a plain function; the JSON
path's ``prepare`` *is* :func:`.outgoing.prepare`, so choosing a serializer adds
nothing to it per packet.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Protocol, Union

from ..options import SERIALIZERS
from .outgoing import Item, Prepared, prepare
from .socketio import Decoder, SIOPacket, encode

__all__ = ["PacketDecoder", "Serializer", "JSONSerializer", "MsgpackSerializer", "JSON", "get_serializer"]

# What the server encoded itself is trusted: decoding it again needs no limits.
_UNBOUNDED = 1 << 40


class PacketDecoder(Protocol):
    """A connection's decoder of incoming Socket.IO packets (see :class:`.socketio.Decoder`)."""

    @property
    def pending(self) -> bool:
        """Whether a packet is waiting for more messages (binary attachments)."""

    def feed(self, data: Union[str, bytes]) -> Optional[SIOPacket]:
        """Take one Engine.IO message; a complete packet, or None while one is incomplete.

        Raises :class:`~tornado_sio.exceptions.ProtocolError` for anything malformed.
        """

    def reset(self) -> None:
        """Drop any half-received packet."""


class Serializer:
    """One Socket.IO parser: what encodes outgoing packets and decodes incoming ones.

    Subclasses set :attr:`name` and :attr:`text` and implement the three methods.
    """

    #: The ``serializer`` option's value for this parser.
    name = ""
    #: Whether a packet starts with a text message. A binary-only parser (msgpack)
    #: cannot ride a text-only transport such as SockJS.
    text = True
    #: Encode *packet* once for any number of recipients; raises ``EncodeError``.
    #: A plain callable attribute (not a method) so callers can keep it as a function.
    prepare: Callable[[SIOPacket], Prepared]

    def decoder(self, max_attachments: int, max_bytes: int, max_depth: int) -> PacketDecoder:
        """A fresh decoder for one connection.

        *max_attachments* bounds the binary attachments of one packet (JSON
        parser), *max_bytes* the bytes of one packet's binary parts (JSON) or of
        the whole packet (msgpack), *max_depth* the nesting of its data.
        """
        raise NotImplementedError

    def encode(self, packet: SIOPacket) -> List[Item]:
        """*packet* as the Engine.IO messages a client sends, in order (for the test client)."""
        raise NotImplementedError

    def decode_prepared(self, prepared: Prepared) -> Optional[SIOPacket]:
        """The packet *prepared* carries, decoded again as a client would (None if it is not
        a whole packet). For listeners of outgoing packets, which cost only while they exist."""
        decoder = self.decoder(_UNBOUNDED, _UNBOUNDED, _UNBOUNDED)
        packet = None
        for message in prepared.messages:
            packet = decoder.feed(message)
        return packet

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class JSONSerializer(Serializer):
    """The default parser (``socket.io-parser``): text packets, binary attachments after them."""

    name = "json"
    text = True
    prepare = staticmethod(prepare)

    def decoder(self, max_attachments: int, max_bytes: int, max_depth: int) -> PacketDecoder:
        return Decoder(max_attachments=max_attachments, max_attachment_bytes=max_bytes, max_depth=max_depth)

    def encode(self, packet: SIOPacket) -> List[Item]:
        text, attachments = encode(packet)
        return [text, *attachments]


#: The JSON parser: every server's unless it asks for another.
JSON = JSONSerializer()


class MsgpackSerializer(Serializer):
    """The msgpack parser (``socket.io-msgpack-parser``): one binary message per packet (:mod:`.msgpack`).

    Building one imports the optional ``msgpack`` package (``ImportError`` without it).
    """

    name = "msgpack"
    text = False

    def __init__(self) -> None:
        from . import msgpack as codec  # the optional msgpack package, imported on demand

        self.codec = codec
        self.prepare = codec.prepare

    def decoder(self, max_attachments: int, max_bytes: int, max_depth: int) -> PacketDecoder:
        return self.codec.MsgpackDecoder(max_bytes=max_bytes, max_depth=max_depth)

    def encode(self, packet: SIOPacket) -> List[Item]:
        return [self.codec.encode_packet(packet)]


_msgpack: Optional[MsgpackSerializer] = None


def get_serializer(name: str) -> Serializer:
    """The serializer called *name* (one of :data:`~tornado_sio.options.SERIALIZERS`).

    Raises ``ValueError`` for an unknown name, and ``ImportError`` naming the
    extra to install when ``msgpack`` is asked for and the package is missing.
    """
    global _msgpack
    if name in ("json", "default"):
        return JSON
    if name == "msgpack":
        if _msgpack is None:
            try:
                _msgpack = MsgpackSerializer()
            except ImportError as exc:
                raise ImportError("serializer='msgpack' needs the msgpack package: "
                                  "pip install 'tornado-sio[msgpack]'") from exc
        return _msgpack
    raise ValueError(f"unknown serializer {name!r}; known: {', '.join(SERIALIZERS)}")
