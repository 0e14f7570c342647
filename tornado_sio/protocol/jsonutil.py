"""Compact, strict JSON for everything tornado-sio puts on or takes off the wire.

Why a module of its own: Socket.IO payloads are JSON, and both directions need
rules the standard library does not apply by default.

* :func:`dumps` never writes ``NaN``/``Infinity`` (not JSON: a browser's
  ``JSON.parse`` rejects the whole packet), writes compact separators, keeps
  non-ASCII text as is, and turns every failure into
  :class:`~tornado_sio.exceptions.EncodeError`.
* :func:`loads` rejects the non-standard constants and numbers that overflow to
  infinity, bounds the nesting depth, and turns every failure (including invalid
  UTF-8 and inputs deep enough to exhaust the C stack) into
  :class:`~tornado_sio.exceptions.ProtocolError`.

orjson, when importable, speeds up :func:`dumps` only, and never changes what
it produces or refuses:

* orjson writes ``NaN`` and ``±Infinity`` as ``null``. Any such float therefore
  leaves the bytes ``null`` in orjson's output, so when that substring appears
  (a real ``None``, or the text "null" inside a string, or a bad float) the value
  is encoded again with the strict standard-library encoder, which raises for
  the bad float. Payloads without ``null`` take the fast path.
* Whatever orjson refuses (non-``str`` keys, integers past 64 bits, lone
  surrogates, tuple subclasses, circular data ...) is handed to the standard
  library, which either encodes it or raises ``EncodeError``.
* orjson serializes ``enum.Enum`` (as its value) and ``uuid.UUID`` (as its
  string) natively; the standard-library path does the same through its
  ``default`` hook. ``datetime``/``date``/``time`` and dataclasses are passed
  through by orjson to the same refusal as the standard library, so the set of
  accepted values does not depend on whether orjson is installed.

:func:`loads` always uses the standard library: orjson turns integers past 64
bits into floats and refuses escaped lone surrogates (``"\\ud800"``), both of
which ``JSON.parse`` accepts, and an incoming packet must decode the same way
on every installation.
"""

from __future__ import annotations

import enum
import json
import math
import uuid
from typing import Any, Callable, Optional

from ..exceptions import EncodeError, ProtocolError

__all__ = ["dumps", "loads", "as_text", "DEFAULT_MAX_DEPTH"]

#: Default bound on nested arrays/objects accepted by :func:`loads`.
DEFAULT_MAX_DEPTH = 32

_orjson_dumps: Optional[Callable[..., bytes]]
try:  # pragma: no cover - exercised whichever way the environment is set up
    import orjson as _orjson

    _orjson_dumps = _orjson.dumps
    _ORJSON_OPTIONS = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS
except ImportError:  # pragma: no cover
    _orjson_dumps = None
    _ORJSON_OPTIONS = 0


def _default(obj: Any) -> Any:
    """Encode the extra types orjson encodes natively, so both paths agree."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, uuid.UUID):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_STRICT = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_default
)
# Same, escaping non-ASCII: only used when the text holds lone surrogates,
# which cannot be written as UTF-8 but are valid JSON as \\u escapes of four hex digits
# (exactly what JavaScript's JSON.stringify writes for them).
_STRICT_ASCII = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_default
)


def _dumps_stdlib(obj: Any) -> str:
    try:
        text = _STRICT.encode(obj)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                text = _STRICT_ASCII.encode(obj)
        return text
    except RecursionError:
        raise EncodeError("cannot encode as JSON: data is nested too deeply") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode as JSON: {exc}") from exc


def dumps(obj: Any) -> str:
    """Return *obj* as compact, strict JSON text.

    Raises :class:`~tornado_sio.exceptions.EncodeError` for anything JSON
    cannot represent exactly: ``NaN``/``Infinity``, sets, bytes, arbitrary
    objects, circular or absurdly deep structures, non-scalar dict keys.
    """
    if _orjson_dumps is not None:
        try:
            raw = _orjson_dumps(obj, option=_ORJSON_OPTIONS)
        except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
            pass
        else:
            if b"null" not in raw:
                return raw.decode("utf-8")
    return _dumps_stdlib(obj)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _strict_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_strict_float)


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether *value* nests lists/dicts deeper than *max_depth* (iteratively)."""
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            return True
        children = node.values() if type(node) is dict else node
        for child in children:
            if type(child) is list or type(child) is dict:
                push((child, depth + 1))
    return False


def as_text(data: str | bytes, what: str) -> str:
    """Return *data* as ``str``: as is, or bytes-like decoded as strict UTF-8.

    Raises :class:`~tornado_sio.exceptions.ProtocolError` naming *what* for
    invalid UTF-8 or a value that is neither text nor bytes-like.
    """
    if isinstance(data, str):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"invalid UTF-8 in {what} at byte {exc.start}") from None
    raise ProtocolError(f"{what} must be str or bytes, not {type(data).__name__}")


def loads(text: str | bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse strict JSON *text* (``str``, or ``bytes`` as UTF-8).

    Raises :class:`~tornado_sio.exceptions.ProtocolError` for invalid JSON,
    ``NaN``/``Infinity``/``-Infinity``, numbers that overflow a double, invalid
    UTF-8, a byte-order mark, or arrays/objects nested deeper than *max_depth*
    (a scalar has depth 0, ``[]`` depth 1). Never raises anything else.
    """
    text = as_text(text, "JSON text")
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise ProtocolError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, our hooks, int digit limit
        raise ProtocolError(f"invalid JSON: {exc}") from None
    # Cheap pre-check in C: fewer brackets than the limit cannot nest past it.
    if (
        (type(value) is list or type(value) is dict)
        and text.count("[") + text.count("{") > max_depth
        and _depth_exceeds(value, max_depth)
    ):
        raise ProtocolError(f"JSON nested deeper than {max_depth} levels")
    return value
