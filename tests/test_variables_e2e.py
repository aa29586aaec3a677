"""Declared variables end to end through the CLI: declarations, given values, types, var files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_harness import Cli, labelled_jobs

from planner.config.variables import Given, Values, declarations_block, gather, resolve

DECLARED = """\
version: 1
variables:
  project: {type: string, pattern: "[a-z][a-z0-9-]+", description: the project}
  replicas: {type: integer, default: 1}
  spot: {type: boolean, default: false}
  stage: {enum: [dev, prod], default: dev}
project: ${var.project}
location: us-central1
jobs:
  train:
    displayName: train-${var.stage}
    labels: {stage: "${var.stage}"}
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {machineType: n1-standard-4}
          replicaCount: 1
          containerSpec:
            imageUri: img:1
            args: ["--spot=${var.spot}", "${var.replicas}"]
        - machineSpec: {machineType: n1-standard-4}
          replicaCount: ${var.replicas}
          containerSpec: {imageUri: img:1}
"""


@pytest.fixture
def cli(tmp_path: Path, emulator) -> Cli:  # type: ignore[no-untyped-def]
    (tmp_path / "jobs").mkdir()
    return Cli(tmp_path, emulator)


def write(cli: Cli, text: str, name: str = "jobs.yaml") -> Path:
    path = cli.cwd / "jobs" / name
    path.write_text(text)
    return path


def test_declared_values_are_typed_and_checked_once(cli: Cli) -> None:
    write(cli, DECLARED)
    r = cli.run("validate", "jobs", "--var", "project=my-proj", "--var", "replicas=2", backend=False)
    assert r.code == 0, r.err
    r = cli.run("plan", "jobs", "--var", "project=my-proj", "--var", "replicas=2", "--format", "json")
    assert r.code == 0, r.err
    after = json.loads(r.out)["resource_changes"][0]["after"]
    pool = after["jobSpec"]["workerPoolSpecs"][1]  # Vertex AI takes one replica in the first pool
    assert pool["replicaCount"] == "2"  # the integer 2, sent as int64
    assert after["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["args"] == ["--spot=false", "2"]
    assert after["displayName"] == "train-dev"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--var", "projekt=x"], '--var projekt: no variable "projekt" is declared; did you mean "project"?'),
        (["--var", "project=pp", "--var", "replicas=two"], '--var replicas: expected an integer, got "two"'),
        (["--var", "project=My_Proj"], "--var project: does not match the pattern"),
        (["--var", "project=pp", "--var", "stage=qa"], '--var stage: expected one of "dev", "prod", got "qa"'),
        (["--var", "project=pp", "--var", "spot=yes"], '--var spot: expected true or false, got "yes"'),
        ([], 'jobs/jobs.yaml:7:10: project: variable "project" (declared at jobs/jobs.yaml:3:3) has no value'),
    ],
)
def test_bad_values_are_errors_before_anything_is_sent(cli: Cli, args: list[str], expected: str) -> None:
    write(cli, DECLARED)
    r = cli.run("plan", "jobs", *args)
    assert r.code == 1, r.out
    assert expected in r.err
    assert "Traceback" not in r.err
    assert cli.emulator.request_log.records == []


def test_an_undeclared_environment_value_is_an_error_too(cli: Cli) -> None:
    write(cli, DECLARED)
    cli.extra_env = {"PLANNER_VAR_project": "pp", "PLANNER_VAR_replcas": "3"}
    r = cli.run("validate", "jobs", backend=False)
    assert r.code == 1
    assert 'PLANNER_VAR_replcas: no variable "replcas" is declared; did you mean "replicas"?' in r.err


def test_an_undeclared_reference_is_an_error_at_its_position(cli: Cli) -> None:
    write(cli, DECLARED.replace('"${var.replicas}"]', '"${var.replica}"]'))
    r = cli.run("validate", "jobs", "--var", "project=my-proj", backend=False)
    assert r.code == 1
    assert (
        'jobs/jobs.yaml:19:42: jobs.train.jobSpec.workerPoolSpecs[0].containerSpec.args[1]: undeclared variable '
        '"replica": declare it under `variables:`; did you mean "replicas"?'
    ) in r.err


def test_declarations_are_checked_where_they_are_written(cli: Cli) -> None:
    write(
        cli,
        DECLARED.replace("{type: integer, default: 1}", "{type: int, default: 1}").replace(
            "{type: boolean, default: false}", "{type: boolean, defualt: false}"
        ),
    )
    r = cli.run("validate", "jobs", "--var", "project=my-proj", backend=False)
    assert r.code == 1
    assert "jobs/jobs.yaml:4:20: variables.replicas.type: unknown type 'int'" in r.err
    assert 'jobs/jobs.yaml:5:25: variables.spot.defualt: unknown field "defualt"; did you mean "default"?' in r.err


def test_a_variable_declared_twice_is_an_error(cli: Cli) -> None:
    write(cli, DECLARED)
    write(cli, "version: 1\nvariables:\n  stage: {}\njobs: {}\n", "other.yaml")
    r = cli.run("validate", "jobs", "--var", "project=my-proj", backend=False)
    assert r.code == 1
    assert 'jobs/other.yaml:3:3: variables.stage: variable "stage" is already declared at jobs/jobs.yaml:6:3' in r.err


def test_var_files_use_planners_own_yaml_loader(cli: Cli) -> None:
    write(cli, DECLARED)
    (cli.cwd / "dev.yaml").write_text("project: my-proj\nreplicas: 3\nspot: on\n")
    r = cli.run("validate", "jobs", "--var-file", "dev.yaml", backend=False)
    # YAML 1.2: `on` is the string "on", not a boolean (pyyaml's safe_load would say True)
    assert r.code == 1 and 'dev.yaml:3:7: spot: expected true or false, got "on"' in r.err
    (cli.cwd / "dev.yaml").write_text("project: my-proj\nreplicas: 3\nreplicas: 4\n")
    r = cli.run("validate", "jobs", "--var-file", "dev.yaml", backend=False)
    assert r.code == 1 and "dev.yaml:3:1" in r.err and "duplicate" in r.err
    (cli.cwd / "dev.yaml").write_text("project: my-proj\nreplicaz: 3\n")
    r = cli.run("validate", "jobs", "--var-file", "dev.yaml", backend=False)
    assert r.code == 1
    assert 'dev.yaml:2:11: replicaz: no variable "replicaz" is declared; did you mean "replicas"?' in r.err
    (cli.cwd / "dev.yaml").write_text("project: my-proj\nreplicas: 3\n")
    r = cli.run("validate", "jobs", "--var-file", "dev.yaml", "--var", "replicas=4", backend=False)
    assert r.code == 0, r.err


def test_files_without_declarations_keep_working(cli: Cli) -> None:
    legacy = DECLARED.split("project: ${var.project}", 1)[1]
    write(cli, "version: 1\nproject: ${var.project:-demo}" + legacy)
    r = cli.run("validate", "jobs", "--var", "replicas=2", "--var", "stage=x", "--var", "spot=true", backend=False)
    assert r.code == 0, r.err
    r = cli.run("validate", "jobs", backend=False)
    assert r.code == 1 and 'undefined variable "replicas"' in r.err


def test_apply_with_declared_variables_then_plan_is_noop(cli: Cli) -> None:
    write(cli, DECLARED)
    r = cli.run("apply", "jobs", "--var", "project=my-proj", "--auto-approve")
    assert r.code == 0, r.err
    assert len(labelled_jobs(cli.emulator, "my-proj", "us-central1")) == 1
    r = cli.run("plan", "jobs", "--var", "project=my-proj", "--detailed-exitcode")
    assert r.code == 0, r.out + r.err


# -- units: the pieces the CLI puts together ------------------------------------------------------


def test_declarations_block_keeps_positions_and_ignores_the_rest() -> None:
    text = "version: 1\nvariables:\n  a: {}\n  # note\njobs:\n  variables: {}\n"
    block = declarations_block(text)
    assert block == "\nvariables:\n  a: {}\n  # note\n"
    assert declarations_block("version: 1\njobs: {}\n") is None


def test_precedence_is_environment_then_files_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("a: from-file\nb: from-file\n")
    given = gather(["a=from-flag"], [str(f)], {"PLANNER_VAR_a": "env", "PLANNER_VAR_b": "env", "PLANNER_VAR_c": "env"})
    conf = tmp_path / "c.yaml"
    conf.write_text("version: 1\nproject: ${var.a}-${var.b}-${var.c:-x}\njobs: {}\n")
    values = resolve([conf], given)
    assert dict(values) == {"a": "from-flag", "b": "from-file", "c": "env"}
    assert values.declared is None  # legacy: nothing declared
    assert values.unused == ()


def test_legacy_mode_keeps_only_used_values_and_names_the_unused_explicit_ones(cli: Cli) -> None:
    legacy = DECLARED.split("project: ${var.project}", 1)[1]
    write(cli, "version: 1\nproject: ${var.project:-demo}" + legacy.replace("${var.", "${var.x_"))
    (cli.cwd / "v.yaml").write_text("x_replicas: 1\nx_replicaz: 2\n")
    cli.extra_env = {"PLANNER_VAR_x_stage": "dev", "PLANNER_VAR_x_spot": "true", "PLANNER_VAR_unrelated": "secret"}
    r = cli.run("plan", "jobs", "--var", "projekt=p", "--var-file", "v.yaml", "-o", "plan.json")
    assert r.code == 0, r.err
    assert "Warning: --var projekt: no file uses this variable" in r.err
    assert "Warning: v.yaml:2:13: x_replicaz: no file uses this variable" in r.err
    assert "unrelated" not in r.err  # the environment may hold anything
    recorded = json.loads((cli.cwd / "plan.json").read_text())["variables"]["values"]
    assert recorded == {"x_replicas": "1", "x_spot": "true", "x_stage": "dev"}


def test_sensitive_values_are_recorded_only_as_digests(tmp_path: Path) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("version: 1\nvariables:\n  token: {sensitive: true}\n  n: {type: number}\njobs: {}\n")
    values = resolve([conf], [Given("token", "hunter2", "--var"), Given("n", "0.5", "--var")])
    assert isinstance(values, Values)
    assert values.typed == {"token": "hunter2", "n": 0.5}
    assert values.sensitive_values() == {"hunter2"}
    recorded = values.recorded()
    assert recorded["values"] == {"n": 0.5}
    assert "hunter2" not in json.dumps(recorded)
