"""The pieces the documents' JSON Schemas share: the dialect, closed objects, the committed text form.

Each document module (plan, drift, status) builds its own schema from these; what a
schema describes is that module's business.
"""

from __future__ import annotations

import json
from typing import Any, Final

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

STRING: Final = {"type": "string"}
NULLABLE_STRING: Final = {"type": ["string", "null"]}
COUNT: Final = {"type": "integer", "minimum": 0}
NULLABLE_AMOUNT: Final = {"type": ["number", "null"], "minimum": 0}
STRINGS: Final = {"type": "array", "items": {"type": "string"}}
FIELD_CHANGES: Final = {"type": "array", "items": {"$ref": "#/$defs/field_change"}}


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


def counts(names: list[str], *, optional: frozenset[str] | set[str], description: str) -> dict[str, Any]:
    """A summary's counts by name; the optional ones are present only when nonzero."""
    schema = closed_object({name: COUNT for name in names}, description=description)
    schema["required"] = [k for k in schema["required"] if k not in optional]
    return schema


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [{"type": "null"}, schema]}


def field_change_schema() -> dict[str, Any]:
    """One changed leaf (planner.diff.FieldChange.to_json), as plan and drift documents hold it."""
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
