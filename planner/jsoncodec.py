"""JSON on the hot paths (state files, API answers, spec hashes): orjson where it gives the same result.

orjson parses and writes an order of magnitude faster than the standard library. Where the
two could differ, the standard library decides, so bytes and values never depend on
which one ran:

- `loads` rejects what orjson rejects only if the standard library rejects it too
  (e.g. integers beyond 64 bits fall back to `json.loads`).
- `dumps_sorted` is byte for byte `json.dumps(value, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False).encode()` for strings, integers, booleans, null, lists and objects with
  string keys. Floats are written by the standard library (orjson spells exponents
  differently), as are values orjson cannot write; CustomJob specs hold no floats.
- `dumps_pretty` is orjson's indented form, equal to `json.dumps(value, sort_keys=True,
  indent=2, ensure_ascii=False)` when the value holds no floats; `dumps_indented` is that
  standard-library form byte for byte (orjson's bytes unless a float could make them differ).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS
_PRETTY = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2


def loads(data: bytes | str) -> Any:
    """Parse JSON; a ValueError (json.JSONDecodeError) for anything that is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def loads_or_none(data: bytes) -> Any:
    """orjson's parse, or None where orjson refuses (the caller then uses its strict parser).

    orjson keeps the last of duplicate keys and reads integers beyond 64 bits as floats:
    callers that must reject those compare `dumps_pretty` of the result with the input.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def dumps_sorted(value: Any) -> bytes:
    """Compact JSON with sorted keys, as the standard library writes it (see the module docstring)."""
    try:
        out = orjson.dumps(value, option=_SORTED)
    except TypeError:
        out = None
    # The bytes only hint at a float ("train:1.3" in a string looks like one); the value decides.
    if out is None or (_may_hold_float(out) and _holds_float(value)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return out


def dumps_pretty(value: Any) -> bytes | None:
    """Indented JSON with sorted keys, no trailing newline; None for a value orjson cannot write.

    Equal to the standard library's `indent=2` output when the value holds no floats; the
    state reader compares it with the file's bytes, so a difference only means the slow path.
    """
    try:
        return orjson.dumps(value, option=_PRETTY)
    except TypeError:
        return None


def dumps_indented(value: Any) -> bytes:
    """`json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False).encode()`,
    byte for byte: orjson's bytes for a value without floats (one walk finds out; the bytes of a
    float are the standard library's to decide), ValueError for NaN and infinities."""
    if _holds_float(value):
        return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False).encode()
    out = dumps_pretty(value)
    if out is None:
        return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False).encode()
    return out


def _holds_float(value: Any) -> bool:
    if type(value) is dict:
        return any(_holds_float(item) for item in value.values())
    if type(value) is list or type(value) is tuple:
        return any(_holds_float(item) for item in value)
    return type(value) is float


# A number right after ":", "," or "[" that has a fraction or an exponent. Inside a string
# this can match too ("ratio:0.5"): a false alarm only costs the slower standard library.
_FLOAT = re.compile(rb"[:,\[]\s*-?[0-9]+[.eE]")


# Every float has a digit right before its "." or exponent; most documents have no such pair
# at all (so the closer look above is rarely needed).
_DIGIT_THEN_POINT = re.compile(rb"[0-9][.eE]")


def _may_hold_float(out: bytes) -> bool:
    return _DIGIT_THEN_POINT.search(out) is not None and _FLOAT.search(out) is not None
