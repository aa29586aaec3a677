"""The state file format (DESIGN §6) and the journal record format: strict reading, deterministic writing.

Reading never guesses: corrupt JSON, duplicate keys, a wrong type, an unknown field or a
format version newer than this planner's is a `StateError` naming the file. Writing is
deterministic (sorted keys, 2-space indent, trailing newline) so equal states are equal
bytes. Where the bytes live is the stores' business.

A journal record is self-delimiting and checksummed: ``J`` + the CRC-32 of the JSON (8
lowercase hex digits) + a space + compact JSON + newline. A record torn by a short write
fails its checksum and never passes for a step that happened; a record glued onto a torn
one (an older planner appended after a full disk) is found again by its own header, so a
torn line never corrupts what follows. Plain JSON lines, as older planners wrote, still read.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Mapping
from typing import Any, NoReturn

from planner import __version__, jsoncodec
from planner.errors import StateError
from planner.secrets import at_rest
from planner.state.model import STATE_FORMAT_VERSION, JobRecord, JournalEntry, PendingStep, ReleasedJob, State

_HASH = re.compile(r"^[0-9a-f]{64}$")
_TOP_KEYS = frozenset({"version", "lineage", "serial", "planner_version", "jobs"})
_TOP_OPTIONAL = frozenset({"released"})  # format 2
_RECORD_REQUIRED = frozenset({"name", "project", "location", "spec_hash", "spec", "last_state"})
_RECORD_OPTIONAL = frozenset(
    {"pending", "old_names", "prevent_destroy", "on_remove", "ignore_changes", "rerun_on", "history"}
)
_RELEASED_KEYS = frozenset({"address", "project", "location", "released_at", "how"})
_RELEASE_HOW = frozenset({"cancel", "forget"})
_ON_REMOVE = frozenset({"delete", "cancel", "forget"})
_PENDING_REQUIRED = frozenset({"action", "name", "since"})
_PENDING_OPTIONAL = frozenset({"detail"})
_JOURNAL_KEYS = frozenset({"lineage", "serial", "op", "address", "record"})
_JOURNAL_OPTIONAL = frozenset({"released"})  # op "release" only


class _Invalid(Exception):
    """A structural problem at a JSON path; converted to StateError with the source name."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)


def _fail(where: str, message: str) -> NoReturn:
    raise _Invalid(where, message)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def _dumps_pretty(data: Any) -> bytes:
    """`json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)` + newline, byte for byte
    (jsoncodec: orjson where it writes the same bytes); NaN and infinities are refused."""
    try:
        return jsoncodec.dumps_indented(data) + b"\n"
    except ValueError as err:
        raise ValueError(f"a state may not hold the number inf or nan ({err})") from err


def _dumps_line(data: Any) -> bytes:
    compact = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (compact + "\n").encode()


def _check_keys(obj: Mapping[str, Any], where: str, required: frozenset[str], optional: frozenset[str]) -> None:
    missing = sorted(required - obj.keys())
    if missing:
        _fail(where, f"missing field(s) {', '.join(missing)}")
    unknown = sorted(obj.keys() - required - optional)
    if unknown:
        _fail(where, f"unknown field(s) {', '.join(unknown)}")


def _str(obj: Mapping[str, Any], key: str, where: str, *, nonempty: bool = False) -> str:
    value = obj[key]
    if not isinstance(value, str):
        _fail(f"{where}.{key}", f"must be a string, not {_type_name(value)}")
    if nonempty and not value:
        _fail(f"{where}.{key}", "must not be empty")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(f"{where}.{key}" if where else key, f"must be an integer, not {_type_name(value)}")
    if value < 0:
        _fail(f"{where}.{key}" if where else key, "must not be negative")
    return value


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --- records -------------------------------------------------------------------------------------


def pending_to_json(step: PendingStep | None) -> dict[str, Any] | None:
    if step is None:
        return None
    return {"action": step.action, "name": step.name, "since": step.since, "detail": step.detail}


def record_to_json(rec: JobRecord) -> dict[str, Any]:
    """A record as it appears under `jobs[ADDRESS]` (the address is the key, not a field)."""
    return {
        "name": rec.name,
        "project": rec.project,
        "location": rec.location,
        "spec_hash": rec.spec_hash,
        # No secret at rest: env values (and sensitive variables' values) are kept as salted digests.
        "spec": at_rest(rec.spec if type(rec.spec) is dict else _plain(rec.spec)),
        "last_state": rec.last_state,
        "pending": pending_to_json(rec.pending),
        "old_names": list(rec.old_names),
        "prevent_destroy": rec.prevent_destroy,
        "on_remove": rec.on_remove,
        "ignore_changes": None if rec.ignore_changes is None else list(rec.ignore_changes),
        "rerun_on": None if rec.rerun_on is None else list(rec.rerun_on),
        "history": list(rec.history),
    }


def released_to_json(job: ReleasedJob) -> dict[str, Any]:
    """A released job as it appears under `released[NAME]` (the name is the key)."""
    return {
        "address": job.address,
        "project": job.project,
        "location": job.location,
        "released_at": job.released_at,
        "how": job.how,
    }


def released_from_json(name: str, data: Any, where: str) -> ReleasedJob:
    if not isinstance(data, dict):
        _fail(where, f"must be an object, not {_type_name(data)}")
    _check_keys(data, where, _RELEASED_KEYS, frozenset())
    how = data["how"]
    if how not in _RELEASE_HOW:
        _fail(f"{where}.how", "must be one of cancel, forget")
    return ReleasedJob(
        address=_str(data, "address", where, nonempty=True),
        name=name,
        project=_str(data, "project", where),
        location=_str(data, "location", where),
        released_at=_str(data, "released_at", where),
        how=how,
    )


def _str_list_or_none(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        _fail(f"{where}.{key}", "must be a list of strings or null")
    return tuple(value)


def _plain(value: Any) -> Any:
    """Mappings and sequences (e.g. read-only proxies, tuples) as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"a spec may not hold the number {value}")
    return value


def _pending_from_json(data: Any, where: str) -> PendingStep | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        _fail(where, f"must be an object or null, not {_type_name(data)}")
    _check_keys(data, where, _PENDING_REQUIRED, _PENDING_OPTIONAL)
    name = data["name"]
    if name is not None and not isinstance(name, str):
        _fail(f"{where}.name", f"must be a string or null, not {_type_name(name)}")
    return PendingStep(
        action=_str(data, "action", where, nonempty=True),
        name=name,
        since=_str(data, "since", where),
        detail=_str(data, "detail", where) if "detail" in data else "",
    )


def record_from_json(address: str, data: Any, where: str) -> JobRecord:
    if not isinstance(data, dict):
        _fail(where, f"must be an object, not {_type_name(data)}")
    _check_keys(data, where, _RECORD_REQUIRED, _RECORD_OPTIONAL)
    spec_hash = _str(data, "spec_hash", where)
    if spec_hash and not _HASH.match(spec_hash):
        _fail(f"{where}.spec_hash", "must be 64 lowercase hex digits (a SHA-256), or empty")
    spec = data["spec"]
    if not isinstance(spec, dict):
        _fail(f"{where}.spec", f"must be an object, not {_type_name(spec)}")
    old = data.get("old_names", [])
    if not isinstance(old, list) or not all(isinstance(n, str) for n in old):
        _fail(f"{where}.old_names", "must be a list of strings")
    prevent_destroy = data.get("prevent_destroy", False)
    if not isinstance(prevent_destroy, bool):
        _fail(f"{where}.prevent_destroy", f"must be a boolean, not {_type_name(prevent_destroy)}")
    on_remove = data.get("on_remove", "delete")
    if on_remove not in _ON_REMOVE:
        _fail(f"{where}.on_remove", "must be one of delete, cancel, forget")
    return JobRecord(
        address=address,
        name=_str(data, "name", where),
        project=_str(data, "project", where),
        location=_str(data, "location", where),
        spec_hash=spec_hash,
        spec=spec,
        last_state=_str(data, "last_state", where),
        pending=_pending_from_json(data.get("pending"), f"{where}.pending"),
        old_names=tuple(old),
        prevent_destroy=prevent_destroy,
        on_remove=on_remove,
        ignore_changes=_str_list_or_none(data, "ignore_changes", where),
        rerun_on=_str_list_or_none(data, "rerun_on", where),
        history=_str_list_or_none(data, "history", where) or (),
    )


# --- state files ---------------------------------------------------------------------------------


def state_to_json(state: State) -> dict[str, Any]:
    return {
        "version": state.version,
        "lineage": state.lineage,
        "serial": state.serial,
        "planner_version": state.planner_version,
        "jobs": {addr: record_to_json(state.jobs[addr]) for addr in sorted(state.jobs)},
        "released": {name: released_to_json(state.released[name]) for name in sorted(state.released)},
    }


def write_state(state: State) -> bytes:
    """The state file's bytes: deterministic JSON, jobs sorted by address, trailing newline."""
    if state.version != STATE_FORMAT_VERSION:
        raise StateError(
            f"cannot write state format version {state.version}; this planner writes {STATE_FORMAT_VERSION}"
        )
    for addr, rec in state.jobs.items():
        if rec.address != addr:
            raise StateError(f"state is inconsistent: job keyed {addr!r} has address {rec.address!r}")
    return _dumps_pretty(state_to_json(state))


def _decode_as_written(raw: bytes) -> Any:
    """The value of bytes exactly as `write_state` writes them, else None (the strict parser decides).

    Parsing a 10,000-job state this way takes a tenth of the time. A duplicate key, NaN, a
    huge integer or any formatting but ours makes the bytes differ from the rendering of
    what was parsed, so the strict parser still sees every file that could hold those.
    """
    if not raw.endswith(b"}\n"):
        return None
    data = jsoncodec.loads_or_none(raw)
    if not isinstance(data, dict):
        return None
    pretty = jsoncodec.dumps_pretty(data)
    if pretty is None or len(pretty) + 1 != len(raw) or not raw.startswith(pretty):
        return None
    return data


def _decode(raw: bytes, source: str, what: str) -> Any:
    fast = _decode_as_written(raw)
    if fast is not None:
        return fast
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise StateError(f"{what} {source} is corrupt: not UTF-8 ({err})") from err
    try:
        return _loads(text)
    except ValueError as err:
        raise StateError(
            f"{what} {source} is corrupt: {err}",
            hint=f"restore it from {source}.backup or fix it by hand; planner never overwrites a corrupt state",
        ) from err


def read_state(raw: bytes, source: str) -> State:
    """Parse and validate a state file; any problem is a StateError naming `source`."""
    data = _decode(raw, source, "state file")
    try:
        if not isinstance(data, dict):
            _fail("", f"the top level must be an object, not {_type_name(data)}")
        if "version" not in data:
            _fail("", "missing field version")
        version = _int(data, "version", "")
        if version > STATE_FORMAT_VERSION:
            raise StateError(
                f"state file {source} has format version {version}, newer than this planner "
                f"({__version__}) supports ({STATE_FORMAT_VERSION}); upgrade planner to use it",
            )
        if version < 1:
            _fail("version", f"unsupported format version {version}")
        _check_keys(data, "", _TOP_KEYS, _TOP_OPTIONAL)
        jobs_data = data["jobs"]
        if not isinstance(jobs_data, dict):
            _fail("jobs", f"must be an object, not {_type_name(jobs_data)}")
        jobs: dict[str, JobRecord] = {}
        for addr, rec in jobs_data.items():
            if not addr:
                _fail("jobs", "a job address must not be empty")
            jobs[addr] = record_from_json(addr, rec, f"jobs.{addr}")
        released_data = data.get("released", {})
        if not isinstance(released_data, dict):
            _fail("released", f"must be an object, not {_type_name(released_data)}")
        released = {
            name: released_from_json(name, item, f"released.{name}") for name, item in released_data.items()
        }
        return State(
            lineage=_str(data, "lineage", "", nonempty=True),
            serial=_int(data, "serial", ""),
            jobs=jobs,
            version=version,
            planner_version=_str(data, "planner_version", ""),
            released=released,
        )
    except _Invalid as err:
        raise StateError(f"state file {source} is invalid: {str(err).lstrip('.')}") from err


# --- journal lines -------------------------------------------------------------------------------


_RECORD_HEADER = re.compile(rb"J([0-9a-f]{8}) ")
_OLD_RECORD_START = b'{"address":'  # sorted keys: every line an older planner wrote starts so


def journal_line(entry: JournalEntry, *, lineage: str, serial: int) -> bytes:
    """One journal record (header, compact JSON, newline), tagged with the state it applies on top of."""
    line: dict[str, Any] = {
        "lineage": lineage,
        "serial": serial,
        "op": entry.op,
        "address": entry.address,
        "record": record_to_json(entry.record) if entry.record is not None else None,
    }
    if entry.released is not None:
        line["released"] = {"name": entry.released.name, **released_to_json(entry.released)}
    payload = _dumps_line(line)
    return b"J%08x " % zlib.crc32(payload, 0) + payload


def _framed_payload(line: bytes) -> bytes | None:
    """The JSON of one whole record (no newline), or None if the line is not exactly one."""
    match = _RECORD_HEADER.match(line)
    if match is None:
        return None
    payload = line[match.end() :] + b"\n"
    return payload if zlib.crc32(payload, 0) == int(match.group(1), 16) else None


def journal_records(raw: bytes, source: str) -> tuple[list[tuple[str, int, JournalEntry]], int]:
    """Every record of a journal's bytes, and the length of the part that ends with a whole record.

    An unterminated last line is a torn append and is left out (the store cuts it off before
    its next append). A terminated line that is no record, and has none glued at its end, is
    corruption: a StateError naming `source:LINE`.
    """
    entries: list[tuple[str, int, JournalEntry]] = []
    lines = raw.split(b"\n")
    end = 0
    offset = 0
    for number, line in enumerate(lines[:-1], start=1):
        offset += len(line) + 1
        if line.strip():
            entries.append(read_journal_line(line, f"{source}:{number}", journal=source))
        end = offset
    return entries, end


def read_journal_line(raw: bytes, source: str, *, journal: str | None = None) -> tuple[str, int, JournalEntry]:
    """Parse one journal line into (lineage, serial, entry); StateError naming `source` if invalid.

    A line that starts with a torn record is read from the whole record glued after it.
    """
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.startswith(b"J"):
        payload = _framed_payload(raw)
        if payload is None:
            payload = _glued_record(raw, old_format=False)
        if payload is None:
            raise _journal_corrupt(source, journal, "a torn or damaged record (its checksum does not match)")
        raw = payload[:-1]
    try:
        data = _decode(raw, source, "journal entry in")
    except StateError as err:
        glued = _glued_record(raw)
        if glued is None:
            raise _journal_corrupt(source, journal, "not a journal record") from err
        data = _decode(glued[:-1], source, "journal entry in")
    try:
        if not isinstance(data, dict):
            _fail("", f"must be an object, not {_type_name(data)}")
        _check_keys(data, "", _JOURNAL_KEYS, _JOURNAL_OPTIONAL)
        lineage = _str(data, "lineage", "", nonempty=True)
        serial = _int(data, "serial", "")
        address = _str(data, "address", "", nonempty=True)
        op = data["op"]
        if op == "put":
            rec = record_from_json(address, data["record"], "record")
            return lineage, serial, JournalEntry("put", address, rec)
        if op == "remove":
            if data["record"] is not None:
                _fail("record", "must be null for a remove")
            return lineage, serial, JournalEntry("remove", address, None)
        if op == "release":
            item = data.get("released")
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or data["record"] is not None:
                _fail("released", "a release names its job and carries no record")
            fields = {k: v for k, v in item.items() if k != "name"}
            released = released_from_json(item["name"], fields, "released")
            if released.address != address:
                _fail("released.address", f"differs from the entry's address {address!r}")
            return lineage, serial, JournalEntry.release(released)
        _fail("op", f"must be 'put', 'remove' or 'release', not {op!r}")
    except _Invalid as err:
        raise StateError(f"journal entry in {source} is invalid: {str(err).lstrip('.')}") from err


def _glued_record(line: bytes, *, old_format: bool = True) -> bytes | None:
    """A whole record at the end of a line that starts with a torn one (the record's JSON + newline).

    Plain JSON records are looked for only after a plain one: a checksummed record's own
    JSON must never pass for a record glued after it.
    """
    for match in _RECORD_HEADER.finditer(line, 1):
        payload = _framed_payload(line[match.start() :])
        if payload is not None:
            return payload
    start = line.find(_OLD_RECORD_START, 1) if old_format else -1
    while start > 0:
        if jsoncodec.loads_or_none(line[start:]) is not None:
            return line[start:] + b"\n"
        start = line.find(_OLD_RECORD_START, start + 1)
    return None


def _journal_corrupt(source: str, journal: str | None, problem: str) -> StateError:
    where = journal or source.rpartition(":")[0] or source
    return StateError(
        f"journal {source} is corrupt: {problem}",
        hint=f"the journal {where} holds the steps of a run not yet folded into the state; move it aside "
        "(or delete that line) to go on without them: the next plan finds any job they created by its labels",
    )
