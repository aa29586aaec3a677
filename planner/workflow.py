"""Compositions of the stages that every command shares: which locations to list, refresh, plan.

No printing and no flags: the CLI calls these with what it parsed, tests call them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from planner.desired import Desired
from planner.errors import UsageError
from planner.plan import Plan, PlanOptions, desired_specs, make_plan
from planner.refresh import JobReader, Live, Refresher, refresh
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
    return read_and_plan(client, desired, lambda: prior, workspace=workspace, targets=targets, created_at=created_at)[0]


def read_and_plan(
    client: JobReader,
    desired: Desired,
    read_prior: Callable[[], State | None],
    *,
    workspace: str,
    targets: Iterable[str] = (),
    created_at: str = "",
) -> tuple[Planned, State | None]:
    """Refresh and plan, reading the prior state (and canonicalising desired) while the listing runs.

    `desired` has passed validation, so asking the API is allowed from the start: the
    listing of the configuration's locations goes out first, then the state is read and
    its other locations are listed, and the desired specs are brought to canonical form
    while the pages arrive.
    """
    target_set = frozenset(targets)
    with Refresher(client, workspace) as refresher:
        refresher.start(scope(desired, None)[0])
        prior = read_prior()
        unknown = sorted(target_set - set(desired.jobs) - set(prior.jobs if prior else {}))
        if unknown:
            raise UsageError(f"--target {', '.join(unknown)}: no such job in the configuration or state")
        pairs, known = scope(None, prior)
        refresher.start(pairs)
        specs = desired_specs(desired, target_set)
        live = refresher.finish(known)
    options = PlanOptions(workspace=workspace, targets=target_set, created_at=created_at)
    return Planned(make_plan(desired, prior, live, options, specs=specs), live), prior


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
