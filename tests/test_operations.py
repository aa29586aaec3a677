"""The operations called in-process against the emulator over HTTP (plan, apply, drift, a saved plan),
and the command line's `run(argv)` giving back its exit code without leaving the process."""

from __future__ import annotations

import json
import signal
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_harness import config_text

from planner.drift import DriftKind
from planner.emulator import Emulator
from planner.errors import EXIT_INTERRUPTED, EXIT_OK, StalePlanError, UsageError
from planner.operations.apply import ApplyRequest, planned, record_refresh, run_apply
from planner.operations.backend import Backend
from planner.operations.drift import drift
from planner.operations.logs import log_source
from planner.operations.plan import PlanRequest, load_configuration, plan, save_plan
from planner.operations.status import status_reader
from planner.policy import PolicyError

NOON = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def emulator(emulator_factory: Callable[..., Emulator]) -> Emulator:
    """Jobs run for an hour unless a test moves them (what apply records stays what it saw), and a
    cancel takes half a minute (an apply that removes a job is still running when it is interrupted)."""
    return emulator_factory(run_seconds=3600, cancel_seconds=30)


@pytest.fixture
def backend(tmp_path: Path, emulator: Emulator) -> Iterator[Backend]:
    """The emulator's endpoint and a local state file, as `--endpoint URL --state FILE` give."""
    backend = Backend(
        workspace="default", state_spec=str(tmp_path / "state" / "default.json"), emulator=False, endpoint=emulator.url
    )
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.yaml"
    path.write_text(config_text(2))
    return path


class Events:
    """An apply view that only remembers what it was told."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.interrupts = 0
        self.closed = False

    def event(self, event: Any) -> None:
        self.events.append(event)

    def tick(self) -> None:
        pass

    def interrupted(self) -> None:
        self.interrupts += 1

    def close(self) -> None:
        self.closed = True


class Interrupting(Events):
    """Ctrl-C at the first tick of the main loop (raised in the main thread: delivered right there)."""

    def tick(self) -> None:
        if self.interrupts == 0:
            signal.raise_signal(signal.SIGINT)


def apply_config(request: PlanRequest, backend: Backend) -> Any:
    apply_request = ApplyRequest(request, wait_timeout=30.0)
    events = Events()
    with planned(apply_request, backend, load_configuration(request)) as prepared:
        assert prepared.plan.has_changes
        run = run_apply(prepared, apply_request, events)
    assert events.closed and events.interrupts == 0
    return run, events


def test_plan_is_a_create_then_after_apply_a_noop(config: Path, backend: Backend) -> None:
    request = PlanRequest((str(config),), clock=lambda: NOON)
    loaded: list[Any] = []
    first = plan(request, backend, on_loaded=loaded.append)
    assert loaded == [first.desired] and first.prior is None
    assert [(c.address, c.action.value) for c in first.plan.changes] == [("job-0000", "create"), ("job-0001", "create")]
    assert first.plan.created_at == "2026-03-04T12:00:00Z"

    run, events = apply_config(request, backend)
    assert run.exit_code == EXIT_OK and not run.interrupted and run.write_error is None
    assert {e.address for e in events.events if e.status == "done"} == {"job-0000", "job-0001"}
    assert sorted(run.report.state.jobs) == ["job-0000", "job-0001"]

    again = plan(request, backend)
    assert not again.plan.has_changes
    assert again.prior is not None and sorted(again.prior.jobs) == ["job-0000", "job-0001"]
    assert {job.name for job in again.live.jobs.values()} == {r.name for r in again.prior.jobs.values()}


def test_a_refused_policy_is_raised_by_the_plan_operation(config: Path, backend: Backend) -> None:
    with pytest.raises(PolicyError, match="cost"):
        plan(PlanRequest((str(config),), max_cost=0.0), backend)


def test_a_saved_plan_applies_once_then_is_stale(tmp_path: Path, config: Path, backend: Backend) -> None:
    request = PlanRequest((str(config),))
    saved = tmp_path / "out" / "plan.json"
    save_plan(saved, plan(request, backend), request)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    doc = json.loads(saved.read_text())
    assert doc["config"]["files"] and doc["config"]["hash"]

    with pytest.raises(UsageError, match="--target cannot be used with a saved plan"):
        ApplyRequest(PlanRequest((str(saved),), targets=("job-0000",)), doc)
    apply_request = ApplyRequest(PlanRequest((str(saved),)), doc, wait_timeout=30.0)
    with planned(apply_request, backend) as prepared:
        run = run_apply(prepared, apply_request, Events())
    assert run.exit_code == EXIT_OK and sorted(run.report.state.jobs) == ["job-0000", "job-0001"]
    with pytest.raises(StalePlanError, match="stale"), planned(apply_request, backend):
        pass


def test_nothing_to_apply_records_the_refreshed_states(config: Path, backend: Backend, emulator: Emulator) -> None:
    request = PlanRequest((str(config),))
    run, _ = apply_config(request, backend)
    assert {r.last_state for r in run.report.state.jobs.values()} != {"JOB_STATE_SUCCEEDED"}
    for record in run.report.state.jobs.values():
        emulator.set_job_state(record.name, "JOB_STATE_SUCCEEDED")
    apply_request = ApplyRequest(request)
    with planned(apply_request, backend, load_configuration(request)) as prepared:
        assert not prepared.plan.has_changes
        record_refresh(prepared)
    state = backend.store().read()
    assert state is not None and {r.last_state for r in state.jobs.values()} == {"JOB_STATE_SUCCEEDED"}


def test_ctrl_c_stops_new_steps_saves_state_and_says_130(config: Path, backend: Backend) -> None:
    request = PlanRequest((str(config),))
    apply_config(request, backend)
    config.write_text(config_text(1))  # job-0001 is cancelled, waited for, then deleted
    apply_request = ApplyRequest(request, wait_timeout=60.0)
    events = Interrupting()
    before = signal.getsignal(signal.SIGINT)
    with planned(apply_request, backend, load_configuration(request)) as prepared:
        run = run_apply(prepared, apply_request, events)
    assert events.interrupts == 1 and events.closed
    assert run.signalled and run.interrupted and run.exit_code == EXIT_INTERRUPTED and run.write_error is None
    saved = backend.store().read()
    assert saved is not None and saved.jobs == run.report.state.jobs and "job-0001" in saved.jobs
    assert signal.getsignal(signal.SIGINT) is before  # the handler of before is back


def test_drift_in_sync_then_a_failed_job(config: Path, backend: Backend, emulator: Emulator) -> None:
    request = PlanRequest((str(config),))
    apply_config(request, backend)
    report = drift(backend, load_configuration(request), clock=lambda: NOON)
    assert not report.has_drift and report.count(DriftKind.IN_SYNC) == 2
    assert report.created_at == "2026-03-04T12:00:00Z"

    state = backend.store().read()
    assert state is not None
    emulator.set_job_state(state.jobs["job-0001"].name, "JOB_STATE_FAILED")
    report = drift(backend)
    assert report.has_drift
    assert {i.address: i.kind for i in report.items if i.kind.is_drift} == {"job-0001": DriftKind.TERMINAL}


def test_drift_refuses_a_named_state_that_does_not_exist(tmp_path: Path, emulator: Emulator) -> None:
    backend = Backend(workspace="default", state_spec=str(tmp_path / "nowhere.json"), emulator=False,
                      endpoint=emulator.url)
    try:
        with pytest.raises(UsageError, match="no state at"):
            drift(backend)
    finally:
        backend.close()


def test_status_reads_each_applied_job_and_logs_refuse_an_unknown_address(config: Path, backend: Backend) -> None:
    request = PlanRequest((str(config),))
    run, _ = apply_config(request, backend)
    report = status_reader(backend, clock=lambda: NOON)()
    assert sorted(j.address for j in report.jobs) == ["job-0000", "job-0001"]
    assert report.created_at == "2026-03-04T12:00:00Z"
    source = log_source(backend, "job-0001")
    assert source.name == run.report.state.jobs["job-0001"].name and source.project == "demo-project"
    assert log_source(backend, source.name).name == source.name
    with pytest.raises(UsageError, match="not in state"):
        log_source(backend, "no-such-job")


def test_run_gives_back_the_exit_code_in_process(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from planner.cli import run

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nproject: demo-project\njobs: [oops\n")
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert run(["validate", str(config)]) == 0
        assert run(["validate", str(bad)]) == 1
    finally:
        signal.signal(signal.SIGINT, previous)  # run() installs planner's own Ctrl-C handler
    err = capsys.readouterr().err
    assert "bad.yaml:4:1: YAML syntax error" in err and "Traceback" not in err
