"""No secret printed, logged or stored: a sensitive variable's value and an `env` value never
appear in any file planner writes or anything it prints, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_harness import Cli, Result

TOKEN = "tok-9f2c71d0e5"  # a sensitive variable's value
ENV_VALUE = "env-4b1e88a3c6"  # a plain `env` entry's value

CONFIG = """\
version: 1
variables:
  token: {type: string, sensitive: true}
  tag: {default: "1"}
project: demo-project
location: us-central1
jobs:
  train:
    displayName: train
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {machineType: n1-standard-4}
          replicaCount: 1
          containerSpec:
            imageUri: img:${var.tag}
            args: ["--token=${var.token}"]
            env:
              - {name: API_TOKEN, value: "${var.token}"}
              - {name: OTHER, value: ENV_VALUE}
""".replace("ENV_VALUE", ENV_VALUE)


@pytest.fixture
def cli(tmp_path: Path, emulator_factory) -> Cli:  # type: ignore[no-untyped-def]
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "jobs.yaml").write_text(CONFIG)
    return Cli(tmp_path, emulator_factory(run_seconds=3600), env={"PLANNER_VAR_token": TOKEN})


def no_secret(where: str, text: str) -> None:
    assert TOKEN not in text, f"the sensitive variable's value is in {where}"
    assert ENV_VALUE not in text, f"an env value is in {where}"


def written_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text(errors="replace") for p in root.rglob("*") if p.is_file()}


def test_no_secret_in_any_output_or_file(cli: Cli) -> None:
    outputs: list[tuple[str, Result]] = []

    def run(*args: str, backend: bool = True, code: int | None = 0) -> Result:
        r = cli.run(*args, backend=backend)
        if code is not None:
            assert r.code == code, (args, r.out, r.err)
        outputs.append((" ".join(args), r))
        return r

    for fmt in ("text", "json"):
        run("validate", "jobs", "--format", fmt, backend=False)
    for fmt in ("text", "markdown", "json"):
        run("--debug", "plan", "jobs", "--format", fmt)
    run("plan", "jobs", "-o", "plan.json")
    for fmt in ("text", "markdown", "json"):
        run("show", "plan.json", "--format", fmt, "--show-sensitive", backend=False)
    run("--debug", "apply", "plan.json")
    run("state", "list", backend=False, code=None)
    run("state", "show", "train", "--state", str(cli.state), backend=False)
    for fmt in ("text", "markdown", "json"):
        run("drift", "jobs", "--format", fmt, "-o", f"drift.{fmt}")
    # a change that replaces the job: journal, backup and state written again
    (cli.cwd / "jobs" / "jobs.yaml").write_text(CONFIG.replace('default: "1"', 'default: "2"'))
    run("--debug", "apply", "jobs", "--auto-approve", "--wait-timeout", "20s")
    # a wrong value for a pattern never echoes a sensitive value
    (cli.cwd / "jobs" / "jobs.yaml").write_text(CONFIG.replace("sensitive: true}", 'sensitive: true, pattern: "x+"}'))
    r = run("validate", "jobs", backend=False, code=1)
    assert "--var token" in r.err or "PLANNER_VAR_token" in r.err

    for command, result in outputs:
        no_secret(f"the output of `planner {command}`", result.out + result.err)
    files = written_files(cli.cwd)
    assert any(name.endswith(".json") and "state" in name for name in files)
    assert "plan.json" in files
    for name, text in files.items():
        if name.startswith("jobs"):
            continue  # the configuration itself, written by the test
        no_secret(name, text)
    no_secret("the emulator's request log", repr(cli.emulator.request_log.records))

    # ... while the job really was created with the secret values (the API needs them)
    state = json.loads(cli.state.read_text())
    job = cli.emulator.get_job(state["jobs"]["train"]["name"])
    env = job["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]
    assert {e["name"]: e["value"] for e in env} == {"API_TOKEN": TOKEN, "OTHER": ENV_VALUE}


def test_state_show_says_sensitive_with_a_digest(cli: Cli) -> None:
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    r = cli.run("state", "show", "train", "--state", str(cli.state), backend=False)
    assert r.code == 0, r.err
    env = json.loads(r.out)["spec"]["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]
    assert all(e["value"].startswith("(sensitive, digest sha256:") for e in env)
    # drift compares digests: in sync, and a no-change plan stays a no-change plan
    assert cli.run("drift", "jobs").code == 0
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0


def test_a_plain_old_state_is_upgraded_on_its_next_write(cli: Cli) -> None:
    """An older planner kept env values in plain text (it knew no sensitive variables)."""
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    doc = json.loads(cli.state.read_text())
    spec = doc["jobs"]["train"]["spec"]
    container = spec["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]
    container["env"] = [{"name": "API_TOKEN", "value": TOKEN}, {"name": "OTHER", "value": ENV_VALUE}]
    doc["jobs"]["gone"] = {**doc["jobs"]["train"], "name": doc["jobs"]["train"]["name"] + "0"}
    cli.state.write_text(json.dumps(doc, indent=2))  # as an older planner wrote it
    r = cli.run("plan", "jobs", "--detailed-exitcode")  # a plain state still reads: train unchanged
    assert r.code == 2 and "train" not in r.out and "= gone  forget" in r.out
    r = cli.run("state", "rm", "gone", "--state", str(cli.state), backend=False)  # any write upgrades it
    assert r.code == 0, r.err
    no_secret("the state after its next write", cli.state.read_text())
    assert "train" in json.loads(cli.state.read_text())["jobs"]
    assert cli.run("plan", "jobs", "--detailed-exitcode").code == 0


def test_a_saved_plan_needs_only_the_sensitive_values_again(cli: Cli) -> None:
    assert cli.run("plan", "jobs", "-o", "plan.json", "--var", "tag=7").code == 0
    doc = json.loads((cli.cwd / "plan.json").read_text())
    assert doc["variables"]["values"] == {"tag": "7"}
    assert set(doc["variables"]["sensitive"]) == {"token"}
    cli.extra_env = {}
    r = cli.run("apply", "plan.json")
    assert r.code == 1 and 'needs the sensitive variable "token" again: set PLANNER_VAR_token' in r.err
    r = cli.run("apply", "plan.json", "--var", "token=wrong")
    assert r.code == 1 and 'sensitive variable "token" differs from the value the plan was made with' in r.err
    r = cli.run("apply", "plan.json", "--var", f"token={TOKEN}", "--var", "tag=8")
    assert r.code == 1 and "--var tag: a saved plan carries its variables" in r.err
    assert cli.emulator.request_log.mutating() == []
    r = cli.run("apply", "plan.json", "--var", f"token={TOKEN}")  # tag=7 comes from the plan
    assert r.code == 0, r.err
    state = json.loads(cli.state.read_text())
    job = cli.emulator.get_job(state["jobs"]["train"]["name"])
    assert job["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["imageUri"] == "img:7"


def test_a_saved_plan_whose_configuration_changed_is_refused_with_the_reason(cli: Cli) -> None:
    assert cli.run("plan", "jobs", "-o", "plan.json").code == 0
    (cli.cwd / "jobs" / "jobs.yaml").write_text(CONFIG.replace(ENV_VALUE, "env-changed"))
    r = cli.run("apply", "plan.json")
    assert r.code == 1
    assert "the configuration files changed since the plan" in r.err
    assert "train: the configuration now gives a different spec than the plan's" in r.err
    (cli.cwd / "jobs" / "jobs.yaml").unlink()
    r = cli.run("apply", "plan.json")
    assert r.code == 1 and "its configuration files are missing (jobs/jobs.yaml)" in r.err
    assert cli.emulator.request_log.mutating() == []


def test_no_secret_in_the_journal_and_lock_of_an_apply_killed_mid_way(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    import signal
    import time

    (tmp_path / "jobs").mkdir()
    jobs = CONFIG.split("jobs:\n", 1)[1]
    more = "".join(jobs.replace("  train:", f"  train-{i}:").replace("displayName: train", f"displayName: t{i}")
                   for i in range(6))
    (tmp_path / "jobs" / "jobs.yaml").write_text(CONFIG.split("jobs:\n", 1)[0] + "jobs:\n" + more)
    cli = Cli(tmp_path, emulator_factory(run_seconds=3600, latency_ms=150), env={"PLANNER_VAR_token": TOKEN})
    run = cli.start("apply", "jobs", "--auto-approve", "--parallelism", "1")
    journal = Path(str(cli.state) + ".journal")
    deadline = time.monotonic() + 60
    while not (journal.exists() and journal.read_text().count("\n") >= 2):
        assert time.monotonic() < deadline and run.proc.poll() is None, "the apply ended before its journal was seen"
        time.sleep(0.02)
    snapshot = written_files(tmp_path)  # the journal and the lock while the apply runs
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    assert any(name.endswith(".journal") for name in snapshot)
    assert any(name.endswith(".lock") for name in snapshot)
    for name, text in {**snapshot, **written_files(tmp_path)}.items():
        if not name.startswith("jobs"):
            no_secret(name, text)
    r = cli.run("apply", "jobs", "--auto-approve")  # the next run folds the journal and finishes
    assert r.code == 0, r.err
    for name, text in written_files(tmp_path).items():
        if not name.startswith("jobs"):
            no_secret(name, text)


def test_the_emulators_data_file_holds_env_values_sealed(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "emulator" / "data.json"
    data.parent.mkdir()
    (tmp_path / "jobs").mkdir()
    # Vertex AI keeps `args` as given, and so does the emulator: a secret belongs in `env`.
    (tmp_path / "jobs" / "jobs.yaml").write_text(CONFIG.replace('            args: ["--token=${var.token}"]\n', ""))
    cli = Cli(tmp_path, emulator_factory(run_seconds=3600, data_path=data), env={"PLANNER_VAR_token": TOKEN})
    assert cli.run("apply", "jobs", "--auto-approve").code == 0
    for name, text in written_files(data.parent).items():
        no_secret(f"the emulator's {name}", text)
    assert (data.parent / "data.json.key").stat().st_mode & 0o777 == 0o600
    # a second emulator on the same data answers the values, as Vertex AI does
    again = emulator_factory(data_path=data)
    name = json.loads(cli.state.read_text())["jobs"]["train"]["name"]
    env = again.get_job(name)["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]
    assert {e["name"]: e["value"] for e in env} == {"API_TOKEN": TOKEN, "OTHER": ENV_VALUE}
