"""The editors' desired-state schema (schemas/desired-state.schema.json) agrees with planner: no false
errors on any shipped example or valid fixture, and it flags every invalid fixture it can see."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from jsonschema import Draft202012Validator

from planner import schemagen
from planner.config.load import parse_document

REPO = Path(__file__).resolve().parents[1]
EDITOR = json.loads((REPO / schemagen.DESIRED_STATE_SCHEMA).read_text())
VALIDATORS = {"jsonschema": Draft202012Validator(EDITOR), "jsonschema-rs": jsonschema_rs.validator_for(EDITOR)}

# Desired-state files: every YAML file of examples/ with a `jobs:` mapping (var files and the CI
# workflow are other formats), and the configurations of the plan golden cases.
EXAMPLES = sorted(
    p for p in (REPO / "examples").rglob("*.y*ml") if "\njobs:" in "\n" + p.read_text() and p.parent.name != "ci"
)
VALID = (
    EXAMPLES
    + sorted((REPO / "tests" / "testdata" / "plan").glob("*/config/*.yaml"))
    + sorted((REPO / "tests" / "testdata" / "hardware" / "valid").glob("*.yaml"))
)
INVALID = sorted(p for p in (REPO / "tests" / "testdata" / "invalid").rglob("*.yaml"))

# Mistakes no JSON Schema can see in the file as written: they need YAML's events (duplicate keys,
# tags, aliases), several files, the variables' values, or planner's own rules beyond the schema.
BEYOND_THE_SCHEMA = {
    "duplicate_address",  # one address in two files
    "duration_out_of_range",  # a well-formed duration too long for google.protobuf.Duration
    "ignore_changes_bad_path",  # a path naming no field: checked against the field tree
    "malformed_variable",  # a string; what is malformed is the ${var…} inside it
    "missing_project",  # project may come from the file or the job: checked after merging
    "reserved_label",  # label keys managed-by/planner-*: planner's own rule
    "reserved_label_in_defaults",
    "reserved_label_prefix",
    "undefined_variable",  # the configuration's variables are not the schema's business
    "undefined_variable_in_string",
    "matrix_unknown_axis",  # ${matrix.X} is a string; which axes exist is planner's expansion
    "matrix_without_matrix",
    "template_cycle",  # template names are planner's expansion
    "template_unknown_name",
}
# The hardware fixtures (hw_*) are mistakes against planner's hardware catalog (machine ↔
# accelerator, regions, counts): well-formed fields whose values only the catalog judges.
HARDWARE_PREFIX = "hw_"


def editor_errors(path: Path) -> dict[str, list[str]] | None:
    """Each validator's messages for the file as an editor sees it (YAML 1.2), or None if it is not YAML."""
    doc, _problems = parse_document(path.read_bytes(), str(path))
    if doc is None:
        return None  # a YAML-level mistake: the editor's YAML parser reports it
    data: Any = doc.data
    return {name: [e.message for e in v.iter_errors(data)] for name, v in VALIDATORS.items()}


def test_there_is_something_to_check() -> None:
    assert len(EXAMPLES) >= 3 and len(VALID) >= 10 and len(INVALID) >= 30


@pytest.mark.parametrize("path", VALID, ids=[str(p.relative_to(REPO)) for p in VALID])
def test_no_false_errors_on_examples_and_valid_fixtures(path: Path) -> None:
    assert editor_errors(path) == {name: [] for name in VALIDATORS}


@pytest.mark.parametrize("path", INVALID, ids=[str(p.relative_to(REPO / "tests" / "testdata")) for p in INVALID])
def test_invalid_fixtures_are_flagged_when_the_schema_can_see_the_mistake(path: Path) -> None:
    case = path.parent.name if path.parent.name != "invalid" else path.stem
    errors = editor_errors(path)
    if errors is None:
        return
    for name, messages in errors.items():
        if case in BEYOND_THE_SCHEMA or case.startswith(HARDWARE_PREFIX):
            assert messages == [], f"{name} flags {case}, which is listed as beyond the schema: {messages}"
        else:
            assert messages, f"{name} does not flag {case}"


def check(text: str) -> list[str]:
    doc, problems = parse_document(text, "t.yaml")
    assert doc is not None, problems
    return [e.message for e in VALIDATORS["jsonschema"].iter_errors(doc.data)]


JOB = """\
version: 1
variables:
  gpus: {type: integer, default: 1}
project: ${var.project}
location: us-central1
defaults:
  displayName: ${var.name:-train}
  jobSpec:
    scheduling: {timeout: "${var.timeout:-2h}", strategy: "${var.strategy}"}
jobs:
  train:
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {machineType: n1-standard-4, acceleratorCount: "${var.gpus}"}
          replicaCount: ${var.gpus}
          containerSpec: {imageUri: img}
    lifecycle: {preventDestroy: "${var.protect}"}
"""


def test_variables_in_typed_fields_and_fields_from_defaults_are_accepted() -> None:
    assert check(JOB) == []


def test_what_defaults_do_not_supply_is_still_required() -> None:
    without_defaults = JOB.replace("  displayName: ${var.name:-train}\n", "")
    assert check(without_defaults) == ["'displayName' is a required property"]
    no_pools = JOB.replace("      workerPoolSpecs:", "      workerPoolz:")
    assert any("workerPoolz" in m for m in check(no_pools))
    assert "'workerPoolSpecs' is a required property" in check(no_pools)


def test_wrong_values_and_unknown_fields_are_still_flagged() -> None:
    assert check(JOB.replace("replicaCount: ${var.gpus}", "replicaCount: two"))
    assert check(JOB.replace('strategy: "${var.strategy}"', "strategy: SPOTTY"))
    assert check(JOB.replace("imageUri: img", "imageUrl: img"))
    assert check(JOB.replace("{type: integer, default: 1}", "{type: int}"))


def test_schema_print_works_outside_the_repository(tmp_path: Path) -> None:
    for name, committed in [
        ("desired-state", schemagen.DESIRED_STATE_SCHEMA),
        ("custom-job", schemagen.CUSTOM_JOB_SCHEMA),
        ("plan", "schemas/plan.schema.json"),
        ("drift", "schemas/drift.schema.json"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "planner", "schema", "print", name], cwd=tmp_path, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == json.loads((REPO / committed).read_text()), name
    Draft202012Validator.check_schema(EDITOR)
