"""Cost estimates: what a job spec costs per hour and at most, and the cost of each change in a plan.

Per worker pool: `replicaCount × (machine rate + acceleratorCount × accelerator rate + boot
disk GB × disk rate)`, all at the job's location and provisioning model (from
`scheduling.strategy`: SPOT → spot, FLEX_START → flex-start, anything else → on-demand).
The upper bound is that rate for `scheduling.timeout` (7 days when unset), because Vertex
stops a job at its timeout. A job on a persistent resource costs nothing extra: the
resource is billed on its own. Rates come only from the PriceBook; a rate it lacks makes
the estimate unknown and says which (a missing boot-disk rate leaves the disk out, and
says so). The plan stays pure: `annotate` returns a new Plan whose changes carry `cost`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from planner import apimodel
from planner.canonical import canonical_spec
from planner.plans.model import Action, Plan, ResourceChange
from planner.pricing.prices import PriceBook
from planner.refresh import Live
from planner.state.model import State

DEFAULT_TIMEOUT_HOURS: Final = 7 * 24.0
_PROVISIONING: Final = {"SPOT": "spot", "FLEX_START": "flex-start"}
_A3_ULTRA_PREFIX: Final = "a3-ultragpu"
_DEFAULT_BOOT_DISK_GB: Final = 100


@dataclass(frozen=True)
class Pool:
    """The billable resources of one worker pool."""

    machine_type: str
    replica_count: int
    accelerator_type: str | None
    accelerator_count: int
    boot_disk_type: str
    boot_disk_gb: int

    def to_json(self) -> dict[str, Any]:
        return {
            "machine_type": self.machine_type,
            "replica_count": self.replica_count,
            "accelerator_type": self.accelerator_type,
            "accelerator_count": self.accelerator_count,
            "boot_disk_type": self.boot_disk_type,
            "boot_disk_gb": self.boot_disk_gb,
        }


@dataclass(frozen=True)
class Estimate:
    hourly_usd: float | None  # None: a rate is missing (see missing)
    max_usd: float | None
    hours_bound: float
    provisioning: str
    region: str
    price_source: str
    prices_date: str
    pools: tuple[Pool, ...]
    persistent_resource: str | None = None
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "hourly_usd": None if self.hourly_usd is None else round(self.hourly_usd, 6),
            "max_usd": None if self.max_usd is None else round(self.max_usd, 6),
            "hours_bound": round(self.hours_bound, 6),
            "provisioning": self.provisioning,
            "region": self.region,
            "price_source": self.price_source,
            "prices_date": self.prices_date,
            "pools": [p.to_json() for p in self.pools],
            "persistent_resource": self.persistent_resource,
            "missing": list(self.missing),
            "notes": list(self.notes),
        }


def provisioning_of(spec: Mapping[str, Any]) -> str:
    scheduling = _dict(_dict(spec.get("jobSpec")).get("scheduling"))
    return _PROVISIONING.get(str(scheduling.get("strategy") or ""), "on-demand")


def hours_bound(spec: Mapping[str, Any]) -> float:
    scheduling = _dict(_dict(spec.get("jobSpec")).get("scheduling"))
    timeout = scheduling.get("timeout")
    if isinstance(timeout, str):
        seconds = apimodel.parse_duration(timeout)
        if seconds is not None and seconds > 0:
            return float(seconds) / 3600.0
    return DEFAULT_TIMEOUT_HOURS


def pools_of(spec: Mapping[str, Any]) -> tuple[Pool, ...]:
    """The pools of a canonical spec; an empty placeholder pool (no machineSpec) bills nothing."""
    out = []
    for raw in _dict(spec.get("jobSpec")).get("workerPoolSpecs") or ():
        pool = _dict(raw)
        machine = _dict(pool.get("machineSpec"))
        machine_type = str(machine.get("machineType") or "")
        if not machine_type:
            continue
        disk = _dict(pool.get("diskSpec"))
        default_disk = "hyperdisk-balanced" if machine_type.startswith(_A3_ULTRA_PREFIX) else "pd-ssd"
        accelerator = machine.get("acceleratorType")
        out.append(
            Pool(
                machine_type=machine_type,
                replica_count=_int(pool.get("replicaCount")),
                accelerator_type=str(accelerator) if accelerator else None,
                accelerator_count=_int(machine.get("acceleratorCount")) if accelerator else 0,
                boot_disk_type=str(disk.get("bootDiskType") or default_disk),
                boot_disk_gb=_int(disk.get("bootDiskSizeGb")) or _DEFAULT_BOOT_DISK_GB,
            )
        )
    return tuple(out)


def estimate(spec: Mapping[str, Any], region: str, book: PriceBook, *, canonical: bool = False) -> Estimate:
    """The cost of running one job spec: a desired body, or (canonical=True) a canonical spec as-is."""
    if not canonical:
        spec = canonical_spec(spec)
    provisioning = provisioning_of(spec)
    hours = hours_bound(spec)
    pools = pools_of(spec)
    persistent = _dict(spec.get("jobSpec")).get("persistentResourceId")
    hourly: float | None = 0.0
    missing: list[str] = []
    notes: list[str] = []
    if persistent:
        notes.append(f"runs on persistent resource {persistent}: no extra cost (the resource is billed on its own)")
    else:
        hourly = _hourly(pools, region, provisioning, book, missing, notes)
    return Estimate(
        hourly_usd=hourly,
        max_usd=None if hourly is None else hourly * hours,
        hours_bound=hours,
        provisioning=provisioning,
        region=region,
        price_source=book.origin,
        prices_date=book.retrieved_at,
        pools=pools,
        persistent_resource=str(persistent) if persistent else None,
        missing=tuple(missing),
        notes=tuple(notes),
    )


def _hourly(
    pools: tuple[Pool, ...], region: str, provisioning: str, book: PriceBook, missing: list[str], notes: list[str]
) -> float | None:
    """The summed rate of the pools, or None (and what is missing) if a machine or accelerator rate is."""
    hourly = 0.0
    for pool in pools:
        machine = book.rate("machine", pool.machine_type, region, provisioning)
        per_replica = 0.0
        if machine is None:
            _add(missing, book.missing(pool.machine_type, region, provisioning))
        else:
            per_replica += machine.usd
        if pool.accelerator_type and pool.accelerator_count:
            accelerator = book.rate("accelerator", pool.accelerator_type, region, provisioning)
            if accelerator is None:
                _add(missing, book.missing(pool.accelerator_type, region, provisioning))
            else:
                per_replica += pool.accelerator_count * accelerator.usd
        # Boot disks are billed at the one standard rate whatever the VM's provisioning model.
        disk = book.rate("disk", pool.boot_disk_type, region, "on-demand")
        if disk is None:
            unpriced = book.missing(f"{pool.boot_disk_type} boot disk", region, "on-demand")
            _add(notes, f"boot disk not counted: {unpriced}")
        else:
            per_replica += pool.boot_disk_gb * disk.usd
        hourly += pool.replica_count * per_replica
    return None if missing else hourly


def annotate(plan: Plan, live: Live, prior: State | None, book: PriceBook) -> Plan:
    """The plan with `cost` on every change that starts or stops a job (no-ops and state-only rows: none).

    `after` is the job the change creates (create, replace); `before` is the job it cancels,
    deletes or replaces, with `stops_running` when that job is still running (or queued),
    so its rate stops.
    """
    records = prior.jobs if prior is not None else {}
    changes = []
    for change in plan.changes:
        cost = _change_cost(change, live, records, book)
        changes.append(change if cost is None else replace(change, cost=cost))
    return replace(plan, changes=tuple(changes))


def _change_cost(
    change: ResourceChange, live: Live, records: Mapping[str, Any], book: PriceBook
) -> dict[str, Any] | None:
    if change.action not in (Action.CREATE, Action.REPLACE, Action.CANCEL, Action.DELETE):
        return None
    after = None
    if change.action in (Action.CREATE, Action.REPLACE) and change.after is not None:
        # A change's `after`, a live job's and a state record's spec are all canonical already.
        after = estimate(change.after, change.location, book, canonical=True).to_json()
    before = None
    running = False
    if change.job_name and change.action is not Action.CREATE:
        job = live.jobs.get(change.job_name)
        spec: Mapping[str, Any] | None = None
        region = change.location
        if job is not None:
            region = job.location or region
            running = job.active
            if not job.partial:
                spec = job.spec
        if spec is None:
            record = records.get(change.address)
            if record is not None and record.name == change.job_name:
                spec = record.spec
        if spec is not None:
            before = estimate(spec, region, book, canonical=True).to_json()
    return {"after": after, "before": before, "stops_running": running and before is not None}


@dataclass(frozen=True)
class Totals:
    """The plan footer's figures, summed over the JSON document's changes."""

    adds_hourly: float
    adds_max: float
    new_jobs: int
    unpriced: tuple[str, ...]  # addresses whose new job has no price
    stops_hourly: float
    stopped_jobs: int
    accelerators: Mapping[str, int]  # accelerator type → net change in count (new minus stopped)


def totals(changes: Sequence[Mapping[str, Any]]) -> Totals:
    adds_hourly = adds_max = stops_hourly = 0.0
    new_jobs = stopped = 0
    unpriced: list[str] = []
    accelerators: dict[str, int] = {}
    for change in changes:
        cost = change.get("cost")
        if not cost:
            continue
        after = cost.get("after")
        if after is not None:
            new_jobs += 1
            if after["hourly_usd"] is None:
                unpriced.append(change["address"])
            else:
                adds_hourly += after["hourly_usd"]
                adds_max += after["max_usd"]
            for pool, n in accelerator_counts(after).items():
                accelerators[pool] = accelerators.get(pool, 0) + n
        before = cost.get("before")
        if before is not None and cost.get("stops_running"):
            stopped += 1
            stops_hourly += before["hourly_usd"] or 0.0
            for pool, n in accelerator_counts(before).items():
                accelerators[pool] = accelerators.get(pool, 0) - n
    return Totals(
        adds_hourly=adds_hourly,
        adds_max=adds_max,
        new_jobs=new_jobs,
        unpriced=tuple(unpriced),
        stops_hourly=stops_hourly,
        stopped_jobs=stopped,
        accelerators={k: v for k, v in sorted(accelerators.items()) if v},
    )


def accelerator_counts(est: Mapping[str, Any]) -> dict[str, int]:
    """Accelerator type → how many the job holds at once (replicas × per-replica count)."""
    out: dict[str, int] = {}
    if est.get("persistent_resource"):
        return out
    for pool in est["pools"]:
        if pool["accelerator_type"] and pool["accelerator_count"]:
            n = pool["replica_count"] * pool["accelerator_count"]
            out[pool["accelerator_type"]] = out.get(pool["accelerator_type"], 0) + n
    return out


def usd(value: float) -> str:
    """Dollars as a reviewer reads them: `$5,678.40`; amounts under a cent keep more digits."""
    if 0 < abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def footer(t: Totals) -> str:
    """`Cost: +$X/h, up to +$Y (timeouts) for N new jobs; stops $Z/h`."""
    jobs = f"{t.new_jobs} new {'job' if t.new_jobs == 1 else 'jobs'}"
    text = f"Cost: +{usd(t.adds_hourly)}/h, up to +{usd(t.adds_max)} (timeouts) for {jobs}"
    if t.unpriced:
        text += f" ({len(t.unpriced)} without a price)"
    text += f"; stops {usd(t.stops_hourly)}/h"
    return text


def _add(items: list[str], text: str) -> None:
    if text not in items:
        items.append(text)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0
