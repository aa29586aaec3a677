"""Views of a status report: text (one table per project/location), markdown and JSON.

Pure functions over `status_to_json(report)`, the one document every rendering is made
from (as the plan and drift views are). Cost so far is hours run × the price book's rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from planner.pricing.cost import usd
from planner.render.jobstate import duration_text, paint_state, state_label
from planner.render.json_view import dump
from planner.render.style import Style
from planner.status import FAILURE_STATES, FORMAT_VERSION, MISSING, StatusReport


def status_to_json(report: StatusReport) -> dict[str, Any]:
    """The status report as a versioned document (schemas/status.schema.json)."""
    locations: dict[tuple[str, str], int] = {pair: 0 for pair in report.listed}
    for job in report.jobs:
        locations[(job.project, job.location)] = locations.get((job.project, job.location), 0) + 1
    return {
        "format_version": FORMAT_VERSION,
        "planner_version": report.planner_version,
        "workspace": report.workspace,
        "created_at": report.created_at,
        "summary": report.summary(),
        "locations": [{"project": p, "location": loc, "jobs": n} for (p, loc), n in sorted(locations.items())],
        "jobs": [
            {
                "address": job.address,
                "name": job.name or None,
                "job_id": job.job_id or None,
                "project": job.project,
                "location": job.location,
                "state": job.state,
                "display_name": job.display_name,
                "create_time": job.create_time or None,
                "start_time": job.start_time or None,
                "end_time": job.end_time or None,
                "run_seconds": None if job.run_seconds is None else round(job.run_seconds, 3),
                "machine": job.machine,
                "error": job.error or None,
                "console_url": job.console_url or None,
                "in_state": job.in_state,
                "hourly_usd": None if job.hourly_usd is None else round(job.hourly_usd, 6),
                "cost_usd": None if job.cost_usd is None else round(job.cost_usd, 6),
                "no_price": job.no_price or None,
            }
            for job in report.jobs
        ],
    }


def render_status(report: StatusReport, fmt: str, *, color: bool = False) -> str:
    doc = status_to_json(report)
    if fmt == "json":
        return dump(doc)
    if fmt == "markdown":
        return render_status_markdown(doc)
    if fmt == "text":
        return render_status_text(doc, color=color)
    raise ValueError(f"unknown status format {fmt!r}")


def summary_line(doc: Mapping[str, Any]) -> str:
    summary = doc["summary"]
    total = sum(summary.values())
    if not total:
        return "No managed jobs."
    parts = ", ".join(f"{n} {state_label(s).lower().replace('_', ' ')}" for s, n in summary.items())
    return f"{total} job{'s' if total != 1 else ''}: {parts}."


def _by_location(doc: Mapping[str, Any]) -> list[tuple[str, str, list[Mapping[str, Any]]]]:
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for job in doc["jobs"]:
        groups.setdefault((job["project"], job["location"]), []).append(job)
    return [(p, loc, jobs) for (p, loc), jobs in sorted(groups.items())]


def _address(job: Mapping[str, Any]) -> str:
    address = job["address"] or "-"
    return address if job["in_state"] or job["state"] == "NOT_CREATED" else f"{address} (not in state)"


def cost_text(job: Mapping[str, Any]) -> str:
    """`$12.34 ($3.10/h)` so far; `no price` when the price book has no rate; `-` before a job runs."""
    if job["hourly_usd"] is None:
        return "no price" if job["no_price"] else "-"
    spent = "$0.00" if job["cost_usd"] is None else usd(job["cost_usd"])
    return f"{spent} ({usd(job['hourly_usd'])}/h)"


def render_status_text(doc: Mapping[str, Any], *, color: bool = False) -> str:
    style = Style(color)
    lines = [f'Status of workspace "{doc["workspace"]}"', ""]
    headers = ("ADDRESS", "STATE", "TIME", "MACHINE", "COST", "JOB ID", "CONSOLE")
    for project, location, jobs in _by_location(doc):
        lines.append(style.bold(f"{project} / {location} ({len(jobs)} job{'s' if len(jobs) != 1 else ''})"))
        rows = [
            (
                _address(j),
                state_label(j["state"]),
                duration_text(j["run_seconds"]),
                j["machine"] or "-",
                cost_text(j),
                j["job_id"] or "-",
                j["console_url"] or "",
            )
            for j in jobs
        ]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        for job, row in zip(jobs, rows, strict=True):
            cells = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
            cells[1] = paint_state(style, job["state"], cells[1])
            lines.append("  " + "  ".join(cells).rstrip())
            if job["error"]:
                lines.append(f"      {style.red('error:')} {job['error']}")
        lines.append("")
    lines.append(style.bold(summary_line(doc)))
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_status_markdown(doc: Mapping[str, Any]) -> str:
    lines = [f"### planner status: `{doc['workspace']}`", "", summary_line(doc), ""]
    for project, location, jobs in _by_location(doc):
        lines += [f"#### `{project}` / `{location}`", ""]
        lines.append("| Address | State | Time | Machine | Cost so far | Job | Error |")
        lines.append("|---|---|---|---|---|---|---|")
        for j in jobs:
            job = f"[{j['job_id']}]({j['console_url']})" if j["console_url"] else "-"
            lines.append(
                f"| `{_md(_address(j))}` | {state_label(j['state'])} | {duration_text(j['run_seconds'])} | "
                f"{_md(j['machine'] or '-')} | {_md(cost_text(j))} | {job} | {_md(j['error'] or '')} |"
            )
        lines.append("")
    return "\n".join(lines)


def watch_footer(report: StatusReport, *, when: str, interval: str, watching: float) -> str:
    """The last line of a `status --watch` screen: jobs ended/total, failures, time watched, when it was read."""
    total = len(report.jobs)
    ended = sum(1 for j in report.jobs if j.terminal)
    failed = sum(1 for j in report.jobs if j.state in FAILURE_STATES or j.state == MISSING)
    bad = f", {failed} failed" if failed else ""
    return (f"{ended}/{total} ended{bad} · watching {duration_text(watching)} · read at {when} every {interval}"
            " · Ctrl-C stops")


def transition_lines(
    changes: Sequence[tuple[Any, Any]], *, when: str, color: bool = False
) -> list[str]:
    """Plain lines for `status --watch` without a terminal: `HH:MM:SS address: OLD → NEW`."""
    style = Style(color)
    out = []
    for before, after in changes:
        was = state_label(before.state) if before is not None else "-"
        line = f"{when} {after.address or after.job_id}: {was} → {paint_state(style, after.state)}"
        if after.error:
            line += f" ({after.error})"
        out.append(line)
    return out
