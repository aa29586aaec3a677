"""The emulator's jobs and operations: an in-memory index behind one lock, optionally persisted.

A job's state is never stored as "current": each record keeps the absolute times of its
transitions (queued until, pending until, running until, cancel requested/finished, or a
state forced by a test), and `job_view` derives the state at `now` from an injectable clock,
so no background thread moves jobs along.

Persistence (`DataLog`): the data file is an append-only JSON-lines log. Its first line is a
snapshot of every job and operation; each mutation appends one line, written with a single
`os.write` to an O_APPEND descriptor (so a killed process loses nothing the OS has seen) and
fsync'd at most every `fsync_interval` seconds and on close. When the log holds more
records than live jobs (and at least 2,000), it is compacted: a fresh snapshot is written to
a temporary file, fsync'd and renamed over the log, so 10,000 creates cost a few
amortised rewrites, not 10,000. Several processes may share one file: every operation takes
an fcntl lock on `<file>.lock` and first applies whatever other processes appended since
(a rename by another process's compaction is noticed by inode and triggers a full reload).
A torn last line (a crash mid-write) is dropped on load.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import json
import math
import os
import random
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from planner import apimodel
from planner.emulator import sealed
from planner.emulator.wire import ApiFailure
from planner.errors import PlannerError

FAILED_OUTCOME_LABEL: Final = "emulator-outcome"
DELETE_OUTCOME_LABEL: Final = "emulator-delete"
SNAPSHOT_VERSION: Final = 1
_COMPACT_MIN_RECORDS: Final = 2000


class EmulatorDataError(PlannerError):
    """The emulator's data file cannot be read (corrupt, or removed under a running emulator)."""


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
            "@type": "type.googleapis.com/google.cloud.aiplatform.v1.DeleteOperationMetadata",
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
            out["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
    return out


@dataclass(frozen=True)
class Page:
    jobs: list[JobRecord]
    next_key: tuple[float, int] | None
    now: float
    until: float  # matching may change at this time (a scanned job's state changes)


@dataclass
class Timing:
    queue_seconds: float
    pending_seconds: float
    run_seconds: float
    cancel_seconds: float
    delete_seconds: float = 0.0


@dataclass
class _Index:
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


class DataLog:
    """The append-only, compacting, multi-process-safe data file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, fsync_interval: float, clock: Callable[[], float]):
        self.path = os.path.abspath(os.fspath(path))
        self._fsync_interval = fsync_interval
        self._clock = clock
        self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._key: bytes | None = None  # env values are sealed at rest (emulator.sealed)
        self._fd: int | None = None
        self._inode: int | None = None
        self._offset = 0
        self._records = 0
        self._last_fsync = 0.0
        self._dirty = False

    @contextlib.contextmanager
    def locked(self, index: _Index, *, exclusive: bool) -> Iterator[None]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            self._catch_up(index)
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _sealing_key(self) -> bytes:
        """The key of `<file>.key`, made on first need; always called under the file lock, so
        processes sharing the data file share one key."""
        if self._key is None:
            self._key = sealed.load_key(self.path + ".key")
        return self._key

    def _catch_up(self, index: _Index) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._inode is not None:
                raise EmulatorDataError(f"the emulator data file {self.path} disappeared") from None
            return
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._reload(index)
        elif st.st_size > self._offset:
            self._read_from(index, self._offset)

    def _reload(self, index: _Index) -> None:
        index.apply({"t": "snapshot"})
        self._records = 0
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._read_from(index, 0)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._inode = os.fstat(self._fd).st_ino

    def _read_from(self, index: _Index, offset: int) -> None:
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a torn last line (crash mid-write) is ignored
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                record = sealed.unseal(self._sealing_key, json.loads(line))
            except json.JSONDecodeError as exc:
                raise EmulatorDataError(
                    f"corrupt emulator data file {self.path}: {exc}",
                    hint="move the file aside to start with no jobs",
                ) from None
            index.apply(record)
            self._records += 1
        self._offset = offset + end

    def open(self, index: _Index) -> None:
        """Load the file (creating it with an empty snapshot if absent) and drop a torn tail."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            if not os.path.exists(self.path):
                self._write_snapshot(index)
            self._reload(index)
            if os.path.getsize(self.path) > self._offset:
                os.truncate(self.path, self._offset)
            if self._records > max(_COMPACT_MIN_RECORDS, 2 * (len(index.jobs) + len(index.ops))):
                self.compact(index)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def append(self, index: _Index, record: dict[str, Any]) -> None:
        """Write one record; call inside `locked(exclusive=True)` after applying it to `index`."""
        if self._fd is None:
            raise EmulatorDataError("the emulator data file is closed")
        at_rest = sealed.seal(self._sealing_key, record)
        line = (json.dumps(at_rest, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        os.write(self._fd, line)
        self._offset += len(line)
        self._records += 1
        self._dirty = True
        now = self._clock()
        if now - self._last_fsync >= self._fsync_interval:
            os.fsync(self._fd)
            self._last_fsync = now
            self._dirty = False
        if self._records > max(_COMPACT_MIN_RECORDS, 2 * (len(index.jobs) + len(index.ops))):
            self.compact(index)

    def compact(self, index: _Index) -> None:
        """Rewrite the log as one snapshot of `index` (which is current: we hold the lock)."""
        self._write_snapshot(index)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        st = os.fstat(self._fd)
        self._inode, self._offset, self._records = st.st_ino, st.st_size, 1
        self._dirty = False

    def _write_snapshot(self, index: _Index) -> None:
        directory = os.path.dirname(self.path)
        fd, tmp = tempfile.mkstemp(prefix=".emulator-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                snapshot = sealed.seal(self._sealing_key, index.snapshot())
                fh.write((json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False) + "\n").encode())
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        if self._fd is not None:
            if self._dirty:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        os.close(self._lock_fd)


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
        self._index = _Index()
        rng = rng or random.Random()
        # Long numeric IDs like the real service's; monotonic, never reused (persisted next_id).
        self._index.next_id = rng.randrange(10**18, 5 * 10**18)
        self._log: DataLog | None = None
        if data_path is not None:
            self._log = DataLog(data_path, fsync_interval=fsync_interval, clock=clock)
            self._log.open(self._index)

    # -- locking ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[_Index]:
        with self._lock:
            if self._log is None:
                yield self._index
            else:
                with self._log.locked(self._index, exclusive=False):
                    yield self._index

    @contextlib.contextmanager
    def _writing(self) -> Iterator[_Index]:
        with self._lock:
            try:
                if self._log is None:
                    yield self._index
                else:
                    with self._log.locked(self._index, exclusive=True):
                        yield self._index
            finally:
                self._index.version += 1

    def _persist(self, index: _Index, record: dict[str, Any]) -> None:
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

    def _new_id(self, index: _Index) -> str:
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
