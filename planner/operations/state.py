"""What the state commands do: state list/show/rm/forget-released/restore, import (one job, every
unmanaged job, a gcloud config file), export --gcloud-config and force-unlock, each opened with
`open_state`; the file formats and the adoption rules are planner.adoption's.

No click and no printing: each function takes the Backend and plain arguments and returns what
it listed, removed, imported or wrote; the CLI prints it. A refusal is a UsageError (or the
store's StateError). Files with a job's configuration are written through the `write` callable
given (the CLI's masked, mode-0600 writer), inside the lock and before the state that names the
job: a job in state but in no configuration would be deleted by the next apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.errors import UsageError
from planner.operations.backend import Backend, locked, open_state, signals_deferred

if TYPE_CHECKING:
    from planner.adoption import Adopted
    from planner.generate import Generated
    from planner.state.model import JobRecord, ReleasedJob, State

# Everything else is imported where used: the CLI imports this module for every command.

Write = Callable[[str, str], None]  # (text, path)

_ADDRESS = re.compile(r"[a-z][a-z0-9-]{0,62}")
JOB_NAME = re.compile(r"projects/[^/]+/locations/[^/]+/customJobs/[^/]+")


# -- state list / show / rm / forget-released / restore -------------------------------------------


def list_records(backend: Backend) -> list[JobRecord]:
    """The records in state, by address (a --state that names no state is refused)."""
    with open_state(backend, must_exist=True) as opened:
        return [record for _address, record in sorted((opened.state.jobs if opened.state else {}).items())]


def list_released(backend: Backend) -> list[ReleasedJob]:
    """The jobs let go by onRemove cancel/forget, by job name."""
    with open_state(backend, must_exist=True) as opened:
        return [job for _name, job in sorted((opened.state.released if opened.state else {}).items())]


def show_record(backend: Backend, address: str) -> dict[str, Any]:
    """One address's record as JSON data, env values described (never shown) as they are at rest."""
    from planner.secrets import show_at_rest
    from planner.state.fileformat import record_to_json

    with open_state(backend) as opened:
        state = opened.state
    if state is None or address not in state.jobs:
        raise UsageError(f"{address}: not in state")
    doc = record_to_json(state.jobs[address])
    doc["spec"] = show_at_rest(doc.get("spec"))  # record_to_json keeps env values only as digests
    return {"address": address, **doc}


def remove_records(backend: Backend, addresses: Sequence[str]) -> list[str]:
    """Forget addresses (the jobs themselves are left alone); every one must be in state."""
    with open_state(backend, "state rm") as opened:
        state = opened.state
        missing = [a for a in addresses if state is None or a not in state.jobs]
        if missing:
            raise UsageError(f"not in state: {', '.join(missing)}")
        assert state is not None
        for address in addresses:
            state = state.without_job(address)
        with signals_deferred():
            opened.store.write(state)
    return list(addresses)


def check_forget_released(jobs: Sequence[str], forget_all: bool) -> None:
    """Refuse a forget-released that names nothing (before any flag of the backend is read)."""
    if not jobs and not forget_all:
        raise UsageError("name the released jobs to forget (job names or addresses), or pass --all")


def forget_released(backend: Backend, jobs: Sequence[str], forget_all: bool) -> list[str]:
    """Forget released jobs (`jobs`: job names or addresses; every one with `forget_all`) and
    give back the job names forgotten."""
    check_forget_released(jobs, forget_all)
    with open_state(backend, "state forget-released") as opened:
        state = opened.state
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
            return []
        for name in names:
            state = state.without_released(name)
        with signals_deferred():
            opened.store.write(state)
    return sorted(set(names))


@dataclass(frozen=True)
class Restored:
    """A state put back from its backup."""

    description: str
    backup_path: Path
    state: State


def restore_backup(backend: Backend) -> Restored:
    """Put a local state's .backup back where the state file is missing or corrupt."""
    from planner.state import LocalStore

    with open_state(backend, read=False) as opened:  # the state is missing or unreadable: not read
        store = opened.store
        if not isinstance(store, LocalStore):
            raise UsageError("state restore works on a local state file; for gs:// copy the backup object back")
        with locked(store, "state restore", backend.lock_timeout), signals_deferred():
            state = store.restore_backup()
    return Restored(store.description, store.backup_path, state)


def force_unlock(backend: Backend, lock_id: str) -> None:
    """Remove the lock LOCK_ID left by a run that died (the store refuses any other)."""
    with open_state(backend, read=False) as opened:
        opened.store.force_unlock(lock_id)


# -- import / export ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    """A job taken into state, and its configuration if one was asked for."""

    record: JobRecord
    generated: Generated | None


def check_import(address: str | None, job_name: str | None, generate_config: str | None) -> tuple[str, str]:
    """Refuse an `import ADDRESS JOB_NAME` that cannot be right (before any flag of the backend is read)."""
    if address is None or job_name is None:
        raise UsageError("import needs ADDRESS JOB_NAME (or --from-gcloud-config FILE, or --all-unmanaged)")
    if generate_config and Path(generate_config).exists():
        raise UsageError(f"--generate-config {generate_config}: the file exists; planner does not overwrite it")
    if not _ADDRESS.fullmatch(address):
        raise UsageError(f"{address!r} is not a valid address (^[a-z][a-z0-9-]{{0,62}}$)")
    if not JOB_NAME.fullmatch(job_name):
        raise UsageError(f"{job_name!r} is not a CustomJob name (projects/P/locations/L/customJobs/ID)")
    return address, job_name


def import_job(
    backend: Backend, address: str, job_name: str, *, generate_config: str | None = None, write: Write | None = None
) -> Imported:
    """Start managing the job `job_name` at `address`; with `generate_config`, its configuration
    is written there (through `write`) before the state is."""
    from planner import adoption
    from planner.state import State

    check_import(address, job_name, generate_config)
    with open_state(backend, "import", client=True) as opened:
        state = opened.state or State.new()
        if address in state.jobs:
            raise UsageError(f"{address} is already in state ({state.jobs[address].name}); `state rm` it first")
        for other, record in state.jobs.items():
            if record.name == job_name or job_name in record.old_names:
                raise UsageError(f"{job_name} is already managed as {other}")
        job = adoption.fetch(opened.client, job_name)
        if job.managed and (job.workspace != backend.workspace or (job.address and job.address != address)):
            raise UsageError(
                f"{job_name} is labelled as {job.address!r} in workspace {job.workspace!r}: "
                "another workspace or address manages it"
            )
        record = adoption.record_for(address, job)
        generated = None
        if generate_config:  # before the state: a job in state but not in config would be deleted
            from planner.generate import from_live

            generated = from_live(address, job.resource)
            if write is None:
                raise TypeError("import_job: generate_config needs write")
            write(generated.text, generate_config)
        with signals_deferred():
            # A released job taken back is managed again, no longer released.
            opened.store.write(state.with_job(record).without_released(job.name))
    return Imported(record, generated)


def check_import_all(address: str | None, job_name: str | None, project: str | None, region: str | None,
                     directory: str | None) -> Path:  # fmt: skip
    """Refuse an `import --all-unmanaged` that cannot be right; the directory for its files."""
    if address or job_name:
        raise UsageError("--all-unmanaged takes no ADDRESS JOB_NAME")
    if not directory or not project or not region:
        raise UsageError("--all-unmanaged needs --project, --region and --generate-config DIR")
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise UsageError(f"--generate-config {target}: not a directory")
    return target


def import_unmanaged(backend: Backend, project: str, region: str, directory: str, write: Write) -> list[Adopted]:
    """Adopt every job of `project`/`region` without planner's labels and not in state, each
    with its configuration written to `directory`/ADDRESS.yaml (no file there is replaced)."""
    from planner import adoption
    from planner.state import State

    target = check_import_all(None, None, project, region, directory)
    with open_state(backend, "import", client=True) as opened:
        state = opened.state or State.new()
        resources = adoption.unmanaged_jobs(opened.client, project, region, state)
        existing = {p.stem for p in target.glob("*.yaml")} if target.is_dir() else set()
        adopted = adoption.adopt_all(resources, state, existing)
        for item in adopted:
            write(item.generated.text, str(target / f"{item.record.address}.yaml"))
            state = state.with_job(item.record)
        if adopted:
            with signals_deferred():
                opened.store.write(state)
    return adopted


def convert_gcloud_config(path: str, *, address: str | None, display_name: str | None = None,
                          project: str | None = None, region: str | None = None, out: str | None = None,
                          alone: bool = True) -> Generated:  # fmt: skip
    """The desired-state file for a gcloud config file (nothing is sent or recorded); `alone`:
    given without ADDRESS JOB_NAME or --all-unmanaged. Project and region left out stay variables."""
    from planner import adoption

    if not alone:
        raise UsageError("--from-gcloud-config takes --address ADDR, not ADDRESS JOB_NAME or --all-unmanaged")
    if not address:
        raise UsageError("--from-gcloud-config needs --address ADDR")
    if out and Path(out).exists():
        raise UsageError(f"--out {out}: the file exists; planner does not overwrite it")
    return adoption.from_gcloud_config(path, address=address, display_name=display_name,
                                       project=project or "${var.project}", location=region or "${var.region}")


def export_gcloud_config(backend: Backend, address: str, *, show_sensitive: bool = False) -> str:
    """The gcloud config file for the live job at `address`; env values only with `show_sensitive`."""
    from planner import adoption

    with open_state(backend) as opened:
        state = opened.state
        if state is None or address not in state.jobs:
            raise UsageError(f"{address}: not in state")
        resource = adoption.fetch(backend.client(), state.jobs[address].name).resource
    return adoption.export_gcloud(resource, show_sensitive=show_sensitive)
