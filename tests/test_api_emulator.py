"""VertexClient against the real emulator over HTTP: retries, Retry-After, no retry of 4xx, adaptive
pacing under a create quota, never-blind creates when answers are lost, pagination, lifecycle.

Counts come from the emulator's own request log, not from the client's view of itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from planner.api import RateLimiter, RetryPolicy, VertexClient, build_client
from planner.emulator import Emulator
from planner.errors import ApiError

PROJECT = "demo-project"
LOCATION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"


def job_body(name: str, **labels: str) -> dict[str, Any]:
    return {
        "displayName": name,
        "labels": {"managed-by": "planner", "planner-workspace": "default", **labels},
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": "us-docker.pkg.dev/p/r/train:1.4"},
                }
            ]
        },
    }


class Recorder:
    """An injected sleep that records every delay; `real` decides whether time really passes."""

    def __init__(self, *, real: bool) -> None:
        self.real = real
        self.delays: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.delays.append(seconds)
        if self.real:
            time.sleep(seconds)


def make_client(emulator: Emulator, **kwargs: Any) -> VertexClient:
    return VertexClient(httpx.Client(timeout=10.0), endpoint=emulator.url, **kwargs)


def create_many(client: VertexClient, count: int, threads: int, prefix: str) -> list[dict[str, Any]]:
    """Create `count` jobs, each found again by its own label if an answer is ambiguous."""

    def create(i: int) -> dict[str, Any]:
        label = f"{prefix}-{i}"

        def find_existing() -> dict[str, Any] | None:
            found = list(client.list_jobs(PROJECT, LOCATION, filter=f'labels.planner-address="{label}"'))
            assert len(found) <= 1, f"duplicate jobs for {label}"
            return found[0] if found else None

        return client.create_job(PROJECT, LOCATION, job_body(label, **{"planner-address": label}),
                                 find_existing=find_existing)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(create, range(count)))


def test_gets_survive_injected_503_and_429(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(fail_rates={503: 0.2, 429: 0.1}, seed=7)
    name = emulator.seed_job(PROJECT, LOCATION, job_body("target"))["name"]
    sleeps, limiter_sleeps = Recorder(real=False), Recorder(real=False)
    limiter = RateLimiter(sleep=limiter_sleeps)
    with make_client(emulator, sleep=sleeps, limiter=limiter) as client:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: client.get_job(name), range(500)))
        stats = client.stats.snapshot()
    assert len(results) == 500 and all(r["name"] == name for r in results)
    gets = emulator.request_log.calls("get")
    statuses = emulator.request_log.status_counts("get")
    assert statuses[200] == 500
    assert statuses[503] > 50 and statuses[429] > 20  # the faults really happened …
    assert len(gets) == 500 + stats["retries"]  # … and every one of them was retried, nothing else was
    assert stats["throttled"] == statuses[429]
    # The emulator answers its injected 429s with Retry-After: 1; each such retry waited at least that.
    assert sum(1 for d in sleeps.delays if d >= 1.0) >= statuses[429]


def test_retry_after_is_honoured(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(request_quota=(1, 1.0))
    name = emulator.seed_job(PROJECT, LOCATION, job_body("target"))["name"]
    sleeps = Recorder(real=True)
    with make_client(emulator, sleep=sleeps, retry=RetryPolicy(initial_backoff=0.2)) as client:
        client.get_job(name)
        client.get_job(name)  # over the quota: 429 with Retry-After: 1, then served
    assert emulator.request_log.status_counts("get") == {200: 2, 429: 1}
    assert sleeps.delays == [1.0]


def test_4xx_is_never_retried(emulator: Emulator) -> None:
    with make_client(emulator) as client:
        with pytest.raises(ApiError) as info:
            client.create_job(PROJECT, LOCATION, {"jobSpec": {}}, find_existing=lambda: None)
        err = info.value
        assert (err.http_status, err.status, err.attempts, err.method) == (400, "INVALID_ARGUMENT", 1, "POST")
        assert err.url == f"{emulator.url}/v1/{PARENT}/customJobs"
        assert len(emulator.request_log) == 1
        with pytest.raises(ApiError) as missing:
            client.get_job(f"{PARENT}/customJobs/999")
        assert (missing.value.http_status, missing.value.status) == (404, "NOT_FOUND")
        assert len(emulator.request_log) == 2
        assert client.stats.retries == 0


def test_dropped_connections_are_retried(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(drop_rate=0.2, seed=11)
    name = emulator.seed_job(PROJECT, LOCATION, job_body("target"))["name"]
    with make_client(emulator, retry=RetryPolicy(initial_backoff=0.005, max_backoff=0.05)) as client:
        for _ in range(100):
            assert client.get_job(name)["name"] == name
        assert client.stats.transport_errors > 5
    assert emulator.request_log.fault_counts()["drop"] == client.stats.transport_errors


def test_create_quota_is_met_by_pacing_not_hammering(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(create_quota=(10, 2.0))
    started = time.monotonic()
    with make_client(emulator) as client:
        jobs = create_many(client, 100, threads=16, prefix="quota")
    elapsed = time.monotonic() - started
    creates = emulator.request_log.calls("create")
    throttled = sum(1 for r in creates if r.status == 429)
    print(f"\n100 creates under 10/2s: {len(creates)} sent, {throttled} answered 429 "
          f"({throttled / len(creates):.1%}), {elapsed:.1f}s")
    assert len({j["name"] for j in jobs}) == 100 and emulator.job_count() == 100
    assert throttled / len(creates) < 0.20


def test_lost_create_answers_never_duplicate(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(lost_create_rate=0.3, seed=5)
    with make_client(emulator, retry=RetryPolicy(initial_backoff=0.02, max_backoff=0.2)) as client:
        jobs = create_many(client, 100, threads=16, prefix="lost")
        lookups = client.stats.create_lookups
    lost = emulator.request_log.fault_counts()["lost_create"]
    assert lost > 15 and lookups >= lost
    assert len({j["name"] for j in jobs}) == 100
    assert emulator.job_count() == 100
    labels = sorted(j["labels"]["planner-address"] for j in jobs)
    assert labels == sorted(f"lost-{i}" for i in range(100))


def test_list_follows_pages_and_filters(emulator: Emulator) -> None:
    for i in range(250):
        emulator.seed_job(PROJECT, LOCATION, job_body(f"j{i}", team="a" if i % 5 else "b"))
    emulator.seed_job(PROJECT, "europe-west4", job_body("elsewhere"))
    with make_client(emulator) as client:
        jobs = list(client.list_jobs(PROJECT, LOCATION, page_size=100))
        assert len(jobs) == len({j["name"] for j in jobs}) == 250
        assert len(emulator.request_log.calls("list")) == 3
        team_b = list(client.list_jobs(PROJECT, LOCATION, filter="labels.team=b", page_size=7))
        assert len(team_b) == 50 and {j["labels"]["team"] for j in team_b} == {"b"}
        masked = next(client.list_jobs(PROJECT, LOCATION, read_mask="name,displayName"))
        assert set(masked) == {"name", "displayName"}


def test_cancel_delete_and_wait_operation(emulator: Emulator) -> None:
    with make_client(emulator) as client:
        job = client.create_job(PROJECT, LOCATION, job_body("short"), find_existing=lambda: None)
        name = job["name"]
        assert client.get_job(name)["state"] in ("JOB_STATE_QUEUED", "JOB_STATE_PENDING")
        client.cancel_job(name)
        deadline = time.monotonic() + 5
        while client.get_job(name)["state"] != "JOB_STATE_CANCELLED":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        operation = client.delete_job(name)
        done = client.wait_operation(operation["name"], timeout=5.0)
        assert done["done"] and "error" not in done
        with pytest.raises(ApiError) as info:
            client.get_job(name)
        assert info.value.status == "NOT_FOUND"
        assert client.stats.by_method["cancel"] == 1 and client.stats.by_method["delete"] == 1


def test_build_client_on_the_emulator_is_anonymous(emulator: Emulator) -> None:
    client = build_client(endpoint=emulator.url, max_requests_per_minute=6000)
    with client:
        created = client.create_job(PROJECT, LOCATION, job_body("anon"), find_existing=lambda: None)
        assert client.get_job(created["name"])["displayName"] == "anon"
