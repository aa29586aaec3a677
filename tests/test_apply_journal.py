"""The apply journal writer: a step is reported done only once its records are durable, the
records of concurrent steps share appends, and a record that cannot be written fails its step."""

from __future__ import annotations

import threading
import time

import pytest
from test_plan_truth_units import LINEAGE, L, P, W, _NoApi, body, record

from planner.apply import Applier, ApplyOptions, Outcome, StepEvent
from planner.config.model import Lifecycle
from planner.errors import StateError
from planner.plans.model import Action, Plan, Reason, ResourceChange, Step, StepKind
from planner.state.model import JobRecord, JournalEntry, State

COUNT = 20


def lifecycle_plan() -> tuple[Plan, State]:
    """COUNT state-only steps (a lifecycle update each): apply sends nothing to the API for them."""
    records: dict[str, JobRecord] = {f"a{i:02d}": record(f"a{i:02d}", body(), job_id=str(i)) for i in range(COUNT)}
    rows = tuple(
        ResourceChange(
            address,
            Action.UPDATE,
            Reason.LIFECYCLE_CHANGED,
            P,
            L,
            job_name=rec.name,
            steps=(Step(StepKind.UPDATE, rec.name),),
            lifecycle=Lifecycle(prevent_destroy=True),
        )
        for address, rec in records.items()
    )
    plan = Plan(workspace=W, changes=rows, lineage=LINEAGE, serial=3, live_fingerprint="", config_hash="")
    return plan, State(LINEAGE, 3, records)


class GatedJournal:
    """Holds every append until the test opens the gate; keeps what each call was given."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[tuple[JournalEntry, ...]] = []
        self.durable: set[str] = set()

    def append(self, *entries: JournalEntry) -> None:
        self.gate.wait()
        self.calls.append(entries)
        self.durable.update(e.address for e in entries)


def test_a_step_is_reported_done_only_once_its_record_is_durable_and_records_share_appends() -> None:
    plan, prior = lifecycle_plan()
    journal = GatedJournal()
    events: list[StepEvent] = []
    early: list[str] = []

    def on_event(event: StepEvent) -> None:
        if event.status == Outcome.DONE.value and event.address not in journal.durable:
            early.append(event.address)
        events.append(event)

    applier = Applier(_NoApi(), journal, prior, ApplyOptions(parallelism=COUNT), on_event=on_event)  # type: ignore[arg-type]
    result: list[object] = []
    runner = threading.Thread(target=lambda: result.append(applier.run(plan)))
    runner.start()
    deadline = time.monotonic() + 10
    while sum(e.status == "start" for e in events) < COUNT and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # every worker has queued its record by now
    assert [e for e in events if e.status != "start"] == []  # nothing is done while nothing is durable
    journal.gate.set()
    runner.join(10)
    assert not runner.is_alive()
    assert early == []
    assert sorted(e.address for e in events if e.status == "done") == sorted(prior.jobs)
    written = [e.address for call in journal.calls for e in call]
    assert sorted(written) == sorted(prior.jobs)  # each record once
    assert len(journal.calls) < COUNT  # records waiting together went out together
    assert all(rec.prevent_destroy for rec in result[0].state.jobs.values())  # type: ignore[attr-defined]


class FailingJournal:
    def __init__(self) -> None:
        self.tries = 0

    def append(self, *entries: JournalEntry) -> None:
        self.tries += 1
        raise StateError("cannot append to state journal j: No space left on device")


def test_a_record_that_cannot_be_written_fails_its_step_and_stops_apply() -> None:
    plan, prior = lifecycle_plan()
    applier = Applier(_NoApi(), FailingJournal(), prior, ApplyOptions(parallelism=2))  # type: ignore[arg-type]
    report = applier.run(plan)
    failed = [r for r in report.results if r.outcome is Outcome.FAILED]
    assert failed and all("could not be written: cannot append" in r.message for r in failed)
    assert {u.address for u in report.unrecorded} == {r.address for r in failed}
    assert applier.stop.is_set()
    assert report.count(Outcome.DONE) == 0
    # No step started after the failure was seen beyond those already under way.
    assert len(failed) < COUNT


class BrokenJournal:
    """A journal with a bug (not a StateError): it must not silently stop the writer."""

    def append(self, *entries: JournalEntry) -> None:
        raise RuntimeError("journal bug")


def test_a_bug_in_the_journal_fails_the_steps_stops_apply_and_is_raised() -> None:
    plan, prior = lifecycle_plan()
    applier = Applier(_NoApi(), BrokenJournal(), prior, ApplyOptions(parallelism=2))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="journal bug"):
        applier.run(plan)
    assert applier.stop.is_set()


def test_a_bug_in_the_progress_sink_does_not_stop_the_records() -> None:
    plan, prior = lifecycle_plan()
    journal = GatedJournal()
    journal.gate.set()

    def on_event(event: StepEvent) -> None:
        if event.status == "done":
            raise ValueError("view bug")

    applier = Applier(_NoApi(), journal, prior, ApplyOptions(parallelism=4), on_event=on_event)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="view bug"):
        applier.run(plan)
    assert sorted(e.address for call in journal.calls for e in call) == sorted(prior.jobs)  # every record written
