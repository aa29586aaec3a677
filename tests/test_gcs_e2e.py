"""Remote state on GCS for teams: concurrent `planner apply` processes, and a lock left by a kill.

The CLI runs in subprocesses with STORAGE_EMULATOR_HOST pointing at the precondition-enforcing
proxy in front of gcp-storage-emulator (see tests/gcs_precondition_proxy.py for why).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cli_harness import Cli, config_text, duplicates, labelled_jobs
from state_fixtures import BUCKET, gcs_emulator, gcs_proxy  # noqa: F401 - fixtures

PROJECT, LOCATION = "demo-project", "us-central1"


@pytest.fixture
def team(tmp_path: Path, emulator_factory, gcs_proxy):  # type: ignore[no-untyped-def]  # noqa: F811
    prefix = f"team-{uuid.uuid4().hex[:8]}"
    emulator = emulator_factory(run_seconds=3600, latency_ms=20)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "jobs.yaml").write_text(config_text(8))
    cli = Cli(tmp_path, emulator, state=f"gs://{BUCKET}/{prefix}", env={"STORAGE_EMULATOR_HOST": gcs_proxy.url})
    return cli, gcs_proxy.url, prefix


def remote_state(storage: str, prefix: str) -> dict:  # type: ignore[type-arg]
    name = quote(f"{prefix}/default.json", safe="")
    r = httpx.get(f"{storage}/storage/v1/b/{BUCKET}/o/{name}", params={"alt": "media"}, timeout=10)
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def test_eight_concurrent_applies_one_lock_holder_no_lost_write(team) -> None:  # type: ignore[no-untyped-def]
    cli, storage, prefix = team
    (cli.cwd / "jobs" / "jobs.yaml").write_text(config_text(9))
    # A first apply creates the state (its lineage and serial are the baseline).
    assert cli.run("apply", "jobs", "--auto-approve", "--target", "job-0008").code == 0
    base = remote_state(storage, prefix)["serial"]
    # Six wait for the lock; two refuse to wait and either get it at once or fail naming the holder.
    timeouts = ["2m"] * 6 + ["0s"] * 2
    procs = [
        cli.start("apply", "jobs", "--auto-approve", "--target", f"job-{i:04d}", "--lock-timeout", t)
        for i, t in enumerate(timeouts)
    ]
    results = [(r.code, r.out, r.err) for r in (p.finish(timeout=180) for p in procs)]
    assert all(code == 0 for code, _o, _e in results[:6]), [e for _c, _o, e in results[:6]]
    for code, _out, err in results[6:]:
        assert code == 0 or ("lock" in err.lower() and "pid" in err.lower()), err
    succeeded = sum(1 for code, _o, _e in results if code == 0)
    state = remote_state(storage, prefix)
    # Every successful apply wrote exactly once, and no write was lost.
    assert state["serial"] == base + succeeded
    jobs = labelled_jobs(cli.emulator, PROJECT, LOCATION)
    assert duplicates(jobs) == {}
    assert {j["name"] for j in jobs} == {r["name"] for r in state["jobs"].values()}
    assert len(state["jobs"]) == 1 + succeeded


def test_a_lock_held_names_its_holder_and_a_zero_timeout_fails_fast(team) -> None:  # type: ignore[no-untyped-def]
    cli, _storage, _prefix = team
    (cli.cwd / "jobs" / "jobs.yaml").write_text(config_text(150))
    holder = cli.start("apply", "jobs", "--auto-approve", "--parallelism", "1")
    try:
        deadline = time.monotonic() + 60
        # The holder sends creates only while it holds the lock.
        while not cli.emulator.request_log.calls("create"):
            assert time.monotonic() < deadline, "the holder never started creating"
            time.sleep(0.02)
        r = cli.run("plan", "jobs", "--lock-timeout", "0s")
        assert r.code == 1, r.out
        assert "apply" in r.err and str(holder.pid) in r.err
    finally:
        holder.wait(timeout=180)


def test_killed_apply_leaves_a_lock_that_force_unlock_removes(team) -> None:  # type: ignore[no-untyped-def]
    cli, _storage, _prefix = team
    holder = cli.start("apply", "jobs", "--auto-approve", "--parallelism", "1")
    deadline = time.monotonic() + 30
    while not cli.emulator.request_log.calls("create"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    holder.kill()
    holder.wait(timeout=30)
    r = cli.run("apply", "jobs", "--auto-approve", "--lock-timeout", "0s")
    assert r.code == 1 and "force-unlock" in r.err
    match = re.search(r"ID[: ]+(\d+)", r.err)
    assert match, r.err
    unlock = cli.run("force-unlock", match.group(1), "--state", str(cli.state), backend=False)
    assert unlock.code == 0, unlock.err
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    jobs = labelled_jobs(cli.emulator, PROJECT, LOCATION)
    assert len(jobs) == 8 and duplicates(jobs) == {}
    assert json.loads(json.dumps(jobs))  # every job listed once
