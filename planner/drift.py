"""Drift: how reality moved away from what planner last applied (read only, for scheduled CI).

Pure: compares prior state with live jobs (and, separately, with the configuration,
which is "not yet applied" rather than drift). Never writes state, never mutates jobs.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from planner import __version__
from planner.canonical import canonical_spec, spec_hash
from planner.desired import Desired
from planner.diff import FieldChange, field_changes
from planner.refresh import Live, LiveJob
from planner.secrets import align
from planner.state.model import State

FORMAT_VERSION: Final = "1.0"

# Terminal states that mean a job stopped without succeeding (reported as drift when new).
_BAD_TERMINAL: Final = frozenset({"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"})


class DriftKind(enum.Enum):
    IN_SYNC = "in_sync"
    CHANGED = "changed"
    MISSING = "missing"
    TERMINAL = "terminal"
    PENDING = "pending"
    UNMANAGED = "unmanaged"

    @property
    def is_drift(self) -> bool:
        return self is not DriftKind.IN_SYNC


@dataclass(frozen=True)
class DriftItem:
    kind: DriftKind
    address: str | None
    job_name: str | None
    project: str
    location: str
    detail: str
    live_state: str | None = None
    recorded_state: str | None = None
    changes: tuple[FieldChange, ...] = ()  # last applied spec → live spec

    def sort_key(self) -> tuple[str, str]:
        return (self.address or "~", self.job_name or "")


@dataclass(frozen=True)
class ConfigPending:
    """The configuration differs from what was last applied: not drift, an unapplied change."""

    address: str
    detail: str
    changes: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class DriftReport:
    workspace: str
    items: tuple[DriftItem, ...]
    config_pending: tuple[ConfigPending, ...]
    managed_seen: int
    jobs_seen: int
    created_at: str = ""
    ignored: tuple[str, ...] = ()
    planner_version: str = __version__

    @property
    def has_drift(self) -> bool:
        return any(i.kind.is_drift for i in self.items)

    def count(self, kind: DriftKind) -> int:
        return sum(1 for i in self.items if i.kind is kind)

    def summary(self) -> dict[str, int]:
        return {k.value: self.count(k) for k in DriftKind}


def detect_drift(
    prior: State | None,
    live: Live,
    *,
    workspace: str,
    desired: Desired | None = None,
    ignore: Iterable[str] = (),
    include_unmanaged: bool = False,
    created_at: str = "",
) -> DriftReport:
    """Classify every job in state and every labelled (or, optionally, unlabelled) live job.

    `ignore` takes glob patterns matched against addresses and against changed field paths.
    """
    patterns = tuple(ignore)
    records = dict(prior.jobs) if prior is not None else {}
    items: list[DriftItem] = []
    claimed: set[str] = set()
    for address, record in sorted(records.items()):
        if _matches(address, patterns):
            continue
        claimed.add(record.name)
        claimed.update(record.old_names)
        job = live.jobs.get(record.name)
        base: dict[str, Any] = {
            "address": address,
            "job_name": record.name,
            "project": record.project,
            "location": record.location,
        }
        if record.pending is not None:
            items.append(
                DriftItem(
                    DriftKind.PENDING,
                    detail=f"an interrupted apply left `{record.pending.action}` unfinished; run apply to finish it",
                    live_state=job.state if job else None,
                    recorded_state=record.last_state,
                    **base,
                )
            )
            continue
        if job is None:
            items.append(
                DriftItem(
                    DriftKind.MISSING,
                    detail="in state, but gone from Vertex AI",
                    recorded_state=record.last_state,
                    **base,
                )
            )
            continue
        same = bool(record.spec_hash) and job.matches(record.spec_hash)
        changes = (
            ()
            if same
            else tuple(
                c
                for c in field_changes(record.spec, align(record.spec, dict(job.spec)))
                if not _matches(c.path, patterns)
            )
        )
        if changes:
            items.append(
                DriftItem(
                    DriftKind.CHANGED,
                    detail="live job differs from the last applied spec",
                    live_state=job.state,
                    recorded_state=record.last_state,
                    changes=changes,
                    **base,
                )
            )
        elif job.state in _BAD_TERMINAL and job.state != record.last_state:
            message = f": {job.error_message}" if job.error_message else ""
            items.append(
                DriftItem(
                    DriftKind.TERMINAL,
                    detail=f"{job.state} since the last apply{message}",
                    live_state=job.state,
                    recorded_state=record.last_state,
                    **base,
                )
            )
        else:
            items.append(
                DriftItem(
                    DriftKind.IN_SYNC, detail="in sync", live_state=job.state, recorded_state=record.last_state, **base
                )
            )
    for job in live.jobs.values():
        if job.name in claimed:
            continue
        item = _unmanaged(job, workspace, include_unmanaged)
        if item is not None and not _matches(item.address or "", patterns):
            items.append(item)
    items.sort(key=DriftItem.sort_key)
    pending = _config_pending(desired, records, patterns) if desired is not None else ()
    managed_seen = sum(1 for j in live.jobs.values() if j.managed)
    return DriftReport(
        workspace=workspace,
        items=tuple(items),
        config_pending=pending,
        managed_seen=managed_seen,
        jobs_seen=len(live.jobs),
        created_at=created_at,
        ignored=patterns,
    )


def _unmanaged(job: LiveJob, workspace: str, include_unmanaged: bool) -> DriftItem | None:
    if job.managed and job.workspace == workspace:
        detail = "labelled as managed by planner for this workspace, but absent from state"
    elif not job.managed and include_unmanaged:
        detail = "not managed by planner (no planner labels)"
    else:
        return None
    return DriftItem(
        DriftKind.UNMANAGED,
        address=job.address,
        job_name=job.name,
        project=job.project,
        location=job.location,
        detail=detail,
        live_state=job.state,
    )


def _config_pending(
    desired: Desired, records: Mapping[str, Any], patterns: tuple[str, ...]
) -> tuple[ConfigPending, ...]:
    out = []
    for address in sorted(set(desired.jobs) | set(records)):
        if _matches(address, patterns):
            continue
        job = desired.jobs.get(address)
        record = records.get(address)
        if job is None:
            out.append(ConfigPending(address, "removed from config, not yet applied"))
            continue
        canonical = canonical_spec(job.body)
        if record is None:
            out.append(ConfigPending(address, "new in config, not yet applied"))
        elif spec_hash(canonical) != record.spec_hash:
            out.append(
                ConfigPending(
                    address,
                    "config differs from the last applied spec",
                    field_changes(record.spec, align(record.spec, canonical)),
                )
            )
    return tuple(out)


def _matches(text: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(text, p) for p in patterns)
