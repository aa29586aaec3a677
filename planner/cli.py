"""The command line: reads flags and environment, runs a stage, prints, and maps errors to exit codes.

The only module that imports click or prints; the environment comes from planner.settings. Exit codes (DESIGN §7):
0 ok / no changes, 1 error, 2 changes present (plan --detailed-exitcode) or drift found,
3 an unexpected bug (see --debug), 130 interrupted; `apply --wait`: 4 a job failed, 5 timed out.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from planner import __version__, apimodel, settings
from planner.errors import (
    EXIT_BUG,
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_WAIT_TIMEOUT,
    ApiError,
    ConfigError,
    PlannerError,
    StalePlanError,
    StateError,
    UsageError,
)
from planner.operations.backend import (
    Backend,
    locked,
    long_lived,
    on_interrupt,
    signals_deferred,
)

log = logging.getLogger("planner")

DEFAULT_WAIT_TIMEOUT = "10m"
DEFAULT_LOCK_TIMEOUT = "0s"


# -- small helpers -----------------------------------------------------------------------------


def _duration(text: str, flag: str) -> float:
    if text.strip() in ("0", ""):
        return 0.0
    seconds = apimodel.parse_duration(text)
    if seconds is None:
        raise UsageError(f"{flag}: {text!r} is not a duration (examples: 30s, 5m, 1h)")
    return float(seconds)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _use_color(no_color: bool) -> bool:
    return not no_color and not settings.read().no_color and sys.stdout.isatty()


def _write_private(path: Path, text: str) -> None:
    """Write a file that may hold secrets (saved plans): mode 0600, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _emit(text: str, out: str | None, *, quiet: bool = False) -> None:
    from planner.secrets import mask_text

    text = mask_text(text)  # a report file is output too: no sensitive variable's value in it
    if out:
        try:
            _write_private(Path(out), text if text.endswith("\n") else text + "\n")
        except OSError as err:
            raise UsageError(f"cannot write {out}: {err.strerror}") from err
    if not quiet:
        click.echo(text.rstrip("\n"))


def _variables(pairs: Sequence[str], var_files: Sequence[str], paths: Sequence[str] = ()) -> Any:
    """The configuration's variables (planner.config.variables): PLANNER_VAR_<NAME> < --var-file (in order)
    < --var, later sources winning as in Terraform, checked against the files' declarations."""
    from planner import secrets
    from planner.config.variables import gather, resolve

    values = resolve(list(paths), gather(pairs, var_files, settings.read().variables))
    secrets.register(values.sensitive_values())
    for where in values.unused:
        click.echo(f"Warning: {where}: no file uses this variable (declare variables to make this an error)", err=True)
    return values


# -- shared option sets --------------------------------------------------------------------------

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _compose(*decorators: Decorator) -> Decorator:
    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


variable_options = _compose(
    click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Set a ${var.NAME}."),
    click.option("--var-file", "var_files", multiple=True, metavar="FILE", help="YAML mapping of variables."),
)

hardware_options = _compose(
    click.option(
        "--allow-unknown-hardware",
        is_flag=True,
        help="Trust machine types outside planner's catalog (no warning); region gaps become warnings.",
    ),
    click.option(
        "--hardware-catalog",
        metavar="FILE",
        help="YAML file adding private machine types and regions to planner's hardware catalog.",
    ),
)


def _hardware(opts: Mapping[str, Any]) -> Any:
    """The hardware options of a command (None when both flags are left out: the default catalog)."""
    if not opts.get("allow_unknown_hardware") and not opts.get("hardware_catalog"):
        return None
    from planner.hardware import HardwareOptions, load_catalog

    catalog = load_catalog(opts.get("hardware_catalog"))
    return HardwareOptions(catalog=catalog, allow_unknown=bool(opts.get("allow_unknown_hardware")))


def _warn(desired: Any) -> None:
    """Configuration warnings (hardware outside the catalog, ignored settings), on stderr."""
    for warning in getattr(desired, "warnings", ()):
        click.echo(f"Warning: {warning}", err=True)


backend_options = _compose(
    click.option("--workspace", default="default", show_default=True, help="Workspace (state and labels)."),
    click.option("--state", "state_spec", metavar="PATH|gs://BUCKET/PREFIX", help="State location [PLANNER_STATE]."),
    click.option("--emulator", is_flag=True, help="Run against the embedded Vertex AI emulator (data in state/)."),
    click.option("--endpoint", metavar="URL", help="API endpoint override [PLANNER_API_ENDPOINT]."),
    click.option("--impersonate-service-account", metavar="EMAIL", help="Act as this service account."),
    click.option("--max-requests-per-minute", type=float, help="Fixed cap on API requests per project+region."),
    click.option("--max-creates-per-minute", type=float, help="Fixed cap on job creates per project+region."),
    click.option(
        "--lock-timeout", default=DEFAULT_LOCK_TIMEOUT, show_default=True, help="Wait this long for the lock."
    ),
    click.option(
        "--ignore-backup", is_flag=True, help="Start a new state even where only its .backup or journal is left."
    ),
    click.option(
        "--request-timeout",
        default="60s",
        show_default=True,
        metavar="DUR",
        help="Total deadline of each API request attempt: connect, send and the whole answer.",
    ),
)

def _without(options: Decorator, *names: str) -> Decorator:
    """An option set minus the options a command would ignore (a flag offered must do something)."""

    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = options(fn)
        params = getattr(fn, "__click_params__", [])
        params[:] = [p for p in params if p.name not in names]
        return fn

    return apply


view_options = _compose(
    click.option("--no-color", is_flag=True, help="No ANSI colours (also NO_COLOR)."),
    click.option("--show-sensitive", is_flag=True, help="Show env values instead of masking them."),
    click.option("--quiet", "-q", is_flag=True, help="Print only what a script needs."),
)


def _backend_of(opts: Mapping[str, Any]) -> Backend:
    """The Backend the flags and settings ask for."""
    workspace = str(opts["workspace"])
    if not _valid_workspace(workspace):
        raise UsageError(f"--workspace {workspace!r}: use lowercase letters, digits and dashes (≤ 63)")
    env = settings.read()
    return Backend(
        workspace=workspace,
        state_spec=opts.get("state_spec") or env.state_spec,
        emulator=bool(opts.get("emulator")),
        endpoint=opts.get("endpoint") or env.endpoint,
        impersonate_service_account=opts.get("impersonate_service_account"),
        max_requests_per_minute=opts.get("max_requests_per_minute"),
        max_creates_per_minute=opts.get("max_creates_per_minute"),
        lock_timeout=_duration(str(opts.get("lock_timeout") or "0s"), "--lock-timeout"),
        hardware_catalog=opts.get("hardware_catalog"),
        ignore_backup=bool(opts.get("ignore_backup")),
        request_timeout=_positive_duration(str(opts.get("request_timeout") or "60s"), "--request-timeout"),
        storage_host=env.storage_emulator_host,
    )


def _positive_duration(text: str, flag: str) -> float:
    seconds = _duration(text, flag)
    if seconds <= 0:
        raise UsageError(f"{flag}: {text!r} must be more than zero")
    return seconds


def _valid_workspace(name: str) -> bool:
    return 0 < len(name) <= 63 and name[0].isalpha() and all(c.islower() or c.isdigit() or c == "-" for c in name)


@contextmanager
def _backend(opts: Mapping[str, Any]) -> Iterator[Backend]:
    backend = _backend_of(opts)
    try:
        yield backend
    finally:
        backend.close()



# -- the command group ---------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="planner")
@click.option("--debug", is_flag=True, help="Log requests (never tokens) and show tracebacks of bugs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Plan and apply Google Vertex AI CustomJobs declaratively."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if debug:
        from planner.secrets import MaskingFilter

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        for handler in logging.getLogger().handlers:
            handler.addFilter(MaskingFilter())


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@variable_options
@hardware_options
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
def validate(
    paths: tuple[str, ...], variables: tuple[str, ...], var_files: tuple[str, ...], fmt: str, **hardware: Any
) -> int:
    """Check desired-state files against the schema and the hardware catalog; nothing is sent anywhere."""
    from planner.config.validate import load_desired

    try:
        desired = load_desired(
            list(paths), variables=_variables(variables, var_files, paths), hardware=_hardware(hardware)
        )
    except ConfigError as err:
        if fmt == "json":
            doc = {
                "valid": False,
                "error_count": len(err.diagnostics),
                "diagnostics": [d.to_json() for d in err.diagnostics],
            }
            click.echo(json.dumps(doc, indent=2))
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


def _ci_context() -> dict[str, str]:
    return dict(settings.read().ci)


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
    from planner.plans.engine import plan_to_json
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


def _is_plan_file(paths: Sequence[str]) -> bool:
    if len(paths) != 1:
        return False
    path = Path(paths[0])
    if not path.is_file() or path.suffix.lower() not in (".json", ".plan", ".tfplan"):
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip()
    except OSError:
        return False
    return head.startswith(b"{")


def _read_plan_file(path: str) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"{path}: not a readable saved plan ({err})") from err
    if not isinstance(doc, dict) or "resource_changes" not in doc or "format_version" not in doc:
        raise UsageError(f"{path}: not a saved plan (written by `planner plan -o FILE`)")
    if str(doc["format_version"]).split(".")[0] != "1":
        raise UsageError(f"{path}: plan format {doc['format_version']} is not supported by planner {__version__}")
    return doc


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
    from planner.operations.plan import refreshed
    from planner.plans.engine import plan_from_json
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
    from planner.plans.engine import StepKind
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


@cli.command("drift")
@click.argument("paths", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--ignore", "ignore", multiple=True, metavar="PATTERN", help="Glob over addresses and field paths.")
@click.option("--include-unmanaged", is_flag=True, help="Also report jobs without planner labels.")
@click.option("-o", "--out", "out", metavar="FILE", help="Also write the report to FILE.")
@variable_options
@hardware_options
@_without(backend_options, "lock_timeout", "max_creates_per_minute")  # drift takes no lock and creates nothing
@view_options
def drift_command(
    paths: tuple[str, ...], fmt: str, ignore: tuple[str, ...], include_unmanaged: bool, out: str | None, **opts: Any
) -> int:
    """Report how the live jobs moved away from the last apply (read only; exit 2 on drift)."""
    from planner.config.validate import load_desired
    from planner.drift import detect_drift
    from planner.operations.plan import read_live
    from planner.render import render_drift

    with long_lived():
        variables = _variables(opts["variables"], opts["var_files"], paths)
        desired = load_desired(list(paths), variables=variables, hardware=_hardware(opts)) if paths else None
    with _backend(opts) as backend:
        client = backend.client()
        store = backend.store()
        with long_lived():
            prior = _explicit_state(backend, store, store.read())  # read only: no lock taken, nothing written
            live = read_live(client, desired, prior, backend.workspace, include_unmanaged=include_unmanaged)
        report = detect_drift(
            prior,
            live,
            workspace=backend.workspace,
            desired=desired,
            ignore=ignore,
            include_unmanaged=include_unmanaged,
            created_at=_now(),
        )
    text = render_drift(
        report, fmt, color=_use_color(opts["no_color"]) and not out, show_sensitive=opts["show_sensitive"]
    )
    _emit(text, out, quiet=opts["quiet"] and fmt == "text")
    return EXIT_CHANGES if report.has_drift else EXIT_OK


# -- status and logs (read only: no lock, no state write) -----------------------------------------


@cli.command("status")
@click.argument("paths", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--watch", is_flag=True, help="Refresh until every job has ended (Ctrl-C stops).")
@click.option("--interval", default="10s", show_default=True, metavar="DURATION", help="How often --watch refreshes.")
@click.option("--address", "addresses", multiple=True, metavar="GLOB", help="Only addresses matching a glob.")
@click.option("--job-state", "job_states", multiple=True, metavar="STATE", help="Only jobs in a state (RUNNING…).")
@click.option("--price-file", metavar="FILE", help="Prices for the cost-so-far column instead of the bundled ones.")
@variable_options
@_without(backend_options, "lock_timeout", "max_creates_per_minute")  # status takes no lock and creates nothing
@click.option("--no-color", is_flag=True, help="No ANSI colours (also NO_COLOR).")
def status_command(
    paths: tuple[str, ...],
    fmt: str,
    watch: bool,
    interval: str,
    addresses: tuple[str, ...],
    job_states: tuple[str, ...],
    **opts: Any,
) -> int:
    """Show what every managed job is doing now, with its run time and console link (read only)."""
    from planner.config.validate import load_desired
    from planner.pricing.prices import load_book
    from planner.render.status_view import render_status, transition_lines, watch_footer
    from planner.status import StatusFilter, parse_state_filter, read_status, state_changes
    from planner.watch import watch_status

    only = StatusFilter(tuple(addresses), frozenset(parse_state_filter(s) for s in job_states))
    every = _duration(interval, "--interval")
    if watch and fmt != "text":
        raise UsageError("--watch shows text; for --format json or markdown, run status repeatedly")
    if watch and every <= 0:
        raise UsageError("--interval must be more than 0s")
    desired = (
        load_desired(list(paths), variables=_variables(opts["variables"], opts["var_files"], paths))
        if paths
        else None
    )
    prices = load_book(opts.get("price_file"))
    color = _use_color(opts["no_color"])
    tty = sys.stdout.isatty()
    with _backend(opts) as backend:
        client = backend.client()
        store = backend.store()

        def read() -> Any:
            prior = store.read()  # read only: no lock taken, nothing written
            return read_status(
                client,
                prior,
                backend.workspace,
                now=time.time(),
                desired=desired,
                only=only,
                created_at=_now(),
                prices=prices,
            )

        if not watch:
            click.echo(render_status(read(), fmt, color=color).rstrip("\n"))
            return EXIT_OK

        def show(previous: Any, current: Any) -> None:
            if tty:  # redraw in place
                footer = watch_footer(current, when=_clock_time(), interval=interval,
                                      watching=time.monotonic() - watch_started)
                click.echo("\033[H\033[2J" + render_status(current, "text", color=color) + footer)
            elif previous is None:
                click.echo(render_status(current, "text", color=color).rstrip("\n"))
            else:
                for line in transition_lines(state_changes(previous.jobs, current.jobs), when=_clock_time()):
                    click.echo(line)

        watch_started = time.monotonic()
        watch_status(read, show, interval=every)
    click.echo("Every job has ended.")
    return EXIT_OK


@cli.command("logs")
@click.argument("address")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends (Ctrl-C stops).")
@click.option("--since", metavar="DURATION|TIMESTAMP", help="Only lines from this long ago (1h) or this RFC 3339 time.")
@click.option("--replica", metavar="TASK", help="Only one replica's lines, e.g. workerpool0-0.")
@click.option("--interval", default="3s", show_default=True, metavar="DURATION", help="How often --follow reads.")
@_without(backend_options, "lock_timeout", "max_creates_per_minute")  # logs takes no lock and creates nothing
@click.option("--no-color", is_flag=True, help="No ANSI colours (also NO_COLOR).")
def logs_command(address: str, follow: bool, since: str | None, replica: str | None, interval: str, **opts: Any) -> int:
    """Print a job's log lines from Cloud Logging (ADDRESS, or a projects/P/locations/L/customJobs/ID name)."""
    import re

    from planner.api.cloudlogging import list_log_entries
    from planner.logs import follow as follow_logs
    from planner.logs import read_lines
    from planner.refresh import live_job
    from planner.render.logs_view import log_line_text
    from planner.render.progress import FollowView

    every = _duration(interval, "--interval")
    if follow and every <= 0:
        raise UsageError("--interval must be more than 0s")
    start = _since(since) if since else None
    color = _use_color(opts["no_color"])
    with _backend(opts) as backend:
        client = backend.client()
        if re.fullmatch(r"projects/[^/]+/locations/[^/]+/customJobs/[^/]+", address):
            name = address
        else:
            state = backend.store().read()  # read only: no lock
            if state is None or address not in state.jobs:
                raise UsageError(f"{address}: not in state (give an address from `planner state list` or a job name)")
            name = state.jobs[address].name
        project, job_id = name.split("/")[1], name.rsplit("/", 1)[-1]

        def read(project: str, filter: str) -> Iterator[dict[str, Any]]:
            return list_log_entries(client, project, filter)

        if not follow:
            for line in read_lines(read, project, job_id, since=start, replica=replica):
                click.echo(log_line_text(line, color=color))
            return EXIT_OK
        view = FollowView(sys.stdout, sys.stderr, tty=sys.stderr.isatty() and sys.stdout.isatty(), color=color)

        def job_state() -> str:
            state = str(live_job(client.get_job(name)).state)
            view.job_state(state)
            return state

        try:
            follow_logs(read, project, job_id, on_line=lambda line: view.line(log_line_text(line, color=color)),
                        since=start, replica=replica, interval=every, job_state=job_state)
        finally:
            view.close()
    return EXIT_OK


def _since(text: str) -> str:
    """--since: a duration back from now (30m, 1h) or an RFC 3339 timestamp, as a timestamp."""
    seconds = apimodel.parse_duration(text)
    if seconds is not None:
        return datetime.fromtimestamp(time.time() - float(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: expected a duration (30m, 1h) or an RFC 3339 time") from None
    return text


def _clock_time() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


# -- show, state, import, force-unlock ------------------------------------------------------------


@cli.command("show")
@click.argument("planfile")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("-o", "--out", "out", metavar="FILE", help="Also write the rendering to FILE.")
@click.option("--no-color", is_flag=True, help="No ANSI colours (also NO_COLOR).")
@click.option("--show-sensitive", is_flag=True, help="Show env values a plan holds (a saved plan holds none).")
def show_command(planfile: str, fmt: str, out: str | None, no_color: bool, show_sensitive: bool) -> int:
    """Render a saved plan."""
    from planner.plans.engine import plan_from_json
    from planner.render import render_plan

    plan = plan_from_json(_read_plan_file(planfile))
    color = _use_color(no_color) and not out
    _emit(render_plan(plan, fmt, color=color, show_sensitive=show_sensitive, context=_ci_context()), out)
    return EXIT_OK


@cli.group("state")
def state_group() -> None:
    """Inspect or edit the state."""


def _state_backend_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--workspace", default="default", show_default=True, help="Workspace whose state to use.")(fn)
    fn = click.option(
        "--state", "state_spec", metavar="PATH|gs://BUCKET/PREFIX", help="State location [PLANNER_STATE]."
    )(fn)
    fn = click.option(
        "--lock-timeout", default=DEFAULT_LOCK_TIMEOUT, show_default=True, help="Wait this long for the lock."
    )(fn)
    fn = click.option("--ignore-backup", is_flag=True, help="Read a missing state as empty even beside its backup.")(fn)
    return fn


# state list / state show read without a lock, force-unlock removes one: no --lock-timeout.
_state_read_options = _without(_state_backend_options, "lock_timeout")


def _explicit_state(backend: Backend, store: Any, state: Any) -> Any:
    """A state that --state (or PLANNER_STATE) names must exist for commands that only read it:
    a mistyped path would otherwise read as an empty state ("No drift")."""
    if state is None and backend.state_spec:
        raise UsageError(f"no state at {store.description}", hint="check --state / PLANNER_STATE")
    return state


def _state_backend(opts: Mapping[str, Any]) -> Backend:
    full = {"emulator": False, "endpoint": None, **opts}
    return _backend_of(full)


@state_group.command("list")
@click.option("--released", is_flag=True, help="List the jobs let go by onRemove cancel/forget instead.")
@_state_read_options
def state_list(released: bool = False, **opts: Any) -> int:
    """List the addresses in state (or, with --released, the jobs planner let go)."""
    backend = _state_backend(opts)
    store = backend.store()
    state = _explicit_state(backend, store, store.read())
    if released:
        for name, job in sorted((state.released if state else {}).items()):
            click.echo(f"{job.address}\t{name}\t{job.how}\t{job.released_at}")
        return EXIT_OK
    for address, record in sorted((state.jobs if state else {}).items()):
        click.echo(f"{address}\t{record.name}\t{record.last_state}")
    return EXIT_OK


@state_group.command("forget-released")
@click.argument("jobs", nargs=-1)
@click.option("--all", "forget_all", is_flag=True, help="Forget every released job.")
@_state_backend_options
def state_forget_released(jobs: tuple[str, ...], forget_all: bool, **opts: Any) -> int:
    """Forget released jobs for good (JOBS: job names or addresses); plans warn about them again
    while they still exist, so delete them first."""
    if not jobs and not forget_all:
        raise UsageError("name the released jobs to forget (job names or addresses), or pass --all")
    backend = _state_backend(opts)
    store = backend.store()
    with locked(store, "state forget-released", backend.lock_timeout):
        state = store.read()
        released = state.released if state is not None else {}
        names = sorted(released) if forget_all else []
        missing = []
        for wanted in jobs:
            found = [n for n, j in released.items() if wanted in (n, j.address)]
            if not found:
                missing.append(wanted)
            names += found
        if missing:
            raise UsageError(f"not released in state: {', '.join(missing)}")
        if state is None or not names:
            return EXIT_OK
        for name in names:
            state = state.without_released(name)
        with signals_deferred():
            store.write(state)
    for name in sorted(set(names)):
        click.echo(f"Forgot released job {name}.")
    return EXIT_OK


@state_group.command("show")
@click.argument("address")
@_state_read_options
def state_show(address: str, **opts: Any) -> int:
    """Show one address's record."""
    from planner.secrets import show_at_rest
    from planner.state.fileformat import record_to_json

    backend = _state_backend(opts)
    state = backend.store().read()
    if state is None or address not in state.jobs:
        raise UsageError(f"{address}: not in state")
    doc = record_to_json(state.jobs[address])
    doc["spec"] = show_at_rest(doc.get("spec"))  # record_to_json keeps env values only as digests
    click.echo(json.dumps({"address": address, **doc}, indent=2, sort_keys=True))
    return EXIT_OK


@state_group.command("rm")
@click.argument("addresses", nargs=-1, required=True)
@_state_backend_options
def state_rm(addresses: tuple[str, ...], **opts: Any) -> int:
    """Forget addresses (the jobs themselves are left alone)."""
    backend = _state_backend(opts)
    store = backend.store()
    with locked(store, "state rm", backend.lock_timeout):
        state = store.read()
        missing = [a for a in addresses if state is None or a not in state.jobs]
        if missing:
            raise UsageError(f"not in state: {', '.join(missing)}")
        assert state is not None
        for address in addresses:
            state = state.without_job(address)
        with signals_deferred():
            store.write(state)
    for address in addresses:
        click.echo(f"Removed {address} from state.")
    return EXIT_OK


@state_group.command("restore")
@_state_backend_options
def state_restore(**opts: Any) -> int:
    """Put the state's .backup back where the state file is missing (or corrupt)."""
    from planner.state import LocalStore

    backend = _state_backend(opts)
    store = backend.store()
    if not isinstance(store, LocalStore):
        raise UsageError("state restore works on a local state file; for gs:// copy the backup object back")
    with locked(store, "state restore", backend.lock_timeout), signals_deferred():
        state = store.restore_backup()
    jobs = len(state.jobs)
    click.echo(f"Restored {store.description} from {store.backup_path} (serial {state.serial}, {jobs} jobs).")
    return EXIT_OK


@cli.command("import")
@click.argument("address", required=False)
@click.argument("job_name", required=False)
@click.option("--generate-config", metavar="FILE|DIR", help="Also write the job's YAML (a DIR with --all-unmanaged).")
@click.option("--all-unmanaged", is_flag=True, help="Every job of --project/--region without planner labels.")
@click.option("--from-gcloud-config", "gcloud_config", metavar="FILE", help="Convert a gcloud --config file.")
@click.option("--address", "address_option", metavar="ADDR", help="The address (with --from-gcloud-config).")
@click.option("--display-name", metavar="NAME", help="The display name (with --from-gcloud-config).")
@click.option("--project", metavar="PROJECT", help="Project (--from-gcloud-config, --all-unmanaged).")
@click.option("--region", metavar="REGION", help="Region (--from-gcloud-config, --all-unmanaged).")
@click.option("-o", "--out", metavar="FILE", help="Write the converted job here (--from-gcloud-config).")
@_without(backend_options, "max_creates_per_minute")  # import creates nothing
def import_command(address: str | None, job_name: str | None, **opts: Any) -> int:
    """Start managing an existing job at ADDRESS (JOB_NAME: projects/P/locations/L/customJobs/ID).

    Or: --from-gcloud-config FILE --address ADDR converts a gcloud config file into a job in a
    desired-state file (nothing is sent or recorded); --all-unmanaged --generate-config DIR
    adopts every unlabelled job of --project/--region."""
    import re

    from planner.refresh import live_job
    from planner.state import JobRecord, State

    if opts["gcloud_config"] is not None or opts["all_unmanaged"]:
        return _import_more(address, job_name, opts)
    if address is None or job_name is None:
        raise UsageError("import needs ADDRESS JOB_NAME (or --from-gcloud-config FILE, or --all-unmanaged)")
    if opts["generate_config"] and Path(opts["generate_config"]).exists():
        raise UsageError(f"--generate-config {opts['generate_config']}: the file exists; planner does not overwrite it")
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", address):
        raise UsageError(f"{address!r} is not a valid address (^[a-z][a-z0-9-]{{0,62}}$)")
    if not re.fullmatch(r"projects/[^/]+/locations/[^/]+/customJobs/[^/]+", job_name):
        raise UsageError(f"{job_name!r} is not a CustomJob name (projects/P/locations/L/customJobs/ID)")
    with _backend(opts) as backend:
        client = backend.client()
        store = backend.store()
        with locked(store, "import", backend.lock_timeout):
            state = store.read() or State.new()
            if address in state.jobs:
                raise UsageError(f"{address} is already in state ({state.jobs[address].name}); `state rm` it first")
            for other, record in state.jobs.items():
                if record.name == job_name or job_name in record.old_names:
                    raise UsageError(f"{job_name} is already managed as {other}")
            try:
                job = live_job(client.get_job(job_name))
            except ApiError as err:
                if err.http_status == 404:
                    raise UsageError(f"{job_name}: no such job") from err
                raise
            if job.managed and (job.workspace != backend.workspace or (job.address and job.address != address)):
                raise UsageError(
                    f"{job_name} is labelled as {job.address!r} in workspace {job.workspace!r}: "
                    "another workspace or address manages it"
                )
            record = JobRecord(
                address=address,
                name=job.name,
                project=job.project,
                location=job.location,
                spec_hash=job.spec_hash,
                spec=dict(job.spec),
                last_state=job.state,
            )
            generated = None
            if opts["generate_config"]:  # before the state: a job in state but not in config would be deleted
                from planner.generate import from_live

                generated = from_live(address, job.resource)
                _emit(generated.text, opts["generate_config"], quiet=True)
            with signals_deferred():
                # A released job taken back is managed again, no longer released.
                store.write(state.with_job(record).without_released(job.name))
    click.echo(f"Imported {job_name} as {address}.")
    if generated is not None:
        click.echo(f"Wrote {opts['generate_config']}.{_variables_hint(generated.variables)}")
    return EXIT_OK


def _variables_hint(variables: Sequence[Any]) -> str:
    if not variables:
        return ""
    names = ", ".join(v.name for v in variables)
    return f" Its env values are sensitive variables, not written to the file: pass {names} with --var."


def _import_more(address: str | None, job_name: str | None, opts: Mapping[str, Any]) -> int:
    """import --from-gcloud-config and import --all-unmanaged (see planner.adoption)."""
    from planner import adoption

    if opts["gcloud_config"] is not None:
        if address or job_name or opts["all_unmanaged"]:
            raise UsageError("--from-gcloud-config takes --address ADDR, not ADDRESS JOB_NAME or --all-unmanaged")
        if not opts["address_option"]:
            raise UsageError("--from-gcloud-config needs --address ADDR")
        if opts["out"] and Path(opts["out"]).exists():
            raise UsageError(f"--out {opts['out']}: the file exists; planner does not overwrite it")
        generated = adoption.from_gcloud_config(
            opts["gcloud_config"],
            address=opts["address_option"],
            display_name=opts["display_name"],
            project=opts["project"] or "${var.project}",
            location=opts["region"] or "${var.region}",
        )
        _emit(generated.text, opts["out"], quiet=bool(opts["out"]))
        if opts["out"]:
            click.echo(f"Wrote {opts['out']}.{_variables_hint(generated.variables)}", err=True)
        return EXIT_OK
    if address or job_name:
        raise UsageError("--all-unmanaged takes no ADDRESS JOB_NAME")
    if not opts["generate_config"] or not opts["project"] or not opts["region"]:
        raise UsageError("--all-unmanaged needs --project, --region and --generate-config DIR")
    target = Path(opts["generate_config"])
    if target.exists() and not target.is_dir():
        raise UsageError(f"--generate-config {target}: not a directory")
    with _backend(opts) as backend:
        client = backend.client()
        store = backend.store()
        with locked(store, "import", backend.lock_timeout):
            from planner.state import State

            state = store.read() or State.new()
            resources = adoption.unmanaged_jobs(client, opts["project"], opts["region"], state)
            existing = {p.stem for p in target.glob("*.yaml")} if target.is_dir() else set()
            adopted = adoption.adopt_all(resources, state, existing)
            for item in adopted:
                _emit(item.generated.text, str(target / f"{item.record.address}.yaml"), quiet=True)
            for item in adopted:
                state = state.with_job(item.record)
            if adopted:
                with signals_deferred():
                    store.write(state)
    for item in adopted:
        hint = _variables_hint(item.generated.variables)
        click.echo(f"Imported {item.record.name} as {item.record.address} ({target / item.record.address}.yaml).{hint}")
    click.echo(f"{len(adopted)} unmanaged job(s) imported.")
    return EXIT_OK


@cli.command("export")
@click.argument("address")
@click.option("--gcloud-config", "gcloud_config", is_flag=True, required=True, help="As a gcloud --config file.")
@click.option("-o", "--out", metavar="FILE", help="Write it here (mode 0600) instead of printing it.")
@click.option("--show-sensitive", is_flag=True, help="Write env values (gcloud files hold them in plain text).")
@backend_options
def export_command(address: str, gcloud_config: bool, out: str | None, show_sensitive: bool, **opts: Any) -> int:
    """Write the job at ADDRESS as the file `gcloud ai custom-jobs create --config` takes."""
    from planner import adoption

    with _backend(opts) as backend:
        state = backend.store().read()
        if state is None or address not in state.jobs:
            raise UsageError(f"{address}: not in state")
        resource = adoption.fetch(backend.client(), state.jobs[address].name).resource
    _emit(adoption.export_gcloud(resource, show_sensitive=show_sensitive), out, quiet=bool(out))
    return EXIT_OK


@cli.command("force-unlock")
@click.argument("lock_id")
@_state_read_options
def force_unlock(lock_id: str, **opts: Any) -> int:
    """Remove a lock left by a run that died (LOCK_ID from the error message)."""
    backend = _state_backend(opts)
    backend.store().force_unlock(lock_id)
    click.echo(f"Lock {lock_id} removed.")
    return EXIT_OK


# -- emulator ------------------------------------------------------------------------------------


@cli.group("emulator")
def emulator_group() -> None:
    """A local imitation of the Vertex AI CustomJobs API."""


@emulator_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback only).")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--data", metavar="FILE", help="Persist jobs to FILE.")
@click.option("--latency-ms", default=0.0, type=float, help="Add this much latency to every answer.")
@click.option(
    "--fail-rate", "fail_rate", multiple=True, metavar="STATUS=RATE", help="Answer this fraction with STATUS (503=0.2)."
)
@click.option("--drop-rate", default=0.0, type=float, help="Close this fraction of connections unanswered.")
@click.option("--lost-create-rate", default=0.0, type=float, help="Create this fraction of jobs but lose the answer.")
@click.option("--echo-defaults", is_flag=True, help="Answer with server-side defaults filled in.")
@click.option("--max-page-size", default=None, type=int, help="Largest page a list answers with.")
@click.option("--queue-seconds", default=None, type=float, help="How long a job stays QUEUED.")
@click.option("--run-seconds", default=None, type=float, help="How long a job stays RUNNING.")
@click.option("--cancel-seconds", default=None, type=float, help="How long a job stays CANCELLING.")
@click.option("--delete-seconds", default=0.0, type=float, help="Delete operations stay in progress this long.")
@click.option("--create-quota", default=None, metavar="N/WINDOW", help="e.g. 60/60s")
@click.option("--request-quota", default=None, metavar="N/WINDOW", help="e.g. 600/60s")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
@click.option("--lenient", is_flag=True, help="Accept jobs Vertex AI would refuse (no hardware/submit-time checks).")
@click.option("--hardware-catalog", metavar="FILE", help="Check creates with this catalog override file too.")
def emulator_serve(**opts: Any) -> int:
    """Serve the emulator until interrupted."""
    from planner.emulator import config_from_cli, serve_forever

    config = config_from_cli(
        host=opts["host"],
        port=opts["port"],
        data=opts["data"],
        latency_ms=opts["latency_ms"],
        fail_rate=list(opts["fail_rate"]),
        lost_create_rate=opts["lost_create_rate"],
        echo_defaults=opts["echo_defaults"],
        max_page_size=opts["max_page_size"],
        queue_seconds=opts["queue_seconds"],
        run_seconds=opts["run_seconds"],
        cancel_seconds=opts["cancel_seconds"],
        delete_seconds=opts["delete_seconds"],
        create_quota=opts["create_quota"],
        request_quota=opts["request_quota"],
        allow_remote=opts["allow_remote"],
        drop_rate=opts["drop_rate"],
        lenient=opts["lenient"],
        hardware_catalog=opts["hardware_catalog"],
    )
    serve_forever(config)
    return EXIT_OK


# -- entry point: the one place errors become exit codes ------------------------------------------


# -- pricing ----------------------------------------------------------------------------------


@cli.group("pricing")
def pricing_group() -> None:
    """The price file behind plan costs."""


@pricing_group.command("refresh")
@click.option("--out", "out", metavar="FILE", help="Where to write the price file [planner/data/prices.json].")
@click.option("--endpoint", metavar="URL", help="Cloud Billing Catalog API root [PLANNER_BILLING_ENDPOINT].")
@click.option("--service", default=None, metavar="ID", help="Billing service ID [Vertex AI: C7E2-9256-1C43].")
def pricing_refresh(out: str | None, endpoint: str | None, service: str | None) -> int:
    """Rebuild the price file from the Cloud Billing Catalog API (Vertex AI custom-training SKUs)."""
    import httpx

    from planner.api.endpoint import parse_endpoint
    from planner.pricing.catalog import DEFAULT_BASE_URL, VERTEX_AI_SERVICE, refresh
    from planner.pricing.prices import book_to_json

    env = settings.read()
    url = endpoint or env.billing_endpoint or DEFAULT_BASE_URL
    parsed = parse_endpoint(url)
    base = parsed.override or DEFAULT_BASE_URL
    headers = {}
    auth: Any = None
    api_key = env.billing_api_key
    if parsed.anonymous:
        pass
    elif api_key:
        # A header rather than ?key=: URLs end up in logs and error messages, headers do not.
        headers["X-Goog-Api-Key"] = api_key
    else:
        import google.auth

        from planner.api.auth import GoogleAuth

        try:
            credentials, _project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        except google.auth.exceptions.DefaultCredentialsError as err:
            raise UsageError(
                "no credentials for the Cloud Billing Catalog API",
                hint="set PLANNER_BILLING_API_KEY, or sign in with `gcloud auth application-default login`",
            ) from err
        auth = GoogleAuth(credentials)
    today = datetime.now(UTC).date().isoformat()
    try:
        with httpx.Client(headers=headers, auth=auth, timeout=60.0) as http:
            result = refresh(http, base, service or VERTEX_AI_SERVICE, today)
    finally:
        if auth is not None:
            auth.close()
    note = (
        f"Written by `planner pricing refresh` from {base.rstrip('/')}/v1/services/{service or VERTEX_AI_SERVICE}/skus "
        f"on {today}: {result.kept} of {result.seen} SKUs are custom-training machine, accelerator or boot disk rates."
    )
    path = Path(out) if out else Path(__file__).resolve().parent / "data" / "prices.json"
    text = json.dumps(book_to_json(result.book, note=note), indent=2, ensure_ascii=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    click.echo(
        f"Wrote {len(result.book.entries)} prices from {result.kept} of {result.seen} SKUs to {path} "
        f"(prices of {today})."
    )
    for key in result.conflicts:
        click.echo(f"Note: two SKUs price {key}; the later effectiveTime was kept.")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    # planner builds large, long-lived trees (10,000 job specs) and few reference cycles: the
    # default collector thresholds would re-walk them hundreds of times per run.
    gc.set_threshold(100_000, 50, 100)
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_interrupt)
    from planner.secrets import mask_standard_streams

    mask_standard_streams()  # no sensitive variable's value is ever printed, whatever prints it
    try:
        code = cli.main(args=args, prog_name="planner", standalone_mode=False)
    except click.exceptions.Exit as err:
        code = err.exit_code
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        code = EXIT_INTERRUPTED
    except click.ClickException as err:
        err.show()
        code = EXIT_ERROR
    except ConfigError as err:
        click.echo(str(err), err=True)
        code = err.exit_code
    except StateError as err:
        click.echo(f"Error: {err}", err=True)
        code = err.exit_code
    except PlannerError as err:
        click.echo(f"Error: {err}", err=True)
        code = err.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        code = EXIT_ERROR
    except Exception as err:  # a bug: say so, and how to see more
        if debug:
            import traceback

            traceback.print_exc()
        click.echo(f"Error: unexpected {type(err).__name__}: {err}", err=True)
        click.echo("This is a bug in planner. Run again with --debug for a traceback, and report it.", err=True)
        code = EXIT_BUG
    _exit(code if isinstance(code, int) else EXIT_OK)


# What a command built that lives until the process ends (see _exit).
_RETAINED: list[Any] = []


def _exit(code: int) -> NoReturn:
    """Leave without the interpreter's teardown once everything is written.

    After a plan of 10,000 jobs, freeing every object one by one (what returning from the
    command and the interpreter's own exit would do) takes a tenth of a second or more.
    Commands write and fsync their files themselves and stop their threads and servers in
    `with` blocks, so what is left is flushing the standard streams and logging.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError, OSError):
        code = code or EXIT_ERROR
    logging.shutdown()
    os._exit(code)
