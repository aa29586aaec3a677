"""The markdown view: plans and drift reports for pull-request comments and $GITHUB_STEP_SUMMARY.

A summary table first, then one collapsible `<details>` block per job with its diff.
Rendered from the same JSON documents as the text view, with its line builders;
every piece of free text is escaped for the table, HTML or code context it lands in.
GitHub refuses comments over 65,536 characters, so once the table is written the
per-job details stop at DETAILS_BUDGET characters and a line says how many were left out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from planner.render.style import ACTION_SYMBOLS
from planner.render.sweeps import group_rows
from planner.render.text import (
    NO_CHANGES,
    changed_rows,
    counts_line,
    coverage_line,
    drift_label,
    drift_line,
    drift_summary,
    drifting_items,
    field_lines,
    header,
    noted_rows,
    released_items,
    short_job,
    spec_lines,
    state_word,
    steps_text,
    summary_extras,
)

# Characters that would start markdown syntax (or end a table cell) inside inline text.
_MD_SPECIAL: Final = re.compile(r"([\\`*_\[\]|~])")
_BACKTICKS: Final = re.compile(r"`+")
_EMPTY_CELL: Final = "—"

# Leaves room under GitHub's 65,536-character comment limit for what a workflow wraps around it.
DETAILS_BUDGET: Final = 60_000


def escape(text: str) -> str:
    """Inline markdown text that renders literally, also inside a table cell."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def code(text: str, *, cell: bool = False) -> str:
    """An inline code span holding text literally; in a table cell `|` still needs its backslash."""
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    if cell:
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def fenced(lines: Sequence[str], language: str) -> list[str]:
    """A fenced code block longer than any backtick run inside it."""
    longest = max((len(m) for line in lines for m in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", *lines, fence]


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Cells are inserted as given: escape them first."""
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cell or _EMPTY_CELL for cell in row) + " |" for row in rows]
    return out


def alert(kind: str, items: Sequence[str]) -> list[str]:
    """A GitHub alert (`> [!WARNING]`) with one list item per entry; items already escaped."""
    return [f"> [!{kind}]", *(f"> - {item}" for item in items)]


def details(summary_html: str, body: Sequence[str]) -> list[str]:
    # The blank lines let GitHub render the markdown inside the HTML block.
    return [f"<details><summary>{summary_html}</summary>", "", *body, "", "</details>"]


def diff_fence(lines: Sequence[tuple[str, str]]) -> list[str]:
    return fenced([f"{symbol} {text}" for symbol, text in lines], "diff")


def change_summary(change: Mapping[str, Any]) -> str:
    """The `<summary>` of a change's details block: symbol, address, what happens and why."""
    return (
        f"<code>{html.escape(ACTION_SYMBOLS[change['action']])}</code> <b>{html.escape(change['address'])}</b> "
        f"{html.escape(header(change).removeprefix(change['address'] + ' '))}"
    )


def change_diff(change: Mapping[str, Any], show_sensitive: bool) -> list[str]:
    """A blank line and the change's diff (a create's whole spec), or nothing when there is none."""
    if change["action"] == "create":
        diff = spec_lines(change["after"], show_sensitive=show_sensitive)
    else:
        diff = field_lines(change["changes"], split=True, show_sensitive=show_sensitive)
    return ["", *diff_fence(diff)] if diff else []


def budgeted(
    before: Sequence[str], entries: Iterable[Mapping[str, Any]], block: Callable[[Mapping[str, Any]], list[str]]
) -> list[str]:
    """One details block per entry while the document stays within DETAILS_BUDGET characters."""
    used = sum(len(line) + 1 for line in before)
    out: list[str] = []
    left_out = 0
    for entry in entries:
        if left_out:
            left_out += 1
            continue
        lines = [*block(entry), ""]
        size = sum(len(line) + 1 for line in lines)
        if used + size > DETAILS_BUDGET:
            left_out = 1
            continue
        out += lines
        used += size
    if left_out:
        jobs = "job is" if left_out == 1 else "jobs are"
        out += [f"Details of {left_out} more {jobs} left out to keep this comment within GitHub's size limit.", ""]
    return out


# -- plan --------------------------------------------------------------------------------------


def render_plan_markdown(doc: Mapping[str, Any], *, show_sensitive: bool = False) -> str:
    rows = changed_rows(doc)
    lines = [f"## planner plan: workspace {code(doc['workspace'])}", ""]
    if doc["targets"]:
        targets = ", ".join(code(t) for t in doc["targets"])
        lines += [f"Targeting {targets} (other jobs are not planned).", ""]
    if rows:
        lines += table(("", "Address", "Action", "Reason", "Job"), [_row(c) for c in group_rows(rows)])
        lines += ["", f"**{counts_line(doc)}**", ""]
        unchanged = len(doc["resource_changes"]) - len(rows)
        if unchanged:
            lines += [f"{unchanged} unchanged {'job' if unchanged == 1 else 'jobs'} not listed.", ""]
    else:
        lines += [f"**{NO_CHANGES}**", ""]
    warnings = [f"{code(c['address'])}: {escape(w)}" for c in rows for w in c["warnings"]]
    warnings += [escape(w) for w in doc["warnings"]]
    if warnings:
        lines += [*alert("WARNING", warnings), ""]
    notes = [f"{code(c['address'])}: {escape(n)}" for c in noted_rows(doc) for n in c["notes"]]
    if notes:
        lines += [*alert("NOTE", notes), ""]
    lines += budgeted(lines, rows, lambda c: _details(c, show_sensitive))
    return "\n".join(lines).rstrip("\n") + "\n"


def _row(change: Mapping[str, Any]) -> list[str]:
    action = change["action"]
    changes = change["changes"]
    reason = change["reason"]
    if changes:
        reason += f" ({len(changes)} {'field' if len(changes) == 1 else 'fields'})"
    job = change["job"]
    job_cell = ""
    if job is not None and action != "create":
        job_cell = f"{code(short_job(job['name']), cell=True)} {escape(state_word(job['state']))}"
    return [code(ACTION_SYMBOLS[action]), code(change["address"], cell=True), escape(action), escape(reason), job_cell]


def _details(change: Mapping[str, Any], show_sensitive: bool) -> list[str]:
    action = change["action"]
    summary = change_summary(change)
    body = [f"- project {code(change['project'])}, location {code(change['location'])}"]
    job = change["job"]
    if job is not None:
        body.append(f"- job {code(job['name'])} ({code(job['state']) if job['state'] else 'state unknown'})")
    if change["steps"]:
        body.append(f"- steps: {escape(steps_text(change))}")
    extras = summary_extras(change)
    if action == "replace" and not change["changes"]:
        body.append("- spec unchanged: the job is created again")
    elif extras and change["changes"]:
        body.append(f"- {escape(extras[0])}")
    body += [f"- Note: {escape(n)}" for n in change["notes"]]
    body += [f"- **Warning:** {escape(w)}" for w in change["warnings"]]
    body += change_diff(change, show_sensitive)
    return details(summary, body)


# -- drift -------------------------------------------------------------------------------------


def render_drift_markdown(doc: Mapping[str, Any], *, show_sensitive: bool = False) -> str:
    items = drifting_items(doc)
    lines = [f"## planner drift: workspace {code(doc['workspace'])}", ""]
    if items:
        rows = [
            [
                escape(drift_label(i["kind"])),
                code(i["address"], cell=True) if i["address"] else "",
                code(short_job(i["job_name"]), cell=True) if i["job_name"] else "",
                escape(i["detail"]),
            ]
            for i in items
        ]
        lines += [*table(("Kind", "Address", "Job", "Detail"), rows), ""]
    lines += [f"**{drift_line(doc)}**", ""]
    lines += [f"Summary: {escape(drift_summary(doc))}  ", f"{escape(coverage_line(doc))}"]
    if doc["ignored"]:
        lines[-1] += "  "
        lines.append("Ignored: " + ", ".join(code(p) for p in doc["ignored"]))
    lines.append("")
    lines += budgeted(lines, items, lambda i: _drift_details(i, show_sensitive))
    released = released_items(doc)
    if released:
        lines += ["### Released by planner (not drift)", ""]
        rows = [
            [code(i["address"] or "", cell=True), code(short_job(i["job_name"]), cell=True), escape(i["detail"])]
            for i in released
        ]
        lines += [*table(("Address", "Job", "Detail"), rows), ""]
    pending = doc["config_pending"]
    if pending:
        lines += ["### Config not yet applied (not drift)", ""]
        lines += [
            *table(("Address", "Detail"), [[code(p["address"], cell=True), escape(p["detail"])] for p in pending]),
            "",
        ]
        for p in pending:
            if p["changes"]:
                summary = f"<b>{html.escape(p['address'])}</b> {html.escape(p['detail'])}"
                diff = field_lines(p["changes"], split=True, show_sensitive=show_sensitive)
                lines += [*details(summary, diff_fence(diff)), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _drift_details(item: Mapping[str, Any], show_sensitive: bool) -> list[str]:
    label = drift_label(item["kind"])
    who = item["address"] or (short_job(item["job_name"]) if item["job_name"] else "?")
    summary = f"{html.escape(label)}: <b>{html.escape(who)}</b> {html.escape(item['detail'])}"
    body = [f"- project {code(item['project'])}, location {code(item['location'])}"]
    if item["job_name"]:
        body.append(f"- job {code(item['job_name'])}")
    states = []
    if item["recorded_state"]:
        states.append(f"recorded {code(item['recorded_state'])}")
    if item["live_state"]:
        states.append(f"live {code(item['live_state'])}")
    if states:
        body.append(f"- state: {', '.join(states)}")
    if item["changes"]:
        body += ["", *diff_fence(field_lines(item["changes"], split=True, show_sensitive=show_sensitive))]
    return details(summary, body)
