"""`apply --wait`, `status` and `logs` end to end: the real CLI in a subprocess against the emulator over HTTP."""

from __future__ import annotations

import json
import math
import re
import signal
import time
from collections import Counter
from pathlib import Path

import jsonschema
from cli_harness import Cli, config_text

from planner.apimodel import ACTIVE_STATES
from planner.state import LocalStore
from planner.state.model import JobRecord, State

PROJECT, LOCATION = "demo-project", "us-central1"
SCHEMAS = Path(__file__).parent.parent / "schemas"
# `[    2s] job-0001 1234…: QUEUED → RUNNING`
TRANSITION = re.compile(r"^\[\s*\S+\] (job-\d{4}) (\d+): (\S+) → (\S+)$", re.M)


def write(cli: Cli, text: str) -> Path:
    path = cli.cwd / "jobs" / "jobs.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def five_jobs_one_failing() -> str:
    return config_text(5).replace(
        "    displayName: job-0002\n", "    displayName: job-0002\n    labels: {emulator-outcome: failed}\n"
    )


def wait_for_text(path: Path, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        assert time.monotonic() < deadline, f"{text!r} did not appear; got:\n{content}"
        time.sleep(0.05)


def state_names(cli: Cli) -> dict[str, str]:
    return {a: r["name"] for a, r in json.loads(cli.state.read_text())["jobs"].items()}


def test_apply_wait_exits_4_when_a_job_fails_and_prints_each_transition_once(
    tmp_path: Path, emulator_factory
) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator_factory(queue_seconds=0.3, pending_seconds=0.3, run_seconds=1.5))
    write(cli, five_jobs_one_failing())
    r = cli.run("apply", "jobs", "--auto-approve", "--wait", "--timeout", "2m")
    assert r.code == 4, r.out + r.err
    names = state_names(cli)
    transitions = TRANSITION.findall(r.err)
    # Each change of state is printed once: no (job, before, after) twice, no "X → X".
    assert len(transitions) == len(set(transitions)), r.err
    assert all(before != after for _a, _id, before, after in transitions)
    final = {a: after for a, _id, _b, after in transitions}
    assert final == {f"job-{i:04d}": ("FAILED" if i == 2 else "SUCCEEDED") for i in range(5)}
    assert all(names[a].endswith("/" + job_id) for a, job_id, _b, _a2 in transitions)
    # The chain of each job is continuous: every line starts where the previous one ended.
    for address in names:
        chain = [(b, a) for addr, _id, b, a in transitions if addr == address]
        assert chain[0][0] == "-" and all(chain[i][1] == chain[i + 1][0] for i in range(len(chain) - 1)), chain
    assert "Wait complete: 4 succeeded, 1 failed, 0 still running." in r.out
    assert "job-0002: FAILED" in r.out and "non-zero status" in r.out
    assert f"training/{names['job-0002'].rsplit('/', 1)[-1]}?project={PROJECT}" in r.out
    # Polling is by the labelled listing only: no GET per job.
    assert [rec for rec in cli.emulator.request_log.records if rec.rpc == "get"] == []
    lines = [line for line in r.err.splitlines() if not line.startswith("    ")]
    assert max(len(line) for line in lines) <= 80


def test_apply_wait_all_succeeded_exits_0(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator)
    write(cli, config_text(2))
    r = cli.run("apply", "jobs", "--auto-approve", "--wait")
    assert r.code == 0, r.out + r.err
    assert "Wait complete: 2 succeeded, 0 failed, 0 still running." in r.out
    again = cli.run("apply", "jobs", "--auto-approve", "--wait")  # nothing created: nothing to wait for
    assert again.code == 0 and "nothing to wait for" not in again.out  # a no-change apply stops at the plan


def test_apply_wait_timeout_exits_5_and_leaves_jobs_running(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator_factory(run_seconds=3600))
    write(cli, config_text(3))
    r = cli.run("apply", "jobs", "--auto-approve", "--wait", "--timeout", "2s")
    assert r.code == 5, r.out + r.err
    assert "Timed out after 2s" in r.err and "Still running:" in r.out
    for name in state_names(cli).values():
        assert cli.emulator.get_job(name)["state"] in ACTIVE_STATES
    assert [rec for rec in cli.emulator.request_log.records if rec.rpc == "cancel"] == []


def test_apply_wait_ctrl_c_stops_waiting_with_130_and_the_jobs_keep_running(
    tmp_path: Path, emulator_factory
) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator_factory(run_seconds=3600))
    write(cli, config_text(2))
    started = cli.start("apply", "jobs", "--auto-approve", "--wait")
    wait_for_text(started._err, "] job-0001 ")
    started.send_signal(signal.SIGINT)
    r = started.finish(timeout=60)
    assert r.code == 130, r.out + r.err
    assert "the jobs keep running" in r.err
    for name in state_names(cli).values():
        assert cli.emulator.get_job(name)["state"] in ACTIVE_STATES
    assert [rec for rec in cli.emulator.request_log.records if rec.rpc == "cancel"] == []


def test_timeout_without_wait_is_a_usage_error(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator)
    write(cli, config_text(1))
    r = cli.run("apply", "jobs", "--auto-approve", "--timeout", "2s")
    assert r.code == 1 and "--timeout goes with --wait" in r.err
    assert cli.emulator.request_log.mutating() == []


# -- status ---------------------------------------------------------------------------------------


def test_status_json_validates_and_shows_states_errors_links(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator)
    write(cli, five_jobs_one_failing())
    assert cli.run("apply", "jobs", "--auto-approve", "--wait").code == 4
    names = state_names(cli)
    cli.emulator.request_log.clear()
    r = cli.run("status", "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    jsonschema.Draft202012Validator(json.loads((SCHEMAS / "status.schema.json").read_text())).validate(doc)
    rows = {j["address"]: j for j in doc["jobs"]}
    assert {a: j["state"] for a, j in rows.items()} == {
        a: "JOB_STATE_FAILED" if a == "job-0002" else "JOB_STATE_SUCCEEDED" for a in names
    }
    assert doc["summary"] == {"JOB_STATE_FAILED": 1, "JOB_STATE_SUCCEEDED": 4}
    failed = rows["job-0002"]
    job_id = names["job-0002"].rsplit("/", 1)[-1]
    assert failed["console_url"] == (
        f"https://console.cloud.google.com/vertex-ai/locations/{LOCATION}/training/{job_id}?project={PROJECT}"
    )
    assert "non-zero status" in failed["error"] and rows["job-0000"]["error"] is None
    assert all(j["machine"] == "n1-standard-4" and j["run_seconds"] >= 0 for j in doc["jobs"])
    # Read only: one listing, nothing written, no lock file left behind.
    assert Counter(rec.rpc for rec in cli.emulator.request_log.records) == {"list": 1}

    text = cli.run("status")
    assert text.code == 0
    assert f"{PROJECT} / {LOCATION} (5 jobs)" in text.out and "5 jobs: 1 failed, 4 succeeded." in text.out
    assert re.search(r"job-0002\s+FAILED", text.out) and "error: The replica" in text.out

    only = json.loads(cli.run("status", "--format", "json", "--job-state", "failed").out)
    assert [j["address"] for j in only["jobs"]] == ["job-0002"]
    globbed = json.loads(cli.run("status", "--format", "json", "--address", "job-000[01]").out)
    assert [j["address"] for j in globbed["jobs"]] == ["job-0000", "job-0001"]
    md = cli.run("status", "--format", "markdown")
    assert md.code == 0 and f"[{job_id}](https://console.cloud.google.com/" in md.out
    bad = cli.run("status", "--job-state", "sleeping")
    assert bad.code == 1 and "not a job state" in bad.err and "Traceback" not in bad.err


def test_status_shows_cost_so_far_at_the_price_books_rate(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator)
    write(cli, config_text(2))
    assert cli.run("apply", "jobs", "--auto-approve", "--wait").code == 0
    prices = Path(__file__).parent / "testdata" / "cost" / "prices.json"
    doc = json.loads(cli.run("status", "--format", "json", "--price-file", str(prices)).out)
    for job in doc["jobs"]:
        # n1-standard-4 × 1 in us-central1 at $0.20/h, plus the default 100 GB pd-ssd boot disk at
        # $0.0002/GB-h = $0.02/h: $0.22/h, for as long as the job ran.
        assert job["hourly_usd"] == 0.22
        assert math.isclose(job["cost_usd"], 0.22 * job["run_seconds"] / 3600, rel_tol=1e-3, abs_tol=1e-6)
    text = cli.run("status", "--price-file", str(prices)).out
    assert "COST" in text and "($0.22/h)" in text
    bundled = json.loads(cli.run("status", "--format", "json").out)["jobs"][0]
    assert bundled["hourly_usd"] is None or bundled["hourly_usd"] > 0
    elsewhere = cli.cwd / "eu.json"
    eu = json.loads(prices.read_text())
    eu["entries"] = [e for e in eu["entries"] if e["region"] != "us-central1"]
    elsewhere.write_text(json.dumps(eu))
    unpriced = json.loads(cli.run("status", "--format", "json", "--price-file", str(elsewhere)).out)["jobs"][0]
    assert unpriced["hourly_usd"] is None and "no price for n1-standard-4 in us-central1" in unpriced["no_price"]


def test_status_with_paths_shows_jobs_not_yet_created(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator)
    write(cli, config_text(1))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    write(cli, config_text(2))
    doc = json.loads(cli.run("status", "jobs", "--format", "json").out)
    assert {j["address"]: j["state"] for j in doc["jobs"]}["job-0001"] == "NOT_CREATED"


def test_status_watch_without_a_terminal_prints_plain_transition_lines(
    tmp_path: Path, emulator_factory
) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator_factory(queue_seconds=0.3, pending_seconds=0.3, run_seconds=1.0))
    write(cli, config_text(2))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    r = cli.run("status", "--watch", "--interval", "0.3s", timeout=60)
    assert r.code == 0, r.err
    assert "\x1b" not in r.out
    assert re.search(r"^\d\d:\d\d:\d\d job-0000: \S+ → SUCCEEDED$", r.out, re.M), r.out
    assert r.out.rstrip().endswith("Every job has ended.")


def test_status_watch_stops_on_ctrl_c_with_130(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator_factory(run_seconds=3600))
    write(cli, config_text(1))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    started = cli.start("status", "--watch", "--interval", "0.2s")
    wait_for_text(started._out, "1 job: 1 ")
    started.send_signal(signal.SIGINT)
    r = started.finish(timeout=30)
    assert r.code == 130 and "Traceback" not in r.err, r.err
    assert [rec.rpc for rec in cli.emulator.request_log.records if rec.mutating][-1] == "create"  # nothing else sent


def test_status_of_10000_jobs_lists_each_location_once_per_page(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emulator = emulator_factory(run_seconds=3600)
    count, page = 10_000, emulator.config.max_page_size
    records = {}
    body = {
        "displayName": "train",
        "jobSpec": {"workerPoolSpecs": [{"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "1",
                                         "containerSpec": {"imageUri": "us-docker.pkg.dev/p/r/t:1"}}]},
    }
    for i in range(count):
        address = f"job-{i:05d}"
        labels = {"managed-by": "planner", "planner-workspace": "default", "planner-address": address}
        job = emulator.seed_job(PROJECT, LOCATION, body, labels=labels)
        records[address] = JobRecord(address, job["name"], PROJECT, LOCATION, "", {}, "JOB_STATE_QUEUED")
    state_path = tmp_path / "state" / "default.json"
    LocalStore(state_path).write(State(lineage="lineage-1", serial=0, jobs=records))
    cli = Cli(tmp_path, emulator, state=state_path)
    r = cli.run("status", "--format", "json")
    assert r.code == 0, r.err
    assert len(json.loads(r.out)["jobs"]) == count
    calls = Counter(rec.rpc for rec in emulator.request_log.records)
    assert calls == {"list": math.ceil(count / page)}


# -- logs -----------------------------------------------------------------------------------------


def test_logs_prints_a_jobs_lines_by_replica_and_since(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator)
    # Vertex AI takes exactly one replica in the first pool: the second pool has two.
    second_pool = (
        "        - machineSpec: {machineType: n1-standard-4}\n"
        "          replicaCount: 2\n"
        "          containerSpec: {imageUri: 'us-docker.pkg.dev/demo/train/model:1'}\n"
    )
    write(cli, config_text(1) + second_pool)
    assert cli.run("apply", "jobs", "--auto-approve", "--wait").code == 0
    r = cli.run("logs", "job-0000")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert "Waiting for job to be provisioned." in lines[0] and "Job completed successfully." in lines[-1]
    assert sum("Started replica workerpool0-" in line for line in lines) == 1
    assert sum("Started replica workerpool1-" in line for line in lines) == 2
    stamps = [line.split()[0] for line in lines]
    assert stamps == sorted(stamps)
    one = cli.run("logs", "job-0000", "--replica", "workerpool1-1").out.splitlines()
    assert one and all(" workerpool1-1 " in line for line in one)
    assert cli.run("logs", "job-0000", "--since", "2999-01-01T00:00:00Z").out == ""
    rpcs = [rec for rec in cli.emulator.request_log.records if rec.rpc == "logging.entries.list"]
    assert len(rpcs) == 3 and all(rec.method == "POST" for rec in rpcs)
    missing = cli.run("logs", "no-such-job")
    assert missing.code == 1 and "not in state" in missing.err


def test_logs_follow_prints_new_lines_as_they_are_written_and_stops_on_ctrl_c(
    tmp_path: Path, emulator_factory
) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator_factory(queue_seconds=1.5, pending_seconds=0.5, run_seconds=60))
    write(cli, config_text(1))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    started = cli.start("logs", "job-0000", "--follow", "--interval", "0.2s")
    first = wait_for_text(started._out, "Waiting for job to be provisioned.")
    assert "Started replica" not in first  # written once the job runs, 2 s after create
    later = wait_for_text(started._out, "Started replica workerpool0-0")
    assert later.index("Waiting for job") < later.index("Job is preparing.") < later.index("Started replica")
    started.send_signal(signal.SIGINT)
    r = started.finish(timeout=30)
    assert r.code == 130, r.err
    assert r.out.count("Started replica workerpool0-0") == 1 and "Traceback" not in r.err


def test_logs_follow_gives_each_line_once_and_ends_with_the_job(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path, emulator_factory(queue_seconds=0.2, pending_seconds=0.2, run_seconds=2.0))
    write(cli, config_text(1))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    started = cli.start("logs", "job-0000", "--follow", "--interval", "0.2s")
    early = wait_for_text(started._out, "Job is running.")
    assert "Job completed successfully." not in early
    r = started.finish(timeout=60)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert len(lines) == len(set(lines)) and lines[-1].endswith("Job completed successfully.")
    assert sum("step " in line for line in lines) == 3
