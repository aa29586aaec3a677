"""Fixtures for the state tests: a real GCS emulator (in a thread), the precondition proxy, stores.

Import the fixtures into a test module with `from state_fixtures import *  # noqa: F403`.
`store_backend` is parametrised over "local" and "gcs"; `backend.new_store()` gives another
store on the same state, standing in for another run.
"""

from __future__ import annotations

import logging
import socket
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from gcs_precondition_proxy import PreconditionProxy

from planner.state import GcsStore, JobRecord, LocalStore, State, open_store
from planner.state.fileformat import read_state

BUCKET = "planner-state-test"


def record(address: str, job_id: int = 1, last_state: str = "JOB_STATE_RUNNING") -> JobRecord:
    return JobRecord(
        address=address,
        name=f"projects/p/locations/us-central1/customJobs/{job_id}",
        project="p",
        location="us-central1",
        spec_hash=f"{job_id:064x}",
        spec={"displayName": address, "labels": {"team": "vision"}, "jobSpec": {"workerPoolSpecs": []}},
        last_state=last_state,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """Base URL of gcp-storage-emulator (in memory, in a thread) with the test bucket created."""
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)
    logging.getLogger("api.object").setLevel(logging.CRITICAL)
    logging.getLogger("api.bucket").setLevel(logging.CRITICAL)
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        resp = httpx.post(f"{url}/storage/v1/b", json={"name": BUCKET}, timeout=10)
        assert resp.status_code == 200, resp.text
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_proxy(gcs_emulator: str) -> Iterator[PreconditionProxy]:
    with PreconditionProxy(gcs_emulator) as proxy:
        yield proxy


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@dataclass
class Backend:
    """One state location and how to open more stores on it."""

    kind: str
    new_store: Callable[[], LocalStore | GcsStore]
    read_backup: Callable[[], State | None]
    put_raw: Callable[[bytes], None]  # overwrite the stored state bytes behind the store's back
    get_raw: Callable[[], bytes | None]


def local_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "state" / "default.json"

    def read_backup() -> State | None:
        backup = path.with_name("default.json.backup")
        return read_state(backup.read_bytes(), str(backup)) if backup.exists() else None

    def put_raw(data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def get_raw() -> bytes | None:
        return path.read_bytes() if path.exists() else None

    return Backend("local", lambda: LocalStore(path), read_backup, put_raw, get_raw)


def gcs_backend(storage_url: str, client: httpx.Client, prefix: str | None = None) -> Backend:
    prefix = prefix or f"t-{uuid.uuid4().hex[:12]}"
    stores: list[GcsStore] = []

    def new_store() -> GcsStore:
        store = open_store(
            f"gs://{BUCKET}/{prefix}", "default", base_dir=Path("unused"), storage_host=storage_url, http=client
        )
        assert isinstance(store, GcsStore)
        stores.append(store)
        return store

    def object_url(name: str) -> str:
        return f"{storage_url}/storage/v1/b/{BUCKET}/o/{quote(f'{prefix}/{name}', safe='')}"

    def get_raw_object(name: str) -> bytes | None:
        resp = client.get(object_url(name), params={"alt": "media"})
        return None if resp.status_code == 404 else resp.content

    def read_backup() -> State | None:
        raw = get_raw_object("default.json.backup")
        return None if raw is None else read_state(raw, "backup")

    def put_raw(data: bytes) -> None:
        resp = client.post(
            f"{storage_url}/upload/storage/v1/b/{BUCKET}/o",
            params={"uploadType": "media", "name": f"{prefix}/default.json"},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert resp.status_code == 200, resp.text

    return Backend("gcs", new_store, read_backup, put_raw, lambda: get_raw_object("default.json"))


@pytest.fixture(params=["local", "gcs"])
def store_backend(
    request: pytest.FixtureRequest, tmp_path: Path, http_client: httpx.Client
) -> Backend:
    if request.param == "local":
        return local_backend(tmp_path)
    proxy: PreconditionProxy = request.getfixturevalue("gcs_proxy")
    return gcs_backend(proxy.url, http_client)


def child_script(body: str) -> list[str]:
    """argv running `body` (dedented) in a fresh interpreter with this planner importable."""
    return [sys.executable, "-c", textwrap.dedent(body)]
