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
from planner.config.matrix import by_address as sweep_addresses
from planner.config.model import Desired
from planner.diff import FieldChange, field_changes, placement_changes, strip_paths
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
    RELEASED = "released"  # let go on purpose (onRemove cancel/forget): still labelled, not drift

    @property
    def is_drift(self) -> bool:
        return self not in (DriftKind.IN_SYNC, DriftKind.RELEASED)


OPTIONAL_KINDS: Final = frozenset({DriftKind.RELEASED})  # summary keys added after format 1.0


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
        # Released jobs are counted only when present, so a report without them reads as before.
        return {k.value: n for k in DriftKind if (n := self.count(k)) or k not in OPTIONAL_KINDS}


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
    elsewhere = _labelled_elsewhere(live, records, workspace)
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
        if job is None and address in elsewhere:
            # Gone from where state says, but a job labelled for the address runs elsewhere.
            job = elsewhere[address]
            claimed.add(job.name)
            base["job_name"] = job.name
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
        # Where a job runs is part of what it is: live somewhere other than state says is a change.
        placement = tuple(
            c
            for c in placement_changes(
                (record.project, record.location), (job.project, job.location), forces_replacement=False
            )
            if not _matches(c.path, patterns)
        )
        detail = (
            "live job runs in another project or location than state says"
            if placement and not changes
            else "live job differs from the last applied spec"
        )
        changes = placement + changes
        if changes:
            items.append(
                DriftItem(
                    DriftKind.CHANGED,
                    detail=detail,
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
    released = prior.released if prior is not None else {}
    for job in live.jobs.values():
        if job.name in claimed:
            continue
        let_go = released.get(job.name)
        if let_go is not None:
            if not _matches(let_go.address, patterns):
                items.append(
                    DriftItem(
                        DriftKind.RELEASED,
                        address=let_go.address,
                        job_name=job.name,
                        project=job.project,
                        location=job.location,
                        detail=f"released by onRemove: {let_go.how} at {let_go.released_at}; no longer managed",
                        live_state=job.state,
                    )
                )
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


def _labelled_elsewhere(live: Live, records: Mapping[str, Any], workspace: str) -> dict[str, LiveJob]:
    """Per recorded address, the newest job labelled for it that runs outside the recorded place."""
    out: dict[str, LiveJob] = {}
    for address, jobs in sweep_addresses(live.by_address(workspace), records).items():
        record = records.get(address)
        if record is None:
            continue
        others = [j for j in jobs if (j.project, j.location) != (record.project, record.location)]
        if others:
            out[address] = max(others, key=lambda j: (j.create_time, j.name))
    return out


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
        else:
            placement = placement_changes((record.project, record.location), (job.project, job.location))
            changes: tuple[FieldChange, ...] = ()
            if spec_hash(canonical) != record.spec_hash:
                # Paths under ignoreChanges are never applied on their own: not pending either.
                ignored = job.lifecycle.ignore_changes
                before, after = record.spec, align(record.spec, canonical)
                if ignored:
                    changes = field_changes(strip_paths(before, ignored), strip_paths(after, ignored))
                else:
                    changes = field_changes(before, after)
            if changes:
                out.append(ConfigPending(address, "config differs from the last applied spec", placement + changes))
            elif placement:
                out.append(ConfigPending(address, "config moves the job to another project or location", placement))
    return tuple(out)


def _matches(text: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(text, p) for p in patterns)
