"""The StateStore contract, run against both stores: local files and GCS (emulator + precondition proxy)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from state_fixtures import *  # noqa: F403
from state_fixtures import Backend, record

from planner.errors import StateError, StateLockedError
from planner.state import JournalEntry, LockInfo, PendingStep, State, StateStore
from planner.state.fileformat import write_state


def test_both_stores_satisfy_the_protocol(store_backend: Backend) -> None:
    store: StateStore = store_backend.new_store()
    assert store.description.endswith("default.json")


def test_read_without_state_is_none(store_backend: Backend) -> None:
    assert store_backend.new_store().read() is None


def test_round_trip_serial_and_lineage(store_backend: Backend) -> None:
    store = store_backend.new_store()
    initial = State.new().with_job(record("a")).with_job(
        replace(
            record("b", 2),
            pending=PendingStep("cancel", "projects/p/locations/us-central1/customJobs/2", "2026-01-01T00:00:00Z"),
            old_names=("projects/p/locations/us-central1/customJobs/9",),
        )
    )
    written = store.write(initial)
    assert written.serial == 1
    assert written.lineage == initial.lineage
    again = store_backend.new_store().read()
    assert again == written
    second = store.write(written.without_job("a"))
    assert (second.serial, second.lineage) == (2, initial.lineage)
    read_back = store_backend.new_store().read()
    assert read_back is not None and read_back.serial == 2 and list(read_back.jobs) == ["b"]
    assert store_backend.get_raw() == write_state(second)


def test_previous_version_kept_as_backup(store_backend: Backend) -> None:
    store = store_backend.new_store()
    first = store.write(State.new().with_job(record("a")))
    assert store_backend.read_backup() is None
    store.write(first.with_job(record("b", 2)))
    backup = store_backend.read_backup()
    assert backup == first


def test_journal_append_and_fold(store_backend: Backend) -> None:
    store = store_backend.new_store()
    base = store.write(State.new().with_job(record("a")))
    store.append(JournalEntry.put(record("b", 2)))
    store.append(JournalEntry.put(record("a", 1, "JOB_STATE_SUCCEEDED")))
    store.append(JournalEntry.remove("b"))
    store.append(JournalEntry.put(record("c", 3)))

    other = store_backend.new_store()
    folded = other.read()
    assert folded is not None
    assert folded.serial == base.serial  # folding is in memory; the caller writes it
    assert sorted(folded.jobs) == ["a", "c"]
    assert folded.jobs["a"].last_state == "JOB_STATE_SUCCEEDED"

    written = other.write(folded)
    assert written.serial == base.serial + 1
    # The journal is cleared (and its old entries could not apply to the new serial anyway).
    assert store_backend.new_store().read() == written
    other.append(JournalEntry.remove("c"))
    final = store_backend.new_store().read()
    assert final is not None and sorted(final.jobs) == ["a"] and final.serial == written.serial


def test_append_continues_after_reading_a_journal(store_backend: Backend) -> None:
    store = store_backend.new_store()
    store.write(State.new())
    store.append(JournalEntry.put(record("a")))
    second_run = store_backend.new_store()
    assert second_run.read() is not None
    second_run.append(JournalEntry.put(record("b", 2)))
    folded = store_backend.new_store().read()
    assert folded is not None and sorted(folded.jobs) == ["a", "b"]


def test_append_without_any_state_is_refused(store_backend: Backend) -> None:
    with pytest.raises(StateError, match="no state has been written yet"):
        store_backend.new_store().append(JournalEntry.put(record("a")))


def test_lock_is_exclusive_and_names_the_holder(store_backend: Backend) -> None:
    holder, other = store_backend.new_store(), store_backend.new_store()
    lock_id = holder.lock(LockInfo.new("apply", who="alice", host="ci-7", pid=4242), timeout=1)
    started = time.monotonic()
    with pytest.raises(StateLockedError) as caught:
        other.lock(LockInfo.new("plan"), timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 3
    message = str(caught.value)
    for part in (lock_id, "alice@ci-7", "pid 4242", '"apply"'):
        assert part in message
    assert caught.value.lock_info["id"] == lock_id
    info = other.lock_info()
    assert info is not None and (info.id, info.who, info.operation) == (lock_id, "alice", "apply")


def test_unlock_lets_the_next_run_lock(store_backend: Backend) -> None:
    first, second = store_backend.new_store(), store_backend.new_store()
    lock_id = first.lock(LockInfo.new("apply"), timeout=1)
    first.unlock(lock_id)
    assert second.lock_info() is None
    second_id = second.lock(LockInfo.new("apply"), timeout=0.2)
    assert second_id != lock_id
    second.unlock(second_id)


def test_unlock_with_wrong_id_is_refused(store_backend: Backend) -> None:
    store = store_backend.new_store()
    lock_id = store.lock(LockInfo.new("apply"), timeout=1)
    with pytest.raises(StateError, match="does not match"):
        store.unlock("12345")
    store.unlock(lock_id)


def test_force_unlock_checks_the_id(store_backend: Backend) -> None:
    store, other = store_backend.new_store(), store_backend.new_store()
    lock_id = store.lock(LockInfo.new("apply"), timeout=1)
    with pytest.raises(StateError, match="does not match"):
        other.force_unlock("999")
    with pytest.raises(StateLockedError):
        other.lock(LockInfo.new("plan"), timeout=0.1)  # still locked
    store.force_unlock(lock_id)
    assert other.lock_info() is None
    other.unlock(other.lock(LockInfo.new("plan"), timeout=0.2))
    with pytest.raises(StateError, match="not locked"):
        other.force_unlock(lock_id)


def test_concurrent_writers_lose_no_update(store_backend: Backend) -> None:
    setup = store_backend.new_store()
    setup.write(State.new())
    run_a, run_b = store_backend.new_store(), store_backend.new_store()
    state_a, state_b = run_a.read(), run_b.read()
    assert state_a is not None and state_b is not None
    run_a.write(state_a.with_job(record("a")))
    with pytest.raises(StateError, match="changed by someone else"):
        run_b.write(state_b.with_job(record("b", 2)))
    final = store_backend.new_store().read()
    assert final is not None and list(final.jobs) == ["a"]


def test_other_lineage_is_refused(store_backend: Backend) -> None:
    store = store_backend.new_store()
    store.write(State.new())
    with pytest.raises(StateError, match="lineage"):
        store_backend.new_store().write(State.new())


def test_corrupt_state_is_an_error_and_never_overwritten(store_backend: Backend) -> None:
    corrupt = b'{"version": 1, "lineage": "x", "serial": '
    store_backend.put_raw(corrupt)
    store = store_backend.new_store()
    with pytest.raises(StateError) as caught:
        store.read()
    assert store.description in str(caught.value) and "corrupt" in str(caught.value)
    with pytest.raises(StateError):
        store_backend.new_store().write(State.new())
    assert store_backend.get_raw() == corrupt


def test_newer_format_version_is_an_error(store_backend: Backend) -> None:
    newer = b'{"version": 3, "lineage": "x", "serial": 3, "planner_version": "9.0.0", "jobs": {}, "extra": 1}\n'
    store_backend.put_raw(newer)
    with pytest.raises(StateError, match="format version 3, newer than this planner"):
        store_backend.new_store().read()
    with pytest.raises(StateError):
        store_backend.new_store().write(State.new())
    assert store_backend.get_raw() == newer
