"""Field-level differences between two canonical specs, with ignoreChanges and secrets.

Pure: takes canonical specs (planner.canonical) and returns FieldChange rows. Equal
hashes short-circuit in `plan`; deepdiff runs only for jobs whose specs differ.
Every difference forces replacement, since a CustomJob has no update method.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

MASK: Final = "(sensitive value)"

PathPart = str | int


@dataclass(frozen=True)
class FieldChange:
    """One changed leaf: path in dotted form, before (live/prior) and after (desired)."""

    path: str
    kind: str  # "add" | "remove" | "change"
    before: Any = None
    after: Any = None
    forces_replacement: bool = True
    # Under lifecycle.ignoreChanges: shown because a replace for another reason gives the new
    # job this value, but it decided nothing. Written to JSON only when true.
    ignored: bool = False

    def to_json(self, *, show_sensitive: bool = False) -> dict[str, Any]:
        parts = parse_path(self.path)
        doc = {
            "path": self.path,
            "kind": self.kind,
            "before": self.before if show_sensitive else mask_value(parts, self.before),
            "after": self.after if show_sensitive else mask_value(parts, self.after),
            "forces_replacement": self.forces_replacement,
            "sensitive": is_sensitive(parts) or contains_sensitive(parts, self.before, self.after),
        }
        if self.ignored:
            doc["ignored"] = True
        return doc


def format_path(parts: Sequence[PathPart]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_PATH_TOKEN: Final = re.compile(r"\[(\d+|\*)\]|\.?([^.\[\]]+)")


def parse_path(path: str) -> list[PathPart]:
    """`jobSpec.workerPoolSpecs[0].containerSpec` → ["jobSpec", "workerPoolSpecs", 0, "containerSpec"]."""
    parts: list[PathPart] = []
    for match in _PATH_TOKEN.finditer(path):
        index, name = match.groups()
        if index is not None:
            parts.append(int(index) if index != "*" else "*")
        elif name is not None:
            parts.append(name)
    return parts


def strip_paths(spec: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """A copy of spec without the given paths (lifecycle.ignoreChanges); `[*]` matches every item."""
    out = copy.deepcopy(dict(spec))
    for path in paths:
        _remove(out, parse_path(path))
    _prune(out)
    return out


def _prune(node: Any) -> None:
    """Drop mapping values left empty by a removal, as the canonical form would."""
    if isinstance(node, dict):
        for key in list(node):
            _prune(node[key])
            if node[key] in ({}, [], None):
                del node[key]
    elif isinstance(node, list):
        for item in node:
            _prune(item)


def _remove(node: Any, parts: Sequence[PathPart]) -> None:
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict) and isinstance(head, str):
        if head not in node:
            return
        if rest:
            _remove(node[head], rest)
        else:
            del node[head]
    elif isinstance(node, list):
        indexes = range(len(node)) if head == "*" else [head] if isinstance(head, int) else []
        for i in indexes:
            if 0 <= i < len(node):
                if rest:
                    _remove(node[i], rest)
                else:
                    node[i] = None


def field_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> tuple[FieldChange, ...]:
    """Leaf-level changes from before (live or prior) to after (desired), sorted by path."""
    from deepdiff import DeepDiff  # imported here: it is slow to import and only needed for differing jobs

    diff = DeepDiff(dict(before or {}), dict(after or {}), view="tree", threshold_to_diff_deeper=0)
    rows: list[FieldChange] = []
    for report, levels in diff.items():
        for level in levels:
            parts = level.path(output_format="list")
            path = format_path(parts)
            t1 = None if _absent(level.t1) else level.t1
            t2 = None if _absent(level.t2) else level.t2
            if report.endswith("_added"):
                rows.append(FieldChange(path, "add", None, t2))
            elif report.endswith("_removed"):
                rows.append(FieldChange(path, "remove", t1, None))
            else:
                rows.append(FieldChange(path, "change", t1, t2))
    rows.sort(key=lambda r: _sort_key(parse_path(r.path)))
    return tuple(rows)


def ignored_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], paths: Sequence[str], shown: Iterable[FieldChange]
) -> tuple[FieldChange, ...]:
    """The changes `paths` (lifecycle.ignoreChanges) hid from `shown`, marked ignored.

    `shown` is the diff of the stripped specs; every path of the full diff that it does not
    have is one the ignored paths hid (a whole `labels` map added counts when only
    `labels.owner` is ignored, since stripping left nothing of it).
    """
    if not paths:
        return ()
    seen = {c.path for c in shown}
    return tuple(
        FieldChange(c.path, c.kind, c.before, c.after, forces_replacement=False, ignored=True)
        for c in field_changes(before, after)
        if c.path not in seen
    )


def placement_changes(
    before: tuple[str, str], after: tuple[str, str], *, forces_replacement: bool = True
) -> tuple[FieldChange, ...]:
    """`project` and `location` rows from (project, location) before to after: where a job runs
    is part of what it is, shown like a field of its spec."""
    return tuple(
        FieldChange(path, "change", old, new, forces_replacement)
        for path, old, new in zip(("project", "location"), before, after, strict=True)
        if old != new
    )


def merge_changes(*groups: Iterable[FieldChange]) -> tuple[FieldChange, ...]:
    """Several groups of changes as one list sorted by path, as field_changes sorts."""
    rows = [c for group in groups for c in group]
    rows.sort(key=lambda r: _sort_key(parse_path(r.path)))
    return tuple(rows)


def _absent(value: Any) -> bool:
    return type(value).__name__ == "NotPresent"


def _sort_key(parts: Sequence[PathPart]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in parts)


def is_sensitive(parts: Sequence[PathPart]) -> bool:
    """Values of `env` entries (containerSpec.env[i].value, pythonPackageSpec.env[i].value)."""
    return any(part == "env" and len(parts) >= i + 3 and parts[i + 2] == "value" for i, part in enumerate(parts))


def mask_value(parts: Sequence[PathPart], value: Any) -> Any:
    """Value with every env entry's value replaced by MASK; parts is where value sits."""
    if value is None:
        return None
    if is_sensitive(parts):
        return MASK
    if parts and parts[-1] == "env":
        return _mask_env_list(value)
    if len(parts) >= 2 and parts[-2] == "env" and isinstance(parts[-1], int):
        return _mask_env_item(value)
    return _mask_any(value)


def _mask_any(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (_mask_env_list(v) if k == "env" else _mask_any(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_any(v) for v in value]
    return value


def _mask_env_list(value: Any) -> Any:
    if isinstance(value, list):
        return [_mask_env_item(item) for item in value]
    return _mask_any(value)


def _mask_env_item(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: (MASK if k == "value" and v is not None else _mask_any(v)) for k, v in item.items()}
    return _mask_any(item)


def contains_sensitive(parts: Sequence[PathPart], *values: Any) -> bool:
    return any(mask_value(parts, v) != v for v in values if v is not None)


def mask_spec(spec: Mapping[str, Any] | None) -> Any:
    return mask_value([], dict(spec)) if spec is not None else None
