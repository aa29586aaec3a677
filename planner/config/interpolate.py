"""Replaces ``${var.NAME}`` in a document's string values; what a name's value is (or why it has
none) is `variables`' business, and reporting a problem is the caller's.

``${var.NAME}`` anywhere in a string value, ``${var.NAME:-default}`` with a default, ``$${``
for a literal ``${``. A value that is nothing but one unquoted reference takes the type YAML
would give the text (``acceleratorCount: ${var.gpus}`` with gpus=2 is the integer 2); quote it
to keep a string. Mapping keys are never interpolated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from planner.config.load import Document, Span, find_span, resolve_plain_scalar
from planner.config.messages import format_path
from planner.config.positions import NOWHERE
from planner.config.variables import missing_message, typed_reference
from planner.errors import SourceLocation

# Called with (where, field path, message) for a value whose ${var.X} could not be replaced.
Unresolved = Callable[[SourceLocation, str, str], None]

_VAR_TOKEN = re.compile(r"\$\$\{|\$\{var\.([^}]*)\}|\$\{var\.")
_VAR_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def interpolate_document(doc: Document, variables: Mapping[str, str], unresolved: Unresolved) -> dict[str, Any]:
    """The document's data with variables replaced (in place, unless aliases share values)."""
    if doc.aliased:
        data = _copy_interpolated(variables, unresolved, doc, doc.data, doc.span, (), doc.plain_positions())
        assert isinstance(data, dict)
        return data
    data = doc.data
    for path, is_plain in doc.templated:
        container: Any = data
        for part in path[:-1]:
            container = container[part]
        span = find_span(doc.span, path) or NOWHERE  # (nowhere: the values tier's documents)
        value = container[path[-1]]
        container[path[-1]] = _substitute(variables, unresolved, doc, value, span, path, is_plain)
    return data


def _interpolate_text(text: str, variables: Mapping[str, str]) -> tuple[str, str | None]:
    """Text with ${var.X} replaced; or (text, problem)."""
    problem: str | None = None

    def replace(match: re.Match[str]) -> str:
        nonlocal problem
        token = match.group(0)
        if token == "$${":
            return "${"
        inner = match.group(1)
        body = _VAR_BODY.fullmatch(inner) if inner is not None else None
        if body is None:
            usage = "write ${var.NAME} or ${var.NAME:-default}"
            problem = problem or f'malformed variable reference "{token}": {usage}'
            return token
        name, default = body.group(1), body.group(2)
        if name in variables:
            return str(variables[name])
        missing = missing_message(variables, name, default is not None)
        if missing is None:
            return default or ""
        problem = problem or missing
        return token

    return _VAR_TOKEN.sub(replace, text), problem


def _substitute(
    variables: Mapping[str, str],
    unresolved: Unresolved,
    doc: Document,
    value: Any,
    span: Span,
    path: Sequence[str | int],
    plain: bool,
) -> Any:
    if not isinstance(value, str) or "${" not in value:
        return value
    result, problem = _interpolate_text(value, variables)
    if problem is not None:
        unresolved(doc.location(span), format_path(path), problem)
        return value
    if plain and value.startswith("${") and _VAR_TOKEN.fullmatch(value):
        declared, typed = typed_reference(variables, value)
        if declared:
            return typed
        try:
            typed = resolve_plain_scalar(result) if result else result
        except ValueError:  # an integer beyond Python's digit limit for int()
            problem = f"the variable's value is a number of {len(result)} digits, too large for any field"
            unresolved(doc.location(span), format_path(path), problem)
            return value
        if isinstance(typed, (bool, int)):
            return typed
    return result


def _copy_interpolated(
    variables: Mapping[str, str],
    unresolved: Unresolved,
    doc: Document,
    value: Any,
    span: Span,
    path: tuple[str | int, ...],
    plain: set[tuple[int, int]],
) -> Any:
    """A fresh copy of value (aliases become separate values) with variables replaced."""
    if isinstance(value, str):
        return _substitute(variables, unresolved, doc, value, span, path, (span[0], span[1]) in plain)
    children = span[4]
    if isinstance(value, dict):
        assert isinstance(children, dict)
        return {
            k: _copy_interpolated(variables, unresolved, doc, v, children[k], (*path, k), plain)
            for k, v in value.items()
        }
    if isinstance(value, list):
        assert isinstance(children, list)
        return [
            _copy_interpolated(variables, unresolved, doc, v, children[i], (*path, i), plain)
            for i, v in enumerate(value)
        ]
    return value
