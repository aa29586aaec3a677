"""The example CI workflow is valid YAML and every planner command it runs exists with those flags."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
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
