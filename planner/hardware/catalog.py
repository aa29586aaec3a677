"""The hardware catalog: its source (schemas/catalog.yaml), its generated file (planner/data/catalog.json), its model.

`build_catalog_document` turns the readable YAML source into the JSON document shipped in the
package (every entry carrying its source URL); `packaged_catalog` reads that document into a
`Catalog`; `load_catalog` adds a user's override file (private machine types, more regions).
What a job may do with the hardware is `rules`' business.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from planner.errors import UsageError

CATALOG_SOURCE = "schemas/catalog.yaml"
PACKAGED_CATALOG = "planner/data/catalog.json"
FORMAT_VERSION = 1
_DATA = Path(__file__).resolve().parent.parent / "data" / "catalog.json"


class CatalogSourceError(ValueError):
    """schemas/catalog.yaml (or an override file) is not shaped as documented."""


@dataclass(frozen=True)
class MachineType:
    """One machine type and what it accepts: accelerator type -> the counts allowed."""

    name: str
    family: str
    vcpus: int | None
    memory_gb: float | None
    accelerators: Mapping[str, tuple[int, ...]]
    fixed: bool  # the accelerators come with the machine type; a job may leave them out
    requires_accelerator: bool
    topologies: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Accelerator:
    name: str
    kind: str  # gpu | tpu | none
    deprecated: str | None
    regions: frozenset[str] | None  # None: planner does not know where it is offered
    region_order: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Catalog:
    retrieved: str
    machine_types: Mapping[str, MachineType]
    accelerators: Mapping[str, Accelerator]
    regions: frozenset[str]
    max_timeout_seconds: int
    flex_start_accelerators: frozenset[str]
    messages: Mapping[str, str]
    origin: str = "planner's catalog"
    deprecated_strategies: Mapping[str, str] = field(default_factory=dict)  # old value -> its replacement
    # accelerator -> machine types that take it, for "use one of …" suggestions
    machines_for: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # rules' memo of machine-spec verdicts (thousands of jobs repeat a few specs); not data
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)


# --- source → document (the generator) -----------------------------------------------------------


def build_catalog_document(source: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document for schemas/catalog.yaml's content; raises CatalogSourceError."""
    sources = _mapping(source, "sources")
    retrieved = source.get("retrieved")
    if not isinstance(retrieved, str):
        raise CatalogSourceError("retrieved: expected a date string")

    def url(entry: Mapping[str, Any], where: str) -> str:
        key = entry.get("source")
        if not isinstance(key, str) or key not in sources:
            raise CatalogSourceError(f"{where}: source {key!r} is not one of the keys of `sources`")
        return str(sources[key])

    accelerators: dict[str, Any] = {}
    for name, entry in _mapping(source, "accelerators").items():
        item: dict[str, Any] = {"kind": entry["kind"], "source": url(entry, f"accelerators.{name}")}
        if entry.get("deprecated"):
            item["deprecated"] = entry["deprecated"]
        accelerators[name] = item
    for name, entry in _mapping(source, "accelerator_regions").items():
        if name not in accelerators:
            raise CatalogSourceError(f"accelerator_regions.{name}: not an accelerator of the catalog")
        accelerators[name]["regions"] = list(entry["regions"])
        accelerators[name]["regions_source"] = url(entry, f"accelerator_regions.{name}")

    machines: dict[str, Any] = {}
    n1 = _mapping(source, "n1_gpus")
    for series in source.get("series", []):
        for size in series["sizes"]:
            name = f"{series['prefix']}-{size}"
            options: dict[str, list[int]] = {}
            if series.get("gpus") == "n1":
                for gpu, limits in n1.items():
                    counts = [int(c) for c, most in limits.items() if size <= most]
                    if counts:
                        options[gpu] = sorted(counts)
            machines[name] = {
                "family": series["family"],
                "vcpus": size,
                "memory_gb": round(size * float(series["memory_per_vcpu"]), 2),
                "accelerators": options,
                "fixed": False,
                "source": url(series, f"series {series['prefix']}"),
            }
    for name, entry in _mapping(source, "machine_types").items():
        where = f"machine_types.{name}"
        if "accelerators" in entry:
            options = {k: sorted(int(c) for c in v) for k, v in entry["accelerators"].items()}
            fixed = False
        else:
            options = {entry["accelerator"]: [int(entry["count"])]}
            fixed = True
        item = {
            "family": entry["family"],
            "accelerators": options,
            "fixed": fixed,
            "source": url(entry, where),
        }
        for key in ("vcpus", "memory_gb"):
            if key in entry:
                item[key] = entry[key]
        if entry.get("requires_accelerator"):
            item["requires_accelerator"] = True
        if entry.get("topologies"):
            item["topologies"] = list(entry["topologies"])
        machines[name] = item
    for name, item in machines.items():
        for acc in item["accelerators"]:
            if acc not in accelerators:
                raise CatalogSourceError(f"machine type {name}: accelerator {acc} is not in `accelerators`")

    scheduling = _mapping(source, "scheduling")
    messages = {
        key: {"text": entry["text"], "source": url(entry, f"messages.{key}")}
        for key, entry in _mapping(source, "messages").items()
    }
    return {
        "format_version": FORMAT_VERSION,
        "retrieved": retrieved,
        "generated_from": CATALOG_SOURCE,
        "sources": dict(sorted(sources.items())),
        "regions": {"names": sorted(source["regions"]), "source": url({"source": source["regions_source"]}, "regions")},
        "accelerators": accelerators,
        "machine_types": dict(sorted(machines.items())),
        "scheduling": {
            "max_timeout_seconds": int(scheduling["max_timeout_seconds"]),
            "flex_start_accelerators": list(scheduling["flex_start_accelerators"]),
            "source": url(scheduling, "scheduling"),
            "deprecated_strategies": dict(scheduling.get("deprecated_strategies", {})),
            "deprecated_strategies_source": url(
                {"source": scheduling.get("deprecated_strategies_source")}, "scheduling.deprecated_strategies"
            ),
        },
        "messages": messages,
    }


def _mapping(source: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = source.get(key)
    if not isinstance(value, dict):
        raise CatalogSourceError(f"{key}: expected a mapping")
    return value


def generate_catalog(repo_root: Path) -> dict[str, str]:
    """The generated file for `planner schema generate|check`: path -> text."""
    text = (repo_root / CATALOG_SOURCE).read_text(encoding="utf-8")
    document = build_catalog_document(yaml.safe_load(text))
    return {PACKAGED_CATALOG: json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"}


# --- document → model ---------------------------------------------------------------------------


def catalog_from_document(doc: Mapping[str, Any], origin: str = "planner's catalog") -> Catalog:
    accelerators = {}
    for name, item in doc["accelerators"].items():
        order = tuple(item.get("regions", ()))
        accelerators[name] = Accelerator(
            name=name,
            kind=item["kind"],
            deprecated=item.get("deprecated"),
            regions=frozenset(order) if "regions" in item else None,
            region_order=order,
            source=item["source"],
        )
    machines = {}
    machines_for: dict[str, list[str]] = {}
    for name, item in doc["machine_types"].items():
        options = {acc: tuple(counts) for acc, counts in item["accelerators"].items()}
        machines[name] = MachineType(
            name=name,
            family=item["family"],
            vcpus=item.get("vcpus"),
            memory_gb=item.get("memory_gb"),
            accelerators=options,
            fixed=bool(item.get("fixed")),
            requires_accelerator=bool(item.get("requires_accelerator")),
            topologies=tuple(item.get("topologies", ())),
            source=item["source"],
        )
        for acc in options:
            machines_for.setdefault(acc, []).append(name)
    scheduling = doc["scheduling"]
    return Catalog(
        retrieved=doc["retrieved"],
        machine_types=machines,
        accelerators=accelerators,
        regions=frozenset(doc["regions"]["names"]),
        max_timeout_seconds=int(scheduling["max_timeout_seconds"]),
        flex_start_accelerators=frozenset(scheduling["flex_start_accelerators"]),
        messages={key: entry["text"] for key, entry in doc["messages"].items()},
        origin=origin,
        deprecated_strategies=dict(scheduling.get("deprecated_strategies", {})),
        machines_for={acc: tuple(_by_size(names, machines)) for acc, names in machines_for.items()},
    )


def _by_size(names: list[str], machines: Mapping[str, MachineType]) -> list[str]:
    return sorted(names, key=lambda n: (max(machines[n].accelerators.get(a, (0,))[0] for a in machines[n].accelerators),
                                        machines[n].vcpus or 0, n))


@functools.cache
def packaged_catalog() -> Catalog:
    """The catalog shipped inside the package (generated from schemas/catalog.yaml)."""
    return catalog_from_document(json.loads(_DATA.read_text(encoding="utf-8")))


def load_catalog(override: str | Path | None = None) -> Catalog:
    """The packaged catalog, with an override file's machine types and regions added."""
    base = packaged_catalog()
    if override is None:
        return base
    path = Path(override)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UsageError(f"--hardware-catalog {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise UsageError(f"{where}: the hardware catalog override is not valid YAML") from err
    try:
        return _with_overrides(base, data or {}, str(path))
    except (CatalogSourceError, AttributeError, KeyError, TypeError, ValueError) as err:
        detail = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise UsageError(
            f"{path}: not a hardware catalog override ({detail}); see README, \"Hardware checks\""
        ) from None


def _with_overrides(base: Catalog, data: Any, origin: str) -> Catalog:
    """Override file shape: machine_types (as in schemas/catalog.yaml, `source` optional),
    regions (more Vertex regions), accelerator_regions (ACCELERATOR: [regions] added)."""
    if not isinstance(data, dict):
        raise CatalogSourceError("expected a mapping with machine_types, regions or accelerator_regions")
    unknown = set(data) - {"machine_types", "regions", "accelerator_regions"}
    if unknown:
        raise CatalogSourceError(f"unknown key {sorted(unknown)[0]!r}")
    machines = dict(base.machine_types)
    for name, entry in (data.get("machine_types") or {}).items():
        if "accelerators" in entry:
            options = {k: tuple(sorted(int(c) for c in v)) for k, v in (entry["accelerators"] or {}).items()}
            fixed = False
        elif "accelerator" in entry:
            options = {entry["accelerator"]: (int(entry["count"]),)}
            fixed = True
        else:
            options, fixed = {}, False
        for acc in options:
            if acc not in base.accelerators:
                raise CatalogSourceError(f"machine type {name}: {acc} is not an accelerator type of the API")
        machines[str(name)] = MachineType(
            name=str(name),
            family=str(entry.get("family", "custom")),
            vcpus=entry.get("vcpus"),
            memory_gb=entry.get("memory_gb"),
            accelerators=options,
            fixed=fixed,
            requires_accelerator=bool(entry.get("requires_accelerator")),
            topologies=tuple(entry.get("topologies", ())),
            source=str(entry.get("source", origin)),
        )
    accelerators = dict(base.accelerators)
    for name, regions in (data.get("accelerator_regions") or {}).items():
        acc = accelerators.get(name)
        if acc is None:
            raise CatalogSourceError(f"accelerator_regions: {name} is not an accelerator type of the API")
        order = (*acc.region_order, *(r for r in regions if r not in acc.region_order))
        accelerators[name] = Accelerator(acc.name, acc.kind, acc.deprecated, frozenset(order), order, acc.source)
    extra_regions = {str(r) for r in (data.get("regions") or ())}
    machines_for: dict[str, list[str]] = {}
    for name, machine in machines.items():
        for acc in machine.accelerators:
            machines_for.setdefault(acc, []).append(name)
    return Catalog(
        retrieved=base.retrieved,
        machine_types=machines,
        accelerators=accelerators,
        regions=base.regions | extra_regions,
        max_timeout_seconds=base.max_timeout_seconds,
        flex_start_accelerators=base.flex_start_accelerators,
        messages=base.messages,
        origin=f"{base.origin} with {origin}",
        deprecated_strategies=base.deprecated_strategies,
        machines_for={acc: tuple(_by_size(names, machines)) for acc, names in machines_for.items()},
    )
