"""Plans tell the whole truth (issue #12), end to end: the real CLI against the emulator over HTTP.

Moves between regions, state-only lifecycle updates, ignored fields on a replace, released
jobs, `--replace`, the job history, and a state written by the previous planner version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_harness import Cli, config_text, labelled_jobs

PROJECT = "demo-project"
OLD, NEW = "us-central1", "europe-west4"


@pytest.fixture
def cli(tmp_path: Path, emulator_factory):  # type: ignore[no-untyped-def]
    """Jobs run for an hour, so a move or a replace really cancels a running job."""
    (tmp_path / "jobs").mkdir()
    return Cli(tmp_path, emulator_factory(run_seconds=3600))


def write(cli: Cli, text: str) -> None:
    (cli.cwd / "jobs" / "jobs.yaml").write_text(text)


def state_of(cli: Cli) -> dict[str, Any]:
    data = json.loads(cli.state.read_text())
    assert isinstance(data, dict)
    return data


def with_lifecycle(count: int, lifecycle: str, *, only: str | None = None, **kw: Any) -> str:
    """config_text with a lifecycle block on every job, or only on the job named `only`."""
    text = config_text(count, **kw)
    if only is None:
        return config_text(count, extra=f"    lifecycle: {lifecycle}", **kw)
    marker = f"  {only}:\n"
    assert marker in text
    head, tail = text.split(marker, 1)
    return head + marker + f"    lifecycle: {lifecycle}\n" + tail


def rpcs_for(cli: Cli, name: str) -> list[str]:
    job_id = name.rsplit("/", 1)[-1]
    return [r.rpc for r in cli.emulator.request_log.records if job_id in r.path and r.rpc in ("cancel", "delete")]


def test_moving_a_running_job_to_another_region_replaces_it_there(cli: Cli) -> None:
    write(cli, config_text(1))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    old = state_of(cli)["jobs"]["job-0000"]["name"]
    assert cli.emulator.get_job(old)["state"] in ("JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING")

    write(cli, config_text(1).replace(f"location: {OLD}", f"location: {NEW}"))
    plan = cli.run("plan", "jobs", "--detailed-exitcode")
    assert plan.code == 2, plan.err
    assert f'location: "{OLD}" -> "{NEW}"  # forces replacement' in plan.out
    assert "-/+ job-0000" in plan.out and "project or location changed" in plan.out
    assert "steps: create → cancel …/" in plan.out

    cli.emulator.request_log.clear()
    r = cli.run("apply", "jobs", "--auto-approve", "--wait-timeout", "30s")
    assert r.code == 0, r.err
    record = state_of(cli)["jobs"]["job-0000"]
    assert f"/locations/{NEW}/" in record["name"] and record["location"] == NEW
    assert record["old_names"] == [] and record["history"] == [old]
    # Exactly one job for the address, in the new region; the old one cancelled, then deleted.
    assert [j["name"] for j in labelled_jobs(cli.emulator, PROJECT, NEW)] == [record["name"]]
    assert labelled_jobs(cli.emulator, PROJECT, OLD) == []
    assert rpcs_for(cli, old) == ["cancel", "delete"]
    # ... and in that order: created in the new place before the old one was stopped.
    order = [r.rpc for r in cli.emulator.request_log.records if r.rpc in ("create", "cancel")]
    assert order == ["create", "cancel"]
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0


def test_a_location_set_in_defaults_moves_the_jobs_that_take_it(cli: Cli) -> None:
    write(cli, config_text(2))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    # defaults win over the file's location, a job's own value over defaults.
    text = config_text(2).replace("jobs:\n", f"defaults:\n  location: {NEW}\njobs:\n", 1)
    write(cli, text.replace("    displayName: job-0001\n", f"    displayName: job-0001\n    location: {OLD}\n"))
    plan = cli.run("plan", "jobs", "--detailed-exitcode", "--format", "json")
    assert plan.code == 2, plan.err
    rows = {c["address"]: c for c in json.loads(plan.out)["resource_changes"]}
    assert rows["job-0000"]["action"] == "replace" and rows["job-0000"]["location"] == NEW
    assert rows["job-0001"]["action"] == "no-op" and rows["job-0001"]["location"] == OLD
    assert cli.run("apply", "jobs", "--auto-approve", "--wait-timeout", "30s").code == 0
    assert f"/locations/{NEW}/" in state_of(cli)["jobs"]["job-0000"]["name"]
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0


def test_prevent_destroy_added_later_is_saved_and_then_protects(cli: Cli) -> None:
    write(cli, config_text(2))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    name = state_of(cli)["jobs"]["job-0001"]["name"]

    write(cli, with_lifecycle(2, "{preventDestroy: true}", only="job-0001"))
    plan = cli.run("plan", "jobs", "--detailed-exitcode")
    assert plan.code == 2, plan.err
    assert "~ job-0001  update  lifecycle changed (state only)" in plan.out
    assert "~ lifecycle.preventDestroy: false -> true" in plan.out
    assert "Plan: 0 to create, 0 to replace, 0 to cancel, 0 to delete, 1 to update." in plan.out
    cli.emulator.request_log.clear()
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    assert cli.emulator.request_log.mutating() == []  # state only: no API call changes anything
    record = state_of(cli)["jobs"]["job-0001"]
    assert record["prevent_destroy"] is True and record["name"] == name
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0

    write(cli, config_text(1))  # job-0001 deleted from the YAML
    cli.emulator.request_log.clear()
    for command in (["plan", "jobs"], ["apply", "jobs", "--auto-approve"]):
        r = cli.run(*command)
        assert r.code == 1, r.out
        assert "preventDestroy" in r.err and "job-0001" in r.err and "Traceback" not in r.err
        assert "set preventDestroy: false, apply, then remove the job" in r.err
    assert cli.emulator.request_log.mutating() == []
    assert cli.emulator.get_job(name)["state"] not in ("JOB_STATE_CANCELLED", "JOB_STATE_CANCELLING")


def test_on_remove_forget_added_later_releases_the_job_quietly(cli: Cli) -> None:
    write(cli, config_text(2))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    name = state_of(cli)["jobs"]["job-0001"]["name"]
    write(cli, with_lifecycle(2, "{onRemove: forget}", only="job-0001"))
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    assert "lifecycle changed (state only)" in r.out
    assert state_of(cli)["jobs"]["job-0001"]["on_remove"] == "forget"

    write(cli, config_text(1))
    cli.emulator.request_log.clear()
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    assert cli.emulator.request_log.mutating() == []  # forgotten, not cancelled
    state = state_of(cli)
    assert "job-0001" not in state["jobs"]
    assert state["released"][name]["address"] == "job-0001" and state["released"][name]["how"] == "forget"
    assert cli.emulator.get_job(name)["labels"]["planner-address"] == "job-0001"  # labels are for life

    cli.emulator.request_log.clear()
    plan = cli.run("plan", "jobs", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert "Warning" not in plan.out and "No changes" in plan.out
    # Not read in full either: the listing's summary is all a plan needs of a released job.
    job_id = name.rsplit("/", 1)[-1]
    assert [r.rpc for r in cli.emulator.request_log.records if job_id in r.path] == []
    drift = cli.run("drift", "jobs", "--format", "json")
    assert drift.code == 0, drift.out + drift.err
    doc = json.loads(drift.out)
    released = [i for i in doc["items"] if i["kind"] == "released"]
    assert [(i["address"], i["job_name"]) for i in released] == [("job-0001", name)]
    assert not doc["has_drift"] and doc["summary"]["released"] == 1
    text = cli.run("drift", "jobs")
    assert text.code == 0 and "Released by planner (not drift):" in text.out

    listed = cli.run("state", "list", "--released", "--state", str(cli.state), backend=False)
    assert listed.code == 0 and listed.out.startswith(f"job-0001\t{name}\tforget\t")
    # Forgotten for good: the job still wears the labels, so plans speak of it again.
    gone = cli.run("state", "forget-released", "job-0001", "--state", str(cli.state), backend=False)
    assert gone.code == 0 and name in gone.out
    assert state_of(cli)["released"] == {}
    again = cli.run("plan", "jobs")
    assert again.code == 0 and "Warning:" in again.out and name in again.out
    unknown = cli.run("state", "forget-released", "nope", "--state", str(cli.state), backend=False)
    assert unknown.code == 1 and "not released in state: nope" in unknown.err


def test_on_remove_cancel_releases_the_job_after_cancelling_it(cli: Cli) -> None:
    write(cli, with_lifecycle(2, "{onRemove: cancel}", only="job-0001"))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    name = state_of(cli)["jobs"]["job-0001"]["name"]
    write(cli, config_text(1))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    assert rpcs_for(cli, name) == ["cancel"]
    assert state_of(cli)["released"][name]["how"] == "cancel"
    plan = cli.run("plan", "jobs", "--detailed-exitcode")
    assert plan.code == 0 and "Warning" not in plan.out
    drift = cli.run("drift", "jobs", "--format", "json")
    assert drift.code == 0 and not json.loads(drift.out)["has_drift"]


def test_replace_flag_reruns_an_unchanged_job_and_keeps_its_history(cli: Cli) -> None:
    write(cli, config_text(2))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    first = state_of(cli)["jobs"]["job-0000"]["name"]
    other = state_of(cli)["jobs"]["job-0001"]["name"]

    plan = cli.run("plan", "jobs", "--replace", "job-0000", "--detailed-exitcode")
    assert plan.code == 2, plan.err
    assert "-/+ job-0000  replace  replacement requested with --replace" in plan.out
    assert "job-0001" not in plan.out.split("Plan:")[0].split("(1 unchanged")[0]
    names = [first]
    for _ in range(6):
        r = cli.run("apply", "jobs", "--replace", "job-0000", "--auto-approve", "--wait-timeout", "30s")
        assert r.code == 0, r.err
        names.append(state_of(cli)["jobs"]["job-0000"]["name"])
    assert len(set(names)) == 7
    record = state_of(cli)["jobs"]["job-0000"]
    # The last five jobs the address had, newest first.
    assert record["history"] == list(reversed(names[1:-1]))
    assert state_of(cli)["jobs"]["job-0001"]["name"] == other
    shown = cli.run("state", "show", "job-0000", "--state", str(cli.state), backend=False)
    assert shown.code == 0 and json.loads(shown.out)["history"] == record["history"]
    assert [j["name"] for j in labelled_jobs(cli.emulator, PROJECT, OLD) if j["name"] in names] == [names[-1]]
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0

    for bad in (["--replace", "job-9999"], ["--replace", "job-0000", "--target", "job-0001"]):
        r = cli.run("plan", "jobs", *bad)
        assert r.code == 1 and "--replace" in r.err and "Traceback" not in r.err


def test_ignored_fields_are_shown_on_a_replace_and_not_pending_in_drift(cli: Cli) -> None:
    labelled = "    labels: {owner: alice}\n    lifecycle: {ignoreChanges: [labels.owner]}"
    write(cli, config_text(1, extra=labelled))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    # Only the ignored label changes: no plan, and drift does not call it unapplied.
    write(cli, config_text(1, extra=labelled.replace("alice", "bob")))
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0
    drift = cli.run("drift", "jobs", "--format", "json")
    assert drift.code == 0 and json.loads(drift.out)["config_pending"] == []
    # A replace for another reason gives the new job the configured owner: the diff says so.
    write(cli, config_text(1, image_tag="2", extra=labelled.replace("alice", "bob")))
    plan = cli.run("plan", "jobs")
    assert plan.code == 0, plan.err
    assert 'labels.owner: "alice" -> "bob"  # ignored for change detection; the new job takes this value' in plan.out
    assert "containerSpec.imageUri" in plan.out and "# forces replacement" in plan.out
    assert cli.run("apply", "jobs", "--auto-approve", "--wait-timeout", "30s").code == 0
    name = state_of(cli)["jobs"]["job-0000"]["name"]
    assert cli.emulator.get_job(name)["labels"]["owner"] == "bob"


def test_a_state_written_by_the_previous_planner_reads_and_is_upgraded(cli: Cli) -> None:
    lifecycle = "{ignoreChanges: [labels.owner], rerunOn: [JOB_STATE_FAILED], preventDestroy: true}"
    write(cli, config_text(2, extra=f"    labels: {{owner: a}}\n    lifecycle: {lifecycle}"))
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    state = state_of(cli)
    # What planner 0.1.0 (state format 1) wrote: none of the format 2 fields.
    state["version"] = 1
    del state["released"]
    for record in state["jobs"].values():
        for key in ("ignore_changes", "rerun_on", "history"):
            del record[key]
    cli.state.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")

    plan = cli.run("plan", "jobs", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err  # nothing plans differently
    write(cli, config_text(2, image_tag="2", extra=f"    labels: {{owner: a}}\n    lifecycle: {lifecycle}"))
    r = cli.run("apply", "jobs", "--target", "job-0000", "--auto-approve", "--wait-timeout", "30s")
    assert r.code == 1 and "preventDestroy" in r.err  # still protected after the upgrade
    write(cli, config_text(2, extra="    labels: {owner: a}\n    lifecycle: {ignoreChanges: [labels.owner]}"))
    r = cli.run("apply", "jobs", "--auto-approve")
    assert r.code == 0, r.err
    upgraded = state_of(cli)
    assert upgraded["version"] == 2 and upgraded["lineage"] == state["lineage"]
    assert upgraded["serial"] > state["serial"]
    assert upgraded["jobs"]["job-0000"]["prevent_destroy"] is False
    assert upgraded["jobs"]["job-0000"]["ignore_changes"] == ["labels.owner"]
    assert upgraded["jobs"]["job-0000"]["rerun_on"] == []
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0
