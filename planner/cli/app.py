"""The command group every command module adds to."""

from __future__ import annotations

import logging

import click

from planner import __version__


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
