"""The drift views (text, markdown, JSON) on constructed DriftReport models, against golden files and the schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from planner.diff import MASK, FieldChange
from planner.documents.drift import drift_to_json
from planner.drift import ConfigPending, DriftItem, DriftKind, DriftReport
from planner.render import render_drift

GOLDEN = Path(__file__).parent / "testdata" / "render"
SCHEMA = Path(__file__).parent.parent / "schemas" / "drift.schema.json"
P, L = "my-proj", "us-central1"
SECRET = "hunter2-do-not-print"
ENV0 = "jobSpec.workerPoolSpecs[0].containerSpec.env[0]"


def job(job_id: str) -> str:
    return f"projects/{P}/locations/{L}/customJobs/{job_id}"


def item(kind: DriftKind, address: str | None, job_id: str, detail: str, **kw: Any) -> DriftItem:
    return DriftItem(kind, address=address, job_name=job(job_id), project=P, location=L, detail=detail, **kw)


IN_SYNC = item(
    DriftKind.IN_SYNC, "steady", "1", "in sync", live_state="JOB_STATE_RUNNING", recorded_state="JOB_STATE_RUNNING"
)
CHANGED = item(
    DriftKind.CHANGED,
    "train-b",
    "2",
    "live job differs from the last applied spec",
    live_state="JOB_STATE_RUNNING",
    recorded_state="JOB_STATE_RUNNING",
    changes=(
        FieldChange(f"{ENV0}.value", "change", SECRET, "other-" + SECRET),
        FieldChange("labels.owner", "add", None, "mallory|<b>"),
    ),
)
MISSING = item(DriftKind.MISSING, "gone", "3", "in state, but gone from Vertex AI", recorded_state="JOB_STATE_RUNNING")
TERMINAL = item(
    DriftKind.TERMINAL,
    "nightly",
    "4",
    "JOB_STATE_FAILED since the last apply: OOM in worker `0` | exit 137",
    live_state="JOB_STATE_FAILED",
    recorded_state="JOB_STATE_RUNNING",
)
PENDING = item(
    DriftKind.PENDING,
    "half-done",
    "5",
    "an interrupted apply left `delete` unfinished; run apply to finish it",
    live_state="JOB_STATE_CANCELLING",
    recorded_state="JOB_STATE_RUNNING",
)
UNMANAGED_LABELLED = item(
    DriftKind.UNMANAGED,
    "ghost",
    "6",
    "labelled as managed by planner for this workspace, but absent from state",
    live_state="JOB_STATE_SUCCEEDED",
)
UNMANAGED_PLAIN = item(
    DriftKind.UNMANAGED, None, "7", "not managed by planner (no planner labels)", live_state="JOB_STATE_RUNNING"
)


def report(*items: DriftItem, **kw: Any) -> DriftReport:
    defaults: dict[str, Any] = {
        "workspace": "default",
        "config_pending": (),
        "managed_seen": sum(1 for i in items if i.kind is not DriftKind.MISSING),
        "jobs_seen": sum(1 for i in items if i.kind is not DriftKind.MISSING),
        "created_at": "2026-11-26T12:00:00Z",
        "planner_version": "0.1.0",
    }
    defaults.update(kw)
    return DriftReport(items=tuple(sorted(items, key=DriftItem.sort_key)), **defaults)


CASES: dict[str, DriftReport] = {
    "drift_all_kinds": report(
        IN_SYNC,
        CHANGED,
        MISSING,
        TERMINAL,
        PENDING,
        UNMANAGED_LABELLED,
        UNMANAGED_PLAIN,
        managed_seen=5,
        jobs_seen=6,
        ignored=("labels.cost", "scratch-*"),
        config_pending=(
            ConfigPending(
                "steady",
                "config differs from the last applied spec",
                (FieldChange(f"{ENV0}.value", "change", SECRET, "new-" + SECRET),),
            ),
            ConfigPending("brand-new", "new in config, not yet applied"),
        ),
    ),
    "drift_in_sync": report(
        IN_SYNC,
        item(DriftKind.IN_SYNC, "other", "9", "in sync", live_state="JOB_STATE_SUCCEEDED"),
        config_pending=(ConfigPending("retired", "removed from config, not yet applied"),),
    ),
    "drift_empty": report(),
    "drift_moved": report(
        DriftItem(
            DriftKind.CHANGED,
            address="moved",
            job_name=f"projects/{P}/locations/europe-west4/customJobs/12",
            project=P,
            location=L,
            detail="live job runs in another project or location than state says",
            live_state="JOB_STATE_RUNNING",
            recorded_state="JOB_STATE_RUNNING",
            changes=(FieldChange("location", "change", "us-central1", "europe-west4", False),),
        ),
        config_pending=(
            ConfigPending(
                "relocating",
                "config moves the job to another project or location",
                (FieldChange("project", "change", "my-proj", "other-proj"),),
            ),
        ),
    ),
    "drift_released": report(
        IN_SYNC,
        item(
            DriftKind.RELEASED,
            "let-go",
            "11",
            "released by onRemove: forget at 2026-11-25T10:00:00Z; no longer managed",
            live_state="JOB_STATE_RUNNING",
        ),
    ),
}


def check_golden(path: Path, actual: str, update: bool, *, as_json: bool = False) -> None:
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run pytest --update-golden and review the diff"
    expected = path.read_text(encoding="utf-8")
    if as_json:
        assert json.loads(actual) == json.loads(expected)
    else:
        assert actual == expected


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("fmt", "filename"), [("text", "drift.txt"), ("markdown", "drift.md"), ("json", "drift.json")])
def test_golden(case: str, fmt: str, filename: str, update_golden: bool) -> None:
    actual = render_drift(CASES[case], fmt)
    check_golden(GOLDEN / case / filename, actual, update_golden, as_json=fmt == "json")


def test_cases_cover_every_kind() -> None:
    assert {i.kind for r in CASES.values() for i in r.items} == set(DriftKind)


# -- text ----------------------------------------------------------------------------------------


def lines(text: str) -> list[str]:
    assert text.endswith("\n")
    return text.rstrip("\n").splitlines()


def test_text_summary_coverage_and_items() -> None:
    text = render_drift(CASES["drift_all_kinds"], "text")
    out = lines(text)
    assert "Summary: 1 in sync, 1 changed, 1 missing, 1 terminal, 1 pending, 2 unmanaged" in out
    assert "Coverage: 5 managed of 6 jobs seen" in out
    assert "Ignored: labels.cost, scratch-*" in out
    assert out[-1] == "Drift: 6 jobs drifted."
    drifted = out[out.index("Drifted jobs:") + 1 :]
    rows = [line for line in drifted if re.match(r"^  [a-z]", line)]
    assert [r.split()[0] for r in rows[:6]] == ["unmanaged", "missing", "pending", "terminal", "changed", "unmanaged"]
    assert re.search(rf"^  changed +train-b +{job('2')} +live job differs from the last applied spec$", text, re.M)
    assert re.search(rf"^  unmanaged +- +{job('7')} +not managed by planner \(no planner labels\)$", text, re.M)
    assert f"      ~ {ENV0}.value: {MASK} -> {MASK}" in out
    assert '      + labels.owner = "mallory|<b>"' in out
    assert "steady" not in "\n".join(drifted[: drifted.index("Config not yet applied (not drift):")])


def test_text_config_pending_is_a_separate_section() -> None:
    out = lines(render_drift(CASES["drift_all_kinds"], "text"))
    start = out.index("Config not yet applied (not drift):")
    section = out[start + 1 : out.index("", start)]
    assert section[0] == "  steady     config differs from the last applied spec"
    assert section[1] == f"      ~ {ENV0}.value: {MASK} -> {MASK}"
    assert section[2] == "  brand-new  new in config, not yet applied"


def test_text_no_drift() -> None:
    out = lines(render_drift(CASES["drift_in_sync"], "text"))
    assert out[-1] == "No drift. 2 jobs in sync."
    assert "Drifted jobs:" not in out
    assert "  retired  removed from config, not yet applied" in out
    assert lines(render_drift(CASES["drift_empty"], "text"))[-1] == "No drift. 0 jobs in sync."


def test_text_singular() -> None:
    assert lines(render_drift(report(MISSING), "text"))[-1] == "Drift: 1 job drifted."


def test_colour_only_when_asked() -> None:
    for case in CASES.values():
        plain = render_drift(case, "text")
        coloured = render_drift(case, "text", color=True)
        assert "\x1b[" not in plain
        assert "\x1b[" in coloured
        assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain
        assert "\x1b[" not in render_drift(case, "markdown", color=True)


# -- masking -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_env_values_masked(fmt: str) -> None:
    assert SECRET not in render_drift(CASES["drift_all_kinds"], fmt)
    shown = render_drift(CASES["drift_all_kinds"], fmt, show_sensitive=True)
    assert "other-" + SECRET in shown and "new-" + SECRET in shown


# -- markdown ------------------------------------------------------------------------------------


DETAILS = re.compile(r"^<details><summary>(.*?)</summary>\n\n(.*?)\n\n</details>$", re.M | re.S)


def tables(markdown: str) -> list[list[list[str]]]:
    """Every table: its rows (without header and separator) as cells split on unescaped pipes."""
    found: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if current is None:
                current = []
                found.append(current)
            current.append(cells)
        else:
            current = None
    return [t[2:] for t in found]


def test_markdown_structure() -> None:
    r = CASES["drift_all_kinds"]
    md = render_drift(r, "markdown")
    drifting = [i for i in r.items if i.kind.is_drift]
    main, pending = tables(md)
    assert [row[0] for row in main] == [i.kind.value for i in drifting]
    assert main[4] == ["changed", "`train-b`", "`2`", "live job differs from the last applied spec"]
    assert main[2][3] == "an interrupted apply left \\`delete\\` unfinished; run apply to finish it"
    assert main[3][3] == "JOB\\_STATE\\_FAILED since the last apply: OOM in worker \\`0\\` \\| exit 137"
    assert main[5][1] == "—"
    assert pending == [
        ["`steady`", "config differs from the last applied spec"],
        ["`brand-new`", "new in config, not yet applied"],
    ]
    assert md.index("| Kind |") < md.index("**Drift: 6 jobs drifted.**") < md.index("<details>")
    assert md.index("<details>") < md.index("### Config not yet applied (not drift)")
    blocks = DETAILS.findall(md)
    assert len(blocks) == len(drifting) + 1  # one per drifting job, one for the pending change with a diff
    summary, body = blocks[4]
    assert summary == "changed: <b>train-b</b> live job differs from the last applied spec"
    assert "```diff\n" in body
    assert f"- {ENV0}.value = {MASK}\n+ {ENV0}.value = {MASK}" in body
    assert blocks[5][0] == "unmanaged: <b>7</b> not managed by planner (no planner labels)"


def test_markdown_no_drift() -> None:
    md = render_drift(CASES["drift_in_sync"], "markdown")
    assert "**No drift. 2 jobs in sync.**" in md
    assert "| Kind |" not in md
    assert "### Config not yet applied (not drift)" in md


# -- JSON ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_validates_against_schema(case: str, validator: jsonschema.protocols.Validator) -> None:
    for show_sensitive in (False, True):
        validator.validate(json.loads(render_drift(CASES[case], "json", show_sensitive=show_sensitive)))


def test_drift_to_json() -> None:
    r = CASES["drift_all_kinds"]
    doc = drift_to_json(r)
    assert list(doc) == [
        "format_version", "planner_version", "workspace", "created_at", "has_drift",
        "summary", "coverage", "items", "config_pending", "ignored",
    ]  # fmt: skip
    assert doc["format_version"] == "1.0"
    assert doc["has_drift"] is True
    assert doc["summary"] == {"in_sync": 1, "changed": 1, "missing": 1, "terminal": 1, "pending": 1, "unmanaged": 2}
    assert doc["coverage"] == {"managed": 5, "seen": 6}
    assert doc["ignored"] == ["labels.cost", "scratch-*"]
    assert [i["address"] for i in doc["items"]] == ["ghost", "gone", "half-done", "nightly", "steady", "train-b", None]
    changed = next(i for i in doc["items"] if i["kind"] == "changed")
    assert changed["changes"][0]["before"] == MASK and changed["changes"][0]["sensitive"] is True
    assert json.loads(render_drift(r, "json")) == doc
    assert drift_to_json(CASES["drift_in_sync"])["has_drift"] is False


def test_schema_rejects_unknown_kind(validator: jsonschema.protocols.Validator) -> None:
    doc = drift_to_json(CASES["drift_all_kinds"])
    doc["items"][0]["kind"] = "weird"
    assert not validator.is_valid(doc)
