"""The generated JSON Schemas: reproducible from the field tables and overlay, and true to discovery."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from planner import apimodel, schemagen

REPO = Path(__file__).resolve().parent.parent
DISCOVERY = json.loads(
    (Path(__file__).parent / "testdata" / "discovery" / "customjob-discovery-extract.json").read_text()
)
SCHEMAS: dict[str, Any] = DISCOVERY["schemas"]
CUSTOM_JOB = json.loads((REPO / schemagen.CUSTOM_JOB_SCHEMA).read_text())
# The validator's desired-state schema; the editors' version in schemas/ is tests/test_editor_schema.py's.
DESIRED = json.loads((REPO / schemagen.PACKAGED_SCHEMA).read_text())


def test_committed_schemas_are_regenerated_byte_for_byte() -> None:
    generated = schemagen.generate(REPO)
    assert {schemagen.CUSTOM_JOB_SCHEMA, schemagen.DESIRED_STATE_SCHEMA} <= set(generated)
    for rel, text in generated.items():
        assert (REPO / rel).read_bytes() == text.encode("utf-8"), f"{rel} is stale: run `planner schema generate`"
    assert schemagen.check(REPO) == []


def test_generation_is_deterministic_and_formatted() -> None:
    first, second = schemagen.generate(REPO), schemagen.generate(REPO)
    assert first == second
    for text in first.values():
        assert text.endswith("}\n") and not text.endswith("\n\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    for name in ("custom_jobs.fields.txt", "overlay.yaml"):
        (tmp_path / "schemas" / name).write_bytes((REPO / "schemas" / name).read_bytes())
    ours = [schemagen.CUSTOM_JOB_SCHEMA, schemagen.DESIRED_STATE_SCHEMA, schemagen.PACKAGED_SCHEMA]
    assert set(ours) <= set(schemagen.check(tmp_path))
    schemagen.write(tmp_path)
    assert schemagen.check(tmp_path) == []
    (tmp_path / schemagen.CUSTOM_JOB_SCHEMA).write_text("{}\n")
    assert schemagen.check(tmp_path) == [schemagen.CUSTOM_JOB_SCHEMA]


def test_fields_copy_is_the_seed_verbatim() -> None:
    text = (REPO / schemagen.FIELDS_FILE).read_text()
    assert text.startswith("custom_jobs\n") and "- name: your_resource_model_name" in text


@pytest.mark.parametrize("schema", [CUSTOM_JOB, DESIRED], ids=["custom_job", "desired_state"])
def test_schemas_are_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _discovery_node(path: str) -> dict[str, Any]:
    """The discovery property at a table path such as jobSpec.workerPoolSpecs[].replicaCount."""
    node: dict[str, Any] = {"$ref": "GoogleCloudAiplatformV1CustomJob"}
    for part in path.split("."):
        is_item = part.endswith("[]")
        name = part.removesuffix("[]")
        if "$ref" in node:
            node = SCHEMAS[node["$ref"]]
        node = node["properties"][name]
        if is_item:
            node = node["items"]
    return node


def _generated_node(path: str) -> dict[str, Any]:
    top = path.split(".")[0].removesuffix("[]")
    node: dict[str, Any] = {"properties": {**CUSTOM_JOB["properties"], **CUSTOM_JOB["x-output-only"]}}
    assert top in node["properties"]
    for part in path.split("."):
        node = node["properties"][part.removesuffix("[]")]
        if part.endswith("[]"):
            node = node["items"]
    return node


def _types(node: dict[str, Any]) -> set[str]:
    t = node.get("type", [])
    return set(t if isinstance(t, list) else [t])


def _compatible(discovery: dict[str, Any], generated: dict[str, Any]) -> bool:
    if "$ref" in discovery:
        return _types(generated) == {"object"}
    kind = discovery["type"]
    if kind == "string" and discovery.get("format") == "int64":
        return _types(generated) == {"integer", "string"}
    return _types(generated) == {kind}


TABLES, OVERLAY = schemagen.load_sources(REPO)
TABLE_PATHS = TABLES.paths()


def test_tables_are_parsed_in_full() -> None:
    rows = schemagen.parse_fields_table((REPO / schemagen.FIELDS_FILE).read_text())
    assert len(rows) == 14
    assert len(TABLE_PATHS) >= 90
    assert TABLE_PATHS["jobSpec.workerPoolSpecs[].containerSpec.env[].name"] == "string"
    assert TABLE_PATHS["jobSpec.workerPoolSpecs[].replicaCount"] == "string"


@pytest.mark.parametrize("path", sorted(TABLE_PATHS))
def test_every_table_field_is_in_the_schema_with_a_discovery_compatible_type(path: str) -> None:
    discovery = _discovery_node(path)
    generated = _generated_node(path)
    assert _compatible(discovery, generated), (path, discovery.get("type"), generated.get("type"))


def _discovery_paths(ref: str = "GoogleCloudAiplatformV1CustomJob", prefix: str = "") -> Iterator[str]:
    for name, prop in SCHEMAS[ref]["properties"].items():
        path = f"{prefix}{name}"
        yield path
        target = prop.get("items", prop)
        if target is not prop:
            path += "[]"
            yield path
        if "$ref" in target:
            yield from _discovery_paths(target["$ref"], path + ".")


def test_every_discovery_field_is_in_the_schema() -> None:
    missing = [p for p in _discovery_paths() if p not in TABLE_PATHS]
    assert missing == []


def test_output_only_fields_agree_with_discovery_and_apimodel() -> None:
    read_only = {n for n, p in SCHEMAS["GoogleCloudAiplatformV1CustomJob"]["properties"].items() if p.get("readOnly")}
    assert set(CUSTOM_JOB["x-output-only"]) == read_only == apimodel.OUTPUT_ONLY_FIELDS
    assert not read_only & set(CUSTOM_JOB["properties"])
    assert set(DESIRED["$defs"]["job"]["x-output-only"]) == read_only


@pytest.mark.parametrize(
    ("path", "discovery_ref", "table"),
    [
        (
            "jobSpec.workerPoolSpecs[].machineSpec.acceleratorType",
            "GoogleCloudAiplatformV1MachineSpec",
            apimodel.ACCELERATOR_TYPES,
        ),
        ("jobSpec.scheduling.strategy", "GoogleCloudAiplatformV1Scheduling", apimodel.SCHEDULING_STRATEGIES),
        (
            "jobSpec.workerPoolSpecs[].machineSpec.reservationAffinity.reservationAffinityType",
            "GoogleCloudAiplatformV1ReservationAffinity",
            apimodel.RESERVATION_AFFINITY_TYPES,
        ),
    ],
)
def test_enums_match_discovery_and_apimodel(path: str, discovery_ref: str, table: dict[str, int]) -> None:
    generated = _generated_node(path)["enum"]
    discovery = _discovery_node(path)["enum"]
    assert generated == discovery
    assert set(generated) == set(table)


def test_int64_and_duration_fields_match_apimodel() -> None:
    int64 = {p.rsplit(".", 1)[-1] for p in TABLE_PATHS if _generated_node(p).get("x-format") == "int64"}
    durations = {p.rsplit(".", 1)[-1] for p in TABLE_PATHS if _generated_node(p).get("x-format") == "duration"}
    assert int64 == apimodel.INT64_FIELDS
    assert durations == apimodel.DURATION_FIELDS
    for p in TABLE_PATHS:
        d = _discovery_node(p)
        if d.get("format") == "google-duration":
            assert _generated_node(p).get("x-format") == "duration", p


def test_rerun_on_lists_exactly_the_terminal_states() -> None:
    items = DESIRED["$defs"]["lifecycle"]["properties"]["rerunOn"]["items"]
    assert set(items["enum"]) == apimodel.TERMINAL_STATES


def test_additional_properties_false_on_every_object_with_members() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("type") == "object":
                assert node.get("additionalProperties") is False, where
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(CUSTOM_JOB["properties"], "#")
    walk(DESIRED, "#")


def test_overlay_entries_cite_discovery() -> None:
    text = (REPO / schemagen.OVERLAY_FILE).read_text()
    overlay = yaml.safe_load(text)
    cited = text.count("# discovery:") + text.count("# discovery extract")
    entries = len(overlay["members"]) + len(overlay["additions"]) + len(overlay["outputOnly"])
    assert cited >= entries


def test_members_that_disagree_with_the_listing_are_an_error() -> None:
    text = (REPO / schemagen.FIELDS_FILE).read_text()
    broken = copy.deepcopy(OVERLAY)
    broken["members"]["jobSpec.scheduling"].remove("timeout")
    with pytest.raises(schemagen.SchemaSourceError):
        schemagen.parse_tables(text, broken)
    extra = copy.deepcopy(OVERLAY)
    extra["members"]["encryptionSpec"].append("keyVersion")
    with pytest.raises(schemagen.SchemaSourceError, match="differ"):
        schemagen.parse_tables(text, extra)


def test_an_addition_the_tables_already_have_is_an_error() -> None:
    text = (REPO / schemagen.FIELDS_FILE).read_text()
    overlay = copy.deepcopy(OVERLAY)
    overlay["additions"]["jobSpec.network"] = "string"
    tables = schemagen.parse_tables(text, overlay)
    with pytest.raises(schemagen.SchemaSourceError, match="already"):
        schemagen.apply_additions(tables, overlay)
