"""A stored CustomJob and delete Operation and what each is at a given moment: the lifecycle
clock and the resources' proto3 JSON; keeping the records is `store`'s business.

A job's state is never stored as "current": each record keeps the absolute times of its
transitions (queued until, pending until, running until, cancel requested/finished, or a
state forced by a test), and `job_view` derives the state at `now` from an injectable clock,
so no background thread moves jobs along. An operation is in progress until its `done_at`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from planner import apimodel
from planner.emulator.wire import DELETE_METADATA_TYPE, EMPTY_TYPE

FAILED_OUTCOME_LABEL: Final = "emulator-outcome"
DELETE_OUTCOME_LABEL: Final = "emulator-delete"


def format_timestamp(seconds: float) -> str:
    """RFC 3339 in UTC with `Z` and 0, 3 or 6 fractional digits, as proto3 JSON writes it."""
    micros = round(seconds * 1_000_000)
    whole, frac = divmod(micros, 1_000_000)
    text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return text + "Z"
    if frac % 1000 == 0:
        return f"{text}.{frac // 1000:03d}Z"
    return f"{text}.{frac:06d}Z"


@dataclass
class JobRecord:
    """One CustomJob as stored: the user's spec plus the transition times its state derives from."""

    id: str
    project: str
    location: str
    spec: dict[str, Any]
    created: float
    queued_until: float
    pending_until: float
    running_until: float
    outcome: str  # JOB_STATE_SUCCEEDED | JOB_STATE_FAILED
    cancel_at: float | None = None
    cancel_done: float | None = None
    forced_state: str | None = None
    forced_at: float | None = None
    # Encoded answers memoised by the server, valid while the derived view is unchanged; not persisted.
    cache: dict[Any, tuple[JobView, bytes]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/customJobs/{self.id}"

    @property
    def sort_key(self) -> tuple[float, int]:
        # newest first, then the higher ID first: a deterministic total order
        return (-self.created, -int(self.id))

    def to_json(self) -> dict[str, Any]:
        data = dict(vars(self))  # shallow: only ever serialised, and asdict deep-copies slowly
        del data["cache"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        return cls(**data)


class JobView(NamedTuple):
    """A job's derived lifecycle at one moment, and the time until which it stays so.

    A NamedTuple, not a dataclass: list answers build and compare one per job per request.
    """

    state: str
    update_time: float
    start_time: float | None
    end_time: float | None
    error: dict[str, Any] | None
    until: float = math.inf


def job_view(job: JobRecord, now: float) -> JobView:
    start = job.pending_until
    if job.forced_state is not None and job.forced_at is not None:
        at = job.forced_at
        terminal = job.forced_state in apimodel.TERMINAL_STATES
        error = None
        if job.forced_state == "JOB_STATE_FAILED":
            error = _failure_error()
        elif job.forced_state == "JOB_STATE_CANCELLED":
            error = _cancel_error()
        started = start if start <= at else (at if job.forced_state == "JOB_STATE_RUNNING" else None)
        return JobView(job.forced_state, at, started, at if terminal else None, error)
    if job.cancel_at is not None and job.cancel_done is not None and now >= job.cancel_at:
        started_before = start if start <= job.cancel_at else None
        if now < job.cancel_done:
            return JobView("JOB_STATE_CANCELLING", job.cancel_at, started_before, None, None, job.cancel_done)
        return JobView("JOB_STATE_CANCELLED", job.cancel_done, started_before, job.cancel_done, _cancel_error())
    cancel = job.cancel_at if job.cancel_at is not None else math.inf
    if now < job.queued_until:
        return JobView("JOB_STATE_QUEUED", job.created, None, None, None, min(job.queued_until, cancel))
    if now < job.pending_until:
        return JobView("JOB_STATE_PENDING", job.queued_until, None, None, None, min(job.pending_until, cancel))
    if now < job.running_until:
        return JobView("JOB_STATE_RUNNING", start, start, None, None, min(job.running_until, cancel))
    error = _failure_error() if job.outcome == "JOB_STATE_FAILED" else None
    return JobView(job.outcome, job.running_until, start, job.running_until, error)


def _cancel_error() -> dict[str, Any]:
    return {"code": 1, "message": "CustomJob was cancelled."}


def _failure_error() -> dict[str, Any]:
    return {
        "code": 13,
        "message": "The replica workerpool0-0 exited with a non-zero status of 1 "
        "(emulated failure: the job carries the label emulator-outcome=failed).",
    }


def encode_job(job: JobRecord, now: float, view: JobView | None = None) -> dict[str, Any]:
    """The CustomJob resource in proto3 JSON (enum names, defaults omitted)."""
    view = view or job_view(job, now)
    out: dict[str, Any] = {"name": job.name}
    out.update(job.spec)
    out["state"] = view.state
    out["createTime"] = format_timestamp(job.created)
    if view.start_time is not None:
        out["startTime"] = format_timestamp(view.start_time)
    if view.end_time is not None:
        out["endTime"] = format_timestamp(view.end_time)
    out["updateTime"] = format_timestamp(view.update_time)
    if view.error is not None:
        out["error"] = view.error
    return out


@dataclass
class OperationRecord:
    id: str
    project: str
    location: str
    target: str  # the job the operation acted on
    created: float
    done_at: float  # in progress (done: false) until then
    error: dict[str, Any] | None = None  # a google.rpc.Status once done, for a failed operation

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/operations/{self.id}"

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OperationRecord:
        return cls(**data)


def encode_operation(op: OperationRecord, now: float | None = None) -> dict[str, Any]:
    """An Operation as Vertex sends it: `done` omitted (proto3 false) while in progress, then
    `response` or `error`. `now` None means "done" (an operation without a clock)."""
    done = now is None or now >= op.done_at
    out: dict[str, Any] = {
        "name": op.name,
        "metadata": {
            "@type": DELETE_METADATA_TYPE,
            "genericMetadata": {
                "createTime": format_timestamp(op.created),
                "updateTime": format_timestamp(op.done_at if done else op.created),
            },
        },
    }
    if done:
        out["done"] = True
        if op.error is not None:
            out["error"] = dict(op.error)
        else:
            out["response"] = {"@type": EMPTY_TYPE}
    return out


@dataclass
class Timing:
    queue_seconds: float
    pending_seconds: float
    run_seconds: float
    cancel_seconds: float
    delete_seconds: float = 0.0
