"""The submit-time rules of Vertex AI custom training, checked against the hardware catalog.

`check_job` takes one CustomJob (as planner's YAML gives it after the schema check, or as the
emulator decoded it: camelCase, enum names, int64 as int or string, durations in any form
`apimodel.parse_duration` reads) and its location, and returns every `Finding`: the field path,
planner's message (what is wrong and how to fix it), whether it is an error or a warning, and
Vertex AI's own wording where it is known. Validation and the emulator both call it, so the two
cannot disagree; how a finding is shown is theirs.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from planner.apimodel import parse_duration
from planner.hardware.catalog import Catalog, MachineType

Path = tuple[str | int, ...]


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    path: Path  # from the job's root: ("jobSpec", "workerPoolSpecs", 0, "machineSpec", "acceleratorType")
    message: str  # planner's words, with the fix
    severity: Severity = Severity.ERROR
    api_message: str | None = None  # Vertex AI's own wording of its 400 answer, where known


@dataclass(frozen=True)
class HardwareOptions:
    """How strict the catalog is: `allow_unknown` trusts the hardware a job names (machine types
    outside the catalog pass silently; an accelerator the catalog does not place in a region is
    a warning, not an error)."""

    catalog: Catalog | None = None  # None: the packaged catalog
    allow_unknown: bool = False


_KMS_KEY = re.compile(r"^projects/[^/]+/locations/([^/]+)/keyRings/[^/]+/cryptoKeys/[^/]+$")
_SERVICE_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9.-]+\.gserviceaccount\.com$")
_NETWORK = re.compile(r"^projects/([^/]+)/global/networks/[^/]+$")
_OUTPUT_URI = re.compile(r"^gs://[^/\s]+(/\S*)?$")
_PERSISTENT_ID = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_RESERVATION_KEY = "compute.googleapis.com/reservation-name"
_NONE = (None, "", "ACCELERATOR_TYPE_UNSPECIFIED", 0)


def check_job(
    job: Mapping[str, Any], location: str | None, catalog: Catalog, *, allow_unknown: bool = False
) -> list[Finding]:
    """Every hardware and submit-time problem of one job, errors and warnings, in field order."""
    out: list[Finding] = []
    if isinstance(location, str) and location not in catalog.regions:
        out.append(Finding(("location",), _unknown_region(location, catalog)))
        location = None  # no region facts to check against
    spec = job.get("jobSpec")
    if not isinstance(spec, dict):
        spec = {}
    pools = spec.get("workerPoolSpecs")
    pools = pools if isinstance(pools, list) else []
    raw_scheduling = spec.get("scheduling")
    scheduling: Mapping[str, Any] = raw_scheduling if isinstance(raw_scheduling, dict) else {}
    strategy = scheduling.get("strategy")
    persistent = spec.get("persistentResourceId")

    if len(pools) > 4:
        out.append(Finding(("jobSpec", "workerPoolSpecs", 4),
                           "Vertex AI takes at most 4 worker pools (primary replica, workers, parameter servers, "
                           "evaluator); remove the extra pools"))
    machines: list[tuple[int, tuple[Any, Any, Any]]] = []
    for i, pool in enumerate(pools[:4]):
        if not isinstance(pool, dict) or (not pool and i > 0):
            continue  # an empty pool after the first means "no replicas of this kind"
        base: Path = ("jobSpec", "workerPoolSpecs", i)
        replicas = pool.get("replicaCount")
        if i > 0 or (replicas != 1 and replicas != "1"):
            _replicas(pool, i, base, out)
        machine = pool.get("machineSpec")
        if isinstance(machine, dict):
            accelerator = _machine_memo(machine, location, catalog, allow_unknown, (*base, "machineSpec"), out)
            if "reservationAffinity" in machine:
                _reservation(machine, (*base, "machineSpec"), out)
            if machine.get("gpuPartitionSize"):
                _partition(machine, accelerator, (*base, "machineSpec"), out)
            key = (machine.get("machineType"), accelerator, _count(machine.get("acceleratorCount")) or None)
            machines.append((i, key))
            if persistent and isinstance(machine.get("reservationAffinity"), dict):
                out.append(Finding((*base, "machineSpec", "reservationAffinity"),
                                   "a job on a persistent resource runs on that resource's machines: remove "
                                   "reservationAffinity, or remove persistentResourceId"))

    if scheduling:
        _scheduling(scheduling, strategy, machines, catalog, out)
    if persistent is not None and persistent != "":
        if not isinstance(persistent, str) or not _PERSISTENT_ID.match(persistent) or len(persistent) > 63:
            out.append(Finding(("jobSpec", "persistentResourceId"),
                               f"invalid persistent resource ID {persistent!r}: the ID (not the full name) of a "
                               "PersistentResource in this project and region, 1-63 lowercase letters, digits "
                               "and hyphens, starting with a letter"))
        if strategy in ("SPOT", "FLEX_START"):
            out.append(Finding(("jobSpec", "scheduling", "strategy"),
                               f"scheduling.strategy {strategy} does not apply to a job on a persistent resource "
                               "(it runs on the resource's machines): remove the strategy or persistentResourceId"))
    if "encryptionSpec" in job or not _FORMAT_FIELDS.isdisjoint(spec):
        _formats(job, spec, location, out)
    return out


_FORMAT_FIELDS = frozenset({"serviceAccount", "network", "baseOutputDirectory"})
_PLAIN_MACHINE = frozenset({"machineType", "acceleratorType", "acceleratorCount", "reservationAffinity"})
_MEMO_LIMIT = 4096


def _machine_memo(
    machine: Mapping[str, Any],
    location: str | None,
    catalog: Catalog,
    allow_unknown: bool,
    base: Path,
    out: list[Finding],
) -> str | None:
    """`_machine`, remembered per catalog for the few machine specs thousands of jobs repeat."""
    if not _PLAIN_MACHINE.issuperset(machine):
        return _machine(machine, location, catalog, allow_unknown, base, out)
    key = (location, allow_unknown, machine.get("machineType"), machine.get("acceleratorType"),
           machine.get("acceleratorCount"))
    try:
        hit = catalog.memo.get(key)
    except TypeError:  # a value that cannot be a key: no memo
        return _machine(machine, location, catalog, allow_unknown, base, out)
    if hit is None:
        found: list[Finding] = []
        accelerator = _machine(machine, location, catalog, allow_unknown, (), found)
        hit = (accelerator, tuple(found))
        if len(catalog.memo) < _MEMO_LIMIT:
            catalog.memo[key] = hit
    accelerator, found_here = hit
    for finding in found_here:
        out.append(Finding((*base, *finding.path), finding.message, finding.severity, finding.api_message))
    return accelerator


# --- worker pools -----------------------------------------------------------------------------


def _count(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _replicas(pool: Mapping[str, Any], i: int, base: Path, out: list[Finding]) -> None:
    raw = pool.get("replicaCount")
    count = _count(raw) if raw is not None else None
    if i == 0:
        if count is None:  # proto3: a missing int64 is 0 on the wire, which Vertex AI refuses
            out.append(Finding(base, "the first worker pool is the primary replica: set replicaCount: 1 "
                                     "(a missing replicaCount is 0 to Vertex AI)"))
        elif count != 1:
            out.append(Finding((*base, "replicaCount"),
                               f"the first worker pool is the primary replica: replicaCount must be 1, got {count}; "
                               "put more replicas in workerPoolSpecs[1]"))
    elif count is None or count < 1:
        path: Path = (*base, "replicaCount") if raw is not None else base
        got = f"got {count}" if count is not None else "it is not set"
        out.append(Finding(path, f"a worker pool with a machine needs replicaCount of at least 1 ({got}); "
                                 "set replicaCount, or write the pool as {} for no replicas of this kind"))


def _machine(
    machine: Mapping[str, Any],
    location: str | None,
    catalog: Catalog,
    allow_unknown: bool,
    base: Path,
    out: list[Finding],
) -> str | None:
    """Checks one machineSpec; returns the accelerator it runs with (named or implied), if any."""
    name = machine.get("machineType")
    raw = machine.get("acceleratorType")
    accelerator: str | None = None if raw in _NONE else str(raw)
    count = _count(machine.get("acceleratorCount"))
    known = catalog.machine_types.get(name) if isinstance(name, str) else None
    both = catalog.messages.get("type_and_count")

    if accelerator is not None and count == 0:
        out.append(Finding((*base, "acceleratorType"),
                           f"acceleratorType {accelerator} needs an acceleratorCount: set both or neither "
                           f"(e.g. acceleratorCount: {_first_count(known, accelerator)})", api_message=both))
        return accelerator
    if accelerator is None and count > 0:
        hint = "acceleratorType"
        if known is not None and known.accelerators:
            hint += f": {next(iter(known.accelerators))}"
        out.append(Finding((*base, "acceleratorCount"),
                           f"acceleratorCount {count} needs an acceleratorType: set both or neither (add {hint})",
                           api_message=both))
        return None
    info = catalog.accelerators.get(accelerator) if accelerator is not None else None
    if info is not None and info.deprecated:
        out.append(Finding((*base, "acceleratorType"),
                           f"{accelerator} is deprecated ({info.deprecated}); Vertex AI rejects it: "
                           "use NVIDIA_TESLA_T4 or NVIDIA_L4 (g2-standard-*)",
                           api_message=_not_supported(catalog, accelerator, name)))
        return accelerator
    if known is None:
        if not allow_unknown and isinstance(name, str):
            with_acc = f" with {accelerator}" if accelerator else ""
            out.append(Finding((*base, "machineType"),
                               f'machine type "{name}"{with_acc} is not in {catalog.origin} of {catalog.retrieved}; '
                               "Vertex AI may reject it (add it with --hardware-catalog FILE, or pass "
                               "--allow-unknown-hardware)", Severity.WARNING))
        _region(accelerator, location, catalog, allow_unknown, (*base, "acceleratorType"), out)
        return accelerator
    if accelerator is None:
        if known.requires_accelerator:
            options = " or ".join(known.accelerators)
            out.append(Finding((*base, "machineType"),
                               f"{name} needs an accelerator: set acceleratorType ({options}) and acceleratorCount "
                               f"({_counts(known.accelerators[next(iter(known.accelerators))])})"))
            return None
        if known.fixed:  # the machine type brings its accelerators
            implied = next(iter(known.accelerators))
            _region(implied, location, catalog, allow_unknown, (*base, "machineType"), out)
            _topology(machine, known, base, out)
            return implied
        _topology(machine, known, base, out)
        return None
    allowed = known.accelerators.get(accelerator)
    if allowed is None:
        if known.accelerators:
            takes = f"{name} takes " + ", ".join(f"{a} ({_counts(c)})" for a, c in known.accelerators.items())
        else:
            takes = f"{name} takes no accelerators"
        machines = catalog.machines_for.get(accelerator, ())
        instead = f"; for {accelerator} use {', '.join(machines[:4])}" if machines else ""
        out.append(Finding((*base, "acceleratorType"),
                           f'Accelerator "{accelerator}" is not supported for machine type "{name}": {takes}{instead}',
                           api_message=_not_supported(catalog, accelerator, name)))
        return accelerator
    if count not in allowed and count != _topology_chips(machine.get("tpuTopology"), known):
        fix = f"use acceleratorCount {_counts(allowed)}"
        if known.family == "n1":
            more = [
                m
                for m in catalog.machines_for.get(accelerator, ())
                if catalog.machine_types[m].family == "n1"
                and count in catalog.machine_types[m].accelerators[accelerator]
            ]
            if more:
                fix += f", or a smaller N1 machine type for {count} × {accelerator} ({', '.join(more[-3:])})"
        elif known.fixed:
            fix = f"{name} comes with exactly {allowed[0]} × {accelerator}: set acceleratorCount {allowed[0]}"
            others = [m for m in catalog.machines_for.get(accelerator, ())
                      if count in catalog.machine_types[m].accelerators[accelerator]]
            if others:
                fix += f", or use {others[0]} for {count}"
        out.append(Finding((*base, "acceleratorCount"), f"{name} cannot have {count} × {accelerator}: {fix}"))
    _region(accelerator, location, catalog, allow_unknown, (*base, "acceleratorType"), out)
    _topology(machine, known, base, out)
    return accelerator


def _topology_chips(topology: Any, known: MachineType) -> int | None:
    """The chips of a multi-host TPU slice ("4x4" = 16), which a job may give as acceleratorCount."""
    if not isinstance(topology, str) or topology not in known.topologies:
        return None
    chips = 1
    for part in topology.split("x"):
        chips *= int(part)
    return chips


def _topology(machine: Mapping[str, Any], known: MachineType, base: Path, out: list[Finding]) -> None:
    topology = machine.get("tpuTopology")
    if not topology:
        return
    if not known.topologies:
        out.append(Finding((*base, "tpuTopology"),
                           f"tpuTopology applies to TPU machine types (ct4p-*, ct5lp-*), not {known.name}; remove it"))
    elif topology not in known.topologies:
        out.append(Finding((*base, "tpuTopology"),
                           f'{known.name} has no TPU topology "{topology}"; use one of {", ".join(known.topologies)}'))


def _reservation(machine: Mapping[str, Any], base: Path, out: list[Finding]) -> None:
    affinity = machine.get("reservationAffinity")
    if not isinstance(affinity, dict):
        return
    kind = affinity.get("reservationAffinityType")
    key, values = affinity.get("key"), affinity.get("values")
    here: Path = (*base, "reservationAffinity")
    if kind == "SPECIFIC_RESERVATION":
        if not key:
            out.append(Finding((*here, "reservationAffinityType"),
                               f"SPECIFIC_RESERVATION needs key: {_RESERVATION_KEY} and values: [RESERVATION_NAME]"))
        elif key != _RESERVATION_KEY:
            out.append(Finding((*here, "key"),
                               f'a specific reservation is named with key "{_RESERVATION_KEY}", not "{key}"'))
        if key and not values:
            out.append(Finding((*here, "key"),
                               "SPECIFIC_RESERVATION needs values: the reservation's name "
                               "(or projects/PROJECT/zones/ZONE/reservations/NAME)"))
    elif key or values:
        field = "key" if key else "values"
        out.append(Finding((*here, field),
                           f"key and values name a reservation only with SPECIFIC_RESERVATION, not {kind}; "
                           "remove them or use SPECIFIC_RESERVATION"))


def _partition(machine: Mapping[str, Any], accelerator: str | None, base: Path, out: list[Finding]) -> None:
    # MachineSpec reference: the requested GPUs are split into partitions; "the accelerator_count
    # should be set to 1".
    size = machine.get("gpuPartitionSize")
    if accelerator is None:
        out.append(Finding((*base, "gpuPartitionSize"),
                           f"gpuPartitionSize {size} partitions a GPU: set acceleratorType and acceleratorCount: 1"))
    elif _count(machine.get("acceleratorCount")) != 1:
        out.append(Finding((*base, "acceleratorCount"),
                           "with gpuPartitionSize, acceleratorCount must be 1 (the partitions come from that GPU)"))


def _region(
    accelerator: str | None, location: str | None, catalog: Catalog, allow_unknown: bool, path: Path, out: list[Finding]
) -> None:
    if accelerator is None or location is None:
        return
    info = catalog.accelerators.get(accelerator)
    if info is None or info.regions is None or location in info.regions:
        return
    nearest = _nearest(location, info.region_order)
    where = f"; nearest regions that have it: {', '.join(nearest)}" if nearest else ""
    severity = Severity.WARNING if allow_unknown else Severity.ERROR
    out.append(Finding(path, f"{accelerator} is not offered for Vertex AI training in {location} "
                             f"(per {catalog.origin} of {catalog.retrieved}){where}", severity))


def _nearest(location: str, regions: Sequence[str]) -> list[str]:
    """Regions of the same geography first (us-, europe-, asia-…), closest names first."""
    area = location.split("-")[0]
    same = [r for r in regions if r.split("-")[0] == area]
    pool = same or list(regions)
    return sorted(pool, key=lambda r: -difflib.SequenceMatcher(None, location, r).ratio())[:3]


def _unknown_region(location: str, catalog: Catalog) -> str:
    close = difflib.get_close_matches(location, sorted(catalog.regions), n=1, cutoff=0.6)
    hint = f'; did you mean "{close[0]}"?' if close else " (see https://cloud.google.com/vertex-ai/docs/general/locations)"
    return f'"{location}" is not a Vertex AI region{hint}'


def _first_count(known: MachineType | None, accelerator: str) -> int:
    if known is not None and accelerator in known.accelerators:
        return known.accelerators[accelerator][0]
    return 1


def _counts(counts: Sequence[int]) -> str:
    return " or ".join(str(c) for c in counts)


def _not_supported(catalog: Catalog, accelerator: str | None, machine: Any) -> str | None:
    text = catalog.messages.get("accelerator_not_supported")
    return text.format(accelerator=accelerator, machine=machine) if text else None


# --- scheduling ---------------------------------------------------------------------------------


def _seconds(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    parsed = parse_duration(value)
    return None if parsed is None else float(parsed)


def _scheduling(
    scheduling: Mapping[str, Any],
    strategy: Any,
    machines: list[tuple[int, tuple[Any, Any, Any]]],
    catalog: Catalog,
    out: list[Finding],
) -> None:
    here: Path = ("jobSpec", "scheduling")
    if strategy in catalog.deprecated_strategies:
        out.append(Finding((*here, "strategy"),
                           f"strategy {strategy} is deprecated; write {catalog.deprecated_strategies[strategy]}",
                           Severity.WARNING))
    if strategy == "FLEX_START":
        flex = ", ".join(sorted(catalog.flex_start_accelerators))
        for i, (_machine_type, accelerator, _count) in machines:
            if accelerator not in catalog.flex_start_accelerators:
                what = f"not {accelerator}" if accelerator else "this pool has none"
                path: Path = ("jobSpec", "workerPoolSpecs", i, "machineSpec")
                out.append(Finding(path if accelerator is None else (*path, "acceleratorType"),
                                   f"FLEX_START (Dynamic Workload Scheduler) needs a GPU of {flex} ({what}); "
                                   "choose such a GPU or another scheduling.strategy"))
        first = machines[0][1] if machines else None
        for i, key in machines[1:]:
            if key != first:
                out.append(Finding(("jobSpec", "workerPoolSpecs", i, "machineSpec"),
                                   "FLEX_START needs the same machine configuration (machine type, accelerator type "
                                   "and count) in every worker pool; make it equal to workerPoolSpecs[0]'s"))
        timeout = _seconds(scheduling.get("timeout"))
        if timeout is not None and timeout > catalog.max_timeout_seconds:
            out.append(Finding((*here, "timeout"),
                               f"a FLEX_START job may run at most 7 days ({catalog.max_timeout_seconds}s); "
                               "lower scheduling.timeout"))
    elif scheduling.get("maxWaitDuration") is not None:
        out.append(Finding((*here, "maxWaitDuration"),
                           "maxWaitDuration is how long a FLEX_START job waits for its GPUs; with strategy "
                           f"{strategy or 'STANDARD'} Vertex AI ignores it (remove it, or set strategy: FLEX_START)",
                           Severity.WARNING))


# --- documented formats -------------------------------------------------------------------------


def _formats(job: Mapping[str, Any], spec: Mapping[str, Any], location: str | None, out: list[Finding]) -> None:
    encryption = job.get("encryptionSpec")
    key = encryption.get("kmsKeyName") if isinstance(encryption, dict) else None
    if isinstance(key, str) and key:
        match = _KMS_KEY.match(key)
        if match is None:
            out.append(Finding(("encryptionSpec", "kmsKeyName"),
                               "expected a Cloud KMS key name: "
                               "projects/PROJECT/locations/LOCATION/keyRings/KEY_RING/cryptoKeys/KEY"))
        elif location is not None and match.group(1) != location:
            out.append(Finding(("encryptionSpec", "kmsKeyName"),
                               f"the key is in {match.group(1)}, the job in {location}: Vertex AI needs a key in the "
                               "job's own region"))
    account = spec.get("serviceAccount")
    if isinstance(account, str) and account and not _SERVICE_ACCOUNT.match(account):
        out.append(Finding(("jobSpec", "serviceAccount"),
                           f"{account!r} is not a service account email (NAME@PROJECT.iam.gserviceaccount.com)"))
    network = spec.get("network")
    if isinstance(network, str) and network:
        match = _NETWORK.match(network)
        if match is None or not match.group(1).isdigit():
            out.append(Finding(("jobSpec", "network"),
                               "expected projects/PROJECT_NUMBER/global/networks/NETWORK (a project number, "
                               "as in 12345, not its ID)"))
    output = spec.get("baseOutputDirectory")
    prefix = output.get("outputUriPrefix") if isinstance(output, dict) else None
    if isinstance(prefix, str) and prefix and not _OUTPUT_URI.match(prefix):
        out.append(Finding(("jobSpec", "baseOutputDirectory", "outputUriPrefix"),
                           f"{prefix!r} is not a Cloud Storage URI: write gs://BUCKET/PATH/"))
