"""The text view: Terraform-like plans and drift reports for terminals and CI logs.

Rendered from the JSON documents (`plan_to_json`, `drift_to_json`), whose env values
are already masked; the value formatting here masks again so no view can leak one.
The markdown view reuses the line builders defined here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from planner import apimodel
from planner.diff import MASK, PathPart, is_sensitive, mask_value, parse_path
from planner.render.cost_view import text_cost_lines
from planner.render.style import ACTION_SYMBOLS, Style
from planner.render.sweeps import group_rows

HEADER_VERBS: Final[dict[str, str]] = {
    "create": "will be created",
    "replace": "must be replaced",
    "cancel": "will be cancelled",
    "delete": "will be deleted",
    "adopt": "will be adopted",
    "forget": "will be forgotten",
    "update": "will be updated",
    "no-op": "is unchanged",
}

_NOT_DRIFT: Final = frozenset({"in_sync", "released"})
_INDENT: Final = "    "

# -- shared by the text and markdown views ------------------------------------------------------


def drift_label(kind: str) -> str:
    """A drift kind in words: `in_sync` → `in sync`."""
    return kind.replace("_", " ")


def plural(n: int, word: str, plural_word: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural_word or word + 's')}"


def counts_line(doc: Mapping[str, Any]) -> str:
    """`Plan: N to create, N to replace, N to cancel, N to delete.` (adopt/forget/update only when present)."""
    summary = doc["summary"]
    parts = [f"{summary[k]} to {k}" for k in ("create", "replace", "cancel", "delete")]
    parts += [f"{summary[k]} to {k}" for k in ("adopt", "forget", "update") if summary.get(k)]
    return "Plan: " + ", ".join(parts) + "."


NO_CHANGES: Final = "No changes. The jobs match the configuration."
IGNORED_MARK: Final = "# ignored for change detection; the new job takes this value"


def drift_line(doc: Mapping[str, Any]) -> str:
    summary = doc["summary"]
    drifted = sum(n for kind, n in summary.items() if kind not in _NOT_DRIFT)
    if drifted:
        return f"Drift: {plural(drifted, 'job')} drifted."
    return f"No drift. {plural(summary['in_sync'], 'job')} in sync."


def drift_summary(doc: Mapping[str, Any]) -> str:
    # Released jobs are no drift kind; they are counted only when there are some.
    return ", ".join(
        f"{n} {drift_label(kind)}" for kind, n in doc["summary"].items() if n or kind != "released"
    )


def coverage_line(doc: Mapping[str, Any]) -> str:
    coverage = doc["coverage"]
    return f"Coverage: {coverage['managed']} managed of {plural(coverage['seen'], 'job')} seen"


def changed_rows(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in doc["resource_changes"] if c["action"] != "no-op"]


def noted_rows(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in doc["resource_changes"] if c["action"] == "no-op" and c["notes"]]


def drifting_items(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [i for i in doc["items"] if i["kind"] not in _NOT_DRIFT]


def released_items(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [i for i in doc["items"] if i["kind"] == "released"]


def short_job(name: str | None) -> str:
    """The job ID, the last segment of `projects/P/locations/L/customJobs/ID` ("" for None)."""
    return name.rsplit("/", 1)[-1] if name else ""


def state_word(state: str | None) -> str:
    return (state or "unknown").removeprefix("JOB_STATE_").lower()


def header(change: Mapping[str, Any]) -> str:
    verb = HEADER_VERBS.get(change["action"], change["action"])
    reason = change["reason"]
    if change["action"] == "update":  # "lifecycle changed (state only)": no parentheses in parentheses
        return f"{change['address']} {verb}: {reason}"
    return f"{change['address']} {verb} ({reason})"


def summary_extras(change: Mapping[str, Any]) -> list[str]:
    """Short facts for the one-line summary: changed field count, the job touched and its state."""
    extras = []
    if change["changes"]:
        extras.append(f"{plural(len(change['changes']), 'field')} changed")
    job = change["job"]
    if job is not None and change["action"] != "create":
        extras.append(f"job {short_job(job['name'])} {state_word(job['state'])}")
    return extras


def steps_text(change: Mapping[str, Any]) -> str:
    """`cancel …/123 → create → delete …/123 once terminal`; the job header names the job in full."""
    job = change["job"]
    own_name = job["name"] if job is not None else None
    already_terminal = job is not None and job["state"] in apimodel.TERMINAL_STATES
    parts = []
    for step in change["steps"]:
        kind, name = step["kind"], step["job"]
        if name is None:
            parts.append(kind)
            continue
        shown = f"…/{short_job(name)}" if name == own_name else name
        if kind == "delete" and not (name == own_name and already_terminal):
            parts.append(f"delete {shown} once terminal")
        elif kind in ("adopt", "forget", "update"):
            parts.append(f"{kind} {shown} (state only)")
        else:
            parts.append(f"{kind} {shown}")
    return " → ".join(parts)


def format_value(parts: Sequence[PathPart], value: Any, *, show_sensitive: bool = False) -> str:
    """A value as JSON; an env value as `(sensitive value)` unless show_sensitive."""
    if is_sensitive(parts) and (not show_sensitive or value == MASK):
        return MASK
    if not show_sensitive and isinstance(value, (dict, list)):
        value = mask_value(parts, value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


Leaf = tuple[str, list[PathPart], Any]


def leaves(path: str, parts: list[PathPart], value: Any) -> list[Leaf]:
    """(path, its parts, value) for every leaf; lists of scalars and empty containers stay whole."""
    # dict, not Mapping: these are JSON documents, and the ABC check is slow on big plans.
    if isinstance(value, dict) and value:
        out: list[Leaf] = []
        for key in sorted(value):
            name = str(key)
            out.extend(leaves(f"{path}.{name}" if path else name, [*parts, name], value[key]))
        return out
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = []
        for i, item in enumerate(value):
            out.extend(leaves(f"{path}[{i}]", [*parts, i], item))
        return out
    return [(path, parts, value)]


def _assignments(path: str, value: Any, show_sensitive: bool) -> list[str]:
    return [
        f"{p} = {format_value(parts, v, show_sensitive=show_sensitive)}"
        for p, parts, v in leaves(path, parse_path(path), value)
    ]


def spec_lines(spec: Mapping[str, Any] | None, *, show_sensitive: bool = False) -> list[tuple[str, str]]:
    """The spec a create sends, one `+ path = value` line per leaf."""
    if not spec:
        return []
    return [("+", line) for line in _assignments("", spec, show_sensitive)]


def field_lines(
    changes: Sequence[Mapping[str, Any]],
    *,
    split: bool = False,
    mark_replacement: bool = False,
    show_sensitive: bool = False,
) -> list[tuple[str, str]]:
    """(symbol, text) per changed leaf: `~ path: old -> new`, `+ path = value`, `- path = value`.

    split renders a change as a `-` line and a `+` line (for diff-highlighted markdown).
    """
    out: list[tuple[str, str]] = []
    for change in changes:
        path = change["path"]
        parts = parse_path(path)
        suffix = ""
        if change.get("ignored"):
            suffix = f"  {IGNORED_MARK}"
        elif mark_replacement and change.get("forces_replacement"):
            suffix = "  # forces replacement"
        kind = change["kind"]
        if kind == "change" and not split:
            before = format_value(parts, change["before"], show_sensitive=show_sensitive)
            after = format_value(parts, change["after"], show_sensitive=show_sensitive)
            out.append(("~", f"{path}: {before} -> {after}{suffix}"))
            continue
        if kind in ("remove", "change"):
            out.extend(("-", line + suffix) for line in _assignments(path, change["before"], show_sensitive))
        if kind in ("add", "change"):
            out.extend(("+", line + suffix) for line in _assignments(path, change["after"], show_sensitive))
    return out


# -- plan --------------------------------------------------------------------------------------


def render_plan_text(doc: Mapping[str, Any], *, color: bool = False, show_sensitive: bool = False) -> str:
    style = Style(color)
    rows = changed_rows(doc)
    lines: list[str] = []
    if doc["targets"]:
        lines += [f"Targeting: {', '.join(doc['targets'])} (other jobs are not planned)", ""]
    if rows:
        lines += [f'planner will perform the following actions in workspace "{doc["workspace"]}":', ""]
        lines += _summary_list(group_rows(rows), style)  # a sweep's jobs on one line
        unchanged = len(doc["resource_changes"]) - len(rows)
        if unchanged:
            lines.append(f"      ({plural(unchanged, 'unchanged job')} not listed)")
        lines.append("")
    noted = noted_rows(doc)
    if noted:
        lines.append(style.bold("Notes:"))
        lines += [f"  {c['address']}: {note}" for c in noted for note in c["notes"]]
        lines.append("")
    for change in rows:
        lines += _block(change, style, show_sensitive)
        lines.append("")
    for warning in doc["warnings"]:
        lines += [f"{style.paint('Warning:', 'bold', 'yellow')} {warning}", ""]
    cost_block, cost_footer = text_cost_lines(doc, style)  # priced plans only (planner.pricing)
    lines += cost_block
    if rows:
        lines.append(f"{style.bold('Plan:')} {counts_line(doc).removeprefix('Plan: ')}")
        lines += cost_footer
    else:
        lines.append(style.bold(NO_CHANGES))
    return "\n".join(lines) + "\n"


def _summary_list(rows: Sequence[Mapping[str, Any]], style: Style) -> list[str]:
    width = max(len(c["address"]) for c in rows)
    action_width = max(len(c["action"]) for c in rows)
    out = []
    for c in rows:
        action = c["action"]
        symbol = style.action(action, f"{ACTION_SYMBOLS[action]:>3}")
        extras = summary_extras(c)
        reason = c["reason"] + (f" [{', '.join(extras)}]" if extras else "")
        out.append(f"  {symbol} {c['address']:<{width}}  {style.action(action, f'{action:<{action_width}}')}  {reason}")
    return out


def _block(change: Mapping[str, Any], style: Style, show_sensitive: bool) -> list[str]:
    action = change["action"]
    out = [style.bold(f"  # {header(change)}"), f"  #   project {change['project']}, location {change['location']}"]
    job = change["job"]
    if job is not None:
        out.append(f"  #   job {job['name']} ({job['state'] or 'state unknown'})")
    if action == "create":
        body = spec_lines(change["after"], show_sensitive=show_sensitive)
    else:
        body = field_lines(change["changes"], mark_replacement=True, show_sensitive=show_sensitive)
    if action == "replace" and not change["changes"]:
        out.append(f"{_INDENT}(spec unchanged: the job is created again)")
    out += [f"{_INDENT}{style.field(symbol, symbol)} {text}" for symbol, text in body]
    if change["steps"]:
        out.append(f"{_INDENT}steps: {steps_text(change)}")
    out += [f"{_INDENT}Note: {n}" for n in change["notes"]]
    out += [f"{_INDENT}{style.paint('Warning:', 'bold', 'yellow')} {w}" for w in change["warnings"]]
    return out


# -- drift -------------------------------------------------------------------------------------


def render_drift_text(doc: Mapping[str, Any], *, color: bool = False, show_sensitive: bool = False) -> str:
    style = Style(color)
    lines = [f'Drift report for workspace "{doc["workspace"]}"', "", f"Summary: {drift_summary(doc)}"]
    lines.append(coverage_line(doc))
    if doc["ignored"]:
        lines.append(f"Ignored: {', '.join(doc['ignored'])}")
    lines.append("")
    items = drifting_items(doc)
    if items:
        lines.append(style.bold("Drifted jobs:"))
        addresses = [i["address"] or "-" for i in items]
        names = [i["job_name"] or "-" for i in items]
        aw, nw = max(map(len, addresses)), max(map(len, names))
        kw = max(len(drift_label(i["kind"])) for i in items)
        for item, address, name in zip(items, addresses, names, strict=True):
            kind = style.drift(item["kind"], f"{drift_label(item['kind']):<{kw}}")
            lines.append(f"  {kind}  {address:<{aw}}  {name:<{nw}}  {item['detail']}")
            lines += _indented_fields(item["changes"], style, show_sensitive)
        lines.append("")
    released = released_items(doc)
    if released:
        lines.append(style.bold("Released by planner (not drift):"))
        width = max(len(i["address"] or "-") for i in released)
        lines += [f"  {i['address'] or '-':<{width}}  {i['job_name']}  {i['detail']}" for i in released]
        lines.append("")
    pending = doc["config_pending"]
    if pending:
        lines.append(style.bold("Config not yet applied (not drift):"))
        width = max(len(p["address"]) for p in pending)
        for p in pending:
            lines.append(f"  {p['address']:<{width}}  {p['detail']}")
            lines += _indented_fields(p["changes"], style, show_sensitive)
        lines.append("")
    lines.append(style.bold(drift_line(doc)))
    return "\n".join(lines) + "\n"


def _indented_fields(changes: Sequence[Mapping[str, Any]], style: Style, show_sensitive: bool) -> list[str]:
    return [
        f"      {style.field(symbol, symbol)} {text}"
        for symbol, text in field_lines(changes, show_sensitive=show_sensitive)
    ]
