#!/usr/bin/env python3
"""Run the tornado-sio demo: ``python run.py --port 5000``, then open the page.

Listens on 127.0.0.1:5000 by default. SIGTERM or Ctrl-C stops accepting
connections, tells the clients, and exits within a few seconds.
"""

from __future__ import annotations

import argparse
import logging
from typing import List, Optional

from handlers import make_app

log = logging.getLogger("run")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="tornado-sio demo app")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    parser.add_argument("--debug", action="store_true", help="debug logging, template reload, autoreload")
    # --message-queue: added by the message-queue issue (e.g. redis://localhost:6379/0),
    # passed to SocketIO(message_queue=...) through socketio_kwargs below.
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    socketio_kwargs: dict = {}
    # (message-queue issue: socketio_kwargs["message_queue"] = args.message_queue)
    app, socketio = make_app(socketio_kwargs, debug=args.debug)
    # SocketIO.run listens, logs "listening on http://HOST:PORT", and on SIGTERM/SIGINT
    # stops accepting, disconnects the clients and returns.
    socketio.run(app, host=args.host, port=args.port)
    log.info("stopped")


if __name__ == "__main__":
    main()
