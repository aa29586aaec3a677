"""The watching parts in-process: wait_for_jobs and logs.follow on an emulator with a hand-driven clock,
the emulator's Cloud Logging endpoint over HTTP, the progress views and the status helpers."""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from planner.api import build_client
from planner.api.client import VertexClient
from planner.api.cloudlogging import list_log_entries
from planner.apply import StepEvent
from planner.emulator import Emulator, ManualClock
from planner.logs import follow, job_filter, read_lines
from planner.plans.model import Step, StepKind
from planner.render.jobstate import duration_text
from planner.render.progress import WIDTH, ApplyProgress, WaitView, eta_text
from planner.status import machine_summary, parse_state_filter
from planner.watch import Backoff, Transition, WaitResult, WatchedJob, wait_for_jobs

P, L, W = "proj", "us-central1", "default"
BODY = {
    "displayName": "train",
    "jobSpec": {
        "workerPoolSpecs": [
            {
                "machineSpec": {"machineType": "n1-standard-4"},
                "replicaCount": "2",
                "containerSpec": {"imageUri": "us-docker.pkg.dev/p/r/t:1"},
            }
        ]
    },
}


def labels(address: str, **extra: str) -> dict[str, str]:
    return {"managed-by": "planner", "planner-workspace": W, "planner-address": address, **extra}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def slow(emulator_factory: Any, clock: ManualClock) -> Emulator:
    emulator: Emulator = emulator_factory(
        clock=clock, queue_seconds=10, pending_seconds=10, run_seconds=100, cancel_seconds=5
    )
    return emulator


@pytest.fixture
def client(slow: Emulator) -> Iterator[VertexClient]:
    with build_client(endpoint=slow.url) as c:
        yield c


def test_wait_reports_each_transition_once_backs_off_and_lists_only(
    slow: Emulator, client: VertexClient, clock: ManualClock
) -> None:
    ok = slow.seed_job(P, L, BODY, labels=labels("a"))
    bad = slow.seed_job(P, L, BODY, labels=labels("b", **{"emulator-outcome": "failed"}))
    seen: list[Transition] = []
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        clock.advance(seconds)

    jobs = [WatchedJob(ok["name"], "a"), WatchedJob(bad["name"], "b")]
    result = wait_for_jobs(client, jobs, W, timeout=None, on_transition=seen.append, sleep=sleep, clock=clock)
    assert result.states == {ok["name"]: "JOB_STATE_SUCCEEDED", bad["name"]: "JOB_STATE_FAILED"}
    assert result.failed == [bad["name"]] and result.succeeded == [ok["name"]] and not result.timed_out
    assert "non-zero status" in result.errors[bad["name"]]
    chains = {a: [(t.before, t.after) for t in seen if t.job.address == a] for a in "ab"}
    assert chains["a"] == [
        (None, "JOB_STATE_QUEUED"),
        ("JOB_STATE_QUEUED", "JOB_STATE_PENDING"),
        ("JOB_STATE_PENDING", "JOB_STATE_RUNNING"),
        ("JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"),
    ]
    assert chains["b"][-1] == ("JOB_STATE_RUNNING", "JOB_STATE_FAILED")
    assert delays[:4] == [2.0, 3.0, 4.5, 6.75] and max(delays) <= 60.0
    assert Counter(r.rpc for r in slow.request_log.records) == {"list": result.polls}


def test_wait_times_out_and_a_deleted_job_counts_as_failed(
    slow: Emulator, client: VertexClient, clock: ManualClock
) -> None:
    running = slow.seed_job(P, L, BODY, labels=labels("a"))
    gone = slow.seed_job(P, L, BODY, labels=labels("b"))
    slow.delete_job_directly(gone["name"])
    result = wait_for_jobs(
        client,
        [WatchedJob(running["name"], "a"), WatchedJob(gone["name"], "b")],
        W,
        timeout=30,
        sleep=clock.advance,
        clock=clock,
    )
    assert result.timed_out and result.unfinished == [running["name"]]
    assert result.states[gone["name"]] == "MISSING" and result.failed == [gone["name"]]
    assert result.elapsed == pytest.approx(30)


def test_backoff_reaches_its_maximum() -> None:
    delays = Backoff(initial=1, factor=2, maximum=5).delays()
    assert [next(iter(delays)) for _ in range(5)] == [1, 2, 4, 5, 5]


# -- logs ------------------------------------------------------------------------------------------


def test_follow_gives_each_line_once_and_returns_when_the_job_ends(
    slow: Emulator, client: VertexClient, clock: ManualClock
) -> None:
    job = slow.seed_job(P, L, BODY)
    job_id = job["name"].rsplit("/", 1)[-1]
    got: list[str] = []

    def read(project: str, filter: str) -> Iterator[dict[str, Any]]:
        return list_log_entries(client, project, filter)

    def state() -> str:
        return str(client.get_job(job["name"])["state"])

    count = follow(read, P, job_id, on_line=lambda line: got.append(f"{line.task} {line.text}"), interval=7,
                   job_state=state, sleep=clock.advance)
    assert count == len(got) == len(set(got))
    assert got[0] == "service Waiting for job to be provisioned." and got[-1] == "service Job completed successfully."
    assert sum(text.startswith("workerpool0-1 ") for text in got) == 5  # start, 3 steps, exit
    again = [f"{line.task} {line.text}" for line in read_lines(read, P, job_id)]
    assert again == got


def http(emulator: Emulator, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{emulator.url}/v2/entries:list", json=body, timeout=10)


def test_entries_list_paginates_orders_and_filters(slow: Emulator, clock: ManualClock) -> None:
    job = slow.seed_job(P, L, BODY)
    other = slow.seed_job(P, L, BODY)
    clock.advance(1000)
    job_id = job["name"].rsplit("/", 1)[-1]
    query = {"resourceNames": [f"projects/{P}"], "filter": job_filter(job_id), "pageSize": 4}
    pages, token = [], None
    while True:
        answer = http(slow, {**query, **({"pageToken": token} if token else {})}).json()
        pages.append(answer.get("entries", []))
        token = answer.get("nextPageToken")
        if not token:
            break
    entries = [e for page in pages for e in page]
    assert len(pages) > 2 and all(len(p) <= 4 for p in pages)
    assert {e["resource"]["labels"]["job_id"] for e in entries} == {job_id}
    assert len({e["insertId"] for e in entries}) == len(entries) == 3 + 2 * 5 + 1
    assert [e["timestamp"] for e in entries] == sorted(e["timestamp"] for e in entries)
    desc = http(slow, {**query, "pageSize": 1000, "orderBy": "timestamp desc"}).json()["entries"]
    assert [e["insertId"] for e in desc] == [e["insertId"] for e in reversed(entries)]
    errors = http(slow, {**query, "pageSize": 1000, "filter": job_filter(job_id) + ' severity>="ERROR"'}).json()
    assert errors == {}  # a job that succeeded logged no error
    both = http(slow, {"resourceNames": [f"projects/{P}"], "filter": 'resource.type="ml_job"', "pageSize": 1000})
    assert {e["resource"]["labels"]["job_id"] for e in both.json()["entries"]} == {
        job_id, other["name"].rsplit("/", 1)[-1]
    }


@pytest.mark.parametrize(
    "body",
    [
        {"resourceNames": [f"projects/{P}"], "filter": 'resource.type="ml_job" OR severity=ERROR'},
        {"resourceNames": [f"projects/{P}"], "filter": 'textPayload:"x"'},
        {"resourceNames": [f"projects/{P}"], "filter": 'timestamp>="yesterday"'},
        {"resourceNames": [f"projects/{P}"], "pageToken": "forged"},
        {"resourceNames": [f"projects/{P}"], "bogus": 1},
        {"resourceNames": ["folders/1"]},
        {"resourceNames": [f"projects/{P}"], "pageSize": 1001},
        {"resourceNames": [f"projects/{P}"], "orderBy": "severity"},
        {},
    ],
)
def test_entries_list_rejects_what_it_cannot_serve(slow: Emulator, body: dict[str, Any]) -> None:
    answer = http(slow, body)
    assert answer.status_code == 400
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_the_logging_client_follows_pages_through_the_same_client(
    slow: Emulator, client: VertexClient, clock: ManualClock
) -> None:
    job = slow.seed_job(P, L, BODY)
    clock.advance(1000)
    entries = list(list_log_entries(client, P, job_filter(job["name"].rsplit("/", 1)[-1]), page_size=5))
    assert len(entries) == 14
    assert client.stats.by_method["logging.entries.list"] == 3


def test_the_failed_job_logs_its_error_and_cancelled_jobs_stop_writing(slow: Emulator, clock: ManualClock) -> None:
    failed = slow.seed_job(P, L, BODY, labels={"emulator-outcome": "failed"})
    cancelled = slow.seed_job(P, L, BODY)
    clock.advance(25)
    httpx.post(f"{slow.url}/v1/{cancelled['name']}:cancel", json={}, timeout=10).raise_for_status()
    clock.advance(1000)

    def texts(job: dict[str, Any], extra: str = "") -> list[str]:
        query = {"resourceNames": [f"projects/{P}"], "filter": job_filter(job["name"].rsplit("/", 1)[-1]) + extra,
                 "pageSize": 1000}
        return [e["textPayload"] for e in http(slow, query).json().get("entries", [])]

    assert texts(failed, " severity>=ERROR") == [
        "Replica workerpool0-0 exited with a non-zero status of 1.", "Job failed."
    ]
    stopped = texts(cancelled)
    assert stopped[-2:] == ["Job is being cancelled.", "Job was cancelled."]
    assert not any("exited" in t for t in stopped)


# -- views and helpers -----------------------------------------------------------------------------

NAME = "projects/p/locations/us-central1/customJobs/1234567890123456789"


def test_apply_progress_without_a_terminal_is_plain_short_lines() -> None:
    out = io.StringIO()
    view = ApplyProgress(out, total=2, tty=False, color=False)
    long = "a-very-long-address-" + "x" * 40
    view.event(StepEvent(long, Step(StepKind.CREATE), "start"))
    view.event(StepEvent(long, Step(StepKind.CREATE), "done", 1.25, job=NAME))
    view.event(StepEvent("b", Step(StepKind.DELETE, NAME), "failed", 0.5, message="boom: " + "y" * 100))
    view.tick()
    view.close()
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert lines[1].startswith("✓ a-very-long-address-") and len(lines[1]) <= WIDTH
    assert "projects/" not in text and "✗ b: delete 1234567890123456789 failed [0.5s]" in text
    assert lines[-1] == "    boom: " + "y" * 100  # the reason is never cut


def test_apply_progress_on_a_terminal_keeps_a_live_line(clock: ManualClock) -> None:
    out = io.StringIO()
    view = ApplyProgress(out, total=4, tty=True, color=True, clock=clock)
    view.event(StepEvent("a", Step(StepKind.CREATE), "start"))
    clock.advance(10)
    view.event(StepEvent("a", Step(StepKind.CREATE), "done", 10, job=NAME))
    view.event(StepEvent("b", Step(StepKind.CREATE), "start"))
    assert view.status_text() == "  0/4 steps, 10s"  # workers only hand events over ...
    view.tick()  # ... the main loop's tick shows them
    status = view.status_text()
    assert status == "  1/4 steps, 1 running, 10s, ETA 30s"
    view.close()
    text = out.getvalue()
    assert "\x1b[32m✓ a: create done 1234567890123456789 [10.0s]\x1b[0m" in text
    assert text.endswith("\r\x1b[K")  # the live line is cleared at the end


def test_wait_view_lines_fit_and_colour_the_state() -> None:
    out = io.StringIO()
    view = WaitView(out, total=1, tty=False, color=True)
    job = WatchedJob(NAME, "resnet-train")
    view.transition(Transition(job, "JOB_STATE_RUNNING", "JOB_STATE_FAILED", "exit 1", 75))
    view.poll(WaitResult({NAME: "JOB_STATE_FAILED"}, {NAME: "exit 1"}, False, 3, 75))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[ 1m15s] resnet-train 1234567890123456789: RUNNING → \x1b[31mFAILED\x1b[0m"
    assert re.sub(r"\x1b\[[0-9;]*m", "", lines[1]) == "    error: exit 1"
    assert len(lines) == 2  # no live line without a terminal


def test_helpers() -> None:
    assert [duration_text(s) for s in (None, 5, 65, 3725, 90000)] == ["-", "5s", "1m05s", "1h02m", "1d01h"]
    assert eta_text(0, 4, 10) == "" and eta_text(1, 4, 10) == "ETA 30s" and eta_text(4, 4, 10) == ""
    assert parse_state_filter("running") == parse_state_filter("JOB_STATE_RUNNING") == "JOB_STATE_RUNNING"
    assert parse_state_filter("missing") == "MISSING"
    spec = {"jobSpec": {"workerPoolSpecs": [
        {"machineSpec": {"machineType": "a2-highgpu-1g", "acceleratorType": 8, "acceleratorCount": 1}},
        {"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "3"},
        {},
    ]}}
    assert machine_summary(spec) == "a2-highgpu-1g + 1×NVIDIA_TESLA_A100, 3×(n1-standard-4)"
