#!/usr/bin/env python3
"""Run the tornado-sio demo: ``python run.py --port 5000``, then open the page.

Listens on 127.0.0.1:5000 by default. SIGTERM or Ctrl-C stops accepting
connections, tells the clients, and exits within a few seconds. With
``--message-queue redis://...`` several processes share emits and rooms; an
unreachable Redis makes it exit with status 1, as does a ``--sockjs-client-url``
the server refuses (see ``docs/sockjs.md``). ``--metrics-port``, ``--log-json`` and
``--log-connections`` are for operators (``docs/operations.md``); ``--admin-ui USER:PASSWORD``
serves the Socket.IO Admin UI (``docs/admin-ui.md``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from handlers import make_app
from tornado_sio import MessageQueueError
from tornado_sio.logs import JSONFormatter

log = logging.getLogger("run")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="tornado-sio demo app")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    parser.add_argument("--debug", action="store_true", help="debug logging, template reload, autoreload")
    parser.add_argument("--message-queue", metavar="URL", default=None,
                        help="share emits and rooms with other processes through Redis, "
                             "e.g. redis://127.0.0.1:6379/0 (needs pip install tornado-sio[redis])")
    parser.add_argument("--channel", default=None, help="pub/sub channel on the message queue "
                        "(default: tornado-sio)")
    parser.add_argument("--sockjs-client-url", metavar="URL", default=None,
                        help="where browsers load sockjs-client from, on the page (/?transport=sockjs) "
                             "and in the SockJS iframe page: a path on this server (/static/sockjs.min.js) "
                             "or an http(s) URL (default: sockjs-client 1.6.1 on jsDelivr, SRI-pinned)")
    parser.add_argument("--sockjs-client-integrity", metavar="HASH", default=None,
                        help="the SRI hash (sha384-...) of --sockjs-client-url; required for a URL "
                             "on another origin")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default=None,
                        help="event loop: uvloop when installed (pip install tornado-sio[fast]) unless "
                             "'asyncio' (default: $TORNADO_SIO_LOOP, else auto); the start-up log names it")
    parser.add_argument("--managed-gc", action="store_true",
                        help="keep garbage collections short with tens of thousands of clients "
                             "(tornado_sio.runtime.ManagedGC)")
    parser.add_argument("--xheaders", action="store_true",
                        help="trust X-Real-Ip/X-Forwarded-For/X-Scheme from a reverse proxy (nginx)")
    parser.add_argument("--metrics-port", type=int, metavar="PORT", default=None,
                        help="serve Prometheus metrics at /metrics on this port, on --host "
                             "(needs pip install tornado-sio[metrics]; see docs/operations.md)")
    parser.add_argument("--log-json", action="store_true",
                        help="log one JSON object per line (tornado_sio.logs.JSONFormatter)")
    parser.add_argument("--log-connections", action="store_true",
                        help="one INFO line per connection event: connect, upgrade, disconnect and why")
    parser.add_argument("--admin-ui", metavar="USER:PASSWORD", default=None,
                        help="serve the Socket.IO Admin UI's namespace /admin to this user; the password "
                             "may be a bcrypt hash (needs pip install tornado-sio[admin]; docs/admin-ui.md)")
    parser.add_argument("--admin-ui-mode", choices=("development", "production"), default="development",
                        help="production: the Admin UI gets the stats only, no sockets or events")
    parser.add_argument("--admin-ui-path", metavar="DIR", default=None,
                        help="serve the Admin UI build (ui/dist of @socket.io/admin-ui) at /admin-ui/")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO
    if args.log_json:
        handler = logging.StreamHandler()
        handler.setFormatter(JSONFormatter())
        logging.basicConfig(level=level, handlers=[handler])
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    socketio_kwargs: dict = {"log_connections": args.log_connections}
    if args.metrics_port is not None:
        socketio_kwargs.update(metrics_port=args.metrics_port, metrics_host=args.host)
    if args.message_queue:
        socketio_kwargs.update(message_queue=args.message_queue, channel=args.channel)
    try:
        # ValueError: a setting the server refuses (--sockjs-client-url on another origin without its hash).
        app, socketio = make_app(socketio_kwargs, debug=args.debug, sockjs_client_url=args.sockjs_client_url,
                                 sockjs_client_integrity=args.sockjs_client_integrity)
    except (MessageQueueError, ImportError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        sys.exit(1)
    if args.admin_ui:
        username, _, password = args.admin_ui.partition(":")
        try:
            socketio.instrument(auth={"username": username, "password": password}, mode=args.admin_ui_mode,
                                ui_path=args.admin_ui_path, app=app)
        except (ImportError, ValueError) as exc:  # no bcrypt, or no UI build in --admin-ui-path
            log.error("cannot start the Admin UI: %s", exc)
            sys.exit(1)
    try:
        # SocketIO.run listens, logs "listening on http://HOST:PORT", and on SIGTERM/SIGINT
        # stops accepting, closes the connections (flushing what is queued) and returns.
        socketio.run(app, host=args.host, port=args.port, xheaders=args.xheaders, loop=args.loop,
                     managed_gc=args.managed_gc)
    except (MessageQueueError, ImportError, OSError) as exc:  # OSError: a port in use
        log.error("cannot start: %s", exc)
        sys.exit(1)
    log.info("stopped")


if __name__ == "__main__":
    main()
