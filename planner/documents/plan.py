"""The plan document: plan_to_json/plan_from_json (the one document behind every rendering and
the saved plan file) and its JSON Schema, schemas/plan.schema.json.

The Plan model is planner.plans.model's; the views (planner.render) and saved plan files
(planner.plans.planfile) take the document from here. Env values are masked unless asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from planner.config.model import Lifecycle, OnRemove
from planner.diff import FieldChange, mask_spec
from planner.documents.schema_parts import (
    COUNT,
    FIELD_CHANGES,
    NULLABLE_AMOUNT,
    NULLABLE_STRING,
    SCHEMA_DIALECT,
    STRING,
    STRINGS,
    closed_object,
    counts,
    field_change_schema,
    nullable,
)
from planner.plans.model import OPTIONAL_COUNTS, Action, Plan, Reason, ResourceChange, Step, StepKind

FORMAT_VERSION: Final = "1.0"


def plan_to_json(plan: Plan, *, show_sensitive: bool = False, for_file: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "planner_version": plan.planner_version,
        "workspace": plan.workspace,
        "created_at": plan.created_at,
        "prior_state": None if plan.lineage is None else {"lineage": plan.lineage, "serial": plan.serial},
        "live_fingerprint": plan.live_fingerprint,
        "config_hash": plan.config_hash,
        "targets": list(plan.targets),
        "summary": plan.summary(),
        "has_changes": plan.has_changes,
        "resource_changes": [_change_json(c, show_sensitive) for c in plan.changes],  # a file holds no secret
        "warnings": list(plan.warnings),
    }
    if for_file:
        doc["fingerprint_entries"] = [list(e) for e in plan.fingerprint_entries]
    return doc


def _change_json(change: ResourceChange, show_sensitive: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "address": change.address,
        "action": change.action.value,
        "action_reason": change.reason.value,
        "reason": change.reason_text,
        "project": change.project,
        "location": change.location,
        "display_name": change.display_name,
        "job": None if change.job_name is None else {"name": change.job_name, "state": change.job_state},
        "steps": [s.to_json() for s in change.steps],
        "changes": [c.to_json(show_sensitive=show_sensitive) for c in change.changes],
        "replace_paths": list(change.replace_paths),
        "after": (change.after if show_sensitive else mask_spec(change.after)) if change.after is not None else None,
        "after_hash": change.after_hash,
        "lifecycle": None if change.lifecycle is None else change.lifecycle.to_json(),
        "notes": list(change.notes),
        "warnings": list(change.warnings),
    }
    # Only priced plans carry cost (planner.pricing); unpriced documents stay as they were.
    if change.cost is not None:
        doc["cost"] = change.cost
    return doc


def plan_from_json(doc: Mapping[str, Any]) -> Plan:
    """Rebuild a Plan from a saved plan file (written with for_file=True)."""
    changes = []
    for c in doc["resource_changes"]:
        lc = c.get("lifecycle")
        lifecycle = (
            None
            if lc is None
            else Lifecycle(
                prevent_destroy=bool(lc["preventDestroy"]),
                ignore_changes=tuple(lc["ignoreChanges"]),
                on_remove=OnRemove(lc["onRemove"]),
                rerun_on=tuple(lc["rerunOn"]),
            )
        )
        job = c.get("job") or {}
        changes.append(
            ResourceChange(
                address=c["address"],
                action=Action(c["action"]),
                reason=Reason(c["action_reason"]),
                project=c["project"],
                location=c["location"],
                display_name=c.get("display_name", ""),
                job_name=job.get("name"),
                job_state=job.get("state"),
                steps=tuple(Step(StepKind(s["kind"]), s.get("job")) for s in c["steps"]),
                changes=tuple(
                    FieldChange(
                        f["path"],
                        f["kind"],
                        f.get("before"),
                        f.get("after"),
                        f.get("forces_replacement", True),
                        bool(f.get("ignored", False)),
                    )
                    for f in c["changes"]
                ),
                after=c.get("after"),
                after_hash=c.get("after_hash"),
                lifecycle=lifecycle,
                notes=tuple(c.get("notes", ())),
                warnings=tuple(c.get("warnings", ())),
                cost=c.get("cost"),
            )
        )
    prior = doc.get("prior_state") or {}
    return Plan(
        workspace=doc["workspace"],
        changes=tuple(changes),
        lineage=prior.get("lineage"),
        serial=prior.get("serial"),
        live_fingerprint=doc["live_fingerprint"],
        config_hash=doc["config_hash"],
        created_at=doc.get("created_at", ""),
        targets=tuple(doc.get("targets", ())),
        warnings=tuple(doc.get("warnings", ())),
        planner_version=doc.get("planner_version", ""),
        fingerprint_entries=tuple(tuple(e) for e in doc.get("fingerprint_entries", ())),
    )


# -- JSON Schema ------------------------------------------------------------------------------


def plan_schema() -> dict[str, Any]:
    """JSON Schema of `plan_to_json(plan)` and `plan_to_json(plan, for_file=True)`."""
    actions = [a.value.replace("-", "_") for a in Action]
    summary = counts(actions, optional=OPTIONAL_COUNTS, description="number of changes per action")
    lifecycle = closed_object(
        {
            "preventDestroy": {"type": "boolean"},
            "ignoreChanges": STRINGS,
            "onRemove": {"enum": ["delete", "cancel", "forget"]},
            "rerunOn": STRINGS,
        }
    )
    change = closed_object(
        {
            "address": STRING,
            "action": {"enum": [a.value for a in Action]},
            "action_reason": {"enum": [r.value for r in Reason]},
            "reason": {"type": "string", "description": "action_reason in words"},
            "project": STRING,
            "location": STRING,
            "display_name": STRING,
            "job": nullable(
                closed_object(
                    {"name": STRING, "state": NULLABLE_STRING},
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
            "changes": FIELD_CHANGES,
            "replace_paths": STRINGS,
            "after": nullable({"type": "object", "description": "canonical desired spec"}),
            "after_hash": NULLABLE_STRING,
            "lifecycle": nullable(lifecycle),
            "notes": STRINGS,
            "warnings": STRINGS,
        }
    )
    # Priced plans only (planner.pricing): not required, so unpriced documents validate too.
    change["properties"]["cost"] = nullable(_cost_schema())
    properties: dict[str, Any] = {
        "format_version": {"const": FORMAT_VERSION},
        "planner_version": STRING,
        "workspace": STRING,
        "created_at": STRING,
        "prior_state": nullable(closed_object({"lineage": STRING, "serial": COUNT})),
        "live_fingerprint": STRING,
        "config_hash": STRING,
        "targets": STRINGS,
        "summary": summary,
        "has_changes": {"type": "boolean"},
        "resource_changes": {"type": "array", "items": {"$ref": "#/$defs/resource_change"}},
        "warnings": STRINGS,
    }
    schema = closed_object(properties)
    # Saved plan files only (`planner plan -o`): not required, so both forms validate.
    schema["properties"]["fingerprint_entries"] = {
        "type": "array",
        "description": "saved plan files only: what the plan depends on, for the stale-plan check",
        "items": STRINGS,
    }
    schema["properties"]["config"] = closed_object(
        {"files": STRINGS, "hash": STRING},
        description="saved plan files only: the desired-state files the plan was made from",
    )
    schema["properties"]["variables"] = closed_object(
        {
            "values": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "salt": STRING,
            "sensitive": {"type": "object", "additionalProperties": STRING},
        },
        description="saved plan files only: the non-sensitive variables' values; sensitive ones as salted digests",
    )
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "planner plan",
        "description": "`planner plan --format json` output and saved plan files (`-o`), which add fingerprint_entries",
        **schema,
        "$defs": {"resource_change": change, "field_change": field_change_schema()},
    }


def _cost_schema() -> dict[str, Any]:
    money = NULLABLE_AMOUNT
    pool = closed_object(
        {
            "machine_type": STRING,
            "replica_count": COUNT,
            "accelerator_type": NULLABLE_STRING,
            "accelerator_count": COUNT,
            "boot_disk_type": STRING,
            "boot_disk_gb": COUNT,
        }
    )
    estimate = closed_object(
        {
            "hourly_usd": {**money, "description": "USD per hour while it runs; null when a price is missing"},
            "max_usd": {**money, "description": "hourly_usd for hours_bound hours; null when a price is missing"},
            "hours_bound": {"type": "number", "description": "scheduling.timeout in hours (7 days when unset)"},
            "provisioning": {"enum": ["on-demand", "spot", "flex-start"]},
            "region": STRING,
            "price_source": {"type": "string", "description": "`bundled` or the --price-file path"},
            "prices_date": {"type": "string", "description": "retrieved_at of the prices used"},
            "pools": {"type": "array", "items": pool},
            "persistent_resource": NULLABLE_STRING,
            "missing": {**STRINGS, "description": "prices not found: no price for X in R in prices of D"},
            "notes": STRINGS,
        }
    )
    return closed_object(
        {
            "after": nullable({**estimate, "description": "the job this change creates"}),
            "before": nullable({**estimate, "description": "the job this change cancels, deletes or replaces"}),
            "stops_running": {"type": "boolean", "description": "the before job is active, so its rate stops"},
        },
        description="cost of the change (priced plans only)",
    )
