"""The plan operation (`planner plan` between its flags and its output) and the compositions of
stages every command shares: which locations to list, refresh, plan, price, save the plan file.

No printing and no flags: the CLI calls these with what it parsed and shows the result, tests call
them directly.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from planner.config.matrix import address_label, expand_targets
from planner.config.model import Desired
from planner.errors import UsageError
from planner.operations.backend import Backend, locked, long_lived
from planner.plans.engine import make_plan
from planner.plans.hashes import desired_hashes
from planner.plans.model import Plan, PlanOptions
from planner.refresh import JobReader, Live, LiveJob, Refresher, refresh
from planner.state.model import State

if TYPE_CHECKING:
    from planner.hardware import HardwareOptions
    from planner.state.store import StateStore


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(when: datetime) -> str:
    """RFC 3339 in UTC to the second, as plans and reports record their creation."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PlanRequest:
    """What a plan is asked for, the flags and settings already turned into values; the workspace
    is the Backend's."""

    paths: tuple[str, ...]
    variables: Mapping[str, str] = field(default_factory=dict)  # resolved (planner.config.variables)
    hardware_catalog: str | None = None  # --hardware-catalog
    allow_unknown_hardware: bool = False
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    price_file: str | None = None  # None: the bundled prices
    policy_file: str | None = None
    max_cost: float | None = None
    clock: Callable[[], datetime] = utc_now  # the plan's creation time and the prices' age


@dataclass(frozen=True)
class PlanResult:
    """The checked configuration, its plan, the state it was planned from and the live jobs read."""

    desired: Desired
    plan: Plan
    prior: State | None
    live: Live


def plan(
    request: PlanRequest, backend: Backend, *, on_loaded: Callable[[Desired], None] = lambda _d: None
) -> PlanResult:
    """What `planner plan` does: load and check the configuration (`on_loaded` sees it, warnings
    included, before the API is asked), take the state lock, refresh and plan, then price the plan
    and pass the policy gates (`priced`)."""
    store = backend.store()
    desired = load_configuration(request)  # one collector pause for the configuration, one for the plan
    on_loaded(desired)
    client = backend.client()
    with locked(store, "plan", backend.lock_timeout), long_lived():
        result = plan_from_store(client, store, desired, request, workspace=backend.workspace)
    return replace(result, plan=priced(result, request))


def load_configuration(request: PlanRequest) -> Desired:
    """The request's files loaded and checked (ConfigError with every problem); warnings in `warnings`."""
    from planner.config.validate import load_desired

    with long_lived():
        hardware = load_hardware(request.hardware_catalog, request.allow_unknown_hardware)
        return load_desired(list(request.paths), variables=request.variables, hardware=hardware)


def load_hardware(catalog: str | None, allow_unknown: bool) -> HardwareOptions | None:
    """The hardware options of a command (None when both are left out: the default catalog)."""
    if not allow_unknown and not catalog:
        return None
    from planner.hardware import HardwareOptions, load_catalog

    return HardwareOptions(catalog=load_catalog(catalog), allow_unknown=allow_unknown)


def plan_from_store(
    client: JobReader, store: StateStore, desired: Desired, request: PlanRequest, *, workspace: str
) -> PlanResult:
    """Refresh and plan against the state in `store` (the caller holds its lock); not priced yet."""
    planned, prior = read_and_plan(client, desired, store.read, workspace=workspace, targets=request.targets,
                                   created_at=timestamp(request.clock()), replace=request.replace)
    return PlanResult(desired, planned.plan, prior, planned.live)


def priced(result: PlanResult, request: PlanRequest) -> Plan:
    """The plan with its costs, a warning if the prices are old, and the policy gates passed."""
    from planner.policy import check, config_policy, load_policy_file, max_cost_policy, refuse
    from planner.pricing.cost import annotate
    from planner.pricing.prices import load_book

    book = load_book(request.price_file)
    plan = annotate(result.plan, result.live, result.prior, book)
    stale = book.stale_warning(request.clock().date())
    if stale:
        plan = replace(plan, warnings=(*plan.warnings, stale))
    policy = config_policy(result.desired.files)
    if request.policy_file:
        policy = policy.combine(load_policy_file(request.policy_file))
    if request.max_cost is not None:
        policy = policy.combine(max_cost_policy(request.max_cost))
    violations = check(plan, policy) if not policy.empty else []
    if violations:
        raise refuse(violations)
    return plan


def save_plan(path: Path, result: PlanResult, request: PlanRequest) -> None:
    """Save the plan for `planner apply FILE`: the plan document, the configuration's files and hash
    and the variables it was planned with, sensitive values left out."""
    from planner.config.variables import as_values
    from planner.documents.plan import plan_to_json
    from planner.plans.planfile import variables_entry, without_secrets

    doc = plan_to_json(result.plan, for_file=True)
    doc["config"] = {"files": list(result.desired.files), "hash": result.desired.config_hash}
    doc["variables"] = variables_entry(as_values(request.paths, request.variables))
    doc = without_secrets(doc)
    write_private(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")


def write_private(path: Path, text: str) -> None:
    """Write a file that may hold secrets (saved plans): mode 0600, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def read_live(client: JobReader, desired: Desired | None, prior: State | None, workspace: str, *,
              extra_pairs: Iterable[tuple[str, str]] = (), include_unmanaged: bool = False) -> Live:  # fmt: skip
    """The live jobs where the configuration and the state say jobs run, and in `extra_pairs`."""
    pairs, known = scope(desired, prior)
    pairs.update(extra_pairs)
    return refresh(client, pairs, workspace, known_names=known, include_unmanaged=include_unmanaged)


@dataclass(frozen=True)
class Planned:
    plan: Plan
    live: Live


def refresh_and_plan(client: JobReader, desired: Desired, prior: State | None, *, workspace: str,
                     targets: Iterable[str] = (), created_at: str = "", replace: Iterable[str] = ()) -> Planned:
    """`read_and_plan` from a state already read."""
    return read_and_plan(
        client, desired, lambda: prior, workspace=workspace, targets=targets, created_at=created_at, replace=replace
    )[0]


def read_and_plan(client: JobReader, desired: Desired, read_prior: Callable[[], State | None], *, workspace: str,
                  targets: Iterable[str] = (), created_at: str = "", refresher: Refresher | None = None,
                  replace: Iterable[str] = ()) -> tuple[Planned, State | None]:  # fmt: skip
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


def _spec_needed(desired: Desired, hashes: Mapping[str, str], targets: frozenset[str],
                 released: frozenset[str] = frozenset()) -> Callable[[LiveJob], bool]:
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
    """The prior state with each job's live state recorded, as Terraform's refresh does (drift's
    "FAILED/CANCELLED since the last apply" compares with it)."""
    jobs = dict(prior.jobs)
    changed = False
    for address, record in prior.jobs.items():
        job = live.jobs.get(record.name)
        if job is not None and job.state != record.last_state:
            jobs[address] = replace(record, last_state=job.state)
            changed = True
    return replace(prior, jobs=jobs) if changed else prior
