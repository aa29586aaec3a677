"""The state as apply changes it: the records in memory and the one writer that journals them.

A worker changes a record at once and queues its journal entry; the writer appends what is
queued in order, many entries per call (one fsync for a local store), then runs what waited
for those entries, such as a step's "done". What a step does is `apply`'s business; where
and how records are kept durable is the store's (`planner.state`).
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from planner.errors import PlannerError
from planner.state.model import JobRecord, JournalEntry, ReleasedJob, State


class Journal(Protocol):
    """The part of a state store apply needs while it runs."""

    def append(self, *entries: JournalEntry) -> None: ...


@dataclass(frozen=True)
class Unrecorded:
    """A step that happened but whose journal record could not be written (e.g. a full disk)."""

    address: str
    job: str | None  # the job it left, if any
    error: str


@dataclass
class _Queued:
    """A journal entry waiting for the book's writer, and what came of it."""

    entry: JournalEntry
    address: str
    job: str | None
    error: str | None = None


@dataclass(frozen=True)
class _After:
    """Run `then` once the entries before it are written; it gets the first error among `entries`."""

    then: Callable[[str | None], None]
    entries: tuple[_Queued, ...]


class Ledger:
    """The state as apply changes it: every update is journalled in order by one writer, and a
    step is reported done only once its records are durable.

    A worker changes the records in memory at once (the next step of its change sees them)
    and queues the journal entry; it then goes on to its next change while the book's writer
    appends what is queued, many entries per fsync, and only then runs the step's report
    (`after_step`). Entries land in the order they were made, so each address's records stay
    in order. At most `ahead` entries wait at a time: a slow journal slows the workers down
    instead of letting creates run far ahead of what is recorded. A failed append is kept in
    `unrecorded` and calls `on_journal_failure` once (apply stops starting steps): the step
    happened, its record is in the final state if that write succeeds, and is found by
    labels otherwise.

    The records live in one mutable dict while apply runs (a State per update would copy
    every record each time: quadratic over 10,000 creates); `state` builds the State.
    """

    def __init__(
        self,
        state: State,
        journal: Journal,
        *,
        on_journal_failure: Callable[[], None] = lambda: None,
        ahead: int = 64,
    ):
        self._base = state
        self._jobs: dict[str, JobRecord] = dict(state.jobs)
        self.journal = journal
        self.lock = threading.Lock()
        self.on_journal_failure = on_journal_failure
        self.unrecorded: list[Unrecorded] = []
        self._ahead = max(1, ahead)
        self._queue: deque[_Queued | _After] = deque()
        self._waiting = 0  # entries queued or being written
        self._cond = threading.Condition()
        self._closed = False
        self._writer: threading.Thread | None = None
        self._mine = threading.local()  # the entries the current thread's step has queued
        self.bugs: list[BaseException] = []  # raised by the writer's work; Applier.run raises the first

    @property
    def state(self) -> State:
        with self.lock:
            return replace(self._base, jobs=dict(self._jobs))

    def update(self, address: str, change: Callable[[JobRecord | None], JobRecord | None]) -> None:
        with self.lock:
            before = self._jobs.get(address)
            after = change(before)
            if after == before:
                return
            if after is None:
                entry = JournalEntry.remove(address)
                del self._jobs[address]
            else:
                entry = JournalEntry.put(after)
                self._jobs[address] = after
        self._put(entry, address, after.name if after is not None else (before.name if before is not None else None))

    def record(self, address: str) -> JobRecord | None:
        with self.lock:
            return self._jobs.get(address)

    def release(self, job: ReleasedJob) -> None:
        """Record a job planner let go (onRemove cancel/forget): state only, journalled like a step."""
        with self.lock:
            self._base = self._base.with_released(job)
        self._put(JournalEntry.release(job), job.address, job.name)

    # -- the writer ----------------------------------------------------------------------------

    def begin_step(self) -> None:
        self._mine.entries = []

    def after_step(self, then: Callable[[str | None], None]) -> None:
        """Run `then(error)` once every record this thread's step queued is durable (at once if none)."""
        entries = tuple(getattr(self._mine, "entries", ()))
        self._mine.entries = []
        if not entries:
            then(None)
            return
        with self._cond:
            self._queue.append(_After(then, entries))
            self._cond.notify_all()

    def wait_step(self) -> None:
        """Return once this thread's step is durable; a failed record raises as the step's error."""
        outcome: list[str | None] = []
        done = threading.Event()

        def then(error: str | None) -> None:
            outcome.append(error)
            done.set()

        self.after_step(then)
        done.wait()
        if outcome[0] is not None:
            raise PlannerError(outcome[0])

    def close(self) -> None:
        """Write everything queued, run what waits for it, and stop the writer."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join()

    def _put(self, entry: JournalEntry, address: str, job: str | None) -> None:
        queued = _Queued(entry, address, job)
        with self._cond:
            while self._waiting >= self._ahead and self._writer is not None and self._writer.is_alive():
                self._cond.wait()
            self._waiting += 1
            self._queue.append(queued)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name="apply-journal", daemon=True)
                self._writer.start()
            self._cond.notify_all()
        mine = getattr(self._mine, "entries", None)
        if mine is not None:
            mine.append(queued)

    def _write(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                items = list(self._queue)
                self._queue.clear()
            batch = [item for item in items if isinstance(item, _Queued)]
            if batch:
                try:
                    self._append(batch)
                except Exception as err:  # a bug, not a full disk: the steps fail, apply stops, run() raises it
                    self.bugs.append(err)
                    for queued in batch:
                        self._failed(queued, err)
                with self._cond:
                    self._waiting -= len(batch)
                    self._cond.notify_all()
            for item in items:
                if isinstance(item, _After):
                    try:
                        item.then(next((q.error for q in item.entries if q.error is not None), None))
                    except Exception as err:  # a bug in what reports the step: the writer keeps writing
                        self.bugs.append(err)

    def _append(self, batch: list[_Queued]) -> None:
        try:
            self.journal.append(*(q.entry for q in batch))
            return
        except PlannerError:
            if len(batch) == 1:
                self._failed(batch[0], sys.exc_info()[1])
                return
        for queued in batch:  # which of them cannot be recorded (folding one twice changes nothing)
            try:
                self.journal.append(queued.entry)
            except PlannerError as err:
                self._failed(queued, err)

    def _failed(self, queued: _Queued, err: BaseException | None) -> None:
        message = err.message if isinstance(err, PlannerError) else str(err)
        queued.error = f"done, but its state record could not be written: {message}"
        with self.lock:
            first = not self.unrecorded
            self.unrecorded.append(Unrecorded(queued.address, queued.job, message))
        if first:
            self.on_journal_failure()
