"""Small things a new user trips over, each through the real CLI: flags that do nothing are not
offered, a mistyped state path is not "No drift", every file's problems are reported at once."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from cli_harness import Cli, config_text

from planner.cli import cli as planner_cli

ROOT = Path(__file__).resolve().parents[1]


def commands(group: click.Group = planner_cli, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    for name, sub in sorted(group.commands.items()):
        if isinstance(sub, click.Group):
            yield from commands(sub, (*path, name))
        else:
            yield " ".join((*path, name)), sub


def options_of(command: click.Command) -> set[str]:
    return {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}


def test_every_option_has_help_text() -> None:
    missing = [
        f"{name} {p.opts[0]}"
        for name, command in commands()
        for p in command.params
        if isinstance(p, click.Option) and not p.help
    ]
    missing += [p.opts[0] for p in planner_cli.params if isinstance(p, click.Option) and not p.help]
    assert missing == []


def test_commands_do_not_offer_flags_they_ignore() -> None:
    table = dict(commands())
    assert "--format" not in options_of(table["apply"])  # apply prints text; `plan --format` for the rest
    assert "--lock-timeout" not in options_of(table["drift"])  # drift takes no lock
    assert "--max-creates-per-minute" not in options_of(table["drift"])  # ... and creates nothing
    for name in ("state list", "state show", "force-unlock"):
        assert "--lock-timeout" not in options_of(table[name]), name
    assert "--lock-timeout" in options_of(table["state rm"])  # rm does lock
    assert not {"--var", "--var-file", "--max-creates-per-minute"} & options_of(table["import"])


@pytest.fixture
def cli(tmp_path: Path, emulator) -> Cli:  # type: ignore[no-untyped-def]
    (tmp_path / "jobs").mkdir()
    return Cli(tmp_path, emulator)


def test_apply_format_is_refused_as_an_unknown_option(cli: Cli) -> None:
    (cli.cwd / "jobs" / "jobs.yaml").write_text(config_text(1))
    r = cli.run("apply", "jobs", "--auto-approve", "--format", "json")
    assert r.code == 1 and "No such option '--format'" in r.err
    assert cli.emulator.request_log.records == []


def test_a_state_path_that_does_not_exist_is_an_error_not_no_drift(cli: Cli) -> None:
    missing = cli.cwd / "typo" / "default.json"
    r = cli.run("state", "list", "--state", str(missing), backend=False)
    assert r.code == 1 and f"no state at {missing}" in r.err
    (cli.cwd / "jobs" / "jobs.yaml").write_text(config_text(1))
    r = cli.run("drift", "jobs", "--state", str(missing), "--endpoint", cli.emulator.url, backend=False)
    assert r.code == 1 and f"no state at {missing}" in r.err and "No drift" not in r.out
    assert not missing.exists()


def test_a_syntax_error_in_one_file_does_not_hide_the_others_problems(cli: Cli) -> None:
    (cli.cwd / "jobs" / "a.yaml").write_text("version: 1\njobs: {a: [\n")
    (cli.cwd / "jobs" / "b.yaml").write_text(config_text(1).replace("replicaCount: 1", "replicaCount: two"))
    r = cli.run("validate", "jobs", backend=False)
    assert r.code == 1
    assert "jobs/a.yaml:3:1: YAML syntax error" in r.err
    assert "jobs/b.yaml:10:25: jobs.job-0000.jobSpec.workerPoolSpecs[0].replicaCount: expected an integer" in r.err
    assert "2 errors found." in r.err


def test_a_schema_source_error_is_a_user_error_naming_the_line(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    tables = tmp_path / "schemas" / "custom_jobs.fields.txt"
    lines = tables.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip() == "- name: displayName")
    assert lines[at + 1].strip() == "value: string"
    lines[at + 1] = lines[at + 1].replace("string", "strung")
    tables.write_text("".join(lines))
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "schema", "generate"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stderr
    assert f"schemas/custom_jobs.fields.txt:{at + 2}:1: manifest: displayName has unknown type 'strung'" in proc.stderr
    assert "bug" not in proc.stderr


def test_make_demo_installs_only_the_runtime_dependencies() -> None:
    makefile = (ROOT / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    stamp = demo.split()[0]
    assert stamp == "$(RUN_STAMP)"
    recipe = makefile.split("\n$(RUN_STAMP):", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet -e ." in recipe and "[test]" not in recipe
