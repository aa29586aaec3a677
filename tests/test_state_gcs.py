"""GCS store specifics, against gcp-storage-emulator behind the precondition proxy (and once without it)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from gcs_precondition_proxy import PreconditionProxy
from state_fixtures import *  # noqa: F403
from state_fixtures import BUCKET, child_script, gcs_backend, record

from planner.errors import StateError, StateLockedError, UsageError
from planner.state import GcsStore, JournalEntry, LockInfo, State, open_store
from planner.state.gcs import storage_base_url


def test_without_the_proxy_the_emulator_would_let_two_runs_lock(
    gcs_emulator: str, http_client: httpx.Client
) -> None:
    """Why the suite needs the proxy: the raw emulator ignores ifGenerationMatch, so the
    exclusivity test in test_state_contract.py would fail against it."""
    backend = gcs_backend(gcs_emulator, http_client)
    first, second = backend.new_store(), backend.new_store()
    first_id = first.lock(LockInfo.new("apply"), timeout=1)
    second_id = second.lock(LockInfo.new("plan"), timeout=0.2)  # wrongly succeeds
    assert second_id != first_id
    # ...and a stale writer's overwrite goes through unnoticed as well.
    first.write(State.new())
    stale, fresh = backend.new_store(), backend.new_store()
    stale_state, fresh_state = stale.read(), fresh.read()
    assert stale_state is not None and fresh_state is not None
    fresh.write(fresh_state.with_job(record("a")))
    stale.write(stale_state)  # no 412 from the emulator: the update to "a" is lost


def test_the_same_lock_test_through_the_proxy_holds(gcs_proxy: PreconditionProxy, http_client: httpx.Client) -> None:
    backend = gcs_backend(gcs_proxy.url, http_client)
    first, second = backend.new_store(), backend.new_store()
    first_id = first.lock(LockInfo.new("apply"), timeout=1)
    before = gcs_proxy.stats.precondition_failures
    with pytest.raises(StateLockedError):
        second.lock(LockInfo.new("plan"), timeout=0.2)
    assert gcs_proxy.stats.precondition_failures > before
    first.unlock(first_id)


def test_lock_id_is_the_lock_object_generation(gcs_proxy: PreconditionProxy, http_client: httpx.Client) -> None:
    backend = gcs_backend(gcs_proxy.url, http_client, prefix="gen-check")
    store = backend.new_store()
    lock_id = store.lock(LockInfo.new("apply"), timeout=1)
    meta = http_client.get(f"{gcs_proxy.url}/storage/v1/b/{BUCKET}/o/gen-check%2Fdefault.lock").json()
    assert meta["generation"] == lock_id
    store.unlock(lock_id)
    with pytest.raises(StateError, match="not locked"):
        store.unlock(lock_id)


def test_broken_lock_still_loses_no_update(gcs_proxy: PreconditionProxy, http_client: httpx.Client) -> None:
    backend = gcs_backend(gcs_proxy.url, http_client)
    backend.new_store().write(State.new())
    slow, impatient = backend.new_store(), backend.new_store()
    slow_id = slow.lock(LockInfo.new("apply"), timeout=1)
    slow_state = slow.read()
    impatient.force_unlock(slow_id)  # someone decided the slow run was dead
    impatient_id = impatient.lock(LockInfo.new("apply"), timeout=1)
    impatient_state = impatient.read()
    assert slow_state is not None and impatient_state is not None
    impatient.write(impatient_state.with_job(record("a")))
    with pytest.raises(StateError, match="changed by someone else"):
        slow.write(slow_state.with_job(record("b", 2)))
    with pytest.raises(StateError, match="does not match"):
        slow.unlock(slow_id)
    impatient.unlock(impatient_id)


def test_retries_transient_errors(gcs_proxy: PreconditionProxy, http_client: httpx.Client) -> None:
    backend = gcs_backend(gcs_proxy.url, http_client)
    store = backend.new_store()
    gcs_proxy.inject("503", method="POST", path_contains="/upload/")
    gcs_proxy.inject("503", method="GET")
    written = store.write(State.new())
    assert backend.new_store().read() == written


def test_lost_answers_to_conditional_writes_are_recognised(
    gcs_proxy: PreconditionProxy, http_client: httpx.Client
) -> None:
    backend = gcs_backend(gcs_proxy.url, http_client)
    store = backend.new_store()
    store.write(State.new())
    # The write succeeds upstream but its answer is lost; the retry meets 412 (generation moved)
    # and must recognise its own content rather than report a conflict.
    gcs_proxy.inject("lose", method="POST", path_contains="default.json&")
    state = store.read()
    assert state is not None
    written = store.write(state.with_job(record("a")))
    assert backend.new_store().read() == written
    gcs_proxy.inject("lose", method="POST", path_contains="default.lock")
    lock_id = store.lock(LockInfo.new("apply"), timeout=1)
    info = store.lock_info()
    assert info is not None and info.id == lock_id
    store.unlock(lock_id)


def test_journal_objects_are_removed_after_a_write(gcs_proxy: PreconditionProxy, http_client: httpx.Client) -> None:
    prefix = "journal-cleanup"

    def new_store() -> GcsStore:  # small delete batches, so 25 entries take several batch requests
        return GcsStore(BUCKET, prefix, "default", http=http_client, base_url=gcs_proxy.url, anonymous=True,
                        delete_batch_size=10)

    def journal_objects() -> list[str]:
        listing = http_client.get(
            f"{gcs_proxy.url}/storage/v1/b/{BUCKET}/o", params={"prefix": f"{prefix}/default.journal/"}
        ).json()
        return [item["name"] for item in listing.get("items") or []]

    store = new_store()
    store.write(State.new())
    for i in range(25):
        store.append(JournalEntry.put(record(f"job-{i}", i + 1)))
    assert len(journal_objects()) == 25
    folded = new_store().read()
    assert folded is not None and len(folded.jobs) == 25
    batches_before = gcs_proxy.stats.requests.count("POST /batch/storage/v1")
    store.write(folded)
    assert gcs_proxy.stats.requests.count("POST /batch/storage/v1") - batches_before == 3
    assert journal_objects() == []
    again = new_store().read()
    assert again is not None and len(again.jobs) == 25


def test_missing_bucket_is_named(gcs_proxy: PreconditionProxy, http_client: httpx.Client) -> None:
    store = open_store(
        "gs://no-such-bucket/p", "default", base_dir=Path("unused"), storage_host=gcs_proxy.url, http=http_client
    )
    with pytest.raises(StateError, match="bucket no-such-bucket does not exist"):
        store.read()
    with pytest.raises(StateError, match="bucket no-such-bucket does not exist"):
        store.lock(LockInfo.new("apply"), timeout=0)


def test_storage_host_rules() -> None:
    assert storage_base_url(None) == ("https://storage.googleapis.com", False)
    assert storage_base_url("127.0.0.1:9023") == ("http://127.0.0.1:9023", True)
    assert storage_base_url("http://localhost:9023/") == ("http://localhost:9023", True)
    assert storage_base_url("http://[::1]:9023") == ("http://[::1]:9023", True)
    with pytest.raises(UsageError, match="only loopback"):
        storage_base_url("http://storage.example.com:9023")
    with pytest.raises(UsageError, match="only loopback"):
        storage_base_url("10.0.0.1:9023")


def test_killed_holder_leaves_the_lock_and_force_unlock_removes_it(
    gcs_proxy: PreconditionProxy, http_client: httpx.Client
) -> None:
    prefix = "killed-holder"
    child = subprocess.Popen(
        child_script(
            f"""
            import time, httpx
            from pathlib import Path
            from planner.state import LockInfo, open_store
            store = open_store("gs://{BUCKET}/{prefix}", "default", base_dir=Path("unused"),
                               storage_host={gcs_proxy.url!r}, http=httpx.Client())
            print(store.lock(LockInfo.new("apply", who="carol"), timeout=5), flush=True)
            time.sleep(60)
            """
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        lock_id = child.stdout.readline().strip()
        assert lock_id.isdigit(), "child failed to lock"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    store = gcs_backend(gcs_proxy.url, http_client, prefix=prefix).new_store()
    with pytest.raises(StateLockedError) as caught:  # an object does not die with its process
        store.lock(LockInfo.new("plan"), timeout=0.2)
    assert f"pid {child.pid}" in str(caught.value) and "carol@" in str(caught.value)
    with pytest.raises(StateError, match="does not match"):
        store.force_unlock(str(int(lock_id) + 1))
    store.force_unlock(lock_id)
    store.unlock(store.lock(LockInfo.new("plan"), timeout=0.2))


def test_anonymous_for_emulator_and_given_auth_otherwise(gcs_proxy: PreconditionProxy) -> None:
    seen: list[str | None] = []

    class RecordingAuth(httpx.Auth):
        def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
            request.headers["Authorization"] = "Bearer test-token"
            yield request

    def hook(request: httpx.Request) -> None:
        seen.append(request.headers.get("Authorization"))

    with httpx.Client(event_hooks={"request": [hook]}, auth=RecordingAuth()) as client:
        emulated = GcsStore(BUCKET, "auth", "default", http=client, base_url=gcs_proxy.url, anonymous=True)
        emulated.read()
        assert seen and all(value is None for value in seen)
        seen.clear()
        authed = GcsStore(BUCKET, "auth", "default", http=client, base_url=gcs_proxy.url, auth=RecordingAuth())
        authed.read()
        assert seen and all(value == "Bearer test-token" for value in seen)
