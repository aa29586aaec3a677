"""Status: what each managed job is doing now, read from one labelled listing per (project, location).

It owns the status model (`JobStatus`, `StatusReport`), the listing that feeds it and the
status facts derived from a job (run time, machine summary, console link). Read only:
no lock, no state write, no GET per job (only jobs in state that no listing returned are
looked up one by one, as refresh does). Views are in `planner.render.status_view`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from planner import __version__, apimodel
from planner.canonical import canonical_spec
from planner.config.model import Desired
from planner.errors import ApiError, UsageError
from planner.pricing.cost import estimate
from planner.pricing.prices import PriceBook
from planner.refresh import LIST_PAGE_SIZE, JobReader, LiveJob, live_job, managed_filter
from planner.state.model import State

FORMAT_VERSION: Final = "1.0"
# What a status row needs (a field mask cannot reach inside the repeated worker pools, so all of
# them is asked for; env values in them are never shown).
STATUS_READ_MASK: Final = (
    "name,displayName,state,labels,createTime,startTime,endTime,updateTime,error,jobSpec.workerPoolSpecs,"
    "jobSpec.scheduling,jobSpec.persistentResourceId"
)
CONSOLE_URL: Final = "https://console.cloud.google.com/vertex-ai/locations/{location}/training/{job_id}?project={project}"
# Pseudo-states of rows that have no live job.
MISSING: Final = "MISSING"  # in state, but the job is gone
NOT_CREATED: Final = "NOT_CREATED"  # in the configuration, never applied
SUCCESS_STATES: Final = frozenset({"JOB_STATE_SUCCEEDED"})
FAILURE_STATES: Final = frozenset({"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"})


def console_url(project: str, location: str, job_id: str) -> str:
    """The Cloud console page of a CustomJob."""
    return CONSOLE_URL.format(project=project, location=location, job_id=job_id)


def job_id_of(name: str) -> str:
    return name.rsplit("/", 1)[-1] if name else ""


def parse_state_filter(text: str) -> str:
    """A --job-state value: `running`, `RUNNING` or `JOB_STATE_RUNNING` (also MISSING, NOT_CREATED)."""
    word = text.strip().upper().replace("-", "_")
    for candidate in (word, f"JOB_STATE_{word}"):
        if candidate in apimodel.JOB_STATES or candidate in (MISSING, NOT_CREATED):
            return candidate
    known = ", ".join(s.removeprefix("JOB_STATE_") for s in apimodel.JOB_STATES if s != "JOB_STATE_UNSPECIFIED")
    raise UsageError(f"--job-state {text!r}: not a job state (one of {known}, MISSING, NOT_CREATED)")


def parse_time(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp as the API writes it; None if empty or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def machine_summary(resource: Mapping[str, Any]) -> str:
    """`n1-standard-8 + 1×NVIDIA_TESLA_T4`, one part per worker pool, `2×…` for more replicas."""
    pools = ((resource.get("jobSpec") or {}).get("workerPoolSpecs")) or []
    parts = []
    for pool in pools:
        if not isinstance(pool, Mapping) or not pool:  # an empty pool is a placeholder Vertex skips
            continue
        spec = pool.get("machineSpec") or {}
        text = str(spec.get("machineType") or "?")
        accelerator = spec.get("acceleratorType")
        if accelerator not in (None, "", 0, "ACCELERATOR_TYPE_UNSPECIFIED"):
            name = apimodel.enum_name(apimodel.ACCELERATOR_TYPES, accelerator) or str(accelerator)
            text += f" + {spec.get('acceleratorCount') or 1}×{name}"
        replicas = str(pool.get("replicaCount") or "1")
        parts.append(text if replicas == "1" else f"{replicas}×({text})")
    return ", ".join(parts)


@dataclass(frozen=True)
class JobStatus:
    """One row of the status table."""

    address: str | None
    name: str
    project: str
    location: str
    state: str  # JOB_STATE_* or MISSING / NOT_CREATED
    display_name: str = ""
    create_time: str = ""
    start_time: str = ""
    end_time: str = ""
    run_seconds: float | None = None  # how long it has run (active) or ran (terminal)
    machine: str = ""
    error: str = ""
    in_state: bool = True
    hourly_usd: float | None = None  # at the price book's rate; None: no price (see no_price)
    cost_usd: float | None = None  # hours run so far × hourly_usd
    no_price: str = ""  # why there is no rate ("no price for X in R in prices of D")

    @property
    def job_id(self) -> str:
        return job_id_of(self.name)

    @property
    def console_url(self) -> str:
        return console_url(self.project, self.location, self.job_id) if self.name else ""

    @property
    def terminal(self) -> bool:
        return self.state in apimodel.TERMINAL_STATES or self.state in (MISSING, NOT_CREATED)


@dataclass(frozen=True)
class StatusReport:
    workspace: str
    jobs: tuple[JobStatus, ...]
    listed: tuple[tuple[str, str], ...]
    created_at: str = ""
    planner_version: str = __version__

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self.jobs:
            counts[job.state] = counts.get(job.state, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def all_terminal(self) -> bool:
        return all(job.terminal for job in self.jobs)


@dataclass(frozen=True)
class StatusFilter:
    """Which rows to keep: address globs (any matches) and states (any equals); empty keeps all."""

    addresses: tuple[str, ...] = ()
    states: frozenset[str] = field(default_factory=frozenset)

    def keep(self, job: JobStatus) -> bool:
        if self.addresses and not any(fnmatch.fnmatchcase(job.address or "", p) for p in self.addresses):
            return False
        return not self.states or job.state in self.states


def list_managed(
    client: JobReader,
    pairs: Iterable[tuple[str, str]],
    workspace: str,
    *,
    read_mask: str | None = STATUS_READ_MASK,
    parallelism: int = 8,
) -> dict[str, LiveJob]:
    """Every job labelled for the workspace in these locations, by name: one paginated listing per pair."""
    ordered = sorted(set(pairs))
    if not ordered:
        return {}
    query = managed_filter(workspace)

    def one(pair: tuple[str, str]) -> list[LiveJob]:
        listing = client.list_jobs(pair[0], pair[1], filter=query, page_size=LIST_PAGE_SIZE, read_mask=read_mask)
        return [live_job(r, partial=True) for r in listing]

    found: dict[str, LiveJob] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(ordered))), thread_name_prefix="status") as pool:
        for jobs in pool.map(one, ordered):
            found.update((job.name, job) for job in jobs)
    return found


def _get_or_none(client: JobReader, name: str) -> LiveJob | None:
    try:
        return live_job(client.get_job(name), partial=True)
    except ApiError as err:
        if err.http_status == 404:
            return None
        raise


def _row(job: LiveJob, address: str | None, now: float, *, in_state: bool, spec: Mapping[str, Any] | None) -> JobStatus:
    resource = job.resource
    start = parse_time(str(resource.get("startTime", "")))
    end = parse_time(str(resource.get("endTime", "")))
    run: float | None = None
    if start is not None:
        run = max(0.0, (end if end is not None else now) - start)
    machine = machine_summary(resource) or (machine_summary(spec) if spec else "")
    return JobStatus(
        address=address,
        name=job.name,
        project=job.project,
        location=job.location,
        state=job.state,
        display_name=str(resource.get("displayName", "")),
        create_time=job.create_time,
        start_time=str(resource.get("startTime", "")),
        end_time=str(resource.get("endTime", "")),
        run_seconds=run,
        machine=machine,
        error=job.error_message,
        in_state=in_state,
    )


def read_status(
    client: JobReader,
    prior: State | None,
    workspace: str,
    *,
    now: float,
    desired: Desired | None = None,
    only: StatusFilter | None = None,
    created_at: str = "",
    prices: PriceBook | None = None,
) -> StatusReport:
    """The status of every job in state (and, with `desired`, of configured jobs never applied).

    Labelled jobs of the workspace that state does not know (left by a crash, or another
    copy of the configuration) are listed too, with `in_state` false; jobs state records as
    released (onRemove cancel/forget) are no longer planner's and are left out.
    """
    records = dict(prior.jobs) if prior is not None else {}
    released = frozenset(prior.released) if prior is not None else frozenset()
    pairs = {(r.project, r.location) for r in records.values()}
    if desired is not None:
        pairs.update((j.project, j.location) for j in desired.jobs.values())
    live = list_managed(client, pairs, workspace)
    unseen = sorted(r.name for r in records.values() if r.name not in live)
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="status-get") as pool:
        for name, job in zip(unseen, pool.map(lambda n: _get_or_none(client, n), unseen), strict=True):
            if job is not None:
                live[name] = job
    rows: list[JobStatus] = []
    claimed: set[str] = set()
    for address, record in sorted(records.items()):
        claimed.add(record.name)
        job = live.get(record.name)
        if job is None:
            rows.append(
                JobStatus(address, record.name, record.project, record.location, MISSING,
                          machine=machine_summary(record.spec))
            )
        else:
            rows.append(_row(job, address, now, in_state=True, spec=record.spec))
    for name, job in sorted(live.items()):
        if name not in claimed and name not in released and job.managed and job.workspace == workspace:
            rows.append(_row(job, job.address, now, in_state=False, spec=None))
    if desired is not None:
        for address, wanted in sorted(desired.jobs.items()):
            if address not in records:
                rows.append(
                    JobStatus(address, "", wanted.project, wanted.location, NOT_CREATED,
                              machine=machine_summary(wanted.body), in_state=False)
                )
    keep = only or StatusFilter()
    rows = [r for r in rows if keep.keep(r)]
    rows.sort(key=lambda r: (r.project, r.location, r.address or "~", r.name))
    if prices is not None:
        specs = {r.name: r.spec for r in records.values()}
        rows = [_priced(row, specs.get(row.name) or _live_spec(live.get(row.name)), prices) for row in rows]
    return StatusReport(workspace=workspace, jobs=tuple(rows), listed=tuple(sorted(pairs)), created_at=created_at)


def _live_spec(job: LiveJob | None) -> Mapping[str, Any] | None:
    return canonical_spec(job.resource) if job is not None else None


def _priced(row: JobStatus, spec: Mapping[str, Any] | None, prices: PriceBook) -> JobStatus:
    """The row with its rate and its cost so far (hours run × rate), from the job's canonical spec."""
    if spec is None or row.state in (MISSING, NOT_CREATED):
        return row
    est = estimate(spec, row.location, prices, canonical=True)
    if est.hourly_usd is None:
        return replace(row, no_price="; ".join(est.missing))
    spent = None if row.run_seconds is None else est.hourly_usd * row.run_seconds / 3600
    return replace(row, hourly_usd=est.hourly_usd, cost_usd=spent)


def state_changes(before: Sequence[JobStatus], after: Sequence[JobStatus]) -> list[tuple[JobStatus | None, JobStatus]]:
    """Rows whose state differs between two reports (or that are new), as (before, after) pairs."""
    old = {(r.address, r.name): r for r in before}
    changes: list[tuple[JobStatus | None, JobStatus]] = []
    for row in after:
        previous = old.get((row.address, row.name))
        if previous is None or previous.state != row.state:
            changes.append((previous, row))
    return changes

