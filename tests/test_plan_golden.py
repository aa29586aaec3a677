"""Golden plans: every DESIGN §5 row and lifecycle option, planned against a real emulator.

Each case under tests/testdata/plan/<case>/ seeds live jobs into the emulator, writes the
prior state it describes, plans the config with the same stages `planner plan` runs, and
compares plan.txt / plan.md / plan.json (JSON as parsed data). `pytest --update-golden`
rewrites them; review the diff.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
from plan_harness import CREATED_AT, client_for, load_case, seed_case

from planner.config.validate import load_desired
from planner.documents.plan import plan_to_json
from planner.emulator import ManualClock
from planner.errors import PlanRefusedError
from planner.operations.plan import refresh_and_plan
from planner.render import render_plan

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(p for p in (ROOT / "tests" / "testdata" / "plan").iterdir() if (p / "case.yaml").exists())
PLAN_SCHEMA = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
NOW = datetime.fromisoformat("2026-11-26T12:00:00+00:00").timestamp()


def check_golden(path: Path, actual: str, update: bool) -> None:
    if update:
        path.write_text(actual)
        return
    assert path.exists(), f"{path} missing: run pytest --update-golden and review it"
    expected = path.read_text()
    if path.suffix == ".json":
        assert json.loads(actual) == json.loads(expected), path
    else:
        assert actual == expected, path


@pytest.mark.parametrize("case_dir", CASES, ids=[c.name for c in CASES])
def test_plan_golden(case_dir: Path, emulator_factory, update_golden: bool) -> None:  # type: ignore[no-untyped-def]
    case = load_case(case_dir)
    desired = load_desired([case_dir / "config"], variables={})
    emulator = emulator_factory(clock=ManualClock(NOW), echo_defaults=bool(case.get("echo_defaults")), seed=7)
    _names, prior = seed_case(emulator, case, desired)
    with client_for(emulator) as client:
        if case.get("expect_error"):
            with pytest.raises(PlanRefusedError) as err:
                refresh_and_plan(
                    client, desired, prior, workspace="default", created_at=CREATED_AT, replace=case.get("replace", ())
                )
            check_golden(case_dir / "error.txt", str(err.value) + "\n", update_golden)
            return
        planned = refresh_and_plan(
            client, desired, prior, workspace="default", created_at=CREATED_AT, replace=case.get("replace", ())
        )
    plan = planned.plan
    doc = plan_to_json(plan)
    jsonschema.validate(doc, PLAN_SCHEMA)
    jsonschema.validate(plan_to_json(plan, for_file=True), PLAN_SCHEMA)
    check_golden(case_dir / "plan.txt", render_plan(plan, "text"), update_golden)
    check_golden(case_dir / "plan.md", render_plan(plan, "markdown"), update_golden)
    check_golden(case_dir / "plan.json", json.dumps(doc, indent=2, sort_keys=True) + "\n", update_golden)
    for rendering in (render_plan(plan, "text"), render_plan(plan, "markdown"), render_plan(plan, "json")):
        assert "s3cr3t" not in rendering and "old-secret" not in rendering, "an env value leaked"
    # Nothing a no-op or pure-state plan would do mutates anything: only listing was sent.
    assert all(r.method == "GET" for r in emulator.request_log.records)
