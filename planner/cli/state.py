"""State and adoption commands' flags and output: state list/show/rm/forget-released/restore,
import, export, force-unlock; what they do is planner.operations.state's."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import closing
from functools import partial
from typing import Any

import click

from planner.cli.app import cli
from planner.cli.options import _backend, _compose, _emit, _without, backend_options, lock_timeout_option
from planner.errors import EXIT_OK
from planner.operations import state as ops
from planner.operations.backend import Backend


@cli.group("state")
def state_group() -> None:
    """Inspect or edit the state."""


_state_backend_options = _compose(
    click.option("--ignore-backup", is_flag=True, help="Read a missing state as empty even beside its backup."),
    lock_timeout_option,
    click.option("--state", "state_spec", metavar="PATH|gs://BUCKET/PREFIX", help="State location [PLANNER_STATE]."),
    click.option("--workspace", default="default", show_default=True, help="Workspace whose state to use."),
)


# state list / state show read without a lock, force-unlock removes one: no --lock-timeout.
_state_read_options = _without(_state_backend_options, "lock_timeout")


def _state_backend(opts: Mapping[str, Any]) -> closing[Backend]:
    """The Backend of a state command: its state only (no API flags)."""
    return _backend({"emulator": False, "endpoint": None, **opts})


_write = partial(_emit, quiet=True)  # a file's text, masked, mode 0600


@state_group.command("list")
@click.option("--released", is_flag=True, help="List the jobs let go by onRemove cancel/forget instead.")
@_state_read_options
def state_list(released: bool = False, **opts: Any) -> int:
    """List the addresses in state (or, with --released, the jobs planner let go)."""
    with _state_backend(opts) as backend:
        if released:
            for job in ops.list_released(backend):
                click.echo(f"{job.address}\t{job.name}\t{job.how}\t{job.released_at}")
        else:
            for record in ops.list_records(backend):
                click.echo(f"{record.address}\t{record.name}\t{record.last_state}")
    return EXIT_OK


@state_group.command("forget-released")
@click.argument("jobs", nargs=-1)
@click.option("--all", "forget_all", is_flag=True, help="Forget every released job.")
@_state_backend_options
def state_forget_released(jobs: tuple[str, ...], forget_all: bool, **opts: Any) -> int:
    """Forget released jobs for good (JOBS: job names or addresses); plans warn about them again
    while they still exist, so delete them first."""
    ops.check_forget_released(jobs, forget_all)
    with _state_backend(opts) as backend:
        names = ops.forget_released(backend, jobs, forget_all)
    for name in names:
        click.echo(f"Forgot released job {name}.")
    return EXIT_OK


@state_group.command("show")
@click.argument("address")
@_state_read_options
def state_show(address: str, **opts: Any) -> int:
    """Show one address's record."""
    with _state_backend(opts) as backend:
        click.echo(json.dumps(ops.show_record(backend, address), indent=2, sort_keys=True))
    return EXIT_OK


@state_group.command("rm")
@click.argument("addresses", nargs=-1, required=True)
@_state_backend_options
def state_rm(addresses: tuple[str, ...], **opts: Any) -> int:
    """Forget addresses (the jobs themselves are left alone)."""
    with _state_backend(opts) as backend:
        removed = ops.remove_records(backend, addresses)
    for address in removed:
        click.echo(f"Removed {address} from state.")
    return EXIT_OK


@state_group.command("restore")
@_state_backend_options
def state_restore(**opts: Any) -> int:
    """Put the state's .backup back where the state file is missing (or corrupt)."""
    with _state_backend(opts) as backend:
        r = ops.restore_backup(backend)
    jobs = len(r.state.jobs)
    click.echo(f"Restored {r.description} from {r.backup_path} (serial {r.state.serial}, {jobs} jobs).")
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
    if opts["gcloud_config"] is not None:
        out = opts["out"]
        generated = ops.convert_gcloud_config(
            opts["gcloud_config"], address=opts["address_option"], display_name=opts["display_name"],
            project=opts["project"], region=opts["region"], out=out,
            alone=not (address or job_name or opts["all_unmanaged"]),
        )
        _emit(generated.text, out, quiet=bool(out))
        if out:
            click.echo(f"Wrote {out}.{_variables_hint(generated.variables)}", err=True)
        return EXIT_OK
    if opts["all_unmanaged"]:
        target = ops.check_import_all(address, job_name, opts["project"], opts["region"], opts["generate_config"])
        with _backend(opts) as backend:
            adopted = ops.import_unmanaged(backend, opts["project"], opts["region"], str(target), _write)
        for item in adopted:
            record, hint = item.record, _variables_hint(item.generated.variables)
            click.echo(f"Imported {record.name} as {record.address} ({target / record.address}.yaml).{hint}")
        click.echo(f"{len(adopted)} unmanaged job(s) imported.")
        return EXIT_OK
    address, job_name = ops.check_import(address, job_name, opts["generate_config"])
    with _backend(opts) as backend:
        imported = ops.import_job(backend, address, job_name, generate_config=opts["generate_config"], write=_write)
    click.echo(f"Imported {job_name} as {address}.")
    if imported.generated is not None:
        click.echo(f"Wrote {opts['generate_config']}.{_variables_hint(imported.generated.variables)}")
    return EXIT_OK


def _variables_hint(variables: Sequence[Any]) -> str:
    if not variables:
        return ""
    names = ", ".join(v.name for v in variables)
    return f" Its env values are sensitive variables, not written to the file: pass {names} with --var."


@cli.command("export")
@click.argument("address")
@click.option("--gcloud-config", "gcloud_config", is_flag=True, required=True, help="As a gcloud --config file.")
@click.option("-o", "--out", metavar="FILE", help="Write it here (mode 0600) instead of printing it.")
@click.option("--show-sensitive", is_flag=True, help="Write env values (gcloud files hold them in plain text).")
@backend_options
def export_command(address: str, gcloud_config: bool, out: str | None, show_sensitive: bool, **opts: Any) -> int:
    """Write the job at ADDRESS as the file `gcloud ai custom-jobs create --config` takes."""
    with _backend(opts) as backend:
        text = ops.export_gcloud_config(backend, address, show_sensitive=show_sensitive)
    _emit(text, out, quiet=bool(out))
    return EXIT_OK


@cli.command("force-unlock")
@click.argument("lock_id")
@_state_read_options
def force_unlock(lock_id: str, **opts: Any) -> int:
    """Remove a lock left by a run that died (LOCK_ID from the error message)."""
    with _state_backend(opts) as backend:
        ops.force_unlock(backend, lock_id)
    click.echo(f"Lock {lock_id} removed.")
    return EXIT_OK
