"""The desired state's fingerprints: one job's digest and the config hash over all of them, which
a saved plan records so that apply can tell the configuration changed; what goes into a job is
`validate`'s business.

`validate` hands `Desired` the way to compute the hash, not the hash: it is computed when first
read (a plan reads it; `planner validate` never does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from planner import jsoncodec
from planner.config.model import DesiredJob


def config_hash(jobs: Mapping[str, DesiredJob], digests: Mapping[str, bytes] | None = None) -> str:
    """sha256 over the job digests in address order; `digests` may hold some already computed."""
    total = hashlib.sha256()
    for address in sorted(jobs):
        digest = digests.get(address) if digests is not None else None
        total.update(digest if digest is not None else job_digest(jobs[address]))
    return total.hexdigest()


def job_digest(job: DesiredJob) -> bytes:
    """sha256 of one job's canonical JSON (address, project, location, body, lifecycle)."""
    entry = {
        "address": job.address,
        "project": job.project,
        "location": job.location,
        "body": job.body,
        "lifecycle": job.lifecycle.to_json(),
    }
    return hashlib.sha256(jsoncodec.dumps_sorted(entry)).digest()
