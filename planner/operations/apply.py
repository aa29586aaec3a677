"""The apply operation: the plan to carry out under the state lock (made from the configuration, or a
saved plan refused when stale: planner.plans.staleness says why), the Applier run in a thread behind
a stop flag that Ctrl-C and SIGTERM raise, and `apply --wait` following the jobs it created.

No click and no printing: the CLI gathers the variables, asks for confirmation, shows the plan and
attaches the views (planner.render.progress) through the sinks these functions take.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from planner.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, PlannerError, StalePlanError, UsageError
from planner.operations.backend import Backend, locked, long_lived, signals_deferred
from planner.operations.plan import PlanRequest, load_hardware, plan_from_store, priced, refreshed
from planner.plans.staleness import live_reasons, state_reasons

if TYPE_CHECKING:
    from planner.apply import ApplyReport, StepEvent
    from planner.config.model import Desired
    from planner.plans.model import Plan
    from planner.state.model import State
    from planner.state.store import StateStore
    from planner.watch import Transition, WaitResult, WatchedJob


@dataclass(frozen=True)
class ApplyRequest:
    """What apply is asked: the configuration's plan (`plan`), or the saved plan `saved` (then only
    `plan`'s hardware options count, and the variables given now are gathered from `var_pairs`,
    `var_files` and `environment`, the PLANNER_VAR_* settings)."""

    plan: PlanRequest
    saved: Mapping[str, Any] | None = None
    var_pairs: tuple[str, ...] = ()
    var_files: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    parallelism: int = 10
    wait_timeout: float = 600.0  # how long a delete or cancel waits for its job

    def __post_init__(self) -> None:
        for flag, given in (("--target", self.plan.targets), ("--replace", self.plan.replace)):
            if self.saved is not None and given:
                raise UsageError(f"{flag} cannot be used with a saved plan: the plan already says what to do")


@dataclass(frozen=True)
class Prepared:
    """A plan to carry out, the state it was planned from (`prior`), that state with the live jobs'
    states recorded (`fresh`), and the client, store and workspace it goes through."""

    plan: Plan
    prior: State | None
    fresh: State | None
    client: Any
    store: StateStore
    workspace: str


@dataclass(frozen=True)
class ApplyRun:
    """How a run of the Applier ended: its report, whether a signal stopped it, and the final state
    write's error if that failed (the report still says what happened)."""

    report: ApplyReport
    signalled: bool
    write_error: PlannerError | None

    @property
    def interrupted(self) -> bool:
        return self.signalled or self.report.interrupted

    @property
    def exit_code(self) -> int:
        """1 when a step failed or went unrecorded, else 130 if interrupted, else 0 (DESIGN §7)."""
        from planner.apply import Outcome

        if self.report.unrecorded:
            return EXIT_ERROR
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_ERROR if self.report.count(Outcome.FAILED) else EXIT_OK


class ApplyEvents(Protocol):
    """What the apply view is told: `event` from the workers (it must not block), `tick` a few times
    a second from the main thread, `interrupted` on the first Ctrl-C or SIGTERM (from the signal
    handler), `close` once the Applier has stopped, before the final state write."""

    def event(self, event: StepEvent) -> None: ...
    def tick(self) -> None: ...
    def interrupted(self) -> None: ...
    def close(self) -> None: ...


class WaitEvents(Protocol):
    """What the `apply --wait` view is told (planner.watch.wait_for_jobs calls these)."""

    def transition(self, t: Transition) -> None: ...
    def poll(self, result: WaitResult) -> None: ...
    def sleep(self, seconds: float) -> None: ...


@contextmanager
def planned(request: ApplyRequest, backend: Backend, desired: Desired | None = None) -> Iterator[Prepared]:
    """The plan apply carries out, held under the state lock until the block ends: planned from
    `desired` (loaded by the caller) and priced, or the request's saved plan if it is not stale."""
    client = backend.client()
    store = backend.store()
    with locked(store, "apply", backend.lock_timeout):
        if request.saved is not None:
            plan, prior, live = saved_plan(client, store, backend.workspace, request)
        elif desired is not None:
            with long_lived():
                result = plan_from_store(client, store, desired, request.plan, workspace=backend.workspace)
            plan, prior, live = priced(result, request.plan), result.prior, result.live
        else:
            raise ValueError("apply needs a configuration or a saved plan")
        fresh = refreshed(prior, live) if prior is not None else None
        yield Prepared(plan, prior, fresh, client, store, backend.workspace)


def saved_plan(client: Any, store: StateStore, workspace: str, request: ApplyRequest) -> tuple[Any, Any, Any]:
    """(plan, prior state, live jobs) for the request's saved plan if it is for this workspace and
    not stale; StalePlanError otherwise. The variables given now are gathered (reading var files)
    only once the state matches."""
    from planner.config.variables import gather
    from planner.documents.plan import plan_from_json
    from planner.operations.plan import read_live
    from planner.plans.engine import live_entries
    from planner.plans.planfile import reread
    from planner.refresh import fingerprint

    assert request.saved is not None
    plan = plan_from_json(request.saved)
    if plan.workspace != workspace:
        raise StalePlanError(f"the plan is for workspace {plan.workspace!r}, not {workspace!r}")
    hardware = load_hardware(request.plan.hardware_catalog, request.plan.allow_unknown_hardware)
    prior = store.read()
    problems = state_reasons(plan, prior)
    if not problems:
        given = gather(request.var_pairs, request.var_files, request.environment)
        plan, reasons = reread(plan, request.saved, prior, given, hardware=hardware)
        problems.extend(reasons)
    live = None
    if not problems:
        pairs = {(c.project, c.location) for c in plan.changes if c.project}
        live = read_live(client, None, prior, workspace, extra_pairs=pairs)
        entries = live_entries(plan, prior, live, workspace)
        if fingerprint(entries) != plan.live_fingerprint:
            problems.extend(live_reasons(plan, entries))
    if problems:
        raise StalePlanError(
            "the saved plan is stale:\n  - " + "\n  - ".join(problems),
            hint="run `planner plan` again and review the new plan",
        )
    return plan, prior, live


def record_refresh(prepared: Prepared) -> None:
    """With nothing to apply, save the live jobs' states in state all the same (as Terraform's refresh)."""
    if prepared.fresh is not None and prepared.fresh is not prepared.prior:
        with signals_deferred():
            prepared.store.write(prepared.fresh)


def run_apply(prepared: Prepared, request: ApplyRequest, events: ApplyEvents) -> ApplyRun:
    """Carry out the plan: the Applier in a worker thread, the main thread ticking the view and
    turning Ctrl-C and SIGTERM into a stop flag, then the final state write. A failure of the
    Applier itself is raised once that state is written."""
    from planner.apply import Applier, ApplyOptions
    from planner.state import State

    options = ApplyOptions(
        workspace=prepared.workspace, parallelism=request.parallelism, wait_timeout=request.wait_timeout
    )
    client, store = prepared.client, prepared.store
    state = prepared.fresh if prepared.fresh is not None else State.new()
    if prepared.fresh is None:
        with signals_deferred():
            state = store.write(state)
    applier = Applier(client, store, state, options, on_event=events.event)
    result: list[Any] = []
    failure: list[BaseException] = []
    finished = threading.Event()

    def work() -> None:
        try:
            result.append(applier.run(prepared.plan))
        except BaseException as err:  # re-raised in the main thread
            failure.append(err)
        finally:
            finished.set()

    # Ctrl-C and SIGTERM only raise a flag while apply runs: no exception can land in the
    # middle of the bookkeeping. Workers start no new step once the flag is up.
    interrupts: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        interrupts.append(signum)
        applier.request_stop()
        # Steps in flight get a second to finish; a wait still going then is ended, and a
        # create whose answer is lost that way is found by its labels on the next plan.
        client.cancel(grace=1.0)
        if len(interrupts) == 1:
            events.interrupted()

    worker = threading.Thread(target=work, name="apply-main", daemon=True)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    worker.start()
    try:
        while not finished.wait(0.1):
            events.tick()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        events.close()
    final = result[0].state if result else applier.book.state
    write_error: PlannerError | None = None
    try:
        with signals_deferred():
            store.write(final)
    except PlannerError as err:
        write_error = err  # the report is still shown: it says what happened
    if failure:
        raise failure[0]
    return ApplyRun(result[0], bool(interrupts), write_error)


def created_jobs(prepared: Prepared) -> list[WatchedJob]:
    """The jobs this apply created (in state now, not before it), for `apply --wait` to follow."""
    from planner.plans.model import StepKind
    from planner.watch import WatchedJob

    final = prepared.store.read()
    prior = prepared.prior
    before = {r.name for r in prior.jobs.values()} if prior is not None else set()
    creating = {c.address for c in prepared.plan.changes if any(s.kind is StepKind.CREATE for s in c.steps)}
    return [
        WatchedJob(record.name, address)
        for address, record in sorted((final.jobs if final is not None else {}).items())
        if address in creating and record.name not in before
    ]


def wait_for_created(prepared: Prepared, jobs: Sequence[WatchedJob], timeout: float | None,
                     view: WaitEvents) -> WaitResult:
    """`apply --wait`: follow `jobs` until each ends or `timeout` passes (the lock is not held)."""
    from planner.watch import wait_for_jobs

    return wait_for_jobs(prepared.client, jobs, prepared.workspace, timeout=timeout,
                         on_transition=view.transition, on_poll=view.poll, sleep=view.sleep)
