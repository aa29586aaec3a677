"""Google's own clients, unchanged, against the emulator: the GAPIC REST transport and the discovery client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform_v1 import JobServiceClient
from google.cloud.aiplatform_v1.types import JobState
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from planner.emulator import Emulator, ManualClock
from planner.emulator.wire import snake

PARENT = "projects/demo-project/locations/us-central1"


def _job(name: str, **labels: str) -> dict[str, Any]:
    return {
        "displayName": name,
        "labels": {"managed-by": "planner", "planner-workspace": "default", **labels},
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-8", "acceleratorType": "NVIDIA_TESLA_T4",
                                    "acceleratorCount": 1},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": "us-docker.pkg.dev/p/r/train:1.4", "args": ["--epochs", "10"]},
                }
            ],
            "scheduling": {"timeout": "3600s", "strategy": "SPOT"},
            "baseOutputDirectory": {"outputUriPrefix": "gs://bucket/out"},
        },
    }


def _proto_dict(value: Any, *, inside_map: bool = False) -> Any:
    """The same job as proto-plus wants it: snake_case field names (map keys untouched)."""
    if isinstance(value, list):
        return [_proto_dict(v) for v in value]
    if not isinstance(value, dict):
        return value
    if inside_map:
        return dict(value)
    return {snake(k): _proto_dict(v, inside_map=k == "labels") for k, v in value.items()}


@pytest.fixture
def clocked(emulator_factory: Callable[..., Emulator]) -> tuple[Emulator, ManualClock]:
    clock = ManualClock()
    emulator = emulator_factory(clock=clock, queue_seconds=5, pending_seconds=5, run_seconds=60, cancel_seconds=3)
    return emulator, clock


def test_gapic_rest_client_full_lifecycle(clocked: tuple[Emulator, ManualClock]) -> None:
    emulator, clock = clocked
    client = JobServiceClient(
        transport="rest", client_options={"api_endpoint": emulator.url}, credentials=AnonymousCredentials()
    )
    created = [client.create_custom_job(parent=PARENT, custom_job=_proto_dict(_job(f"train-{i}"))) for i in range(5)]
    client.create_custom_job(parent=PARENT, custom_job=_proto_dict({**_job("other"), "labels": {"team": "x"}}))
    first = created[0]
    assert first.name.startswith(PARENT + "/customJobs/")
    assert first.name.rsplit("/", 1)[1].isdigit()
    assert first.state == JobState.JOB_STATE_QUEUED
    assert first.job_spec.worker_pool_specs[0].machine_spec.accelerator_type.name == "NVIDIA_TESLA_T4"
    assert first.job_spec.worker_pool_specs[0].replica_count == 1
    assert first.job_spec.base_output_directory.output_uri_prefix == "gs://bucket/out/"
    assert len({job.name for job in created}) == 5

    fetched = client.get_custom_job(name=first.name)
    assert fetched.display_name == "train-0"
    assert fetched.labels["managed-by"] == "planner"
    assert fetched.job_spec.scheduling.timeout.total_seconds() == 3600

    emulator.request_log.clear()
    pager = client.list_custom_jobs(
        request={"parent": PARENT, "filter": "labels.managed-by=planner AND labels.planner-workspace=default",
                 "page_size": 2}
    )
    listed = [job.name for job in pager]
    assert sorted(listed) == sorted(job.name for job in created)
    assert len(emulator.request_log.calls("list")) == 3  # 2 + 2 + 1

    clock.advance(11)
    assert client.get_custom_job(name=first.name).state == JobState.JOB_STATE_RUNNING
    client.cancel_custom_job(name=first.name)
    assert client.get_custom_job(name=first.name).state == JobState.JOB_STATE_CANCELLING
    with pytest.raises(exceptions.BadRequest):  # FAILED_PRECONDITION: still active
        client.delete_custom_job(name=first.name)
    clock.advance(3)
    cancelled = client.get_custom_job(name=first.name)
    assert cancelled.state == JobState.JOB_STATE_CANCELLED
    assert cancelled.error.code == 1
    with pytest.raises(exceptions.BadRequest, match="cannot be canceled"):
        client.cancel_custom_job(name=first.name)

    operation = client.delete_custom_job(name=first.name)
    operation.result(timeout=10)
    assert operation.done()
    with pytest.raises(exceptions.NotFound):
        client.get_custom_job(name=first.name)


def test_gapic_invalid_request_is_bad_request(emulator: Emulator) -> None:
    client = JobServiceClient(
        transport="rest", client_options={"api_endpoint": emulator.url}, credentials=AnonymousCredentials()
    )
    with pytest.raises(exceptions.BadRequest) as caught:
        client.create_custom_job(parent=PARENT, custom_job={"display_name": "x", "job_spec": {}})
    assert "worker_pool_specs" in str(caught.value)
    with pytest.raises(exceptions.BadRequest):
        list(client.list_custom_jobs(request={"parent": PARENT, "filter": "labels.a=(("}))


def test_discovery_client_full_lifecycle(clocked: tuple[Emulator, ManualClock]) -> None:
    emulator, clock = clocked
    service = discovery.build(
        "aiplatform", "v1", credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.url + "/"}, static_discovery=True,
    )
    jobs = service.projects().locations().customJobs()
    created = [jobs.create(parent=PARENT, body=_job(f"d-{i}")).execute() for i in range(5)]
    first = created[0]
    assert first["state"] == "JOB_STATE_QUEUED"
    assert first["jobSpec"]["workerPoolSpecs"][0]["replicaCount"] == "1"
    assert first["jobSpec"]["scheduling"]["strategy"] == "SPOT"
    assert jobs.get(name=first["name"]).execute()["displayName"] == "d-0"

    names: list[str] = []
    request = jobs.list(parent=PARENT, filter="labels.managed-by=planner", pageSize=2, readMask="name,displayName")
    pages = 0
    while request is not None:
        page = request.execute()
        pages += 1
        for job in page.get("customJobs", []):
            assert set(job) == {"name", "displayName"}
            names.append(job["name"])
        request = jobs.list_next(request, page)
    assert pages == 3
    assert sorted(names) == sorted(job["name"] for job in created)

    assert jobs.cancel(name=first["name"], body={}).execute() == {}
    clock.advance(3)
    cancelled = jobs.get(name=first["name"]).execute()
    assert cancelled["state"] == "JOB_STATE_CANCELLED"
    assert cancelled["error"]["code"] == 1
    with pytest.raises(HttpError) as caught:
        jobs.cancel(name=first["name"], body={}).execute()
    assert caught.value.resp.status == 400

    operation = jobs.delete(name=first["name"]).execute()
    assert operation["done"] is True
    assert operation["response"]["@type"] == "type.googleapis.com/google.protobuf.Empty"
    assert operation["metadata"]["@type"].endswith("DeleteOperationMetadata")
    polled = service.projects().locations().operations().get(name=operation["name"]).execute()
    assert polled["name"] == operation["name"]
    with pytest.raises(HttpError) as missing:
        jobs.get(name=first["name"]).execute()
    assert missing.value.resp.status == 404
