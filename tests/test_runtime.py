"""tornado_sio.runtime: the event loop choice (uvloop when installed) and the managed garbage collector."""

from __future__ import annotations

import asyncio
import gc
import importlib.util

import pytest

from tornado_sio import runtime

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def which_loop() -> str:
    return runtime.loop_name()


def test_asyncio_is_used_when_asked(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(runtime.LOOP_ENV, raising=False)
    assert runtime.loop_factory("asyncio") is None
    assert runtime.run(which_loop(), "asyncio") == "asyncio"


def test_the_environment_variable_chooses_the_loop(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(runtime.LOOP_ENV, "asyncio")
    assert runtime.loop_factory() is None


def test_an_unknown_loop_name_is_refused():
    with pytest.raises(ValueError):
        runtime.loop_factory("trio")


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed (the `fast` extra)")
def test_uvloop_is_used_by_default_when_installed(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(runtime.LOOP_ENV, raising=False)
    assert runtime.run(which_loop()) == "uvloop"


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed (the `fast` extra)")
def test_a_tornado_sio_server_answers_on_uvloop():
    import tornado.web
    from tornado.httpclient import AsyncHTTPClient

    from tornado_sio import SocketIO

    async def main() -> tuple[str, int, bytes]:
        sio = SocketIO()
        server = tornado.web.Application(sio.routes()).listen(0, "127.0.0.1")
        port = next(iter(server._sockets.values())).getsockname()[1]
        try:
            response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling")
        finally:
            server.stop()
            sio.engine.stop()
        return runtime.loop_name(), response.code, response.body[:1]

    assert runtime.run(main(), "uvloop") == ("uvloop", 200, b"0")


@pytest.mark.skipif(HAVE_UVLOOP, reason="uvloop is installed")
def test_asking_for_uvloop_without_it_raises():
    with pytest.raises(ImportError):
        runtime.loop_factory("uvloop")


def test_gc_pauses_are_counted_per_generation():
    pauses = runtime.GCPauses().start()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        pauses.stop()
    summary = pauses.summary()
    assert summary["gen0"]["count"] >= 1 and summary["gen2"]["count"] >= 1
    assert summary["max_ms"] >= 0 and summary["over_50ms"] >= 0
    assert pauses not in gc.callbacks


def test_managed_gc_freezes_survivors_and_restores_the_thresholds_when_stopped():
    thresholds = gc.get_threshold()

    async def main() -> tuple[int, int, tuple[int, int, int]]:
        managed = runtime.ManagedGC(young_threshold=5000, every=0.05).start()
        frozen_at_start = gc.get_freeze_count()
        held = [[object()] for _ in range(1000)]  # new container objects that survive
        await asyncio.sleep(0.3)
        frozen_later = gc.get_freeze_count()
        during = gc.get_threshold()
        managed.stop()
        del held
        return frozen_at_start, frozen_later, during

    try:
        at_start, later, during = runtime.run(main(), "asyncio")
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert at_start > 0
    assert later >= at_start + 900  # (frozen objects that die meanwhile leave the count)
    assert during[0] == 5000 and during[2] == runtime.ManagedGC.OFF
    assert gc.get_threshold() == thresholds


def test_a_thaw_collects_cycles_that_died_while_frozen():
    class Node:
        def __init__(self) -> None:
            self.me = self

    thresholds = gc.get_threshold()

    async def main() -> int:
        managed = runtime.ManagedGC(every=3600).start()
        cycle = Node()
        managed.freeze()
        del cycle  # a cycle: reference counting cannot free it, and it is frozen
        reclaimed = managed.thaw()
        managed.stop()
        return reclaimed

    try:
        assert runtime.run(main(), "asyncio") >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
