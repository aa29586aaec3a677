"""make_plan's fast path (`unchanged_row`) against the general planner it stands for: wherever it
answers, its row is exactly the one row `_AddressPlanner.plan()` gives, with no warning."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from planner import apimodel
from planner.canonical import canonical_spec, request_body, spec_hash
from planner.config.model import DesiredJob, Lifecycle, OnRemove
from planner.plans.engine import _AddressPlanner, unchanged_row
from planner.refresh import Live, LiveJob, live_job
from planner.state.model import JobRecord

P, L, W, ADDRESS = "proj", "us-central1", "default", "train"
STATES = ["JOB_STATE_RUNNING", "JOB_STATE_PENDING", "JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"]


def body(image: str) -> dict[str, Any]:
    return {
        "displayName": "train",
        "jobSpec": {
            "workerPoolSpecs": [
                {"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "1",
                 "containerSpec": {"imageUri": image}}
            ]
        },
    }


def job(job_id: str, image: str, state: str, *, location: str = L, managed: bool = True, label: bool = True) -> LiveJob:
    resource = request_body(canonical_spec(body(image)), ADDRESS, W)
    if not managed:
        del resource["labels"][apimodel.LABEL_MANAGED_BY]
    if not label:
        del resource["labels"][apimodel.LABEL_SPEC]
    resource.update(name=f"projects/{P}/locations/{location}/customJobs/{job_id}", state=state,
                    createTime=f"2026-01-0{job_id}T00:00:00Z")
    return live_job(resource)


def usually(common: Any, *rare: Any) -> st.SearchStrategy[Any]:
    """`common` five times in six, else one of `rare`: the fast path's case must come up often."""
    return st.sampled_from([common] * 5 * len(rare) + list(rare))


lifecycles = st.builds(
    Lifecycle,
    prevent_destroy=st.booleans(),
    ignore_changes=usually((), ("labels",)),
    on_remove=st.sampled_from(list(OnRemove)),
    rerun_on=usually((), ("JOB_STATE_FAILED",), ("JOB_STATE_SUCCEEDED", "JOB_STATE_RUNNING")),
)


@st.composite
def worlds(draw: Any) -> tuple[Any, ...]:
    lifecycle = draw(lifecycles)
    desired = DesiredJob(address=ADDRESS, project=P, location=draw(usually(L, "europe-west4")),
                         body=body("img:1"), lifecycle=lifecycle)
    current = job("1", draw(usually("img:1", "img:2")), draw(st.sampled_from(STATES)),
                  managed=draw(usually(True, False)), label=draw(usually(True, False)))
    other = job("2", draw(st.sampled_from(["img:1", "img:2"])), draw(st.sampled_from(STATES)))
    old = job("3", "img:0", "JOB_STATE_SUCCEEDED")
    recorded_lifecycle = draw(usually(lifecycle, Lifecycle(), None))
    record = JobRecord(
        address=ADDRESS, name=draw(usually(current.name, other.name)), project=P, location=L,
        spec_hash=spec_hash(canonical_spec(body("img:1"))), spec=canonical_spec(body("img:1")),
        last_state="JOB_STATE_RUNNING", old_names=draw(usually((), (old.name,))),
        prevent_destroy=(recorded_lifecycle or lifecycle).prevent_destroy,
        on_remove=(recorded_lifecycle or lifecycle).on_remove.value,
        ignore_changes=None if recorded_lifecycle is None else recorded_lifecycle.ignore_changes,
        rerun_on=None if recorded_lifecycle is None else recorded_lifecycle.rerun_on,
    )
    in_live = draw(usually([current], [current, other], [other], [current, old], []))
    labelled = [j for j in in_live if j.managed and draw(usually(True, False))]
    live = Live(jobs={j.name: j for j in in_live})
    hash_hex = spec_hash(canonical_spec(desired.body))
    return desired, hash_hex, draw(usually(record, None)), labelled, live, draw(usually(False, True))


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_the_fast_row_is_the_planners_row(world: tuple[Any, ...]) -> None:
    desired, hash_hex, record, labelled, live, replace = world
    fast = unchanged_row(ADDRESS, desired, hash_hex, record, labelled, live, replace)
    if fast is None:
        return
    planner = _AddressPlanner(ADDRESS, desired, hash_hex, record, labelled, live, replace)
    assert planner.plan() == [fast]
    assert planner.warnings == []


def test_the_fast_row_answers_for_an_unchanged_job() -> None:
    """Not a vacuous comparison: the common no-op row is decided by the fast path."""
    desired = DesiredJob(address=ADDRESS, project=P, location=L, body=body("img:1"))
    current = job("1", "img:1", "JOB_STATE_RUNNING")
    hash_hex = spec_hash(canonical_spec(desired.body))
    record = JobRecord(address=ADDRESS, name=current.name, project=P, location=L, spec_hash=hash_hex,
                       spec=canonical_spec(desired.body), last_state="JOB_STATE_RUNNING")
    live = Live(jobs={current.name: current})
    fast = unchanged_row(ADDRESS, desired, hash_hex, record, [current], live)
    assert fast is not None
    assert _AddressPlanner(ADDRESS, desired, hash_hex, record, [current], live).plan() == [fast]
    # A terminal state other than SUCCEEDED carries a note: the planner writes it.
    failed = job("1", "img:1", "JOB_STATE_FAILED")
    assert unchanged_row(ADDRESS, desired, hash_hex, record, [failed], Live(jobs={failed.name: failed})) is None
