"""The desired-state model: what the validated YAML files say should exist.

`load` and `validate` produce it; `diff` and `plan` consume it. Bodies are CustomJob
JSON as the API takes it (camelCase, int64 as strings, durations as "Ns"), with the
user's labels only — planner's own identity labels are added at create time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from planner.errors import Diagnostic, SourceLocation


class OnRemove(enum.Enum):
    DELETE = "delete"
    CANCEL = "cancel"
    FORGET = "forget"


@dataclass(frozen=True)
class Lifecycle:
    """planner's own per-job settings; never sent to the API."""

    prevent_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()
    on_remove: OnRemove = OnRemove.DELETE
    rerun_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class DesiredJob:
    address: str
    project: str
    location: str
    body: Mapping[str, Any]
    lifecycle: Lifecycle = Lifecycle()
    source: SourceLocation | None = None
    # Source position of every value in body, keyed by dotted path ("jobSpec.workerPoolSpecs[0].replicaCount").
    positions: Mapping[str, SourceLocation] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Desired:
    jobs: Mapping[str, DesiredJob]  # sorted by address
    files: tuple[str, ...] = ()
    config_hash: str = ""  # sha256 over the normalised desired jobs, for stale-plan checks
    warnings: tuple[Diagnostic, ...] = ()  # e.g. hardware outside planner's catalog; never block a plan
