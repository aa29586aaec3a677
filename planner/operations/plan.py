"""Compositions of the stages that every command shares: which locations to list, refresh, plan.

No printing and no flags: the CLI calls these with what it parsed, tests call them directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from planner.config.matrix import address_label, expand_targets
from planner.config.model import Desired
from planner.errors import UsageError
from planner.plans.engine import make_plan
from planner.plans.hashes import desired_hashes
from planner.plans.model import Plan, PlanOptions
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
            # Where state says a job runs, and where its replaced jobs run: a job moved to another
            # project or location is still listed (and cleaned up) in its old place.
            pairs.add((record.project, record.location))
            pairs.update(p for p in map(_pair_of, record.old_names) if p is not None)
            known.add(record.name)
            known.update(record.old_names)
    return pairs, known


def _pair_of(name: str) -> tuple[str, str] | None:
    """(project, location) of `projects/P/locations/L/customJobs/ID`."""
    parts = name.split("/")
    if len(parts) == 6 and parts[0] == "projects" and parts[2] == "locations":
        return parts[1], parts[3]
    return None


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
    replace: Iterable[str] = (),
) -> Planned:
    return read_and_plan(
        client, desired, lambda: prior, workspace=workspace, targets=targets, created_at=created_at, replace=replace
    )[0]


def read_and_plan(
    client: JobReader,
    desired: Desired,
    read_prior: Callable[[], State | None],
    *,
    workspace: str,
    targets: Iterable[str] = (),
    created_at: str = "",
    refresher: Refresher | None = None,
    replace: Iterable[str] = (),
) -> tuple[Planned, State | None]:
    """Refresh and plan, reading the prior state (and canonicalising desired) while the listing runs.

    `desired` has passed validation, so asking the API is allowed from the start: the
    listing of the configuration's locations goes out first, then the state is read and
    its other locations are listed, and the desired spec hashes are computed while the
    pages arrive. The listing asks only for the fields a no-change row needs; the jobs that
    will be diffed are then read in full (see `Refresher`). A `refresher` made with
    `summary=True` may have been started by the caller.
    """
    target_set = frozenset(targets)
    replace_set = frozenset(replace)
    with contextlib.ExitStack() as stack:
        if refresher is None:
            refresher = stack.enter_context(Refresher(client, workspace, summary=True))
        refresher.start(scope(desired, None)[0])
        prior = read_prior()
        target_set = expand_targets(target_set, (*desired.jobs, *(prior.jobs if prior else {})))
        replace_set = expand_targets(replace_set, desired.jobs)
        check_replace(desired, target_set, replace_set)
        unknown = sorted(target_set - set(desired.jobs) - set(prior.jobs if prior else {}))
        if unknown:
            raise UsageError(f"--target {', '.join(unknown)}: no such job in the configuration or state")
        pairs, known = scope(None, prior)
        refresher.start(pairs)
        hashes = desired_hashes(desired, prior.jobs if prior is not None else {}, target_set)
        released = frozenset(prior.released) if prior is not None else frozenset()
        live = refresher.finish(known, needs_spec=_spec_needed(desired, hashes, target_set, released))
    options = PlanOptions(workspace=workspace, targets=target_set, created_at=created_at, replace=replace_set)
    return Planned(make_plan(desired, prior, live, options, hashes=hashes), live), prior


def check_replace(desired: Desired, targets: frozenset[str], replace: frozenset[str]) -> None:
    """`--replace ADDR` re-creates a job of the configuration, one the plan covers."""
    unknown = sorted(replace - set(desired.jobs))
    if unknown:
        raise UsageError(f"--replace {', '.join(unknown)}: no such job in the configuration")
    untargeted = sorted(replace - targets) if targets else []
    if untargeted:
        raise UsageError(f"--replace {', '.join(untargeted)}: not among the --target addresses")


def _spec_needed(
    desired: Desired, hashes: Mapping[str, str], targets: frozenset[str], released: frozenset[str] = frozenset()
) -> Callable[[LiveJob], bool]:
    """Will planning look at this job's spec? Not when its planner-spec label equals the desired
    hash (a job cannot change after create), it runs where the configuration says, and no
    ignoreChanges asks for a field comparison."""

    # A sweep's jobs carry a label value, not their address (planner.config.matrix.address_label).
    labelled = {address_label(a): a for a in desired.jobs if "[" in a}

    def needed(job: LiveJob) -> bool:
        address = labelled.get(job.address or "", job.address)
        if (targets and address not in targets) or job.name in released:
            return False  # not planned at all (a released job is no longer planner's)
        wanted = desired.jobs.get(address) if address else None
        if wanted is None or wanted.lifecycle.ignore_changes or not job.managed or not job.spec_label:
            return True
        if (job.project, job.location) != (wanted.project, wanted.location):
            return True  # a move is a replace, diffed field by field
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
