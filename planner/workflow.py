"""Compositions of the stages that every command shares: which locations to list, refresh, plan.

No printing and no flags: the CLI calls these with what it parsed, tests call them directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from planner.desired import Desired
from planner.errors import UsageError
from planner.plan import Plan, PlanOptions, make_plan
from planner.refresh import JobReader, Live, refresh
from planner.state.model import State


def scope(desired: Desired | None, prior: State | None) -> tuple[set[tuple[str, str]], set[str]]:
    """The (project, location) pairs to list and the job names state already knows."""
    pairs: set[tuple[str, str]] = set()
    known: set[str] = set()
    if desired is not None:
        pairs.update((j.project, j.location) for j in desired.jobs.values())
    if prior is not None:
        for record in prior.jobs.values():
            pairs.add((record.project, record.location))
            known.add(record.name)
            known.update(record.old_names)
    return pairs, known


def read_live(
    client: JobReader,
    desired: Desired | None,
    prior: State | None,
    workspace: str,
    *,
    extra_pairs: Iterable[tuple[str, str]] = (),
    include_unmanaged: bool = False,
) -> Live:
    pairs, known = scope(desired, prior)
    pairs.update(extra_pairs)
    return refresh(client, pairs, workspace, known_names=known, include_unmanaged=include_unmanaged)


@dataclass(frozen=True)
class Planned:
    plan: Plan
    live: Live


def refresh_and_plan(
    client: JobReader,
    desired: Desired,
    prior: State | None,
    *,
    workspace: str,
    targets: Iterable[str] = (),
    created_at: str = "",
) -> Planned:
    target_set = frozenset(targets)
    unknown = sorted(target_set - set(desired.jobs) - set(prior.jobs if prior else {}))
    if unknown:
        raise UsageError(f"--target {', '.join(unknown)}: no such job in the configuration or state")
    live = read_live(client, desired, prior, workspace)
    options = PlanOptions(workspace=workspace, targets=target_set, created_at=created_at)
    return Planned(make_plan(desired, prior, live, options), live)


def refreshed(prior: State, live: Live) -> State:
    """The prior state with each job's live state recorded, as Terraform's refresh does.

    Drift reports a job that became FAILED/CANCELLED "since the last apply" by comparing with
    the state recorded here.
    """
    jobs = dict(prior.jobs)
    changed = False
    for address, record in prior.jobs.items():
        job = live.jobs.get(record.name)
        if job is not None and job.state != record.last_state:
            jobs[address] = replace(record, last_state=job.state)
            changed = True
    return replace(prior, jobs=jobs) if changed else prior
