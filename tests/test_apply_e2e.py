"""`planner apply` end to end: the real CLI in a subprocess against the emulator over HTTP."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest
from cli_harness import Cli, config_text, duplicates, labelled_jobs

PROJECT, LOCATION = "demo-project", "us-central1"


@pytest.fixture
def cli(tmp_path: Path, emulator_factory):  # type: ignore[no-untyped-def]
    """Jobs run for an hour unless a test moves them, so cancels are real."""
    (tmp_path / "jobs").mkdir()
    return Cli(tmp_path, emulator_factory(run_seconds=3600))


def write(cli: Cli, text: str) -> Path:
    path = cli.cwd / "jobs" / "jobs.yaml"
    path.write_text(text)
    return path


def state_of(cli: Cli) -> dict:  # type: ignore[type-arg]
    return json.loads(cli.state.read_text())


def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_apply_then_plan_is_noop_then_a_change_is_a_replace(cli: Cli) -> None:
    write(cli, config_text(3))
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    assert "Plan: 3 to create" in r.out
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0
    before = state_of(cli)["jobs"]["job-0001"]["name"]

    write(cli, config_text(3).replace("args: ['--i', '1']", "args: ['--i', '1', '--lr', '0.1']"))
    r = cli.run("plan", "jobs", "--detailed-exitcode")
    assert r.code == 2
    assert "-/+ job-0001" in r.out and "forces replacement" in r.out
    r = cli.run("apply", "jobs", "--auto-approve", "--wait-timeout", "30s")
    assert r.code == 0, r.err
    after = state_of(cli)["jobs"]["job-0001"]
    assert after["name"] != before and after["old_names"] == []
    names = {j["name"] for j in labelled_jobs(cli.emulator, PROJECT, LOCATION)}
    assert before not in names and after["name"] in names and len(names) == 3
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0


def test_removed_job_is_cancelled_and_deleted(cli: Cli) -> None:
    write(cli, config_text(2))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    removed = state_of(cli)["jobs"]["job-0001"]["name"]
    write(cli, config_text(1))
    r = cli.run("apply", "jobs", "--auto-approve", "--wait-timeout", "30s")
    assert r.code == 0, r.err
    assert "job-0001" not in state_of(cli)["jobs"]
    rpcs = [(rec.rpc, rec.path) for rec in cli.emulator.request_log.records if removed.split("/")[-1] in rec.path]
    assert [rpc for rpc, _ in rpcs if rpc in ("cancel", "delete")] == ["cancel", "delete"]
    assert [j["name"] for j in labelled_jobs(cli.emulator, PROJECT, LOCATION) if j["name"] == removed] == []


def test_prevent_destroy_blocks_and_sends_nothing(cli: Cli) -> None:
    write(cli, config_text(1, extra="    lifecycle: {preventDestroy: true}"))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    cli.emulator.request_log.clear()
    write(cli, config_text(1, image_tag="2", extra="    lifecycle: {preventDestroy: true}"))
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 1
    assert "preventDestroy" in r.err and "job-0000" in r.err
    assert cli.emulator.request_log.mutating() == []


def test_rerun_on_recreates_a_failed_job(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "jobs").mkdir()
    cli = Cli(tmp_path, emulator)
    extra = "    labels: {emulator-outcome: failed}\n    lifecycle: {rerunOn: [JOB_STATE_FAILED]}"
    write(cli, config_text(1, extra=extra))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    first = state_of(cli)["jobs"]["job-0000"]["name"]
    wait_until(lambda: cli.emulator.get_job(first)["state"] == "JOB_STATE_FAILED")
    r = cli.run("plan", "jobs", "--detailed-exitcode")
    assert r.code == 2 and "rerun after JOB_STATE_FAILED" in r.out
    assert cli.run("apply", "jobs", "--auto-approve", "--wait-timeout", "30s").code == 0
    second = state_of(cli)["jobs"]["job-0000"]["name"]
    assert second != first
    assert [j["name"] for j in labelled_jobs(cli.emulator, PROJECT, LOCATION)] == [second]


def test_saved_plan_applies_once_and_a_stale_one_is_refused(cli: Cli) -> None:
    write(cli, config_text(2))
    assert cli.run("plan", "jobs", "-o", "plan.json").code == 0
    assert (cli.cwd / "plan.json").stat().st_mode & 0o777 == 0o600
    shown = cli.run("show", "plan.json", "--format", "markdown", backend=False)
    assert shown.code == 0 and "| `+` |" in shown.out
    r = cli.run("apply", "plan.json")
    assert r.code == 0, r.err
    again = cli.run("apply", "plan.json")
    assert again.code == 1 and "stale" in again.err

    write(cli, config_text(2, image_tag="2"))
    assert cli.run("plan", "jobs", "-o", "plan2.json").code == 0
    # Someone cancels a job the plan replaces: the plan no longer says what would happen.
    victim = state_of(cli)["jobs"]["job-0000"]["name"]
    cli.emulator.set_job_state(victim, "JOB_STATE_CANCELLED")
    r = cli.run("apply", "plan2.json")
    assert r.code == 1 and "stale" in r.err and victim in r.err


def test_apply_without_a_terminal_or_auto_approve_refuses(cli: Cli) -> None:
    write(cli, config_text(1))
    r = cli.run("apply", "jobs", stdin="yes\n")
    assert r.code == 1 and "--auto-approve" in r.err
    assert cli.emulator.request_log.mutating() == []


def test_invalid_config_sends_nothing(cli: Cli) -> None:
    write(cli, config_text(1).replace("replicaCount: 1", "replicaCount: two"))
    for command in ("plan", "apply"):
        r = cli.run(command, "jobs", "--auto-approve") if command == "apply" else cli.run(command, "jobs")
        assert r.code == 1
        assert "jobs/jobs.yaml:" in r.err and "replicaCount" in r.err and "Traceback" not in r.err
    assert len(cli.emulator.request_log.records) == 0


def test_interrupt_saves_state_releases_lock_and_exits_130(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emulator = emulator_factory(latency_ms=150)
    cli = Cli(tmp_path, emulator)
    (tmp_path / "jobs").mkdir()
    write(cli, config_text(40))
    proc = cli.start("apply", "jobs", "--auto-approve", "--parallelism", "2")
    wait_until(lambda: len(emulator.request_log.calls("create")) >= 4, timeout=30)
    proc.send_signal(signal.SIGINT)
    result = proc.finish(timeout=60)
    assert result.code == 130, result.err
    saved = state_of(cli)["jobs"]
    assert 0 < len(saved) < 40
    # The lock is free (a plan with no lock wait runs) and nothing was lost or duplicated.
    assert cli.run("plan", "jobs").code == 0
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    jobs = labelled_jobs(emulator, PROJECT, LOCATION)
    assert len(jobs) == 40 and duplicates(jobs) == {}


@pytest.mark.slow
def test_kill_9_at_ten_random_moments_never_duplicates_or_loses_a_job(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emulator = emulator_factory(latency_ms=10, run_seconds=3600)
    cli = Cli(tmp_path, emulator)
    (tmp_path / "jobs").mkdir()
    write(cli, config_text(200))
    rng = random.Random(20261126)
    for _ in range(10):
        proc = cli.start("apply", "jobs", "--auto-approve", "--parallelism", "8")
        time.sleep(rng.uniform(0.4, 2.5))
        proc.kill()
        proc.wait(timeout=30)
    r = cli.run("apply", "jobs", "--auto-approve", timeout=300)
    assert r.code == 0, r.err
    jobs = labelled_jobs(emulator, PROJECT, LOCATION)
    assert duplicates(jobs) == {}
    assert len(jobs) == 200
    recorded = {a: rec["name"] for a, rec in state_of(cli)["jobs"].items()}
    assert recorded == {j["labels"]["planner-address"]: j["name"] for j in jobs}
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0


@pytest.mark.slow
def test_apply_under_faults_converges_with_no_duplicates(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emulator = emulator_factory(fail_rates={503: 0.1, 429: 0.05}, lost_create_rate=0.02, run_seconds=3600)
    cli = Cli(tmp_path, emulator)
    (tmp_path / "jobs").mkdir()
    write(cli, config_text(300))
    for _attempt in range(3):
        r = cli.run("apply", "jobs", "--auto-approve", "--parallelism", "16", timeout=300)
        if r.code == 0 and cli.run("plan", "jobs", "--detailed-exitcode").code == 0:
            break
    else:
        raise AssertionError(f"did not converge: {r.err[-2000:]}")
    jobs = labelled_jobs(emulator, PROJECT, LOCATION)
    assert duplicates(jobs) == {}
    assert len(jobs) == 300
    assert emulator.request_log.fault_counts()["lost_create"] > 0


def test_a_delete_still_waiting_is_left_pending_and_finished_by_the_next_apply(
    tmp_path: Path, emulator_factory
) -> None:  # type: ignore[no-untyped-def]
    emulator = emulator_factory(run_seconds=3600, cancel_seconds=3)
    (tmp_path / "jobs").mkdir()
    cli = Cli(tmp_path, emulator)
    write(cli, config_text(1))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    old = state_of(cli)["jobs"]["job-0000"]["name"]
    write(cli, config_text(1, image_tag="2"))
    r = cli.run("apply", "jobs", "--auto-approve", "--wait-timeout", "1s")
    assert r.code == 0, r.err
    assert "pending" in r.out.lower()
    record = state_of(cli)["jobs"]["job-0000"]
    assert record["name"] != old and record["old_names"] == [old]
    assert record["pending"]["action"] == "delete" and record["pending"]["name"] == old
    plan = cli.run("plan", "jobs", "--detailed-exitcode")
    assert plan.code == 2 and "replaced job not yet deleted" in plan.out
    time.sleep(3)
    assert cli.run("apply", "jobs", "--auto-approve", "--wait-timeout", "30s").code == 0
    record = state_of(cli)["jobs"]["job-0000"]
    assert record["old_names"] == [] and record["pending"] is None
    assert [j["name"] for j in labelled_jobs(emulator, PROJECT, LOCATION)] == [record["name"]]
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0
