"""``socketio.run()`` with Flask-SocketIO's arguments, and ``socketio.stop()``.

``run()`` blocks the calling thread (the test's, which is the main thread, as
``run()``'s signal handlers need); a helper thread waits until the port
listens, then calls ``stop()``.
"""

import logging
import threading

import pytest
import tornado.web
from tornado import autoreload

from tests import support
from tornado_sio import SocketIO


def run_then_stop(sio, app, **kwargs):
    """``sio.run(app, port=..., **kwargs)``, stopped by ``sio.stop()`` from another thread once it listens."""
    port = support.free_port()
    errors = []

    def stopper():
        try:
            support.wait_for_port(port)
            sio.stop()
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=stopper)
    thread.start()
    sio.run(app, port=port, **kwargs)
    thread.join(10)
    assert errors == []


@pytest.fixture
def reloader(monkeypatch):
    """What run() asked of Tornado's autoreload (which would otherwise re-exec the test run)."""
    calls = []
    monkeypatch.setattr(autoreload, "start", lambda *a, **k: calls.append("start"))
    monkeypatch.setattr(autoreload, "watch", lambda path: calls.append(("watch", path)))
    return calls


def test_stop_ends_run_gracefully(reloader):
    sio = SocketIO()
    run_then_stop(sio, tornado.web.Application(sio.routes()))
    assert sio.stopping is None
    assert reloader == []


def test_stop_without_run_raises_runtime_error():
    with pytest.raises(RuntimeError, match="run"):
        SocketIO().stop()


def test_run_debug_uses_tornados_debug_settings_and_autoreload(reloader):
    sio = SocketIO()
    app = tornado.web.Application(sio.routes())
    run_then_stop(sio, app, debug=True, extra_files=["templates/index.html"])
    assert app.settings["debug"] and app.settings["serve_traceback"]
    assert reloader == ["start", ("watch", "templates/index.html")]


def test_use_reloader_false_keeps_autoreload_off_in_debug(reloader):
    sio = SocketIO()
    run_then_stop(sio, tornado.web.Application(sio.routes()), debug=True, use_reloader=False)
    assert reloader == []


def test_log_output_turns_on_tornados_access_log(reloader):
    access = logging.getLogger("tornado.access")
    level = access.level
    access.setLevel(logging.WARNING)
    try:
        sio = SocketIO()
        run_then_stop(sio, tornado.web.Application(sio.routes()), log_output=True)
        assert access.level == logging.INFO
    finally:
        access.setLevel(level)


def test_run_accepts_flask_socketios_werkzeug_arguments(reloader):
    sio = SocketIO()
    run_then_stop(sio, tornado.web.Application(sio.routes()), allow_unsafe_werkzeug=True,
                  reloader_options={"reloader_type": "stat"})
    assert sio.stopping is None


def test_run_names_asyncio_loop_in_the_listening_line(reloader, caplog):
    caplog.set_level(logging.INFO, logger="tornado_sio.server")
    sio = SocketIO()
    run_then_stop(sio, tornado.web.Application(sio.routes()), loop="asyncio")
    assert any("(event loop: asyncio)" in r.getMessage() for r in caplog.records)


def test_run_uses_uvloop_when_it_is_installed(reloader, caplog):
    pytest.importorskip("uvloop", reason="uvloop is the optional 'fast' extra")
    caplog.set_level(logging.INFO, logger="tornado_sio.server")
    sio = SocketIO()
    run_then_stop(sio, tornado.web.Application(sio.routes()), loop="auto")
    assert any("(event loop: uvloop)" in r.getMessage() for r in caplog.records)


def test_run_with_managed_gc_restores_the_collector_thresholds_when_stopped(reloader):
    import gc

    before = gc.get_threshold()
    sio = SocketIO()
    try:
        run_then_stop(sio, tornado.web.Application(sio.routes()), loop="asyncio", managed_gc=True)
        assert gc.get_threshold() == before
    finally:
        gc.unfreeze()
