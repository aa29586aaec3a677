"""Issue #12 on the models (pure): drift of moved and released jobs, config pending under
ignoreChanges, the state format 2 upgrade, release journal lines, and apply's new steps."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from planner.apply import Applier, ApplyOptions
from planner.canonical import canonical_spec, request_body, spec_hash
from planner.config.model import Desired, DesiredJob, Lifecycle, OnRemove
from planner.drift import DriftKind, detect_drift
from planner.errors import StateError
from planner.plans.model import Action, Plan, Reason, ResourceChange, Step, StepKind
from planner.refresh import Live, live_job
from planner.state.fileformat import journal_line, read_journal_line, read_state, write_state
from planner.state.model import HISTORY_LIMIT, JobRecord, JournalEntry, ReleasedJob, State, apply_entries, with_history

P, L, W = "proj", "us-central1", "default"
LINEAGE = "00000000-0000-4000-8000-000000000001"


def body(image: str = "img:1", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "displayName": "train",
        "labels": {"team": "vision"},
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": image},
                }
            ]
        },
    }
    spec.update(extra)
    return spec


def name(job_id: str, location: str = L) -> str:
    return f"projects/{P}/locations/{location}/customJobs/{job_id}"


def live_of(address: str, b: dict[str, Any], job_id: str = "1", location: str = L, state: str = "JOB_STATE_RUNNING"):  # type: ignore[no-untyped-def]
    resource = request_body(canonical_spec(b), address, W)
    resource.update(name=name(job_id, location), state=state, createTime="2026-01-01T00:00:00Z")
    return live_job(resource)


def record(address: str, b: dict[str, Any], job_id: str = "1", **kw: Any) -> JobRecord:
    c = canonical_spec(b)
    return JobRecord(address, name(job_id), P, L, spec_hash(c), c, "JOB_STATE_RUNNING", **kw)


def live(*jobs: Any) -> Live:
    return Live(jobs={j.name: j for j in jobs})


# -- drift ---------------------------------------------------------------------------------------


def test_released_jobs_are_reported_as_released_and_are_not_drift() -> None:
    job = live_of("gone", body(), "5")
    prior = State(
        LINEAGE, 3, {}, released={job.name: ReleasedJob("gone", job.name, P, L, "2026-01-02T00:00:00Z", "forget")}
    )
    report = detect_drift(prior, live(job), workspace=W)
    assert [(i.kind, i.address, i.job_name) for i in report.items] == [(DriftKind.RELEASED, "gone", job.name)]
    assert not report.has_drift and report.summary()["released"] == 1
    unreleased = detect_drift(State(LINEAGE, 3, {}), live(job), workspace=W)
    assert unreleased.has_drift and unreleased.items[0].kind is DriftKind.UNMANAGED
    assert "released" not in unreleased.summary()  # counted only when present


def test_a_job_live_elsewhere_than_state_says_is_changed() -> None:
    moved = live_of("a", body(), "9", location="europe-west4")
    report = detect_drift(State(LINEAGE, 3, {"a": record("a", body())}), live(moved), workspace=W)
    (item,) = report.items
    assert item.kind is DriftKind.CHANGED and item.job_name == moved.name
    assert [(c.path, c.before, c.after) for c in item.changes] == [("location", L, "europe-west4")]
    assert "another project or location" in item.detail


def test_config_pending_leaves_out_ignored_paths() -> None:
    applied = body(labels={"team": "vision", "owner": "bob"})
    lc = Lifecycle(ignore_changes=("labels.owner",))

    def desired(b: dict[str, Any]) -> Desired:
        return Desired(jobs={"a": DesiredJob("a", P, L, b, lc)})

    prior = State(LINEAGE, 3, {"a": record("a", applied)})
    only_owner = desired(body(labels={"team": "vision", "owner": "alice"}))
    assert detect_drift(prior, live(live_of("a", applied)), workspace=W, desired=only_owner).config_pending == ()
    more = desired(body("img:2", labels={"team": "vision", "owner": "alice"}))
    (pending,) = detect_drift(prior, live(live_of("a", applied)), workspace=W, desired=more).config_pending
    assert [c.path for c in pending.changes] == ["jobSpec.workerPoolSpecs[0].containerSpec.imageUri"]


# -- state format 2 ------------------------------------------------------------------------------


def version_1_bytes() -> bytes:
    """A state exactly as planner 0.1.0 wrote it (format 1)."""
    spec = canonical_spec(body())
    doc = {
        "jobs": {
            "a": {
                "last_state": "JOB_STATE_RUNNING",
                "location": L,
                "name": name("1"),
                "old_names": [],
                "on_remove": "cancel",
                "pending": None,
                "prevent_destroy": True,
                "project": P,
                "spec": spec,
                "spec_hash": spec_hash(spec),
            }
        },
        "lineage": LINEAGE,
        "planner_version": "0.1.0",
        "serial": 4,
        "version": 1,
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def test_a_format_1_state_reads_with_its_lifecycle_lists_unknown() -> None:
    state = read_state(version_1_bytes(), "s.json")
    rec = state.jobs["a"]
    assert (state.version, state.lineage, state.serial, state.released) == (1, LINEAGE, 4, {})
    assert (rec.prevent_destroy, rec.on_remove, rec.ignore_changes, rec.rerun_on, rec.history) == (
        True,
        "cancel",
        None,
        None,
        (),
    )
    # Written back (the stores set the current version) as format 2, lineage and serial kept.
    upgraded = json.loads(write_state(replace(state, version=2)))
    assert upgraded["version"] == 2 and upgraded["lineage"] == LINEAGE and upgraded["serial"] == 4
    assert upgraded["jobs"]["a"]["ignore_changes"] is None and upgraded["released"] == {}
    assert read_state(write_state(replace(state, version=2)), "s.json") == replace(state, version=2)


def test_format_2_round_trips_history_lists_and_released_jobs() -> None:
    rec = replace(
        record("a", body()),
        ignore_changes=("labels.owner",),
        rerun_on=("JOB_STATE_FAILED",),
        history=(name("0"),),
    )
    let_go = ReleasedJob("b", name("7"), P, L, "2026-01-02T00:00:00Z", "cancel")
    state = State(LINEAGE, 5, {"a": rec}, released={let_go.name: let_go})
    assert read_state(write_state(state), "s.json") == state
    bad = json.loads(write_state(state))
    bad["released"][let_go.name]["how"] = "delete"
    with pytest.raises(StateError, match=r"released\..*how: must be one of cancel, forget"):
        read_state(json.dumps(bad).encode(), "s.json")


def test_release_journal_lines_round_trip_and_replay() -> None:
    let_go = ReleasedJob("b", name("7"), P, L, "2026-01-02T00:00:00Z", "forget")
    entry = JournalEntry.release(let_go)
    line = journal_line(entry, lineage=LINEAGE, serial=5)
    assert read_journal_line(line, "j") == (LINEAGE, 5, entry)
    state = State(LINEAGE, 5, {"b": record("b", body(), "7")})
    replayed = apply_entries(state, [entry, JournalEntry.remove("b")])
    assert replayed.jobs == {} and replayed.released == {let_go.name: let_go}
    # Lines of the older operations are byte for byte what format 1 wrote (no new key).
    assert b"released" not in journal_line(JournalEntry.remove("b"), lineage=LINEAGE, serial=5)
    with pytest.raises(ValueError, match="released job"):
        JournalEntry("put", "b", record("b", body()), let_go)


def test_history_keeps_the_newest_names_once() -> None:
    history: tuple[str, ...] = ()
    for i in range(HISTORY_LIMIT + 3):
        history = with_history(history, name(str(i)))
    assert history == tuple(name(str(i)) for i in reversed(range(3, HISTORY_LIMIT + 3)))
    assert with_history((name("1"), name("2")), name("2")) == (name("2"), name("1"))


# -- apply's state-only update -------------------------------------------------------------------


class _NoApi:
    """A client that fails the test if apply calls the API at all."""

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"apply called the API ({attr}) for a state-only step")


class _Journal:
    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []

    def append(self, *entries: JournalEntry) -> None:
        self.entries.extend(entries)


def test_a_lifecycle_update_is_saved_without_an_api_call() -> None:
    rec = record("a", body())
    lc = Lifecycle(prevent_destroy=True, on_remove=OnRemove.FORGET, ignore_changes=("labels.x",))
    row = ResourceChange(
        "a",
        Action.UPDATE,
        Reason.LIFECYCLE_CHANGED,
        P,
        L,
        job_name=rec.name,
        steps=(Step(StepKind.UPDATE, rec.name),),
        lifecycle=lc,
    )
    plan = Plan(workspace=W, changes=(row,), lineage=LINEAGE, serial=3, live_fingerprint="", config_hash="")
    journal = _Journal()
    report = Applier(_NoApi(), journal, State(LINEAGE, 3, {"a": rec}), ApplyOptions()).run(plan)  # type: ignore[arg-type]
    saved = report.state.jobs["a"]
    assert (saved.prevent_destroy, saved.on_remove, saved.ignore_changes, saved.rerun_on) == (
        True,
        "forget",
        ("labels.x",),
        (),
    )
    assert saved.name == rec.name and saved.spec == rec.spec
    assert [e.op for e in journal.entries] == ["put"]


def test_forgetting_a_removed_job_releases_it() -> None:
    rec = record("a", body(), on_remove="forget")
    row = ResourceChange(
        "a", Action.FORGET, Reason.REMOVED, P, L, job_name=rec.name, steps=(Step(StepKind.FORGET, rec.name),)
    )
    plan = Plan(workspace=W, changes=(row,), lineage=LINEAGE, serial=3, live_fingerprint="", config_hash="")
    journal = _Journal()
    applier = Applier(
        _NoApi(), journal, State(LINEAGE, 3, {"a": rec}), ApplyOptions(), now=lambda: "2026-01-03T00:00:00Z"
    )  # type: ignore[arg-type]
    state = applier.run(plan).state
    assert state.jobs == {}
    assert state.released == {rec.name: ReleasedJob("a", rec.name, P, L, "2026-01-03T00:00:00Z", "forget")}
    assert [e.op for e in journal.entries] == ["release", "remove"]


def test_config_pending_shows_a_move_with_or_without_a_spec_change() -> None:
    prior = State(LINEAGE, 3, {"a": record("a", body())})

    def pending(b: dict[str, Any]):  # type: ignore[no-untyped-def]
        desired = Desired(jobs={"a": DesiredJob("a", P, "europe-west4", b, Lifecycle())})
        (item,) = detect_drift(prior, live(live_of("a", body())), workspace=W, desired=desired).config_pending
        return item.detail, [c.path for c in item.changes]

    assert pending(body()) == ("config moves the job to another project or location", ["location"])
    assert pending(body("img:2")) == (
        "config differs from the last applied spec",
        ["location", "jobSpec.workerPoolSpecs[0].containerSpec.imageUri"],
    )
