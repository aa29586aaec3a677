"""The JSON view: the versioned documents behind every rendering, and their JSON Schemas.

A plan's document comes from `planner.plans.engine.plan_to_json`; the drift document is built
here. The text and markdown views render these same documents. The schemas in
`schemas/` are `format_schema(plan_schema())` and `format_schema(drift_schema())`.
"""

from __future__ import annotations

import json
from typing import Any, Final

from planner.diff import FieldChange
from planner.drift import FORMAT_VERSION as DRIFT_FORMAT_VERSION
from planner.drift import OPTIONAL_KINDS, ConfigPending, DriftItem, DriftKind, DriftReport
from planner.plans.engine import FORMAT_VERSION as PLAN_FORMAT_VERSION
from planner.plans.engine import OPTIONAL_COUNTS, Action, Plan, Reason, StepKind, plan_to_json

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def render_plan_json(plan: Plan, *, show_sensitive: bool = False) -> str:
    return dump(plan_to_json(plan, show_sensitive=show_sensitive))


def render_drift_json(report: DriftReport, *, show_sensitive: bool = False) -> str:
    return dump(drift_to_json(report, show_sensitive=show_sensitive))


def dump(doc: Any) -> str:
    """Two-space indented JSON in the document's own key order, with a trailing newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def drift_to_json(report: DriftReport, *, show_sensitive: bool = False) -> dict[str, Any]:
    """The drift report as a versioned document (schemas/drift.schema.json); env values masked."""
    return {
        "format_version": DRIFT_FORMAT_VERSION,
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
        "changes": _changes_json(item.changes, show_sensitive),
    }


def _pending_json(pending: ConfigPending, show_sensitive: bool) -> dict[str, Any]:
    return {
        "address": pending.address,
        "detail": pending.detail,
        "changes": _changes_json(pending.changes, show_sensitive),
    }


def _changes_json(changes: tuple[FieldChange, ...], show_sensitive: bool) -> list[dict[str, Any]]:
    return [c.to_json(show_sensitive=show_sensitive) for c in changes]


# -- JSON Schemas ------------------------------------------------------------------------------


def format_schema(schema: dict[str, Any]) -> str:
    """The committed form of a schema: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def closed_object(properties: dict[str, Any], *, description: str | None = None) -> dict[str, Any]:
    """A JSON Schema object with exactly these properties, all required (the documents' shape)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [{"type": "null"}, schema]}


_STRING: Final = {"type": "string"}
_NULLABLE_STRING: Final = {"type": ["string", "null"]}
_COUNT: Final = {"type": "integer", "minimum": 0}
_STRINGS: Final = {"type": "array", "items": {"type": "string"}}


def _field_change_schema() -> dict[str, Any]:
    schema = closed_object(
        {
            "path": {
                "type": "string",
                "description": "dotted field path, e.g. jobSpec.workerPoolSpecs[0].replicaCount",
            },
            "kind": {"enum": ["add", "remove", "change"]},
            "before": {"description": "value before (absent: null); env values masked unless --show-sensitive"},
            "after": {"description": "value after (absent: null); env values masked unless --show-sensitive"},
            "forces_replacement": {"type": "boolean"},
            "sensitive": {"type": "boolean", "description": "the value is or holds an env value"},
        },
        description="one changed leaf",
    )
    # Optional (absent: false), so documents without ignored paths are as before.
    schema["properties"]["ignored"] = {
        "const": True,
        "description": "under lifecycle.ignoreChanges: decided nothing, but the replacing job takes this value",
    }
    return schema


def _drift_summary_schema() -> dict[str, Any]:
    schema = closed_object({k.value: _COUNT for k in DriftKind}, description="number of jobs per class")
    optional = {k.value for k in OPTIONAL_KINDS}
    schema["required"] = [k for k in schema["required"] if k not in optional]  # present when nonzero
    return schema


def plan_schema() -> dict[str, Any]:
    """JSON Schema of `plan_to_json(plan)` and `plan_to_json(plan, for_file=True)`."""
    summary = closed_object(
        {a.value.replace("-", "_"): _COUNT for a in Action}, description="number of changes per action"
    )
    summary["required"] = [k for k in summary["required"] if k not in OPTIONAL_COUNTS]  # present when nonzero
    lifecycle = closed_object(
        {
            "preventDestroy": {"type": "boolean"},
            "ignoreChanges": _STRINGS,
            "onRemove": {"enum": ["delete", "cancel", "forget"]},
            "rerunOn": _STRINGS,
        }
    )
    change = closed_object(
        {
            "address": _STRING,
            "action": {"enum": [a.value for a in Action]},
            "action_reason": {"enum": [r.value for r in Reason]},
            "reason": {"type": "string", "description": "action_reason in words"},
            "project": _STRING,
            "location": _STRING,
            "display_name": _STRING,
            "job": _nullable(
                closed_object(
                    {"name": _STRING, "state": _NULLABLE_STRING},
                    description="the live job acted on (replaced, cancelled, deleted, adopted)",
                )
            ),
            "steps": {
                "type": "array",
                "description": "what apply does, in order",
                "items": closed_object(
                    {
                        "kind": {"enum": [k.value for k in StepKind]},
                        "job": {
                            "type": ["string", "null"],
                            "description": "resource name acted on; null for create",
                        },
                    }
                ),
            },
            "changes": {"type": "array", "items": {"$ref": "#/$defs/field_change"}},
            "replace_paths": _STRINGS,
            "after": _nullable({"type": "object", "description": "canonical desired spec"}),
            "after_hash": _NULLABLE_STRING,
            "lifecycle": _nullable(lifecycle),
            "notes": _STRINGS,
            "warnings": _STRINGS,
        }
    )
    # Priced plans only (planner.pricing): not required, so unpriced documents validate too.
    change["properties"]["cost"] = _nullable(_cost_schema())
    properties: dict[str, Any] = {
        "format_version": {"const": PLAN_FORMAT_VERSION},
        "planner_version": _STRING,
        "workspace": _STRING,
        "created_at": _STRING,
        "prior_state": _nullable(closed_object({"lineage": _STRING, "serial": _COUNT})),
        "live_fingerprint": _STRING,
        "config_hash": _STRING,
        "targets": _STRINGS,
        "summary": summary,
        "has_changes": {"type": "boolean"},
        "resource_changes": {"type": "array", "items": {"$ref": "#/$defs/resource_change"}},
        "warnings": _STRINGS,
    }
    schema = closed_object(properties)
    # Saved plan files only (`planner plan -o`): not required, so both forms validate.
    schema["properties"]["fingerprint_entries"] = {
        "type": "array",
        "description": "saved plan files only: what the plan depends on, for the stale-plan check",
        "items": _STRINGS,
    }
    schema["properties"]["config"] = closed_object(
        {"files": _STRINGS, "hash": _STRING},
        description="saved plan files only: the desired-state files the plan was made from",
    )
    schema["properties"]["variables"] = closed_object(
        {
            "values": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "salt": _STRING,
            "sensitive": {"type": "object", "additionalProperties": _STRING},
        },
        description="saved plan files only: the non-sensitive variables' values; sensitive ones as salted digests",
    )
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "planner plan",
        "description": "`planner plan --format json` output and saved plan files (`-o`), which add fingerprint_entries",
        **schema,
        "$defs": {"resource_change": change, "field_change": _field_change_schema()},
    }


def _cost_schema() -> dict[str, Any]:
    money = {"type": ["number", "null"], "minimum": 0}
    pool = closed_object(
        {
            "machine_type": _STRING,
            "replica_count": _COUNT,
            "accelerator_type": _NULLABLE_STRING,
            "accelerator_count": _COUNT,
            "boot_disk_type": _STRING,
            "boot_disk_gb": _COUNT,
        }
    )
    estimate = closed_object(
        {
            "hourly_usd": {**money, "description": "USD per hour while it runs; null when a price is missing"},
            "max_usd": {**money, "description": "hourly_usd for hours_bound hours; null when a price is missing"},
            "hours_bound": {"type": "number", "description": "scheduling.timeout in hours (7 days when unset)"},
            "provisioning": {"enum": ["on-demand", "spot", "flex-start"]},
            "region": _STRING,
            "price_source": {"type": "string", "description": "`bundled` or the --price-file path"},
            "prices_date": {"type": "string", "description": "retrieved_at of the prices used"},
            "pools": {"type": "array", "items": pool},
            "persistent_resource": _NULLABLE_STRING,
            "missing": {**_STRINGS, "description": "prices not found: no price for X in R in prices of D"},
            "notes": _STRINGS,
        }
    )
    return closed_object(
        {
            "after": _nullable({**estimate, "description": "the job this change creates"}),
            "before": _nullable({**estimate, "description": "the job this change cancels, deletes or replaces"}),
            "stops_running": {"type": "boolean", "description": "the before job is active, so its rate stops"},
        },
        description="cost of the change (priced plans only)",
    )


def drift_schema() -> dict[str, Any]:
    """JSON Schema of `drift_to_json(report)`."""
    item = closed_object(
        {
            "kind": {"enum": [k.value for k in DriftKind]},
            "address": _NULLABLE_STRING,
            "job_name": _NULLABLE_STRING,
            "project": _STRING,
            "location": _STRING,
            "detail": _STRING,
            "live_state": _NULLABLE_STRING,
            "recorded_state": _NULLABLE_STRING,
            "changes": {
                "type": "array",
                "description": "last applied spec (before) to live spec (after)",
                "items": {"$ref": "#/$defs/field_change"},
            },
        }
    )
    pending = closed_object(
        {
            "address": _STRING,
            "detail": _STRING,
            "changes": {
                "type": "array",
                "description": "last applied spec (before) to configuration (after)",
                "items": {"$ref": "#/$defs/field_change"},
            },
        },
        description="the configuration differs from what was last applied: not drift",
    )
    schema = closed_object(
        {
            "format_version": {"const": DRIFT_FORMAT_VERSION},
            "planner_version": _STRING,
            "workspace": _STRING,
            "created_at": _STRING,
            "has_drift": {"type": "boolean"},
            "summary": _drift_summary_schema(),
            "coverage": closed_object(
                {"managed": _COUNT, "seen": _COUNT},
                description="live jobs labelled as managed by planner, of all live jobs read",
            ),
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
            "config_pending": {"type": "array", "items": {"$ref": "#/$defs/config_pending"}},
            "ignored": {**_STRINGS, "description": "--ignore patterns"},
        }
    )
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "planner drift report",
        "description": "`planner drift --format json` output",
        **schema,
        "$defs": {"item": item, "config_pending": pending, "field_change": _field_change_schema()},
    }
