"""The in-memory adapter's Node server API members, on one process, with stand-in
sockets: broadcast acks counted, ``server_side_emit`` refused, and connection
state recovery's packets and sessions (Node's ``SessionAwareAdapter``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.apps import async_test
from tornado_sio.adapter.base import AckTarget, BroadcastOptions, SocketDetails
from tornado_sio.adapter.memory import MemoryAdapter, SessionStore
from tornado_sio.options import Options
from tornado_sio.protocol.outgoing import Prepared
from tornado_sio.protocol.socketio import Decoder, SIOPacket, SIOType


class Sock:
    """A stand-in socket recording the events it is sent; ack requests answer *answer* at once."""

    def __init__(self, adapter: MemoryAdapter, sid: str, namespace: str = "/", answer: Any = None) -> None:
        self.adapter, self.sid, self.namespace, self.answer = adapter, sid, namespace, answer
        self.events: list[list[Any]] = []
        self.acks: dict[int, AckTarget] = {}
        adapter.add_socket(self)

    @property
    def connected(self) -> bool:
        return True

    @property
    def writable(self) -> bool:
        return self.sid != "busy"

    def send(self, prepared: Prepared) -> None:
        decoder = Decoder()
        packet = None
        for item in [prepared.sio_text, *prepared.attachments]:
            packet = decoder.feed(item)
        assert packet is not None and packet.type == SIOType.EVENT
        self.events.append(packet.data)

    def send_with_ack(self, packet: SIOPacket, target: AckTarget, timeout: float | None) -> int:
        ack_id = len(self.acks)
        self.acks[ack_id] = target
        self.events.append(packet.data)
        if self.answer is not None and callable(target):
            target([self.answer])
        return ack_id

    def forget_ack(self, ack_id: int) -> None:
        self.acks.pop(ack_id, None)

    def disconnect(self, close: bool = False) -> None:
        self.adapter.delete_all(self.sid)

    def details(self) -> SocketDetails:
        return SocketDetails(self.sid, self.namespace, self.adapter.socket_rooms(self.sid), {}, {})


def event(name: str, *args: Any, namespace: str = "/") -> SIOPacket:
    return SIOPacket(SIOType.EVENT, namespace, [name, *args])


def sel(namespace: str = "/", rooms: Any = (), skip: Any = (), volatile: bool = False) -> BroadcastOptions:
    return BroadcastOptions(namespace, frozenset(rooms), frozenset(skip), volatile=volatile)


def recovering(**settings: Any) -> MemoryAdapter:
    return MemoryAdapter(Options(connection_state_recovery=settings or True))


def session(pid: str, sid: str, rooms: list[str], namespace: str = "/") -> dict[str, Any]:
    return {"pid": pid, "sid": sid, "namespace": namespace, "rooms": rooms, "data": {"user": sid}}


# ---------------------------------------------------------------- broadcast acks


def test_broadcast_with_ack_counts_the_local_recipients_once() -> None:
    adapter = MemoryAdapter(Options())
    Sock(adapter, "a", answer="A")
    Sock(adapter, "b", answer="B")
    Sock(adapter, "silent")
    adapter.add_all("a", ["room"])
    adapter.add_all("silent", ["room"])
    answers: list = []
    counts: list = []
    adapter.broadcast_with_ack(event("q"), sel(rooms=["room"]), lambda sid, args: answers.append((sid, args)),
                               5, counts.append)
    assert counts == [2] and answers == [("a", ["A"])]


def test_broadcast_with_ack_to_nobody_counts_zero() -> None:
    adapter = MemoryAdapter(Options())
    counts: list = []
    adapter.broadcast_with_ack(event("q"), sel(rooms=["empty"]), lambda sid, args: None, 5, counts.append)
    assert counts == [0]


@async_test(5)
async def test_one_process_is_the_whole_cluster() -> None:
    adapter = MemoryAdapter(Options())
    assert await adapter.server_count() == 1
    with pytest.raises(RuntimeError, match="only server"):
        adapter.server_side_emit("/", ["hello"], lambda args: None)


# ---------------------------------------------------------------- connection state recovery


def test_without_recovery_broadcasts_carry_no_offset_and_sessions_are_refused() -> None:
    adapter = MemoryAdapter(Options())
    a = Sock(adapter, "a")
    adapter.broadcast(event("hi", 1), sel())
    assert a.events == [["hi", 1]]
    with pytest.raises(RuntimeError, match="connection_state_recovery"):
        adapter.persist_session(session("p", "a", ["a"]))


def test_a_broadcast_event_carries_an_increasing_offset_last() -> None:
    adapter = recovering()
    a = Sock(adapter, "a")
    adapter.broadcast(event("one", 1), sel())
    adapter.broadcast(event("two", b"\x00"), sel())
    (first, second) = a.events
    assert first[:2] == ["one", 1] and second[:2] == ["two", b"\x00"]
    assert isinstance(first[-1], str) and first[-1] < second[-1]


def test_volatile_broadcasts_and_acks_are_not_kept() -> None:
    adapter = recovering()
    a = Sock(adapter, "a")
    adapter.broadcast(event("volatile"), sel(volatile=True))
    adapter.broadcast_with_ack(event("with ack"), sel(), lambda sid, args: None, 5)
    assert a.events == [["volatile"], ["with ack"]]
    assert adapter.recovery is not None and not adapter.recovery.packets


@async_test(5)
async def test_restore_returns_the_session_and_the_packets_its_rooms_missed_in_order() -> None:
    adapter = recovering()
    a = Sock(adapter, "a")
    adapter.add_all("a", ["red"])
    adapter.broadcast(event("seen"), sel())
    offset = a.events[-1][-1]
    adapter.persist_session(session("pid-a", "a", ["a", "red"]))
    adapter.delete_all("a")
    adapter.broadcast(event("all", 1), sel())
    adapter.broadcast(event("red", 2), sel(rooms=["red"]))
    adapter.broadcast(event("blue", 3), sel(rooms=["blue"]))
    adapter.broadcast(event("not red", 4), sel(skip=["red"]))
    adapter.broadcast(event("to a", 5), sel(rooms=["a"]))
    adapter.broadcast(event("other namespace", 6), sel("/chat"))
    restored = await adapter.restore_session("pid-a", offset)
    assert restored is not None
    assert (restored["sid"], restored["rooms"], restored["data"]) == ("a", ["a", "red"], {"user": "a"})
    assert [p[:-1] for p in restored["missed_packets"]] == [["all", 1], ["red", 2], ["to a", 5]]
    assert all(isinstance(p[-1], str) for p in restored["missed_packets"])


@async_test(5)
async def test_a_session_restores_once() -> None:
    adapter = recovering()
    a = Sock(adapter, "a")
    adapter.broadcast(event("seen"), sel())
    adapter.persist_session(session("pid-a", "a", ["a"]))
    assert await adapter.restore_session("pid-a", a.events[-1][-1]) is not None
    assert await adapter.restore_session("pid-a", a.events[-1][-1]) is None


@async_test(5)
async def test_forged_pids_and_offsets_restore_nothing() -> None:
    adapter = recovering()
    a = Sock(adapter, "a")
    adapter.broadcast(event("seen"), sel())
    offset = a.events[-1][-1]
    adapter.persist_session(session("pid-a", "a", ["a"]))
    assert await adapter.restore_session("forged", offset) is None
    assert await adapter.restore_session("pid-a", "not-an-offset") is None
    assert await adapter.restore_session("pid-a", offset.split("-")[0] + "-000000000000") is None
    assert await adapter.restore_session(None, offset) is None  # type: ignore[arg-type]
    assert await adapter.restore_session("pid-a", offset) is not None  # still there after the forgeries


@async_test(5)
async def test_an_offset_evicted_from_the_buffer_restores_nothing_and_a_replay_is_bounded() -> None:
    adapter = recovering(max_packets=10)
    a = Sock(adapter, "a")
    adapter.broadcast(event("first"), sel())
    first = a.events[-1][-1]
    adapter.broadcast(event("second"), sel())
    second = a.events[-1][-1]
    adapter.persist_session(session("pid-a", "a", ["a"]))
    adapter.persist_session(session("pid-b", "b", ["b"]))
    for i in range(9):
        adapter.broadcast(event("flood", i), sel())
    assert adapter.recovery is not None and len(adapter.recovery.packets) == 10
    assert await adapter.restore_session("pid-a", first) is None  # evicted: as Node, no partial replay
    restored = await adapter.restore_session("pid-b", second)
    assert restored is not None and len(restored["missed_packets"]) == 9


@async_test(5)
async def test_sessions_and_packets_expire_after_the_disconnection_duration() -> None:
    now = [1000.0]
    store = SessionStore({"max_disconnection_duration": 60}, clock=lambda: now[0])
    kept = store.record(event("old"), sel())
    store.persist(session("pid-a", "a", ["a"]))
    now[0] += 30
    store.persist(session("pid-b", "b", ["b"]))
    now[0] += 31
    assert store.restore("pid-a", kept.data[-1]) is None  # the session expired
    assert store.restore("pid-b", kept.data[-1]) is None  # the offset's packet expired
    assert not store.packets and list(store.sessions) == ["pid-b"]


def test_recovery_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        SessionStore({"max_packets": 0})


def test_a_volatile_broadcast_skips_a_busy_transport() -> None:
    adapter = MemoryAdapter(Options())
    ready, busy = Sock(adapter, "ready"), Sock(adapter, "busy")
    adapter.broadcast(event("v"), sel(volatile=True))
    assert ready.events == [["v"]] and busy.events == []
