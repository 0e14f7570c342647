"""The owned WebSocket connection reads exactly what the sans-I/O parser reads, however the bytes arrive.

:class:`~tornado_sio.http.owned.OwnedWebSocket` runs on a real socket pair
through asyncio's ``connect_accepted_socket``, as it does in the server. Two
ways of checking it against :class:`~tornado_sio.protocol.wsframe.FrameParser`:

* for any frame sequence (valid and broken, drawn by the strategies of
  ``test_websocket_reader_model.py``) cut into random pieces, the messages,
  the pongs, the close frame and the failure are the parser's, with the
  fairness budget cut small so that reading stops and resumes in the middle
  of a buffer, on asyncio's loop and on uvloop's;
* a Hypothesis state machine sends frames chunk by chunk, in arbitrary splits,
  and after every chunk the connection has handled exactly the events that the
  parser finds in the bytes sent so far.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.test_websocket_reader_model import MAX_MESSAGE, control_frame, frame_sequence, message, model, odd_frame
from tornado_sio.http.owned import OwnedWebSocket
from tornado_sio.protocol.wsframe import FrameParser, Message, Ping, WebSocketProtocolError


class Recorder(OwnedWebSocket):
    """An owned connection that records what it hands on: messages, failures, the end."""

    __slots__ = ("messages", "failures", "closes", "bytes_in")

    def __init__(self) -> None:
        super().__init__(MAX_MESSAGE, 1 << 20)
        self.messages: list[str | bytes] = []
        self.failures: list[tuple[int, str]] = []
        self.closes = 0
        self.bytes_in = 0

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        super().data_received(data)

    def on_message(self, data: str | bytes) -> None:
        self.messages.append(data)

    def on_failed(self, code: int, why: str) -> None:
        self.failures.append((code, why))

    def on_closed(self) -> None:
        self.closes += 1


class SmallBudget(Recorder):
    """The same, yielding to the loop after about two frames."""

    __slots__ = ()
    yield_threshold = 2 * 1024


def split_frames(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete unmasked server frames at the start of *data*, and the rest."""
    frames, pos = [], 0
    while len(data) - pos >= 2:
        length = data[pos + 1] & 0x7F
        assert length < 126 and data[pos + 1] < 0x80, data
        if len(data) - pos < 2 + length:
            break
        frames.append((data[pos] & 0x0F, data[pos + 2 : pos + 2 + length]))
        pos += 2 + length
    return frames, data[pos:]


async def read_to_eof(sock: socket.socket) -> bytes:
    """All the client socket receives until the server ends the connection."""
    loop = asyncio.get_running_loop()
    received = b""
    while True:
        try:
            chunk = await loop.sock_recv(sock, 65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


async def live(data: bytes, cuts: list[int], small: bool) -> tuple[Recorder, list[tuple[int, bytes]]]:
    """Run an owned connection over a socket pair on *data* sent in pieces; the recorder and the wire."""
    loop = asyncio.get_running_loop()
    server_sock, client_sock = socket.socketpair()
    client_sock.setblocking(False)
    server_sock.setblocking(False)
    conn = SmallBudget() if small else Recorder()
    await loop.connect_accepted_socket(lambda: conn, sock=server_sock)
    receiving = asyncio.ensure_future(read_to_eof(client_sock))
    pos = 0
    for size in [*cuts, len(data)]:
        piece = data[pos : pos + size]
        pos += len(piece)
        if piece:
            try:
                await loop.sock_sendall(client_sock, piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server closed after a client Close: the rest is unsent, as it is unread
        await asyncio.sleep(0)
    for _ in range(100_000):  # bounded: a few turns of the loop in practice
        if (conn.bytes_in == len(data) and not conn.resuming) or conn.lost or conn.client_closed or conn.failed:
            break
        await asyncio.sleep(0)
    else:
        raise AssertionError("the connection neither consumed the input nor ended")
    try:
        client_sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    received = await asyncio.wait_for(receiving, 10)
    for _ in range(1000):
        if conn.lost:
            break
        await asyncio.sleep(0.001)
    client_sock.close()
    frames, rest = split_frames(received)
    assert rest == b""
    return conn, frames


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    """A fresh event loop: asyncio's, or uvloop's (skipped when uvloop is not installed)."""
    if name == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


@pytest.mark.parametrize(("small", "loop_name"), [(True, "asyncio"), (False, "asyncio"), (True, "uvloop")],
                         ids=["small-budget", "tornado-budget", "small-budget-uvloop"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=frame_sequence(), cuts=st.lists(st.integers(1, 60), max_size=16))
def test_the_owned_reader_and_the_parser_agree_on_any_frame_sequence(small, loop_name, data, cuts):
    calls, wire, error = model(data)
    event(f"ends with {error.code if error else 'close' if wire and wire[-1][0] == 8 else 'eof'}")
    loop = new_loop(loop_name)
    try:
        conn, sent = loop.run_until_complete(live(data, cuts, small))
    finally:
        loop.close()
    assert conn.messages == [c[1] for c in calls if c[0] == "message"]
    assert sent == wire
    assert conn.failures == ([] if error is None else [(error.code, str(error))])
    assert conn.closes == 1


@st.composite
def some_frames(draw: Any) -> bytes:
    """A message (in fragments, pings between them), a ping or pong, or now and then a close or a broken frame."""
    rough = draw(st.integers(0, 7)) == 0
    pick = draw(st.integers(0, 12))
    if pick < 9:
        return b"".join(draw(message(rough)))
    if pick < 12:
        return draw(control_frame(rough))
    return draw(odd_frame(rough))


class OwnedReaderMachine(RuleBasedStateMachine):
    """Frames queued and sent in chunks of any size; the connection keeps up with the parser at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.server_sock, self.client = socket.socketpair()
        self.client.setblocking(False)
        self.server_sock.setblocking(False)
        self.conn: Recorder = Recorder()
        self.pending = b""  # queued, not sent yet
        self.sent = b""
        self.received = b""

    @initialize(small=st.booleans())
    def connect(self, small: bool) -> None:
        self.conn = SmallBudget() if small else Recorder()
        self.loop.run_until_complete(self.loop.connect_accepted_socket(lambda: self.conn, sock=self.server_sock))

    def ended(self) -> bool:
        return self.conn.lost or self.conn.client_closed or self.conn.failed

    @rule(frames=some_frames())
    def queue(self, frames: bytes) -> None:
        self.pending += frames

    @precondition(lambda self: self.pending and not self.ended())
    @rule(size=st.integers(1, 200))
    def send_chunk(self, size: int) -> None:
        chunk, self.pending = self.pending[:size], self.pending[size:]
        self.client.sendall(chunk)  # small: the socket buffer takes it at once
        self.sent += chunk
        self.settle()

    def settle(self) -> None:
        """Run the loop until the connection has read and handled every byte sent (or ended)."""
        async def wait() -> None:
            for _ in range(10_000):
                if (self.conn.bytes_in == len(self.sent) and not self.conn.resuming) or self.ended():
                    return
                await asyncio.sleep(0)
            raise AssertionError("the connection did not keep up")

        self.loop.run_until_complete(wait())
        while True:
            try:
                chunk = self.client.recv(65536)
            except (BlockingIOError, ConnectionResetError):
                break
            if not chunk:
                break
            self.received += chunk

    @invariant()
    def the_connection_handled_what_the_parser_finds(self) -> None:
        parser = FrameParser(MAX_MESSAGE)
        parser.feed(self.sent)
        messages: list[str | bytes] = []
        pongs: list[tuple[int, bytes]] = []
        failure: WebSocketProtocolError | None = None
        try:
            for found in parser.events():
                if isinstance(found, Message):
                    messages.append(found.data)
                elif isinstance(found, Ping):
                    pongs.append((0xA, found.data))
        except WebSocketProtocolError as exc:
            failure = exc
        assert self.conn.messages == messages
        frames, _ = split_frames(self.received)
        assert [f for f in frames if f[0] == 0xA] == pongs
        assert self.conn.failures == ([] if failure is None else [(failure.code, str(failure))])
        if failure is not None:
            assert frames[-1] == (0x8, struct.pack("!H", failure.code) + failure.reason.encode())
        if parser.closed:
            assert frames[-1][0] == 0x8

    def teardown(self) -> None:
        self.client.close()
        self.loop.run_until_complete(asyncio.sleep(0.01))  # the connection sees the end
        self.loop.close()
        self.server_sock.close()


OwnedReaderMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None,
                                                suppress_health_check=[HealthCheck.too_slow])
test_the_owned_reader_keeps_up_with_the_parser_chunk_by_chunk = OwnedReaderMachine.TestCase
