"""Local store specifics: file modes, the journal's torn and corrupt lines, flock dying with its process."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from state_fixtures import child_script, record

from planner.errors import StateError, StateLockedError, UsageError
from planner.state import GcsStore, JournalEntry, LocalStore, LockInfo, State, open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_and_new_directory_is_0700(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "new" / "state" / "default.json")
    first = store.write(State.new())
    store.write(first)
    store.append(JournalEntry.put(record("a")))
    lock_id = store.lock(LockInfo.new("apply"), timeout=1)
    assert mode(store.path.parent) == 0o700
    for path in (store.path, store.backup_path, store.journal_path, store.lock_path):
        assert mode(path) == 0o600, path
    store.unlock(lock_id)
    assert not store.lock_path.exists()
    assert not list(store.path.parent.glob("*.tmp")) and not list(store.path.parent.glob(".*.tmp"))


def test_existing_directory_mode_is_left_alone(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    LocalStore(directory / "default.json").write(State.new())
    assert mode(directory) == 0o755


def test_torn_last_journal_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "default.json")
    store.write(State.new())
    store.append(JournalEntry.put(record("a")))
    store.append(JournalEntry.put(record("b", 2)))
    store.close()
    with open(store.journal_path, "ab") as fh:  # what a crash in the middle of a write leaves
        fh.write(b'{"address":"c","lineage":"')

    crashed = LocalStore(store.path)
    folded = crashed.read()
    assert folded is not None and sorted(folded.jobs) == ["a", "b"]
    crashed.append(JournalEntry.put(record("d", 4)))
    assert store.journal_path.read_bytes().count(b"\n") == 3
    again = LocalStore(store.path).read()
    assert again is not None and sorted(again.jobs) == ["a", "b", "d"]


def test_corrupt_middle_journal_line_is_an_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "default.json")
    store.write(State.new())
    store.append(JournalEntry.put(record("a")))
    store.close()
    with open(store.journal_path, "ab") as fh:
        fh.write(b"garbage\n")
    store.append(JournalEntry.put(record("b", 2)))
    with pytest.raises(StateError, match=r"default\.json\.journal:2"):
        LocalStore(store.path).read()


def test_journal_left_by_a_crash_after_the_write_is_not_replayed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "default.json")
    base = store.write(State.new())
    store.append(JournalEntry.put(record("a")))
    leftover = store.journal_path.read_bytes()
    folded = store.read()
    assert folded is not None
    written = store.write(folded.without_job("a"))  # the run decided to drop "a" again
    store.journal_path.write_bytes(leftover)  # a crash before the journal was cleared
    again = LocalStore(store.path).read()
    assert again == written and again.serial == base.serial + 1 and not again.jobs


def test_parallel_appends_from_threads_all_land(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "default.json")
    store.write(State.new())

    def worker(n: int) -> None:
        for i in range(25):
            store.append(JournalEntry.put(record(f"job-{n}-{i}", n * 100 + i)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    folded = LocalStore(store.path).read()
    assert folded is not None and len(folded.jobs) == 200


def test_write_refuses_a_state_changed_on_disk_since_it_was_read(tmp_path: Path) -> None:
    path = tmp_path / "default.json"
    first = LocalStore(path).write(State.new())
    mine = LocalStore(path)
    state = mine.read()
    assert state is not None
    LocalStore(path).write(first)  # someone else: serial 2
    with pytest.raises(StateError, match="serial 2, this run started from serial 1"):
        mine.write(state)


def _hold_lock_in_child(path: Path, operation: str = "apply") -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        child_script(
            f"""
            import sys, time
            from pathlib import Path
            from planner.state import LocalStore, LockInfo
            store = LocalStore(Path({str(path)!r}))
            print(store.lock(LockInfo.new({operation!r}, who="bob"), timeout=5), flush=True)
            time.sleep(60)
            """
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lock_id = child.stdout.readline().strip()
    assert lock_id, "child failed to lock"
    return child, lock_id


def test_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    path = tmp_path / "default.json"
    child, lock_id = _hold_lock_in_child(path)
    try:
        store = LocalStore(path)
        with pytest.raises(StateLockedError) as caught:
            store.lock(LockInfo.new("plan"), timeout=0.2)
        assert f"pid {child.pid}" in str(caught.value) and lock_id in str(caught.value)
        # A running holder's lock cannot be broken from outside; it is named instead.
        with pytest.raises(StateLockedError, match="running process"):
            store.force_unlock(lock_id)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert store.lock_info() is None  # stale holder info is not a lock
    new_id = store.lock(LockInfo.new("plan"), timeout=1)
    info = store.lock_info()
    assert info is not None and info.id == new_id and info.pid == os.getpid()
    store.unlock(new_id)


def test_force_unlock_clears_stale_holder_info(tmp_path: Path) -> None:
    path = tmp_path / "default.json"
    child, lock_id = _hold_lock_in_child(path)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    store = LocalStore(path)
    with pytest.raises(StateError, match="does not match"):
        store.force_unlock("not-" + lock_id)
    store.force_unlock(lock_id)
    assert not store.lock_path.exists()


def test_open_store_chooses_the_location(tmp_path: Path) -> None:
    default = open_store(None, "prod", base_dir=tmp_path / "state")
    assert isinstance(default, LocalStore) and default.path == tmp_path / "state" / "prod.json"
    explicit = open_store(str(tmp_path / "x.json"), "prod", base_dir=tmp_path)
    assert isinstance(explicit, LocalStore) and explicit.path == tmp_path / "x.json"
    in_dir = open_store(str(tmp_path), "prod", base_dir=Path("unused"))
    assert isinstance(in_dir, LocalStore) and in_dir.path == tmp_path / "prod.json"
    remote = open_store("gs://my-bucket/team/a/", "prod", base_dir=tmp_path)
    try:
        assert isinstance(remote, GcsStore) and remote.description == "gs://my-bucket/team/a/prod.json"
    finally:
        remote.close()
    with pytest.raises(UsageError, match="workspace"):
        open_store(None, "../etc", base_dir=tmp_path)
    with pytest.raises(UsageError, match="unsupported state location"):
        open_store("s3://bucket/x", "default", base_dir=tmp_path)
    with pytest.raises(UsageError, match="invalid bucket"):
        open_store("gs://B/x", "default", base_dir=tmp_path)


def test_a_lock_released_while_we_look_at_its_holder_is_taken_even_without_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "default.json")
    real = store._lock._try_lock
    attempts: list[int] = []

    def busy_once(info: LockInfo) -> bool:
        attempts.append(1)
        return False if len(attempts) == 1 else real(info)  # the holder lets go right after

    monkeypatch.setattr(store._lock, "_try_lock", busy_once)
    monkeypatch.setattr(store._lock, "_read_holder", lambda: None)
    lock_id = store.lock(LockInfo.new("plan"), timeout=0)
    assert len(attempts) == 2
    store.unlock(lock_id)
