"""Moving existing jobs in and out: gcloud config import/export, import with --generate-config.

The operations behind `planner import --from-gcloud-config`, `import ADDR JOB --generate-config`,
`import --all-unmanaged --generate-config DIR` and `export ADDR --gcloud-config`. They take the
API client and state they need and return what they made; planner.operations.state holds the
lock and writes the state, the CLI reads flags and prints. File formats are `planner.gcloud`'s
and `planner.generate`'s.

Identity: labels cannot be added to a CustomJob after create, so an adopted job that planner
did not create carries no planner labels. It is known by its name in state alone (refresh
looks such jobs up one by one); if that state is lost, only `import` finds it again. The
first replace creates a labelled job in its place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from planner import apimodel, gcloud
from planner.canonical import canonical_spec
from planner.config.validate import validate_documents
from planner.errors import ApiError, UsageError
from planner.generate import Generated, address_for, from_body, from_live
from planner.refresh import LiveJob, live_job
from planner.state.model import JobRecord, State

ADDRESS = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class JobReader(Protocol):
    def get_job(self, name: str) -> dict[str, Any]: ...

    def list_jobs(self, project: str, location: str, *, filter: str | None = None) -> Iterable[dict[str, Any]]: ...


@dataclass(frozen=True)
class Adopted:
    """A job taken into state, and the configuration written for it."""

    record: JobRecord
    generated: Generated


def from_gcloud_config(path: str, *, address: str, display_name: str | None, project: str, location: str) -> Generated:
    """A desired-state file for the job a gcloud config file describes, every field checked
    (problems are reported at the gcloud file's lines)."""
    if not ADDRESS.match(address):
        raise UsageError(f"--address {address!r} is not a valid address (^[a-z][a-z0-9-]{{0,62}}$)")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"{path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise UsageError(f"{path}: not UTF-8 text") from err
    spec, span = gcloud.read_config(text, path)
    document = gcloud.as_document(
        path, spec, span, address=address, display_name=display_name or address, project=project, location=location
    )
    job = validate_documents([document], variables={}).jobs[address]
    return from_body(address, project, location, job.body, f"Converted by planner from the gcloud config {path}.")


def fetch(client: JobReader, job_name: str) -> LiveJob:
    try:
        return live_job(client.get_job(job_name))
    except ApiError as err:
        if err.http_status == 404:
            raise UsageError(f"{job_name}: no such job") from err
        raise


def record_for(address: str, job: LiveJob) -> JobRecord:
    return JobRecord(
        address=address,
        name=job.name,
        project=job.project,
        location=job.location,
        spec_hash=job.spec_hash,
        spec=dict(job.spec),
        last_state=job.state,
    )


def unmanaged_jobs(client: JobReader, project: str, location: str, state: State) -> list[dict[str, Any]]:
    """Every job of the project and location without planner's labels and not already in state."""
    known = {name for record in state.jobs.values() for name in (record.name, *record.old_names)}
    out = []
    for resource in client.list_jobs(project, location):
        labels = resource.get("labels") or {}
        if labels.get(apimodel.LABEL_MANAGED_BY) == apimodel.MANAGED_BY_VALUE:
            continue
        if resource.get("name") in known:
            continue
        out.append(resource)
    return sorted(out, key=lambda r: (str(r.get("createTime", "")), str(r.get("name", ""))))


def adopt_all(resources: Sequence[Mapping[str, Any]], state: State, taken: Iterable[str]) -> list[Adopted]:
    """One address, record and configuration per job; addresses from display names, made unique."""
    used = set(state.jobs) | set(taken)
    out = []
    for resource in resources:
        job = live_job(resource)
        address = address_for(str(resource.get("displayName") or "job"), used)
        used.add(address)
        out.append(Adopted(record_for(address, job), from_live(address, resource)))
    return out


def export_gcloud(resource: Mapping[str, Any], *, show_sensitive: bool) -> str:
    """The gcloud config file for a live job; refuses to write env values unless show_sensitive."""
    canonical = canonical_spec(resource)
    job_spec = canonical.get("jobSpec") or {}
    if not show_sensitive and gcloud.has_env_values(job_spec):
        raise UsageError(
            "the job has env values, which a gcloud config file holds in plain text; "
            "pass --show-sensitive to write them anyway"
        )
    return gcloud.config_text(canonical, location=live_job(resource).location or "REGION")
