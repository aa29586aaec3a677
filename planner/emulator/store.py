"""The emulator's job store: jobs and operations in an in-memory index behind one lock, with
the lookups, ordered pages and mutations the API makes; what a record is at a moment is
`lifecycle`'s, the data file `datalog`'s.

Every read and write goes through `_reading`/`_writing`, which with a data file first take
its lock and apply what other processes appended; each mutation is applied to the index and
then appended to the file as one record (`Index.apply` reads those records back).
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from planner import apimodel
from planner.emulator.datalog import DataLog
from planner.emulator.lifecycle import (
    DELETE_OUTCOME_LABEL,
    FAILED_OUTCOME_LABEL,
    JobRecord,
    JobView,
    OperationRecord,
    Timing,
    job_view,
)
from planner.emulator.wire import ApiFailure

SNAPSHOT_VERSION: Final = 1


class FilterSubject(Mapping[str, Any]):
    """What the list filter evaluates: the fields it supports, times as epoch seconds.

    The derived state is computed only if the filter asks for it (label filters do not).
    """

    __slots__ = ("_job", "_now", "_view")
    _KEYS: Final = ("displayName", "labels", "state", "_createTime", "_updateTime")

    def __init__(self, job: JobRecord, now: float):
        self._job = job
        self._now = now
        self._view: JobView | None = None

    def __getitem__(self, key: str) -> Any:
        job = self._job
        if key == "labels":
            return job.spec.get("labels", {})
        if key == "displayName":
            return job.spec.get("displayName", "")
        if key == "_createTime":
            return job.created
        if key in ("state", "_updateTime"):
            if self._view is None:
                self._view = job_view(job, self._now)
            return self._view.state if key == "state" else self._view.update_time
        raise KeyError(key)

    @property
    def view(self) -> JobView | None:
        """The derived view, if the filter needed it."""
        return self._view

    def get(self, key: str, default: Any = None) -> Any:  # hot path: skip Mapping.get's try/except
        try:
            return self[key]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        return iter(self._KEYS)

    def __len__(self) -> int:
        return len(self._KEYS)


@dataclass(frozen=True)
class Page:
    jobs: list[JobRecord]
    next_key: tuple[float, int] | None
    now: float
    until: float  # matching may change at this time (a scanned job's state changes)


@dataclass
class Index:
    """Jobs and operations by name, each (project, location)'s job keys in list order, the next ID
    and a version every change bumps; `apply` replays one data-file record, `snapshot` makes one."""

    jobs: dict[str, JobRecord] = field(default_factory=dict)
    # per (project, location): sort keys ascending = newest first
    order: dict[tuple[str, str], list[tuple[float, int]]] = field(default_factory=dict)
    by_key: dict[tuple[str, str, float, int], JobRecord] = field(default_factory=dict)
    ops: dict[str, OperationRecord] = field(default_factory=dict)
    next_id: int = 0
    version: int = 0

    def put_job(self, job: JobRecord) -> None:
        old = self.jobs.get(job.name)
        if old is not None:
            self._unindex(old)
        self.jobs[job.name] = job
        keys = self.order.setdefault((job.project, job.location), [])
        bisect.insort(keys, job.sort_key)
        self.by_key[(job.project, job.location, *job.sort_key)] = job
        self.next_id = max(self.next_id, int(job.id) + 1)

    def remove_job(self, name: str) -> None:
        job = self.jobs.pop(name, None)
        if job is not None:
            self._unindex(job)

    def _unindex(self, job: JobRecord) -> None:
        keys = self.order.get((job.project, job.location), [])
        i = bisect.bisect_left(keys, job.sort_key)
        if i < len(keys) and keys[i] == job.sort_key:
            del keys[i]
        self.by_key.pop((job.project, job.location, *job.sort_key), None)

    def put_op(self, op: OperationRecord) -> None:
        self.ops[op.name] = op
        self.next_id = max(self.next_id, int(op.id) + 1)

    def apply(self, record: dict[str, Any]) -> None:
        self.version += 1
        kind = record.get("t")
        if kind == "job":
            self.put_job(JobRecord.from_json(record["job"]))
        elif kind == "del":
            self.remove_job(record["name"])
        elif kind == "op":
            self.put_op(OperationRecord.from_json(record["op"]))
        elif kind == "delop":
            self.ops.pop(record["name"], None)
        elif kind == "snapshot":
            self.jobs.clear()
            self.order.clear()
            self.by_key.clear()
            self.ops.clear()
            for job in record.get("jobs", []):
                self.put_job(JobRecord.from_json(job))
            for op in record.get("ops", []):
                self.put_op(OperationRecord.from_json(op))
        if "next_id" in record:
            self.next_id = max(self.next_id, int(record["next_id"]))

    def snapshot(self) -> dict[str, Any]:
        return {
            "t": "snapshot",
            "version": SNAPSHOT_VERSION,
            "next_id": self.next_id,
            "jobs": [job.to_json() for job in self.jobs.values()],
            "ops": [op.to_json() for op in self.ops.values()],
        }


class JobStore:
    """Jobs and operations of one emulator, thread-safe (one lock), optionally persisted."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        timing: Timing,
        data_path: str | os.PathLike[str] | None = None,
        fsync_interval: float = 0.2,
        rng: random.Random | None = None,
        delete_active: str = "reject",
    ):
        self._clock = clock
        self.timing = timing
        self._delete_active = delete_active
        self._lock = threading.RLock()
        self._index = Index()
        rng = rng or random.Random()
        # Long numeric IDs like the real service's; monotonic, never reused (persisted next_id).
        self._index.next_id = rng.randrange(10**18, 5 * 10**18)
        self._log: DataLog | None = None
        if data_path is not None:
            self._log = DataLog(data_path, fsync_interval=fsync_interval, clock=clock)
            self._log.open(self._index)

    # -- locking ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Index]:
        with self._lock:
            if self._log is None:
                yield self._index
            else:
                with self._log.locked(self._index, exclusive=False):
                    yield self._index

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Index]:
        with self._lock:
            try:
                if self._log is None:
                    yield self._index
                else:
                    with self._log.locked(self._index, exclusive=True):
                        yield self._index
            finally:
                self._index.version += 1

    def _persist(self, index: Index, record: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.append(index, record)

    def close(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def compact(self) -> None:
        with self._writing() as index:
            if self._log is not None:
                self._log.compact(index)

    # -- jobs ---------------------------------------------------------------------------------

    def _new_id(self, index: Index) -> str:
        value = index.next_id
        index.next_id += 1
        return str(value)

    def create(
        self,
        project: str,
        location: str,
        spec: dict[str, Any],
        *,
        created: float | None = None,
        state: str | None = None,
    ) -> JobRecord:
        now = self._clock()
        with self._writing() as index:
            t0 = now if created is None else created
            timing = self.timing
            queued = t0 + timing.queue_seconds
            pending = queued + timing.pending_seconds
            running = pending + timing.run_seconds
            failed = spec.get("labels", {}).get(FAILED_OUTCOME_LABEL) == "failed"
            job = JobRecord(
                id=self._new_id(index),
                project=project,
                location=location,
                spec=spec,
                created=t0,
                queued_until=queued,
                pending_until=pending,
                running_until=running,
                outcome="JOB_STATE_FAILED" if failed else "JOB_STATE_SUCCEEDED",
            )
            if state is not None:
                job.forced_state, job.forced_at = state, max(t0, now)
            index.put_job(job)
            self._persist(index, {"t": "job", "job": job.to_json(), "next_id": index.next_id})
            return job

    def get(self, name: str) -> JobRecord:
        with self._reading() as index:
            job = index.jobs.get(name)
        if job is None:
            raise ApiFailure("NOT_FOUND", f'The CustomJob "{name}" does not exist.')
        return job

    def page(
        self,
        project: str,
        location: str,
        predicate: Callable[[Mapping[str, Any]], bool],
        after: tuple[float, int] | None,
        limit: int,
    ) -> Page:
        """Up to `limit` matching jobs after the key `after`, and the key to continue from (if more)."""
        now = self._clock()
        with self._reading() as index:
            keys = index.order.get((project, location), [])
            i = 0 if after is None else bisect.bisect_right(keys, after)
            found: list[JobRecord] = []
            until = math.inf  # the answer holds until a scanned job's state-dependent match changes
            while i < len(keys):
                job = index.by_key[(project, location, *keys[i])]
                i += 1
                subject = FilterSubject(job, now)
                matched = predicate(subject)
                if subject.view is not None:
                    until = min(until, subject.view.until)
                if matched:
                    if len(found) == limit:
                        return Page(found, found[-1].sort_key, now, until)
                    found.append(job)
            return Page(found, None, now, until)

    def version(self) -> int:
        """Changes whenever any job or operation changes (here or, with a data file, elsewhere)."""
        with self._reading() as index:
            return index.version

    def cancel(self, name: str) -> None:
        now = self._clock()
        with self._writing() as index:
            job = index.jobs.get(name)
            if job is None:
                raise ApiFailure("NOT_FOUND", f'The CustomJob "{name}" does not exist.')
            state = job_view(job, now).state
            if state == "JOB_STATE_CANCELLING":
                return
            if state not in apimodel.ACTIVE_STATES:
                raise ApiFailure(
                    "FAILED_PRECONDITION",
                    f'The CustomJob "{name}" is in state {state} and cannot be canceled.',
                )
            job.forced_state = job.forced_at = None
            job.cancel_at = now
            job.cancel_done = now + self.timing.cancel_seconds
            self._persist(index, {"t": "job", "job": job.to_json()})

    def delete(self, name: str) -> OperationRecord:
        now = self._clock()
        with self._writing() as index:
            job = index.jobs.get(name)
            if job is None:
                raise ApiFailure("NOT_FOUND", f'The CustomJob "{name}" does not exist.')
            state = job_view(job, now).state
            if state in apimodel.ACTIVE_STATES and self._delete_active == "reject":
                raise ApiFailure(
                    "FAILED_PRECONDITION",
                    f'The CustomJob "{name}" is in state {state} and cannot be deleted; '
                    "cancel it and wait for it to finish first.",
                )
            index.remove_job(name)
            self._persist(index, {"t": "del", "name": name})
            # A job labelled `emulator-delete: failed` ends its delete operation with an error.
            error = None
            if job.spec.get("labels", {}).get(DELETE_OUTCOME_LABEL) == "failed":
                error = {"code": 13, "message": f'Deleting the CustomJob "{name}" failed (emulator-delete label).'}
            done_at = now + self.timing.delete_seconds
            op = OperationRecord(self._new_id(index), job.project, job.location, name, now, done_at, error)
            index.put_op(op)
            self._persist(index, {"t": "op", "op": op.to_json(), "next_id": index.next_id})
            return op

    def force_state(self, name: str, state: str) -> JobRecord:
        if state not in apimodel.JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        now = self._clock()
        with self._writing() as index:
            job = index.jobs.get(name)
            if job is None:
                raise KeyError(name)
            job.forced_state, job.forced_at = state, now
            job.cancel_at = job.cancel_done = None
            self._persist(index, {"t": "job", "job": job.to_json()})
            return job

    def remove(self, name: str) -> bool:
        with self._writing() as index:
            if name not in index.jobs:
                return False
            index.remove_job(name)
            self._persist(index, {"t": "del", "name": name})
            return True

    def count(self) -> int:
        with self._reading() as index:
            return len(index.jobs)

    def jobs_of(self, project: str, job_ids: set[str] | None = None) -> list[JobRecord]:
        """The project's jobs in every location (only those with these IDs, if given), for the logging API."""
        with self._reading() as index:
            return [j for j in index.jobs.values() if j.project == project and (job_ids is None or j.id in job_ids)]

    # -- operations ---------------------------------------------------------------------------

    def get_operation(self, name: str, *, job: str | None = None) -> OperationRecord:
        with self._reading() as index:
            if job is None:
                op = index.ops.get(name)
            else:  # projects/p/locations/l/customJobs/J/operations/ID: an operation on that job
                op_id = name.rsplit("/", 1)[-1]
                op = next((o for o in index.ops.values() if o.id == op_id and o.target == job), None)
        if op is None:
            raise ApiFailure("NOT_FOUND", f'Operation "{name}" not found.')
        return op

    def list_operations(self, project: str, location: str, job: str | None) -> list[OperationRecord]:
        with self._reading() as index:
            ops = [
                op
                for op in index.ops.values()
                if op.project == project and op.location == location and (job is None or op.target == job)
            ]
        return sorted(ops, key=lambda op: (-op.created, -int(op.id)))

    def delete_operation(self, op: OperationRecord) -> None:
        with self._writing() as index:
            index.ops.pop(op.name, None)
            self._persist(index, {"t": "delop", "name": op.name})
