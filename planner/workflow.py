"""Compositions of the stages that every command shares: which locations to list, refresh, plan.

No printing and no flags: the CLI calls these with what it parsed, tests call them directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from planner.desired import Desired
from planner.errors import UsageError
from planner.matrix import address_label, expand_targets
from planner.plan import Plan, PlanOptions, desired_hashes, make_plan
from planner.refresh import JobReader, Live, LiveJob, Refresher, refresh
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
    refresher: Refresher | None = None,
) -> tuple[Planned, State | None]:
    """Refresh and plan, reading the prior state (and canonicalising desired) while the listing runs.

    `desired` has passed validation, so asking the API is allowed from the start: the
    listing of the configuration's locations goes out first, then the state is read and
    its other locations are listed, and the desired spec hashes are computed while the
    pages arrive. The listing asks only for the fields a no-change row needs; the jobs that
    will be diffed are then read in full (see `Refresher`). A `refresher` made with
    `summary=True` may have been started by the caller (e.g. from load_desired's on_valid).
    """
    target_set = frozenset(targets)
    with contextlib.ExitStack() as stack:
        if refresher is None:
            refresher = stack.enter_context(Refresher(client, workspace, summary=True))
        refresher.start(scope(desired, None)[0])
        prior = read_prior()
        target_set = expand_targets(target_set, (*desired.jobs, *(prior.jobs if prior else {})))
        unknown = sorted(target_set - set(desired.jobs) - set(prior.jobs if prior else {}))
        if unknown:
            raise UsageError(f"--target {', '.join(unknown)}: no such job in the configuration or state")
        pairs, known = scope(None, prior)
        refresher.start(pairs)
        hashes = desired_hashes(desired, prior.jobs if prior is not None else {}, target_set)
        live = refresher.finish(known, needs_spec=_spec_needed(desired, hashes, target_set))
    options = PlanOptions(workspace=workspace, targets=target_set, created_at=created_at)
    return Planned(make_plan(desired, prior, live, options, hashes=hashes), live), prior


def _spec_needed(desired: Desired, hashes: Mapping[str, str], targets: frozenset[str]) -> Callable[[LiveJob], bool]:
    """Will planning look at this job's spec? Not when its planner-spec label equals the desired
    hash (a job cannot change after create) and no ignoreChanges asks for a field comparison."""

    # A sweep's jobs carry a label value, not their address (planner.matrix.address_label).
    labelled = {address_label(a): a for a in desired.jobs if "[" in a}

    def needed(job: LiveJob) -> bool:
        address = labelled.get(job.address or "", job.address)
        if targets and address not in targets:
            return False
        wanted = desired.jobs.get(address) if address else None
        if wanted is None or wanted.lifecycle.ignore_changes or not job.managed or not job.spec_label:
            return True
        hash_hex = hashes.get(wanted.address)
        return hash_hex is None or hash_hex[:16] != job.spec_label

    return needed


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
