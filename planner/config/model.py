"""The desired-state model: what the validated YAML files say should exist.

`load` and `validate` produce it; `diff` and `plan` consume it. Bodies are CustomJob
JSON as the API takes it (camelCase, int64 as strings, durations as "Ns"), with the
user's labels only — planner's own identity labels are added at create time.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
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

    def to_json(self) -> dict[str, Any]:
        """As a plan document and the config hash hold it (camelCase, as written in YAML)."""
        return {
            "preventDestroy": self.prevent_destroy,
            "ignoreChanges": list(self.ignore_changes),
            "onRemove": self.on_remove.value,
            "rerunOn": list(self.rerun_on),
        }


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


class _LazyHash:
    """`Desired.config_hash`: given as the hash, or as a function that computes it when first read
    (`validate` gives `planner.config.digest`'s: a plan records the hash, `planner validate` never
    reads it)."""

    def __get__(self, obj: Desired | None, owner: type | None = None) -> str:
        if obj is None:
            return ""  # the default
        value: str | Callable[[], str] = obj.__dict__["_config_hash"]
        if not isinstance(value, str):
            value = obj.__dict__["_config_hash"] = value()
        return value

    def __set__(self, obj: Desired, value: str | Callable[[], str]) -> None:
        obj.__dict__["_config_hash"] = value  # (only __init__ sets it: the dataclass is frozen)


@dataclass(frozen=True)
class Desired:
    jobs: Mapping[str, DesiredJob]  # sorted by address
    files: tuple[str, ...] = ()
    config_hash: _LazyHash = _LazyHash()  # sha256 over the normalised desired jobs, for stale-plan checks
    warnings: tuple[Diagnostic, ...] = ()  # e.g. hardware outside planner's catalog; never block a plan
