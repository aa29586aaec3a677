"""State and adoption: state list/show/rm/forget-released/restore, import, export, force-unlock."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from planner.cli.app import cli
from planner.cli.options import (
    DEFAULT_LOCK_TIMEOUT,
    _backend,
    _backend_of,
    _emit,
    _explicit_state,
    _without,
    backend_options,
)
from planner.errors import (
    EXIT_OK,
    ApiError,
    UsageError,
)
from planner.operations.backend import (
    Backend,
    locked,
    signals_deferred,
)


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


