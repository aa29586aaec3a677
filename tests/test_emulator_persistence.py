"""Persistence to a data file: restarts, two live processes' worth of emulators, compaction, torn tails."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from planner.emulator import Emulator, ManualClock

PARENT = "projects/p/locations/us-central1"
JOBS = f"/v1/{PARENT}/customJobs"


def body(name: str = "persist") -> dict[str, Any]:
    return {
        "displayName": name,
        "labels": {"managed-by": "planner"},
        "jobSpec": {"workerPoolSpecs": [{"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "1",
                                         "containerSpec": {"imageUri": "gcr.io/p/i"}}]},
    }


def names(emulator: Emulator) -> list[str]:
    page = httpx.get(emulator.url + JOBS, params={"pageSize": 1000}, verify=False).json()
    return [job["name"] for job in page.get("customJobs", [])]


def test_sequential_restarts_see_the_same_jobs(emulator_factory: Callable[..., Emulator], tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    clock = ManualClock()
    first = emulator_factory(clock=clock, data_path=data)
    created = [httpx.post(first.url + JOBS, json=body(f"j{i}"), verify=False).json() for i in range(5)]
    httpx.post(f"{first.url}/v1/{created[0]['name']}:cancel", json={}, verify=False)
    clock.advance(1000)
    httpx.delete(f"{first.url}/v1/{created[1]['name']}", verify=False)
    first.stop()

    second = emulator_factory(clock=clock, data_path=data)
    assert sorted(names(second)) == sorted(job["name"] for job in created[2:] + created[:1])
    assert second.get_job(created[0]["name"])["state"] == "JOB_STATE_CANCELLED"
    assert second.get_job(created[2]["name"]) == first.get_job(created[2]["name"])
    newer = httpx.post(second.url + JOBS, json=body(), verify=False).json()
    existing_ids = {int(job["name"].rsplit("/", 1)[1]) for job in created}
    assert int(newer["name"].rsplit("/", 1)[1]) > max(existing_ids)  # IDs continue, never reused


def test_two_live_emulators_share_one_file(emulator_factory: Callable[..., Emulator], tmp_path: Path) -> None:
    data = tmp_path / "shared.json"
    left = emulator_factory(data_path=data, seed=1)
    right = emulator_factory(data_path=data, seed=1)  # same seed: IDs must still not collide

    made: list[str] = []
    lock = threading.Lock()

    def create(emulator: Emulator) -> None:
        with httpx.Client(base_url=emulator.url, verify=False) as http:
            for i in range(20):
                name = http.post(JOBS, json=body(f"x{i}")).json()["name"]
                with lock:
                    made.append(name)

    threads = [threading.Thread(target=create, args=(e,)) for e in (left, right, left, right)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 80
    assert sorted(names(left)) == sorted(made) == sorted(names(right))
    left.set_job_state(made[0], "JOB_STATE_SUCCEEDED")
    httpx.delete(f"{left.url}/v1/{made[0]}", verify=False)
    assert httpx.get(f"{right.url}/v1/{made[0]}", verify=False).status_code == 404


def test_compaction_keeps_the_log_small(emulator_factory: Callable[..., Emulator], tmp_path: Path) -> None:
    data = tmp_path / "big.json"
    emulator = emulator_factory(data_path=data)
    jobs = [emulator.seed_job("p", "us-central1", body(f"b{i}")) for i in range(1200)]
    assert len(data.read_bytes().splitlines()) == 1201  # creates only: one line each, nothing to compact
    for job in jobs:  # every update leaves a stale record behind
        emulator.set_job_state(job["name"], "JOB_STATE_RUNNING")
        emulator.set_job_state(job["name"], "JOB_STATE_SUCCEEDED")
    lines = data.read_bytes().splitlines()
    assert len(lines) < 1500  # compacted: one snapshot line + the tail since
    assert json.loads(lines[0])["t"] == "snapshot"
    emulator.stop()
    again = emulator_factory(data_path=data)
    assert again.job_count() == 1200
    assert {again.get_job(job["name"])["state"] for job in jobs} == {"JOB_STATE_SUCCEEDED"}


def test_torn_tail_is_dropped_and_corruption_is_reported(emulator_factory: Callable[..., Emulator],
                                                          tmp_path: Path) -> None:
    data = tmp_path / "torn.json"
    emulator = emulator_factory(data_path=data)
    kept = emulator.seed_job("p", "us-central1", body())
    emulator.stop()
    with data.open("ab") as fh:
        fh.write(b'{"t":"job","job":{"id":"1')  # a crash mid-write
    recovered = emulator_factory(data_path=data)
    assert recovered.get_job(kept["name"])["name"] == kept["name"]
    recovered.seed_job("p", "us-central1", body("after"))
    assert recovered.job_count() == 2
    recovered.stop()

    data.write_bytes(b'{"t":"snapshot","jobs":[]}\nnot json\n')
    with pytest.raises(Exception, match="corrupt"):
        emulator_factory(data_path=data)


def test_data_file_mode_and_no_data_without_path(emulator_factory: Callable[..., Emulator], tmp_path: Path) -> None:
    data = tmp_path / "mode.json"
    emulator_factory(data_path=data).seed_job("p", "us-central1", body())
    assert data.stat().st_mode & 0o777 == 0o600
    emulator_factory().seed_job("p", "us-central1", body())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mode.json", "mode.json.lock"]
