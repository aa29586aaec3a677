"""How validation words what is wrong: schema errors as messages, field paths as text, and
the check of an `ignoreChanges` path against the job's fields.

`validate` finds the problems and their positions; this module only says them. A diagnostic
never echoes a value under `env` (DESIGN §7: env values are secrets).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")  # written as .key in a path; others as ["key"]
PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]")  # [*]: every item of a list

TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
    "number": "a number",
    "null": "null",
}

SECRET_PATH = re.compile(r"\.env\[\d+\](?:\.value)?$")


def schema_message(kind: str, expected: Any, value: Any, schema: Mapping[str, Any]) -> str:
    fmt = schema.get("x-format")
    got = describe(value)
    if fmt == "int64" and kind in ("type", "pattern", "minimum", "maximum"):
        if kind in ("minimum", "pattern") and is_negative(value):
            return f"expected a non-negative integer, got {got}"
        return f"expected an integer, got {got}"
    if fmt == "duration" and kind == "pattern":
        return f'expected a duration such as "3600s", "90m", "2h" or "1h30m", got {got}'
    if kind == "type":
        types = expected if isinstance(expected, list) else [expected]
        words = " or ".join(TYPE_WORDS.get(str(t), str(t)) for t in types)
        hint = ""
        if "string" in types and isinstance(value, (int, float, bool)):
            hint = " (put it in quotes to make it a string)"
        return f"expected {words}, got {got}{hint}"
    if kind == "enum":
        what = schema.get("x-kind")
        choices = ", ".join(str(c) for c in expected)
        if what:
            return f"{got} is not a {what}; expected one of {choices}"
        close = difflib.get_close_matches(str(value), [str(c) for c in expected], n=1, cutoff=0.6)
        if close:
            return f'{got} is not a valid value; did you mean "{close[0]}"?'
        return f"expected one of {choices}; got {got}"
    if kind == "const":
        return f"expected {json.dumps(expected)}, got {got}"
    if kind == "pattern":
        what = schema.get("x-kind")
        rule = schema.get("description")
        if what and rule:
            return f"invalid {what} {got}: {rule}"
        return f"{got} does not match {expected}"
    if kind == "maxLength":
        return f"must be at most {expected} characters long (got {len(value)})"
    if kind == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters long"
    if kind == "maxItems":
        return f"at most {expected} entries allowed (got {len(value)})"
    if kind == "minItems":
        return f"needs at least {expected} {'entry' if expected == 1 else 'entries'}"
    if kind == "minProperties":
        what = schema.get("x-kind")
        return f"the {what} must not be empty" if what else "must not be empty"
    if kind == "minimum":
        return f"must be at least {expected}, got {got}"
    if kind == "maximum":
        return f"must be at most {expected}, got {got}"
    return f"{got}: failed {kind} {expected!r}"


def did_you_mean(word: str, choices: Sequence[str], otherwise: str = "") -> str:
    """`; did you mean "X"?` for the choice closest to word, or `otherwise` when none is close."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else otherwise


def is_negative(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value < 0
    return isinstance(value, str) and value.strip().startswith("-")


def unknown_field(key: str, known: Mapping[str, Any], elsewhere: Mapping[str, list[str]]) -> str:
    names = sorted(known)
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    match = lowered.get(key.lower()) or (close[0] if close else None)
    if match is not None:
        return f'unknown field "{key}"; did you mean "{match}"?'
    if key in elsewhere:
        places = " or ".join(elsewhere[key][:3])
        return f'unknown field "{key}" here; it belongs at {places}'
    return f'unknown field "{key}" (expected one of: {", ".join(names)})'


def field_places(properties: Mapping[str, Any], prefix: str = "") -> dict[str, list[str]]:
    """Every field name of a job -> the paths where it may appear ("jobSpec.workerPoolSpecs[]")."""
    places: dict[str, list[str]] = {}
    for name, sub in properties.items():
        if not isinstance(sub, dict):
            continue
        path = f"{prefix}.{name}" if prefix else name
        places.setdefault(name, []).append(path)
        node = sub.get("items", sub) if sub.get("type") == "array" else sub
        suffix = "[]" if node is not sub else ""
        inner = node.get("properties") if isinstance(node, dict) else None
        if isinstance(inner, dict):
            for child, paths in field_places(inner, path + suffix).items():
                places.setdefault(child, []).extend(paths)
    return places


def describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value, ensure_ascii=False)


def format_path(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif SIMPLE_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def check_field_path(path: str, fields: Mapping[str, Any]) -> str | None:
    """None if path (labels.owner, jobSpec.workerPoolSpecs[0].containerSpec.args, ….workerPoolSpecs[*]…)
    names a settable field."""
    parts = list(PATH_PART.finditer(path))
    if not parts or rejoin(parts) != path:
        return f'invalid field path "{path}": write it like jobSpec.workerPoolSpecs[0].containerSpec.args'
    schema: Mapping[str, Any] = {"type": "object", "properties": fields}
    for match in parts:
        name, index = match.group(1), match.group(2)
        if index is not None:
            if schema.get("type") != "array":
                return f'invalid field path "{path}": [{index}] follows a field that is not a list'
            schema = schema.get("items", {})
            continue
        props = schema.get("properties")
        if isinstance(props, dict):
            if name not in props or name in ("project", "location", "lifecycle"):
                known = [n for n in props if n not in ("project", "location", "lifecycle")]
                return f'invalid field path "{path}": unknown field "{name}"{did_you_mean(name, known)}'
            schema = props[name]
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
        else:
            return f'invalid field path "{path}": "{name}" has no fields'
    return None


def rejoin(parts: Sequence[re.Match[str]]) -> str:
    out = ""
    for m in parts:
        if m.group(2) is not None:
            out += m.group(0)
        else:
            out += f".{m.group(1)}" if out else m.group(1)
    return out
