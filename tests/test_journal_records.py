"""Journal records: self-delimiting and checksummed, so a torn record never corrupts what follows."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from state_fixtures import record

from planner.errors import StateError
from planner.state import JournalEntry, LocalStore, State
from planner.state.fileformat import journal_line, journal_records, record_to_json

LINEAGE = "00000000-0000-4000-8000-000000000001"


def line(address: str, n: int) -> bytes:
    return journal_line(JournalEntry.put(record(address, n)), lineage=LINEAGE, serial=3)


def old_line(address: str, n: int) -> bytes:
    """A journal line as planner 0.1 wrote it: plain compact JSON."""
    doc = {"address": address, "lineage": LINEAGE, "op": "put", "record": record_to_json(record(address, n))}
    return (json.dumps({**doc, "serial": 3}, sort_keys=True, separators=(",", ":")) + "\n").encode()


def addresses(raw: bytes) -> list[str]:
    return [entry.address for _l, _s, entry in journal_records(raw, "j")[0]]


def test_a_record_glued_onto_a_torn_one_is_read_and_the_torn_one_dropped() -> None:
    a, b, c = line("a", 1), line("b", 2), line("c", 3)
    assert addresses(a + b[: len(b) // 2] + c) == ["a", "c"]
    # The same for lines an older planner wrote (plain JSON), torn and glued.
    assert addresses(old_line("a", 1) + old_line("b", 2)[:-30] + old_line("c", 3)) == ["a", "c"]


def test_a_torn_tail_is_left_out_and_its_offset_is_the_last_whole_record() -> None:
    a, b = line("a", 1), line("b", 2)
    entries, end = journal_records(a + b[:-1], "j")
    assert [e.address for _l, _s, e in entries] == ["a"] and end == len(a)


def test_a_damaged_whole_record_is_an_error_whose_hint_names_the_journal(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "default.json")
    store.write(State.new())
    store.append(JournalEntry.put(record("a")))
    store.close()
    raw = bytearray(store.journal_path.read_bytes())
    raw[40] ^= 0x01  # one flipped bit inside the JSON
    store.journal_path.write_bytes(bytes(raw) + line("b", 2))
    with pytest.raises(StateError) as info:
        LocalStore(store.path).read()
    assert f"{store.journal_path}:1 is corrupt" in info.value.message
    assert info.value.hint is not None and f"the journal {store.journal_path} " in info.value.hint
    assert Path(str(store.journal_path)).exists()


def test_concurrent_appends_share_fsyncs_and_each_is_durable_when_it_returns(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    store = LocalStore(tmp_path / "default.json")
    store.write(State.new())
    calls: list[int] = []
    durable = [0]  # the journal's size as of the last completed fsync
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        size = os.fstat(fd).st_size
        real_fsync(fd)
        calls.append(fd)
        durable[0] = max(durable[0], size)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    barrier = threading.Barrier(16)
    late: list[str] = []

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(20):
            address = f"job-{n}-{i}"
            store.append(JournalEntry.put(record(address, n * 100 + i)))
            synced = store.journal_path.read_bytes()[: durable[0]]
            if f'"address":"{address}"'.encode() not in synced:
                late.append(address)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert late == []  # no append returned before an fsync covered its record
    folded = LocalStore(store.path).read()
    assert folded is not None and len(folded.jobs) == 320
    assert 0 < len(calls) < 320  # records written meanwhile shared an fsync
