"""The drift document: drift_to_json (env values masked) and its JSON Schema, schemas/drift.schema.json.

The drift report is planner.drift's; the views (planner.render) show this document.
"""

from __future__ import annotations

from typing import Any

from planner.documents.schema_parts import (
    COUNT,
    FIELD_CHANGES,
    NULLABLE_STRING,
    SCHEMA_DIALECT,
    STRING,
    STRINGS,
    closed_object,
    counts,
    field_change_schema,
)
from planner.drift import FORMAT_VERSION, OPTIONAL_KINDS, ConfigPending, DriftItem, DriftKind, DriftReport


def drift_to_json(report: DriftReport, *, show_sensitive: bool = False) -> dict[str, Any]:
    """The drift report as a versioned document (schemas/drift.schema.json); env values masked."""
    return {
        "format_version": FORMAT_VERSION,
        "planner_version": report.planner_version,
        "workspace": report.workspace,
        "created_at": report.created_at,
        "has_drift": report.has_drift,
        "summary": report.summary(),
        "coverage": {"managed": report.managed_seen, "seen": report.jobs_seen},
        "items": [_item_json(i, show_sensitive) for i in report.items],
        "config_pending": [_pending_json(p, show_sensitive) for p in report.config_pending],
        "ignored": list(report.ignored),
    }


def _item_json(item: DriftItem, show_sensitive: bool) -> dict[str, Any]:
    return {
        "kind": item.kind.value,
        "address": item.address,
        "job_name": item.job_name,
        "project": item.project,
        "location": item.location,
        "detail": item.detail,
        "live_state": item.live_state,
        "recorded_state": item.recorded_state,
        "changes": [c.to_json(show_sensitive=show_sensitive) for c in item.changes],
    }


def _pending_json(pending: ConfigPending, show_sensitive: bool) -> dict[str, Any]:
    return {
        "address": pending.address,
        "detail": pending.detail,
        "changes": [c.to_json(show_sensitive=show_sensitive) for c in pending.changes],
    }


# -- JSON Schema ------------------------------------------------------------------------------


def drift_schema() -> dict[str, Any]:
    """JSON Schema of `drift_to_json(report)`."""
    item = closed_object(
        {
            "kind": {"enum": [k.value for k in DriftKind]},
            "address": NULLABLE_STRING,
            "job_name": NULLABLE_STRING,
            "project": STRING,
            "location": STRING,
            "detail": STRING,
            "live_state": NULLABLE_STRING,
            "recorded_state": NULLABLE_STRING,
            "changes": {**FIELD_CHANGES, "description": "last applied spec (before) to live spec (after)"},
        }
    )
    pending = closed_object(
        {
            "address": STRING,
            "detail": STRING,
            "changes": {**FIELD_CHANGES, "description": "last applied spec (before) to configuration (after)"},
        },
        description="the configuration differs from what was last applied: not drift",
    )
    schema = closed_object(
        {
            "format_version": {"const": FORMAT_VERSION},
            "planner_version": STRING,
            "workspace": STRING,
            "created_at": STRING,
            "has_drift": {"type": "boolean"},
            "summary": counts(
                [k.value for k in DriftKind],
                optional={k.value for k in OPTIONAL_KINDS},
                description="number of jobs per class",
            ),
            "coverage": closed_object(
                {"managed": COUNT, "seen": COUNT},
                description="live jobs labelled as managed by planner, of all live jobs read",
            ),
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
            "config_pending": {"type": "array", "items": {"$ref": "#/$defs/config_pending"}},
            "ignored": {**STRINGS, "description": "--ignore patterns"},
        }
    )
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "planner drift report",
        "description": "`planner drift --format json` output",
        **schema,
        "$defs": {"item": item, "config_pending": pending, "field_change": field_change_schema()},
    }
