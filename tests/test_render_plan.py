"""The plan views (text, markdown, JSON) on constructed Plan models, against golden files and the schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from planner.config.model import Lifecycle, OnRemove
from planner.diff import MASK, FieldChange
from planner.documents.plan import plan_schema, plan_to_json
from planner.errors import PlannerError
from planner.plans.model import Action, Plan, Reason, ResourceChange, Step, StepKind
from planner.render import render_plan
from planner.render.markdown import code, escape

GOLDEN = Path(__file__).parent / "testdata" / "render"
SCHEMA = Path(__file__).parent.parent / "schemas" / "plan.schema.json"
P, L = "my-proj", "us-central1"
SECRET = "hunter2-do-not-print"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def job(job_id: str) -> str:
    return f"projects/{P}/locations/{L}/customJobs/{job_id}"


def spec(image: str = "us-docker.pkg.dev/p/r/train:1.4", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "displayName": "train",
        "labels": {"team": "vision"},
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {
                        "machineType": "n1-standard-8",
                        "acceleratorType": "NVIDIA_TESLA_T4",
                        "acceleratorCount": 1,
                    },
                    "replicaCount": "1",
                    "containerSpec": {
                        "imageUri": image,
                        "args": ["--epochs", "10"],
                        "env": [{"name": "API_TOKEN", "value": SECRET}, {"name": "MODE", "value": "fast"}],
                    },
                }
            ]
        },
    }
    out.update(extra)
    return out


def change(address: str, action: Action, reason: Reason, **kw: Any) -> ResourceChange:
    return ResourceChange(address=address, action=action, reason=reason, project=P, location=L, **kw)


def create(address: str, reason: Reason = Reason.NEW) -> ResourceChange:
    return change(
        address,
        Action.CREATE,
        reason,
        display_name="train",
        steps=(Step(StepKind.CREATE),),
        after=spec(),
        after_hash="a" * 64,
        lifecycle=Lifecycle(),
    )


ENV0 = "jobSpec.workerPoolSpecs[0].containerSpec.env[0]"
IMAGE = "jobSpec.workerPoolSpecs[0].containerSpec.imageUri"


def replace_spec_changed(address: str = "train-b") -> ResourceChange:
    name = job("200")
    return change(
        address,
        Action.REPLACE,
        Reason.SPEC_CHANGED,
        display_name="train",
        job_name=name,
        job_state="JOB_STATE_RUNNING",
        steps=(Step(StepKind.CANCEL, name), Step(StepKind.CREATE), Step(StepKind.DELETE, name)),
        changes=(
            FieldChange(f"{ENV0}.value", "change", "old-" + SECRET, SECRET),
            FieldChange("jobSpec.workerPoolSpecs[0].containerSpec.env[2]", "add", None, {"name": "X", "value": SECRET}),
            FieldChange(IMAGE, "change", "us-docker.pkg.dev/p/r/train:1.3", "us-docker.pkg.dev/p/r/train:1.4"),
            FieldChange("labels.owner", "remove", "alice", None),
            FieldChange("labels.team", "add", None, "vision"),
        ),
        after=spec(),
        after_hash="b" * 64,
        lifecycle=Lifecycle(ignore_changes=("labels.cost",)),
        warnings=(f"replacing {name}, which is running",),
    )


def replace_rerun() -> ResourceChange:
    name = job("300")
    return change(
        "nightly",
        Action.REPLACE,
        Reason.RERUN,
        display_name="nightly",
        job_name=name,
        job_state="JOB_STATE_FAILED",
        steps=(Step(StepKind.CREATE), Step(StepKind.DELETE, name)),
        after=spec(displayName="nightly"),
        after_hash="c" * 64,
        lifecycle=Lifecycle(rerun_on=("JOB_STATE_FAILED",)),
    )


def replace_found_by_labels() -> ResourceChange:
    name = job("310")
    return change(
        "lost-create",
        Action.REPLACE,
        Reason.SPEC_CHANGED,
        job_name=name,
        job_state="JOB_STATE_SUCCEEDED",
        steps=(Step(StepKind.ADOPT, name), Step(StepKind.CREATE), Step(StepKind.DELETE, name)),
        changes=(FieldChange("jobSpec.workerPoolSpecs[0].replicaCount", "change", "1", "2"),),
        after=spec(),
        after_hash="d" * 64,
        lifecycle=Lifecycle(),
    )


def cancel_running() -> ResourceChange:
    name = job("400")
    return change(
        "sweep",
        Action.CANCEL,
        Reason.REMOVED,
        job_name=name,
        job_state="JOB_STATE_RUNNING",
        steps=(Step(StepKind.CANCEL, name), Step(StepKind.FORGET, name)),
        warnings=(f"cancelling {name}, which is running",),
    )


def delete_running() -> ResourceChange:
    name = job("500")
    return change(
        "old-train",
        Action.DELETE,
        Reason.REMOVED,
        job_name=name,
        job_state="JOB_STATE_PENDING",
        steps=(Step(StepKind.CANCEL, name), Step(StepKind.DELETE, name)),
        warnings=(f"deleting {name}, which is pending",),
    )


def delete_terminal() -> ResourceChange:
    name = job("510")
    return change(
        "done-train",
        Action.DELETE,
        Reason.REMOVED,
        job_name=name,
        job_state="JOB_STATE_SUCCEEDED",
        steps=(Step(StepKind.DELETE, name),),
    )


def delete_duplicate() -> ResourceChange:
    name = job("600")
    return change(
        "train-b",
        Action.DELETE,
        Reason.DUPLICATE,
        job_name=name,
        job_state="JOB_STATE_QUEUED",
        steps=(Step(StepKind.CANCEL, name), Step(StepKind.DELETE, name)),
        warnings=(f"deleting {name}, which is queued",),
    )


def delete_cleanup() -> ResourceChange:
    name = job("610")
    return change(
        "train-b",
        Action.DELETE,
        Reason.REPLACED_CLEANUP,
        job_name=name,
        job_state="JOB_STATE_CANCELLING",
        steps=(Step(StepKind.DELETE, name),),
        warnings=(f"deleting {name}, which is cancelling",),
    )


def adopt() -> ResourceChange:
    name = job("700")
    return change(
        "found",
        Action.ADOPT,
        Reason.FOUND_BY_LABELS,
        display_name="train",
        job_name=name,
        job_state="JOB_STATE_RUNNING",
        steps=(Step(StepKind.ADOPT, name),),
        after=spec(),
        after_hash="e" * 64,
        lifecycle=Lifecycle(prevent_destroy=True),
    )


def forget_gone() -> ResourceChange:
    return change("vanished", Action.FORGET, Reason.ALREADY_GONE, steps=(Step(StepKind.FORGET, job("800")),))


def forget_removed() -> ResourceChange:
    name = job("810")
    return change(
        "keep-record",
        Action.FORGET,
        Reason.REMOVED,
        job_name=name,
        job_state="JOB_STATE_SUCCEEDED",
        steps=(Step(StepKind.FORGET, name),),
    )


def noop(address: str, state: str = "JOB_STATE_RUNNING", notes: tuple[str, ...] = ()) -> ResourceChange:
    return change(
        address,
        Action.NOOP,
        Reason.UNCHANGED,
        display_name="train",
        job_name=job("900"),
        job_state=state,
        after=spec(),
        after_hash="f" * 64,
        lifecycle=Lifecycle(),
        notes=notes,
    )


def update_lifecycle() -> ResourceChange:
    name = job("1100")
    return change(
        "guarded",
        Action.UPDATE,
        Reason.LIFECYCLE_CHANGED,
        display_name="train",
        job_name=name,
        job_state="JOB_STATE_RUNNING",
        steps=(Step(StepKind.UPDATE, name),),
        changes=(
            FieldChange("lifecycle.preventDestroy", "change", False, True, False),
            FieldChange("lifecycle.rerunOn", "change", [], ["JOB_STATE_FAILED"], False),
        ),
        after_hash="1" * 64,
        lifecycle=Lifecycle(prevent_destroy=True, rerun_on=("JOB_STATE_FAILED",)),
    )


def replace_moved() -> ResourceChange:
    name = "projects/my-proj/locations/us-central1/customJobs/1200"
    return ResourceChange(
        address="moved",
        action=Action.REPLACE,
        reason=Reason.MOVED,
        project=P,
        location="europe-west4",
        display_name="train",
        job_name=name,
        job_state="JOB_STATE_RUNNING",
        steps=(Step(StepKind.CREATE), Step(StepKind.CANCEL, name), Step(StepKind.DELETE, name)),
        changes=(
            FieldChange("location", "change", "us-central1", "europe-west4"),
            FieldChange("labels.owner", "change", "bob", "alice", False, True),
        ),
        after=spec(),
        after_hash="2" * 64,
        lifecycle=Lifecycle(ignore_changes=("labels.owner",)),
        warnings=(f"replacing {name}, which is running",),
    )


def replace_requested() -> ResourceChange:
    name = job("1300")
    return change(
        "again",
        Action.REPLACE,
        Reason.REPLACE_REQUESTED,
        display_name="train",
        job_name=name,
        job_state="JOB_STATE_SUCCEEDED",
        steps=(Step(StepKind.CREATE), Step(StepKind.DELETE, name)),
        after=spec(),
        after_hash="3" * 64,
        lifecycle=Lifecycle(),
    )


FAILED_NOTE = "job ended in JOB_STATE_FAILED; list it in lifecycle.rerunOn to re-create it on the next apply"


def make(*changes: ResourceChange, **kw: Any) -> Plan:
    defaults: dict[str, Any] = {
        "workspace": "default",
        "lineage": "0b6f1c1e-5d0c-4b7e-9d55-2f1a4c9d8e77",
        "serial": 12,
        "live_fingerprint": "9" * 64,
        "config_hash": "8" * 64,
        "created_at": "2026-11-26T12:00:00Z",
        "planner_version": "0.1.0",
        "fingerprint_entries": (("train-b", job("200"), "b" * 64, "JOB_STATE_RUNNING"),),
    }
    defaults.update(kw)
    return Plan(changes=tuple(sorted(changes, key=lambda c: c.address)), **defaults)


CASES: dict[str, Plan] = {
    "create": make(create("train-a"), create("train-c", Reason.DELETED_OUTSIDE)),
    "replace": make(replace_spec_changed(), replace_rerun(), replace_found_by_labels()),
    "remove": make(cancel_running(), delete_running(), delete_terminal(), forget_gone(), forget_removed()),
    "adopt_cleanup": make(adopt(), delete_duplicate(), delete_cleanup(), noop("steady")),
    "mixed": make(
        create("train-a"),
        replace_spec_changed(),
        delete_duplicate(),
        cancel_running(),
        delete_running(),
        adopt(),
        forget_gone(),
        noop("steady"),
        noop("broken", "JOB_STATE_FAILED", (FAILED_NOTE,)),
        warnings=(
            f"{job('999')} is labelled planner-address=ghost for this workspace but is in neither "
            "the configuration nor the state; `planner import` it or delete it",
        ),
    ),
    "no_changes": make(noop("steady"), noop("broken", "JOB_STATE_FAILED", (FAILED_NOTE,)), lineage=None, serial=None),
    "empty": make(lineage=None, serial=None, fingerprint_entries=()),
    "targeted": make(create("train-a"), targets=("train-a", "train-z")),
    "plan_truth": make(update_lifecycle(), replace_moved(), replace_requested(), noop("steady")),
    "escaping": make(
        change(
            "weird",
            Action.REPLACE,
            Reason.SPEC_CHANGED,
            job_name=job("1000"),
            job_state="JOB_STATE_SUCCEEDED",
            steps=(Step(StepKind.CREATE), Step(StepKind.DELETE, job("1000"))),
            changes=(
                FieldChange("jobSpec.workerPoolSpecs[0].containerSpec.args", "change", ["a|b"], ["<b>x</b>", "```"]),
                FieldChange("labels.note", "add", None, "`tick` & *star* _under_ [link](x) | pipe"),
            ),
            after={"displayName": "w|<x>`y`"},
            after_hash="0" * 64,
            warnings=("deleting <something> | with `code`",),
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


# -- golden files --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("fmt", "filename"), [("text", "plan.txt"), ("markdown", "plan.md"), ("json", "plan.json")])
def test_golden(case: str, fmt: str, filename: str, update_golden: bool) -> None:
    actual = render_plan(CASES[case], fmt)
    check_golden(GOLDEN / case / filename, actual, update_golden, as_json=fmt == "json")


def test_cases_cover_every_action_and_reason() -> None:
    rows = [c for plan in CASES.values() for c in plan.changes]
    assert {c.action for c in rows} == set(Action)
    assert {c.reason for c in rows} == set(Reason)
    assert {s.kind for c in rows for s in c.steps} == set(StepKind)


@pytest.mark.parametrize("case", sorted(CASES))
def test_deterministic(case: str) -> None:
    for fmt in ("text", "markdown", "json"):
        assert render_plan(CASES[case], fmt) == render_plan(CASES[case], fmt)


# -- text ----------------------------------------------------------------------------------------


def last_line(text: str) -> str:
    assert text.endswith("\n")
    return text.rstrip("\n").splitlines()[-1]


def test_plan_line_four_parts_first() -> None:
    text = render_plan(make(create("a"), replace_spec_changed("b"), cancel_running(), delete_terminal()), "text")
    assert last_line(text) == "Plan: 1 to create, 1 to replace, 1 to cancel, 1 to delete."


def test_plan_line_adds_adopt_and_forget_only_when_present() -> None:
    assert last_line(render_plan(CASES["remove"], "text")) == (
        "Plan: 0 to create, 0 to replace, 1 to cancel, 2 to delete, 2 to forget."
    )
    assert last_line(render_plan(CASES["adopt_cleanup"], "text")) == (
        "Plan: 0 to create, 0 to replace, 0 to cancel, 2 to delete, 1 to adopt."
    )


@pytest.mark.parametrize("case", ["no_changes", "empty"])
def test_no_changes(case: str) -> None:
    text = render_plan(CASES[case], "text")
    assert last_line(text) == "No changes. The jobs match the configuration."
    assert "Plan:" not in text


def test_no_changes_still_shows_notes() -> None:
    text = render_plan(CASES["no_changes"], "text")
    assert f"broken: {FAILED_NOTE}" in text
    assert "steady" not in text


def test_summary_list_comes_first_one_line_per_changed_job() -> None:
    text = render_plan(CASES["mixed"], "text")
    first_block = text.index("  # ")
    summary = [line for line in text[:first_block].splitlines() if re.match(r"^ {2}[ -/]{2}[+!=-] \S", line)]
    assert [line.split()[1] for line in summary] == [
        "found", "old-train", "sweep", "train-a", "train-b", "train-b", "vanished"
    ]  # fmt: skip
    assert re.search(r"^  -/\+ train-b +replace +spec changed \[5 fields changed, job 200 running\]$", text, re.M)
    assert re.search(r"^    \+ train-a +create +new$", text, re.M)
    assert re.search(r"^    ! sweep +cancel +removed from config \[job 400 running\]$", text, re.M)
    assert re.search(r"^    = vanished +forget +already gone$", text, re.M)
    assert "(2 unchanged jobs not listed)" in text
    assert text.index("Notes:") < first_block


@pytest.mark.parametrize(
    ("row", "header"),
    [
        (create("a"), "# a will be created (new)"),
        (create("a", Reason.DELETED_OUTSIDE), "# a will be created (deleted outside planner)"),
        (replace_spec_changed("b"), "# b must be replaced (spec changed)"),
        (replace_rerun(), "# nightly must be replaced (rerun after JOB_STATE_FAILED)"),
        (cancel_running(), "# sweep will be cancelled (removed from config)"),
        (delete_terminal(), "# done-train will be deleted (removed from config)"),
        (delete_duplicate(), "# train-b will be deleted (duplicate labelled job (left by an interrupted run))"),
        (adopt(), "# found will be adopted (found by labels)"),
        (forget_gone(), "# vanished will be forgotten (already gone)"),
    ],
)
def test_block_headers(row: ResourceChange, header: str) -> None:
    assert f"  {header}\n" in render_plan(make(row), "text")


def test_replace_block() -> None:
    text = render_plan(make(replace_spec_changed()), "text")
    assert f"  #   job {job('200')} (JOB_STATE_RUNNING)" in text
    assert (
        f'    ~ {IMAGE}: "us-docker.pkg.dev/p/r/train:1.3" -> "us-docker.pkg.dev/p/r/train:1.4"  # forces replacement'
        in text
    )
    assert '    - labels.owner = "alice"  # forces replacement' in text
    assert '    + labels.team = "vision"  # forces replacement' in text
    assert "    steps: cancel …/200 → create → delete …/200 once terminal" in text
    assert f"    Warning: replacing {job('200')}, which is running" in text


def test_steps_of_terminal_and_state_only_jobs() -> None:
    assert "steps: delete …/510\n" in render_plan(make(delete_terminal()), "text")
    assert "steps: adopt …/700 (state only)\n" in render_plan(make(adopt()), "text")
    assert f"steps: forget {job('800')} (state only)\n" in render_plan(make(forget_gone()), "text")
    assert "steps: adopt …/310 (state only) → create → delete …/310\n" in render_plan(
        make(replace_found_by_labels()), "text"
    )


def test_create_block_lists_flattened_spec() -> None:
    text = render_plan(make(create("a")), "text")
    assert '    + jobSpec.workerPoolSpecs[0].containerSpec.args = ["--epochs", "10"]' in text
    assert "    + jobSpec.workerPoolSpecs[0].machineSpec.acceleratorCount = 1" in text
    assert f"    + {ENV0}.value = {MASK}" in text
    assert f'    + {ENV0}.name = "API_TOKEN"' in text
    assert "    steps: create" in text


def test_plan_warnings_listed() -> None:
    assert f"\nWarning: {job('999')} is labelled" in render_plan(CASES["mixed"], "text")


# -- masking -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_env_values_masked(case: str, fmt: str) -> None:
    for color in (False, True):
        assert SECRET not in render_plan(CASES[case], fmt, color=color)


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_show_sensitive_reveals_env_values(fmt: str) -> None:
    out = render_plan(CASES["mixed"], fmt, show_sensitive=True)
    assert SECRET in out
    assert MASK not in out


def test_masked_env_lines() -> None:
    text = render_plan(make(replace_spec_changed()), "text")
    assert f"    ~ {ENV0}.value: {MASK} -> {MASK}  # forces replacement" in text
    assert f"    + jobSpec.workerPoolSpecs[0].containerSpec.env[2].value = {MASK}  # forces replacement" in text
    shown = render_plan(make(replace_spec_changed()), "text", show_sensitive=True)
    assert f'    ~ {ENV0}.value: "old-{SECRET}" -> "{SECRET}"  # forces replacement' in shown


def test_text_view_masks_even_an_unmasked_document() -> None:
    """Belt and braces: the value formatter masks env paths itself."""
    from planner.render.text import render_plan_text

    doc = plan_to_json(CASES["mixed"], show_sensitive=True)
    assert SECRET not in render_plan_text(doc, show_sensitive=False)


# -- colour --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_colour_only_when_asked(case: str) -> None:
    plain = render_plan(CASES[case], "text")
    coloured = render_plan(CASES[case], "text", color=True)
    assert "\x1b[" not in plain
    assert "\x1b[" in coloured
    assert ANSI.sub("", coloured) == plain
    for fmt in ("markdown", "json"):
        assert "\x1b[" not in render_plan(CASES[case], fmt, color=True)


def test_colours_by_action() -> None:
    text = render_plan(CASES["mixed"], "text", color=True)
    assert "\x1b[32m  +\x1b[0m train-a" in text
    assert "\x1b[33m-/+\x1b[0m train-b" in text
    assert "\x1b[31m  !\x1b[0m sweep" in text
    assert "\x1b[36m  =\x1b[0m found" in text
    assert "\x1b[1mPlan:\x1b[0m" in text


# -- markdown ------------------------------------------------------------------------------------


def table_rows(markdown: str) -> list[list[str]]:
    """Rows of the first table, split on unescaped pipes, without the header and separator."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    assert rows and re.fullmatch(r"(---\|?)+", "|".join(rows[1]))
    return rows[2:]


DETAILS = re.compile(r"^<details><summary>(.*?)</summary>\n\n(.*?)\n\n</details>$", re.M | re.S)


def test_markdown_structure() -> None:
    plan = CASES["mixed"]
    md = render_plan(plan, "markdown")
    assert md.startswith("## ")
    changed = [c for c in plan.changes if c.action is not Action.NOOP]
    rows = table_rows(md)
    assert [(r[1], r[2]) for r in rows] == [(f"`{c.address}`", c.action.value) for c in changed]
    assert rows[0] == ["`=`", "`found`", "adopt", "found by labels", "`700` running"]
    assert rows[3] == ["`+`", "`train-a`", "create", "new", "—"]
    assert rows[4][3] == "spec changed (5 fields)"
    assert "**Plan: 1 to create, 1 to replace, 1 to cancel, 2 to delete, 1 to adopt, 1 to forget.**" in md
    # The table comes first, then the counts, then the per-job details.
    assert md.index("| ") < md.index("**Plan:") < md.index("<details>")
    blocks = DETAILS.findall(md)
    assert len(blocks) == len(changed)
    summary, body = blocks[4]
    assert summary == "<code>-/+</code> <b>train-b</b> must be replaced (spec changed)"
    assert "```diff\n" in body
    assert f'- {IMAGE} = "us-docker.pkg.dev/p/r/train:1.3"\n+ {IMAGE} = "us-docker.pkg.dev/p/r/train:1.4"' in body
    assert f"+ {ENV0}.value = {MASK}" in body


def test_markdown_warns_for_every_cancel_or_delete_of_a_running_job() -> None:
    plan = CASES["mixed"]
    md = render_plan(plan, "markdown")
    alert = md[md.index("> [!WARNING]") :].split("\n\n", 1)[0].splitlines()
    touched = [c for c in plan.changes if c.warnings]
    assert {c.action for c in touched} >= {Action.CANCEL, Action.DELETE}
    for c in touched:
        for warning in c.warnings:
            assert f"> - `{c.address}`: {escape(warning)}" in alert
    assert len(alert) == 1 + sum(len(c.warnings) for c in touched) + len(plan.warnings)
    assert "> [!NOTE]" in md and f"> - `broken`: {escape(FAILED_NOTE)}" in md


def test_markdown_no_changes() -> None:
    md = render_plan(CASES["no_changes"], "markdown")
    assert "**No changes. The jobs match the configuration.**" in md
    assert "<details>" not in md
    assert not [line for line in md.splitlines() if line.startswith("|")]


def test_markdown_escaping() -> None:
    md = render_plan(CASES["escaping"], "markdown")
    assert "deleting &lt;something&gt; \\| with \\`code\\`" in md
    # Every table row has exactly the five cells, whatever the text held.
    for row in table_rows(md):
        assert len(row) == 5
    # A value holding ``` cannot close the diff fence early.
    body = DETAILS.findall(md)[0][1]
    assert "````diff\n" in body and body.rstrip().endswith("````")
    assert '+ jobSpec.workerPoolSpecs[0].containerSpec.args = ["<b>x</b>", "```"]' in body


def test_escape_and_code_helpers() -> None:
    assert escape("a|b<c>&`d`*_[x]~") == "a\\|b&lt;c&gt;&amp;\\`d\\`\\*\\_\\[x\\]\\~"
    assert code("plain") == "`plain`"
    assert code("has ` tick") == "``has ` tick``"
    assert code("`edge") == "`` `edge ``"
    assert code("a|b", cell=True) == "`a\\|b`"


# -- JSON ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_validates_against_schema(case: str, validator: jsonschema.protocols.Validator) -> None:
    plan = CASES[case]
    validator.validate(json.loads(render_plan(plan, "json")))
    validator.validate(json.loads(render_plan(plan, "json", show_sensitive=True)))
    saved = plan_to_json(plan, for_file=True)
    validator.validate(saved)
    saved["config"] = {"files": ["jobs.yaml"], "hash": "8" * 64}  # what `planner plan -o` adds
    validator.validate(saved)


def test_schema_rejects_unknown_values(validator: jsonschema.protocols.Validator) -> None:
    doc = json.loads(render_plan(CASES["mixed"], "json"))
    doc["resource_changes"][0]["action"] = "upgrade"
    assert not validator.is_valid(doc)
    doc = json.loads(render_plan(CASES["mixed"], "json"))
    doc["surprise"] = 1
    assert not validator.is_valid(doc)
    doc = json.loads(render_plan(CASES["mixed"], "json"))
    doc["resource_changes"][1]["steps"][0]["kind"] = "wait"
    assert not validator.is_valid(doc)


def test_json_is_the_plan_document() -> None:
    plan = CASES["mixed"]
    out = render_plan(plan, "json")
    assert out.endswith("}\n")
    assert json.loads(out) == plan_to_json(plan)
    assert json.loads(out)["format_version"] == "1.0"
    assert plan_schema()["properties"]["format_version"] == {"const": "1.0"}


def test_unknown_format() -> None:
    with pytest.raises(PlannerError, match="unknown output format"):
        render_plan(CASES["empty"], "yaml")


def test_on_remove_values_in_schema_match_model() -> None:
    lifecycle = plan_schema()["$defs"]["resource_change"]["properties"]["lifecycle"]["anyOf"][1]
    assert lifecycle["properties"]["onRemove"]["enum"] == [o.value for o in OnRemove]


def test_markdown_details_stay_within_a_github_comment() -> None:
    from planner.render.markdown import DETAILS_BUDGET

    plan = make(*[create(f"job-{i:04d}") for i in range(300)])
    md = render_plan(plan, "markdown")
    assert len(table_rows(md)) == 300  # the summary table is always complete
    shown = len(DETAILS.findall(md))
    assert 0 < shown < 300
    assert len(md) <= DETAILS_BUDGET + 200
    assert md.rstrip("\n").endswith(
        f"Details of {300 - shown} more jobs are left out to keep this comment within GitHub's size limit."
    )
    assert "Details of" not in render_plan(CASES["mixed"], "markdown")


def test_notes_of_changed_jobs_are_in_their_block() -> None:
    from dataclasses import replace

    plan = make(replace(delete_terminal(), notes=("a note <here>",)))
    assert "    steps: delete …/510\n    Note: a note <here>\n" in render_plan(plan, "text")
    assert "- Note: a note &lt;here&gt;\n" in render_plan(plan, "markdown")
