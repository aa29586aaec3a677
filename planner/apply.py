"""Apply: carry out a Plan's steps against Vertex AI, saving state after every API step.

Changes run in parallel (`parallelism` workers, each taking the next change when it is
free); the steps of one change run in order. Every completed step is appended to the state
store's journal (never a rewrite of the whole state) and reported done only once that
record is durable; the journal is folded into the state file at the end. A stop request
(Ctrl-C) starts no new step, records what is unfinished as pending, and returns. A create
is never sent twice blindly: after an ambiguous failure the client looks the job up by its
identity labels first (DESIGN §4).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from planner import apimodel
from planner.canonical import request_body
from planner.config.model import Lifecycle
from planner.errors import ApiError, PlannerError
from planner.ledger import Journal, Ledger, Unrecorded
from planner.plans.model import Action, Plan, Reason, ResourceChange, Step, StepKind
from planner.refresh import JobReader, live_job
from planner.secrets import at_rest
from planner.state.model import JobRecord, PendingStep, ReleasedJob, ReleaseHow, State, with_history


class JobWriter(JobReader, Protocol):
    """The part of the API client apply needs."""

    def create_job(
        self,
        project: str,
        location: str,
        body: dict[str, Any],
        *,
        find_existing: Callable[[], dict[str, Any] | None],
    ) -> dict[str, Any]: ...

    def cancel_job(self, name: str) -> None: ...

    def delete_job(self, name: str) -> dict[str, Any]: ...

    def wait_operation(self, name: str, *, timeout: float) -> dict[str, Any]: ...


class Outcome(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    PENDING = "pending"  # waiting ran out of time, or a stop was requested: the next run finishes it
    SKIPPED = "skipped"  # an earlier step of the same change failed or was left pending


@dataclass(frozen=True)
class StepEvent:
    """Progress of one step, for the CLI's live view and the final report."""

    address: str
    step: Step
    status: str  # "start" | Outcome.value
    elapsed: float = 0.0
    message: str = ""
    job: str | None = None


@dataclass(frozen=True)
class StepResult:
    address: str
    step: Step
    outcome: Outcome
    message: str = ""
    job: str | None = None
    elapsed: float = 0.0


@dataclass(frozen=True)
class ApplyOptions:
    workspace: str = "default"
    parallelism: int = 10
    wait_timeout: float = 600.0
    poll_initial: float = 0.5
    poll_max: float = 10.0


@dataclass(frozen=True)
class ApplyReport:
    state: State
    results: tuple[StepResult, ...]
    interrupted: bool = False
    # Steps that happened but could not be journalled; apply stopped at the first of them.
    unrecorded: tuple[Unrecorded, ...] = ()

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def failed(self) -> bool:
        return self.count(Outcome.FAILED) > 0


class StopRequested(Exception):
    """Raised inside a worker when a stop was requested before a step could finish."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Applier:
    """Runs one plan. Construct, call run(); call request_stop() from another thread on Ctrl-C."""

    def __init__(
        self,
        client: JobWriter,
        journal: Journal,
        prior: State,
        options: ApplyOptions,
        *,
        on_event: Callable[[StepEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        now: Callable[[], str] = _now,
    ):
        self.client = client
        self.book = Ledger(prior, journal, on_journal_failure=self.request_stop, ahead=4 * options.parallelism)
        self.options = options
        self.on_event = on_event or (lambda _e: None)
        self.clock = clock
        self.stop = threading.Event()
        self._sleep = sleep
        self.now = now
        self._results: list[StepResult] = []
        self._results_lock = threading.Lock()

    def request_stop(self) -> None:
        self.stop.set()

    def run(self, plan: Plan) -> ApplyReport:
        changes = [c for c in plan.changes if c.action is not Action.NOOP]
        known = _known_names(plan, self.book.state)
        queue: Iterator[ResourceChange] = iter(changes)
        taking = threading.Lock()
        bugs: list[BaseException] = []

        def work() -> None:
            # Each worker takes the next change when it is free, so a stop request leaves
            # later changes unstarted.
            while True:
                with taking:
                    change = next(queue, None)
                    while change is not None and self.stop.is_set():
                        self._skip_all(change, "not started: stop requested")
                        change = next(queue, None)
                if change is None or bugs:
                    return
                try:
                    self._run_change(change, known)
                except BaseException as err:  # a bug: the caller sees it once every worker is done
                    bugs.append(err)
                    return

        count = max(1, min(self.options.parallelism, len(changes)))
        workers = [threading.Thread(target=work, name=f"apply-{i}") for i in range(count)]
        try:
            for worker in workers:
                worker.start()
        finally:
            for worker in workers:
                if worker.ident is not None:  # started
                    worker.join()
            self.book.close()
        bugs.extend(self.book.bugs)
        if bugs:
            raise bugs[0]
        results = sorted(self._results, key=lambda r: (r.address, _step_order(r.step)))
        unrecorded = tuple(sorted(self.book.unrecorded, key=lambda u: u.address))
        return ApplyReport(
            state=self.book.state,
            results=tuple(results),
            interrupted=self.stop.is_set() and not unrecorded,
            unrecorded=unrecorded,
        )

    # -- one change --------------------------------------------------------------------------

    def _run_change(self, change: ResourceChange, known: Mapping[str, set[str]]) -> None:
        steps = list(change.steps)
        for index, step in enumerate(steps):
            if self.stop.is_set():
                self._pending_rest(change, steps[index:], "stop requested before this step")
                return
            started = self.clock()
            self._emit(StepEvent(change.address, step, "start", job=step.job))
            self.book.begin_step()
            last = index + 1 == len(steps)
            try:
                job = self._run_step(change, step, known)
                if not last:
                    self.book.wait_step()  # the next step starts from a recorded one
            except StopRequested:
                self._finish(change, step, Outcome.PENDING, started, "stop requested while waiting", step.job)
                self._mark_pending(change, step)
                self._pending_rest(change, steps[index + 1 :], "stop requested")
                return
            except _WaitTimedOut as err:
                self._finish(change, step, Outcome.PENDING, started, str(err), step.job)
                self._mark_pending(change, step)
                self._pending_rest(change, steps[index + 1 :], "an earlier step is still pending")
                return
            except PlannerError as err:
                self._finish(change, step, Outcome.FAILED, started, err.message, step.job)
                for rest in steps[index + 1 :]:
                    self._record(StepResult(change.address, rest, Outcome.SKIPPED, "an earlier step failed", rest.job))
                return
            if last:
                # Reported once its records are durable; meanwhile this worker takes the next change.
                self.book.after_step(partial(self._recorded, change, step, started, job))
            else:
                self._finish(change, step, Outcome.DONE, started, "", job)

    def _recorded(self, change: ResourceChange, step: Step, started: float, job: str | None, error: str | None) -> None:
        if error is None:
            self._finish(change, step, Outcome.DONE, started, "", job)
        else:
            self._finish(change, step, Outcome.FAILED, started, error, step.job)

    def _run_step(self, change: ResourceChange, step: Step, known: Mapping[str, set[str]]) -> str | None:
        if step.kind is StepKind.CREATE:
            return self._create(change, known.get(change.address, set()))
        assert step.job is not None
        if step.kind is StepKind.CANCEL:
            self._cancel(change, step.job)
        elif step.kind is StepKind.DELETE:
            self._delete(change, step.job)
        elif step.kind is StepKind.ADOPT:
            self._adopt(change, step.job)
        elif step.kind is StepKind.FORGET:
            if change.reason is Reason.REMOVED and change.job_name == step.job:
                self._release(change, step.job)
            self._forget_name(change.address, step.job)
        elif step.kind is StepKind.UPDATE:
            self._update_lifecycle(change, step.job)
        return step.job

    def _create(self, change: ResourceChange, known: set[str]) -> str:
        assert change.after is not None and change.after_hash is not None
        body = request_body(change.after, change.address, self.options.workspace)
        labels = body["labels"]
        query = " AND ".join(
            f'labels.{key}="{labels[key]}"'
            for key in (
                apimodel.LABEL_MANAGED_BY,
                apimodel.LABEL_WORKSPACE,
                apimodel.LABEL_ADDRESS,
                apimodel.LABEL_SPEC,
            )
        )

        def find_existing() -> dict[str, Any] | None:
            found = [
                j
                for j in self.client.list_jobs(change.project, change.location, filter=query)
                if j.get("name") not in known
            ]
            return max(found, key=lambda j: str(j.get("createTime", ""))) if found else None

        resource = self.client.create_job(change.project, change.location, body, find_existing=find_existing)
        job = live_job(resource)
        lifecycle = change.lifecycle or Lifecycle()

        def put(record: JobRecord | None) -> JobRecord:
            old: list[str] = list(record.old_names) if record is not None else []
            if record is not None and record.name != job.name and record.name not in old and change.job_name:
                old.append(record.name)
            history = record.history if record is not None else ()
            if record is not None and record.name != job.name:
                history = with_history(history, record.name)
            return JobRecord(
                address=change.address,
                name=job.name,
                project=change.project,
                location=change.location,
                spec_hash=change.after_hash or "",
                spec=at_rest(dict(change.after or {})),  # digested once, not at every write
                last_state=job.state,
                old_names=tuple(n for n in old if n != job.name),
                prevent_destroy=lifecycle.prevent_destroy,
                on_remove=lifecycle.on_remove.value,
                ignore_changes=lifecycle.ignore_changes,
                rerun_on=lifecycle.rerun_on,
                history=history,
            )

        self.book.update(change.address, put)
        known.add(job.name)
        return job.name

    def _adopt(self, change: ResourceChange, name: str) -> None:
        lifecycle = change.lifecycle or Lifecycle()

        def put(record: JobRecord | None) -> JobRecord:
            old = list(record.old_names) if record is not None else []
            if record is not None and record.name != name and record.name not in old:
                old.append(record.name)
            return JobRecord(
                address=change.address,
                name=name,
                project=change.project,
                location=change.location,
                spec_hash=change.after_hash or "",
                spec=at_rest(dict(change.after or {})),  # digested once, not at every write
                last_state=change.job_state or "JOB_STATE_UNSPECIFIED",
                old_names=tuple(n for n in old if n != name),
                prevent_destroy=lifecycle.prevent_destroy,
                on_remove=lifecycle.on_remove.value,
                ignore_changes=lifecycle.ignore_changes,
                rerun_on=lifecycle.rerun_on,
                history=record.history if record is not None else (),
            )

        self.book.update(change.address, put)

    def _update_lifecycle(self, change: ResourceChange, name: str) -> None:
        """Save the job's lifecycle settings (state only: nothing is sent to the API)."""
        lifecycle = change.lifecycle or Lifecycle()

        def put(record: JobRecord | None) -> JobRecord | None:
            if record is None or record.name != name:
                return record  # the job this row was planned for is no longer the address's
            return replace(
                record,
                prevent_destroy=lifecycle.prevent_destroy,
                on_remove=lifecycle.on_remove.value,
                ignore_changes=lifecycle.ignore_changes,
                rerun_on=lifecycle.rerun_on,
            )

        self.book.update(change.address, put)

    def _release(self, change: ResourceChange, name: str) -> None:
        """Record a job let go by onRemove cancel/forget: it keeps planner's labels for life."""
        record = self.book.record(change.address)
        how: ReleaseHow = "cancel" if record is not None and record.on_remove == "cancel" else "forget"
        parts = name.split("/")
        project, location = (parts[1], parts[3]) if len(parts) == 6 else (change.project, change.location)
        self.book.release(
            ReleasedJob(
                address=change.address,
                name=name,
                project=project,
                location=location,
                released_at=self.now(),
                how=how,
            )
        )

    def _cancel(self, change: ResourceChange, name: str) -> None:
        try:
            self.client.cancel_job(name)
        except ApiError as err:
            # Already finished (FAILED_PRECONDITION) or already gone: the goal is met.
            if err.http_status not in (400, 404) or (err.http_status == 400 and err.status != "FAILED_PRECONDITION"):
                raise
        self._set_last_state(change.address, name, "JOB_STATE_CANCELLING")

    def _delete(self, change: ResourceChange, name: str) -> None:
        state = self._wait_terminal(name)
        if state is not None:
            try:
                operation = self.client.delete_job(name)
                if not operation.get("done"):
                    operation = self.client.wait_operation(
                        str(operation.get("name", "")), timeout=max(1.0, self.options.wait_timeout)
                    )
                error = operation.get("error")
                if isinstance(error, dict) and error.get("code", 0) not in (0, 5):
                    raise ApiError(
                        f"delete of {name} failed: {error.get('message', 'unknown error')}", method="DELETE", url=name
                    )
            except ApiError as err:
                if err.status == "CANCELLED" and err.http_status is None:
                    raise StopRequested from err  # Ctrl-C: the next apply finishes the delete
                if err.status == "DEADLINE_EXCEEDED" and err.http_status is None:
                    raise _WaitTimedOut(f"deleting {name} did not finish within --wait-timeout") from err
                if err.http_status != 404:
                    raise
        self._forget_name(change.address, name)

    def _wait_terminal(self, name: str) -> str | None:
        """Poll until the job is terminal; None if it is already gone."""
        deadline = self.clock() + self.options.wait_timeout
        interval = self.options.poll_initial
        while True:
            try:
                job = live_job(self.client.get_job(name))
            except ApiError as err:
                if err.http_status == 404:
                    return None
                raise
            if not job.active:
                return job.state
            if self.clock() >= deadline:
                raise _WaitTimedOut(f"{name} is still {job.state} after --wait-timeout; the next apply finishes it")
            self._pause(min(interval, max(0.0, deadline - self.clock())))
            interval = min(interval * 2, self.options.poll_max)

    def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            if self.stop.is_set():
                raise StopRequested
            return
        if self.stop.wait(seconds):
            raise StopRequested

    # -- state bookkeeping --------------------------------------------------------------------

    def _set_last_state(self, address: str, name: str, state: str) -> None:
        def change(record: JobRecord | None) -> JobRecord | None:
            if record is not None and record.name == name:
                return replace(record, last_state=state)
            return record

        self.book.update(address, change)

    def _forget_name(self, address: str, name: str) -> None:
        def change(record: JobRecord | None) -> JobRecord | None:
            if record is None:
                return None
            if record.name == name:
                return (
                    None
                    if not record.old_names
                    else replace(record, name=record.old_names[0], old_names=record.old_names[1:], pending=None)
                )
            if name in record.old_names:
                rest = tuple(n for n in record.old_names if n != name)
                pending = None if record.pending is not None and record.pending.name == name else record.pending
                return replace(record, old_names=rest, pending=pending)
            return record

        self.book.update(address, change)

    def _mark_pending(self, change: ResourceChange, step: Step) -> None:
        try:
            self._record_pending(change, step)
        except PlannerError:
            pass  # the journal failed (already reported, apply is stopping); the mark is in the book

    def _record_pending(self, change: ResourceChange, step: Step) -> None:
        pending = PendingStep(action=step.kind.value, name=step.job, since=self.now(), detail=change.reason.value)

        def mark(record: JobRecord | None) -> JobRecord | None:
            if record is None:
                return None
            if step.job and step.job != record.name and step.job not in record.old_names:
                # A duplicate's cleanup: nothing of it is in state; the next plan finds it by labels.
                return record
            return replace(record, pending=pending)

        self.book.update(change.address, mark)

    # -- reporting ----------------------------------------------------------------------------

    def _finish(
        self, change: ResourceChange, step: Step, outcome: Outcome, started: float, message: str, job: str | None
    ) -> None:
        elapsed = self.clock() - started
        self._record(StepResult(change.address, step, outcome, message, job, elapsed))
        self._emit(StepEvent(change.address, step, outcome.value, elapsed, message, job))

    def _pending_rest(self, change: ResourceChange, steps: list[Step], message: str) -> None:
        for step in steps:
            self._record(StepResult(change.address, step, Outcome.SKIPPED, message, step.job))

    def _skip_all(self, change: ResourceChange, message: str) -> None:
        self._pending_rest(change, list(change.steps), message)

    def _record(self, result: StepResult) -> None:
        with self._results_lock:
            self._results.append(result)

    def _emit(self, event: StepEvent) -> None:
        self.on_event(event)


class _WaitTimedOut(PlannerError):
    """A job did not reach a terminal state within --wait-timeout."""


def _step_order(step: Step) -> int:
    order = [StepKind.ADOPT, StepKind.CANCEL, StepKind.CREATE, StepKind.DELETE, StepKind.FORGET, StepKind.UPDATE]
    return order.index(step.kind)


def _known_names(plan: Plan, state: State) -> dict[str, set[str]]:
    """Per address, every job name planner already knows: a lookup after a lost create skips them."""
    known: dict[str, set[str]] = {}
    for change in plan.changes:
        names = known.setdefault(change.address, set())
        if change.job_name:
            names.add(change.job_name)
        names.update(s.job for s in change.steps if s.job)
    for address, record in state.jobs.items():
        names = known.setdefault(address, set())
        names.add(record.name)
        names.update(record.old_names)
    return known
