"""Commands on files alone: validate, schema, show."""

from __future__ import annotations

import json
from pathlib import Path

import click

from planner import settings
from planner.cli.app import cli
from planner.cli.options import (
    _emit,
    _read_plan_file,
    _use_color,
    _variables,
    _warn,
    format_option,
    hardware_options,
    no_color_option,
    variable_options,
)
from planner.errors import EXIT_ERROR, EXIT_OK, ConfigError, UsageError


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@variable_options
@hardware_options
@format_option("text", "json")
def validate(
    paths: tuple[str, ...], variables: tuple[str, ...], var_files: tuple[str, ...], fmt: str,
    hardware_catalog: str | None, allow_unknown_hardware: bool,
) -> int:
    """Check desired-state files against the schema and the hardware catalog; nothing is sent anywhere."""
    from planner.config.validate import load_desired
    from planner.operations.plan import load_hardware

    try:
        values = _variables(variables, var_files, paths)
        hardware = load_hardware(hardware_catalog, allow_unknown_hardware)
        desired = load_desired(list(paths), variables=values, hardware=hardware)
    except ConfigError as err:
        if fmt == "json":
            found = [d.to_json() for d in err.diagnostics]
            click.echo(json.dumps({"valid": False, "error_count": len(found), "diagnostics": found}, indent=2))
            return EXIT_ERROR
        raise
    if fmt == "json":
        doc = {"valid": True, "error_count": 0, "diagnostics": [], "jobs": sorted(desired.jobs)}
        if desired.warnings:
            doc["warnings"] = [w.to_json() for w in desired.warnings]
        click.echo(json.dumps(doc, indent=2))
    else:
        _warn(desired)
        count = len(desired.jobs)
        click.echo(f"Success: {count} job{'s' if count != 1 else ''} in {len(desired.files)} file(s) valid.")
    return EXIT_OK


@cli.group()
def schema() -> None:
    """Generate, check or print the JSON Schemas (schemas/, from the CustomJob field tables)."""


def _repo_root() -> Path:
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "schemas" / "overlay.yaml").exists():
            return candidate
    raise UsageError("schemas/overlay.yaml not found: run this in the planner repository")


@schema.command("generate")
def schema_generate() -> int:
    """Write the generated schemas."""
    from planner.schemagen import write

    for rel in write(_repo_root()):
        click.echo(f"wrote {rel}")
    return EXIT_OK


@schema.command("print")
@click.argument(
    "name", type=click.Choice(["desired-state", "custom-job", "plan", "drift", "status"]), default="desired-state"
)
def schema_print(name: str) -> int:
    """Print a schema (the editors' desired-state schema by default); no repository needed."""
    from planner.schemagen import packaged_schema

    click.echo(packaged_schema(name).rstrip("\n"))
    return EXIT_OK


@schema.command("check")
def schema_check() -> int:
    """Fail if regenerating would change a committed schema."""
    from planner.schemagen import check

    stale = check(_repo_root())
    if stale:
        for rel in stale:
            click.echo(f"out of date: {rel}", err=True)
        click.echo("run `planner schema generate` and commit the result", err=True)
        return EXIT_ERROR
    click.echo("schemas are up to date")
    return EXIT_OK


@cli.command("show")
@click.argument("planfile")
@format_option("text", "markdown", "json")
@click.option("-o", "--out", "out", metavar="FILE", help="Also write the rendering to FILE.")
@no_color_option
@click.option("--show-sensitive", is_flag=True, help="Show env values a plan holds (a saved plan holds none).")
def show_command(planfile: str, fmt: str, out: str | None, no_color: bool, show_sensitive: bool) -> int:
    """Render a saved plan."""
    from planner.documents.plan import plan_from_json
    from planner.render import render_plan

    plan = plan_from_json(_read_plan_file(planfile))
    color = _use_color(no_color) and not out
    _emit(render_plan(plan, fmt, color=color, show_sensitive=show_sensitive, context=dict(settings.read().ci)), out)
    return EXIT_OK
