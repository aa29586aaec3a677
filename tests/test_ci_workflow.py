"""The example CI workflow is valid YAML, every planner command it runs exists with those flags, and its
steps work: planner installed as the workflow installs it, run against the emulator."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from planner.cli import cli

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "ci" / "planner.yml"


def planner_invocations(script: str) -> list[list[str]]:
    """Each `planner …` command in a shell script, up to the next operator or redirection."""
    out: list[list[str]] = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] | None = None
        at_start, skip_target = True, False
        for word in [*lexer, ";"]:
            if set(word) <= set("|&;<>()"):
                if command is not None:
                    out.append(command)
                command = None
                redirect = "<" in word or ">" in word
                at_start, skip_target = not redirect, redirect
                continue
            if skip_target:
                skip_target = False
                continue
            if command is not None:
                command.append(word)
            elif at_start and word == "planner":
                command = []
            at_start = False
    return out


def check_command(args: list[str]) -> None:
    group: click.Command = cli
    ctx = click.Context(group)
    while isinstance(group, click.Group) and args and not args[0].startswith("-"):
        name, args = args[0], args[1:]
        sub = group.get_command(ctx, name)
        assert sub is not None, f"planner has no command {name!r}"
        group = sub
    assert not isinstance(group, click.Group), "workflow runs a command group, not a command"
    # Let click parse the arguments exactly as it would at run time.
    group.make_context("planner", list(args), resilient_parsing=False)


def test_workflow_is_valid_yaml_with_the_three_jobs() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert set(doc["jobs"]) == {"plan", "apply", "drift"}
    assert doc["permissions"]["id-token"] == "write"  # workload identity federation
    # `on` is parsed by YAML 1.1 as the boolean True
    triggers = doc.get("on", doc.get(True))
    assert {"pull_request", "push", "schedule"} <= set(triggers)


def test_every_planner_command_in_the_workflow_exists_with_its_flags() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    seen = []
    for job in doc["jobs"].values():
        for step in job["steps"]:
            for args in planner_invocations(step.get("run", "")):
                check_command(list(args))
                seen.append(args[0])
    assert {"validate", "plan", "apply", "drift", "show"} <= set(seen)


def test_a_bad_flag_would_be_caught() -> None:
    try:
        check_command(["plan", "jobs/", "--no-such-flag"])
    except click.UsageError:
        return
    raise AssertionError("an unknown flag was accepted")


def test_pre_commit_hook_runs_an_existing_command() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "planner-validate")
    words = shlex.split(hook["entry"])
    assert words[0] == "planner"
    check_command([*words[1:], "jobs/"])


# -- the workflow's steps, run for real: planner installed as the workflow installs it, against the emulator --

PIN = re.compile(r"vertex-planner @ git\+https://github\.com/[\w.-]+/planner@[0-9a-f]{40}")
EXPRESSION = re.compile(r"\$\{\{[^}]*\}\}")

NEW_JOB = """
  hello-again:
    displayName: hello-again
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {machineType: n1-standard-4}
          replicaCount: 1
          containerSpec: {imageUri: us-docker.pkg.dev/demo-project/training/hello:1.0}
"""

FAKE_GH = """#!/usr/bin/env bash
# Stands in for the GitHub CLI: records its calls, answers from FAKE_* variables.
echo "$*" >> "$FAKE_GH_LOG"
case "$1 $2" in
  "api "*) echo "${FAKE_PR_SHA:-}" ;;
  "run download") [ -n "${FAKE_ARTIFACT:-}" ] && cp "$FAKE_ARTIFACT" ./plan.json ;;
esac
"""


def test_the_workflow_pins_planner_by_its_own_distribution_name() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert PIN.fullmatch(doc["env"]["PLANNER_PIN"]), doc["env"]["PLANNER_PIN"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "vertex-planner" and project["scripts"]["planner"] == "planner.__main__:run"
    for job in doc["jobs"].values():
        installs = [s["run"] for s in job["steps"] if "pip install" in s.get("run", "")]
        assert installs == ['python -m pip install "$PLANNER_PIN"']


def _fresh_venv(tmp_path: Path) -> Path:
    """A new virtualenv with pip; planner's runtime dependencies come from the test environment
    (a .pth line), so that installing planner fetches nothing but its build backend."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site, "_test_dependencies.pth").write_text(ours + "\n")
    return venv


def _repository_copy(tmp_path: Path) -> Path:
    """The repository's package sources, copied so that building them writes nothing into the repository."""
    copy = tmp_path / "planner-src"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "planner", copy / "planner", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


# What a GitHub runner would not have: this session's planner settings and its Python path.
NOT_INHERITED = ("PLANNER_", "PIP_REQUIRE", "VIRTUAL_ENV", "PYTHONPATH")


class Runner:
    """Runs one workflow job's `run:` steps in bash, as a GitHub runner would, in a fresh checkout."""

    def __init__(self, tmp_path: Path, venv: Path, emulator_url: str, source: Path):
        self.tmp = tmp_path
        self.fake_bin = tmp_path / "fake-bin"
        self.fake_bin.mkdir(exist_ok=True)
        gh = self.fake_bin / "gh"
        gh.write_text(FAKE_GH)
        gh.chmod(0o755)
        self.venv = venv
        self.doc = yaml.safe_load(WORKFLOW.read_text())
        self.base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)},
            "PATH": f"{venv / 'bin'}:{self.fake_bin}:{os.environ['PATH']}",
            **{k: str(v) for k, v in self.doc["env"].items()},
            "PLANNER_PIN": self.doc["env"]["PLANNER_PIN"].split(" @ ")[0] + f" @ file://{source}",
            "PLANNER_STATE": str(tmp_path / "state" / "default.json"),
            "PLANNER_VAR_project": "demo-project",
            "PLANNER_API_ENDPOINT": emulator_url,
            "FAKE_GH_LOG": str(tmp_path / "gh.log"),
        }
        self.runs = 0

    def checkout(self, config: str) -> Path:
        self.runs += 1
        work = self.tmp / f"run-{self.runs}"
        (work / "jobs").mkdir(parents=True)
        (work / "jobs" / "jobs.yaml").write_text(config)
        return work

    def job(self, name: str, work: Path, **fake: str) -> tuple[int, str, dict[str, str]]:
        """(exit code of the first failing step or 0, the step summary, the step outputs)."""
        summary, outputs = work / ".summary.md", work / ".outputs"
        summary.touch()
        env = {**self.base_env, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs), **fake}
        for step in self.doc["jobs"][name]["steps"]:
            script = step.get("run")
            if script is None:
                continue  # `uses:` actions (checkout, auth, upload) are the runner's business
            script = EXPRESSION.sub("x", script)
            step_env = {**env, **{k: EXPRESSION.sub("x", str(v)) for k, v in (step.get("env") or {}).items()}}
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=work, env=step_env, capture_output=True, text=True, timeout=300,
            )
            assert "Traceback" not in proc.stderr, proc.stderr
            if proc.returncode != 0:
                return proc.returncode, summary.read_text(), _outputs(outputs)
        return 0, summary.read_text(), _outputs(outputs)


def _outputs(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.mark.slow
def test_the_workflow_installs_planner_and_runs_its_steps_against_the_emulator(
    tmp_path: Path, emulator_factory: Any
) -> None:
    emulator = emulator_factory(run_seconds=3600)
    runner = Runner(tmp_path, _fresh_venv(tmp_path), emulator.url, _repository_copy(tmp_path))
    config = (ROOT / "examples" / "quickstart" / "jobs.yaml").read_text()
    pushed_config = config + NEW_JOB

    # a pull request: validate, plan, review the saved plan, comment with that very rendering
    pr = runner.checkout(config)
    code, summary, outputs = runner.job("plan", pr)
    assert code == 0
    assert outputs == {"changes": "true"}  # exit 2 of --detailed-exitcode is "changes", not a failure
    review = (pr / "plan-review.md").read_text()
    assert "hello-container" in review and review.strip() in summary
    assert "--body-file plan-review.md" in (tmp_path / "gh.log").read_text()
    installed = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-c", "import planner; print(planner.__file__)"],
        capture_output=True, text=True, check=True, env=runner.base_env, cwd=tmp_path,
    ).stdout
    assert installed.startswith(str(tmp_path / "venv")), installed  # the installed copy, not the repository
    assert emulator.request_log.mutating() == []

    # the merge: the reviewed plan is applied
    merged = runner.checkout(config)
    code, _, _ = runner.job("apply", merged, FAKE_PR_SHA="abc123", FAKE_ARTIFACT=str(pr / "plan.json"))
    assert code == 0
    names = {j["labels"]["planner-address"] for j in labelled_jobs(emulator)}
    assert names == {"hello-container", "mnist-package", "resnet-gpu"}

    # a push to main without a pull request: planned and applied at once
    pushed = runner.checkout(pushed_config)
    code, _, _ = runner.job("apply", pushed)
    assert code == 0
    names = {j["labels"]["planner-address"] for j in labelled_jobs(emulator)}
    assert "hello-again" in names

    # nightly drift: in sync, then a job cancelled outside planner fails the run with exit 2
    nightly = runner.checkout(pushed_config)
    code, summary, _ = runner.job("drift", nightly)
    assert code == 0, summary
    victim = next(j for j in labelled_jobs(emulator) if j["labels"]["planner-address"] == "hello-container")
    emulator.set_job_state(victim["name"], "JOB_STATE_CANCELLED")
    code, summary, _ = runner.job("drift", runner.checkout(pushed_config))
    assert code == 2 and "hello-container" in summary

    # a plan that fails (exit 1) fails the job
    code, _, _ = runner.job("plan", runner.checkout(config.replace("replicaCount: 1", "replicaCount: two", 1)))
    assert code == 1


def labelled_jobs(emulator: Any) -> list[dict[str, Any]]:
    return list(emulator.list_jobs("demo-project", "us-central1", 'labels.managed-by="planner"'))
