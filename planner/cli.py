"""The command line: reads flags and environment, runs a stage, prints, and maps errors to exit codes.

The only module that imports click, reads os.environ or prints. Exit codes (DESIGN §7):
0 ok / no changes, 1 error, 2 changes present (plan --detailed-exitcode) or drift found,
3 an unexpected bug (see --debug), 130 interrupted.
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
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from planner import __version__, apimodel
from planner.errors import (
    EXIT_BUG,
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ApiError,
    ConfigError,
    PlannerError,
    StalePlanError,
    StateError,
    UsageError,
)

log = logging.getLogger("planner")

DEFAULT_STATE_DIR = Path("state")
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
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


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
    if out:
        try:
            _write_private(Path(out), text if text.endswith("\n") else text + "\n")
        except OSError as err:
            raise UsageError(f"cannot write {out}: {err.strerror}") from err
    if not quiet:
        click.echo(text.rstrip("\n"))


def _variables(pairs: Sequence[str], var_files: Sequence[str]) -> dict[str, str]:
    """PLANNER_VAR_<NAME> < --var-file (in order) < --var: later sources win, as in Terraform."""
    out: dict[str, str] = {}
    for key, value in os.environ.items():
        if key.startswith("PLANNER_VAR_") and len(key) > len("PLANNER_VAR_"):
            out[key[len("PLANNER_VAR_") :]] = value
    for var_file in var_files:
        try:
            text = Path(var_file).read_text(encoding="utf-8")
        except OSError as err:
            raise UsageError(f"--var-file {var_file}: {err.strerror}") from err
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{var_file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else var_file
            raise UsageError(f"{where}: --var-file is not valid YAML") from err
        except ValueError as err:  # an integer beyond Python's digit limit for int()
            raise UsageError(f"{var_file}: --var-file holds a number too large to read (over 4,300 digits)") from err
        if data is None:
            continue
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise UsageError(f"{var_file}: --var-file must be a mapping of NAME: value")
        for key, value in data.items():
            if isinstance(value, (dict, list)) or value is None:
                raise UsageError(f"{var_file}: variable {key} must be a string, number or boolean")
            out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--var {pair!r}: expected NAME=VALUE")
        out[key] = value
    return out


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

view_options = _compose(
    click.option("--no-color", is_flag=True, help="No ANSI colours (also NO_COLOR)."),
    click.option("--show-sensitive", is_flag=True, help="Show env values instead of masking them."),
    click.option("--quiet", "-q", is_flag=True, help="Print only what a script needs."),
)


@dataclass
class Backend:
    """The per-run parts: API client, state store, and the embedded emulator if any."""

    workspace: str
    state_spec: str | None
    emulator: bool
    endpoint: str | None
    impersonate_service_account: str | None = None
    max_requests_per_minute: float | None = None
    max_creates_per_minute: float | None = None
    lock_timeout: float = 0.0
    ignore_backup: bool = False
    request_timeout: float = 60.0
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    @staticmethod
    def from_options(opts: Mapping[str, Any]) -> Backend:
        workspace = str(opts["workspace"])
        if not _valid_workspace(workspace):
            raise UsageError(f"--workspace {workspace!r}: use lowercase letters, digits and dashes (≤ 63)")
        return Backend(
            workspace=workspace,
            state_spec=opts.get("state_spec") or os.environ.get("PLANNER_STATE") or None,
            emulator=bool(opts.get("emulator")),
            endpoint=opts.get("endpoint") or os.environ.get("PLANNER_API_ENDPOINT") or None,
            impersonate_service_account=opts.get("impersonate_service_account"),
            max_requests_per_minute=opts.get("max_requests_per_minute"),
            max_creates_per_minute=opts.get("max_creates_per_minute"),
            lock_timeout=_duration(str(opts.get("lock_timeout") or "0s"), "--lock-timeout"),
            ignore_backup=bool(opts.get("ignore_backup")),
            request_timeout=_positive_duration(str(opts.get("request_timeout") or "60s"), "--request-timeout"),
        )

    def client(self) -> Any:
        from planner.api import build_client

        endpoint = self.endpoint
        if self.emulator:
            endpoint = self._start_emulator()
        client = build_client(
            endpoint=endpoint,
            impersonate_service_account=self.impersonate_service_account,
            max_requests_per_minute=self.max_requests_per_minute,
            max_creates_per_minute=self.max_creates_per_minute,
            timeout=self.request_timeout,
        )
        self._cleanups.append(client.close)
        _LIVE_CLIENTS.append(client)
        return client

    def _start_emulator(self) -> str:
        from planner.emulator import Emulator, EmulatorConfig

        DEFAULT_STATE_DIR.mkdir(parents=True, exist_ok=True)
        emulator = Emulator(
            EmulatorConfig(
                data_path=DEFAULT_STATE_DIR / "emulator.json",
                queue_seconds=2.0,
                run_seconds=60.0,
                cancel_seconds=2.0,
            )
        )
        emulator.start()
        self._cleanups.append(emulator.stop)
        return str(emulator.url)

    def store(self) -> Any:
        from planner.state import open_store

        storage_host = os.environ.get("STORAGE_EMULATOR_HOST") or None
        credentials = None
        if self.state_spec and self.state_spec.startswith("gs://") and storage_host is None:
            from planner.api import storage_auth

            credentials = storage_auth(impersonate_service_account=self.impersonate_service_account)
        store = open_store(
            self.state_spec,
            self.workspace,
            base_dir=DEFAULT_STATE_DIR,
            storage_host=storage_host,
            credentials=credentials,
            ignore_backup=self.ignore_backup,
        )
        self._cleanups.append(store.close)
        return store

    def close(self) -> None:
        while self._cleanups:
            with suppress(Exception):
                self._cleanups.pop()()


# Clients of this run, so a Ctrl-C ends their waits (signal handlers are process-wide anyway).
_LIVE_CLIENTS: list[Any] = []


def _positive_duration(text: str, flag: str) -> float:
    seconds = _duration(text, flag)
    if seconds <= 0:
        raise UsageError(f"{flag}: {text!r} must be more than zero")
    return seconds


def _on_interrupt(_signum: int, _frame: object) -> None:
    """Ctrl-C outside apply: end every request wait (within a quarter second), then unwind as usual."""
    for client in _LIVE_CLIENTS:
        client.cancel()
    raise KeyboardInterrupt


def _valid_workspace(name: str) -> bool:
    return 0 < len(name) <= 63 and name[0].isalpha() and all(c.islower() or c.isdigit() or c == "-" for c in name)


@contextmanager
def _backend(opts: Mapping[str, Any]) -> Iterator[Backend]:
    backend = Backend.from_options(opts)
    try:
        yield backend
    finally:
        backend.close()


@contextmanager
def _locked(store: Any, operation: str, timeout: float) -> Iterator[str]:
    """Hold the state lock for the whole command; released on every exit path, Ctrl-C included."""
    from planner.state import LockInfo

    lock_id = store.lock(LockInfo.new(operation, path=store.description), timeout)
    try:
        yield lock_id
    finally:
        with _signals_deferred():
            store.unlock(lock_id)


@contextmanager
def _long_lived() -> Iterator[None]:
    """Build objects that live until the command ends (the configuration, state, live jobs, plan).

    The collector is paused while they are built and they are then frozen (moved where
    collections never look): otherwise the first collection after building 10,000 jobs
    walks every object just made, about 0.4 s, and later ones walk them again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Let a critical section (unlock, final state write) finish even if Ctrl-C arrives."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda s, _f: received.append(s))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            raise KeyboardInterrupt


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
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@variable_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(paths: tuple[str, ...], variables: tuple[str, ...], var_files: tuple[str, ...], fmt: str) -> int:
    """Check desired-state files against the schema; nothing is sent anywhere."""
    from planner.validate import load_desired

    try:
        desired = load_desired(list(paths), variables=_variables(variables, var_files))
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
        click.echo(
            json.dumps({"valid": True, "error_count": 0, "diagnostics": [], "jobs": sorted(desired.jobs)}, indent=2)
        )
    else:
        count = len(desired.jobs)
        click.echo(f"Success: {count} job{'s' if count != 1 else ''} in {len(desired.files)} file(s) valid.")
    return EXIT_OK


@cli.group()
def schema() -> None:
    """Generate or check the JSON Schemas in schemas/ (from the CustomJob field tables)."""


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
    refresher: Any = None,
    read_prior: Callable[[], Any] | None = None,
) -> Planned:
    from planner.workflow import read_and_plan

    planned, prior = read_and_plan(
        client,
        desired,
        read_prior or store.read,
        workspace=backend.workspace,
        targets=targets,
        created_at=_now(),
        refresher=refresher,
    )
    return Planned(planned.plan, prior, planned.live)


class _PlanPrep:
    """What a plan needs besides its configuration, made while the configuration loads.

    load_desired runs this in its own process while the other process parses YAML (see
    `alongside`): the API client (importing httpx and google-auth), the refresher that
    `on_valid` starts once the configuration is known to be valid, and a local state read
    ahead of its lock (`read_prior`, under the lock, returns it if neither the state file
    nor its journal changed since, else reads again; GCS state is read under the lock only).
    Problems making the client or reading the state are raised later, after the
    configuration's own problems: by `ready` and by the second read.
    """

    # Making the API client costs about as much as loading 200 KB of YAML; reading a state
    # file, about a twentieth of loading as many bytes of YAML.
    CLIENT_COST = 200_000
    STATE_BYTES_PER_YAML_BYTE = 20

    def __init__(self, backend: Backend, store: Any, stack: ExitStack):
        from planner.state import LocalStore

        self._backend = backend
        self._store = store
        self._stack = stack
        self._local = isinstance(store, LocalStore)
        self.cost = self.CLIENT_COST
        if self._local:
            with suppress(OSError):
                self.cost += store.path.stat().st_size // self.STATE_BYTES_PER_YAML_BYTE
        self._client: Any = None
        self._refresher: Any = None
        self._snapshot: Any = None
        self._error: PlannerError | None = None

    def __call__(self) -> None:
        from planner.refresh import Refresher

        try:
            self._client = self._backend.client()
        except PlannerError as err:
            self._error = err
        else:
            refresher = Refresher(self._client, self._backend.workspace, summary=True)
            self._refresher = self._stack.enter_context(refresher)
        if self._local:
            with suppress(PlannerError):
                self._snapshot = self._store.read_ahead()

    def on_valid(self, pairs: set[tuple[str, str]]) -> None:
        # The listing starts as soon as the configuration is known to be valid (never before),
        # while the last of it is still being put together.
        if self._refresher is not None:
            self._refresher.start(pairs)

    def ready(self) -> tuple[Any, Any]:
        if self._error is not None:
            raise self._error
        return self._client, self._refresher

    def read_prior(self) -> Any:
        return self._store.read(self._snapshot) if self._snapshot is not None else self._store.read()


plan_options = _compose(
    click.option("--target", "targets", multiple=True, metavar="ADDR", help="Plan only these addresses."),
    click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True),
)


@cli.command("plan")
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--out", "out", metavar="FILE", help="Save the plan for `planner apply FILE`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@plan_options
@variable_options
@backend_options
@view_options
def plan_command(paths: tuple[str, ...], out: str | None, detailed_exitcode: bool, **opts: Any) -> int:
    """Show what apply would do."""
    from planner.plan import plan_to_json
    from planner.render import render_plan
    from planner.validate import load_desired

    variables = _variables(opts["variables"], opts["var_files"])
    with _backend(opts) as backend, ExitStack() as stack, _long_lived():
        store = backend.store()
        prep = _PlanPrep(backend, store, stack)
        desired = load_desired(
            list(paths), variables=variables, on_valid=prep.on_valid, alongside=prep, alongside_cost=prep.cost
        )
        client, refresher = prep.ready()
        with _locked(store, "plan", backend.lock_timeout):
            planned = _plan(backend, client, store, desired, opts["targets"], refresher, prep.read_prior)
    _RETAINED.append((desired, planned))
    plan = planned.plan
    if out:
        doc = plan_to_json(plan, for_file=True)
        doc["config"] = {"files": list(desired.files), "hash": desired.config_hash}
        _write_private(Path(out), json.dumps(doc, indent=2, sort_keys=True) + "\n")
    if not opts["quiet"] or opts["fmt"] != "text":
        color = _use_color(opts["no_color"])
        text = render_plan(plan, opts["fmt"], color=color, show_sensitive=opts["show_sensitive"])
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
@click.option("--parallelism", default=10, show_default=True, type=click.IntRange(1, 256))
@click.option("--wait-timeout", default=DEFAULT_WAIT_TIMEOUT, show_default=True, help="How long to wait for jobs.")
@plan_options
@variable_options
@backend_options
@view_options
def apply_command(paths: tuple[str, ...], auto_approve: bool, parallelism: int, wait_timeout: str, **opts: Any) -> int:
    """Plan and carry it out, or carry out a saved plan exactly."""
    from planner.apply import ApplyOptions
    from planner.plan import plan_from_json
    from planner.render import render_plan
    from planner.validate import load_desired
    from planner.workflow import refreshed

    color = _use_color(opts["no_color"])
    wait_seconds = _duration(wait_timeout, "--wait-timeout")
    saved = _read_plan_file(paths[0]) if _is_plan_file(paths) else None
    desired = None
    if saved is None:
        with _long_lived():
            desired = load_desired(list(paths), variables=_variables(opts["variables"], opts["var_files"]))
    elif opts["targets"]:
        raise UsageError("--target cannot be used with a saved plan: the plan already says what to do")
    with _backend(opts) as backend:
        client = backend.client()
        store = backend.store()
        with _locked(store, "apply", backend.lock_timeout):
            if saved is not None:
                plan = plan_from_json(saved)
                if plan.workspace != backend.workspace:
                    raise StalePlanError(f"the plan is for workspace {plan.workspace!r}, not {backend.workspace!r}")
                prior, live = _check_saved_plan(backend, client, store, plan, saved, opts)
            else:
                with _long_lived():
                    planned = _plan(backend, client, store, desired, opts["targets"])
                plan, prior, live = planned.plan, planned.prior, planned.live
            fresh = refreshed(prior, live) if prior is not None else None
            if not opts["quiet"] or not plan.has_changes:
                click.echo(render_plan(plan, "text", color=color, show_sensitive=opts["show_sensitive"]).rstrip())
            if not plan.has_changes:
                if fresh is not None and (fresh is not prior or _journal_pending(store)):
                    with _signals_deferred():
                        store.write(fresh)
                return EXIT_OK
            if saved is None and not auto_approve:
                _confirm()
            options = ApplyOptions(workspace=backend.workspace, parallelism=parallelism, wait_timeout=wait_seconds)
            return _run_apply(plan, fresh, client, store, options, color)


def _journal_pending(store: Any) -> bool:
    check = getattr(store, "journal_pending", None)
    return bool(check()) if callable(check) else False


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
) -> tuple[Any, Any]:
    """Refuse a stale saved plan and say what changed; return the prior state to apply on."""
    from planner.plan import live_entries
    from planner.refresh import fingerprint
    from planner.validate import load_desired
    from planner.workflow import read_live

    prior = store.read()
    problems: list[str] = []
    lineage = prior.lineage if prior is not None else None
    serial = prior.serial if prior is not None else None
    if plan.lineage != lineage:
        problems.append(
            f"the state's lineage is {lineage or 'none'}, the plan was made for {plan.lineage or 'no state'}"
        )
    elif plan.serial != serial:
        problems.append(
            f"the state changed since the plan (serial {plan.serial} → {serial}); a saved plan is applied once"
        )
    config = doc.get("config") or {}
    files = [f for f in config.get("files", []) if isinstance(f, str)]
    if files and all(Path(f).exists() for f in files):
        current = load_desired(files, variables=_variables(opts["variables"], opts["var_files"]))
        if current.config_hash != config.get("hash"):
            problems.append("the configuration files changed since the plan")
    if not problems:
        pairs = {(c.project, c.location) for c in plan.changes if c.project}
        live = read_live(client, None, prior, backend.workspace, extra_pairs=pairs)
        entries = live_entries(plan, prior, live, backend.workspace)
        if fingerprint(entries) != plan.live_fingerprint:
            before = {e[1]: e for e in plan.fingerprint_entries}
            after = {e[1]: e for e in entries}
            for name in sorted(set(before) | set(after)):
                b, a = before.get(name), after.get(name)
                if b == a:
                    continue
                address = (a or b or ("?",))[0]
                if b is None:
                    problems.append(f"{address}: job {name} appeared")
                elif a is None:
                    problems.append(f"{address}: job {name} is gone")
                else:
                    problems.append(f"{address}: job {name} is now {a[3]} (was {b[3]})")
            if not problems:
                problems.append("the live jobs changed since the plan")
    if problems:
        raise StalePlanError(
            "the saved plan is stale:\n  - " + "\n  - ".join(problems),
            hint="run `planner plan` again and review the new plan",
        )
    return prior, live


def _run_apply(plan: Any, prior: Any, client: Any, store: Any, options: Any, color: bool) -> int:
    from planner.apply import Applier, Outcome
    from planner.state import State

    state = prior if prior is not None else State.new()
    if prior is None:
        with _signals_deferred():
            state = store.write(state)
    progress = _Progress(color=color)
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
        while not finished.wait(0.2):
            progress.tick()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        progress.close()
    interrupted = bool(interrupts)
    final = result[0].state if result else applier.book.state
    write_error: PlannerError | None = None
    try:
        with _signals_deferred():
            store.write(final)
    except PlannerError as err:
        write_error = err  # the report is still printed: it says what happened
    if failure:
        raise failure[0]
    report = result[0]
    _print_report(report, color)
    _print_unrecorded(report, write_error)
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


class _Progress:
    """Live lines on a TTY (with elapsed time), plain lines in CI."""

    def __init__(self, *, color: bool):
        self.tty = sys.stderr.isatty()
        self.color = color
        self.running: dict[tuple[str, str, str], float] = {}
        self.lock = threading.Lock()
        self.status_shown = False

    def event(self, event: Any) -> None:
        key = (event.address, event.step.kind.value, event.step.job or "")
        with self.lock:
            if event.status == "start":
                self.running[key] = time.monotonic()
                if not self.tty:
                    click.echo(f"{event.address}: {_step_text(event.step)} …", err=True)
                return
            self.running.pop(key, None)
            mark = {"done": "✓", "failed": "✗", "pending": "…", "skipped": "-"}.get(event.status, "?")
            job = f" {event.job}" if event.job and event.step.kind.value == "create" else ""
            text = f"{mark} {event.address}: {_step_text(event.step)} {event.status}{job} [{event.elapsed:.1f}s]"
            if event.message:
                text += f": {event.message}"
            self._clear()
            click.echo(text, err=True)
            self._status()

    def tick(self) -> None:
        with self.lock:
            self._clear()
            self._status()

    def line(self, text: str) -> None:
        with self.lock:
            self._clear()
            click.echo(text, err=True)

    def _status(self) -> None:
        if not self.tty or not self.running:
            return
        now = time.monotonic()
        oldest = sorted(self.running.items(), key=lambda kv: kv[1])[:3]
        parts = [f"{a}: {k} {now - t:.0f}s" for (a, k, _j), t in oldest]
        more = f" (+{len(self.running) - 3} more)" if len(self.running) > 3 else ""
        sys.stderr.write(f"\r\033[K  running: {', '.join(parts)}{more}")
        sys.stderr.flush()
        self.status_shown = True

    def _clear(self) -> None:
        if self.status_shown:
            sys.stderr.write("\r\033[K")
            self.status_shown = False

    def close(self) -> None:
        with self.lock:
            self._clear()


def _step_text(step: Any) -> str:
    kind = str(step.kind.value)
    if step.job and kind != "create":
        return f"{kind} {step.job.rsplit('/', 1)[-1]}"
    return kind


def _print_unrecorded(report: Any, write_error: PlannerError | None) -> None:
    """After a journal or final-write failure: exactly what exists but may not be in state."""
    if report.unrecorded:
        click.echo(
            f"\nThe state journal could not be written ({report.unrecorded[0].error}); "
            "apply stopped starting new steps.",
            err=True,
        )
        saved = "could not be saved either" if write_error is not None else "are in the state file written at the end"
        click.echo(f"Done but not journalled ({len(report.unrecorded)}; they {saved}):", err=True)
        for item in report.unrecorded:
            click.echo(f"  - {item.address}: {item.job or '(no job)'}", err=True)
    if write_error is not None:
        click.echo(
            "The final state write failed: steps journalled before it are kept in the journal and folded in "
            "by the next run; jobs created but not recorded are adopted by their planner labels on the next "
            "plan (never created twice).",
            err=True,
        )


def _print_report(report: Any, color: bool) -> None:
    from planner.apply import Outcome

    done = report.count(Outcome.DONE)
    failed = [r for r in report.results if r.outcome is Outcome.FAILED]
    pending = [r for r in report.results if r.outcome is Outcome.PENDING]
    skipped = [r for r in report.results if r.outcome is Outcome.SKIPPED]
    click.echo("")
    click.echo(
        f"Apply complete: {done} steps done, {len(failed)} failed, {len(pending)} pending, {len(skipped)} skipped."
    )
    for title, rows in (("Failed", failed), ("Pending (the next apply finishes these)", pending), ("Skipped", skipped)):
        if rows:
            click.echo(f"{title}:")
            for r in rows:
                message = f": {r.message}" if r.message else ""
                click.echo(f"  - {r.address}: {_step_text(r.step)}{message}")


# -- drift ---------------------------------------------------------------------------------------


@cli.command("drift")
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--ignore", "ignore", multiple=True, metavar="PATTERN", help="Glob over addresses and field paths.")
@click.option("--include-unmanaged", is_flag=True, help="Also report jobs without planner labels.")
@click.option("-o", "--out", "out", metavar="FILE", help="Also write the report to FILE.")
@variable_options
@backend_options
@view_options
def drift_command(
    paths: tuple[str, ...], fmt: str, ignore: tuple[str, ...], include_unmanaged: bool, out: str | None, **opts: Any
) -> int:
    """Report how the live jobs moved away from the last apply (read only; exit 2 on drift)."""
    from planner.drift import detect_drift
    from planner.render import render_drift
    from planner.validate import load_desired
    from planner.workflow import read_live

    with _long_lived():
        variables = _variables(opts["variables"], opts["var_files"])
        desired = load_desired(list(paths), variables=variables) if paths else None
    with _backend(opts) as backend:
        client = backend.client()
        store = backend.store()
        with _long_lived():
            prior = store.read()  # read only: no lock taken, nothing written
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


# -- show, state, import, force-unlock ------------------------------------------------------------


@cli.command("show")
@click.argument("planfile")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("-o", "--out", "out", metavar="FILE", help="Also write the rendering to FILE.")
@click.option("--no-color", is_flag=True)
@click.option("--show-sensitive", is_flag=True)
def show_command(planfile: str, fmt: str, out: str | None, no_color: bool, show_sensitive: bool) -> int:
    """Render a saved plan."""
    from planner.plan import plan_from_json
    from planner.render import render_plan

    plan = plan_from_json(_read_plan_file(planfile))
    _emit(render_plan(plan, fmt, color=_use_color(no_color) and not out, show_sensitive=show_sensitive), out)
    return EXIT_OK


@cli.group("state")
def state_group() -> None:
    """Inspect or edit the state."""


def _state_backend_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--workspace", default="default", show_default=True)(fn)
    fn = click.option("--state", "state_spec", metavar="PATH|gs://BUCKET/PREFIX")(fn)
    fn = click.option("--lock-timeout", default=DEFAULT_LOCK_TIMEOUT, show_default=True)(fn)
    fn = click.option("--ignore-backup", is_flag=True, help="Read a missing state as empty even beside its backup.")(fn)
    return fn


def _state_backend(opts: Mapping[str, Any]) -> Backend:
    full = {"emulator": False, "endpoint": None, **opts}
    return Backend.from_options(full)


@state_group.command("list")
@_state_backend_options
def state_list(**opts: Any) -> int:
    """List the addresses in state."""
    backend = _state_backend(opts)
    state = backend.store().read()
    for address, record in sorted((state.jobs if state else {}).items()):
        click.echo(f"{address}\t{record.name}\t{record.last_state}")
    return EXIT_OK


@state_group.command("show")
@click.argument("address")
@_state_backend_options
def state_show(address: str, **opts: Any) -> int:
    """Show one address's record."""
    from planner.diff import mask_spec
    from planner.state.fileformat import record_to_json

    backend = _state_backend(opts)
    state = backend.store().read()
    if state is None or address not in state.jobs:
        raise UsageError(f"{address}: not in state")
    doc = record_to_json(state.jobs[address])
    doc["spec"] = mask_spec(doc.get("spec"))
    click.echo(json.dumps({"address": address, **doc}, indent=2, sort_keys=True))
    return EXIT_OK


@state_group.command("rm")
@click.argument("addresses", nargs=-1, required=True)
@_state_backend_options
def state_rm(addresses: tuple[str, ...], **opts: Any) -> int:
    """Forget addresses (the jobs themselves are left alone)."""
    backend = _state_backend(opts)
    store = backend.store()
    with _locked(store, "state rm", backend.lock_timeout):
        state = store.read()
        missing = [a for a in addresses if state is None or a not in state.jobs]
        if missing:
            raise UsageError(f"not in state: {', '.join(missing)}")
        assert state is not None
        for address in addresses:
            state = state.without_job(address)
        with _signals_deferred():
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
    with _locked(store, "state restore", backend.lock_timeout), _signals_deferred():
        state = store.restore_backup()
    jobs = len(state.jobs)
    click.echo(f"Restored {store.description} from {store.backup_path} (serial {state.serial}, {jobs} jobs).")
    return EXIT_OK


@cli.command("import")
@click.argument("address")
@click.argument("job_name")
@variable_options
@backend_options
def import_command(address: str, job_name: str, **opts: Any) -> int:
    """Start managing an existing job at ADDRESS (JOB_NAME: projects/P/locations/L/customJobs/ID)."""
    import re

    from planner.refresh import live_job
    from planner.state import JobRecord, State

    if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", address):
        raise UsageError(f"{address!r} is not a valid address (^[a-z][a-z0-9-]{{0,62}}$)")
    if not re.fullmatch(r"projects/[^/]+/locations/[^/]+/customJobs/[^/]+", job_name):
        raise UsageError(f"{job_name!r} is not a CustomJob name (projects/P/locations/L/customJobs/ID)")
    with _backend(opts) as backend:
        client = backend.client()
        store = backend.store()
        with _locked(store, "import", backend.lock_timeout):
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
            with _signals_deferred():
                store.write(state.with_job(record))
    click.echo(f"Imported {job_name} as {address}.")
    return EXIT_OK


@cli.command("force-unlock")
@click.argument("lock_id")
@_state_backend_options
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
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--data", metavar="FILE", help="Persist jobs to FILE.")
@click.option("--latency-ms", default=0.0, type=float)
@click.option("--fail-rate", "fail_rate", multiple=True, metavar="STATUS=RATE")
@click.option("--drop-rate", default=0.0, type=float, help="Close this fraction of connections unanswered.")
@click.option("--lost-create-rate", default=0.0, type=float)
@click.option("--echo-defaults", is_flag=True)
@click.option("--max-page-size", default=None, type=int)
@click.option("--queue-seconds", default=None, type=float)
@click.option("--run-seconds", default=None, type=float)
@click.option("--cancel-seconds", default=None, type=float)
@click.option("--delete-seconds", default=0.0, type=float, help="Delete operations stay in progress this long.")
@click.option("--create-quota", default=None, metavar="N/WINDOW", help="e.g. 60/60s")
@click.option("--request-quota", default=None, metavar="N/WINDOW", help="e.g. 600/60s")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
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
    )
    serve_forever(config)
    return EXIT_OK


# -- entry point: the one place errors become exit codes ------------------------------------------


def main(argv: Sequence[str] | None = None) -> NoReturn:
    # planner builds large, long-lived trees (10,000 job specs) and few reference cycles: the
    # default collector thresholds would re-walk them hundreds of times per run.
    gc.set_threshold(100_000, 50, 100)
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_interrupt)
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
