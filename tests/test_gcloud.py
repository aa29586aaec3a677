"""gcloud --config files in and out, and `import --generate-config`, through the CLI on the emulator.

Round trip (the issue's acceptance): every shape under testdata/gcloud/ is imported into a
desired-state file, applied on the emulator, exported as a gcloud config again, and the
exported spec is the one imported. `import --generate-config` is tried on jobs made by
google-cloud-aiplatform's own client; the next plan of the written files must be a no-op.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cli_harness import Cli
from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform_v1 import JobServiceClient

from planner import gcloud
from planner.canonical import canonical_spec
from planner.errors import ConfigError

SHAPES = Path(__file__).parent / "testdata" / "gcloud"
CASES = sorted(SHAPES.glob("*.yaml"))
PROJECT, LOCATION = "demo-project", "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
_VAR_HINT = re.compile(r"--var ([A-Z0-9_]+)=")


def spec_of(path: Path | str, text: str | None = None) -> dict[str, Any]:
    """The canonical jobSpec a gcloud config file describes."""
    content = text if text is not None else Path(path).read_text()
    spec, _span = gcloud.read_config(content, str(path))
    return canonical_spec({"jobSpec": spec})["jobSpec"]  # type: ignore[no-any-return]


def test_there_are_at_least_eight_documented_shapes() -> None:
    assert len(CASES) >= 8
    for case in CASES:
        head = case.read_text().split("\n", 1)[0]
        assert head.startswith("# Source:") and "https://" in case.read_text(), f"{case.name} names no source"
        assert "retrieved 2026-12-01" in case.read_text()


def test_snake_case_and_a_single_pool_mapping_read_as_camel_case_lists() -> None:
    snake = spec_of("x.yaml", "worker_pool_specs:\n  machine_spec: {machine_type: n1-standard-4}\n  replica_count: 2\n")
    assert snake == {"workerPoolSpecs": [{"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "2"}]}


def test_a_key_spelled_two_ways_is_an_error_at_its_line() -> None:
    text = "workerPoolSpecs:\n  - machineSpec: {machineType: a, machine_type: b}\n"
    with pytest.raises(ConfigError) as info:
        gcloud.read_config(text, "dup.yaml")
    assert str(info.value.diagnostics[0]).startswith("dup.yaml:2:35:")


@pytest.fixture
def cli(tmp_path: Path, emulator_factory):  # type: ignore[no-untyped-def]
    (tmp_path / "jobs").mkdir()
    return Cli(tmp_path, emulator_factory(run_seconds=3600))


def test_import_checks_every_field_at_the_gcloud_files_line(cli: Cli) -> None:
    bad = cli.cwd / "bad.yaml"
    bad.write_text("workerPoolSpecs:\n  - machineSpec: {machineType: n1-standard-4}\n    replicaCount: many\n")
    r = cli.run("import", "--from-gcloud-config", str(bad), "--address", "bad", backend=False)
    assert r.code == 1 and "Traceback" not in r.err
    assert f"{bad}:3:19: jobs.bad.jobSpec.workerPoolSpecs[0].replicaCount:" in r.err
    assert f"{bad}:2:5: jobs.bad.jobSpec.workerPoolSpecs[0]: a worker pool needs one of containerSpec" in r.err


def test_gcloud_round_trip_on_every_documented_shape(cli: Cli) -> None:
    variables: list[str] = []
    addresses = {}
    for case in CASES:
        address = case.stem.replace("_", "-")
        addresses[address] = case
        out = cli.cwd / "jobs" / f"{address}.yaml"
        r = cli.run(
            "import", "--from-gcloud-config", str(case), "--address", address,
            "--display-name", f"{address} run", "--project", PROJECT, "--region", LOCATION,
            "--out", str(out), backend=False,
        )  # fmt: skip
        assert r.code == 0, r.err
        text = out.read_text()
        assert "not-a-real-key" not in text  # env values become sensitive variables
        for name in _VAR_HINT.findall(text):
            variables += ["--var", f"{name}=not-a-real-key"]
    r = cli.run("apply", "jobs", "--auto-approve", *variables)
    assert r.code == 0, r.err
    assert f"Plan: {len(CASES)} to create" in r.out
    assert cli.run("plan", "jobs", "--detailed-exitcode", *variables).code == 0

    state = json.loads(cli.state.read_text())["jobs"]
    for address, case in addresses.items():
        if "env" in case.read_text():
            refused = cli.run("export", address, "--gcloud-config")
            assert refused.code == 1 and "--show-sensitive" in refused.err and "not-a-real-key" not in refused.out
            r = cli.run("export", address, "--gcloud-config", "--show-sensitive")
        else:
            r = cli.run("export", address, "--gcloud-config")
        assert r.code == 0, r.err
        assert r.out.startswith(f"# gcloud ai custom-jobs create --region={LOCATION} --display-name='{address} run'")
        exported = spec_of(f"{address}-exported.yaml", r.out)
        assert exported == spec_of(case), case.name
        assert canonical_spec(cli.emulator.get_job(state[address]["name"]))["jobSpec"] == exported


# --- import --generate-config on jobs made by Google's own client ---------------------------------


def google_client(cli: Cli) -> JobServiceClient:
    return JobServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": cli.emulator.url}
    )


def sdk_job(display_name: str, *, env: bool = False, spot: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"image_uri": "us-docker.pkg.dev/demo/train/sdk:1", "args": ["--lr", "0.1"]}
    if env:
        container["env"] = [{"name": "API_TOKEN", "value": "s3cr3t-from-sdk"}, {"name": "MODE", "value": "fast"}]
    job: dict[str, Any] = {
        "display_name": display_name,
        "labels": {"team": "vision"},
        "job_spec": {
            "worker_pool_specs": [
                {
                    "machine_spec": {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4",
                                     "accelerator_count": 1},
                    "replica_count": 1,
                    "disk_spec": {"boot_disk_type": "pd-ssd", "boot_disk_size_gb": 100},
                    "container_spec": container,
                }
            ],
            "base_output_directory": {"output_uri_prefix": "gs://demo-bucket/out"},
        },
    }  # fmt: skip
    if spot:
        job["job_spec"]["scheduling"] = {"strategy": "SPOT", "timeout": "3600s"}
    return job


def test_generate_config_for_an_sdk_job_plans_as_no_op(cli: Cli) -> None:
    made = google_client(cli).create_custom_job(parent=PARENT, custom_job=sdk_job("SDK run #1", env=True, spot=True))
    out = cli.cwd / "jobs" / "sdk-run.yaml"
    r = cli.run("import", "sdk-run", made.name, "--generate-config", str(out))
    assert r.code == 0, r.err
    text = out.read_text()
    assert "s3cr3t-from-sdk" not in text and "s3cr3t-from-sdk" not in r.out
    assert "${var.SDK_RUN_API_TOKEN}" in text and "SDK_RUN_API_TOKEN" in r.out
    for dropped in ("createTime", "state:", "name: projects/", "pd-ssd", "bootDiskSizeGb"):
        assert dropped not in text, dropped  # output-only fields and server defaults are not written
    plan = cli.run(
        "plan",
        "jobs",
        "--detailed-exitcode",
        "--var",
        "SDK_RUN_API_TOKEN=s3cr3t-from-sdk",
        "--var",
        "SDK_RUN_MODE=fast",
    )
    assert plan.code == 0, plan.out + plan.err
    # the wrong secret is a change: the variable really stands for the value
    assert (
        cli.run(
            "plan", "jobs", "--detailed-exitcode", "--var", "SDK_RUN_API_TOKEN=other", "--var", "SDK_RUN_MODE=fast"
        ).code
        == 2
    )
    assert cli.run("import", "sdk-run-2", made.name, "--generate-config", str(out)).code == 1  # never overwrites


def test_import_all_unmanaged_adopts_every_unlabelled_job(cli: Cli) -> None:
    google = google_client(cli)
    made = [
        google.create_custom_job(parent=PARENT, custom_job=sdk_job(n)) for n in ("Nightly eval", "nightly eval", "3rd")
    ]
    r = cli.run("import", "--all-unmanaged", "--project", PROJECT, "--region", LOCATION, "--generate-config", "jobs")
    assert r.code == 0, r.err
    state = json.loads(cli.state.read_text())["jobs"]
    assert sorted(state) == ["job-3rd", "nightly-eval", "nightly-eval-2"]
    assert {rec["name"] for rec in state.values()} == {m.name for m in made}
    assert sorted(p.name for p in (cli.cwd / "jobs").glob("*.yaml")) == [
        "job-3rd.yaml", "nightly-eval-2.yaml", "nightly-eval.yaml"
    ]  # fmt: skip
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0
    again = cli.run(
        "import", "--all-unmanaged", "--project", PROJECT, "--region", LOCATION, "--generate-config", "jobs"
    )
    assert again.code == 0 and "0 unmanaged job(s) imported" in again.out


def test_generated_files_declare_env_variables_sensitive() -> None:
    import yaml

    from planner import generate

    body = {
        "displayName": "x",
        "jobSpec": {
            "workerPoolSpecs": [{"containerSpec": {"imageUri": "i", "env": [{"name": "TOKEN", "value": "v"}]}}]
        },
    }
    doc = yaml.safe_load(generate.from_body("my-job", "p", "l", body, "head").text)
    assert doc["variables"] == {
        "MY_JOB_TOKEN": {
            "type": "string",
            "sensitive": True,
            "description": "my-job: jobSpec.workerPoolSpecs[0].containerSpec.env[0]",
        }
    }
    assert list(doc)[-1] == "jobs"  # jobs last, as the parallel loader expects
