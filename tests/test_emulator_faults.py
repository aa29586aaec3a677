"""Injected faults, quotas and latency, and the request log other tests assert on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from planner.emulator import Emulator, ManualClock

PARENT = "projects/p/locations/us-central1"
JOBS = f"/v1/{PARENT}/customJobs"


def body() -> dict[str, Any]:
    return {
        "displayName": "faulty",
        "jobSpec": {"workerPoolSpecs": [{"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "1",
                                         "containerSpec": {"imageUri": "gcr.io/p/i"}}]},
    }


def statuses(emulator: Emulator, count: int) -> list[int]:
    out = []
    with httpx.Client(base_url=emulator.url, verify=False) as http:
        for _ in range(count):
            out.append(http.get(JOBS).status_code)
    return out


def test_fail_rates_roughly_honoured_and_seeded(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(fail_rates={503: 0.2, 429: 0.1, 500: 0.05}, seed=7)
    seen = statuses(emulator, 400)
    share = {code: seen.count(code) / len(seen) for code in (200, 429, 500, 503)}
    assert 0.13 < share[503] < 0.27
    assert 0.05 < share[429] < 0.16
    assert 0.01 < share[500] < 0.10
    assert emulator.request_log.fraction("list", 503) == share[503]
    assert emulator.request_log.fault_counts()["503"] == seen.count(503)
    again = emulator_factory(fail_rates={503: 0.2, 429: 0.1, 500: 0.05}, seed=7)
    assert statuses(again, 400) == seen  # reproducible


def test_injected_error_bodies(emulator_factory: Callable[..., Emulator]) -> None:
    with httpx.Client(verify=False) as http:
        for status, name in ((429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE"), (500, "INTERNAL")):
            emulator = emulator_factory(fail_rates={status: 1.0})
            response = http.get(emulator.url + JOBS)
            assert response.status_code == status
            error = response.json()["error"]
            assert error["status"] == name and error["code"] == status
            if status == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"


def test_drop_closes_without_answer(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(drop_rate=1.0)
    with pytest.raises(httpx.TransportError):
        httpx.get(emulator.url + JOBS, verify=False)
    record = emulator.request_log.records[-1]
    assert (record.status, record.fault, record.answered) == (0, "drop", False)


def test_lost_create_creates_the_job_without_answering(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(lost_create_rate=1.0)
    with pytest.raises(httpx.TransportError):
        httpx.post(emulator.url + JOBS, json=body(), verify=False)
    assert emulator.job_count() == 1
    listed = httpx.get(emulator.url + JOBS, verify=False).json()["customJobs"]
    assert listed[0]["displayName"] == "faulty"
    assert [r.fault for r in emulator.request_log.calls("create")] == ["lost_create"]


def test_create_quota_sliding_window(emulator_factory: Callable[..., Emulator]) -> None:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock, create_quota=(3, 10.0))
    with httpx.Client(base_url=emulator.url, verify=False) as http:
        for _ in range(3):
            assert http.post(JOBS, json=body()).status_code == 200
            clock.advance(2)
        refused = http.post(JOBS, json=body())
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["status"] == "RESOURCE_EXHAUSTED"
        assert error["message"].startswith(
            "The following quota metrics exceed quota limits: aiplatform.googleapis.com/")
        assert refused.headers["Retry-After"] == "4"  # the first create leaves the window at t=10
        assert http.get(JOBS).status_code == 200  # reads are not creates
        other = "/v1/projects/p/locations/europe-west4/customJobs"
        assert http.post(other, json=body()).status_code == 200  # quotas are per location
        clock.advance(4)
        assert http.post(JOBS, json=body()).status_code == 200
    assert emulator.job_count() == 5


def test_request_quota(emulator_factory: Callable[..., Emulator]) -> None:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock, request_quota=(5, 60.0))
    assert statuses(emulator, 7) == [200] * 5 + [429] * 2
    clock.advance(60)
    assert statuses(emulator, 1) == [200]
    assert emulator.request_log.fault_counts()["quota"] == 2


def test_latency(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(latency_ms=60)
    with httpx.Client(base_url=emulator.url, verify=False) as http:
        http.get(JOBS)
        start = time.perf_counter()
        http.get(JOBS)
        assert time.perf_counter() - start >= 0.06


def test_request_log_records_everything(emulator: Emulator) -> None:
    with httpx.Client(base_url=emulator.url, verify=False) as http:
        job = http.post(f"{JOBS}?alt=json", json=body()).json()
        http.get(f"/v1/{job['name']}")
        http.get(JOBS, params={"filter": "labels.a=b"})
        http.get("/nowhere")
    records = emulator.request_log.records
    assert [(r.method, r.rpc, r.status) for r in records] == [
        ("POST", "create", 200), ("GET", "get", 200), ("GET", "list", 200), ("GET", "unknown", 404)]
    assert records[0].path == JOBS and records[0].query == "alt=json"
    assert records[2].query == "filter=labels.a%3Db"
    assert [r.rpc for r in emulator.request_log.mutating()] == ["create"]
    assert emulator.request_log.rpc_counts()["get"] == 1
    assert emulator.request_log.status_counts()[404] == 1


def test_concurrent_creates_get_unique_ids(emulator: Emulator) -> None:
    made: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=emulator.url, verify=False) as http:
            for _ in range(25):
                name = http.post(JOBS, json=body()).json()["name"]
                with lock:
                    made.append(name)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == len(set(made)) == 200
    listed: list[str] = []
    token = ""
    with httpx.Client(base_url=emulator.url, verify=False) as http:
        while True:
            page = http.get(JOBS, params={"pageSize": 64, **({"pageToken": token} if token else {})}).json()
            listed.extend(job["name"] for job in page["customJobs"])
            token = page.get("nextPageToken", "")
            if not token:
                break
    assert sorted(listed) == sorted(made)
