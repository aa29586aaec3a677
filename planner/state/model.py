"""The in-memory state model (lineage, serial, one record per job address); files and stores are elsewhere.

`State` is immutable: `with_job`/`without_job` return new states, and a journal of
`JournalEntry` values replays step results onto a state with `apply_entries`, which
copies the job table once however many entries there are (a 10,000-step journal must
not be quadratic).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from planner import __version__
from planner.errors import StateError

STATE_FORMAT_VERSION = 2
"""The newest state file format this planner reads and the one it writes.

Version 2 added the recorded lifecycle lists, job history and released jobs; a version 1
file (the previous planner's) reads as a state without them and is written back as 2,
lineage and serial kept, so an older planner refuses it with "upgrade" instead of
misreading it.
"""

HISTORY_LIMIT = 5
"""How many earlier job names a record keeps (`JobRecord.history`)."""


def _new_lineage() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class PendingStep:
    """A step started but not known to have finished; the next run finishes or re-checks it."""

    action: str  # "cancel" | "delete" | "create" | "wait"
    name: str | None  # the job it concerns; None for a create whose answer was lost
    since: str  # RFC 3339 UTC
    detail: str = ""


@dataclass(frozen=True)
class JobRecord:
    """What planner knows about the one job it manages at an address.

    `spec` is the canonical desired spec as applied; treat it as immutable.
    """

    address: str
    name: str  # projects/p/locations/l/customJobs/ID
    project: str
    location: str
    spec_hash: str  # 64 hex digits: SHA-256 of the canonical desired spec ("" if unknown)
    spec: Mapping[str, Any]
    last_state: str  # e.g. "JOB_STATE_RUNNING"
    pending: PendingStep | None = None
    old_names: tuple[str, ...] = ()  # replaced jobs whose cancel/delete is still to finish
    # The job's lifecycle settings as last applied: once its YAML is gone, these still decide
    # what removing it does (onRemove) and whether that is allowed (preventDestroy).
    prevent_destroy: bool = False
    on_remove: str = "delete"  # "delete" | "cancel" | "forget"
    # The rest of the lifecycle as last applied; None: not recorded (a state written before
    # format 2), so a plan cannot tell whether it changed and does not claim it did.
    ignore_changes: tuple[str, ...] | None = None
    rerun_on: tuple[str, ...] | None = None
    # Names of the jobs that stood for this address before (replaced or re-run), newest first,
    # at most HISTORY_LIMIT: what `state show` says ran before.
    history: tuple[str, ...] = ()


def with_history(history: tuple[str, ...], previous: str) -> tuple[str, ...]:
    """`history` with `previous` in front, once, cut to HISTORY_LIMIT names."""
    return (previous, *(n for n in history if n != previous))[:HISTORY_LIMIT]


ReleaseHow = Literal["cancel", "forget"]


@dataclass(frozen=True)
class ReleasedJob:
    """A job planner let go of (lifecycle.onRemove cancel or forget) that still wears its labels.

    CustomJob labels cannot change, so the job is labelled as planner's forever; this record
    lets later plans and drift know it was let go on purpose.
    """

    address: str
    name: str
    project: str
    location: str
    released_at: str  # RFC 3339 UTC
    how: ReleaseHow


@dataclass(frozen=True)
class State:
    """One workspace's state: which job each address stands for, under a lineage and serial.

    `lineage` identifies a state's history for life; `serial` counts its writes. A store
    refuses to replace a state of another lineage or a higher serial.
    """

    lineage: str
    serial: int
    jobs: Mapping[str, JobRecord]
    version: int = STATE_FORMAT_VERSION
    planner_version: str = field(default=__version__)
    released: Mapping[str, ReleasedJob] = field(default_factory=dict)  # by job name

    def with_job(self, rec: JobRecord) -> State:
        jobs = dict(self.jobs)
        jobs[rec.address] = rec
        return replace(self, jobs=jobs)

    def without_job(self, address: str) -> State:
        if address not in self.jobs:
            return self
        jobs = dict(self.jobs)
        del jobs[address]
        return replace(self, jobs=jobs)

    def with_released(self, job: ReleasedJob) -> State:
        released = dict(self.released)
        released[job.name] = job
        return replace(self, released=released)

    def without_released(self, name: str) -> State:
        if name not in self.released:
            return self
        released = dict(self.released)
        del released[name]
        return replace(self, released=released)

    @staticmethod
    def new(lineage_factory: Callable[[], str] = _new_lineage) -> State:
        """A state that has never been written: a fresh lineage, serial 0, no jobs."""
        return State(lineage=lineage_factory(), serial=0, jobs={})


JournalOp = Literal["put", "remove", "release"]


@dataclass(frozen=True)
class JournalEntry:
    """One step result appended to the journal: put a record at an address, remove it, or
    record a job as released (the address's record is removed by its own entry)."""

    op: JournalOp
    address: str
    record: JobRecord | None
    released: ReleasedJob | None = None

    def __post_init__(self) -> None:
        if self.op != "release" and self.released is not None:
            raise ValueError(f"a {self.op!r} journal entry carries no released job")
        if self.op == "release":
            if self.released is None or self.record is not None:
                raise ValueError("a 'release' journal entry carries a released job and no record")
            if self.released.address != self.address:
                raise ValueError(
                    f"journal entry address {self.address!r} differs from its released job's {self.released.address!r}"
                )
        elif self.op == "put":
            if self.record is None:
                raise ValueError("a 'put' journal entry needs a record")
            if self.record.address != self.address:
                raise ValueError(
                    f"journal entry address {self.address!r} differs from its record's {self.record.address!r}"
                )
        elif self.op == "remove":
            if self.record is not None:
                raise ValueError("a 'remove' journal entry carries no record")
        else:
            raise ValueError(f"unknown journal operation {self.op!r}")

    @staticmethod
    def put(record: JobRecord) -> JournalEntry:
        return JournalEntry("put", record.address, record)

    @staticmethod
    def remove(address: str) -> JournalEntry:
        return JournalEntry("remove", address, None)

    @staticmethod
    def release(job: ReleasedJob) -> JournalEntry:
        return JournalEntry("release", job.address, None, job)


def apply_entries(state: State, entries: Iterable[JournalEntry]) -> State:
    """Replay journal entries in order onto `state`; lineage and serial are unchanged."""
    jobs: dict[str, JobRecord] | None = None
    released: dict[str, ReleasedJob] | None = None
    for entry in entries:
        if entry.op == "release":
            assert entry.released is not None
            if released is None:
                released = dict(state.released)
            released[entry.released.name] = entry.released
            continue
        if jobs is None:
            jobs = dict(state.jobs)
        if entry.op == "put":
            assert entry.record is not None
            jobs[entry.address] = entry.record
        else:
            jobs.pop(entry.address, None)
    if jobs is None and released is None:
        return state
    return replace(
        state,
        jobs=state.jobs if jobs is None else jobs,
        released=state.released if released is None else released,
    )


def check_replaceable(description: str, lineage: str, serial: int, state: State) -> None:
    """Refuse to replace a stored state of another lineage or a higher serial (someone else wrote)."""
    if lineage != state.lineage:
        raise StateError(
            f"refusing to write state {description}: it has lineage {lineage}, "
            f"but the state being written has lineage {state.lineage} (a different state history)"
        )
    if serial > state.serial:
        raise StateError(
            f"refusing to write state {description}: it was changed by someone else "
            f"(it is at serial {serial}, this run started from serial {state.serial})",
            hint="run plan again to start from the current state",
        )
