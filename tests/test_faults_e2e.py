"""Faults that must lose nothing (issue #13), end to end: the real CLI against the emulator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_harness import Cli, config_text, labelled_jobs

PROJECT, LOCATION = "demo-project", "us-central1"


@pytest.fixture
def cli(tmp_path: Path, emulator_factory):  # type: ignore[no-untyped-def]
    (tmp_path / "jobs").mkdir()
    return Cli(tmp_path, emulator_factory(run_seconds=3600))


def state_of(cli: Cli) -> dict:  # type: ignore[type-arg]
    return json.loads(Path(cli.state).read_text())


# -- 1. a config file that cannot be read is an error, never a silent skip ----------------------


@pytest.mark.parametrize("kind", ["dangling", "loop", "directory"])
def test_unreadable_entry_of_a_config_directory_fails_and_plans_nothing(cli: Cli, kind: str) -> None:
    jobs = cli.cwd / "jobs"
    (jobs / "a.yaml").write_text(config_text(1))
    (jobs / "b.yaml").write_text(config_text(2).replace("job-0000", "job-xxxx"))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    running = {j["name"] for j in labelled_jobs(cli.emulator, PROJECT, LOCATION)}
    assert len(running) == 3

    (jobs / "b.yaml").unlink()
    if kind == "dangling":
        (jobs / "b.yaml").symlink_to(cli.cwd / "moved-away.yaml")
        expected = "dangling symbolic link"
    elif kind == "loop":
        (jobs / "b.yaml").symlink_to(jobs / "b.yaml")
        expected = "symbolic link loop"
    else:
        (jobs / "b.yaml").mkdir()
        expected = "is a directory"
    cli.emulator.request_log.clear()
    for command in ("validate", "plan", "apply"):
        args = [command, "jobs"] + (["--auto-approve"] if command == "apply" else [])
        r = cli.run(*args, backend=command != "validate")
        assert r.code == 1, (command, r.out, r.err)
        assert "b.yaml: cannot read" in r.err and expected in r.err, r.err
        assert "Traceback" not in r.err and "delete" not in r.out
    assert [rec.rpc for rec in cli.emulator.request_log.records if rec.rpc != "list"] == []
    assert {j["name"] for j in labelled_jobs(cli.emulator, PROJECT, LOCATION)} == running
