"""A minimal Cloud Logging `v2/entries:list` for the emulator's jobs: synthetic lines per state change and replica.

It owns the log lines a job "writes" and the endpoint that lists them. Like job states
(see `lifecycle.job_view`), lines are derived from a job's transition times at the asked-for
moment, so no thread writes them and a follower sees new lines appear as the clock runs:
one service line per state change, and per replica (`workerpool0-0`, …, at most
`MAX_REPLICAS` per pool) a start line, three progress lines while running and an exit line.

Decisions where the emulator is smaller than the real service:
- The filter language is a conjunction (`AND` or whitespace) of `FIELD OP VALUE` terms on
  `resource.type`, `resource.labels.job_id|task_name|project_id`, `logName`, `severity`
  and `timestamp` with `=`, `!=`, `<`, `<=`, `>`, `>=`; anything else is 400 INVALID_ARGUMENT.
- `resourceNames` must name projects (`projects/P`).

As documented for ListLogEntriesRequest (https://cloud.google.com/java/docs/reference/
google-cloud-logging/latest/com.google.logging.v2.ListLogEntriesRequestOrBuilder, retrieved
2026-12-01): `orderBy` is `timestamp asc` (default) or `timestamp desc`, entries with equal
timestamps come in `insertId` order, and `pageSize` defaults to 50; a negative one or one
over 1000 is rejected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from planner.emulator import wire
from planner.emulator.filter import FilterError, parse_timestamp
from planner.emulator.lifecycle import JobRecord, format_timestamp
from planner.emulator.store import JobStore
from planner.emulator.tokens import PageTokens
from planner.emulator.wire import ApiFailure

PATH: Final = "/v2/entries:list"
RPC: Final = "logging.entries.list"
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000
MAX_REPLICAS: Final = 4
PROGRESS_LINES: Final = 3
SEVERITIES: Final = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
_BODY_FIELDS: Final = frozenset({"resourceNames", "filter", "orderBy", "pageSize", "pageToken", "projectIds"})
_FIELDS: Final = {
    "resource.type": "type",
    "resource.labels.job_id": "job_id",
    "resource.labels.task_name": "task_name",
    "resource.labels.project_id": "project_id",
    "logName": "log_name",
    "log_name": "log_name",
    "severity": "severity",
    "timestamp": "timestamp",
}
_TERM: Final = re.compile(r'\s*([A-Za-z_.]+)\s*(!=|>=|<=|=|>|<)\s*("(?:[^"\\]|\\.)*"|[^\s()"]+)\s*')


def is_logging_path(path: str) -> bool:
    return path.rstrip("/") == PATH


@dataclass(frozen=True)
class _Line:
    time: float
    task: str  # "service" or "workerpool0-0"
    severity: str
    text: str
    seq: int


def job_lines(job: JobRecord, now: float) -> list[_Line]:
    """The lines a job has written by `now`, oldest first (deterministic: same job and time, same lines)."""
    events: list[tuple[float, str, str, str]] = [(job.created, "service", "INFO", "Waiting for job to be provisioned.")]
    events.append((job.queued_until, "service", "INFO", "Job is preparing."))
    start = job.pending_until
    events.append((start, "service", "INFO", "Job is running."))
    tasks = _tasks(job.spec)
    run = job.running_until - start
    image = _image(job.spec)
    for task in tasks:
        events.append((start, task, "INFO", f"Started replica {task} (image {image})."))
        for k in range(1, PROGRESS_LINES + 1):
            events.append((start + run * k / (PROGRESS_LINES + 1), task, "INFO", f"{task}: step {k}/{PROGRESS_LINES}"))
    failed = job.outcome == "JOB_STATE_FAILED"
    for task in tasks:
        if failed and task == tasks[0]:
            events.append((job.running_until, task, "ERROR", f"Replica {task} exited with a non-zero status of 1."))
        else:
            events.append((job.running_until, task, "INFO", f"Replica {task} exited with status 0."))
    final = "Job failed." if failed else "Job completed successfully."
    events.append((job.running_until, "service", "ERROR" if failed else "INFO", final))
    stop_at: float | None = None
    tail: list[tuple[float, str, str, str]] = []
    if job.forced_state is not None and job.forced_at is not None:
        stop_at = job.forced_at
        tail = [(job.forced_at, "service", "NOTICE", f"Job state set to {job.forced_state}.")]
    elif job.cancel_at is not None and job.cancel_done is not None:
        stop_at = job.cancel_at
        tail = [
            (job.cancel_at, "service", "NOTICE", "Job is being cancelled."),
            (job.cancel_done, "service", "NOTICE", "Job was cancelled."),
        ]
    if stop_at is not None:
        events = [e for e in events if e[0] < stop_at] + tail
    return [_Line(t, task, sev, text, i) for i, (t, task, sev, text) in enumerate(events) if t <= now]


def _tasks(spec: Mapping[str, Any]) -> list[str]:
    pools = (spec.get("jobSpec") or {}).get("workerPoolSpecs") or []
    tasks = []
    for i, pool in enumerate(pools):
        if not isinstance(pool, Mapping) or not pool:
            continue
        try:
            count = int(pool.get("replicaCount") or 1)
        except (TypeError, ValueError):
            count = 1
        tasks += [f"workerpool{i}-{r}" for r in range(min(max(count, 0), MAX_REPLICAS))]
    return tasks or ["workerpool0-0"]


def _image(spec: Mapping[str, Any]) -> str:
    pools = (spec.get("jobSpec") or {}).get("workerPoolSpecs") or []
    for pool in pools:
        if isinstance(pool, Mapping):
            uri = (pool.get("containerSpec") or {}).get("imageUri") or (pool.get("pythonPackageSpec") or {}).get(
                "executorImageUri"
            )
            if uri:
                return str(uri)
    return "?"


def entry(job: JobRecord, line: _Line) -> dict[str, Any]:
    """One LogEntry as Cloud Logging's v2 REST API writes it."""
    log = "workerpool" if line.task != "service" else "service"
    return {
        "logName": f"projects/{job.project}/logs/{log}",
        "resource": {
            "type": "ml_job",
            "labels": {"job_id": job.id, "project_id": job.project, "task_name": line.task},
        },
        "timestamp": format_timestamp(line.time),
        "receiveTimestamp": format_timestamp(line.time),
        "severity": line.severity,
        "insertId": f"{job.id}-{line.seq:04d}",
        "labels": {"ml.googleapis.com/endpoint": "", "ml.googleapis.com/job_id/log_area": "root"},
        "textPayload": line.text,
    }


# -- the filter ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Term:
    field: str
    op: str
    value: str


def parse_filter(text: str) -> list[_Term]:
    """The supported subset of the logging query language (see the module docstring); 400 otherwise."""
    terms: list[_Term] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        match = _TERM.match(text, pos)
        if match is None or match.group(1) not in _FIELDS:
            raise _unsupported(text)
        raw = match.group(3)
        value = json.loads(raw) if raw.startswith('"') else raw
        terms.append(_Term(_FIELDS[match.group(1)], match.group(2), value))
        pos = match.end()
        rest = text[pos:]
        if rest.startswith("AND ") or rest.startswith("AND\t"):
            pos += 4
        elif rest.startswith(("OR ", "NOT ")):
            raise _unsupported(text)
    return terms


def _unsupported(text: str) -> ApiFailure:
    message = f"Unsupported filter for the emulator: {text!r} (use FIELD OP VALUE terms joined by AND)"
    return wire.invalid_argument([("filter", message)], prefix=message)


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _matcher(terms: Iterable[_Term]) -> Callable[[Mapping[str, Any], float], bool]:
    prepared: list[tuple[str, str, Any]] = []
    for term in terms:
        value: Any = term.value
        if term.field == "timestamp":
            try:
                value = parse_timestamp(term.value)
            except FilterError as exc:
                raise wire.invalid_argument([("filter", str(exc))], prefix=f"Invalid filter: {exc}") from None
        elif term.field == "severity":
            if term.value.upper() not in SEVERITIES:
                raise wire.invalid_argument([("filter", f"Unknown severity {term.value!r}.")])
            value = SEVERITIES.index(term.value.upper())
        prepared.append((term.field, term.op, value))

    def matches(e: Mapping[str, Any], at: float) -> bool:
        for field, op, value in prepared:
            if field == "timestamp":
                left: Any = at
            elif field == "severity":
                left = SEVERITIES.index(e["severity"])
            elif field == "type":
                left = e["resource"]["type"]
            elif field == "log_name":
                left = e["logName"]
            else:
                left = e["resource"]["labels"][field]
            if not _compare(left, op, value):
                return False
        return True

    return matches


# -- the endpoint ----------------------------------------------------------------------------------


def answer(
    store: JobStore, tokens: PageTokens, clock: Callable[[], float], method: str, body: Any
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of one `POST /v2/entries:list`."""
    if method != "POST":
        raise ApiFailure("METHOD_NOT_ALLOWED", f"The method {method} is not allowed for {PATH}; allowed: POST.",
                         headers={"Allow": "POST"})
    if not isinstance(body, dict):
        raise wire.invalid_argument([("", "Invalid JSON payload received. Expected an object.")])
    unknown = sorted(set(body) - _BODY_FIELDS)
    if unknown:
        message = f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'
        raise wire.invalid_argument([(unknown[0], message)], prefix=message)
    names = list(body.get("resourceNames") or []) + [f"projects/{p}" for p in body.get("projectIds") or []]
    projects = []
    for name in names:
        match = re.fullmatch(r"projects/([^/]+)", str(name))
        if match is None:
            raise wire.invalid_argument([("resource_names", f"Unsupported resource name {name!r} (projects/P only).")])
        projects.append(match.group(1))
    if not projects:
        raise wire.invalid_argument([("resource_names", "At least one resource name is required.")])
    filter_text = str(body.get("filter") or "")
    terms = parse_filter(filter_text)
    order = " ".join(str(body.get("orderBy") or "timestamp asc").split()).lower()
    if order not in ("timestamp asc", "timestamp desc"):
        raise wire.invalid_argument([("order_by", f"Unsupported orderBy {body.get('orderBy')!r}.")])
    size = body.get("pageSize") or DEFAULT_PAGE_SIZE
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_PAGE_SIZE:
        raise wire.invalid_argument([("page_size", f"Invalid page size {size!r}: at most {MAX_PAGE_SIZE}.")])
    binding = f"logs {','.join(projects)} {order}"
    token = str(body.get("pageToken") or "")
    offset = tokens.read(token, binding, filter_text)[1] if token else 0
    job_ids = {t.value for t in terms if t.field == "job_id" and t.op == "="}
    now = clock()
    matches = _matcher(terms)
    found: list[tuple[float, str, dict[str, Any]]] = []
    for project in projects:
        for job in store.jobs_of(project, job_ids or None):
            for line in job_lines(job, now):
                e = entry(job, line)
                if matches(e, line.time):
                    found.append((line.time, e["insertId"], e))
    found.sort(key=lambda item: item[:2], reverse=order == "timestamp desc")
    page = found[offset : offset + size]
    out: dict[str, Any] = {}
    if page:
        out["entries"] = [item[2] for item in page]
    if offset + size < len(found):
        out["nextPageToken"] = tokens.issue(binding, filter_text, (0.0, offset + size))
    return 200, out
