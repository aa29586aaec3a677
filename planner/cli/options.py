"""The option sets commands share and the helpers that turn flags into settings and a Backend."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from planner import __version__, apimodel, settings
from planner.errors import UsageError
from planner.operations.backend import Backend

# What a command built that lives until the process ends (see planner.cli.main).
_RETAINED: list[Any] = []


def _duration(text: str, flag: str, *, positive: bool = False) -> float:
    seconds = 0.0 if text.strip() in ("0", "") else apimodel.parse_duration(text)
    if seconds is None:
        raise UsageError(f"{flag}: {text!r} is not a duration (examples: 30s, 5m, 1h)")
    if positive and seconds <= 0:
        raise UsageError(f"{flag}: {text!r} must be more than zero")
    return float(seconds)


def _use_color(no_color: bool) -> bool:
    return not no_color and not settings.read().no_color and sys.stdout.isatty()


def _emit(text: str, out: str | None, *, quiet: bool = False) -> None:
    from planner.secrets import mask_text

    text = mask_text(text)  # a report file is output too: no sensitive variable's value in it
    if out:
        from planner.operations.plan import write_private

        try:
            write_private(Path(out), text if text.endswith("\n") else text + "\n")
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


def _plan_request(paths: Sequence[str], opts: Mapping[str, Any], variables: Any) -> Any:
    """The PlanRequest of a command's flags: each option named as a field of the request gives it."""
    from planner.operations.plan import PlanRequest

    given = {f.name: opts[f.name] for f in fields(PlanRequest) if f.name in opts and f.name != "variables"}
    return PlanRequest(tuple(paths), variables, **given)


# -- shared option sets --------------------------------------------------------------------------

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def format_option(*choices: str) -> Decorator:
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default="text", show_default=True, help="Output format."
    )


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
    click.option("--allow-unknown-hardware", is_flag=True,
                 help="Trust machine types outside planner's catalog (no warning); region gaps become warnings."),
    click.option("--hardware-catalog", metavar="FILE",
                 help="YAML file adding private machine types and regions to planner's hardware catalog."),
)


def _warn(desired: Any) -> None:
    """Configuration warnings (hardware outside the catalog, ignored settings), on stderr."""
    for warning in getattr(desired, "warnings", ()):
        click.echo(f"Warning: {warning}", err=True)


lock_timeout_option = click.option("--lock-timeout", default="0s", show_default=True,
                                   help="Wait this long for the lock.")
backend_options = _compose(
    click.option("--workspace", default="default", show_default=True, help="Workspace (state and labels)."),
    click.option("--state", "state_spec", metavar="PATH|gs://BUCKET/PREFIX", help="State location [PLANNER_STATE]."),
    click.option("--emulator", is_flag=True, help="Run against the embedded Vertex AI emulator (data in state/)."),
    click.option("--endpoint", metavar="URL", help="API endpoint override [PLANNER_API_ENDPOINT]."),
    click.option("--impersonate-service-account", metavar="EMAIL", help="Act as this service account."),
    click.option("--max-requests-per-minute", type=float, help="Fixed cap on API requests per project+region."),
    click.option("--max-creates-per-minute", type=float, help="Fixed cap on job creates per project+region."),
    lock_timeout_option,
    click.option("--ignore-backup", is_flag=True,
                 help="Start a new state even where only its .backup or journal is left."),
    click.option("--request-timeout", default="60s", show_default=True, metavar="DUR",
                 help="Total deadline of each API request attempt: connect, send and the whole answer."),
)


def _without(options: Decorator, *names: str) -> Decorator:
    """An option set minus the options a command would ignore (a flag offered must do something)."""

    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = options(fn)
        params = getattr(fn, "__click_params__", [])
        params[:] = [p for p in params if p.name not in names]
        return fn

    return apply


no_color_option = click.option("--no-color", is_flag=True, help="No ANSI colours (also NO_COLOR).")
view_options = _compose(
    no_color_option,
    click.option("--show-sensitive", is_flag=True, help="Show env values instead of masking them."),
    click.option("--quiet", "-q", is_flag=True, help="Print only what a script needs."),
)


def _backend(opts: Mapping[str, Any]) -> closing[Backend]:
    """The Backend the flags and settings ask for, closed when the `with` block ends."""
    workspace = str(opts["workspace"])
    if not _valid_workspace(workspace):
        raise UsageError(f"--workspace {workspace!r}: use lowercase letters, digits and dashes (≤ 63)")
    env = settings.read()
    return closing(Backend(
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
        request_timeout=_duration(str(opts.get("request_timeout") or "60s"), "--request-timeout", positive=True),
        storage_host=env.storage_emulator_host,
    ))


def _valid_workspace(name: str) -> bool:
    return 0 < len(name) <= 63 and name[0].isalpha() and all(c.islower() or c.isdigit() or c == "-" for c in name)


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
