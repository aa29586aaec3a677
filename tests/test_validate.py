"""load_desired: variables, defaults, normalisation, the model it builds, and the fast schema check."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.config.digest import config_hash
from planner.config.messages import check_field_path
from planner.config.model import Desired, OnRemove
from planner.config.schema import schemas, valid
from planner.config.validate import load_desired
from planner.errors import ConfigError, SourceLocation

REPO = Path(__file__).resolve().parent.parent

HEAD = "version: 1\nproject: demo-project\nlocation: us-central1\n"
POOL = (
    "      workerPoolSpecs:\n"
    "        - machineSpec: {machineType: n1-standard-4}\n"
    "          replicaCount: 1\n"
    "          containerSpec: {imageUri: img}\n"
)


def write(tmp_path: Path, text: str, name: str = "jobs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors(paths: list[Path], variables: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_desired(paths, variables=variables or {})
    return [str(d) for d in info.value.diagnostics]


def test_examples_are_valid() -> None:
    quick = load_desired([REPO / "examples" / "quickstart"], variables={})
    assert sorted(quick.jobs) == ["hello-container", "mnist-package", "resnet-gpu"]
    assert {j.project for j in quick.jobs.values()} == {"demo-project"}
    for env in ("dev", "prod"):
        import yaml

        variables = {
            k: str(v) for k, v in yaml.safe_load((REPO / f"examples/multi-env/vars/{env}.yaml").read_text()).items()
        }
        desired = load_desired([REPO / "examples" / "multi-env" / "jobs"], variables=variables)
        assert len(desired.jobs) == 3
        assert all(j.project == f"acme-ml-{env}" for j in desired.jobs.values())


def test_normalisation_and_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + "defaults:\n  labels: {team: vision}\n  jobSpec:\n    scheduling: {timeout: 1h30m, strategy: SPOT}\n"
        + "jobs:\n  train:\n    displayName: train\n    labels: {stage: a}\n    jobSpec:\n"
        + "      scheduling: {maxWaitDuration: 2h}\n"
        + POOL
        + "    lifecycle: {preventDestroy: true, ignoreChanges: [labels.stage], onRemove: forget,\n"
        + "                rerunOn: [JOB_STATE_FAILED]}\n",
    )
    desired = load_desired([path], variables={})
    job = desired.jobs["train"]
    assert job.body == {
        "displayName": "train",
        "labels": {"team": "vision", "stage": "a"},
        "jobSpec": {
            "scheduling": {"timeout": "5400s", "strategy": "SPOT", "maxWaitDuration": "7200s"},
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": "img"},
                }
            ],
        },
    }
    assert (job.project, job.location) == ("demo-project", "us-central1")
    assert job.lifecycle.prevent_destroy and job.lifecycle.on_remove is OnRemove.FORGET
    assert job.lifecycle.ignore_changes == ("labels.stage",) and job.lifecycle.rerun_on == ("JOB_STATE_FAILED",)
    assert job.source == SourceLocation(str(path), 9, 3)
    assert job.positions["jobSpec.workerPoolSpecs[0].replicaCount"] == SourceLocation(str(path), 16, 25)
    assert job.positions["labels.team"] == SourceLocation(str(path), 5, 18)  # from defaults
    assert "lifecycle.rerunOn[0]" in job.positions
    assert desired.files == (str(path),)
    assert len(desired.config_hash) == 64 and desired.config_hash == config_hash(desired.jobs)


def test_defaults_lists_replace_and_job_values_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + "defaults:\n  labels: {team: a, env: dev}\n  jobSpec:\n    reservedIpRanges: [r1, r2]\n"
        + "jobs:\n  train:\n    displayName: t\n    labels: {team: b}\n    jobSpec:\n      reservedIpRanges: [r3]\n"
        + POOL,
    )
    body = load_desired([path], variables={}).jobs["train"].body
    assert body["labels"] == {"team": "b", "env": "dev"}
    assert body["jobSpec"]["reservedIpRanges"] == ["r3"]


def test_variables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nproject: ${var.project}\nlocation: ${var.region:-europe-west4}\n"
        + 'jobs:\n  train:\n    displayName: run-${var.name:-x}-$${literal}\n    labels: {n: "${var.n}"}\n'
        + "    jobSpec:\n      workerPoolSpecs:\n        - machineSpec:\n            machineType: n1-standard-4\n"
        + "            acceleratorType: NVIDIA_TESLA_T4\n"
        + "            acceleratorCount: ${var.gpus}\n          replicaCount: ${var.replicas:-1}\n"
        + "          containerSpec: {imageUri: img, env: [{name: A, value: $(B)}]}\n",
    )
    job = load_desired([path], variables={"project": "p1", "name": "abc", "n": "7", "gpus": "2"}).jobs["train"]
    assert (job.project, job.location) == ("p1", "europe-west4")
    assert job.body["displayName"] == "run-abc-${literal}"
    assert job.body["labels"] == {"n": "7"}  # quoted: stays a string
    pool = job.body["jobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"]["acceleratorCount"] == 2  # unquoted whole value: an integer
    assert pool["replicaCount"] == "1"
    assert pool["containerSpec"]["env"] == [{"name": "A", "value": "$(B)"}]


def test_undefined_variable_is_reported_once_at_its_place(tmp_path: Path) -> None:
    path = write(
        tmp_path, HEAD + 'jobs:\n  train:\n    displayName: t\n    labels: {a: "${var.zz}"}\n    jobSpec:\n' + POOL
    )
    found = errors([path])
    assert found == [
        f'{path}:7:17: jobs.train.labels.a: undefined variable "zz": pass --var zz=VALUE, --var-file, or '
        "PLANNER_VAR_zz, or give a default with ${var.zz:-default}"
    ]


def test_job_level_project_and_location_override(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + "jobs:\n  train:\n    project: other\n    location: europe-west4\n    displayName: t\n    jobSpec:\n"
        + POOL,
    )
    job = load_desired([path], variables={}).jobs["train"]
    assert (job.project, job.location) == ("other", "europe-west4")
    assert "project" not in job.body and "location" not in job.body


def test_all_errors_from_all_files_sorted(tmp_path: Path) -> None:
    a = write(tmp_path, HEAD + "jobs:\n  one:\n    displayName: 1\n    jobSpec:\n" + POOL, "a.yaml")
    b = write(tmp_path, HEAD + "jobs:\n  two:\n    displayName: t\n    state: X\n    jobSpec:\n" + POOL, "b.yaml")
    found = errors([tmp_path])
    assert found == [
        f"{a}:6:18: jobs.one.displayName: expected a string, got 1 (put it in quotes to make it a string)",
        f'{b}:7:5: jobs.two.state: "state" is output-only (set by Vertex AI); remove it',
    ]


def test_config_hash_changes_with_any_job_field(tmp_path: Path) -> None:
    base = HEAD + "jobs:\n  train:\n    displayName: t\n    jobSpec:\n" + POOL
    h1 = load_desired([write(tmp_path, base)], variables={}).config_hash
    h2 = load_desired([write(tmp_path, base)], variables={}).config_hash
    h3 = load_desired([write(tmp_path, base.replace("imageUri: img", "imageUri: img2"))], variables={}).config_hash
    h4 = load_desired([write(tmp_path, base + "    lifecycle: {preventDestroy: true}\n")], variables={}).config_hash
    assert h1 == h2 and len({h1, h3, h4}) == 3


def test_config_hash_is_given_or_computed_once_when_first_read() -> None:
    asked: list[int] = []

    def compute() -> str:
        asked.append(1)
        return "h"

    desired = Desired(jobs={}, config_hash=compute)
    assert asked == []
    assert desired.config_hash == desired.config_hash == "h" and asked == [1]
    assert desired == Desired(jobs={}, config_hash="h") and Desired(jobs={}).config_hash == ""


def test_aliases_do_not_leak_normalisation_between_jobs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + "jobs:\n  a:\n    displayName: a\n    jobSpec: &spec\n      scheduling: {timeout: 2h}\n"
        + POOL
        + "  b:\n    displayName: b\n    jobSpec: *spec\n",
    )
    desired = load_desired([path], variables={})
    a, b = desired.jobs["a"].body["jobSpec"], desired.jobs["b"].body["jobSpec"]
    assert a == b and a is not b
    assert a["scheduling"]["timeout"] == "7200s"


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("labels.owner", True),
        ("labels", True),
        ("displayName", True),
        ("jobSpec.workerPoolSpecs[0].containerSpec.args", True),
        ("jobSpec.workerPoolSpecs[1].machineSpec.acceleratorCount", True),
        ("jobSpec.scheduling.timeout", True),
        ("jobSpec.workerPoolSpecs[*].containerSpec.imageUri", True),
        ("jobSpec.workerPoolSpecs[*].containerSpec.env[*].value", True),
        ("jobSpec[*]", False),
        ("jobSpec.workerPoolSpecs[x]", False),
        ("jobSpec.workerPools", False),
        ("jobSpec.workerPoolSpecs.containerSpec", False),
        ("jobSpec[0]", False),
        ("state", False),
        ("lifecycle", False),
        ("labels..x", False),
        ("", False),
    ],
)
def test_ignore_changes_paths(path: str, ok: bool) -> None:
    assert (check_field_path(path, schemas().job_fields) is None) is ok


# --- the fast check agrees with jsonschema ----------------------------------------------------------

JOB_VALIDATOR = schemas().job


def FAST(job: Any) -> bool:
    return valid(schemas().job_rs, job)


VALID_JOB: dict[str, Any] = {
    "displayName": "t",
    "project": "p",
    "location": "us-central1",
    "labels": {"team": "vision"},
    "jobSpec": {
        "scheduling": {"timeout": "2h", "strategy": "SPOT"},
        "workerPoolSpecs": [
            {
                "machineSpec": {"machineType": "n1", "acceleratorType": "NVIDIA_L4", "acceleratorCount": 1},
                "replicaCount": 1,
                "containerSpec": {"imageUri": "x", "env": [{"name": "A", "value": "b"}]},
            },
            {},
        ],
    },
    "lifecycle": {"rerunOn": ["JOB_STATE_FAILED"], "onRemove": "cancel"},
}

REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["", "x", "two", "1", "-1", "2h", "soon", "SPOT", "Team", "JOB_STATE_RUNNING", "a" * 130]),
    st.just({}),
    st.just([]),
    st.just({"unknown": 1}),
    st.just({"name": "n"}),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


ALL_PATHS = _paths(VALID_JOB)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["replace", "delete", "add"]), REPLACEMENTS), max_size=3
    )
)
def test_fast_check_agrees_with_jsonschema(edits: list[tuple[tuple[Any, ...], str, Any]]) -> None:
    job = copy.deepcopy(VALID_JOB)
    for path, action, value in edits:
        if not path:
            continue
        parent: Any = job
        try:
            for part in path[:-1]:
                parent = parent[part]
            last = path[-1]
            if action == "replace":
                parent[last] = copy.deepcopy(value)
            elif action == "delete":
                del parent[last]
            elif isinstance(parent, dict):
                parent[f"{last}x"] = copy.deepcopy(value)
            else:
                parent.append(copy.deepcopy(value))
        except (KeyError, IndexError, TypeError, AttributeError):
            continue
    assert FAST(job) == JOB_VALIDATOR.is_valid(job), json.dumps(job)
    # With jsonschema behind the jsonschema-rs gate, the answer is jsonschema's.
    assert schemas().job_ok(job) == JOB_VALIDATOR.is_valid(job), json.dumps(job)


def test_fast_check_agrees_on_every_invalid_fixture_job() -> None:
    import yaml

    for fixture in sorted((REPO / "tests" / "testdata" / "invalid").glob("*.yaml")):
        try:
            data = yaml.safe_load(fixture.read_text())
        except Exception:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
            continue
        for job in data["jobs"].values():
            if isinstance(job, dict):
                job = {"project": "p", "location": "l", **job}
                assert FAST(job) == JOB_VALIDATOR.is_valid(job), fixture.name
                assert schemas().job_ok(job) == JOB_VALIDATOR.is_valid(job), fixture.name


def test_bad_defaults_are_reported_once_and_jobs_still_explain_their_own_errors(tmp_path: Path) -> None:
    jobs = "".join(
        f"  job-{i}:\n    displayName: t\n    jobSpec:\n" + POOL.replace("replicaCount: 1", f"replicaCount: {rc}")
        for i, rc in enumerate(["1", "two", "1"])
    )
    path = write(
        tmp_path,
        HEAD + "defaults:\n  labels: {Team: x}\n  jobSpec:\n    schedulng: {timeout: 1h}\njobs:\n" + jobs,
    )
    found = errors([path])
    assert [line.split(": ", 1)[1] for line in found] == [
        "defaults.labels.Team: invalid label key \"Team\": at most 64 lowercase letters, digits, '_' or '-' "
        "(international characters allowed), starting with a letter",
        'defaults.jobSpec.schedulng: unknown field "schedulng"; did you mean "scheduling"?',
        'jobs.job-1.jobSpec.workerPoolSpecs[0].replicaCount: expected an integer, got "two"',
    ]


def test_defaults_may_hold_worker_pool_specs_and_a_list_replaces(tmp_path: Path) -> None:
    text = (
        HEAD
        + "defaults:\n  jobSpec:\n"
        + POOL
        + "jobs:\n  a:\n    displayName: a\n  b:\n    displayName: b\n    jobSpec:\n"
        + POOL.replace("n1-standard-4", "n1-standard-8").replace("img", "img2")
    )
    desired = load_desired([write(tmp_path, text)], variables={})
    pools = {a: j.body["jobSpec"]["workerPoolSpecs"] for a, j in desired.jobs.items()}
    assert pools["a"] == [
        {"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "1", "containerSpec": {"imageUri": "img"}}
    ]
    assert pools["b"][0]["machineSpec"] == {"machineType": "n1-standard-8"} and len(pools["b"]) == 1
    # The one-of rule still holds in defaults, with its own message.
    both = POOL.replace(
        "containerSpec: {imageUri: img}",
        "containerSpec: {imageUri: img}\n          "
        "pythonPackageSpec: {executorImageUri: e, packageUris: [gs://b/p.tar.gz], pythonModule: m}",
    )
    found = errors([write(tmp_path, HEAD + "defaults:\n  jobSpec:\n" + both + "jobs:\n  a:\n    displayName: a\n")])
    assert len(found) == 1 and found[0].endswith(
        "jobs.yaml:7:11: defaults.jobSpec.workerPoolSpecs[0]: set only one of containerSpec or pythonPackageSpec, "
        "not both"
    )
