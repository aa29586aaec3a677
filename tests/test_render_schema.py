"""The committed plan and drift JSON Schemas, and the views on what the real engine produces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from planner.canonical import canonical_spec, request_body, spec_hash
from planner.config.model import Desired, DesiredJob, Lifecycle, OnRemove
from planner.documents.drift import drift_schema, drift_to_json
from planner.documents.plan import plan_from_json, plan_schema, plan_to_json
from planner.documents.schema_parts import format_schema
from planner.drift import OPTIONAL_KINDS, DriftKind, detect_drift
from planner.plans.engine import make_plan
from planner.plans.model import Action, PlanOptions, Reason, StepKind
from planner.refresh import Live, LiveJob, live_job
from planner.render import render_drift, render_plan
from planner.state.model import JobRecord, State

SCHEMAS = Path(__file__).parent.parent / "schemas"
P, L, W = "proj", "us-central1", "default"
SECRET = "s3cret-value"


@pytest.mark.parametrize(
    ("filename", "build"), [("plan.schema.json", plan_schema), ("drift.schema.json", drift_schema)]
)
def test_committed_schema_is_generated(filename: str, build: Any) -> None:
    committed = (SCHEMAS / filename).read_text(encoding="utf-8")
    assert committed == format_schema(build()), f"regenerate {filename} with format_schema({build.__name__}())"
    schema = json.loads(committed)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert committed.endswith("}\n") and committed.startswith('{\n  "')


def test_schema_enums_follow_the_model() -> None:
    change = plan_schema()["$defs"]["resource_change"]["properties"]
    assert change["action"]["enum"] == [a.value for a in Action]
    assert change["action_reason"]["enum"] == [r.value for r in Reason]
    assert change["steps"]["items"]["properties"]["kind"]["enum"] == [k.value for k in StepKind]
    item = drift_schema()["$defs"]["item"]["properties"]
    assert item["kind"]["enum"] == [k.value for k in DriftKind]
    optional = {k.value for k in OPTIONAL_KINDS}
    assert sorted(drift_schema()["properties"]["summary"]["required"]) == sorted(
        k.value for k in DriftKind if k.value not in optional
    )
    assert sorted(drift_schema()["properties"]["summary"]["properties"]) == sorted(k.value for k in DriftKind)


# -- the views on the engine's own models ---------------------------------------------------------


def body(image: str = "img:1") -> dict[str, Any]:
    return {
        "displayName": "train",
        "labels": {"team": "vision"},
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": image, "env": [{"name": "TOKEN", "value": SECRET}]},
                }
            ]
        },
    }


def live(address: str, b: dict[str, Any], state: str, job_id: str) -> LiveJob:
    resource = request_body(canonical_spec(b), address, W)
    resource.update(
        name=f"projects/{P}/locations/{L}/customJobs/{job_id}", state=state, createTime="2026-01-01T00:00:00Z"
    )
    return live_job(resource)


def record(address: str, b: dict[str, Any], job_id: str) -> JobRecord:
    c = canonical_spec(b)
    return JobRecord(
        address=address,
        name=f"projects/{P}/locations/{L}/customJobs/{job_id}",
        project=P,
        location=L,
        spec_hash=spec_hash(c),
        spec=c,
        last_state="JOB_STATE_RUNNING",
    )


@pytest.fixture
def world() -> tuple[Desired, State, Live]:
    changed = body()
    changed["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"][0]["value"] = "other-" + SECRET
    desired = Desired(
        jobs={
            a: DesiredJob(address=a, project=P, location=L, body=b, lifecycle=Lifecycle(on_remove=OnRemove.DELETE))
            for a, b in [("new", body()), ("same", body()), ("updated", body("img:2"))]
        },
        config_hash="cfg",
    )
    state = State(
        lineage="lin",
        serial=3,
        jobs={
            r.address: r
            for r in [record("same", body(), "1"), record("updated", body(), "2"), record("gone", body(), "3")]
        },
    )
    jobs = [
        live("same", body(), "JOB_STATE_RUNNING", "1"),
        live("updated", changed, "JOB_STATE_RUNNING", "2"),
        live("gone", body(), "JOB_STATE_SUCCEEDED", "3"),
    ]
    return desired, state, Live(jobs={j.name: j for j in jobs})


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text(encoding="utf-8")))


def test_engine_plan_renders_and_validates(world: tuple[Desired, State, Live]) -> None:
    desired, state, live_ = world
    plan = make_plan(desired, state, live_, PlanOptions(workspace=W, created_at="2026-01-01T00:00:00Z"))
    assert {c.action for c in plan.changes} == {Action.CREATE, Action.NOOP, Action.REPLACE, Action.DELETE}
    for fmt in ("text", "markdown", "json"):
        assert SECRET not in render_plan(plan, fmt)
        assert SECRET in render_plan(plan, fmt, show_sensitive=True)
    text = render_plan(plan, "text")
    assert text.endswith("Plan: 1 to create, 1 to replace, 0 to cancel, 1 to delete.\n")
    assert '    ~ jobSpec.workerPoolSpecs[0].containerSpec.imageUri: "img:1" -> "img:2"  # forces replacement' in text
    v = validator("plan.schema.json")
    v.validate(json.loads(render_plan(plan, "json")))
    saved = plan_to_json(plan, for_file=True)
    v.validate(saved)
    # A saved plan file renders the same once read back.
    again = plan_from_json(json.loads(json.dumps(saved)))
    for fmt in ("text", "markdown"):
        assert render_plan(again, fmt) == render_plan(plan, fmt)


def test_engine_drift_renders_and_validates(world: tuple[Desired, State, Live]) -> None:
    desired, state, live_ = world
    report = detect_drift(state, live_, workspace=W, desired=desired, created_at="2026-01-01T00:00:00Z")
    assert report.count(DriftKind.CHANGED) == 1
    for fmt in ("text", "markdown", "json"):
        assert SECRET not in render_drift(report, fmt)
    text = render_drift(report, "text")
    assert text.endswith("Drift: 1 job drifted.\n")
    assert "Config not yet applied (not drift):" in text
    validator("drift.schema.json").validate(drift_to_json(report))
