"""plan and apply: flags → a request → planner.operations.plan / .apply → the plan and progress views
→ an exit code; the confirmation prompt is asked here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from planner import settings
from planner.cli.app import cli
from planner.cli.options import (
    _RETAINED,
    _backend,
    _compose,
    _duration,
    _is_plan_file,
    _plan_request,
    _read_plan_file,
    _use_color,
    _variables,
    _warn,
    backend_options,
    format_option,
    hardware_options,
    variable_options,
    view_options,
)
from planner.errors import EXIT_CHANGES, EXIT_INTERRUPTED, EXIT_JOB_FAILED, EXIT_OK, EXIT_WAIT_TIMEOUT, UsageError

target_option = click.option("--target", "targets", multiple=True, metavar="ADDR", help="Plan only these addresses.")
replace_option = click.option(
    "--replace", multiple=True, metavar="ADDR",
    help="Re-create this job although it is unchanged (e.g. to re-run a succeeded job).",
)
cost_options = _compose(
    click.option("--price-file", metavar="FILE", help="Prices to use instead of the bundled ones (e.g. negotiated)."),
    click.option("--max-cost", type=click.FloatRange(min=0), metavar="USD", help="Fail if the plan may cost more."),
    click.option("--policy", "policy_file", metavar="FILE", help="Policy rules (YAML); see README, Cost and policy."),
)


@cli.command("plan")
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--out", "out", metavar="FILE", help="Save the plan for `planner apply FILE`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@target_option
@replace_option
@format_option("text", "markdown", "json")
@cost_options
@variable_options
@hardware_options
@backend_options
@view_options
def plan_command(paths: tuple[str, ...], out: str | None, detailed_exitcode: bool, **opts: Any) -> int:
    """Show what apply would do."""
    from planner.operations.plan import plan, save_plan
    from planner.render import render_plan

    request = _plan_request(paths, opts, _variables(opts["variables"], opts["var_files"], paths))
    with _backend(opts) as backend:
        result = plan(request, backend, on_loaded=_warn)
    _RETAINED.append(result)
    if out:
        save_plan(Path(out), result, request)
    if not opts["quiet"] or opts["fmt"] != "text":
        color, context = _use_color(opts["no_color"]), dict(settings.read().ci)
        sensitive = opts["show_sensitive"]
        text = render_plan(result.plan, opts["fmt"], color=color, show_sensitive=sensitive, context=context)
        click.echo(text.rstrip("\n"))
    if out and not opts["quiet"] and opts["fmt"] == "text":
        click.echo(f"\nSaved the plan to {out}. To perform exactly these actions, run: planner apply {out}")
    return EXIT_CHANGES if detailed_exitcode and result.plan.has_changes else EXIT_OK


@cli.command("apply")
@click.argument("paths", nargs=-1, required=True)
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--parallelism", default=10, show_default=True, type=click.IntRange(1, 256),
              help="Changes carried out at once.")
@click.option("--wait-timeout", default="10m", show_default=True, help="How long to wait for jobs.")
@click.option("--wait", "wait_outcome", is_flag=True,
              help="Then wait until every job this apply created ends; exit 4 if one failed (see --timeout).")
@click.option("--timeout", "outcome_timeout", default=None, metavar="DURATION",
              help="With --wait: stop waiting after this long and exit 5 (the jobs keep running).")
@target_option  # no --format: apply shows the plan and its progress as text (`plan --format` for the rest)
@replace_option
@cost_options
@variable_options
@hardware_options
@backend_options
@view_options
def apply_command(paths: tuple[str, ...], auto_approve: bool, parallelism: int, wait_timeout: str,
                  wait_outcome: bool, outcome_timeout: str | None, **opts: Any) -> int:
    """Plan and carry it out, or carry out a saved plan exactly."""
    from planner.operations.apply import ApplyRequest, planned, record_refresh, run_apply
    from planner.operations.plan import load_configuration
    from planner.render import render_plan

    color = _use_color(opts["no_color"])
    wait_seconds = _duration(wait_timeout, "--wait-timeout")
    if outcome_timeout is not None and not wait_outcome:
        raise UsageError("--timeout goes with --wait (for deletes and cancels, use --wait-timeout)")
    outcome_seconds = _duration(outcome_timeout, "--timeout") if outcome_timeout is not None else None
    saved = _read_plan_file(paths[0]) if _is_plan_file(paths) else None
    variables = _variables(opts["variables"], opts["var_files"], paths) if saved is None else {}
    request = ApplyRequest(  # a saved plan with --target or --replace is refused here
        _plan_request(paths, opts, variables), saved, var_pairs=tuple(opts["variables"]),
        var_files=tuple(opts["var_files"]), environment=settings.read().variables,
        parallelism=parallelism, wait_timeout=wait_seconds,
    )
    desired = load_configuration(request.plan) if saved is None else None
    _warn(desired)  # None: a saved plan, its warnings shown when it was made
    with _backend(opts) as backend:
        with planned(request, backend, desired) as prepared:
            plan = prepared.plan
            if not opts["quiet"] or not plan.has_changes:
                click.echo(render_plan(plan, "text", color=color, show_sensitive=opts["show_sensitive"]).rstrip())
            if not plan.has_changes:
                record_refresh(prepared)
                return EXIT_OK
            if saved is None and not auto_approve:
                _confirm()
            code = _reported(run_apply(prepared, request, _apply_progress(plan, color)))
        # The lock is released: waiting for hours-long jobs must not block other runs.
        if wait_outcome and code == EXIT_OK:
            return _wait_after_apply(prepared, outcome_seconds, color)
        return code


def _confirm() -> None:
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to apply without confirmation: there is no terminal to ask",
            hint="review the plan and pass --auto-approve, or apply a saved plan (`planner plan -o FILE`)",
        )
    click.echo("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n")
    answer = click.prompt("  Enter a value", default="", show_default=False)
    if answer.strip() != "yes":
        raise UsageError("apply cancelled")


def _apply_progress(plan: Any, color: bool) -> Any:
    from planner.render.progress import ApplyProgress

    class Progress(ApplyProgress):
        def interrupted(self) -> None:
            self.line("Interrupt received: starting no new step, finishing the ones in flight…")

    total = sum(len(c.steps) for c in plan.changes if c.action.value != "no-op")
    return Progress(sys.stderr, total=total, tty=sys.stderr.isatty(), color=color)


def _reported(run: Any) -> int:
    """The apply report printed (what a failed journal left unrecorded on stderr), and its exit code."""
    from planner.render.progress import report_lines, unrecorded_lines

    for line in report_lines(run.report):
        click.echo(line)
    for line in unrecorded_lines(run.report, run.write_error is not None):
        click.echo(line, err=True)
    if run.write_error is not None:
        raise run.write_error
    if run.exit_code == EXIT_INTERRUPTED:
        click.echo("Interrupted: finished steps are saved; run apply again to finish.", err=True)
    return int(run.exit_code)


def _wait_after_apply(prepared: Any, timeout: float | None, color: bool) -> int:
    """`apply --wait`: follow the jobs this apply created until each ends; the exit code says how."""
    from planner.operations.apply import created_jobs, wait_for_created
    from planner.render.jobstate import duration_text
    from planner.render.progress import WaitView
    from planner.status import console_url

    jobs = created_jobs(prepared)
    if not jobs:
        click.echo("\nNo job was created by this apply: nothing to wait for.")
        return EXIT_OK
    limit = f", for at most {duration_text(timeout)}" if timeout is not None else ""
    click.echo(f"\nWaiting for {len(jobs)} job{'s' if len(jobs) != 1 else ''} to finish{limit} "
               "(Ctrl-C stops waiting; the jobs keep running)…")
    view = WaitView(sys.stderr, total=len(jobs), tty=sys.stderr.isatty(), color=color)
    try:
        result = wait_for_created(prepared, jobs, timeout, view)
    except KeyboardInterrupt:
        view.close()
        click.echo("Stopped waiting; the jobs keep running (see `planner status`).", err=True)
        return EXIT_INTERRUPTED
    finally:
        view.close()
    by_name = {j.name: j for j in jobs}
    click.echo(
        f"\nWait complete: {len(result.succeeded)} succeeded, {len(result.failed)} failed, "
        f"{len(result.unfinished)} still running."
    )
    for title, names in (("Failed", result.failed), ("Still running", result.unfinished)):
        if names:
            click.echo(f"{title}:")
            for name in names:
                job = by_name[name]
                project, location = job.pair
                click.echo(f"  - {job.address}: {result.states[name].removeprefix('JOB_STATE_')} "
                           f"{console_url(project, location, name.rsplit('/', 1)[-1])}")
                if name in result.errors:
                    click.echo(f"      {result.errors[name]}")
    if result.failed:
        return EXIT_JOB_FAILED
    if result.timed_out:
        click.echo(f"Timed out after {duration_text(timeout or 0)}: the jobs keep running.", err=True)
        return EXIT_WAIT_TIMEOUT
    return EXIT_OK
