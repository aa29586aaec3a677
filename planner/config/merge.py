"""Layers partial jobs into one, positions included: a file's `defaults` under each job, and
(through `templates`) templates under both. Mappings merge deeply, the upper layer wins, lists
replace; which layers there are is the caller's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from planner.config.load import Span


def merge(base: dict[str, Any], base_span: Span, over: dict[str, Any], over_span: Span) -> tuple[dict[str, Any], Span]:
    """Deep-merge over onto base (over wins, lists replace); values from base are copied."""
    base_children = base_span[4]
    over_children = over_span[4]
    assert isinstance(base_children, dict) and isinstance(over_children, dict)
    merged: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    for key, value in base.items():
        if key not in over:
            merged[key] = _copy(value)
            spans[key] = base_children[key]
    for key, value in over.items():
        if key in base and isinstance(value, dict) and isinstance(base[key], dict):
            merged[key], spans[key] = merge(base[key], base_children[key], value, over_children[key])
        else:
            merged[key] = value
            spans[key] = over_children[key]
    return merged, (over_span[0], over_span[1], over_span[2], over_span[3], spans)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def without(value: Any, path: Sequence[str | int]) -> Any:
    """value with the entry at path removed (e.g. a layer's bad entry), copying only the
    containers along the path."""
    head, rest = path[0], path[1:]
    if isinstance(value, dict) and isinstance(head, str) and head in value:
        out = dict(value)
        if rest:
            out[head] = without(value[head], rest)
        else:
            del out[head]
        return out
    if isinstance(value, list) and isinstance(head, int) and 0 <= head < len(value):
        items = list(value)
        if rest:
            items[head] = without(value[head], rest)
        else:
            del items[head]
        return items
    return value
