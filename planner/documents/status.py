"""The status document's JSON Schema, schemas/status.schema.json (the document itself is
`planner.render.status_view.status_to_json`, which every status rendering is made from)."""

from __future__ import annotations

from typing import Any

from planner.documents.schema_parts import (
    COUNT,
    NULLABLE_AMOUNT,
    NULLABLE_STRING,
    SCHEMA_DIALECT,
    STRING,
    closed_object,
)


def status_schema() -> dict[str, Any]:
    """JSON Schema of `status_to_json(report)`."""
    job = closed_object(
        {
            "address": {**NULLABLE_STRING, "description": "the job's address; null for a labelled job without one"},
            "name": {**NULLABLE_STRING, "description": "projects/P/locations/L/customJobs/ID; null if never created"},
            "job_id": NULLABLE_STRING,
            "project": STRING,
            "location": STRING,
            "state": {
                "type": "string",
                "description": "JOB_STATE_* as Vertex reports it, MISSING (in state, job gone) or "
                "NOT_CREATED (in the configuration, never applied)",
            },
            "display_name": STRING,
            "create_time": NULLABLE_STRING,
            "start_time": NULLABLE_STRING,
            "end_time": NULLABLE_STRING,
            "run_seconds": {
                **NULLABLE_AMOUNT,
                "description": "how long the job has run (active) or ran (terminal); null before it starts",
            },
            "machine": {"type": "string", "description": "machine type, accelerators and replicas per worker pool"},
            "error": NULLABLE_STRING,
            "console_url": NULLABLE_STRING,
            "in_state": {"type": "boolean", "description": "false for a labelled job the state does not know"},
            "hourly_usd": {
                **NULLABLE_AMOUNT,
                "description": "the job's rate at the price book's prices (USD/h); null without a price",
            },
            "cost_usd": {
                **NULLABLE_AMOUNT,
                "description": "cost so far: hours run × hourly_usd; null without a price or before the job runs",
            },
            "no_price": {**NULLABLE_STRING, "description": "why there is no rate (which price the book lacks)"},
        }
    )
    location = closed_object({"project": STRING, "location": STRING, "jobs": COUNT})
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "planner status",
        "description": "Output of `planner status --format json`.",
        **closed_object(
            {
                "format_version": {"type": "string", "pattern": r"^1\.\d+$"},
                "planner_version": STRING,
                "workspace": STRING,
                "created_at": STRING,
                "summary": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 1},
                    "description": "number of jobs per state",
                },
                "locations": {"type": "array", "items": {"$ref": "#/$defs/location"}},
                "jobs": {"type": "array", "items": {"$ref": "#/$defs/job"}},
            }
        ),
        "$defs": {"job": job, "location": location},
    }
