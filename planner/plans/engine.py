"""Plan: desired + prior state + live jobs → the ordered changes that would make them agree.

Pure (no network, no printing). Implements the table of DESIGN §5: every spec change is
a replace; jobs are identified by state name and by planner's labels, never by display
name. It makes the model of planner.plans.model; planner.documents.plan turns it into the
JSON document every rendering and the saved plan file are made from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

from planner import apimodel
from planner.canonical import canonical_spec, spec_hash
from planner.config.matrix import by_address as sweep_addresses
from planner.config.model import Desired, DesiredJob, Lifecycle, OnRemove
from planner.diff import FieldChange, field_changes, ignored_changes, merge_changes, placement_changes, strip_paths
from planner.errors import PlanRefusedError
from planner.plans.hashes import desired_hashes
from planner.plans.model import Action, Plan, PlanOptions, Reason, ResourceChange, Step, StepKind
from planner.refresh import Live, LiveJob, fingerprint
from planner.state.model import JobRecord, ReleasedJob, State


def make_plan(
    desired: Desired,
    prior: State | None,
    live: Live,
    options: PlanOptions,
    *,
    hashes: Mapping[str, str] | None = None,
) -> Plan:
    """Decide what to do for every address in desired, prior state or live labelled jobs.

    `hashes` may hold desired_hashes(...) computed beforehand (while the refresh ran).
    """
    records: Mapping[str, JobRecord] = prior.jobs if prior is not None else {}
    by_address = sweep_addresses(claimable(live, prior, options.workspace), (*desired.jobs, *records))
    addresses = sorted(set(desired.jobs) | set(records) | set(by_address))
    if options.targets:
        addresses = [a for a in addresses if a in options.targets]
    if hashes is None:
        hashes = desired_hashes(desired, records, options.targets)

    changes: list[ResourceChange] = []
    warnings: list[str] = []
    for address in addresses:
        job = desired.jobs.get(address)
        hash_hex = (hashes.get(address) or spec_hash(canonical_spec(job.body))) if job is not None else None
        record = records.get(address)
        labelled = by_address.get(address, [])
        replace_requested = address in options.replace
        unchanged = unchanged_row(address, job, hash_hex, record, labelled, live, replace_requested)
        if unchanged is not None:
            changes.append(unchanged)
            continue
        planner_ = _AddressPlanner(address, job, hash_hex, record, labelled, live, replace_requested)
        changes.extend(planner_.plan())
        warnings.extend(planner_.warnings)

    refused = [c for c in changes if c.touches_job() and _prevents_destroy(c, desired, records)]
    if refused:
        names = ", ".join(sorted({c.address for c in refused}))
        raise PlanRefusedError(
            f"lifecycle.preventDestroy forbids this plan: it would cancel or delete {names}",
            hint="set preventDestroy: false, apply, then remove the job (put it back in the configuration "
            "first if it is gone from it); or leave the job as it is",
        )

    entries = _entries(changes, records, live, by_address, options.targets)
    return Plan(
        workspace=options.workspace,
        changes=tuple(changes),
        lineage=prior.lineage if prior is not None else None,
        serial=prior.serial if prior is not None else None,
        live_fingerprint=fingerprint(entries),
        config_hash=desired.config_hash,
        created_at=options.created_at,
        targets=tuple(sorted(options.targets)),
        warnings=tuple(warnings),
        fingerprint_entries=tuple(sorted(entries)),
    )


def unchanged_row(
    address: str,
    desired: DesiredJob | None,
    hash_hex: str | None,
    record: JobRecord | None,
    labelled: list[LiveJob],
    live: Live,
    replace_requested: bool = False,
) -> ResourceChange | None:
    """The one no-op row `_AddressPlanner(...).plan()` gives when the recorded job is the address's
    only live labelled job, in place, labelled with the desired spec hash, not due a rerun, note or
    lifecycle update; None whenever any of that does not hold, and the planner decides.

    Most rows of a plan are these; deciding them here skips the general selection and diff.
    """
    if desired is None or record is None or hash_hex is None or replace_requested or record.old_names:
        return None
    current = live.jobs.get(record.name)
    if current is None or any(job is not current for job in labelled):
        return None
    lifecycle = desired.lifecycle
    if (
        lifecycle.ignore_changes
        or (current.project, current.location) != (desired.project, desired.location)
        or not current.managed
        or current.spec_label != hash_hex[:16]
        or current.state in lifecycle.rerun_on
        or (current.terminal and current.state != "JOB_STATE_SUCCEEDED")
        or lifecycle_changes(record, lifecycle)
    ):
        return None
    return ResourceChange(
        address=address,
        action=Action.NOOP,
        reason=Reason.UNCHANGED,
        project=desired.project,
        location=desired.location,
        display_name=str(desired.body.get("displayName") or ""),
        job_name=current.name,
        job_state=current.state,
        lifecycle=lifecycle,
        after_hash=hash_hex,
    )


def claimable(live: Live, prior: State | None, workspace: str) -> dict[str, list[LiveJob]]:
    """Labelled live jobs by address, without the jobs state records as released.

    A released job (onRemove cancel or forget) keeps planner's labels for life; it is no
    longer planner's, so no plan adopts it, cleans it up or warns about it.
    """
    by_address = live.by_address(workspace)
    released: Mapping[str, ReleasedJob] = prior.released if prior is not None else {}
    if not released:
        return by_address
    out = {}
    for address, jobs in by_address.items():
        kept = [j for j in jobs if j.name not in released]
        if kept:
            out[address] = kept
    return out


def lifecycle_changes(record: JobRecord, lifecycle: Lifecycle) -> tuple[FieldChange, ...]:
    """How the desired lifecycle differs from the one state recorded (a state-only update).

    Lists the state does not know (written before state format 2) are not compared: the plan
    cannot tell, and a job applied once must not plan differently just because planner did.
    """
    rows = []
    if record.prevent_destroy != lifecycle.prevent_destroy:
        rows.append(
            FieldChange(
                "lifecycle.preventDestroy", "change", record.prevent_destroy, lifecycle.prevent_destroy, False
            )
        )
    if record.on_remove != lifecycle.on_remove.value:
        rows.append(FieldChange("lifecycle.onRemove", "change", record.on_remove, lifecycle.on_remove.value, False))
    for path, before, after in (
        ("lifecycle.ignoreChanges", record.ignore_changes, lifecycle.ignore_changes),
        ("lifecycle.rerunOn", record.rerun_on, lifecycle.rerun_on),
    ):
        if before is not None and tuple(before) != tuple(after):
            rows.append(FieldChange(path, "change", list(before), list(after), False))
    return tuple(rows)


def live_entries(plan: Plan, prior: State | None, live: Live, workspace: str) -> list[tuple[str, ...]]:
    """The live facts a saved plan depends on, read again at apply time to refuse a stale plan."""
    records: Mapping[str, JobRecord] = prior.jobs if prior is not None else {}
    claimed = claimable(live, prior, workspace)
    by_address = sweep_addresses(claimed, (*(c.address for c in plan.changes), *records))
    return _entries(plan.changes, records, live, by_address, frozenset(plan.targets))


def _entries(
    changes: Iterable[ResourceChange],
    records: Mapping[str, JobRecord],
    live: Live,
    by_address: Mapping[str, list[LiveJob]],
    targets: frozenset[str],
) -> list[tuple[str, ...]]:
    """(address, job name, spec hash, state) per labelled or recorded job.

    The state counts only for jobs the plan acts on: a no-op job that finishes between
    plan and apply does not make the plan stale; a job the plan would cancel does.
    """
    acted = {name for c in changes if c.action is not Action.NOOP for name in _names(c)}
    out: dict[str, tuple[str, ...]] = {}
    for address, jobs in by_address.items():
        if targets and address not in targets:
            continue
        for job in jobs:
            out[job.name] = (address, job.name, job.fingerprint_hash, job.state if job.name in acted else "")
    for address, record in records.items():
        if targets and address not in targets:
            continue
        for name in (record.name, *record.old_names):
            if name in out:
                continue
            seen = live.jobs.get(name)
            state = (seen.state if name in acted else "") if seen is not None else "gone"
            out[name] = (address, name, seen.fingerprint_hash if seen is not None else "-", state)
    return sorted(out.values())


def _names(change: ResourceChange) -> set[str]:
    names = {s.job for s in change.steps if s.job}
    if change.job_name:
        names.add(change.job_name)
    return names


def _prevents_destroy(change: ResourceChange, desired: Desired, records: Mapping[str, JobRecord]) -> bool:
    if change.reason in (Reason.DUPLICATE, Reason.REPLACED_CLEANUP):
        return False
    job = desired.jobs.get(change.address)
    if job is not None:
        return job.lifecycle.prevent_destroy
    record = records.get(change.address)
    return record is not None and record.prevent_destroy


class _AddressPlanner:
    """The DESIGN §5 table for one address."""

    def __init__(
        self,
        address: str,
        desired: DesiredJob | None,
        hash_hex: str | None,
        record: JobRecord | None,
        labelled: list[LiveJob],
        live: Live,
        replace_requested: bool = False,
    ):
        self.address = address
        self.replace_requested = replace_requested
        self.desired = desired
        self.record = record
        self.labelled = labelled
        self.live = live
        self.warnings: list[str] = []
        self.lifecycle = desired.lifecycle if desired is not None else None
        self.hash = hash_hex

    @cached_property
    def canonical(self) -> dict[str, Any] | None:
        """The desired canonical spec, built only for rows that show or diff it."""
        return canonical_spec(self.desired.body) if self.desired is not None else None

    # -- selection of the job that currently stands for the address ---------------------------

    def _current(self) -> tuple[LiveJob | None, bool, list[LiveJob]]:
        """(current job, found only by labels, other labelled jobs that are duplicates)."""
        record = self.record
        old = set(record.old_names) if record is not None else set()
        recorded = self.live.jobs.get(record.name) if record is not None else None
        others = [j for j in self.labelled if j.name not in old and (recorded is None or j.name != recorded.name)]
        if recorded is not None:
            # A newer labelled job matching the desired spec beside a recorded one that doesn't
            # (or that awaits a rerun) is a replacement whose create answer was lost: it becomes
            # current, and the recorded one is cleaned up.
            if self.desired is not None and not self._satisfied(recorded):
                matching = [j for j in others if self._satisfied(j) and j.create_time >= recorded.create_time]
                if matching:
                    chosen = self._best(matching)
                    return chosen, True, [j for j in others if j is not chosen] + [recorded]
            return recorded, False, others
        if not others or self.desired is None:
            return None, False, others
        matching = [j for j in others if self._same(j)]
        chosen = self._best(matching or others)
        return chosen, True, [j for j in others if j is not chosen]

    @staticmethod
    def _best(jobs: list[LiveJob]) -> LiveJob:
        active = [j for j in jobs if j.active]
        return max(active or jobs, key=lambda j: (j.create_time, j.name))

    def _ignored(self) -> tuple[str, ...]:
        return self.lifecycle.ignore_changes if self.lifecycle is not None else ()

    def _satisfied(self, job: LiveJob) -> bool:
        """Same spec and not in a state that asks for a rerun."""
        rerun = self.lifecycle.rerun_on if self.lifecycle is not None else ()
        return self._same(job) and job.state not in rerun

    def _same(self, job: LiveJob) -> bool:
        """Same spec in the same place: where a job runs is part of what it is."""
        if self.hash is None or not self._in_place(job):
            return False
        ignored = self._ignored()
        if not ignored:
            return job.matches(self.hash)
        canonical = self.canonical
        return canonical is not None and strip_paths(job.spec, ignored) == strip_paths(canonical, ignored)

    def _in_place(self, job: LiveJob) -> bool:
        desired = self.desired
        return desired is None or (job.project, job.location) == (desired.project, desired.location)

    def _hidden_changes(self, job: LiveJob, shown: tuple[FieldChange, ...]) -> tuple[FieldChange, ...]:
        """On a replace, the ignored paths the new job takes from the configuration (as Terraform)."""
        ignored = self._ignored()
        if not ignored:
            return ()
        return ignored_changes(job.spec, self._after()["after"], ignored, shown)

    # -- rows ----------------------------------------------------------------------------------

    def plan(self) -> list[ResourceChange]:
        current, found_by_labels, duplicates = self._current()
        rows: list[ResourceChange] = []
        if self.desired is not None:
            rows.append(self._desired_row(current, found_by_labels))
        elif self.record is not None:
            rows.append(self._removal_row(current))
        elif current is None and duplicates:
            for job in duplicates:
                self.warnings.append(
                    f"{job.name} is labelled {apimodel.LABEL_ADDRESS}={self.address} for this workspace but is "
                    "in neither the configuration nor the state; `planner import` it or delete it"
                )
            duplicates = []
        if found_by_labels and self.record is not None and current is not None:
            recorded = self.live.jobs.get(self.record.name)
            if recorded is not None and recorded is not current and recorded in duplicates:
                duplicates.remove(recorded)
                rows.append(self._cleanup_row(recorded, Reason.REPLACED_CLEANUP))
        for duplicate in sorted(duplicates, key=lambda j: j.name):
            rows.append(self._cleanup_row(duplicate, Reason.DUPLICATE))
        if self.record is not None:
            for name in self.record.old_names:
                old = self.live.jobs.get(name)
                if old is None:
                    # Gone already: only the state needs to forget it.
                    rows.append(
                        self._base(Action.FORGET, Reason.ALREADY_GONE, None, steps=(Step(StepKind.FORGET, name),))
                    )
                elif current is None or old.name != current.name:
                    rows.append(self._cleanup_row(old, Reason.REPLACED_CLEANUP))
        return rows

    def _base(self, action: Action, reason: Reason, job: LiveJob | None, **kw: Any) -> ResourceChange:
        desired = self.desired
        record = self.record
        project = desired.project if desired else (record.project if record else (job.project if job else ""))
        location = desired.location if desired else (record.location if record else (job.location if job else ""))
        display = ""
        if desired is not None:
            display = str(desired.body.get("displayName") or "")
        elif job is not None:
            display = str(job.spec.get("displayName", ""))
        elif record is not None:
            display = str(record.spec.get("displayName", ""))
        return ResourceChange(
            address=self.address,
            action=action,
            reason=reason,
            project=project,
            location=location,
            display_name=display,
            job_name=job.name if job else None,
            job_state=job.state if job else None,
            lifecycle=self.lifecycle,
            **kw,
        )

    def _desired_row(self, current: LiveJob | None, found_by_labels: bool) -> ResourceChange:
        assert self.hash is not None and self.lifecycle is not None
        if current is None:
            reason = Reason.DELETED_OUTSIDE if self.record is not None else Reason.NEW
            return self._base(Action.CREATE, reason, None, steps=(Step(StepKind.CREATE),), **self._after())
        if self._same(current):
            if self.replace_requested or current.state in self.lifecycle.rerun_on:
                reason = Reason.REPLACE_REQUESTED if self.replace_requested else Reason.RERUN
                return self._replace(current, reason, self._hidden_changes(current, ()), found_by_labels)
            if found_by_labels:
                return self._base(
                    Action.ADOPT,
                    Reason.FOUND_BY_LABELS,
                    current,
                    steps=(Step(StepKind.ADOPT, current.name),),
                    **self._after(),
                )
            notes: tuple[str, ...] = ()
            if current.terminal and current.state != "JOB_STATE_SUCCEEDED":
                notes = (
                    f"job ended in {current.state}; list it in lifecycle.rerunOn to re-create it on the next apply",
                )
            lifecycle = lifecycle_changes(self.record, self.lifecycle) if self.record is not None else ()
            if lifecycle:
                return self._base(
                    Action.UPDATE,
                    Reason.LIFECYCLE_CHANGED,
                    current,
                    steps=(Step(StepKind.UPDATE, current.name),),
                    changes=lifecycle,
                    notes=notes,
                    after_hash=self.hash,
                )
            # A no-op carries only the hash: nothing is applied from it, and 10,000 unchanged jobs
            # should not make every rendering copy and mask 10,000 specs.
            return self._base(Action.NOOP, Reason.UNCHANGED, current, notes=notes, after_hash=self.hash)
        ignored = self._ignored()
        changes = field_changes(strip_paths(current.spec, ignored), strip_paths(self._after()["after"], ignored))
        desired = self.desired
        assert desired is not None
        placement = placement_changes((current.project, current.location), (desired.project, desired.location))
        reason = Reason.MOVED if placement and not changes else Reason.SPEC_CHANGED
        hidden = self._hidden_changes(current, changes)
        return self._replace(current, reason, (*placement, *merge_changes(changes, hidden)), found_by_labels)

    def _after(self) -> dict[str, Any]:
        canonical = self.canonical
        assert canonical is not None
        return {"after": canonical, "after_hash": self.hash}

    def _replace(
        self, current: LiveJob, reason: Reason, changes: tuple[FieldChange, ...], found_by_labels: bool
    ) -> ResourceChange:
        assert self.canonical is not None
        steps: list[Step] = []
        if found_by_labels:
            steps.append(Step(StepKind.ADOPT, current.name))
        if self._in_place(current):
            steps.extend(_stop(current))
            steps.append(Step(StepKind.CREATE))
        else:
            # A move: the job starts in its new place before the old one is stopped.
            steps.append(Step(StepKind.CREATE))
            steps.extend(_stop(current))
        steps.append(Step(StepKind.DELETE, current.name))
        warnings = _running_warning(current, "replacing")
        return self._base(
            Action.REPLACE,
            reason,
            current,
            steps=tuple(steps),
            changes=changes,
            after=self.canonical,
            after_hash=self.hash,
            warnings=warnings,
        )

    def _removal_row(self, current: LiveJob | None) -> ResourceChange:
        record = self.record
        assert record is not None
        if current is None:
            return self._base(Action.FORGET, Reason.ALREADY_GONE, None, steps=(Step(StepKind.FORGET, record.name),))
        on_remove = OnRemove(record.on_remove)
        if on_remove is OnRemove.FORGET or (on_remove is OnRemove.CANCEL and not current.active):
            return self._base(Action.FORGET, Reason.REMOVED, current, steps=(Step(StepKind.FORGET, current.name),))
        if on_remove is OnRemove.CANCEL:
            steps = (*_stop(current), Step(StepKind.FORGET, current.name))
            return self._base(
                Action.CANCEL, Reason.REMOVED, current, steps=steps, warnings=_running_warning(current, "cancelling")
            )
        steps = (*_stop(current), Step(StepKind.DELETE, current.name))
        return self._base(
            Action.DELETE, Reason.REMOVED, current, steps=steps, warnings=_running_warning(current, "deleting")
        )

    def _cleanup_row(self, job: LiveJob, reason: Reason) -> ResourceChange:
        steps = (*_stop(job), Step(StepKind.DELETE, job.name))
        return self._base(Action.DELETE, reason, job, steps=steps, warnings=_running_warning(job, "deleting"))


def _stop(job: LiveJob) -> tuple[Step, ...]:
    """Cancel first if the job still runs; a job already cancelling needs no second cancel."""
    if job.active and job.state != "JOB_STATE_CANCELLING":
        return (Step(StepKind.CANCEL, job.name),)
    return ()


def _running_warning(job: LiveJob, verb: str) -> tuple[str, ...]:
    if job.active:
        return (f"{verb} {job.name}, which is {job.state.removeprefix('JOB_STATE_').lower()}",)
    return ()
