"""The command line: flags → settings → an operation → a view → an exit code.

The only package that imports click or prints; the environment comes from planner.settings.
Each module adds the commands of one topic to the group in planner.cli.app; `run(argv)` runs one
in-process and returns its exit code, `main` is `run` then a fast exit. Exit codes (DESIGN §7):
0 ok / no changes, 1 error, 2 changes present (plan --detailed-exitcode) or drift found,
3 an unexpected bug (see --debug), 130 interrupted; `apply --wait`: 4 a job failed, 5 timed out.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

import click

from planner.cli import files, observe, plan_apply, state, tools  # noqa: F401  (each adds its commands)
from planner.cli.app import cli
from planner.errors import EXIT_BUG, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, ConfigError, PlannerError
from planner.operations.backend import on_interrupt

__all__ = ["cli", "main", "run"]


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command and give back its exit code: every error is reported here, nothing exits."""
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
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Interrupted.", err=True)
        code = EXIT_INTERRUPTED
    except click.ClickException as err:
        err.show()
        code = EXIT_ERROR
    except ConfigError as err:
        click.echo(str(err), err=True)
        code = err.exit_code
    except PlannerError as err:
        click.echo(f"Error: {err}", err=True)
        code = err.exit_code
    except BrokenPipeError:
        code = EXIT_ERROR
    except Exception as err:  # a bug: say so, and how to see more
        if debug:
            import traceback

            traceback.print_exc()
        click.echo(f"Error: unexpected {type(err).__name__}: {err}", err=True)
        click.echo("This is a bug in planner. Run again with --debug for a traceback, and report it.", err=True)
        code = EXIT_BUG
    return code if isinstance(code, int) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """`run`, then leave without the interpreter's teardown: after a plan of 10,000 jobs, freeing
    every object one by one takes a tenth of a second or more. Commands write and fsync their files
    and stop their threads and servers in `with` blocks; what is left is flushing the streams."""
    code = run(argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError, OSError):
        code = code or EXIT_ERROR
    logging.shutdown()
    os._exit(code)
