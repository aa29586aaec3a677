"""Words for cost and resources in the views: `8 × A100 · a2-highgpu-8g × 1 · SPOT`, `4 → 8 A100`, `+$33.80/h`.

Pure helpers over the plan's JSON document (`resource_changes[].cost`, from
planner.pricing.cost); the text view's cost summary lives here too. The markdown PR view
(`review`) uses the same phrases. Env values never appear: env changes read "env changed".
"""

from __future__ import annotations

import os.path
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from planner.config.matrix import sweep_base
from planner.pricing.cost import Totals, footer, totals, usd
from planner.render.style import ACTION_SYMBOLS, Style

# Marketing names reviewers know; anything else loses its NVIDIA_/TESLA_ prefix.
_SHORT: Final = {
    "NVIDIA_TESLA_A100": "A100",
    "NVIDIA_A100_80GB": "A100 80GB",
    "NVIDIA_H100_80GB": "H100",
    "NVIDIA_H100_MEGA_80GB": "H100 Mega",
    "NVIDIA_H200_141GB": "H200",
    "NVIDIA_TESLA_T4": "T4",
    "NVIDIA_TESLA_V100": "V100",
    "NVIDIA_TESLA_P100": "P100",
    "NVIDIA_TESLA_P4": "P4",
    "NVIDIA_TESLA_K80": "K80",
    "NVIDIA_L4": "L4",
    "NVIDIA_B200": "B200",
    "NVIDIA_GB200": "GB200",
}
_PROVISIONING_WORDS: Final = {"spot": "SPOT", "flex-start": "FLEX_START"}
_POOL: Final = re.compile(r"^jobSpec\.workerPoolSpecs\[(\d+)\]\.?(.*)$")
MAX_PHRASES: Final = 3
SWEEP_MIN: Final = 3  # this many creates of the same resources, cost and place are shown as one sweep
_FIRST: Final = {
    name: i for i, name in enumerate(("acceleratorCount", "acceleratorType", "replicaCount", "machineType", "strategy"))
}


def short_accelerator(name: str | None) -> str:
    if not name:
        return ""
    return _SHORT.get(name) or name.removeprefix("NVIDIA_").removeprefix("TESLA_")


def resources_text(est: Mapping[str, Any] | None) -> str:
    """`8 × A100 · a2-highgpu-8g × 1 · SPOT`; pools joined with ` + `; `on persistent resource R`."""
    if est is None:
        return ""
    parts = []
    for pool in est["pools"]:
        held = pool["replica_count"] * pool["accelerator_count"]
        machine = f"{pool['machine_type']} × {pool['replica_count']}"
        parts.append(f"{held} × {short_accelerator(pool['accelerator_type'])} · {machine}" if held else machine)
    text = " + ".join(parts) or "no worker pools"
    word = _PROVISIONING_WORDS.get(est["provisioning"])
    if word:
        text += f" · {word}"
    if est.get("persistent_resource"):
        text += f" · on persistent resource {est['persistent_resource']}"
    return text


def cost_text(change: Mapping[str, Any]) -> str:
    """The cost cell: `+$29.39/h, up to $4,937.52`, `stops $14.69/h`, `no price: …`."""
    cost = change.get("cost")
    if not cost:
        return ""
    parts = []
    after = cost.get("after")
    if after is not None:
        if after.get("persistent_resource"):
            parts.append("$0 extra (persistent resource)")
        elif after["hourly_usd"] is None:
            parts.append("no price: " + "; ".join(after["missing"]))
        else:
            parts.append(f"+{usd(after['hourly_usd'])}/h, up to {usd(after['max_usd'])}")
    before = cost.get("before")
    if before is not None:
        rate = before["hourly_usd"]
        if cost.get("stops_running"):
            parts.append("stops an unpriced job" if rate is None else f"stops {usd(rate)}/h")
        elif after is None and rate is not None:
            parts.append(f"was {usd(rate)}/h, not running")
    return "; ".join(parts)


def shown_estimate(change: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The job whose resources a row shows: the new one, or the one removed."""
    cost = change.get("cost") or {}
    return cost.get("after") or cost.get("before")


def change_phrases(change: Mapping[str, Any]) -> list[str]:
    """What changed in a few words (`4 → 8 A100`, `image …:1.4 → …:1.5`), at most MAX_PHRASES and `+N more`."""
    phrases: list[str] = []
    pools = {m.group(1) for c in change["changes"] if (m := _POOL.match(c["path"]))}
    # What changes the bill first (accelerators, replicas, machine, provisioning), then the rest.
    ordered = sorted(change["changes"], key=lambda c: _FIRST.get(c["path"].rsplit(".", 1)[-1], len(_FIRST)))
    for field in ordered:
        phrase = _phrase(field, change, len(pools) > 1)
        if phrase not in phrases:
            phrases.append(phrase)
    if len(phrases) > MAX_PHRASES:
        rest = len(phrases) - MAX_PHRASES
        phrases = [*phrases[:MAX_PHRASES], f"+{rest} more"]
    return phrases


def _phrase(field: Mapping[str, Any], change: Mapping[str, Any], several_pools: bool) -> str:
    path = field["path"]
    before, after = field["before"], field["after"]
    match = _POOL.match(path)
    prefix = ""
    rest = path
    if match:
        rest = match.group(2)
        if several_pools or match.group(1) != "0":
            prefix = f"pool {match.group(1)}: "
        if not rest:
            return prefix + {"add": "added", "remove": "removed"}.get(field["kind"], "changed")
    leaf = rest.rsplit(".", 1)[-1]
    if field.get("sensitive") or ".env" in f".{rest}" or rest.startswith("env"):
        return prefix + "env changed"
    if leaf == "acceleratorCount":
        kind = _pool_accelerator(change, match.group(1) if match else "0")
        return prefix + f"{before or 0} → {after or 0}{' ' + kind if kind else ' accelerators'}"
    if leaf == "replicaCount":
        return prefix + f"{before or 0} → {after or 0} replicas"
    if leaf == "acceleratorType":
        return prefix + f"{short_accelerator(before) or 'no GPU'} → {short_accelerator(after) or 'no GPU'}"
    if leaf in ("imageUri", "executorImageUri"):
        return prefix + "image " + _arrow(before, after)
    if path == "jobSpec.scheduling.strategy":
        return f"{before or 'STANDARD'} → {after or 'STANDARD'}"
    if path == "jobSpec.scheduling.timeout":
        return f"timeout {_duration(before, '7d')} → {_duration(after, '7d')}"
    if path.startswith("labels."):
        return f"label {path.removeprefix('labels.')}: {_scalar(before)} → {_scalar(after)}"
    scalars = isinstance(before, (str, int, float)) and isinstance(after, (str, int, float))
    if scalars and leaf not in ("args", "command"):
        return prefix + f"{leaf} {_arrow(str(before), str(after))}"
    return prefix + f"{leaf} changed"


def _pool_accelerator(change: Mapping[str, Any], index: str) -> str:
    est = (change.get("cost") or {}).get("after")
    if est is None:
        return ""
    pools = est["pools"]
    i = int(index)
    return short_accelerator(pools[i]["accelerator_type"]) if i < len(pools) else ""


def _arrow(before: Any, after: Any) -> str:
    """`…:1.4 → …:1.5`: a long common start (up to a `/`, `:` or `@`) is elided on both sides."""
    if not isinstance(before, str) or not isinstance(after, str):
        return f"{_scalar(before)} → {_scalar(after)}"
    common = 0
    for x, y in zip(before, after, strict=False):
        if x != y:
            break
        common += 1
    cut = max(before.rfind(sep, 0, common) for sep in "/:@")
    if cut >= 8:
        return f"…{before[cut:]} → …{after[cut:]}"
    return f"{before} → {after}"


def _duration(value: Any, default: str) -> str:
    if not isinstance(value, str) or not value.endswith("s"):
        return default if value is None else str(value)
    try:
        seconds = float(value[:-1])
    except ValueError:
        return value
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return value


def _scalar(value: Any) -> str:
    return "(none)" if value is None else str(value)


def net_line(t: Totals) -> str:
    """`Net: +4 A100, +$33.80/h` (accelerators held and hourly rate, new jobs minus stopped ones)."""
    parts = [f"{n:+d} {short_accelerator(kind)}" for kind, n in t.accelerators.items()]
    net = t.adds_hourly - t.stops_hourly
    sign = "+" if net >= 0 else "-"
    parts.append(f"{sign}{usd(abs(net))}/h")
    return "Net: " + ", ".join(parts)


def priced(doc: Mapping[str, Any]) -> bool:
    return any("cost" in c for c in doc["resource_changes"])


def cost_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Notes of the estimates, each once, with how many jobs it concerns."""
    seen: dict[str, int] = {}
    for change in rows:
        cost = change.get("cost") or {}
        for est in (cost.get("after"), cost.get("before")):
            if est is None:
                continue
            for note in est["notes"]:
                if not est.get("persistent_resource"):
                    seen[note] = seen.get(note, 0) + 1
    return [f"{note} ({n} {'job' if n == 1 else 'jobs'})" if n > 1 else note for note, n in seen.items()]


def sweep_groups(rows: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Rows in order, with SWEEP_MIN or more creates of the same resources, cost and place as one group."""
    keyed: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}  # in the order of their first row
    for change in rows:
        key: tuple[str, ...]
        if change["action"] == "create" and change.get("cost"):
            key = (
                "sweep",
                change["project"],
                change["location"],
                resources_text(shown_estimate(change)),
                cost_text(change),
            )
        else:
            key = ("row", change["address"], str(len(keyed)))
        keyed.setdefault(key, []).append(change)
    out: list[list[Mapping[str, Any]]] = []
    for key, group in keyed.items():
        if key[0] == "sweep" and len(group) < SWEEP_MIN:
            out.extend([c] for c in group)
        else:
            out.append(group)
    return out


def group_label(group: Sequence[Mapping[str, Any]]) -> str:
    """How a group of near-identical creates is named: a `matrix:` sweep as the summary names it
    (`train[…]`), other creates by the start their addresses share (`eval-…`; "" if none)."""
    bases = {sweep_base(str(c["address"])) for c in group}
    if len(bases) == 1 and None not in bases:
        return f"{bases.pop()}[…]"
    prefix = os.path.commonprefix([c["address"] for c in group])  # noqa: RUF071 (characters, on purpose)
    return prefix + "…" if len(prefix) >= 2 else ""


def _group_name(group: Sequence[Mapping[str, Any]]) -> str:
    if len(group) == 1:
        return str(group[0]["address"])
    return f"{group_label(group) or 'jobs'} ×{len(group)}"


def text_cost_lines(doc: Mapping[str, Any], style: Style) -> tuple[list[str], list[str]]:
    """The text view's cost summary (one line per priced change, notes once) and its footer lines."""
    rows = [c for c in doc["resource_changes"] if c.get("cost")]
    if not rows:
        return [], []
    groups = sweep_groups(rows)
    names = [_group_name(g) for g in groups]
    width = max(len(n) for n in names)
    out = [style.bold("Cost and resources:")]
    for group, name in zip(groups, names, strict=True):
        c = group[0]
        symbol = style.action(c["action"], f"{ACTION_SYMBOLS[c['action']]:>3}")
        phrases = change_phrases(c) if c["action"] == "replace" else []
        what = resources_text(shown_estimate(c))
        if phrases:
            what += f" ({', '.join(phrases)})"
        cost = cost_text(c) if len(group) == 1 else f"each {cost_text(c)}"
        out.append(f"  {symbol} {name:<{width}}  {what}  {cost}")
    out += [f"  Note: {n}" for n in cost_notes(rows)]
    out.append("")
    t = totals(rows)
    return out, [style.bold(footer(t)), net_line(t)]
