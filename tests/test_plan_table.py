"""Every row of the DESIGN §5 table, and every lifecycle option, on constructed models (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from planner.canonical import canonical_spec, request_body, spec_hash
from planner.config.model import Desired, DesiredJob, Lifecycle, OnRemove
from planner.documents.plan import plan_from_json, plan_to_json
from planner.errors import PlanRefusedError
from planner.plans.engine import make_plan
from planner.plans.model import Action, PlanOptions, Reason, StepKind
from planner.refresh import Live, LiveJob, live_job
from planner.state.model import JobRecord, State

P, L, W = "proj", "us-central1", "default"


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


def desired(*jobs: tuple[str, dict[str, Any], Lifecycle]) -> Desired:
    return Desired(
        jobs={a: DesiredJob(address=a, project=P, location=L, body=b, lifecycle=lc) for a, b, lc in jobs},
        config_hash="cfg",
    )


def live(
    address: str,
    b: dict[str, Any],
    state: str = "JOB_STATE_RUNNING",
    job_id: str = "1",
    created: str = "2026-01-01T00:00:00Z",
    workspace: str = W,
) -> LiveJob:
    resource = request_body(canonical_spec(b), address, workspace)
    resource.update(name=f"projects/{P}/locations/{L}/customJobs/{job_id}", state=state, createTime=created)
    return live_job(resource)


def record(address: str, b: dict[str, Any], job_id: str = "1", **kw: Any) -> JobRecord:
    c = canonical_spec(b)
    return JobRecord(
        address=address,
        name=f"projects/{P}/locations/{L}/customJobs/{job_id}",
        project=P,
        location=L,
        spec_hash=spec_hash(c),
        spec=c,
        last_state="JOB_STATE_RUNNING",
        **kw,
    )


def state(*records: JobRecord) -> State:
    return State(lineage="lin", serial=3, jobs={r.address: r for r in records})


def lv(*jobs: LiveJob) -> Live:
    return Live(jobs={j.name: j for j in jobs})


def plan_of(d: Desired, s: State | None, live_: Live, **opts: Any):  # type: ignore[no-untyped-def]
    return make_plan(d, s, live_, PlanOptions(workspace=W, **opts))


def only(plan):  # type: ignore[no-untyped-def]
    assert len(plan.changes) == 1, plan.changes
    return plan.changes[0]


LC = Lifecycle()


def test_new_job_is_created() -> None:
    c = only(plan_of(desired(("a", body(), LC)), None, lv()))
    assert (c.action, c.reason) == (Action.CREATE, Reason.NEW)
    assert [s.kind for s in c.steps] == [StepKind.CREATE]


def test_labelled_job_with_same_spec_is_adopted() -> None:
    c = only(plan_of(desired(("a", body(), LC)), None, lv(live("a", body()))))
    assert (c.action, c.reason) == (Action.ADOPT, Reason.FOUND_BY_LABELS)


def test_job_deleted_outside_is_created_again() -> None:
    c = only(plan_of(desired(("a", body(), LC)), state(record("a", body())), lv()))
    assert (c.action, c.reason) == (Action.CREATE, Reason.DELETED_OUTSIDE)


@pytest.mark.parametrize("job_state", ["JOB_STATE_RUNNING", "JOB_STATE_QUEUED", "JOB_STATE_SUCCEEDED"])
def test_same_spec_active_or_succeeded_is_noop(job_state: str) -> None:
    p = plan_of(desired(("a", body(), LC)), state(record("a", body())), lv(live("a", body(), job_state)))
    assert only(p).action is Action.NOOP
    assert not p.has_changes


def test_terminal_in_rerun_on_is_replaced() -> None:
    lc = Lifecycle(rerun_on=("JOB_STATE_FAILED",))
    c = only(plan_of(desired(("a", body(), lc)), state(record("a", body())), lv(live("a", body(), "JOB_STATE_FAILED"))))
    assert (c.action, c.reason) == (Action.REPLACE, Reason.RERUN)
    assert [s.kind for s in c.steps] == [StepKind.CREATE, StepKind.DELETE]
    assert "JOB_STATE_FAILED" in c.reason_text


def test_other_terminal_state_is_noop_with_note() -> None:
    c = only(plan_of(desired(("a", body(), LC)), state(record("a", body())), lv(live("a", body(), "JOB_STATE_FAILED"))))
    assert c.action is Action.NOOP
    assert c.notes and "rerunOn" in c.notes[0]


def test_spec_change_replaces_running_job_cancel_create_delete() -> None:
    c = only(
        plan_of(
            desired(("a", body("img:2"), LC)), state(record("a", body())), lv(live("a", body(), "JOB_STATE_RUNNING"))
        )
    )
    assert (c.action, c.reason) == (Action.REPLACE, Reason.SPEC_CHANGED)
    assert [s.kind for s in c.steps] == [StepKind.CANCEL, StepKind.CREATE, StepKind.DELETE]
    assert c.replace_paths == ("jobSpec.workerPoolSpecs[0].containerSpec.imageUri",)
    assert c.warnings


def test_spec_change_of_finished_job_needs_no_cancel() -> None:
    c = only(
        plan_of(
            desired(("a", body("img:2"), LC)), state(record("a", body())), lv(live("a", body(), "JOB_STATE_SUCCEEDED"))
        )
    )
    assert [s.kind for s in c.steps] == [StepKind.CREATE, StepKind.DELETE]
    assert not c.warnings


def test_labelled_job_with_other_spec_not_in_state_is_replaced() -> None:
    c = only(plan_of(desired(("a", body("img:2"), LC)), None, lv(live("a", body(), "JOB_STATE_SUCCEEDED"))))
    assert c.action is Action.REPLACE
    assert [s.kind for s in c.steps] == [StepKind.ADOPT, StepKind.CREATE, StepKind.DELETE]


def test_removed_active_job_is_cancelled_then_deleted() -> None:
    c = only(plan_of(desired(), state(record("a", body())), lv(live("a", body()))))
    assert (c.action, c.reason) == (Action.DELETE, Reason.REMOVED)
    assert [s.kind for s in c.steps] == [StepKind.CANCEL, StepKind.DELETE]


def test_removed_terminal_job_is_deleted() -> None:
    c = only(plan_of(desired(), state(record("a", body())), lv(live("a", body(), "JOB_STATE_SUCCEEDED"))))
    assert [s.kind for s in c.steps] == [StepKind.DELETE]


def test_on_remove_cancel_stops_and_forgets() -> None:
    c = only(plan_of(desired(), state(record("a", body(), on_remove="cancel")), lv(live("a", body()))))
    assert c.action is Action.CANCEL
    assert [s.kind for s in c.steps] == [StepKind.CANCEL, StepKind.FORGET]


def test_on_remove_forget_only_forgets() -> None:
    c = only(plan_of(desired(), state(record("a", body(), on_remove="forget")), lv(live("a", body()))))
    assert c.action is Action.FORGET
    assert [s.kind for s in c.steps] == [StepKind.FORGET]


def test_removed_and_already_gone_is_forgotten() -> None:
    c = only(plan_of(desired(), state(record("a", body())), lv()))
    assert (c.action, c.reason) == (Action.FORGET, Reason.ALREADY_GONE)


def test_duplicate_labelled_job_not_in_state_is_deleted() -> None:
    p = plan_of(
        desired(("a", body(), LC)),
        state(record("a", body(), job_id="1")),
        lv(live("a", body(), job_id="1"), live("a", body(), job_id="2", created="2026-01-02T00:00:00Z")),
    )
    by_reason = {c.reason: c for c in p.changes}
    assert by_reason[Reason.UNCHANGED].action is Action.NOOP
    dup = by_reason[Reason.DUPLICATE]
    assert dup.action is Action.DELETE and dup.job_name.endswith("/2")
    assert [s.kind for s in dup.steps] == [StepKind.CANCEL, StepKind.DELETE]


def test_lost_create_during_replace_is_adopted_and_old_cleaned() -> None:
    p = plan_of(
        desired(("a", body("img:2"), LC)),
        state(record("a", body(), job_id="1")),
        lv(live("a", body(), job_id="1"), live("a", body("img:2"), job_id="2", created="2026-01-02T00:00:00Z")),
    )
    actions = sorted((c.action.value, c.reason.value, c.job_name.rsplit("/", 1)[-1]) for c in p.changes)
    assert actions == [("adopt", "found_by_labels", "2"), ("delete", "replaced_job_cleanup", "1")]


def test_prevent_destroy_refuses_replace_and_removal() -> None:
    lc = Lifecycle(prevent_destroy=True)
    with pytest.raises(PlanRefusedError, match="a"):
        plan_of(desired(("a", body("img:2"), lc)), state(record("a", body())), lv(live("a", body())))
    with pytest.raises(PlanRefusedError):
        plan_of(desired(), state(record("a", body(), prevent_destroy=True)), lv(live("a", body())))
    # Creating and no-op plans are fine.
    plan_of(desired(("a", body(), lc)), state(record("a", body())), lv(live("a", body())))


def test_ignore_changes_hides_a_difference() -> None:
    lc = Lifecycle(ignore_changes=("labels.owner",))
    b_live = body(labels={"team": "vision", "owner": "x"})
    b_desired = body(labels={"team": "vision", "owner": "y"})
    c = only(plan_of(desired(("a", b_desired, lc)), state(record("a", b_live)), lv(live("a", b_live))))
    assert c.action is Action.NOOP


def test_ignore_changes_with_every_item_of_a_list() -> None:
    lc = Lifecycle(ignore_changes=("jobSpec.workerPoolSpecs[*].containerSpec.imageUri",))
    b_live, b_desired = body("img:1"), body("img:2")
    c = only(plan_of(desired(("a", b_desired, lc)), state(record("a", b_live)), lv(live("a", b_live))))
    assert c.action is Action.NOOP
    b_more = body("img:2", displayName="train-2")
    c = only(plan_of(desired(("a", b_more, lc)), state(record("a", b_live)), lv(live("a", b_live))))
    assert c.action is Action.REPLACE and [f.path for f in c.changes if not f.ignored] == ["displayName"]
    # The new job takes the configured image (as Terraform does), so the diff shows it, marked.
    hidden = [f for f in c.changes if f.ignored]
    assert [(f.path, f.before, f.after, f.forces_replacement) for f in hidden] == [
        ("jobSpec.workerPoolSpecs[0].containerSpec.imageUri", "img:1", "img:2", False)
    ]


def test_old_replaced_job_is_deleted_and_gone_one_forgotten() -> None:
    rec = record(
        "a",
        body(),
        job_id="3",
        old_names=(f"projects/{P}/locations/{L}/customJobs/1", f"projects/{P}/locations/{L}/customJobs/2"),
    )
    p = plan_of(
        desired(("a", body(), LC)),
        state(rec),
        lv(live("a", body(), job_id="3"), live("a", body("img:0"), "JOB_STATE_CANCELLED", job_id="1")),
    )
    kinds = sorted((c.action.value, c.reason.value) for c in p.changes)
    assert kinds == [("delete", "replaced_job_cleanup"), ("forget", "already_gone"), ("no-op", "unchanged")]


def test_targets_restrict_the_plan() -> None:
    p = plan_of(desired(("a", body(), LC), ("b", body(), LC)), None, lv(), targets=frozenset({"b"}))
    assert [c.address for c in p.changes] == ["b"]


def test_other_workspace_jobs_are_ignored() -> None:
    c = only(plan_of(desired(("a", body(), LC)), None, lv(live("a", body(), workspace="prod"))))
    assert c.action is Action.CREATE


def test_echoed_defaults_and_int_enums_plan_as_noop() -> None:
    b = body(
        jobSpec={
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1", "acceleratorType": "NVIDIA_TESLA_T4", "acceleratorCount": 1},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": "i"},
                }
            ],
            "baseOutputDirectory": {"outputUriPrefix": "gs://b/out"},
        }
    )
    echoed = {
        "displayName": "train",
        "labels": {"team": "vision"},
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1", "acceleratorType": 5, "acceleratorCount": 1},
                    "replicaCount": 1,
                    "diskSpec": {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 100},
                    "containerSpec": {"imageUri": "i", "args": [], "env": []},
                }
            ],
            "scheduling": {"timeout": "604800s", "strategy": "STANDARD", "restartJobOnWorkerRestart": False},
            "baseOutputDirectory": {"outputUriPrefix": "gs://b/out/"},
            "enableWebAccess": False,
        },
    }
    assert canonical_spec(echoed) == canonical_spec(b)


def test_plan_json_round_trips() -> None:
    p = plan_of(desired(("a", body("img:2"), LC), ("b", body(), LC)), state(record("a", body())), lv(live("a", body())))
    doc = plan_to_json(p, for_file=True)
    again = plan_from_json(doc)
    assert plan_to_json(again, for_file=True) == doc
    assert doc["summary"]["create"] == 1 and doc["summary"]["replace"] == 1


# -- issue #12: plans tell the whole truth ----------------------------------------------------


def moved_live(address: str, b: dict[str, Any], location: str, job_id: str = "1") -> LiveJob:
    resource = request_body(canonical_spec(b), address, W)
    resource.update(name=f"projects/{P}/locations/{location}/customJobs/{job_id}", state="JOB_STATE_RUNNING")
    return live_job(resource)


def test_a_job_moved_to_another_location_is_replaced_there_create_first() -> None:
    old = moved_live("a", body(), "asia-east1")
    rec = JobRecord(
        address="a",
        name=old.name,
        project=P,
        location="asia-east1",
        spec_hash=spec_hash(canonical_spec(body())),
        spec=canonical_spec(body()),
        last_state="JOB_STATE_RUNNING",
    )
    c = only(plan_of(desired(("a", body(), LC)), state(rec), lv(old)))
    assert (c.action, c.reason, c.location) == (Action.REPLACE, Reason.MOVED, L)
    assert [(f.path, f.before, f.after, f.forces_replacement) for f in c.changes] == [
        ("location", "asia-east1", L, True)
    ]
    assert [s.kind for s in c.steps] == [StepKind.CREATE, StepKind.CANCEL, StepKind.DELETE]
    # A spec change as well: both shown, still create first.
    c = only(plan_of(desired(("a", body("img:2"), LC)), state(rec), lv(old)))
    assert c.reason is Reason.SPEC_CHANGED and c.changes[0].path == "location"
    assert [s.kind for s in c.steps] == [StepKind.CREATE, StepKind.CANCEL, StepKind.DELETE]


def test_a_labelled_job_elsewhere_is_not_adopted_as_is() -> None:
    c = only(plan_of(desired(("a", body(), LC)), None, lv(moved_live("a", body(), "asia-east1"))))
    assert c.action is Action.REPLACE and c.reason is Reason.MOVED


@pytest.mark.parametrize(
    ("lifecycle", "recorded", "path"),
    [
        (Lifecycle(prevent_destroy=True), {}, "lifecycle.preventDestroy"),
        (Lifecycle(on_remove=OnRemove.FORGET), {}, "lifecycle.onRemove"),
        (Lifecycle(ignore_changes=("labels.x",)), {"ignore_changes": ()}, "lifecycle.ignoreChanges"),
        (Lifecycle(rerun_on=("JOB_STATE_FAILED",)), {"rerun_on": ()}, "lifecycle.rerunOn"),
        (Lifecycle(), {"prevent_destroy": True, "on_remove": "cancel"}, "lifecycle.onRemove"),
    ],
)
def test_a_lifecycle_edit_is_a_state_only_update(lifecycle: Lifecycle, recorded: dict[str, Any], path: str) -> None:
    c = only(plan_of(desired(("a", body(), lifecycle)), state(record("a", body(), **recorded)), lv(live("a", body()))))
    assert (c.action, c.reason) == (Action.UPDATE, Reason.LIFECYCLE_CHANGED)
    assert [s.kind for s in c.steps] == [StepKind.UPDATE] and not c.touches_job()
    assert path in [f.path for f in c.changes] and not any(f.forces_replacement for f in c.changes)


def test_lifecycle_lists_a_format_1_state_does_not_know_are_not_compared() -> None:
    lc = Lifecycle(ignore_changes=("labels.x",), rerun_on=("JOB_STATE_FAILED",))
    c = only(plan_of(desired(("a", body(), lc)), state(record("a", body())), lv(live("a", body()))))
    assert c.action is Action.NOOP


def test_released_jobs_are_neither_warned_about_nor_adopted() -> None:
    from planner.state.model import ReleasedJob

    gone = live("a", body(), job_id="5")
    let_go = ReleasedJob("a", gone.name, P, L, "2026-01-01T00:00:00Z", "forget")
    prior = State(lineage="lin", serial=3, jobs={}, released={gone.name: let_go})
    p = plan_of(desired(), prior, lv(gone))
    assert p.changes == () and p.warnings == ()
    c = only(plan_of(desired(("a", body(), LC)), prior, lv(gone)))
    assert c.action is Action.CREATE  # a job planner let go is not taken back silently
    assert plan_of(desired(), None, lv(gone)).warnings  # without the record: warned as before


def test_replace_requested_recreates_an_unchanged_job() -> None:
    p = plan_of(
        desired(("a", body(), LC), ("b", body(), LC)),
        state(record("a", body()), record("b", body(), job_id="2")),
        lv(live("a", body()), live("b", body(), job_id="2")),
        replace=frozenset({"a"}),
    )
    a, b = p.changes
    assert (a.action, a.reason) == (Action.REPLACE, Reason.REPLACE_REQUESTED) and a.changes == ()
    assert [s.kind for s in a.steps] == [StepKind.CANCEL, StepKind.CREATE, StepKind.DELETE]
    assert b.action is Action.NOOP


def test_ignored_paths_are_shown_on_a_rerun() -> None:
    lc = Lifecycle(ignore_changes=("labels.owner",), rerun_on=("JOB_STATE_FAILED",))
    b_live = body(labels={"team": "vision", "owner": "bob"})
    b_desired = body(labels={"team": "vision", "owner": "alice"})
    p = plan_of(desired(("a", b_desired, lc)), state(record("a", b_live)), lv(live("a", b_live, "JOB_STATE_FAILED")))
    c = only(p)
    assert c.reason is Reason.RERUN
    assert [(f.path, f.before, f.after, f.ignored) for f in c.changes] == [("labels.owner", "bob", "alice", True)]
    assert plan_to_json(p)["resource_changes"][0]["changes"][0]["ignored"] is True
    assert plan_from_json(plan_to_json(p, for_file=True)) == p
