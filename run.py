#!/usr/bin/env python3
"""Run the tornado-sio demo: ``python run.py --port 5000``, then open the page.

Listens on 127.0.0.1:5000 by default. SIGTERM or Ctrl-C stops accepting
connections, tells the clients, and exits within a few seconds. With
``--message-queue redis://...`` several processes share emits and rooms; an
unreachable Redis makes it exit with status 1, as does a ``--sockjs-client-url``
the server refuses (see ``docs/sockjs.md``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from handlers import make_app
from tornado_sio import MessageQueueError

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
    parser.add_argument("--xheaders", action="store_true",
                        help="trust X-Real-Ip/X-Forwarded-For/X-Scheme from a reverse proxy (nginx)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    socketio_kwargs: dict = {}
    if args.message_queue:
        socketio_kwargs.update(message_queue=args.message_queue, channel=args.channel)
    try:
        # ValueError: a setting the server refuses (--sockjs-client-url on another origin without its hash).
        app, socketio = make_app(socketio_kwargs, debug=args.debug, sockjs_client_url=args.sockjs_client_url,
                                 sockjs_client_integrity=args.sockjs_client_integrity)
    except (MessageQueueError, ImportError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        sys.exit(1)
    try:
        # SocketIO.run listens, logs "listening on http://HOST:PORT", and on SIGTERM/SIGINT
        # stops accepting, closes the connections (flushing what is queued) and returns.
        socketio.run(app, host=args.host, port=args.port, xheaders=args.xheaders)
    except (MessageQueueError, ImportError) as exc:
        log.error("cannot start: %s", exc)
        sys.exit(1)
    log.info("stopped")


if __name__ == "__main__":
    main()
