"""JSON text indented as ``json.dumps(obj, indent=2, ensure_ascii=False)`` writes it, several times faster.

The standard library's encoder drops to pure Python (nested generators) whenever it indents; a run's
summary at Excel's row limit is tens of megabytes of indented JSON. :func:`dumps` builds the same text with
one recursive function over the plain values a summary holds (dicts with text keys, lists, text, numbers,
booleans, None), and hands anything else to the standard library.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any


class _Other(Exception):
    """A value this encoder does not write the way the standard library would."""


def _float(x: float) -> str:
    if x != x or x in (float("inf"), float("-inf")):
        raise _Other
    return float.__repr__(x)


def _text(obj: Any, pad: str) -> str:
    kind = type(obj)
    if kind is str:
        return encode_basestring(obj)
    if kind is dict:
        if not obj:
            return "{}"
        inner = pad + "  "
        return ("{\n" + inner + (",\n" + inner).join([
            encode_basestring(k) + ": " + (encode_basestring(v) if type(v) is str else _text(v, inner))
            for k, v in obj.items()]) + "\n" + pad + "}")
    if kind is list or kind is tuple:
        if not obj:
            return "[]"
        inner = pad + "  "
        return ("[\n" + inner + (",\n" + inner).join([
            encode_basestring(v) if type(v) is str else _text(v, inner) for v in obj]) + "\n" + pad + "]")
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if kind is int:
        return int.__repr__(obj)
    if kind is float:
        return _float(obj)
    raise _Other


def dumps(obj: Any) -> str:
    """``json.dumps(obj, indent=2, ensure_ascii=False)``, the same text."""
    try:
        return _text(obj, "")
    except (_Other, TypeError, RecursionError):  # a key that is not text, a value of another kind, a cycle
        return json.dumps(obj, indent=2, ensure_ascii=False)


__all__ = ["dumps"]
