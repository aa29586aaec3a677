"""The PR view: a priced plan as markdown a reviewer of ML jobs can judge at a glance.

One table row per changed job with its resources (`8 × A100 · a2-highgpu-8g × 1 · SPOT`),
its cost, what changed in a short phrase (`4 → 8 A100`), where it runs and a console link;
then the plan and cost totals, the CI context, every warning and note once, and the
collapsible per-job diffs. A sweep of near-identical creates (same resources, cost and
place) is one row. GitHub refuses comments over 65,536 characters, so rows stop at
TABLE_BUDGET and details at markdown.DETAILS_BUDGET, each saying how many were left out.
Used for `--format markdown` when the plan is priced (planner.pricing); unpriced plans keep
the plain markdown view.
"""

from __future__ import annotations

import html
import os.path
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from planner.pricing.cost import footer, totals
from planner.render.cost_view import (
    change_phrases,
    cost_notes,
    cost_text,
    group_label,
    net_line,
    resources_text,
    shown_estimate,
    sweep_groups,
)
from planner.render.markdown import (
    alert,
    budgeted,
    change_diff,
    change_summary,
    code,
    details,
    diff_fence,
    escape,
    table,
)
from planner.render.style import ACTION_SYMBOLS
from planner.render.text import (
    NO_CHANGES,
    changed_rows,
    counts_line,
    leaves,
    noted_rows,
    short_job,
    spec_lines,
    state_word,
    steps_text,
)

TABLE_BUDGET: Final = 40_000
MAX_ALERT_ITEMS: Final = 30
SWEEP_NAMES: Final = 20
_CONSOLE: Final = "https://console.cloud.google.com/ai/platform/locations/{location}/training/{job}?project={project}"
# CI context keys in the order shown, and how each reads.
_CONTEXT: Final[tuple[tuple[str, Callable[[str], str]], ...]] = (
    ("commit", lambda v: f"commit {code(v[:12])}"),
    ("pr", lambda v: f"PR #{escape(v)}"),
    ("actor", lambda v: f"by @{escape(v)}"),
    ("run", lambda v: f"run {escape(v)}"),
    ("planner", lambda v: f"planner {escape(v)}"),
)


def console_url(job_name: str) -> str | None:
    """The Cloud console page of a job (`projects/P/locations/L/customJobs/ID`), as the Vertex SDK links it."""
    parts = job_name.split("/")
    if len(parts) != 6 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != "customJobs":
        return None
    return _CONSOLE.format(location=quote(parts[3]), job=quote(parts[5]), project=quote(parts[1]))


def render_review_markdown(
    doc: Mapping[str, Any], *, context: Mapping[str, str] | None = None, show_sensitive: bool = False
) -> str:
    rows = changed_rows(doc)
    groups = sweep_groups(rows)
    lines = [f"## planner plan: workspace {code(doc['workspace'])}", ""]
    ctx = " · ".join(say(value) for key, say in _CONTEXT if (value := (context or {}).get(key)))
    if ctx:
        lines += [ctx, ""]
    if doc["targets"]:
        lines += [f"Targeting {', '.join(code(t) for t in doc['targets'])} (other jobs are not planned).", ""]
    if rows:
        head = ("", "Job", "Change", "Resources", "Cost", "Project / location", "Console")
        lines += _budgeted_table(head, [_cells(group) for group in groups])
        lines += ["", f"**{counts_line(doc)}**  "]
        t = totals(rows)
        lines += [f"**{escape(footer(t))}**  ", escape(net_line(t)), ""]
        unchanged = len(doc["resource_changes"]) - len(rows)
        if unchanged:
            lines += [f"{unchanged} unchanged {'job' if unchanged == 1 else 'jobs'} not listed.", ""]
        lines += [_prices_line(rows), ""]
    else:
        lines += [f"**{NO_CHANGES}**", ""]
    job_warnings = [(c["address"], _generic(w, c)) for c in rows for w in c["warnings"]]
    warnings = _once(job_warnings + [("", w) for w in doc["warnings"]])
    if warnings:
        lines += [*alert("WARNING", warnings), ""]
    notes = _once([(c["address"], n) for c in [*rows, *noted_rows(doc)] for n in c["notes"]])
    notes += [escape(n) for n in cost_notes(rows)]
    if notes:
        lines += [*alert("NOTE", notes), ""]
    lines += budgeted(lines, [{"group": g} for g in groups], lambda e: _group_details(e["group"], show_sensitive))
    return "\n".join(lines).rstrip("\n") + "\n"


def _prices_line(rows: Sequence[Mapping[str, Any]]) -> str:
    sources = sorted(
        {
            (est["price_source"], est["prices_date"])
            for c in rows
            for est in ((c.get("cost") or {}).get("after"), (c.get("cost") or {}).get("before"))
            if est is not None
        }
    )
    if not sources:
        return ""
    used = ", ".join(f"{_source_word(s)} of {d}" for s, d in sources)
    return (
        f"<sub>Prices: {escape(used)} (USD list prices). A job bills while it runs; "
        "“up to” is its rate until `scheduling.timeout`.</sub>"
    )


def _source_word(source: str) -> str:
    return "planner's bundled prices" if source == "bundled" else f"price file {os.path.basename(source)}"


def _generic(warning: str, change: Mapping[str, Any]) -> str:
    """A warning about the row's own job, worded so that the same warning for many jobs reads once."""
    job = change["job"]
    if job is None or job["name"] not in warning:
        return warning
    return warning.replace(job["name"], "its job")


def _once(items: Sequence[tuple[str, str]]) -> list[str]:
    """Each distinct text once; the jobs it concerns listed before it (three, then how many more)."""
    by_text: dict[str, list[str]] = {}
    for address, text in items:
        who = by_text.setdefault(text, [])
        if address and address not in who:
            who.append(address)
    out = []
    for text, who in by_text.items():
        if not who:
            out.append(escape(text))
            continue
        names = ", ".join(code(a) for a in who[:3]) + (f" and {len(who) - 3} more" if len(who) > 3 else "")
        out.append(f"{names}: {escape(text)}")
    if len(out) > MAX_ALERT_ITEMS:
        rest = len(out) - MAX_ALERT_ITEMS
        out = [*out[:MAX_ALERT_ITEMS], f"{rest} more (`planner plan` in text lists every one)"]
    return out


def _cells(group: Sequence[Mapping[str, Any]]) -> list[str]:
    first = group[0]
    symbol = code(ACTION_SYMBOLS[first["action"]])
    resources = escape(resources_text(shown_estimate(first)))
    where = f"{code(first['project'], cell=True)} / {code(first['location'], cell=True)}"
    cost = cost_text(first)
    if len(group) > 1:
        label = group_label(group)
        name = f"{code(label, cell=True)} ×{len(group)}" if label else f"{len(group)} jobs"
        each = escape(f"each {cost}") if cost else ""
        return [symbol, name, escape(f"create {len(group)} jobs (a sweep)"), resources, each, where, ""]
    address = code(first["address"], cell=True)
    return [symbol, address, escape(_change_cell(first)), resources, escape(cost), where, _console_cell(first)]


def _change_cell(change: Mapping[str, Any]) -> str:
    action = change["action"]
    job = change["job"]
    if action == "replace":
        phrases = change_phrases(change)
        if phrases:
            return "replace: " + ", ".join(phrases)
        return f"replace ({change['reason']})"
    if action in ("delete", "cancel") and job is not None:
        return f"{action} ({state_word(job['state'])}; {change['reason']})"
    return f"{action} ({change['reason']})"


def _console_cell(change: Mapping[str, Any]) -> str:
    job = change["job"]
    if job is None or change["action"] == "create":
        return ""
    url = console_url(job["name"])
    label = code(short_job(job["name"]), cell=True)
    return f"[{label}]({url})" if url else label


def _budgeted_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out: list[list[str]] = []
    used = 0
    for row in rows:
        size = sum(len(cell) + 3 for cell in row) + 2
        if used + size > TABLE_BUDGET:
            break
        out.append(list(row))
        used += size
    lines = table(head, out)
    if len(out) < len(rows):
        left = len(rows) - len(out)
        lines += [
            "",
            f"{left} more {'row' if left == 1 else 'rows'} left out to stay within GitHub's comment limit "
            "(`planner plan --format json` lists every change).",
        ]
    return lines


def _group_details(group: Sequence[Mapping[str, Any]], show_sensitive: bool) -> list[str]:
    """One details block per row of the table: a sweep shows its jobs, what differs, and one spec."""
    if len(group) == 1:
        return _details(group[0], show_sensitive)
    first = group[0]
    name = group_label(group) or f"{len(group)} jobs"
    summary = (
        f"<code>{html.escape(ACTION_SYMBOLS['create'])}</code> <b>{html.escape(name)}</b> "
        f"×{len(group)} will be created (a sweep)"
    )
    shown = ", ".join(code(c["address"]) for c in group[:SWEEP_NAMES])
    if len(group) > SWEEP_NAMES:
        shown += f" and {len(group) - SWEEP_NAMES} more"
    body = [f"- jobs: {shown}"]
    varying = _varying([c["after"] or {} for c in group])
    if varying:
        body.append(f"- they differ in: {', '.join(code(p) for p in varying[:SWEEP_NAMES])}")
    body.append(f"- the spec of {code(first['address'])}:")
    body += ["", *diff_fence(spec_lines(first["after"], show_sensitive=show_sensitive))]
    return details(summary, body)


def _varying(specs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The leaf paths whose values are not the same in every spec (displayName aside)."""
    values: dict[str, set[str]] = {}
    present: dict[str, int] = {}
    for spec in specs:
        for path, _parts, value in leaves("", [], spec):
            values.setdefault(path, set()).add(repr(value))
            present[path] = present.get(path, 0) + 1
    return sorted(p for p in values if p != "displayName" and (len(values[p]) > 1 or present[p] < len(specs)))


def _details(change: Mapping[str, Any], show_sensitive: bool) -> list[str]:
    action = change["action"]
    summary = change_summary(change)
    body = []
    if change["steps"]:
        body.append(f"- steps: {escape(steps_text(change))}")
    cost = change.get("cost") or {}
    before = cost.get("before")
    if action == "replace" and before is not None:
        body.append(f"- was: {escape(resources_text(before))}")
    body += change_diff(change, show_sensitive)
    return details(summary, body or ["- nothing to show"])
