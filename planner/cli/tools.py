"""Tools beside the workflow: the emulator server, refreshing the price file."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from planner import settings
from planner.cli.app import cli
from planner.errors import EXIT_OK, UsageError


@cli.group("emulator")
def emulator_group() -> None:
    """A local imitation of the Vertex AI CustomJobs API."""


@emulator_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback only).")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--data", metavar="FILE", help="Persist jobs to FILE.")
@click.option("--latency-ms", default=0.0, type=float, help="Add this much latency to every answer.")
@click.option("--fail-rate", multiple=True, metavar="STATUS=RATE", help="Answer this fraction with STATUS (503=0.2).")
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

    serve_forever(config_from_cli(**opts))
    return EXIT_OK


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
    from planner.pricing.prices import book_to_json, bundled_price_file

    env = settings.read()
    url = endpoint or env.billing_endpoint or DEFAULT_BASE_URL
    parsed = parse_endpoint(url)
    base = parsed.override or DEFAULT_BASE_URL
    headers = {}
    auth: Any = None
    if not parsed.anonymous and env.billing_api_key:
        # A header rather than ?key=: URLs end up in logs and error messages, headers do not.
        headers["X-Goog-Api-Key"] = env.billing_api_key
    elif not parsed.anonymous:
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
    path = Path(out) if out else bundled_price_file()
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
