"""The spec hash of every desired job: the state record's when the body is the spec it recorded,
else the hash of the canonicalised body (planner.canonical). Pure, like the engine that uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.canonical import canonical_spec, spec_hash
from planner.config.model import Desired
from planner.secrets import is_digest, matches_digest
from planner.state.model import JobRecord


def desired_hashes(
    desired: Desired, records: Mapping[str, JobRecord], targets: frozenset[str] = frozenset()
) -> dict[str, str]:
    """The spec hash of every desired job (only the targets, if any).

    A body that is the spec its state record holds (`recorded`; validation already writes
    int64 and durations the canonical way, so unchanged jobs usually are) is that canonical
    spec, and its hash is the record's: the state is planner's own record of what it applied,
    trusted like its job names. This also keeps a job created by an older planner, whose
    canonical form may since have changed, a no-op while its configuration does not change.
    """
    out: dict[str, str] = {}
    for address, job in desired.jobs.items():
        if targets and address not in targets:
            continue
        record = records.get(address)
        if record is not None and record.spec_hash and recorded(job.body, record.spec):
            out[address] = record.spec_hash
        else:
            out[address] = spec_hash(canonical_spec(job.body))
    return out


def recorded(body: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    """Is `body` the spec `stored` holds, where a state file keeps each env value as a salted digest?

    True only if the two are equal once every env value of `body` that matches the digest in
    its place is taken as that digest; on any other difference (a sensitive variable's digest
    elsewhere included) it says False, and the caller canonicalises and hashes the body.
    """
    if body == stored:
        return True
    job_spec, stored_spec = body.get("jobSpec"), stored.get("jobSpec")
    if not isinstance(job_spec, Mapping) or not isinstance(stored_spec, Mapping):
        return False
    pools, stored_pools = job_spec.get("workerPoolSpecs"), stored_spec.get("workerPoolSpecs")
    if not isinstance(pools, list) or not isinstance(stored_pools, list) or len(pools) != len(stored_pools):
        return False
    aligned = []
    for pool, stored_pool in zip(pools, stored_pools, strict=True):
        if not isinstance(pool, Mapping) or not isinstance(stored_pool, Mapping):
            return False
        pool = dict(pool)
        for kind in ("containerSpec", "pythonPackageSpec"):
            section, stored_section = pool.get(kind), stored_pool.get(kind)
            if isinstance(section, Mapping) and isinstance(stored_section, Mapping) and "env" in section:
                if not _same_env(section["env"], stored_section.get("env")):
                    return False
                pool[kind] = {**section, "env": stored_section["env"]}
        aligned.append(pool)
    return {**body, "jobSpec": {**job_spec, "workerPoolSpecs": aligned}} == stored


def _same_env(env: Any, stored: Any) -> bool:
    """The same env entries, each value equal or matching the digest stored in its place."""
    if not isinstance(env, list) or not isinstance(stored, list) or len(env) != len(stored):
        return False
    for item, kept in zip(env, stored, strict=True):
        if item == kept:
            continue
        if not isinstance(item, Mapping) or not isinstance(kept, Mapping):
            return False
        value, digest = item.get("value"), kept.get("value")
        if not (isinstance(value, str) and isinstance(digest, str) and is_digest(digest)):
            return False
        if not matches_digest(digest, value):
            return False
        if {**item, "value": digest} != kept:
            return False
    return True
