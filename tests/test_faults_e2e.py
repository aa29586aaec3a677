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


# -- 2. a lone .backup is never ignored; a journal without state is reported; links kept -------


def write_jobs(cli: Cli, count: int) -> None:
    (cli.cwd / "jobs" / "jobs.yaml").write_text(config_text(count))


def test_lone_backup_is_refused_until_restored(cli: Cli) -> None:
    write_jobs(cli, 2)
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    write_jobs(cli, 3)
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    state = Path(cli.state)
    backup = state.with_name(state.name + ".backup")
    kept = backup.read_bytes()
    serial = json.loads(kept)["serial"]
    state.unlink()
    cli.emulator.request_log.clear()
    for args in (("plan", "jobs"), ("apply", "jobs", "--auto-approve"), ("state", "list")):
        r = cli.run(*args) if args[0] != "state" else cli.run(*args, "--state", str(state), backend=False)
        assert r.code == 1, (args, r.err)
        assert f"is missing but a backup of serial {serial} exists" in r.err, r.err
        assert "planner state restore" in r.err and "--ignore-backup" in r.err
    assert backup.read_bytes() == kept and not state.exists()
    assert [rec.rpc for rec in cli.emulator.request_log.records if rec.rpc == "create"] == []

    r = cli.run("state", "restore", "--state", str(state), backend=False)
    assert r.code == 0, r.err
    assert f"serial {serial}" in r.out
    assert json.loads(state.read_bytes())["lineage"] == json.loads(kept)["lineage"]
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    assert "0 to create" in r.out  # the job the backup missed is adopted by its labels
    jobs = labelled_jobs(cli.emulator, PROJECT, LOCATION)
    assert len(jobs) == 3 and len(state_of(cli)["jobs"]) == 3
    # A readable state is never replaced by a restore.
    r = cli.run("state", "restore", "--state", str(state), backend=False)
    assert r.code == 1 and "exists and is readable" in r.err


def test_ignore_backup_starts_a_new_state(cli: Cli) -> None:
    write_jobs(cli, 1)
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    Path(cli.state).unlink()
    r = cli.run("plan", "jobs", "--ignore-backup")
    assert r.code == 0, r.err
    assert "adopt" in r.out


def test_journal_without_state_is_reported_and_kept(cli: Cli) -> None:
    write_jobs(cli, 1)
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    state = Path(cli.state)
    journal = state.with_name(state.name + ".journal")
    journal.write_bytes(b'{"some": "step record"}\n')
    state.unlink()
    state.with_name(state.name + ".backup").unlink()
    r = cli.run("plan", "jobs")
    assert r.code == 1 and "is missing but its journal" in r.err, r.err
    assert journal.exists()
    r = cli.run("apply", "jobs", "--auto-approve", "--ignore-backup")
    assert r.code == 0, r.err
    assert journal.with_name(journal.name + ".orphaned").read_bytes() == b'{"some": "step record"}\n'


def test_symlinked_state_is_written_through(cli: Cli) -> None:
    real = cli.cwd / "elsewhere" / "real.json"
    real.parent.mkdir()
    link = cli.cwd / "state-link.json"
    link.symlink_to(real)
    cli.state = link
    write_jobs(cli, 1)
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    write_jobs(cli, 2)
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert len(json.loads(real.read_text())["jobs"]) == 2
    backup = link.with_name(link.name + ".backup")
    assert not backup.is_symlink() and len(json.loads(backup.read_text())["jobs"]) == 1
    assert real.stat().st_mode & 0o777 == 0o600
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0


# -- 3/4. a full disk: apply stops, reports what it could not record, nothing is created twice ---


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 1 MiB tmpfs (root only: skipped otherwise), unmounted at teardown."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk up to `leave` bytes free; the filler file is returned so a test can free it."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    size = st.f_bavail * st.f_frsize - leave
    filler.write_bytes(b"\0" * size)
    return filler


def test_full_disk_stops_apply_reports_unrecorded_and_the_next_run_adopts_them(cli: Cli, small_disk: Path) -> None:
    count = 70
    (cli.cwd / "jobs" / "jobs.yaml").write_text(config_text(count))
    cli.state = small_disk / "default.json"
    filler = fill(small_disk, 24 * 1024)
    r = cli.run("apply", "jobs", "--auto-approve", "--parallelism", "4")
    assert r.code == 1, (r.out, r.err)
    assert "Traceback" not in r.err
    assert "Apply complete:" in r.out  # the report is printed although the final write failed
    assert "The state journal could not be written" in r.err and "Done but not journalled" in r.err, r.err
    assert "The final state write failed" in r.err
    created = {j["name"] for j in labelled_jobs(cli.emulator, PROJECT, LOCATION)}
    assert 0 < len(created) < count - 20, len(created)  # stopped at the first failed append
    journal = Path(str(cli.state) + ".journal").read_bytes()
    assert journal.endswith(b"\n")  # the torn record was cut off
    from planner.state.fileformat import journal_records

    records, _ = journal_records(journal, "journal")
    journalled = {entry.record.name for _l, _s, entry in records if entry.record is not None}
    listed = {line.split(": ", 1)[1] for line in r.err.splitlines() if line.startswith("  - job-")}
    assert journalled | listed == created and not journalled & listed

    filler.unlink()
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    jobs = labelled_jobs(cli.emulator, PROJECT, LOCATION)
    assert len(jobs) == count and len({j["labels"]["planner-address"] for j in jobs}) == count
    assert created <= {j["name"] for j in jobs}
    assert len(state_of(cli)["jobs"]) == count
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0


# -- 6. secrets in messages ---------------------------------------------------------------------


def test_validation_never_echoes_a_value_under_env(cli: Cli) -> None:
    env = "            env: [{name: TOKEN, value: 918273645501}, {name: B, value: [sekrit-list]}]"
    (cli.cwd / "jobs" / "jobs.yaml").write_text(config_text(1, extra=env))
    r = cli.run("validate", "jobs", backend=False)
    assert r.code == 1, r.err
    assert "env[0].value" in r.err and "918273645501" not in r.err + r.out
    assert "not shown" in r.err


def test_api_error_text_is_masked_for_every_env_value_of_the_request(emulator) -> None:  # type: ignore[no-untyped-def]
    from planner.api import build_client
    from planner.api.client import MASK
    from planner.errors import ApiError

    body = {
        "displayName": "leaky",
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "replicaCount": "1",
                    "containerSpec": {
                        "imageUri": "us-docker.pkg.dev/p/r/i:1",
                        "env": [{"name": "TOKEN", "value": 918273645501}],
                    },
                }
            ]
        },
    }
    with build_client(endpoint=emulator.url) as client, pytest.raises(ApiError) as info:
        client.create_job(PROJECT, LOCATION, body, find_existing=lambda: None)
    assert info.value.http_status == 400
    assert "918273645501" not in str(info.value) and MASK in str(info.value), str(info.value)
    assert "918273645501" not in json.dumps(info.value.details)


# -- 7. exit 3 is only for bugs --------------------------------------------------------------------


def test_huge_integers_and_control_characters_are_user_errors_at_their_place(cli: Cli) -> None:
    jobs = cli.cwd / "jobs" / "jobs.yaml"
    huge = "9" * 5000
    jobs.write_text(config_text(1).replace("replicaCount: 1", f"replicaCount: {huge}"))
    r = cli.run("validate", "jobs", backend=False)
    assert r.code == 1, r.err
    assert "jobs.yaml:10:25: a number of 5000 digits is too large" in r.err, r.err[:500]

    jobs.write_text(config_text(1).replace("replicaCount: 1", "replicaCount: ${var.n}"))
    r = cli.run("validate", "jobs", "--var", f"n={huge}", backend=False)
    assert r.code == 1 and "jobs.yaml:10:25:" in r.err and "5000 digits" in r.err, r.err[:500]
    (cli.cwd / "vars.yaml").write_text(f"n: {huge}\n")
    r = cli.run("validate", "jobs", "--var-file", "vars.yaml", backend=False)
    assert r.code == 1 and "too large" in r.err and "bug" not in r.err, r.err[:500]

    # An undefined variable where an integer goes is reported, not a crash.
    r = cli.run("validate", "jobs", backend=False)
    assert r.code == 1 and 'undefined variable "n"' in r.err, r.err[:500]

    placed = (
        ("project: demo-project", "project: demo-project\x00", 2, 22),
        ("location: us", "location: u\x07s", 3, 12),
    )
    for before, after, line, column in placed:
        jobs.write_text(config_text(1).replace(before, after))
        char = after[column - 1]
        r = cli.run("validate", "jobs", backend=False)
        assert r.code == 1, r.err
        assert f"jobs.yaml:{line}:{column}: YAML syntax error: character #x{ord(char):04x}" in r.err, r.err
