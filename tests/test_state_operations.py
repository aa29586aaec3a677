"""planner.operations.state called in-process against the emulator: import, list, show, rm, and refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from planner.emulator import Emulator
from planner.errors import StateLockedError, UsageError
from planner.operations import state as ops
from planner.operations.backend import Backend, open_state

PROJECT, LOCATION = "demo-project", "us-central1"
SECRET = "s3cr3t-token-value"


@pytest.fixture
def backend(tmp_path: Path, emulator: Emulator) -> Iterator[Backend]:
    backend = Backend(workspace="default", state_spec=str(tmp_path / "default.json"), emulator=False,
                      endpoint=emulator.url)  # fmt: skip
    try:
        yield backend
    finally:
        backend.close()


def make_job(backend: Backend, display_name: str, *, env: bool = False) -> str:
    """A job made outside planner (no planner labels), as the SDK or gcloud would."""
    container: dict[str, Any] = {"imageUri": "us-docker.pkg.dev/demo/train:1"}
    if env:
        container["env"] = [{"name": "API_TOKEN", "value": SECRET}]
    pool = {"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "1", "containerSpec": container}
    body = {"displayName": display_name, "jobSpec": {"workerPoolSpecs": [pool]}}
    made = backend.client().create_job(PROJECT, LOCATION, body, find_existing=lambda: None)
    return str(made["name"])


def write(text: str, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")


def test_import_then_list_show_and_rm(backend: Backend, tmp_path: Path) -> None:
    name = make_job(backend, "Train run", env=True)
    config = tmp_path / "jobs" / "train.yaml"

    imported = ops.import_job(backend, "train", name, generate_config=str(config), write=write)

    assert (imported.record.address, imported.record.name) == ("train", name)
    assert imported.generated is not None and [v.name for v in imported.generated.variables] == ["TRAIN_API_TOKEN"]
    assert "train:" in config.read_text() and SECRET not in config.read_text()
    assert [(r.address, r.name) for r in ops.list_records(backend)] == [("train", name)]
    shown = ops.show_record(backend, "train")
    assert shown["address"] == "train" and shown["name"] == name
    assert SECRET not in json.dumps(shown) and "(sensitive, digest sha256:" in json.dumps(shown)

    assert ops.remove_records(backend, ["train"]) == ["train"]
    assert ops.list_records(backend) == []
    assert ops.import_job(backend, "train-again", name).generated is None  # rm left the job alone: it imports again
    assert [r.address for r in ops.list_records(backend)] == ["train-again"]


def test_refusals_keep_their_messages(backend: Backend, tmp_path: Path) -> None:
    name = make_job(backend, "Train run")
    ops.import_job(backend, "train", name)

    with pytest.raises(UsageError, match=f"^{name} is already managed as train$"):
        ops.import_job(backend, "other", name)
    with pytest.raises(UsageError, match=r"^train is already in state \(.*\); `state rm` it first$"):
        ops.import_job(backend, "train", make_job(backend, "Second"))
    missing = f"projects/{PROJECT}/locations/{LOCATION}/customJobs/404404"
    with pytest.raises(UsageError, match=f"^{missing}: no such job$"):
        ops.import_job(backend, "gone", missing)
    with pytest.raises(UsageError, match=r"^'Bad' is not a valid address"):
        ops.import_job(backend, "Bad", name)
    with pytest.raises(UsageError, match=r"^not in state: nope$"):
        ops.remove_records(backend, ["train", "nope"])
    with pytest.raises(UsageError, match=r"^nope: not in state$"):
        ops.show_record(backend, "nope")
    assert [r.address for r in ops.list_records(backend)] == ["train"]  # a refused rm removed nothing

    elsewhere = Backend(workspace="default", state_spec=str(tmp_path / "typo.json"), emulator=False, endpoint=None)
    with pytest.raises(UsageError, match=r"^no state at .*typo\.json\n  hint: check --state"):
        ops.list_records(elsewhere)  # a --state naming nothing is not an empty state
    elsewhere.close()


def test_a_state_command_waits_for_no_one_holding_the_lock(backend: Backend) -> None:
    name = make_job(backend, "Train run")
    with open_state(backend, "apply") as held:
        assert held.state is None and held.client is None
        with pytest.raises(StateLockedError):
            ops.import_job(backend, "train", name)
    assert ops.import_job(backend, "train", name).record.name == name  # released on the way out


def test_import_unmanaged_writes_each_configuration(backend: Backend, tmp_path: Path) -> None:
    names = [make_job(backend, n) for n in ("Nightly eval", "nightly eval")]
    target = tmp_path / "jobs"
    adopted = ops.import_unmanaged(backend, PROJECT, LOCATION, str(target), write)

    assert [a.record.address for a in adopted] == ["nightly-eval", "nightly-eval-2"]
    assert sorted(p.name for p in target.glob("*.yaml")) == ["nightly-eval-2.yaml", "nightly-eval.yaml"]
    assert sorted(r.name for r in ops.list_records(backend)) == sorted(names)
    assert ops.import_unmanaged(backend, PROJECT, LOCATION, str(target), write) == []
    with pytest.raises(UsageError, match=r"^--all-unmanaged needs --project, --region and --generate-config DIR$"):
        ops.check_import_all(None, None, PROJECT, None, str(target))
