"""Job lifecycle on an injected clock, and the test helpers for out-of-band changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from planner.emulator import Emulator, ManualClock

PARENT = "projects/p/locations/us-central1"
JOBS = f"/v1/{PARENT}/customJobs"


def body(**labels: str) -> dict[str, Any]:
    return {
        "displayName": "lifecycle",
        "labels": labels,
        "jobSpec": {"workerPoolSpecs": [{"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "1",
                                         "containerSpec": {"imageUri": "gcr.io/p/i"}}]},
    }


@pytest.fixture
def setup(emulator_factory: Callable[..., Emulator]) -> Iterator[tuple[Emulator, ManualClock, httpx.Client]]:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock, queue_seconds=10, pending_seconds=5, run_seconds=100, cancel_seconds=4)
    with httpx.Client(base_url=emulator.url, verify=False) as http:
        yield emulator, clock, http


def test_states_follow_the_clock(setup: tuple[Emulator, ManualClock, httpx.Client]) -> None:
    _, clock, http = setup
    job = http.post(JOBS, json=body()).json()
    url = f"/v1/{job['name']}"
    assert job["state"] == "JOB_STATE_QUEUED"
    assert job["createTime"] == job["updateTime"] == "2026-01-01T00:00:00Z"
    clock.advance(10)
    assert http.get(url).json()["state"] == "JOB_STATE_PENDING"
    clock.advance(5)
    running = http.get(url).json()
    assert running["state"] == "JOB_STATE_RUNNING"
    assert running["startTime"] == running["updateTime"] == "2026-01-01T00:00:15Z"
    assert "endTime" not in running
    clock.advance(100)
    done = http.get(url).json()
    assert done["state"] == "JOB_STATE_SUCCEEDED"
    assert done["endTime"] == "2026-01-01T00:01:55Z"
    assert "error" not in done


def test_failed_outcome_label(setup: tuple[Emulator, ManualClock, httpx.Client]) -> None:
    _, clock, http = setup
    job = http.post(JOBS, json=body(**{"emulator-outcome": "failed"})).json()
    clock.advance(1000)
    failed = http.get(f"/v1/{job['name']}").json()
    assert failed["state"] == "JOB_STATE_FAILED"
    assert failed["error"]["code"] != 0 and failed["error"]["message"]


def test_cancel_and_delete_rules(setup: tuple[Emulator, ManualClock, httpx.Client]) -> None:
    _, clock, http = setup
    job = http.post(JOBS, json=body()).json()
    url = f"/v1/{job['name']}"
    refused = http.delete(url)
    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert "JOB_STATE_QUEUED" in refused.json()["error"]["message"]
    assert http.post(f"{url}:cancel", json={}).json() == {}
    cancelling = http.get(url).json()
    assert cancelling["state"] == "JOB_STATE_CANCELLING"
    assert http.post(f"{url}:cancel").status_code == 200  # cancelling again is harmless
    clock.advance(4)
    cancelled = http.get(url).json()
    assert cancelled["state"] == "JOB_STATE_CANCELLED"
    assert cancelled["error"]["code"] == 1
    assert "startTime" not in cancelled  # never ran
    again = http.post(f"{url}:cancel", json={})
    assert again.status_code == 400
    error = again.json()["error"]
    assert error["status"] == "FAILED_PRECONDITION"
    assert error["message"] == f'The CustomJob "{job["name"]}" is in state JOB_STATE_CANCELLED and cannot be canceled.'
    operation = http.delete(url).json()
    assert operation["done"] is True
    assert http.get(url).status_code == 404
    assert http.get(f"/ui/{operation['name']}").json()["done"] is True


def test_cancel_body_must_be_empty_object(setup: tuple[Emulator, ManualClock, httpx.Client]) -> None:
    _, _, http = setup
    job = http.post(JOBS, json=body()).json()
    assert http.post(f"/v1/{job['name']}:cancel", json={"force": True}).status_code == 400
    assert http.post(f"/v1/{job['name']}:cancel", content=b"[").status_code == 400


def test_delete_active_allowed_by_switch(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(delete_active="allow", run_seconds=1000)
    job = emulator.seed_job("p", "us-central1", body())
    response = httpx.delete(f"{emulator.url}/v1/{job['name']}", verify=False)
    assert response.status_code == 200


def test_helpers_for_out_of_band_changes(setup: tuple[Emulator, ManualClock, httpx.Client]) -> None:
    emulator, clock, http = setup
    job = emulator.seed_job("p", "us-central1", body(), state="JOB_STATE_RUNNING",
                            create_time="2025-12-31T23:00:00Z", labels={"managed-by": "planner"})
    assert job["state"] == "JOB_STATE_RUNNING"
    assert job["createTime"] == "2025-12-31T23:00:00Z"
    assert job["labels"] == {"managed-by": "planner"}
    clock.advance(10_000)
    assert http.get(f"/v1/{job['name']}").json()["state"] == "JOB_STATE_RUNNING"  # forced states stay
    failed = emulator.set_job_state(job["name"], "JOB_STATE_FAILED")
    assert failed["state"] == "JOB_STATE_FAILED" and failed["error"]["code"]
    listed = http.get(JOBS, params={"filter": "state=JOB_STATE_FAILED"}).json()["customJobs"]
    assert [j["name"] for j in listed] == [job["name"]]
    assert emulator.delete_job_directly(job["name"]) is True
    assert emulator.delete_job_directly(job["name"]) is False
    assert http.get(f"/v1/{job['name']}").status_code == 404
    assert emulator.request_log.mutating() == []  # helpers never show up as API calls
    with pytest.raises(ValueError):
        emulator.seed_job("p", "us-central1", {"displayName": "x"})


def test_ids_are_unique_numeric_and_never_reused(setup: tuple[Emulator, ManualClock, httpx.Client]) -> None:
    emulator, _, http = setup
    names = []
    for _ in range(20):
        job = http.post(JOBS, json=body()).json()
        names.append(job["name"])
        emulator.set_job_state(job["name"], "JOB_STATE_SUCCEEDED")
        http.delete(f"/v1/{job['name']}")
    ids = [int(n.rsplit("/", 1)[1]) for n in names]
    assert len(set(ids)) == 20
    assert all(len(str(i)) >= 18 for i in ids)
    assert ids == sorted(ids)


def test_list_filters_by_state_and_time(setup: tuple[Emulator, ManualClock, httpx.Client]) -> None:
    _, clock, http = setup
    early = http.post(JOBS, json=body()).json()
    clock.advance(12)
    late = http.post(JOBS, json=body()).json()

    def names(flt: str) -> list[str]:
        return [j["name"] for j in http.get(JOBS, params={"filter": flt}).json().get("customJobs", [])]
    assert names("create_time>2026-01-01T00:00:06Z") == [late["name"]]
    assert names('createTime<="2026-01-01T00:00:00Z"') == [early["name"]]
    assert names("state=JOB_STATE_PENDING") == [early["name"]]
    assert names("state=JOB_STATE_QUEUED OR state=JOB_STATE_PENDING") == [late["name"], early["name"]]


def test_repeated_lists_follow_the_clock_and_every_change(setup: tuple[Emulator, ManualClock, httpx.Client]) -> None:
    emulator, clock, http = setup

    def running() -> list[str]:
        page = http.get(JOBS, params={"filter": "state=JOB_STATE_RUNNING"}).json()
        return [j["name"] for j in page.get("customJobs", [])]

    def states() -> list[str]:
        return [j["state"] for j in http.get(JOBS).json().get("customJobs", [])]

    job = http.post(JOBS, json=body()).json()
    assert running() == [] and running() == []  # the second answer may come from the page memo
    assert states() == ["JOB_STATE_QUEUED"]
    clock.advance(15)
    assert running() == [job["name"]]
    assert states() == ["JOB_STATE_RUNNING"]
    http.post(f"/v1/{job['name']}:cancel", json={})
    assert states() == ["JOB_STATE_CANCELLING"] and running() == []
    emulator.set_job_state(job["name"], "JOB_STATE_RUNNING")
    assert running() == [job["name"]]
    other = http.post(JOBS, json=body()).json()
    assert len(states()) == 2
    emulator.delete_job_directly(job["name"])
    assert [j["name"] for j in http.get(JOBS).json()["customJobs"]] == [other["name"]]
    assert running() == []


def test_list_jobs_helper_bypasses_faults(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(fail_rates={503: 1.0})
    emulator.seed_job("p", "us-central1", body(**{"managed-by": "planner"}))
    emulator.seed_job("p", "us-central1", body())
    assert len(emulator.list_jobs("p", "us-central1")) == 2
    assert len(emulator.list_jobs("p", "us-central1", "labels.managed-by=planner")) == 1
    assert len(emulator.request_log) == 0
