"""Commands that only read: drift, status, logs; flags → planner.operations.drift, .status, .logs → a view
→ an exit code."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

import click

from planner import apimodel
from planner.cli.app import cli
from planner.cli.options import (
    _backend,
    _duration,
    _emit,
    _plan_request,
    _use_color,
    _variables,
    _without,
    backend_options,
    format_option,
    hardware_options,
    no_color_option,
    variable_options,
    view_options,
)
from planner.errors import EXIT_CHANGES, EXIT_OK, UsageError

read_only_backend_options = _without(backend_options, "lock_timeout", "max_creates_per_minute")  # no lock, no create


@cli.command("drift")
@click.argument("paths", nargs=-1)
@format_option("text", "markdown", "json")
@click.option("--ignore", "ignore", multiple=True, metavar="PATTERN", help="Glob over addresses and field paths.")
@click.option("--include-unmanaged", is_flag=True, help="Also report jobs without planner labels.")
@click.option("-o", "--out", "out", metavar="FILE", help="Also write the report to FILE.")
@variable_options
@hardware_options
@read_only_backend_options
@view_options
def drift_command(paths: tuple[str, ...], fmt: str, ignore: tuple[str, ...], include_unmanaged: bool,
                  out: str | None, **opts: Any) -> int:
    """Report how the live jobs moved away from the last apply (read only; exit 2 on drift)."""
    from planner.operations.drift import drift
    from planner.operations.plan import load_configuration
    from planner.render import render_drift

    request = _plan_request(paths, opts, _variables(opts["variables"], opts["var_files"], paths))
    desired = load_configuration(request) if paths else None
    with _backend(opts) as backend:
        report = drift(backend, desired, ignore=ignore, include_unmanaged=include_unmanaged)
    text = render_drift(
        report, fmt, color=_use_color(opts["no_color"]) and not out, show_sensitive=opts["show_sensitive"]
    )
    _emit(text, out, quiet=opts["quiet"] and fmt == "text")
    return EXIT_CHANGES if report.has_drift else EXIT_OK


@cli.command("status")
@click.argument("paths", nargs=-1)
@format_option("text", "markdown", "json")
@click.option("--watch", is_flag=True, help="Refresh until every job has ended (Ctrl-C stops).")
@click.option("--interval", default="10s", show_default=True, metavar="DURATION", help="How often --watch refreshes.")
@click.option("--address", "addresses", multiple=True, metavar="GLOB", help="Only addresses matching a glob.")
@click.option("--job-state", "job_states", multiple=True, metavar="STATE", help="Only jobs in a state (RUNNING…).")
@click.option("--price-file", metavar="FILE", help="Prices for the cost-so-far column instead of the bundled ones.")
@variable_options
@read_only_backend_options
@no_color_option
def status_command(paths: tuple[str, ...], fmt: str, watch: bool, interval: str, addresses: tuple[str, ...],
                   job_states: tuple[str, ...], **opts: Any) -> int:
    """Show what every managed job is doing now, with its run time and console link (read only)."""
    from planner.config.validate import load_desired
    from planner.operations.status import status_reader, watch_until_ended
    from planner.pricing.prices import load_book
    from planner.render.status_view import render_status, transition_lines, watch_footer
    from planner.status import StatusFilter, parse_state_filter, state_changes

    only = StatusFilter(tuple(addresses), frozenset(parse_state_filter(s) for s in job_states))
    every = _duration(interval, "--interval")
    if watch and fmt != "text":
        raise UsageError("--watch shows text; for --format json or markdown, run status repeatedly")
    if watch and every <= 0:
        raise UsageError("--interval must be more than 0s")
    variables = _variables(opts["variables"], opts["var_files"], paths) if paths else {}
    desired = load_desired(list(paths), variables=variables) if paths else None
    prices = load_book(opts.get("price_file"))
    color = _use_color(opts["no_color"])
    tty = sys.stdout.isatty()
    with _backend(opts) as backend:
        read = status_reader(backend, desired, only=only, prices=prices)
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
        watch_until_ended(read, show, interval=every)
    click.echo("Every job has ended.")
    return EXIT_OK


@cli.command("logs")
@click.argument("address")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends (Ctrl-C stops).")
@click.option("--since", metavar="DURATION|TIMESTAMP", help="Only lines from this long ago (1h) or this RFC 3339 time.")
@click.option("--replica", metavar="TASK", help="Only one replica's lines, e.g. workerpool0-0.")
@click.option("--interval", default="3s", show_default=True, metavar="DURATION", help="How often --follow reads.")
@read_only_backend_options
@no_color_option
def logs_command(address: str, follow: bool, since: str | None, replica: str | None, interval: str, **opts: Any) -> int:
    """Print a job's log lines from Cloud Logging (ADDRESS, or a projects/P/locations/L/customJobs/ID name)."""
    from planner.operations.logs import log_source
    from planner.render.logs_view import log_line_text
    from planner.render.progress import FollowView

    every = _duration(interval, "--interval")
    if follow and every <= 0:
        raise UsageError("--interval must be more than 0s")
    start = _since(since) if since else None
    color = _use_color(opts["no_color"])
    with _backend(opts) as backend:
        source = log_source(backend, address)
        if not follow:
            for line in source.lines(since=start, replica=replica):
                click.echo(log_line_text(line, color=color))
            return EXIT_OK
        view = FollowView(sys.stdout, sys.stderr, tty=sys.stderr.isatty() and sys.stdout.isatty(), color=color)
        try:
            source.follow(lambda line: view.line(log_line_text(line, color=color)), on_state=view.job_state,
                          since=start, replica=replica, interval=every)
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
