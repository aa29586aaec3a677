"""Sweeps (`matrix:`) and templates (`extends:`): expansion, addresses, labels, and the plan/apply cycle."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cli_harness import Cli, duplicates, labelled_jobs

from planner.config import matrix
from planner.config.validate import load_desired
from planner.errors import ConfigError

PROJECT, LOCATION = "demo-project", "us-central1"
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def sweep_text(lrs: list[str], seeds: list[int], extra: str = "") -> str:
    return f"""version: 1
project: {PROJECT}
location: {LOCATION}
templates:
  l4-spot:
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {{machineType: g2-standard-8, acceleratorType: NVIDIA_L4, acceleratorCount: 1}}
          replicaCount: 1
          containerSpec:
            imageUri: us-docker.pkg.dev/demo/train/model:1
            args: ["--lr=${{matrix.lr}}", "--seed=${{matrix.seed}}"]
      scheduling: {{strategy: SPOT}}
jobs:
  train:
    extends: l4-spot
    displayName: train-${{matrix.seed}}
    labels: {{seed: "${{matrix.seed}}"}}
    matrix:
      lr: [{", ".join(lrs)}]
      seed: [{", ".join(str(s) for s in seeds)}]
{extra}"""


def load_text(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    return load_desired([path], variables={})


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    return [str(d) for d in info.value.diagnostics]


# --- addresses and labels ---------------------------------------------------------------------


def test_a_plain_address_is_its_own_label() -> None:
    assert matrix.address_label("resnet-train") == "resnet-train"


def test_sweep_labels_fit_label_rules_and_stay_distinct() -> None:
    long_base = "a" * 63
    addresses = [
        "train[lr=0.001,seed=2]",
        "train[lr=0.001,seed=20]",
        "TRAIN[lr=0.001,seed=2]".lower().replace("train", "train"),
        f'{long_base}[dataset="gs://bucket/very/long/path/to/a/shard-00017-of-00100.tfrecord",seed=1]',
        f'{long_base}[dataset="gs://bucket/very/long/path/to/a/shard-00018-of-00100.tfrecord",seed=1]',
        "train[lr=1E-3]",
        "train[lr=1e-3]",
    ]
    labels = [matrix.address_label(a) for a in addresses]
    for label in labels:
        assert LABEL_VALUE.match(label), label
        assert "_" in label  # never equal to a plain address
    assert len(set(labels)) == len(set(addresses))
    assert matrix.address_label("train[lr=0.001,seed=2]").startswith("train_lr-0-001_seed-2_")


def test_sweep_address_sorts_axes_and_quotes_unusual_values() -> None:
    assert matrix.sweep_address("t", {"seed": 2, "lr": 0.001}) == "t[lr=0.001,seed=2]"
    assert matrix.sweep_address("t", {"data": "gs://b/x y"}) == 't[data="gs://b/x y"]'
    assert matrix.sweep_base("t[lr=0.001]") == "t" and matrix.sweep_base("t") is None


# --- expansion --------------------------------------------------------------------------------


def test_matrix_expands_with_interpolation_everywhere(tmp_path: Path) -> None:
    desired = load_text(tmp_path, sweep_text(["1e-3", "3e-4"], [1, 2]))
    assert sorted(desired.jobs) == [
        "train[lr=0.0003,seed=1]",
        "train[lr=0.0003,seed=2]",
        "train[lr=0.001,seed=1]",
        "train[lr=0.001,seed=2]",
    ]
    job = desired.jobs["train[lr=0.001,seed=2]"]
    pool = job.body["jobSpec"]["workerPoolSpecs"][0]
    assert pool["containerSpec"]["args"] == ["--lr=0.001", "--seed=2"]
    assert job.body["displayName"] == "train-2" and job.body["labels"] == {"seed": "2"}
    assert job.body["jobSpec"]["scheduling"] == {"strategy": "SPOT"}
    assert "matrix" not in job.body and "extends" not in job.body


def test_an_unquoted_lone_reference_takes_the_values_type(tmp_path: Path) -> None:
    text = f"""version: 1
project: {PROJECT}
location: {LOCATION}
jobs:
  gpus:
    displayName: gpus-${{matrix.n}}
    matrix: {{n: [1, 2]}}
    jobSpec:
      workerPoolSpecs:
        - machineSpec:
            machineType: n1-standard-8
            acceleratorType: NVIDIA_TESLA_T4
            acceleratorCount: ${{matrix.n}}
          replicaCount: 1
          containerSpec: {{imageUri: i, args: ["${{matrix.n}}"]}}
"""
    desired = load_text(tmp_path, text)
    pool = desired.jobs["gpus[n=2]"].body["jobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"]["acceleratorCount"] == 2
    assert pool["containerSpec"]["args"] == ["2"]


def test_include_and_exclude_follow_github_actions(tmp_path: Path) -> None:
    extra = """      exclude:
        - {lr: 3e-4, seed: 2}
      include:
        - {lr: 1e-3, big: "yes"}
        - {lr: 1e-2, seed: 9}
"""
    text = sweep_text(["1e-3", "3e-4"], [1, 2]) + extra
    text = text.replace("displayName: train-${matrix.seed}", 'displayName: "train-${matrix.seed}"')
    desired = load_text(tmp_path, text)
    assert sorted(desired.jobs) == [
        "train[lr=0.0003,seed=1]",
        "train[lr=0.001,seed=1]",
        "train[lr=0.001,seed=2]",
        "train[lr=0.01,seed=9]",
    ]


def test_max_jobs_guards_large_sweeps(tmp_path: Path) -> None:
    text = sweep_text([str(i) for i in range(1, 41)], list(range(1, 27)))  # 1,040 jobs
    (message,) = errors_of(tmp_path, text)
    assert "this sweep makes 1040 jobs, more than maxJobs (1000)" in message
    assert message.startswith(f"{tmp_path / 'jobs.yaml'}:20:7: jobs.train.matrix:")
    assert len(load_text(tmp_path, text + "    maxJobs: 1040\n").jobs) == 1040


def test_unknown_matrix_axis_is_reported_at_its_line(tmp_path: Path) -> None:
    text = sweep_text(["1e-3"], [1]).replace("--seed=${matrix.seed}", "--seed=${matrix.sede}")
    (message,) = errors_of(tmp_path, text)
    assert ":12:41: jobs.train.jobSpec.workerPoolSpecs[0].containerSpec.args[1]:" in message
    assert "no such matrix axis" in message and "matrix.sede" in message
    assert 'in template "l4-spot", used by job "train"' in message


def test_an_include_matching_a_combination_adds_no_job(tmp_path: Path) -> None:
    text = sweep_text(["1e-3"], [1]) + "      include:\n        - {lr: 1e-3, seed: 1}\n        - {lr: 5, seed: 1}\n"
    desired = load_text(tmp_path, text)  # an include matching an existing combination adds nothing
    assert sorted(desired.jobs) == ["train[lr=0.001,seed=1]", "train[lr=5,seed=1]"]


# --- templates --------------------------------------------------------------------------------


def test_templates_stack_in_order_then_defaults_then_the_job(tmp_path: Path) -> None:
    text = f"""version: 1
project: {PROJECT}
location: {LOCATION}
defaults:
  labels: {{team: vision, tier: default}}
templates:
  base:
    labels: {{tier: base, from: base}}
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {{machineType: n1-standard-4}}
          replicaCount: 1
          containerSpec: {{imageUri: base-image, args: [a]}}
  spot:
    extends: base
    labels: {{from: spot}}
    jobSpec: {{scheduling: {{strategy: SPOT}}}}
jobs:
  one:
    extends: [spot]
    displayName: one
    labels: {{own: "yes"}}
"""
    job = load_text(tmp_path, text).jobs["one"]
    assert job.body["labels"] == {"team": "vision", "tier": "default", "from": "spot", "own": "yes"}
    assert job.body["jobSpec"]["scheduling"] == {"strategy": "SPOT"}
    assert job.body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["imageUri"] == "base-image"
    # positions of values from a template point into the template
    assert job.positions["jobSpec.workerPoolSpecs[0].containerSpec.imageUri"].line == 13


def test_template_errors_name_the_template_line_and_the_job(tmp_path: Path) -> None:
    text = f"""version: 1
project: {PROJECT}
location: {LOCATION}
templates:
  broken:
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {{machineType: n1-standard-4}}
          replicaCount: many
          containerSpec: {{imageUri: i}}
jobs:
  one:
    extends: broken
    displayName: one
"""
    (message,) = errors_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'jobs.yaml'}:9:25: jobs.one.jobSpec.workerPoolSpecs[0].replicaCount:")
    assert 'in template "broken", used by job "one"' in message


def test_unknown_template_and_cycles_are_errors(tmp_path: Path) -> None:
    text = f"""version: 1
project: {PROJECT}
location: {LOCATION}
templates:
  a: {{extends: b}}
  b: {{extends: a}}
jobs:
  one: {{extends: gpu-spto, displayName: one}}
  two: {{extends: a, displayName: two}}
"""
    messages = errors_of(tmp_path.joinpath(), text.replace("gpu-spto", "c"))
    assert any(":8:18:" in m and 'no template named "c"' in m for m in messages), messages
    assert any("cycle: a -> b -> a" in m for m in messages), messages


# --- the plan/apply cycle on the emulator -----------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, emulator_factory):  # type: ignore[no-untyped-def]
    (tmp_path / "jobs").mkdir()
    return Cli(tmp_path, emulator_factory(run_seconds=3600))


def plan_json(cli: Cli) -> dict[str, Any]:
    r = cli.run("plan", "jobs", "--format", "json")
    assert r.code == 0, r.err
    return json.loads(r.out)  # type: ignore[no-any-return]


def actions(plan: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for change in plan["resource_changes"]:
        out.setdefault(change["action"], []).append(change["address"])
    return out


def test_a_sweep_applies_grows_and_shrinks_by_exactly_its_combinations(cli: Cli) -> None:
    path = cli.cwd / "jobs" / "sweep.yaml"
    lrs = ["1e-3", "3e-4", "1e-4", "3e-5"]
    path.write_text(sweep_text(lrs, [1, 2, 3]))  # 4 x 3
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    live = labelled_jobs(cli.emulator, PROJECT, LOCATION)
    assert len(live) == 12 and duplicates(live) == {}
    assert all(LABEL_VALUE.match(j["labels"]["planner-address"]) for j in live)
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0
    assert cli.run("plan", "jobs", "--detailed-exitcode", "--target", "train").code == 0  # the whole sweep

    path.write_text(sweep_text(lrs, [1, 2, 3, 4]))  # one more seed: one more job per lr
    planned = actions(plan_json(cli))
    expected = ("0.001", "0.0003", "0.0001", "3e-05")
    assert sorted(planned["create"]) == sorted(f"train[lr={lr},seed=4]" for lr in expected)
    assert set(planned) <= {"create", "no-op"} and len(planned["no-op"]) == 12
    assert cli.run("apply", "jobs", "--auto-approve").code == 0

    path.write_text(sweep_text(["1e-3", "1e-4", "3e-5"], [1, 2, 3, 4]))  # one lr less
    planned = actions(plan_json(cli))
    assert sorted(planned["delete"]) == sorted(f"train[lr=0.0003,seed={s}]" for s in range(1, 5))
    assert set(planned) <= {"delete", "no-op"} and len(planned["no-op"]) == 12
    r = cli.run("apply", "jobs", "--auto-approve", "--wait-timeout", "30s")
    assert r.code == 0, r.err
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0
    assert len(labelled_jobs(cli.emulator, PROJECT, LOCATION)) == 12


def test_a_sweep_create_whose_answer_was_lost_is_found_by_its_label_not_sent_twice(
    tmp_path: Path,
    emulator_factory,  # type: ignore[no-untyped-def]
) -> None:
    emulator = emulator_factory(lost_create_rate=0.5, run_seconds=3600)
    (tmp_path / "jobs").mkdir()
    cli = Cli(tmp_path, emulator)
    (tmp_path / "jobs" / "sweep.yaml").write_text(sweep_text(["1e-3", "3e-4"], [1, 2, 3, 4]))
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    assert emulator.request_log.fault_counts()["lost_create"] > 0
    live = labelled_jobs(emulator, PROJECT, LOCATION)
    assert len(live) == 8 and duplicates(live) == {}
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0


def test_the_sweeps_example_validates_to_twelve_sweep_jobs_and_one_more() -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "sweeps"
    desired = load_desired([example], variables={})
    assert len([a for a in desired.jobs if matrix.sweep_base(a) == "train"]) == 12
    assert "evaluate" in desired.jobs


def test_a_target_naming_a_sweep_selects_all_its_jobs() -> None:
    addresses = ["train[lr=0.1]", "train[lr=0.2]", "trainer", "eval"]
    assert matrix.expand_targets(frozenset({"train"}), addresses) == {"train[lr=0.1]", "train[lr=0.2]"}
    assert matrix.expand_targets(frozenset({"trainer", "train[lr=0.1]"}), addresses) == {"trainer", "train[lr=0.1]"}
    assert matrix.expand_targets(frozenset({"nothing"}), addresses) == {"nothing"}
