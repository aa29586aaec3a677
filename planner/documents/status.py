"""The status document's JSON Schema, schemas/status.schema.json (the document itself is
`planner.render.status_view.status_to_json`, which every status rendering is made from)."""

from __future__ import annotations

from typing import Any

from planner.documents.schema_parts import SCHEMA_DIALECT, closed_object


def status_schema() -> dict[str, Any]:
    """JSON Schema of `status_to_json(report)`."""
    nullable = {"type": ["string", "null"]}
    job = closed_object(
        {
            "address": {**nullable, "description": "the job's address; null for a labelled job without one"},
            "name": {**nullable, "description": "projects/P/locations/L/customJobs/ID; null if never created"},
            "job_id": nullable,
            "project": {"type": "string"},
            "location": {"type": "string"},
            "state": {
                "type": "string",
                "description": "JOB_STATE_* as Vertex reports it, MISSING (in state, job gone) or "
                "NOT_CREATED (in the configuration, never applied)",
            },
            "display_name": {"type": "string"},
            "create_time": nullable,
            "start_time": nullable,
            "end_time": nullable,
            "run_seconds": {
                "type": ["number", "null"],
                "minimum": 0,
                "description": "how long the job has run (active) or ran (terminal); null before it starts",
            },
            "machine": {"type": "string", "description": "machine type, accelerators and replicas per worker pool"},
            "error": nullable,
            "console_url": nullable,
            "in_state": {"type": "boolean", "description": "false for a labelled job the state does not know"},
            "hourly_usd": {
                "type": ["number", "null"],
                "minimum": 0,
                "description": "the job's rate at the price book's prices (USD/h); null without a price",
            },
            "cost_usd": {
                "type": ["number", "null"],
                "minimum": 0,
                "description": "cost so far: hours run × hourly_usd; null without a price or before the job runs",
            },
            "no_price": {**nullable, "description": "why there is no rate (which price the book lacks)"},
        }
    )
    location = closed_object(
        {"project": {"type": "string"}, "location": {"type": "string"}, "jobs": {"type": "integer", "minimum": 0}}
    )
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "planner status",
        "description": "Output of `planner status --format json`.",
        **closed_object(
            {
                "format_version": {"type": "string", "pattern": r"^1\.\d+$"},
                "planner_version": {"type": "string"},
                "workspace": {"type": "string"},
                "created_at": {"type": "string"},
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
