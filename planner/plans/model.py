"""The plan model: Action, Reason, Step, ResourceChange, PlanOptions and Plan, as values.

The engine (planner.plans.engine) makes a Plan; its versioned JSON document and schema are
planner.documents.plan's; the views (planner.render) show it. Nothing here decides or reads.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from planner import __version__
from planner.config.model import Lifecycle
from planner.diff import FieldChange

OPTIONAL_COUNTS: Final = frozenset({"update"})  # summary keys added after format 1.0


class Action(enum.Enum):
    CREATE = "create"
    REPLACE = "replace"
    CANCEL = "cancel"
    DELETE = "delete"
    ADOPT = "adopt"
    FORGET = "forget"
    UPDATE = "update"  # state only: the job's lifecycle settings changed
    NOOP = "no-op"


class Reason(enum.Enum):
    NEW = "new"
    FOUND_BY_LABELS = "found_by_labels"
    DELETED_OUTSIDE = "deleted_outside_planner"
    RERUN = "rerun"
    SPEC_CHANGED = "spec_changed"
    REMOVED = "removed_from_config"
    ALREADY_GONE = "already_gone"
    DUPLICATE = "duplicate"
    REPLACED_CLEANUP = "replaced_job_cleanup"
    UNCHANGED = "unchanged"
    MOVED = "moved"  # project or location changed, the spec did not
    REPLACE_REQUESTED = "replace_requested"  # --replace ADDR
    LIFECYCLE_CHANGED = "lifecycle_changed"

    def text(self, state: str | None = None) -> str:
        texts = {
            Reason.NEW: "new",
            Reason.FOUND_BY_LABELS: "found by labels",
            Reason.DELETED_OUTSIDE: "deleted outside planner",
            Reason.RERUN: f"rerun after {state or 'a terminal state'}",
            Reason.SPEC_CHANGED: "spec changed",
            Reason.REMOVED: "removed from config",
            Reason.ALREADY_GONE: "already gone",
            Reason.DUPLICATE: "duplicate labelled job (left by an interrupted run)",
            Reason.REPLACED_CLEANUP: "replaced job not yet deleted",
            Reason.UNCHANGED: "unchanged",
            Reason.MOVED: "project or location changed",
            Reason.REPLACE_REQUESTED: "replacement requested with --replace",
            Reason.LIFECYCLE_CHANGED: "lifecycle changed (state only)",
        }
        return texts[self]


class StepKind(enum.Enum):
    CREATE = "create"
    CANCEL = "cancel"
    DELETE = "delete"  # waits for the job to be terminal first
    ADOPT = "adopt"  # state only
    FORGET = "forget"  # state only
    UPDATE = "update"  # state only: save the job's lifecycle settings


@dataclass(frozen=True)
class Step:
    kind: StepKind
    job: str | None = None  # resource name acted on; None for create

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "job": self.job}


@dataclass(frozen=True)
class ResourceChange:
    address: str
    action: Action
    reason: Reason
    project: str
    location: str
    display_name: str = ""
    job_name: str | None = None  # the live job acted on (replaced, cancelled, deleted, adopted)
    job_state: str | None = None
    steps: tuple[Step, ...] = ()
    changes: tuple[FieldChange, ...] = ()
    after: Mapping[str, Any] | None = None  # canonical desired spec (create/replace/adopt)
    after_hash: str | None = None
    lifecycle: Lifecycle | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # {"after", "before", "stops_running"} from planner.pricing.cost.annotate; None: not priced.
    cost: Mapping[str, Any] | None = None

    @property
    def reason_text(self) -> str:
        return self.reason.text(self.job_state)

    @property
    def replace_paths(self) -> tuple[str, ...]:
        return tuple(c.path for c in self.changes if c.forces_replacement)

    def touches_job(self) -> bool:
        """True if applying this change cancels or deletes an existing job."""
        return any(s.kind in (StepKind.CANCEL, StepKind.DELETE) for s in self.steps)


@dataclass(frozen=True)
class PlanOptions:
    workspace: str = "default"
    targets: frozenset[str] = frozenset()
    created_at: str = ""
    replace: frozenset[str] = frozenset()  # --replace: addresses to re-create although unchanged


@dataclass(frozen=True)
class Plan:
    workspace: str
    changes: tuple[ResourceChange, ...]
    lineage: str | None
    serial: int | None
    live_fingerprint: str
    config_hash: str
    created_at: str = ""
    targets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    planner_version: str = __version__
    fingerprint_entries: tuple[tuple[str, ...], ...] = field(default=(), compare=False)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.changes)

    def summary(self) -> dict[str, int]:
        counts = {a.value.replace("-", "_"): self.count(a) for a in Action}
        # Counted only when present, so a plan without them reads exactly as format 1.0 did.
        return {k: n for k, n in counts.items() if n or k not in OPTIONAL_COUNTS}
