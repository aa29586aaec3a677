"""`planner drift` end to end: out-of-band changes made with Google's own client, each classified.

The CLI runs in a subprocess against the emulator; the emulator's request log proves drift
never calls a mutating method.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_harness import Cli, config_text
from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform_v1 import JobServiceClient

PARENT = "projects/demo-project/locations/us-central1"


@pytest.fixture
def applied(tmp_path: Path, emulator_factory):  # type: ignore[no-untyped-def]
    """Five jobs applied and running; returns the CLI and Google's REST client on the same emulator."""
    emulator = emulator_factory(run_seconds=3600)
    (tmp_path / "jobs").mkdir()
    cli = Cli(tmp_path, emulator)
    (tmp_path / "jobs" / "jobs.yaml").write_text(config_text(5))
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    google = JobServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": emulator.url}
    )
    return cli, google


def names(cli: Cli) -> dict[str, str]:
    return {a: r["name"] for a, r in json.loads(cli.state.read_text())["jobs"].items()}


def drift_json(cli: Cli, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = cli.run("drift", "jobs", "--format", "json", *extra)
    assert r.code in (0, 2), r.err
    return r.code, json.loads(r.out)


def kinds(doc: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {(i["address"] or i["job_name"]): i["kind"] for i in doc["items"]}


def test_in_sync_exits_0(applied) -> None:  # type: ignore[no-untyped-def]
    cli, _ = applied
    code, doc = drift_json(cli)
    assert code == 0 and not doc["has_drift"]
    assert set(kinds(doc).values()) == {"in_sync"}


def test_every_out_of_band_change_is_classified(applied) -> None:  # type: ignore[no-untyped-def]
    cli, google = applied
    jobs = names(cli)
    emulator = cli.emulator
    # deleted out of band through Google's own client (cancel first: a running job cannot be deleted)
    google.cancel_custom_job(name=jobs["job-0000"])
    emulator.set_job_state(jobs["job-0000"], "JOB_STATE_CANCELLED")
    google.delete_custom_job(name=jobs["job-0000"]).result(timeout=30)
    # cancelled out of band through Google's own client
    google.cancel_custom_job(name=jobs["job-0001"])
    emulator.set_job_state(jobs["job-0001"], "JOB_STATE_CANCELLED")
    # failed
    emulator.set_job_state(jobs["job-0002"], "JOB_STATE_FAILED")
    # a labelled job missing from state (e.g. someone else's interrupted apply)
    stray = google.create_custom_job(
        parent=PARENT,
        custom_job={
            "display_name": "stray",
            "labels": {"managed-by": "planner", "planner-workspace": "default", "planner-address": "stray"},
            "job_spec": {
                "worker_pool_specs": [
                    {
                        "machine_spec": {"machine_type": "n1-standard-4"},
                        "replica_count": 1,
                        "container_spec": {"image_uri": "img"},
                    }
                ]
            },
        },
    )
    # an unlabelled job
    other = google.create_custom_job(
        parent=PARENT,
        custom_job={
            "display_name": "hand-made",
            "job_spec": {
                "worker_pool_specs": [
                    {
                        "machine_spec": {"machine_type": "n1-standard-4"},
                        "replica_count": 1,
                        "container_spec": {"image_uri": "img"},
                    }
                ]
            },
        },
    )
    emulator.request_log.clear()

    code, doc = drift_json(cli)
    assert code == 2 and doc["has_drift"]
    found = kinds(doc)
    assert found["job-0000"] == "missing"
    assert found["job-0001"] == "terminal"
    assert found["job-0002"] == "terminal"
    assert found["job-0003"] == "in_sync" and found["job-0004"] == "in_sync"
    assert found["stray"] == "unmanaged"
    assert other.name not in json.dumps(doc)

    code, doc = drift_json(cli, "--include-unmanaged")
    assert code == 2
    unlabelled = [i for i in doc["items"] if i["job_name"] == other.name]
    assert [i["kind"] for i in unlabelled] == ["unmanaged"]
    assert doc["coverage"]["seen"] > doc["coverage"]["managed"]

    # Read only: nothing but GETs, and the state file is untouched.
    assert emulator.request_log.mutating() == []
    assert {r.method for r in emulator.request_log.records} == {"GET"}
    assert stray.name not in names(cli).values()


def test_config_not_yet_applied_is_not_drift(applied) -> None:  # type: ignore[no-untyped-def]
    cli, _ = applied
    before = cli.state.read_bytes()
    (cli.cwd / "jobs" / "jobs.yaml").write_text(config_text(6, image_tag="2"))
    code, doc = drift_json(cli)
    assert code == 0 and not doc["has_drift"]
    pending = {p["address"]: p for p in doc["config_pending"]}
    assert set(pending) == {f"job-{i:04d}" for i in range(6)}
    assert "new in config" in pending["job-0005"]["detail"]
    text = cli.run("drift", "jobs")
    assert text.code == 0 and "not drift" in text.out.lower()
    assert cli.state.read_bytes() == before


def test_markdown_report_parses_into_table_and_details(applied) -> None:  # type: ignore[no-untyped-def]
    cli, _ = applied
    jobs = names(cli)
    cli.emulator.set_job_state(jobs["job-0002"], "JOB_STATE_FAILED")
    r = cli.run("drift", "jobs", "--format", "markdown", "-o", "drift.md")
    assert r.code == 2
    md = (cli.cwd / "drift.md").read_text()
    assert md.strip() == r.out.strip()
    rows = [line for line in md.splitlines() if line.startswith("|") and not set(line) <= set("|- ")]
    assert any("job-0002" in row and "terminal" in row for row in rows)
    details = re.findall(r"<details><summary>(.*?)</summary>(.*?)</details>", md, flags=re.S)
    assert any("job-0002" in summary for summary, _ in details)
    assert md.index("|") < md.index("<details>")  # the table comes first


def test_ignore_pattern_hides_an_address(applied) -> None:  # type: ignore[no-untyped-def]
    cli, _ = applied
    cli.emulator.set_job_state(names(cli)["job-0002"], "JOB_STATE_FAILED")
    code, doc = drift_json(cli, "--ignore", "job-0002")
    assert code == 0 and "job-0002" not in kinds(doc)
