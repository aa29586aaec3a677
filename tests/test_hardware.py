"""The hardware catalog and the submit-time rules: validate and the emulator reject exactly the same jobs.

The invalid fixtures are tests/testdata/invalid/hw_*.yaml (each error marked on its line, checked
by test_invalid_configs.py); the valid ones, configurations from the Vertex AI documentation
(the page is named in each file's first line), are tests/testdata/hardware/valid/*.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cli_harness import Cli

from planner.apimodel import canonical_duration
from planner.config.validate import load_desired
from planner.emulator import Emulator
from planner.errors import ConfigError, UsageError
from planner.hardware import HardwareOptions, load_catalog, packaged_catalog
from planner.hardware.catalog import CATALOG_SOURCE, PACKAGED_CATALOG, build_catalog_document

REPO = Path(__file__).resolve().parent.parent
TESTDATA = Path(__file__).parent / "testdata"
INVALID = sorted((TESTDATA / "invalid").glob("hw_*.yaml"))
VALID = sorted((TESTDATA / "hardware" / "valid").glob("*.yaml"))


def test_enough_fixtures() -> None:
    assert len(INVALID) >= 30
    assert len(VALID) >= 20
    for path in VALID:
        assert path.read_text().startswith("# https://cloud.google.com/"), f"{path.name}: name its documentation page"


# --- the catalog --------------------------------------------------------------------------------


def test_every_accelerator_of_the_schema_is_in_the_catalog() -> None:
    schema = json.loads((REPO / "schemas" / "custom_job.schema.json").read_text())
    found: list[list[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "acceleratorType" in node.get("properties", {}):
                found.append(node["properties"]["acceleratorType"]["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert found, "no acceleratorType enum in the schema"
    catalog = packaged_catalog()
    for enum in found:
        assert set(enum) == set(catalog.accelerators)


def test_machine_types_are_consistent() -> None:
    catalog = packaged_catalog()
    assert len(catalog.machine_types) >= 60
    for name, machine in catalog.machine_types.items():
        for accelerator, counts in machine.accelerators.items():
            info = catalog.accelerators[accelerator]
            assert info.kind in ("gpu", "tpu"), (name, accelerator)
            assert not info.deprecated, f"{name} accepts the deprecated {accelerator}"
            assert counts and all(c >= 1 for c in counts) and list(counts) == sorted(set(counts)), (name, counts)
        if machine.fixed:
            assert len(machine.accelerators) == 1 and len(next(iter(machine.accelerators.values()))) == 1, name
        if machine.topologies:
            assert all(catalog.accelerators[a].kind == "tpu" for a in machine.accelerators), name
        if machine.vcpus is not None:
            assert machine.vcpus >= 1 and (machine.memory_gb or 0) > 0, name
    # Spot checks of the documented facts.
    assert catalog.machine_types["a2-highgpu-8g"].accelerators == {"NVIDIA_TESLA_A100": (8,)}
    assert catalog.machine_types["a3-highgpu-8g"].accelerators == {"NVIDIA_H100_80GB": (8,)}
    assert catalog.machine_types["g2-standard-4"].accelerators == {"NVIDIA_L4": (1,)}
    assert catalog.machine_types["n1-standard-8"].accelerators["NVIDIA_TESLA_V100"] == (1, 2, 4, 8)
    assert catalog.machine_types["n1-standard-32"].accelerators["NVIDIA_TESLA_V100"] == (4, 8)
    assert not catalog.machine_types["e2-standard-8"].accelerators
    assert catalog.accelerators["NVIDIA_TESLA_K80"].deprecated


def test_every_entry_names_a_source_and_the_file_its_date() -> None:
    doc = json.loads((REPO / PACKAGED_CATALOG).read_text())
    assert doc["retrieved"][:4].isdigit() and doc["generated_from"] == CATALOG_SOURCE

    def is_url(value: Any) -> bool:
        return isinstance(value, str) and value.startswith("https://")

    for section in ("machine_types", "accelerators", "messages"):
        for name, entry in doc[section].items():
            assert is_url(entry["source"]), (section, name)
    for name, entry in doc["accelerators"].items():
        if "regions" in entry:
            assert is_url(entry["regions_source"]), name
            assert set(entry["regions"]) <= set(doc["regions"]["names"]), name
    assert is_url(doc["regions"]["source"]) and is_url(doc["scheduling"]["source"])
    assert is_url(doc["scheduling"]["deprecated_strategies_source"])


def test_packaged_catalog_is_generated_from_the_source() -> None:
    source = yaml.safe_load((REPO / CATALOG_SOURCE).read_text())
    assert json.loads((REPO / PACKAGED_CATALOG).read_text()) == build_catalog_document(source)


# --- validate and the emulator agree --------------------------------------------------------------


def _jobs(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(project, location, API body) of every job in a fixture, as planner would send it."""
    data = yaml.safe_load(path.read_text())
    out = []
    for job in data["jobs"].values():
        body = {k: job[k] for k in ("displayName", "labels", "jobSpec", "encryptionSpec") if k in job}
        body = json.loads(json.dumps(body))
        spec = body["jobSpec"]
        for pool in spec["workerPoolSpecs"]:
            if "replicaCount" in pool:
                pool["replicaCount"] = str(pool["replicaCount"])
        for key in ("timeout", "maxWaitDuration"):
            if key in spec.get("scheduling", {}):
                spec["scheduling"][key] = canonical_duration(spec["scheduling"][key])
        out.append((job.get("project", data["project"]), str(job.get("location", data["location"])), body))
    return out


@pytest.fixture(scope="module")
def strict_http() -> Iterator[httpx.Client]:
    with Emulator() as emulator, httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("case", INVALID + VALID, ids=[p.stem for p in INVALID + VALID])
def test_validate_and_emulator_agree(case: Path, strict_http: httpx.Client) -> None:
    try:
        load_desired([case], variables={})
        validate_accepts = True
    except ConfigError:
        validate_accepts = False
    answers = [
        strict_http.post(f"/v1/projects/{project}/locations/{location}/customJobs", json=body)
        for project, location, body in _jobs(case)
    ]
    for answer in answers:
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 400:
            assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    emulator_accepts = all(a.status_code == 200 for a in answers)
    assert validate_accepts == emulator_accepts, [a.text for a in answers]
    assert validate_accepts == (case in VALID)


def test_emulator_uses_vertex_wording(strict_http: httpx.Client) -> None:
    (_, _, body), = _jobs(TESTDATA / "invalid" / "hw_k80_deprecated.yaml")
    error = strict_http.post("/v1/projects/p/locations/us-central1/customJobs", json=body).json()["error"]
    assert error["message"] == 'Accelerator "NVIDIA_TESLA_K80" is not supported for machine type "n1-standard-4"'
    (_, _, body), = _jobs(TESTDATA / "invalid" / "hw_type_without_count.yaml")
    error = strict_http.post("/v1/projects/p/locations/us-central1/customJobs", json=body).json()["error"]
    assert error["message"] == (
        "List of found errors:\t1.Field: job_spec.worker_pool_specs[0].machine_spec.accelerator_type; "
        "Message: Both `accelerator_type` and `accelerator_count` should be specified or none.\t"
    )
    fields = [v["field"] for v in error["details"][0]["fieldViolations"]]
    assert fields == ["job_spec.worker_pool_specs[0].machine_spec.accelerator_type"]


def test_lenient_emulator_accepts_what_vertex_refuses(emulator_factory: Callable[..., Emulator]) -> None:
    (_, _, body), = _jobs(TESTDATA / "invalid" / "hw_a100_on_n1.yaml")
    with httpx.Client(base_url=emulator_factory(lenient=True).url, timeout=10) as client:
        assert client.post("/v1/projects/p/locations/us-centrall1/customJobs", json=body).status_code == 200


# --- unknown hardware: a warning, an option, an override file -------------------------------------

PRIVATE = """\
version: 1
project: demo-project
location: us-central1
jobs:
  train:
    displayName: train
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {machineType: x9-private-16, acceleratorType: NVIDIA_L4, acceleratorCount: 2}
          replicaCount: 1
          containerSpec: {imageUri: img}
"""


def test_unknown_machine_type_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(PRIVATE)
    desired = load_desired([path], variables={})
    (warning,) = desired.warnings
    assert warning.location is not None and (warning.location.line, warning.location.column) == (9, 38)
    assert 'machine type "x9-private-16" with NVIDIA_L4 is not in planner\'s catalog of 2026-12-01' in warning.message
    assert load_desired([path], variables={}, hardware=HardwareOptions(allow_unknown=True)).warnings == ()


def test_override_file_makes_private_machine_types_known(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(PRIVATE)
    override = tmp_path / "hardware.yaml"
    override.write_text("machine_types:\n  x9-private-16: {accelerators: {NVIDIA_L4: [1, 2]}, vcpus: 16}\n")
    catalog = load_catalog(override)
    assert load_desired([path], variables={}, hardware=HardwareOptions(catalog=catalog)).warnings == ()
    override.write_text("machine_types:\n  x9-private-16: {accelerators: {NVIDIA_L4: [1]}}\n")
    with pytest.raises(ConfigError, match=r"x9-private-16 cannot have 2 × NVIDIA_L4: use acceleratorCount 1"):
        load_desired([path], variables={}, hardware=HardwareOptions(catalog=load_catalog(override)))
    override.write_text("machine_types:\n  x9: {accelerators: {NVIDIA_GTX_1080: [1]}}\n")
    with pytest.raises(UsageError, match="NVIDIA_GTX_1080 is not an accelerator type of the API"):
        load_catalog(override)


def test_override_file_adds_regions(tmp_path: Path) -> None:
    override = tmp_path / "hardware.yaml"
    override.write_text("accelerator_regions:\n  NVIDIA_H100_80GB: [europe-west2]\n")
    case = TESTDATA / "invalid" / "hw_h100_not_in_region.yaml"
    assert load_desired([case], variables={}, hardware=HardwareOptions(catalog=load_catalog(override))).jobs
    # --allow-unknown-hardware: a region gap in the catalog is a warning, not an error.
    desired = load_desired([case], variables={}, hardware=HardwareOptions(allow_unknown=True))
    assert [w.message.split(" (")[0] for w in desired.warnings] == [
        "NVIDIA_H100_80GB is not offered for Vertex AI training in europe-west2"
    ]


def test_cli_validate_warns_and_flags_work(tmp_path: Path, emulator: Emulator) -> None:
    (tmp_path / "jobs.yaml").write_text(PRIVATE)
    cli = Cli(tmp_path, emulator)
    result = cli.run("validate", "jobs.yaml", backend=False)
    assert result.code == 0, result.err
    assert "Warning: jobs.yaml:9:38: jobs.train.jobSpec.workerPoolSpecs[0].machineSpec.machineType" in result.err
    quiet = cli.run("validate", "jobs.yaml", "--allow-unknown-hardware", backend=False)
    assert quiet.code == 0 and "Warning" not in quiet.err
    as_json = json.loads(cli.run("validate", "jobs.yaml", "--format", "json", backend=False).out)
    assert as_json["valid"] and as_json["warnings"][0]["line"] == 9
    missing = cli.run("validate", "jobs.yaml", "--hardware-catalog", "nope.yaml", backend=False)
    assert missing.code == 1 and "--hardware-catalog nope.yaml" in missing.err and "Traceback" not in missing.err


def test_cli_plan_refuses_and_sends_nothing(tmp_path: Path, emulator: Emulator) -> None:
    (tmp_path / "jobs.yaml").write_text((TESTDATA / "invalid" / "hw_all_problems_at_once.yaml").read_text())
    cli = Cli(tmp_path, emulator)
    result = cli.run("plan", "jobs.yaml")
    assert result.code == 1 and "Traceback" not in result.err
    assert "5 errors found." in result.err
    assert 'jobs.yaml:3:11: jobs.train.location: "us-centra1" is not a Vertex AI region' in result.err
    assert len(emulator.request_log) == 0  # validation failed: nothing was sent


def test_emulator_takes_the_same_override_file(tmp_path: Path, emulator_factory: Callable[..., Emulator]) -> None:
    override = tmp_path / "hardware.yaml"
    override.write_text("accelerator_regions:\n  NVIDIA_H100_80GB: [europe-west2]\n")
    (_, _, body), = _jobs(TESTDATA / "invalid" / "hw_h100_not_in_region.yaml")
    url = "/v1/projects/p/locations/europe-west2/customJobs"
    with httpx.Client(base_url=emulator_factory().url, timeout=10) as strict:
        assert strict.post(url, json=body).status_code == 400
    with httpx.Client(base_url=emulator_factory(hardware_catalog=str(override)).url, timeout=10) as client:
        assert client.post(url, json=body).status_code == 200


def test_emulator_serve_refuses_a_bad_override_file(tmp_path: Path) -> None:
    from planner.emulator import config_from_cli

    (tmp_path / "bad.yaml").write_text("machine_types: [1, 2]\n")
    with pytest.raises(UsageError, match="not a hardware catalog override"):
        config_from_cli(hardware_catalog=str(tmp_path / "bad.yaml"))


def test_documented_configurations_apply_on_the_strict_emulator(tmp_path: Path, emulator: Emulator) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    for name in ("flex_start_a3", "distributed_gpu_workers", "tpu_v5e_multi_host", "reservation_specific"):
        text = (TESTDATA / "hardware" / "valid" / f"{name}.yaml").read_text()
        (jobs / f"{name}.yaml").write_text(text.replace("  train:\n", f"  {name.replace('_', '-')}:\n"))
    cli = Cli(tmp_path, emulator)
    applied = cli.run("apply", "jobs", "--auto-approve")
    assert applied.code == 0, applied.err
    assert "4 to create" in applied.out
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0  # applied once, no changes since


def test_deprecated_strategy_and_ignored_wait_are_warnings(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(
        PRIVATE.replace("x9-private-16, acceleratorType: NVIDIA_L4, acceleratorCount: 2", "g2-standard-4")
        .replace("    jobSpec:\n", "    jobSpec:\n      scheduling: {strategy: LOW_COST, maxWaitDuration: 1h}\n")
    )
    desired = load_desired([path], variables={})
    assert [w.message for w in desired.warnings] == [
        "strategy LOW_COST is deprecated; write SPOT",
        "maxWaitDuration is how long a FLEX_START job waits for its GPUs; with strategy LOW_COST Vertex AI "
        "ignores it (remove it, or set strategy: FLEX_START)",
    ]
    assert [(w.location.line, w.path) for w in desired.warnings if w.location] == [
        (8, "jobs.train.jobSpec.scheduling.strategy"), (8, "jobs.train.jobSpec.scheduling.maxWaitDuration")
    ]
