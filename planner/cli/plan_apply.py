"""plan and apply."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from planner import settings
from planner.cli.app import cli
from planner.cli.options import (
    _RETAINED,
    DEFAULT_WAIT_TIMEOUT,
    _backend,
    _ci_context,
    _compose,
    _duration,
    _hardware,
    _is_plan_file,
    _now,
    _read_plan_file,
    _use_color,
    _variables,
    _warn,
    _write_private,
    backend_options,
    hardware_options,
    variable_options,
    view_options,
)
from planner.errors import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_WAIT_TIMEOUT,
    PlannerError,
    StalePlanError,
    UsageError,
)
from planner.operations.backend import (
    Backend,
    locked,
    long_lived,
    signals_deferred,
)

# -- plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    plan: Any
    prior: Any
    live: Any


def _plan(
    backend: Backend,
    client: Any,
    store: Any,
    desired: Any,
    targets: Sequence[str],
    replace: Sequence[str] = (),
) -> Planned:
    from planner.operations.plan import read_and_plan

    planned, prior = read_and_plan(
        client,
        desired,
        store.read,
        workspace=backend.workspace,
        targets=targets,
        created_at=_now(),
        replace=replace,
    )
    return Planned(planned.plan, prior, planned.live)


target_option = click.option("--target", "targets", multiple=True, metavar="ADDR", help="Plan only these addresses.")
replace_option = click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="ADDR",
    help="Re-create this job although it is unchanged (e.g. to re-run a succeeded job).",
)
plan_options = _compose(
    target_option,
    replace_option,
    click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "markdown", "json"]),
        default="text",
        show_default=True,
        help="Output format.",
    ),
)


cost_options = _compose(
    click.option("--price-file", metavar="FILE", help="Prices to use instead of the bundled ones (e.g. negotiated)."),
    click.option("--max-cost", type=click.FloatRange(min=0), metavar="USD", help="Fail if the plan may cost more."),
    click.option("--policy", "policy_file", metavar="FILE", help="Policy rules (YAML); see README, Cost and policy."),
)


def _priced(plan: Any, live: Any, prior: Any, files: Sequence[str], opts: Mapping[str, Any]) -> Any:
    """The plan with its costs, a warning if the prices are old, and the policy gates passed."""
    from dataclasses import replace

    from planner.policy import check, config_policy, load_policy_file, max_cost_policy, refuse
    from planner.pricing.cost import annotate
    from planner.pricing.prices import load_book

    book = load_book(opts.get("price_file"))
    plan = annotate(plan, live, prior, book)
    stale = book.stale_warning(datetime.now(UTC).date())
    if stale:
        plan = replace(plan, warnings=(*plan.warnings, stale))
    policy = config_policy(files)
    if opts.get("policy_file"):
        policy = policy.combine(load_policy_file(opts["policy_file"]))
    if opts.get("max_cost") is not None:
        policy = policy.combine(max_cost_policy(opts["max_cost"]))
    violations = check(plan, policy) if not policy.empty else []
    if violations:
        raise refuse(violations)
    return plan


@cli.command("plan")
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--out", "out", metavar="FILE", help="Save the plan for `planner apply FILE`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@plan_options
@cost_options
@variable_options
@hardware_options
@backend_options
@view_options
def plan_command(paths: tuple[str, ...], out: str | None, detailed_exitcode: bool, **opts: Any) -> int:
    """Show what apply would do."""
    from planner.config.validate import load_desired
    from planner.documents.plan import plan_to_json
    from planner.plans.planfile import variables_entry, without_secrets
    from planner.render import render_plan

    variables = _variables(opts["variables"], opts["var_files"], paths)
    with _backend(opts) as backend, long_lived():
        store = backend.store()
        desired = load_desired(list(paths), variables=variables, hardware=_hardware(opts))
        _warn(desired)
        client = backend.client()
        with locked(store, "plan", backend.lock_timeout):
            planned = _plan(backend, client, store, desired, opts["targets"], opts["replace"])
    _RETAINED.append((desired, planned))
    plan = _priced(planned.plan, planned.live, planned.prior, desired.files, opts)
    if out:
        doc = plan_to_json(plan, for_file=True)
        doc["config"] = {"files": list(desired.files), "hash": desired.config_hash}
        doc["variables"] = variables_entry(variables)
        doc = without_secrets(doc)
        _write_private(Path(out), json.dumps(doc, indent=2, sort_keys=True) + "\n")
    if not opts["quiet"] or opts["fmt"] != "text":
        color = _use_color(opts["no_color"])
        text = render_plan(
            plan, opts["fmt"], color=color, show_sensitive=opts["show_sensitive"], context=_ci_context()
        )
        click.echo(text.rstrip("\n"))
    if out and not opts["quiet"] and opts["fmt"] == "text":
        click.echo(f"\nSaved the plan to {out}. To perform exactly these actions, run: planner apply {out}")
    return EXIT_CHANGES if detailed_exitcode and plan.has_changes else EXIT_OK


# -- apply ---------------------------------------------------------------------------------------


@cli.command("apply")
@click.argument("paths", nargs=-1, required=True)
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--parallelism", default=10, show_default=True, type=click.IntRange(1, 256), help="Changes carried out at once."
)
@click.option("--wait-timeout", default=DEFAULT_WAIT_TIMEOUT, show_default=True, help="How long to wait for jobs.")
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
def apply_command(
    paths: tuple[str, ...],
    auto_approve: bool,
    parallelism: int,
    wait_timeout: str,
    wait_outcome: bool,
    outcome_timeout: str | None,
    **opts: Any,
) -> int:
    """Plan and carry it out, or carry out a saved plan exactly."""
    from planner.apply import ApplyOptions
    from planner.config.validate import load_desired
    from planner.documents.plan import plan_from_json
    from planner.operations.plan import refreshed
    from planner.render import render_plan

    color = _use_color(opts["no_color"])
    wait_seconds = _duration(wait_timeout, "--wait-timeout")
    if outcome_timeout is not None and not wait_outcome:
        raise UsageError("--timeout goes with --wait (for deletes and cancels, use --wait-timeout)")
    outcome_seconds = _duration(outcome_timeout, "--timeout") if outcome_timeout is not None else None
    saved = _read_plan_file(paths[0]) if _is_plan_file(paths) else None
    desired = None
    if saved is None:
        with long_lived():
            desired = load_desired(
                list(paths),
                variables=_variables(opts["variables"], opts["var_files"], paths),
                hardware=_hardware(opts),
            )
        _warn(desired)
    elif opts["targets"]:
        raise UsageError("--target cannot be used with a saved plan: the plan already says what to do")
    elif opts["replace"]:
        raise UsageError("--replace cannot be used with a saved plan: the plan already says what to do")
    with _backend(opts) as backend:
        client = backend.client()
        store = backend.store()
        with locked(store, "apply", backend.lock_timeout):
            if saved is not None:
                plan = plan_from_json(saved)
                if plan.workspace != backend.workspace:
                    raise StalePlanError(f"the plan is for workspace {plan.workspace!r}, not {backend.workspace!r}")
                plan, prior, live = _check_saved_plan(backend, client, store, plan, saved, opts)
            else:
                with long_lived():
                    planned = _plan(backend, client, store, desired, opts["targets"], replace=opts["replace"])
                plan, prior, live = planned.plan, planned.prior, planned.live
                plan = _priced(plan, live, prior, desired.files if desired is not None else (), opts)
            fresh = refreshed(prior, live) if prior is not None else None
            if not opts["quiet"] or not plan.has_changes:
                click.echo(render_plan(plan, "text", color=color, show_sensitive=opts["show_sensitive"]).rstrip())
            if not plan.has_changes:
                if fresh is not None and fresh is not prior:
                    with signals_deferred():
                        store.write(fresh)
                return EXIT_OK
            if saved is None and not auto_approve:
                _confirm()
            options = ApplyOptions(workspace=backend.workspace, parallelism=parallelism, wait_timeout=wait_seconds)
            code = _run_apply(plan, fresh, client, store, options, color)
        # The lock is released: waiting for hours-long jobs must not block other runs.
        if wait_outcome and code == EXIT_OK:
            return _wait_after_apply(plan, prior, client, store, backend.workspace, outcome_seconds, color)
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


def _check_saved_plan(
    backend: Backend, client: Any, store: Any, plan: Any, doc: Mapping[str, Any], opts: Mapping[str, Any]
) -> tuple[Any, Any, Any]:
    from planner.config.variables import gather
    from planner.operations.apply import check_saved_plan

    def given() -> Any:
        return gather(opts["variables"], opts["var_files"], settings.read().variables)

    return check_saved_plan(client, store, backend.workspace, plan, doc, given, _hardware(opts))


def _run_apply(plan: Any, prior: Any, client: Any, store: Any, options: Any, color: bool) -> int:
    from planner.apply import Applier, Outcome
    from planner.state import State

    state = prior if prior is not None else State.new()
    if prior is None:
        with signals_deferred():
            state = store.write(state)
    progress = _apply_progress(plan, color)
    applier = Applier(client, store, state, options, on_event=progress.event)
    result: list[Any] = []
    failure: list[BaseException] = []

    finished = threading.Event()

    def work() -> None:
        try:
            result.append(applier.run(plan))
        except BaseException as err:  # re-raised in the main thread
            failure.append(err)
        finally:
            finished.set()

    # Ctrl-C and SIGTERM only raise a flag while apply runs: no exception can land in the
    # middle of the bookkeeping. Workers start no new step once the flag is up.
    interrupts: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        interrupts.append(signum)
        applier.request_stop()
        # Steps in flight get a second to finish; a wait still going then is ended, and a
        # create whose answer is lost that way is found by its labels on the next plan.
        client.cancel(grace=1.0)
        if len(interrupts) == 1:
            progress.line("Interrupt received: starting no new step, finishing the ones in flight…")

    worker = threading.Thread(target=work, name="apply-main", daemon=True)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    worker.start()
    try:
        while not finished.wait(0.1):
            progress.tick()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        progress.close()
    interrupted = bool(interrupts)
    final = result[0].state if result else applier.book.state
    write_error: PlannerError | None = None
    try:
        with signals_deferred():
            store.write(final)
    except PlannerError as err:
        write_error = err  # the report is still printed: it says what happened
    if failure:
        raise failure[0]
    report = result[0]
    from planner.render.progress import report_lines, unrecorded_lines

    for line in report_lines(report):
        click.echo(line)
    for line in unrecorded_lines(report, write_error is not None):
        click.echo(line, err=True)
    if write_error is not None:
        raise write_error
    if report.unrecorded:
        return EXIT_ERROR
    if interrupted or report.interrupted:
        click.echo("Interrupted: finished steps are saved; run apply again to finish.", err=True)
        return EXIT_INTERRUPTED
    if report.count(Outcome.FAILED):
        return EXIT_ERROR
    return EXIT_OK


def _apply_progress(plan: Any, color: bool) -> Any:
    from planner.render.progress import ApplyProgress

    total = sum(len(c.steps) for c in plan.changes if c.action.value != "no-op")
    return ApplyProgress(sys.stderr, total=total, tty=sys.stderr.isatty(), color=color)


def _wait_after_apply(
    plan: Any, prior: Any, client: Any, store: Any, workspace: str, timeout: float | None, color: bool
) -> int:
    """`apply --wait`: follow the jobs this apply created until each ends; the exit code says how."""
    from planner.plans.model import StepKind
    from planner.render.progress import WaitView
    from planner.status import console_url
    from planner.watch import WatchedJob, wait_for_jobs

    final = store.read()
    before = {r.name for r in prior.jobs.values()} if prior is not None else set()
    creating = {c.address for c in plan.changes if any(s.kind is StepKind.CREATE for s in c.steps)}
    jobs = [
        WatchedJob(record.name, address)
        for address, record in sorted((final.jobs if final is not None else {}).items())
        if address in creating and record.name not in before
    ]
    if not jobs:
        click.echo("\nNo job was created by this apply: nothing to wait for.")
        return EXIT_OK
    limit = f", for at most {_seconds_text(timeout)}" if timeout is not None else ""
    click.echo(f"\nWaiting for {len(jobs)} job{'s' if len(jobs) != 1 else ''} to finish{limit} "
               "(Ctrl-C stops waiting; the jobs keep running)…")
    view = WaitView(sys.stderr, total=len(jobs), tty=sys.stderr.isatty(), color=color)
    try:
        result = wait_for_jobs(client, jobs, workspace, timeout=timeout, on_transition=view.transition,
                               on_poll=view.poll, sleep=view.sleep)
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
        click.echo(f"Timed out after {_seconds_text(timeout or 0)}: the jobs keep running.", err=True)
        return EXIT_WAIT_TIMEOUT
    return EXIT_OK


def _seconds_text(seconds: float) -> str:
    from planner.render.jobstate import duration_text

    return duration_text(seconds)


# -- drift ---------------------------------------------------------------------------------------


