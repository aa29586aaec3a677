"""Sweeps as data: `matrix:` expansion, sweep addresses and the label values that carry them.

A job with ``matrix:`` becomes one job per combination of its axes (GitHub Actions'
``include``/``exclude`` rules), each with its own address ``BASE[axis=value,…]`` (axes sorted
by name, so reordering them changes nothing) and ``${matrix.AXIS}`` replaced in every string
of the job. Validation (`validate`) calls `expand` with the job already merged with its
templates and defaults; what a job *is* after that is validate's business.

Labels carry addresses (``planner-address``), and label values allow only 63 lowercase letters,
digits, ``_`` and ``-``: `address_label` keeps a plain address as it is and turns a sweep address
into a readable prefix plus a 10-digit digest of the whole address, joined by ``_`` (which no
plain address contains, so the two kinds never collide).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from planner.config.load import Span, find_span

# A sweep over more jobs than this needs `maxJobs:` raised explicitly.
DEFAULT_MAX_JOBS = 1000

LABEL_MAX = 63
_DIGEST_DIGITS = 10
_AXIS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BARE_VALUE = re.compile(r"^[A-Za-z0-9_.+-]+$")
_PLAIN_LABEL = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_NOT_LABEL = re.compile(r"[^a-z0-9_-]+")
_MATRIX_REF = re.compile(r"\$\{matrix\.([^}]*)\}")
_RESERVED = ("include", "exclude")
KEYS = ("matrix", "maxJobs")  # job keys this module consumes

Report = Callable[[Span | None, str, str], None]  # (where, field path suffix, message)


@dataclass(frozen=True)
class Combination:
    """One job of a sweep: its address and the values `${matrix.X}` takes."""

    address: str
    values: Mapping[str, Any]


def sweep_base(address: str) -> str | None:
    """`train` for `train[lr=0.001,seed=2]`; None for a plain address."""
    return address.split("[", 1)[0] if address.endswith("]") and "[" in address else None


def address_label(address: str) -> str:
    """The planner-address label value for an address (see the module docstring)."""
    if _PLAIN_LABEL.match(address):
        return address
    digest = hashlib.sha256(address.encode("utf-8")).hexdigest()[:_DIGEST_DIGITS]
    readable = address.lower().replace("[", "_").replace("]", "").replace(",", "_").replace("=", "-")
    readable = _NOT_LABEL.sub("-", readable).strip("-_")
    room = LABEL_MAX - _DIGEST_DIGITS - 1
    return f"{readable[:room].rstrip('-_')}_{digest}"


def by_address(by_label: Mapping[str, list[Any]], addresses: Iterable[str]) -> dict[str, list[Any]]:
    """Live jobs keyed by label value, re-keyed by the known addresses whose label they carry;
    labels no known address claims stay under the label value."""
    out = dict(by_label)
    for address in addresses:
        if "[" not in address:
            continue  # a plain address is its own label
        label = address_label(address)
        if label != address and label in out:
            out[address] = out.pop(label)
    return out


def expand_targets(targets: frozenset[str], addresses: Iterable[str]) -> frozenset[str]:
    """`--target train` stands for every job of the sweep `train`."""
    if not targets:
        return targets
    members = {a: sweep_base(a) for a in addresses if "[" in a}
    chosen = {a for a, base in members.items() if base in targets}
    return (targets - {members[a] for a in chosen}) | chosen


def value_text(value: Any) -> str:
    """How a matrix value reads in an address and in `${matrix.X}`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def sweep_address(base: str, values: Mapping[str, Any]) -> str:
    parts = []
    for name in sorted(values):
        text = value_text(values[name])
        parts.append(f"{name}={text if _BARE_VALUE.match(text) else json.dumps(text, ensure_ascii=False)}")
    return f"{base}[{','.join(parts)}]"


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _child(span: Span | None, key: str | int) -> Span | None:
    return find_span(span, (key,)) if span is not None else None


def combinations(
    base: str, matrix: Any, span: Span | None, max_jobs: Any, max_span: Span | None, report: Report
) -> list[Combination]:
    """The sweep's combinations in a stable order, or [] after reporting what is wrong."""
    if not isinstance(matrix, dict) or not matrix:
        report(span, "matrix", "expected a mapping of axis names to lists of values")
        return []
    limit = DEFAULT_MAX_JOBS
    if max_jobs is not None:
        if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1:
            report(max_span, "maxJobs", "expected a positive integer")
            return []
        limit = max_jobs
    axes: dict[str, list[Any]] = {}
    ok = True
    for name, values in matrix.items():
        where = _child(span, name)
        if name in _RESERVED:
            continue
        if not _AXIS_NAME.match(name):
            report(where, f"matrix.{name}", "an axis name is letters, digits and '_', starting with a letter or '_'")
            ok = False
        elif not isinstance(values, list) or not values:
            report(where, f"matrix.{name}", "expected a non-empty list of values")
            ok = False
        elif not all(_is_scalar(v) for v in values):
            report(where, f"matrix.{name}", "axis values must be strings, numbers or booleans")
            ok = False
        elif len({value_text(v) for v in values}) != len(values):
            report(where, f"matrix.{name}", "an axis lists the same value twice")
            ok = False
        else:
            axes[name] = values
    entries: dict[str, list[dict[str, Any]]] = {}
    for key in _RESERVED:
        raw = matrix.get(key)
        if raw is None:
            entries[key] = []
            continue
        where = _child(span, key)
        if not isinstance(raw, list) or not all(
            isinstance(e, dict) and e and all(_is_scalar(v) for v in e.values()) for e in raw
        ):
            report(where, f"matrix.{key}", "expected a list of mappings of axis names to values")
            ok = False
            continue
        for i, entry in enumerate(raw):
            for name in entry:
                if not _AXIS_NAME.match(name):
                    report(_child(where, i), f"matrix.{key}[{i}].{name}", "not a valid axis name")
                    ok = False
                elif key == "exclude" and name not in axes:
                    report(_child(where, i), f"matrix.{key}[{i}].{name}", f'"{name}" is not an axis of this matrix')
                    ok = False
        entries[key] = raw
    if not ok:
        return []

    def same(a: Any, b: Any) -> bool:
        return value_text(a) == value_text(b) and isinstance(a, str) == isinstance(b, str)

    # The product, counted first so a huge matrix is refused before it is built.
    count = math.prod(len(values) for values in axes.values())
    if count > limit * 4 + 1000:
        report(span, "matrix", _too_many(count, limit))
        return []
    combos: list[dict[str, Any]] = [{}]
    for name, values in axes.items():
        combos = [{**c, name: v} for c in combos for v in values]
    if not axes:
        combos = []
    combos = [c for c in combos if not any(all(same(c[k], v) for k, v in e.items()) for e in entries["exclude"])]
    extra: list[dict[str, Any]] = [{} for _ in combos]
    added: list[dict[str, Any]] = []
    for entry in entries["include"]:
        fitted = False
        for i, combo in enumerate(combos):
            if all(same(combo[k], v) for k, v in entry.items() if k in axes):
                extra[i].update({k: v for k, v in entry.items() if k not in axes})
                fitted = True
        if not fitted:
            added.append(dict(entry))
    out = [Combination(sweep_address(base, c), {**c, **more}) for c, more in zip(combos, extra, strict=True)]
    out += [Combination(sweep_address(base, entry), entry) for entry in added]
    seen: set[str] = set()
    for combo_ in out:
        if combo_.address in seen:
            report(_child(span, "include"), "matrix.include", f"{combo_.address} would be defined twice")
            return []
        seen.add(combo_.address)
    if not out:
        report(span, "matrix", "this matrix makes no jobs (everything is excluded)")
    elif len(out) > limit:
        report(span, "matrix", _too_many(len(out), limit))
        return []
    return sorted(out, key=lambda c: c.address)


def _too_many(count: int, limit: int) -> str:
    return f"this sweep makes {count} jobs, more than maxJobs ({limit}); set maxJobs: {count} on the job to allow it"


def substitute(
    value: Any,
    span: Span | None,
    values: Mapping[str, Any],
    plain: set[tuple[int, int]],
    report: Report,
    path: str = "",
) -> Any:
    """A copy of value with ${matrix.X} replaced in every string (keys excepted); a string that
    is nothing but one unquoted reference takes the value itself (`acceleratorCount: ${matrix.gpus}`)."""
    if isinstance(value, str):
        if "${matrix." not in value:
            return value
        if span is not None and (span[0], span[1]) in plain:
            whole = _MATRIX_REF.fullmatch(value)
            if whole is not None and whole.group(1) in values:
                return values[whole.group(1)]
        problem: list[str] = []

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return value_text(values[name])
            known = ", ".join(sorted(values)) or "none"
            problem.append(f'"${{matrix.{name}}}": no such matrix axis (this job has: {known})')
            return match.group(0)

        result = _MATRIX_REF.sub(replace, value)
        if problem:
            report(span, path, problem[0])
        return result
    if isinstance(value, dict):
        return {
            k: substitute(v, _child(span, k), values, plain, report, f"{path}.{k}" if path else k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [substitute(v, _child(span, i), values, plain, report, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def mentions_matrix(value: Any) -> bool:
    if isinstance(value, str):
        return "${matrix." in value
    if isinstance(value, dict):
        return any(mentions_matrix(v) for v in value.values())
    if isinstance(value, list):
        return any(mentions_matrix(v) for v in value)
    return False
