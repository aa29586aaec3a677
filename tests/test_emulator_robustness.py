"""The emulator under hostile bodies and Google-client habits (issue #13): 4xx never 500, method override,
delete operations that take time (and fail) so the client's operation polling is exercised."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from planner.api import build_client
from planner.emulator import Emulator

PARENT = "projects/p/locations/us-central1"
JOBS = f"/v1/{PARENT}/customJobs"


def job(**labels: str) -> dict[str, Any]:
    return {
        "displayName": "j",
        "labels": dict(labels),
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": "gcr.io/p/i:1"},
                }
            ]
        },
    }


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"displayName": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"displayName": "j", "labels": {"a": ' + b"9" * 5000 + b"}}",
        json.dumps(job()).replace('"1"', "1" + "0" * 5000).encode(),
        json.dumps(job()).replace('"1"', "1e999").encode(),
        b'{"displayName": "j", "jobSpec": {"workerPoolSpecs": [{"replicaCount": -' + b"9" * 400 + b"}]}}",
    ],
    ids=["nested-list", "nested-field", "huge-label", "huge-int", "huge-float", "long-negative"],
)
def test_hostile_json_bodies_are_400_never_500(http: httpx.Client, body: bytes) -> None:
    response = http.post(JOBS, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text[:500]
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert http.get(JOBS).status_code == 200  # and the emulator is still fine


def test_method_override_turns_a_post_into_a_long_get(http: httpx.Client) -> None:
    created = http.post(JOBS, json=job(team="a")).json()
    long_filter = " OR ".join(f'labels.team="{t}"' for t in ["a", *[f"x{i:04d}" for i in range(120)]])
    assert len(long_filter) > 2048
    query = httpx.QueryParams({"filter": long_filter, "pageSize": "50"})
    response = http.post(
        JOBS,
        content=str(query).encode(),
        headers={"x-http-method-override": "GET", "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text[:500]
    assert [j["name"] for j in response.json()["customJobs"]] == [created["name"]]
    # A short GET sent the same way works too.
    gone = http.post(f"/v1/{created['name']}", headers={"x-http-method-override": "GET"})
    assert gone.status_code == 200 and gone.json()["name"] == created["name"]


def test_delete_operations_stay_in_progress_for_delete_seconds(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(delete_seconds=1.5, run_seconds=0.1)
    with httpx.Client(base_url=emulator.url, timeout=10) as http:
        name = http.post(JOBS, json=job()).json()["name"]
        time.sleep(0.8)  # queued, pending, running, succeeded
        op = http.delete(f"/v1/{name}").json()
        assert "done" not in op and "response" not in op
        assert http.get(f"/v1/{op['name']}").json().get("done") is None
    client = build_client(endpoint=emulator.url)
    started = time.monotonic()
    done = client.wait_operation(op["name"], timeout=30)
    assert done["done"] is True and "response" in done
    assert 0.3 < time.monotonic() - started < 10
    client.close()


def test_a_failing_delete_operation_reports_its_error(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(delete_seconds=0.3, run_seconds=0.1)
    with httpx.Client(base_url=emulator.url, timeout=10) as http:
        name = http.post(JOBS, json=job(**{"emulator-delete": "failed"})).json()["name"]
        time.sleep(0.8)
        op = http.delete(f"/v1/{name}").json()
    client = build_client(endpoint=emulator.url)
    done = client.wait_operation(op["name"], timeout=30)
    client.close()
    assert done["done"] is True and done["error"]["code"] == 13 and "response" not in done


def test_apply_polls_a_delete_operation_until_done(tmp_path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    from cli_harness import Cli, config_text

    emulator = emulator_factory(delete_seconds=1.0, run_seconds=0.1)
    cli = Cli(tmp_path, emulator)
    (tmp_path / "jobs.yaml").write_text(config_text(2))
    assert cli.run("apply", "jobs.yaml", "--auto-approve").code == 0
    time.sleep(0.8)  # both jobs finish
    (tmp_path / "jobs.yaml").write_text(config_text(1))
    r = cli.run("apply", "jobs.yaml", "--auto-approve", "--wait-timeout", "30s")
    assert r.code == 0, r.err
    polls = [rec for rec in emulator.request_log.records if rec.rpc == "operations.get"]
    assert polls, "the delete operation was not polled"
    assert cli.run("plan", "jobs.yaml", "--detailed-exitcode").code == 0
