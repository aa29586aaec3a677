"""Generates the JSON Schemas in schemas/ from the CustomJob field tables and a commented overlay.

Inputs (both committed under schemas/): ``custom_jobs.fields.txt``, the StackQL field tables
(the Fields table and the INSERT manifest listing), and ``overlay.yaml``, the facts the tables
lack, each citing the discovery document. Outputs: ``custom_job.schema.json`` (what a user may
set on a CustomJob) and ``desired-state.schema.json`` (planner's file format, DESIGN §3).
Validating documents against them is `validate`'s business.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from planner.apimodel import TERMINAL_STATES
from planner.config.editor_schema import editor_schema
from planner.config.variables import declarations_schema
from planner.documents.schema_parts import format_schema as dump  # the committed form of every schema
from planner.errors import PlannerError, SourceLocation

FIELDS_FILE = "schemas/custom_jobs.fields.txt"
OVERLAY_FILE = "schemas/overlay.yaml"
CUSTOM_JOB_SCHEMA = "schemas/custom_job.schema.json"
DESIRED_STATE_SCHEMA = "schemas/desired-state.schema.json"
PACKAGED_SCHEMA = "planner/data/desired-state.schema.json"
PACKAGED_CUSTOM_JOB_SCHEMA = "planner/data/custom_job.schema.json"

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ADDRESS_PATTERN = "^[a-z][a-z0-9-]{0,62}$"
# google-duration, plus the friendlier forms planner accepts ("90m", "2h", "1h30m", "7d").
DURATION_PATTERN = r"^(([0-9]+(\.[0-9]+)?|\.[0-9]+)(ns|us|µs|ms|s|m|h|d))+$"
INT64_MAX = 9_223_372_036_854_775_807
INT32_MIN = -2_147_483_648
INT32_MAX = 2_147_483_647

SCALAR_TYPES = frozenset({"string", "integer", "boolean", "object"})


class SchemaSourceError(PlannerError):
    """The field tables or the overlay cannot be turned into a schema: a user error (exit 1) that
    names the line of the field tables when it is about one."""

    def __init__(self, message: str, *, line: int | None = None):
        super().__init__(message, location=SourceLocation(FIELDS_FILE, line, 1) if line is not None else None)


@dataclass
class Field:
    """One field of the tables: its JSON type, list item type, members, and table description."""

    name: str
    type: str  # string | integer | boolean | object | array
    items: Field | None = None  # for arrays
    members: dict[str, Field] = field(default_factory=dict)  # for objects with known members
    description: str = ""


@dataclass
class FieldTables:
    """What custom_jobs.fields.txt says: top-level fields with nested members, and output-only names."""

    fields: dict[str, Field]
    output_only: frozenset[str]

    def paths(self) -> dict[str, str]:
        """Every field path ("a.b[].c") with its type, "array" paths listing their items as "x[]"."""
        out: dict[str, str] = {}

        def walk(prefix: str, f: Field) -> None:
            out[prefix] = f.type
            if f.items is not None:
                walk(prefix + "[]", f.items)
            for name, member in f.members.items():
                walk(f"{prefix}.{name}", member)

        for name, f in self.fields.items():
            walk(name, f)
        return out


# --- parsing the tables ------------------------------------------------------------------------

_ROW = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*) \| (?P<type>[a-z]+) \| (?P<desc>.*?) ?\|?$")
_NAME = re.compile(r"^- name: (?P<name>\S+)$")
_ITEM_NAME = re.compile(r"^- - name: (?P<name>\S+)$")
_LEAF = re.compile(r"^value: (?P<type>\S+)$")
_SCALAR_ITEM = re.compile(r"^- (?P<type>string|integer|boolean|object)$")


def parse_fields_table(text: str) -> dict[str, tuple[str, str]]:
    """The Fields table: name -> (datatype, description)."""
    lines = text.splitlines()
    try:
        start = lines.index("Fields")
        end = lines.index("Methods", start)
    except ValueError as exc:
        raise SchemaSourceError("the tables have no 'Fields' ... 'Methods' section") from exc
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[start + 1 : end]:
        match = _ROW.match(line.strip())
        if match is None or match["name"] == "Name":
            continue
        rows[match["name"]] = (match["type"], match["desc"].strip())
    if not rows:
        raise SchemaSourceError("the Fields table has no rows")
    return rows


def _tokens(text: str, where: list[int] | None = None) -> list[tuple[str, str]]:
    """The manifest listing's tokens; `where`, if given, receives each token's line number."""
    lines = text.splitlines()
    try:
        start = lines.index("- name: your_resource_model_name")
    except ValueError as exc:
        raise SchemaSourceError("the tables have no manifest listing") from exc
    if lines[start + 1] != "props:":
        raise SchemaSourceError("the manifest listing does not start with 'props:'")
    tokens: list[tuple[str, str]] = []
    for number, line in enumerate(lines[start + 2 :], start + 3):
        line = line.strip()
        if where is not None:
            where[len(tokens) :] = [number]
        if m := _NAME.match(line):
            tokens.append(("name", m["name"]))
        elif m := _ITEM_NAME.match(line):
            tokens.append(("item", m["name"]))
        elif line == "value:":
            tokens.append(("nested", ""))
        elif m := _LEAF.match(line):
            tokens.append(("leaf", m["type"]))
        elif m := _SCALAR_ITEM.match(line):
            tokens.append(("scalar-item", m["type"]))
        else:
            break
    return tokens


def parse_tables(text: str, overlay: Mapping[str, Any]) -> FieldTables:
    """Rebuild the nested fields from the flattened manifest, using the overlay's member lists."""
    rows = parse_fields_table(text)
    members: dict[str, list[str]] = {k: list(v) for k, v in overlay.get("members", {}).items()}
    members[""] = list(rows)
    root = Field("", "object")
    # Each scope: (path, Field whose members are being filled).
    stack: list[tuple[str, Field]] = [("", root)]
    token_lines: list[int] = []
    tokens = _tokens(text, token_lines)
    i = 0
    while i < len(tokens):
        kind, name = tokens[i]
        if kind not in ("name", "item"):
            raise SchemaSourceError(f"manifest: unexpected {kind} {name!r} (token {i})", line=token_lines[i])
        if kind == "name":
            while stack and name not in members.get(stack[-1][0], ()):
                stack.pop()
            if not stack:
                raise SchemaSourceError(
                    f"manifest: field {name!r} belongs to no object in overlay members", line=token_lines[i]
                )
        path, parent = stack[-1]
        if name in parent.members:
            raise SchemaSourceError(f"manifest: {path or 'top level'} lists {name!r} twice", line=token_lines[i])
        here = f"{path}.{name}" if path else name
        if i + 1 >= len(tokens):
            raise SchemaSourceError(f"manifest: {here} has no value", line=token_lines[i])
        kind2, value = tokens[i + 1]
        if kind2 == "leaf":
            if value not in SCALAR_TYPES:
                raise SchemaSourceError(f"manifest: {here} has unknown type {value!r}", line=token_lines[i + 1])
            parent.members[name] = Field(name, value)
            i += 2
            continue
        if kind2 != "nested" or i + 2 >= len(tokens):
            raise SchemaSourceError(f"manifest: {here} has no type", line=token_lines[i])
        kind3, first = tokens[i + 2]
        if kind3 == "scalar-item":
            parent.members[name] = Field(name, "array", items=Field("", first))
            i += 3
        elif kind3 == "item":
            item = Field("", "object")
            parent.members[name] = Field(name, "array", items=item)
            stack.append((here + "[]", item))
            _check_member(members, here + "[]", first)
            # The first member of a list item arrives as "- - name: X": read it as a name in the new scope.
            tokens[i + 2] = ("name", first)
            i += 2
        elif kind3 == "name":
            obj = Field(name, "object")
            parent.members[name] = obj
            stack.append((here, obj))
            i += 2
            _check_member(members, here, first)
        else:
            raise SchemaSourceError(f"manifest: {here} has an unexpected {kind3}", line=token_lines[i])
    fields = root.members
    _check_members_complete(fields, members)
    for name, (datatype, description) in rows.items():
        if name not in fields:
            raise SchemaSourceError(f"manifest lists no {name!r} from the Fields table")
        if fields[name].type != datatype:
            raise SchemaSourceError(f"{name}: Fields table says {datatype}, manifest says {fields[name].type}")
        fields[name].description = description
    output_only = frozenset(n for n, (_, d) in rows.items() if d.startswith("Output only.")) | frozenset(
        overlay.get("outputOnly", ())
    )
    return FieldTables(fields, output_only)


def _check_member(members: Mapping[str, list[str]], path: str, name: str) -> None:
    if name not in members.get(path, ()):
        raise SchemaSourceError(f"manifest: {path} starts with {name!r}, which overlay members do not list")


def _check_members_complete(fields: Mapping[str, Field], members: Mapping[str, list[str]]) -> None:
    def walk(path: str, f: Field) -> None:
        if f.items is not None:
            walk(path + "[]", f.items)
            return
        if f.members:
            expected = set(members.get(path, ()))
            if set(f.members) != expected:
                missing = sorted(expected - set(f.members))
                extra = sorted(set(f.members) - expected)
                raise SchemaSourceError(
                    f"{path}: manifest and overlay members differ (missing {missing}, extra {extra})"
                )
            for name, member in f.members.items():
                walk(f"{path}.{name}", member)

    for name, f in fields.items():
        walk(name, f)


def _parse_type(spec: Any) -> Field:
    if isinstance(spec, str):
        if spec not in SCALAR_TYPES:
            raise SchemaSourceError(f"overlay: unknown type {spec!r}")
        return Field("", spec)
    if isinstance(spec, list) and len(spec) == 1:
        return Field("", "array", items=_parse_type(spec[0]))
    if isinstance(spec, dict):
        obj = Field("", "object")
        for name, sub in spec.items():
            member = _parse_type(sub)
            member.name = name
            obj.members[name] = member
        return obj
    raise SchemaSourceError(f"overlay: cannot read type {spec!r}")


def apply_additions(tables: FieldTables, overlay: Mapping[str, Any]) -> None:
    """Add the fields discovery has and the tables lack."""
    for path, spec in overlay.get("additions", {}).items():
        *parents, name = path.split(".")
        node = Field("", "object", members=tables.fields)
        for part in parents:
            is_item = part.endswith("[]")
            found = node.members.get(part.removesuffix("[]"))
            if found is None:
                raise SchemaSourceError(f"overlay addition {path}: no field {part!r}")
            node = found
            if is_item:
                if node.items is None:
                    raise SchemaSourceError(f"overlay addition {path}: {part!r} is not a list")
                node = node.items
        if name in node.members:
            raise SchemaSourceError(f"overlay addition {path}: the tables already have it")
        added = _parse_type(spec)
        added.name = name
        node.members[name] = added


# --- building the schemas -----------------------------------------------------------------------


def _schema_for(path: str, f: Field, facts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    fact = facts.get(path, {})
    schema: dict[str, Any]
    if f.type == "array":
        assert f.items is not None
        schema = {"type": "array", "items": _schema_for(path + "[]", f.items, facts)}
        for key in ("minItems", "maxItems"):
            if key in fact:
                schema[key] = fact[key]
        if fact.get("firstNotEmpty"):
            # Inside allOf, so that `items` still applies to the first item too.
            schema["allOf"] = [{"prefixItems": [{"minProperties": 1, "x-kind": "first worker pool"}]}]
    elif f.type == "object" and f.members:
        props = {name: _schema_for(f"{path}.{name}", m, facts) for name, m in f.members.items()}
        schema = {"type": "object", "additionalProperties": False, "properties": props}
        rules: dict[str, Any] = {}
        if "required" in fact:
            rules["required"] = sorted(fact["required"])
        one_of = fact.get("oneOf")
        if one_of:
            rules["anyOf"] = [{"required": [name]} for name in one_of]
            rules["x-one-of"] = list(one_of)
            schema["not"] = {"required": list(one_of)}
            schema["x-one-of"] = list(one_of)
        if fact.get("emptyAllowed") and rules:
            schema["if"] = {"minProperties": 1}
            schema["then"] = rules
        else:
            schema.update(rules)
    elif f.type == "object":
        value_type = fact.get("map")
        if value_type is None:
            schema = {"type": "object"}
        else:
            schema = {"type": "object", "additionalProperties": {"type": value_type}}
        if "labelKey" in fact:
            schema["propertyNames"] = {
                "pattern": fact["labelKey"],
                "x-kind": "label key",
                "description": "at most 64 lowercase letters, digits, '_' or '-' (international characters "
                "allowed), starting with a letter",
            }
        if "labelValue" in fact:
            schema["additionalProperties"] = {
                "type": "string",
                "pattern": fact["labelValue"],
                "x-kind": "label value",
                "description": "at most 64 lowercase letters, digits, '_' or '-' (international characters allowed)",
            }
    elif fact.get("int64"):
        schema = {
            "type": ["integer", "string"],
            "pattern": "^[0-9]+$",
            "minimum": 0,
            "maximum": INT64_MAX,
            "x-format": "int64",
        }
    elif fact.get("duration"):
        schema = {"type": "string", "pattern": DURATION_PATTERN, "x-format": "duration"}
    elif f.type == "integer":
        schema = {"type": "integer"}
        if fact.get("int32", True):
            schema.update({"minimum": INT32_MIN, "maximum": INT32_MAX, "format": "int32"})
    else:
        schema = {"type": f.type}
    if "enum" in fact:
        schema["enum"] = list(fact["enum"])
    for key in ("minLength", "maxLength"):
        if key in fact:
            schema[key] = fact[key]
    if f.description:
        schema["description"] = f.description
    return schema


def _relaxed(schema: Any) -> Any:
    """The same schema without anything that makes a field mandatory: for `defaults`.

    A `not` stays whole: `not: {required: [a, b]}` forbids a and b together (one of), and
    without its `required` it would be `not: {}`, which rejects every value.
    """
    if isinstance(schema, dict):
        return {
            k: (copy.deepcopy(v) if k == "not" else _relaxed(v))
            for k, v in schema.items()
            if k not in ("required", "if", "then", "minItems")
        }
    if isinstance(schema, list):
        return [_relaxed(v) for v in schema]
    return schema


def build_custom_job_schema(tables: FieldTables, overlay: Mapping[str, Any]) -> dict[str, Any]:
    facts: Mapping[str, Mapping[str, Any]] = overlay.get("fields", {})
    settable = {n: f for n, f in tables.fields.items() if n not in tables.output_only}
    output_only = {n: f for n, f in tables.fields.items() if n in tables.output_only}
    return {
        "$schema": DRAFT,
        "title": "Vertex AI v1 CustomJob: the fields a user may set",
        "description": "Generated by `planner schema generate` from custom_jobs.fields.txt and overlay.yaml; "
        "do not edit.",
        "type": "object",
        "additionalProperties": False,
        "required": ["displayName", "jobSpec"],
        "properties": {n: _schema_for(n, f, facts) for n, f in settable.items()},
        "x-output-only": {n: _schema_for(n, f, facts) for n, f in output_only.items()},
    }


LIFECYCLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "planner's own settings for this job; never sent to the API.",
    "properties": {
        "preventDestroy": {
            "type": "boolean",
            "description": "Fail any plan that would cancel or delete this job.",
        },
        "ignoreChanges": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "x-format": "field-path"},
            "description": "Field paths (labels.owner, jobSpec.workerPoolSpecs[0].containerSpec.args) whose "
            "changes do not make a plan replace the job.",
        },
        "onRemove": {
            "type": "string",
            "enum": ["delete", "cancel", "forget"],
            "description": "What to do when the job leaves the configuration.",
        },
        "rerunOn": {
            "type": "array",
            "items": {"type": "string", "enum": sorted(TERMINAL_STATES), "x-kind": "terminal job state"},
            "description": "Terminal states that make the next plan re-create the job.",
        },
    },
}


# planner.config.templates and planner.config.matrix: expanded before validation, never sent to the API.
SWEEP_PROPERTIES: dict[str, Any] = {
    "extends": {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
        "description": "Template name(s) from this file's templates:, applied in order, then defaults, then the job.",
    },
    "matrix": {
        "type": "object",
        "minProperties": 1,
        "description": "Sweep axes (name: list of values), with optional include/exclude lists; one job per "
        "combination, addressed NAME[axis=value,...]; ${matrix.AXIS} is replaced anywhere in the job. "
        "include and exclude are lists of mappings, as in GitHub Actions.",
        "additionalProperties": {"type": "array", "minItems": 1},
    },
    "maxJobs": {
        "type": "integer",
        "minimum": 1,
        "description": "The most jobs this matrix may make (default 1000).",
    },
}
TEMPLATES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Partial jobs by name, for a job's extends:. Checked as part of each job that extends them.",
    "propertyNames": {
        "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,62}$",
        "x-kind": "template name",
        "description": "letters, digits, '_' and '-', starting with a letter, at most 63 characters",
    },
    "additionalProperties": {"type": "object"},
}


def build_desired_state_schema(job_schema: Mapping[str, Any]) -> dict[str, Any]:
    # planner.policy owns the rules; imported here only, so loading schemagen stays light.
    from planner.policy import policy_schema

    job_props = copy.deepcopy(dict(job_schema["properties"]))
    location_props = {
        "project": {"type": "string", "minLength": 1, "description": "Google Cloud project ID."},
        "location": {"type": "string", "minLength": 1, "description": "Vertex AI region, e.g. us-central1."},
    }
    job = {
        "type": "object",
        "additionalProperties": False,
        "required": list(job_schema["required"]),
        "properties": {
            **job_props,
            **copy.deepcopy(location_props),
            "lifecycle": {"$ref": "#/$defs/lifecycle"},
            **copy.deepcopy(SWEEP_PROPERTIES),
        },
        "x-output-only": sorted(job_schema["x-output-only"]),
    }
    defaults = {
        "type": "object",
        "additionalProperties": False,
        "description": "Deep-merged under every job of this file; job values win, lists replace.",
        "properties": {
            **_relaxed(job_props),
            **copy.deepcopy(location_props),
            "lifecycle": {"$ref": "#/$defs/lifecycle"},
        },
        "x-output-only": sorted(job_schema["x-output-only"]),
    }
    return {
        "$schema": DRAFT,
        "title": "planner desired-state file",
        "description": "Generated by `planner schema generate`; do not edit. Strings may hold ${var.NAME} or "
        "${var.NAME:-default}, replaced before validation.",
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "jobs"],
        "properties": {
            "version": {"const": 1, "description": "Format version; always 1."},
            **location_props,
            "variables": declarations_schema(),
            "defaults": {"$ref": "#/$defs/jobDefaults"},
            "templates": copy.deepcopy(TEMPLATES_SCHEMA),
            "policy": policy_schema(),
            "jobs": {
                "type": "object",
                "description": "Jobs by address: unique across all files, lowercase letters, digits and '-'.",
                "propertyNames": {
                    "pattern": ADDRESS_PATTERN,
                    "x-kind": "job address",
                    "description": "lowercase letters, digits and '-', starting with a letter, at most 63 characters",
                },
                "additionalProperties": {"$ref": "#/$defs/job"},
            },
        },
        "$defs": {"job": job, "jobDefaults": defaults, "lifecycle": copy.deepcopy(LIFECYCLE_SCHEMA)},
    }


def load_sources(repo_root: Path) -> tuple[FieldTables, dict[str, Any]]:
    text = (repo_root / FIELDS_FILE).read_text(encoding="utf-8")
    overlay = yaml.safe_load((repo_root / OVERLAY_FILE).read_text(encoding="utf-8"))
    if not isinstance(overlay, dict):
        raise SchemaSourceError(f"{OVERLAY_FILE}: expected a mapping")
    tables = parse_tables(text, overlay)
    apply_additions(tables, overlay)
    return tables, overlay


def generate(repo_root: Path) -> dict[str, str]:
    """Every generated file: path relative to repo_root -> its text.

    Besides the two input schemas built here, this includes the plan, drift and status documents'
    JSON schemas (planner.documents), so one command keeps all of schemas/ current.
    """
    tables, overlay = load_sources(repo_root)
    job = build_custom_job_schema(tables, overlay)
    strict = build_desired_state_schema(job)
    # The validator reads the copy inside the package, which is there however planner is installed.
    # schemas/ holds the editors' version (planner.config.editor_schema: ${var.…} and defaults accepted);
    # `planner schema print` rebuilds it, and prints the packaged CustomJob copy, outside the repository.
    files = {
        CUSTOM_JOB_SCHEMA: dump(job),
        PACKAGED_CUSTOM_JOB_SCHEMA: dump(job),
        DESIRED_STATE_SCHEMA: dump(editor_schema(strict)),
        PACKAGED_SCHEMA: dump(strict),
    }
    files.update({f"schemas/{name}.schema.json": dump(s) for name, s in _document_schemas().items()})
    # The hardware catalog is generated from schemas/ like the schemas; planner.hardware owns it.
    from planner.hardware.catalog import CATALOG_SOURCE, generate_catalog

    if (repo_root / CATALOG_SOURCE).exists():
        files.update(generate_catalog(repo_root))
    return files


def _document_schemas() -> dict[str, Any]:
    """The plan, drift and status documents' schemas by name (planner.documents owns them)."""
    from planner.documents.drift import drift_schema
    from planner.documents.plan import plan_schema
    from planner.documents.status import status_schema

    return {"plan": plan_schema(), "drift": drift_schema(), "status": status_schema()}


def check(repo_root: Path) -> list[str]:
    """Generated files whose committed text differs (or that are missing); empty when up to date."""
    return [rel for rel, text in sorted(generate(repo_root).items()) if _committed(repo_root / rel) != text]


def _committed(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def write(repo_root: Path) -> list[str]:
    """Write every generated file; returns the paths written."""
    written = []
    for rel, text in sorted(generate(repo_root).items()):
        path = repo_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(rel)
    return written


SCHEMA_NAMES = ("desired-state", "custom-job", "plan", "drift")


def packaged_schema(name: str) -> str:
    """One schema's text, from what ships inside the package (no repository needed)."""
    data = Path(__file__).resolve().parent / "data"
    if name == "desired-state":
        strict = json.loads((data / Path(PACKAGED_SCHEMA).name).read_text(encoding="utf-8"))
        return dump(editor_schema(strict))
    if name == "custom-job":
        return (data / Path(PACKAGED_CUSTOM_JOB_SCHEMA).name).read_text(encoding="utf-8")
    schemas = _document_schemas()
    if name in schemas:
        return dump(schemas[name])
    raise ValueError(f"unknown schema {name!r}")
