"""sockjs-tornado, imported once, quietly.

sockjs-tornado 1.0.7 decorates its handlers with a deprecated ``@asynchronous``
shim at import time; the DeprecationWarning is about its code, not ours.
Everything this package takes from it is imported here.
"""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from sockjs.tornado import SockJSConnection, SockJSRouter  # type: ignore[import-untyped, unused-ignore]
    from sockjs.tornado import session as sockjs_session
    from sockjs.tornado import static as sockjs_static
    from sockjs.tornado import transports as sockjs_transports
    from sockjs.tornado.transports import htmlfile as sockjs_htmlfile  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "SockJSConnection",
    "SockJSRouter",
    "sockjs_htmlfile",
    "sockjs_session",
    "sockjs_static",
    "sockjs_transports",
]
