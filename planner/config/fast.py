"""The values tier of YAML loading: a file's plain values from rapidyaml, without positions.

It owns one question, "what are this file's values?", answered fast for files it can be
sure of; `load` (the positional builder) stays the authority on syntax, values and every
diagnostic, and `validate` runs the builder whenever this tier declines or anything is wrong.

rapidyaml is a 0.x library (pinned in pyproject.toml) whose reading differs from the
builder's YAML 1.2 core schema at the edges, so this tier declines what it cannot be sure
of (measured, and pinned by a differential property test against the builder):
YAML 1.1 spellings (``True``, ``Null``, ``~``, ``01``), ``0x``/``0o``/``.inf`` (emitted as
strings), tags (``!!str 5`` is emitted as 5), anchors and aliases, merge keys, complex keys (any ``?``),
document markers and directives, duplicate keys (its tree keeps both), tabs, carriage
returns, backslashes, control characters and the reserved ``@`` and the backquote, numbers
of 20 digits (orjson reads them as floats), very deep nesting, and a plain scalar whose type
depends on a quoting style the JSON emitter does not keep.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson
import ryml

from planner.config.load import RESOLVE_FIRST, resolve_plain_scalar

# Characters, or spellings, whose reading this tier does not vouch for (see the module docstring),
# found by substring tests: one regular expression with alternatives reads 4 MB ten times slower.
_DECLINE_CHARS = "?!&*@`\\\t\r"
# Then merge keys, a line starting with a closing bracket or a comma, a plain scalar starting with
# ":", a closing bracket after a space after a line start, a ":", a "-" or another space (where a
# block plain scalar starts: libyaml refuses it there, rapidyaml does not; both refuse a comma),
# and document markers: rapidyaml reads on where libyaml stops. Each expression starts with one
# character the engine looks for first, so it reads 4 MB about as fast as one substring test.
_DECLINE_SPELLINGS = (
    re.compile(r"\n(?:---|\.\.\.|[%\]},:])"),
    re.compile(r":(?<=[ ,\[{]:)"),
    re.compile(r"\](?<=[\n:\- ] \])"),
    re.compile(r"\}(?<=[\n:\- ] \})"),
)
# Of ASCII, only printable characters and newlines (deleted by translate: what remains is refused).
_ALLOWED_ASCII = bytes([10, *range(0x20, 0x7F)])
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")
# A plain scalar spelled like this is emitted by rapidyaml as a JSON literal (never as a string).
_JSON_LITERAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null")
# The builder refuses deeper nesting (load.MAX_DEPTH); well below it, this tier needs no count.
_MAX_DEPTH = 32
# Integers of more digits get a diagnostic from the builder.
_MAX_INT = 10**19


class Values(NamedTuple):
    """A file's top-level mapping, and where its string values hold "${" (path, written plain?)."""

    data: dict[str, Any]
    templated: tuple[tuple[tuple[str | int, ...], bool], ...]


def fast_values(text: str) -> Values | None:
    """The values the positional builder gives for `text` (its data and templated list, with no
    problem), or None wherever the two could differ: then the builder decides."""
    if not text or text[0] in "-.%?]}:, " or any(c in text for c in _DECLINE_CHARS):
        return None
    if "<<" in text or any(spelling.search(text) for spelling in _DECLINE_SPELLINGS):
        return None
    source = text.encode("utf-8")
    if source.translate(None, _ALLOWED_ASCII) if text.isascii() else _CONTROL.search(text):
        return None
    try:
        with _quiet_stderr():  # rapidyaml prints its own parse errors; the builder words them
            tree = ryml.parse_in_arena(source)
        data = orjson.loads(ryml.emit_json_malloc(tree, tree.root_id()))
    except Exception:  # anything at all (a parse error, JSON rapidyaml cannot write, …): decline
        return None
    if not isinstance(data, dict):
        return None
    found = _check(data)
    if found is None or found[0] != tree.size():  # a smaller count: duplicate keys were merged
        return None
    templated = []
    for path in found[1]:
        plain = _plain(tree, path)
        if plain is None:
            return None
        templated.append((path, plain))
    return Values(data, tuple(templated))


def _check(data: dict[str, Any]) -> tuple[int, list[tuple[str | int, ...]]] | None:
    """(number of nodes, paths of strings holding "${" in document order), or None if a value
    is not vouched for."""
    templated: list[tuple[str | int, ...]] = []
    try:
        nodes = 1 + _walk(data, [], templated)
    except _NotSure:
        return None
    return nodes, templated


class _NotSure(Exception):
    pass


def _walk(container: dict[str, Any] | list[Any], keys: list[str | int], templated: list[Any]) -> int:
    """The number of nodes below container, at the path `keys` (restored on return); raises
    _NotSure for a value not vouched for."""
    if len(keys) >= _MAX_DEPTH:
        raise _NotSure
    nodes = len(container)
    for key, value in container.items() if type(container) is dict else enumerate(container):
        kind = type(value)
        if kind is str:
            if not value or (value[0] in RESOLVE_FIRST and not _as_written(value)):
                raise _NotSure  # ("" may be a plain empty value: null to the builder)
            if "${" in value:
                templated.append((*keys, key))
        elif kind is dict or kind is list:
            keys.append(key)
            nodes += _walk(value, keys, templated)
            keys.pop()
        elif (kind is int or kind is float) and abs(value) >= _MAX_INT:
            raise _NotSure  # (orjson reads an integer beyond 64 bits as a float)
    return nodes


def _as_written(value: str) -> bool:
    """Is a string value the builder's too, whichever way it was written? Quoted, it is; plain,
    the builder resolves it, and rapidyaml would have emitted a JSON literal for a literal."""
    if _JSON_LITERAL.fullmatch(value):
        return True  # a string, so it was quoted
    try:
        return isinstance(resolve_plain_scalar(value), str)
    except ValueError:  # digits beyond int()'s limit
        return False


def _plain(tree: Any, path: tuple[str | int, ...]) -> bool | None:
    """Was the value at path written as a plain scalar? None if the tree does not say."""
    node = tree.root_id()
    for part in path:
        node = tree.find_child(node, part.encode("utf-8")) if isinstance(part, str) else tree.child(node, part)
        if node < 0 or node >= tree.size():
            return None
    return bool(tree.is_val_plain(node))


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
