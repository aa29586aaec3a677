"""The emulator's HTTP surface: routing, encodings, validation and hostile input, all answered Google-style."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from planner.emulator import Emulator

PARENT = "projects/p/locations/us-central1"
JOBS = f"/v1/{PARENT}/customJobs"
ENUM_INT = "%24alt=json%3Benum-encoding%3Dint"


def valid_job(**overrides: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "displayName": "train",
        "labels": {"managed-by": "planner"},
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "replicaCount": 1,
                    "containerSpec": {"imageUri": "gcr.io/p/i:1"},
                }
            ]
        },
    }
    job.update(overrides)
    return job


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10, verify=False) as client:
        yield client


def google_error(response: httpx.Response, code: int, status: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    error = body["error"]
    assert set(error) == {"code", "message", "status", "details"}
    assert error["code"] == code
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    assert all("@type" in d for d in error["details"])
    return dict(error)


def violations(error: dict[str, Any]) -> list[str]:
    return [v["field"] for d in error["details"] if d["@type"].endswith("BadRequest") for v in d["fieldViolations"]]


# -- routing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/v2/projects/p/locations/l/customJobs", "/v1/projects/p/customJobs", f"{JOBS}/1/extra",
             f"{JOBS}/1:frobnicate", f"/ui/{PARENT}/customJobs", "/v1/projects//locations/l/customJobs"]
)
def test_unknown_paths_are_404(http: httpx.Client, path: str) -> None:
    google_error(http.get(path), 404, "NOT_FOUND")


def test_wrong_methods_are_405(http: httpx.Client) -> None:
    google_error(http.put(JOBS, json={}), 405, "UNIMPLEMENTED")
    google_error(http.post(f"{JOBS}/123"), 405, "UNIMPLEMENTED")
    google_error(http.get(f"{JOBS}/123:cancel"), 405, "UNIMPLEMENTED")
    google_error(http.patch(f"{JOBS}/123", json={}), 405, "UNIMPLEMENTED")


def test_missing_job_is_404(http: httpx.Client) -> None:
    google_error(http.get(f"{JOBS}/42"), 404, "NOT_FOUND")
    google_error(http.delete(f"{JOBS}/42"), 404, "NOT_FOUND")
    google_error(http.post(f"{JOBS}/42:cancel", json={}), 404, "NOT_FOUND")
    google_error(http.get(f"/ui/{PARENT}/operations/42"), 404, "NOT_FOUND")


def test_system_query_parameters_accepted(http: httpx.Client) -> None:
    query = "alt=json&prettyPrint=false&fields=name&key=k&quotaUser=q&%24.xgafv=2"
    assert http.get(f"{JOBS}?{query}").status_code == 200
    error = google_error(http.get(f"{JOBS}?colour=red"), 400, "INVALID_ARGUMENT")
    assert "colour" in error["message"]
    google_error(http.get(f"{JOBS}?alt=proto"), 400, "INVALID_ARGUMENT")


# -- encodings -----------------------------------------------------------------------------------


def test_proto3_json_output(emulator_factory: Callable[..., Emulator]) -> None:
    # A zero acceleratorCount beside a type is refused by Vertex AI ("both or none"): lenient here,
    # since this is about what proto3 JSON omits.
    body = valid_job()
    body["jobSpec"]["workerPoolSpecs"][0]["machineSpec"].update(acceleratorCount=0, acceleratorType="NVIDIA_TESLA_T4")
    body["jobSpec"]["scheduling"] = {"restartJobOnWorkerRestart": False, "timeout": "3600.000s"}
    body["jobSpec"]["serviceAccount"] = ""
    with httpx.Client(base_url=emulator_factory(lenient=True).url, timeout=10) as http:
        created = http.post(JOBS, json=body).json()
    pool = created["jobSpec"]["workerPoolSpecs"][0]
    assert pool["replicaCount"] == "1"
    assert pool["machineSpec"] == {"machineType": "n1-standard-4", "acceleratorType": "NVIDIA_TESLA_T4"}
    assert created["jobSpec"]["scheduling"] == {"timeout": "3600s"}
    assert "serviceAccount" not in created["jobSpec"]
    assert created["state"] == "JOB_STATE_QUEUED"
    assert created["createTime"].endswith("Z") and created["updateTime"].endswith("Z")
    assert created["name"].startswith(f"{PARENT}/customJobs/")
    assert len(created["name"].rsplit("/", 1)[1]) >= 16


def test_enum_encoding_int_both_ways(http: httpx.Client) -> None:
    body = valid_job()
    body["jobSpec"]["workerPoolSpecs"][0]["machineSpec"].update(acceleratorType=5, acceleratorCount=1)
    body["jobSpec"]["scheduling"] = {"strategy": 4}
    created = http.post(f"{JOBS}?{ENUM_INT}", json=body).json()
    assert created["state"] == 1
    assert created["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]["acceleratorType"] == 5
    assert created["jobSpec"]["scheduling"]["strategy"] == 4
    named = http.get(f"/v1/{created['name']}?alt=json").json()
    assert named["state"] == "JOB_STATE_QUEUED"
    assert named["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]["acceleratorType"] == "NVIDIA_TESLA_T4"
    assert named["jobSpec"]["scheduling"]["strategy"] == "SPOT"


def test_snake_case_body_fields_accepted(http: httpx.Client) -> None:
    body = {"display_name": "s", "job_spec": {"worker_pool_specs": [
        {"machine_spec": {"machine_type": "n1"}, "replica_count": "1", "container_spec": {"image_uri": "i"}},
        {"machine_spec": {"machine_type": "n1"}, "replica_count": "2", "container_spec": {"image_uri": "i"}}]}}
    created = http.post(JOBS, json=body)
    assert created.status_code == 200, created.text
    assert created.json()["jobSpec"]["workerPoolSpecs"][1]["replicaCount"] == "2"


def test_output_only_fields_in_body_are_ignored(http: httpx.Client) -> None:
    body = valid_job(state="JOB_STATE_SUCCEEDED", name="projects/x/locations/y/customJobs/1",
                     createTime="2020-01-01T00:00:00Z", error={"code": 5})
    created = http.post(JOBS, json=body).json()
    assert created["state"] == "JOB_STATE_QUEUED"
    assert created["name"].startswith(PARENT)
    assert "error" not in created


@pytest.mark.parametrize("echo", [False, True])
def test_echo_defaults_switch(emulator_factory: Callable[..., Emulator], echo: bool) -> None:
    emulator = emulator_factory(echo_defaults=echo)
    body = valid_job()
    body["jobSpec"]["baseOutputDirectory"] = {"outputUriPrefix": "gs://b/out"}
    created = httpx.post(emulator.url + JOBS, json=body, verify=False).json()
    spec = created["jobSpec"]
    assert spec["baseOutputDirectory"]["outputUriPrefix"] == "gs://b/out/"
    if echo:
        assert spec["workerPoolSpecs"][0]["diskSpec"] == {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 100}
        assert spec["scheduling"] == {"timeout": "604800s", "strategy": "STANDARD"}
    else:
        assert "diskSpec" not in spec["workerPoolSpecs"][0]
        assert "scheduling" not in spec


# -- validation ----------------------------------------------------------------------------------


def post_invalid(http: httpx.Client, body: Any) -> list[str]:
    return violations(google_error(http.post(JOBS, json=body), 400, "INVALID_ARGUMENT"))


def test_malformed_json(http: httpx.Client) -> None:
    response = http.post(JOBS, content=b'{"displayName": ', headers={"content-type": "application/json"})
    google_error(response, 400, "INVALID_ARGUMENT")
    response = http.post(JOBS, content=b"\xff\xfe{}", headers={"content-type": "application/json"})
    google_error(response, 400, "INVALID_ARGUMENT")
    assert post_invalid(http, [1, 2]) == ["custom_job"]
    assert post_invalid(http, "job") == ["custom_job"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda j: j.update(displayName=123), "custom_job.display_name"),
        (lambda j: j.update(labels=["a"]), "custom_job.labels"),
        (lambda j: j.update(labels={"a": 1}), "custom_job.labels[a]"),
        (lambda j: j["jobSpec"].update(workerPoolSpecs={"a": 1}), "custom_job.job_spec.worker_pool_specs"),
        (lambda j: j["jobSpec"]["workerPoolSpecs"][0].update(replicaCount="many"),
         "custom_job.job_spec.worker_pool_specs[0].replica_count"),
        (lambda j: j["jobSpec"]["workerPoolSpecs"][0].update(replicaCount=True),
         "custom_job.job_spec.worker_pool_specs[0].replica_count"),
        (lambda j: j["jobSpec"]["workerPoolSpecs"][0]["machineSpec"].update(acceleratorType="NVIDIA_TESLA_Z9"),
         "custom_job.job_spec.worker_pool_specs[0].machine_spec.accelerator_type"),
        (lambda j: j["jobSpec"]["workerPoolSpecs"][0]["machineSpec"].update(acceleratorType=99),
         "custom_job.job_spec.worker_pool_specs[0].machine_spec.accelerator_type"),
        (lambda j: j["jobSpec"]["workerPoolSpecs"][0]["machineSpec"].update(acceleratorCount=2**40),
         "custom_job.job_spec.worker_pool_specs[0].machine_spec.accelerator_count"),
        (lambda j: j["jobSpec"].update(scheduling={"timeout": "1 hour"}), "custom_job.job_spec.scheduling.timeout"),
        (lambda j: j["jobSpec"].update(enableWebAccess="yes"), "custom_job.job_spec.enable_web_access"),
        (lambda j: j["jobSpec"].update(bogusField=1), "custom_job.job_spec"),
        (lambda j: j.update(colour="red"), "custom_job"),
    ],
)
def test_wrong_types_and_unknown_fields(http: httpx.Client, mutate: Callable[[dict[str, Any]], None],
                                        field: str) -> None:
    body = valid_job()
    mutate(body)
    assert field in post_invalid(http, body)


def pool(**fields: Any) -> dict[str, Any]:
    return {"machineSpec": {"machineType": "n1-standard-4"}, **fields}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"jobSpec": {"workerPoolSpecs": [pool(containerSpec={"imageUri": "i"})]}}, "display_name"),
        (valid_job(displayName="x" * 129), "display_name"),
        (valid_job(jobSpec={"workerPoolSpecs": []}), "job_spec.worker_pool_specs"),
        (valid_job(jobSpec=None), "job_spec"),
        (valid_job(jobSpec={"workerPoolSpecs": [{"containerSpec": {"imageUri": "i"}}]}),
         "job_spec.worker_pool_specs[0].machine_spec.machine_type"),
        (valid_job(jobSpec={"workerPoolSpecs": [pool()]}), "job_spec.worker_pool_specs[0].task"),
        (valid_job(jobSpec={"workerPoolSpecs": [pool(containerSpec={"imageUri": "i"}, pythonPackageSpec={
            "executorImageUri": "e", "packageUris": ["gs://p"], "pythonModule": "m"})]}),
         "job_spec.worker_pool_specs[0].task"),
        (valid_job(jobSpec={"workerPoolSpecs": [pool(containerSpec={})]}),
         "job_spec.worker_pool_specs[0].container_spec.image_uri"),
        (valid_job(jobSpec={"workerPoolSpecs": [pool(pythonPackageSpec={"executorImageUri": "e"})]}),
         "job_spec.worker_pool_specs[0].python_package_spec.python_module"),
        (valid_job(jobSpec={"workerPoolSpecs": [pool(pythonPackageSpec={"executorImageUri": "e",
                                                                         "pythonModule": "m"})]}),
         "job_spec.worker_pool_specs[0].python_package_spec.package_uris"),
        (valid_job(jobSpec={"workerPoolSpecs": [pool(pythonPackageSpec={
            "executorImageUri": "e", "pythonModule": "m", "packageUris": ["gs://x"] * 101})]}),
         "job_spec.worker_pool_specs[0].python_package_spec.package_uris"),
        (valid_job(jobSpec={"workerPoolSpecs": [pool(containerSpec={"imageUri": "i", "env": [{"value": "v"}]})]}),
         "job_spec.worker_pool_specs[0].container_spec.env[0].name"),
        (valid_job(jobSpec={"workerPoolSpecs": [pool(containerSpec={
            "imageUri": "i", "env": [{"name": f"V{i}", "value": "v"} for i in range(101)]})]}),
         "job_spec.worker_pool_specs[0].container_spec.env"),
        (valid_job(jobSpec={"workerPoolSpecs": [pool(containerSpec={"imageUri": "i"},
                                                     nfsMounts=[{"server": "10.0.0.1", "path": "/x"}])]}),
         "job_spec.worker_pool_specs[0].nfs_mounts[0].mount_point"),
        (valid_job(jobSpec={"workerPoolSpecs": [pool(containerSpec={"imageUri": "i"},
                                                     diskSpec={"bootDiskType": "floppy"})]}),
         "job_spec.worker_pool_specs[0].disk_spec.boot_disk_type"),
        (valid_job(encryptionSpec={}), "encryption_spec.kms_key_name"),
        (valid_job(labels={"Upper": "x"}), "labels[Upper]"),
        (valid_job(labels={"1abc": "x"}), "labels[1abc]"),
        (valid_job(labels={"-abc": "x"}), "labels[-abc]"),
        (valid_job(labels={"a" * 64: "x"}), "labels[" + "a" * 64 + "]"),
        (valid_job(labels={"ok": "Bad Value"}), "labels[ok]"),
        (valid_job(labels={"ok": "v" * 64}), "labels[ok]"),
        (valid_job(labels={f"k{i}": "v" for i in range(65)}), "labels"),
    ],
)
def test_semantic_validation(http: httpx.Client, body: dict[str, Any], field: str) -> None:
    assert f"custom_job.{field}" in post_invalid(http, body) or field in post_invalid(http, body)


def test_all_violations_reported_at_once(http: httpx.Client) -> None:
    found = post_invalid(http, {"labels": {"BAD": "x"}, "jobSpec": {"workerPoolSpecs": [{}]}})
    assert {"display_name", "labels[BAD]", "job_spec.worker_pool_specs[0].machine_spec.machine_type"} <= set(found)


def test_valid_label_shapes_accepted(http: httpx.Client) -> None:
    labels = {"managed-by": "planner", "planner-address": "a-b_c", "empty": "", "ключ": "значение", "k" * 63: "v" * 63}
    response = http.post(JOBS, json=valid_job(labels=labels))
    assert response.status_code == 200, response.text
    assert response.json()["labels"] == labels


def test_second_pool_may_be_empty(http: httpx.Client) -> None:
    body = valid_job()
    body["jobSpec"]["workerPoolSpecs"].append({})
    assert http.post(JOBS, json=body).status_code == 200


# -- bodies --------------------------------------------------------------------------------------


def test_ten_megabyte_body_rejected_and_connection_survives(http: httpx.Client) -> None:
    huge = json.dumps(valid_job(displayName="x" * (10 * 1024 * 1024))).encode()
    error = google_error(http.post(JOBS, content=huge, headers={"content-type": "application/json"}), 413,
                         "INVALID_ARGUMENT")
    assert "limit" in error["message"]
    assert http.get(JOBS).status_code == 200  # same keep-alive client still works


def test_chunked_body(http: httpx.Client) -> None:
    payload = json.dumps(valid_job()).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 7):
            yield payload[i:i + 7]

    response = http.post(JOBS, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def test_raw_socket_bad_content_length(emulator: Emulator) -> None:
    host, port = emulator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"POST {JOBS} HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".encode())
        data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 400")


# -- list ----------------------------------------------------------------------------------------


def test_list_pagination_filter_and_mask(emulator: Emulator, http: httpx.Client) -> None:
    for i in range(25):
        emulator.seed_job("p", "us-central1", valid_job(displayName=f"job-{i:02d}"),
                          labels={"parity": "even" if i % 2 == 0 else "odd"}, create_time=1_700_000_000.0 + i)
    emulator.seed_job("p", "europe-west4", valid_job(displayName="elsewhere"))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        params = {"filter": "labels.parity=even", "page_size": "5", "readMask": "display_name,labels"}
        if token:
            params["pageToken"] = token
        page = http.get(JOBS, params=params).json()
        pages += 1
        for job in page.get("customJobs", []):
            assert set(job) == {"displayName", "labels"}
            seen.append(job["displayName"])
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert pages == 3
    assert seen == [f"job-{i:02d}" for i in range(24, -1, -2)]  # newest first, deterministic
    everything = http.get(JOBS, params={"pageSize": 1000}).json()["customJobs"]
    assert len(everything) == 25


def test_list_page_size_defaults_and_caps(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(max_page_size=10)
    for i in range(12):
        emulator.seed_job("p", "us-central1", valid_job(displayName=f"j{i}"))
    with httpx.Client(base_url=emulator.url, verify=False) as http:
        assert len(http.get(JOBS, params={"pageSize": 500}).json()["customJobs"]) == 10
        assert len(http.get(JOBS).json()["customJobs"]) == 10
        google_error(http.get(JOBS, params={"pageSize": -1}), 400, "INVALID_ARGUMENT")
        google_error(http.get(JOBS, params={"pageSize": "ten"}), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "bad", ["labels.a=", "((", "state=NOPE", "create_time>tomorrow", "colour=red", "a=1 AND", '"open']
)
def test_bad_filters_are_400(http: httpx.Client, bad: str) -> None:
    error = google_error(http.get(JOBS, params={"filter": bad}), 400, "INVALID_ARGUMENT")
    assert violations(error) == ["filter"]


def test_page_tokens_reject_tampering(emulator: Emulator, http: httpx.Client) -> None:
    for i in range(4):
        emulator.seed_job("p", "us-central1", valid_job(displayName=f"j{i}"))
    token = http.get(JOBS, params={"pageSize": 2, "filter": "state=JOB_STATE_QUEUED"}).json()["nextPageToken"]
    ok = http.get(JOBS, params={"pageSize": 2, "filter": "state=JOB_STATE_QUEUED", "pageToken": token})
    assert ok.status_code == 200 and len(ok.json()["customJobs"]) == 2
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, "garbage", "!!!", token + "x", token[::-1]):
        params = {"pageSize": 2, "filter": "state=JOB_STATE_QUEUED", "pageToken": bad}
        google_error(http.get(JOBS, params=params), 400, "INVALID_ARGUMENT")
    other_filter = {"pageSize": 2, "filter": "state=JOB_STATE_RUNNING", "pageToken": token}
    google_error(http.get(JOBS, params=other_filter), 400, "INVALID_ARGUMENT")
    other_parent = http.get("/v1/projects/q/locations/us-central1/customJobs",
                            params={"pageSize": 2, "filter": "state=JOB_STATE_QUEUED", "pageToken": token})
    google_error(other_parent, 400, "INVALID_ARGUMENT")


def test_read_mask_errors(http: httpx.Client) -> None:
    google_error(http.get(JOBS, params={"readMask": "name,colour"}), 400, "INVALID_ARGUMENT")
    assert http.get(JOBS, params={"read_mask": "job_spec.worker_pool_specs,create_time"}).status_code == 200


# -- operations ----------------------------------------------------------------------------------


def test_operation_routes(emulator: Emulator, http: httpx.Client) -> None:
    job = emulator.seed_job("p", "us-central1", valid_job(), state="JOB_STATE_SUCCEEDED")
    operation = http.delete(f"/v1/{job['name']}").json()
    op_id = operation["name"].rsplit("/", 1)[1]
    assert operation["name"] == f"{PARENT}/operations/{op_id}"
    assert operation["done"] is True
    assert set(operation["metadata"]["genericMetadata"]) == {"createTime", "updateTime"}
    for prefix in ("/v1/", "/ui/"):
        assert http.get(f"{prefix}{operation['name']}").json() == operation
        assert http.post(f"{prefix}{operation['name']}:wait", params={"timeout": "5s"}).json() == operation
        listed = http.get(f"{prefix}{PARENT}/operations").json()
        assert [op["name"] for op in listed["operations"]] == [operation["name"]]
        nested = f"{prefix}{job['name']}/operations/{op_id}"
        assert http.get(nested).json() == operation
        google_error(http.post(f"{prefix}{operation['name']}:cancel"), 400, "FAILED_PRECONDITION")
    assert http.delete(f"/ui/{operation['name']}").json() == {}
    google_error(http.get(f"/v1/{operation['name']}"), 404, "NOT_FOUND")
    google_error(http.get(f"/v1/{job['name']}"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "raw",
    [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
     b"GET / HTTP/1.1\r\nX: " + b"b" * 70000 + b"\r\n\r\n"],
)
def test_protocol_errors_are_google_shaped(emulator: Emulator, raw: bytes) -> None:
    host, port = emulator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and head.split()[1][:1] in (b"4", b"5"), head
    assert json.loads(payload)["error"]["code"] == int(head.split()[1])
