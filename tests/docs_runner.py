"""Run one code block of the docs as a real server, on a port the test chose.

``python tests/docs_runner.py BLOCK_FILE PORT`` executes the block (a Python
file whose line numbers are those of the Markdown file it came from, so a
traceback points into the README or the guide) with two patches, and nothing
else changed:

- ``SocketIO.run(app, host=..., port=...)`` listens on 127.0.0.1:PORT instead
  of the host and port the example names;
- ``tornado.web.Application.listen(port, ...)`` too, for examples that listen
  themselves.

Once the server listens, the runner prints :data:`READY` on stdout. A block
that defines a server but does not start it (handlers and a ``SocketIO``, as
an API overview does) is started the way the README says: its ``app`` if it has
one, else ``tornado.web.Application(socketio.routes())``, with
``socketio.run(app)``. SIGTERM stops it gracefully (``SocketIO.run``'s own
signal handling). A block without any server simply runs to its end.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Printed on stdout (its own line) once the example's server accepts connections.
READY = "@@docs-runner: listening@@"


def main(block_file: str, listen_port: int) -> None:
    sys.path.insert(0, str(ROOT))
    import tornado.web

    from tornado_sio import SocketIO

    listen = tornado.web.Application.listen
    run = SocketIO.run
    started: list[Any] = []

    def listen_here(self: Any, port: int = 0, address: str = "", **kwargs: Any) -> Any:
        server = listen(self, listen_port, "127.0.0.1", **kwargs)
        started.append(server)
        print(READY, flush=True)
        return server

    def run_here(self: Any, app: Any, host: str = "127.0.0.1", port: int = 5000, **kwargs: Any) -> None:
        run(self, app, "127.0.0.1", listen_port, **kwargs)

    tornado.web.Application.listen = listen_here  # type: ignore[method-assign,assignment]
    SocketIO.run = run_here  # type: ignore[method-assign]

    namespace: dict[str, Any] = runpy.run_path(block_file, run_name="__main__")

    if started:
        return  # the block ran its server (until SIGTERM)
    servers = [value for value in namespace.values() if isinstance(value, SocketIO)]
    if not servers:
        return  # not a server: the block ran to its end
    if len(servers) > 1:
        sys.exit(f"docs runner: the block defines {len(servers)} SocketIO objects; which one to run?")
    app = namespace.get("app")
    if not isinstance(app, tornado.web.Application):
        app = tornado.web.Application(servers[0].routes())
    servers[0].run(app)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
