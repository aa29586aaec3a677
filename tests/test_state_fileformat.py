"""State model and file format: deterministic bytes, strict reading, journal lines."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_fixtures import record

from planner import __version__
from planner.errors import StateError
from planner.state import (
    STATE_FORMAT_VERSION,
    JobRecord,
    JournalEntry,
    PendingStep,
    State,
    apply_entries,
    read_state,
    write_state,
)
from planner.state.fileformat import journal_line, read_journal_line, state_to_json

LINEAGE = "00000000-0000-4000-8000-000000000001"


def sample() -> State:
    rec = replace(
        record("train", 7),
        pending=PendingStep("delete", "projects/p/locations/us-central1/customJobs/6", "2026-11-26T10:00:00Z"),
        old_names=("projects/p/locations/us-central1/customJobs/6",),
        prevent_destroy=True,
        on_remove="cancel",
    )
    return State(lineage=LINEAGE, serial=12, jobs={"zeta": record("zeta", 9), "train": rec})


def test_written_bytes_are_deterministic_sorted_and_end_with_a_newline() -> None:
    data = write_state(sample())
    text = data.decode()
    assert text.endswith("}\n") and text.startswith('{\n  "jobs": {\n    "train": {')
    assert text.index('"train"') < text.index('"zeta"')
    doc = json.loads(text)
    assert list(doc) == sorted(doc)
    assert doc["version"] == STATE_FORMAT_VERSION and doc["serial"] == 12 and doc["planner_version"] == __version__
    assert doc["jobs"]["train"]["pending"] == {
        "action": "delete",
        "name": "projects/p/locations/us-central1/customJobs/6",
        "since": "2026-11-26T10:00:00Z",
        "detail": "",
    }
    reordered = State(lineage=LINEAGE, serial=12, jobs=dict(reversed(list(sample().jobs.items()))))
    assert write_state(reordered) == data


def test_round_trip() -> None:
    state = sample()
    assert read_state(write_state(state), "s.json") == state


def test_design_example_without_optional_fields_reads() -> None:
    doc = {
        "version": 1,
        "lineage": LINEAGE,
        "serial": 12,
        "planner_version": "0.1.0",
        "jobs": {
            "resnet-train": {
                "name": "projects/p/locations/us-central1/customJobs/123",
                "project": "p",
                "location": "us-central1",
                "spec_hash": "a" * 64,
                "spec": {},
                "last_state": "JOB_STATE_RUNNING",
                "pending": None,
            }
        },
    }
    state = read_state(json.dumps(doc).encode(), "s.json")
    rec = state.jobs["resnet-train"]
    assert (rec.address, rec.old_names, rec.pending, rec.on_remove) == ("resnet-train", (), None, "delete")


def _doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads(write_state(sample()))
    doc.update(changes)
    return doc


def _job(**changes: Any) -> dict[str, Any]:
    doc = _doc()
    doc["jobs"]["train"].update(changes)
    return doc


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "corrupt"),
        (b"{", "corrupt"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "top level must be an object"),
        (b'{"version": 1, "version": 1}', "duplicate key"),
        (b'{"version": NaN}', "NaN"),
        (json.dumps(_doc(serial="12")).encode(), "serial: must be an integer"),
        (json.dumps(_doc(serial=True)).encode(), "serial: must be an integer"),
        (json.dumps(_doc(serial=-1)).encode(), "must not be negative"),
        (json.dumps(_doc(lineage="")).encode(), "lineage: must not be empty"),
        (json.dumps(_doc(jobs=[])).encode(), "jobs: must be an object"),
        (json.dumps(_doc(extra=1)).encode(), "unknown field(s) extra"),
        (json.dumps({"version": 1}).encode(), "missing field(s)"),
        (json.dumps(_doc(version=0)).encode(), "unsupported format version 0"),
        (json.dumps(_job(spec_hash="abc")).encode(), "jobs.train.spec_hash"),
        (json.dumps(_job(spec=[])).encode(), "jobs.train.spec: must be an object"),
        (json.dumps(_job(old_names="x")).encode(), "old_names: must be a list of strings"),
        (json.dumps(_job(pending={"action": "cancel"})).encode(), "jobs.train.pending: missing field(s) name"),
        (json.dumps(_job(on_remove="explode")).encode(), "on_remove"),
        (json.dumps(_job(prevent_destroy="yes")).encode(), "prevent_destroy"),
        (json.dumps(_job(surprise=1)).encode(), "jobs.train: unknown field(s) surprise"),
    ],
)
def test_invalid_files_are_errors_naming_the_file(raw: bytes, message: str) -> None:
    with pytest.raises(StateError) as caught:
        read_state(raw, "state/default.json")
    assert "state/default.json" in str(caught.value)
    assert message in str(caught.value)


def test_newer_version_says_to_upgrade() -> None:
    with pytest.raises(StateError, match=r"format version 3, newer than this planner.*upgrade planner"):
        read_state(json.dumps(_doc(version=3, future="x")).encode(), "state/default.json")


def test_journal_lines_round_trip_and_are_one_line() -> None:
    put = JournalEntry.put(sample().jobs["train"])
    line = journal_line(put, lineage=LINEAGE, serial=4)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert read_journal_line(line, "j:1") == (LINEAGE, 4, put)
    remove = JournalEntry.remove("train")
    assert read_journal_line(journal_line(remove, lineage=LINEAGE, serial=4), "j:2") == (LINEAGE, 4, remove)
    with pytest.raises(StateError, match="j:3"):
        read_journal_line(b'{"op": "put"}', "j:3")


def test_journal_entry_validation() -> None:
    with pytest.raises(ValueError):
        JournalEntry("put", "a", None)
    with pytest.raises(ValueError):
        JournalEntry("put", "a", record("b"))
    with pytest.raises(ValueError):
        JournalEntry("remove", "a", record("a"))


def test_model_is_immutable_and_apply_entries_replays_in_order() -> None:
    new = State.new(lambda: "fixed")
    assert (new.lineage, new.serial, dict(new.jobs)) == ("fixed", 0, {})
    one = new.with_job(record("a"))
    assert not new.jobs and list(one.jobs) == ["a"]
    assert one.without_job("missing") is one
    entries = [JournalEntry.put(record("b", 2)), JournalEntry.remove("a"), JournalEntry.put(record("a", 3))]
    folded = apply_entries(one, entries)
    assert (folded.lineage, folded.serial) == (one.lineage, one.serial)
    assert folded.jobs["a"].name.endswith("/3") and sorted(folded.jobs) == ["a", "b"]
    assert apply_entries(one, []) is one


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(
    addresses=st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), unique=True, max_size=4),
    spec=st.dictionaries(_text, _json, max_size=4),
    serial=st.integers(0, 10**6),
    detail=_text,
)
def test_any_state_round_trips(addresses: list[str], spec: dict[str, Any], serial: int, detail: str) -> None:
    jobs = {
        a: JobRecord(a, f"projects/p/locations/l/customJobs/{i}", "p", "l", "f" * 64, spec, "JOB_STATE_QUEUED",
                     PendingStep("wait", None, "2026-01-01T00:00:00Z", detail) if i % 2 else None)
        for i, a in enumerate(addresses)
    }
    state = State(lineage=LINEAGE, serial=serial, jobs=jobs)
    data = write_state(state)
    assert data == (json.dumps(state_to_json(state), sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
    assert read_state(data, "s.json") == state
    assert write_state(read_state(data, "s.json")) == data


def test_non_finite_numbers_are_never_written() -> None:
    state = State.new().with_job(replace(record("a"), spec={"x": float("inf")}))
    with pytest.raises(ValueError, match="inf"):
        write_state(state)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text()
        | st.floats(allow_nan=False, allow_infinity=False),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
        max_leaves=30,
    )
)
def test_state_bytes_are_the_standard_librarys_indented_json(value: object) -> None:
    from planner import jsoncodec

    expected = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False).encode()
    assert jsoncodec.dumps_indented(value) == expected


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text() | st.sampled_from(["train:1.3", "a,2e5", "[3.0]", "img:1.0E2"])
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=30,
)


@given(_JSON_VALUES)
def test_spec_hash_bytes_are_the_standard_librarys_compact_json(value: object) -> None:
    """Strings that look like floats ("train:1.3") no longer send a value to the slow path, and
    the bytes stay the standard library's."""
    from planner import jsoncodec

    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert jsoncodec.dumps_sorted(value) == expected
