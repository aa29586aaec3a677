"""Sweeps in a plan's summary: the rows of one `matrix:` job with one action become one row.

`+ train[…]  create  6 jobs, 6 × L4 SPOT` instead of six lines; the per-job blocks below the
summary still show every job. Works on the plan's JSON document, like every view, and knows
sweeps only by their address (`planner.config.matrix.sweep_base`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from planner.config.matrix import sweep_base

_SCHEDULING_SHOWN = frozenset({"SPOT", "FLEX_START"})


def group_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The summary rows, with every (sweep, action) of two or more jobs folded into one row at
    the place of its first job; a lone job of a sweep keeps its own row."""
    members: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        base = sweep_base(row["address"])
        if base is not None:
            members.setdefault((base, row["action"]), []).append(row)
    out: list[Mapping[str, Any]] = []
    for row in rows:
        base = sweep_base(row["address"])
        group = members.get((base, row["action"])) if base is not None else None
        if group is None or len(group) < 2:
            out.append(row)
        elif group[0] is row:
            out.append(_group_row(base or "", row["action"], group))
    return out


def _group_row(base: str, action: str, group: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The row of a sweep: `6 jobs, 6 × L4 SPOT` (or `…, 4 × L4 SPOT, 2 × n1-standard-8`) from the specs they create."""
    reason = f"{len(group)} jobs"
    shapes = Counter(s for s in (hardware(row.get("after")) for row in group) if s)
    for shape, n in sorted(shapes.items(), key=lambda kv: (-kv[1], kv[0])):
        reason += f", {n} × {shape}"
    return {"address": f"{base}[…]", "action": action, "reason": reason, "changes": [], "job": None}


def hardware(spec: Any) -> str | None:
    """The chief pool's accelerator (or machine type) and a non-standard scheduling strategy."""
    if not isinstance(spec, Mapping):
        return None
    job_spec = spec.get("jobSpec")
    pools = job_spec.get("workerPoolSpecs") if isinstance(job_spec, Mapping) else None
    if not isinstance(pools, list) or not pools or not isinstance(pools[0], Mapping):
        return None
    machine = pools[0].get("machineSpec")
    if not isinstance(machine, Mapping):
        return None
    accelerator = machine.get("acceleratorType")
    if isinstance(accelerator, str) and accelerator:
        shape = accelerator.removeprefix("NVIDIA_").removeprefix("TESLA_")
        count = machine.get("acceleratorCount")
        if isinstance(count, int) and not isinstance(count, bool) and count > 1:
            shape = f"{count}×{shape}"
    else:
        shape = str(machine.get("machineType") or "?")
    scheduling = job_spec.get("scheduling") if isinstance(job_spec, Mapping) else None
    strategy = scheduling.get("strategy") if isinstance(scheduling, Mapping) else None
    if strategy in _SCHEDULING_SHOWN:
        shape += f" {strategy}"
    return shape
