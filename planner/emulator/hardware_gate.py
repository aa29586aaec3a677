"""The emulator's create-time hardware gate: planner.hardware's rules answered as Vertex AI answers them.

It owns only the translation of `rules.Finding`s (errors; warnings are planner's own advice and
pass) into one 400 INVALID_ARGUMENT: field paths in the API's snake_case, Vertex AI's own
wording where the catalog records it, planner's otherwise. The rules themselves live in
`planner.hardware`, so `planner validate` and the emulator reject exactly the same jobs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from planner.emulator.wire import invalid_argument, snake
from planner.hardware import Catalog, Severity, check_job, load_catalog


def api_field(path: tuple[str | int, ...]) -> str:
    """("jobSpec", "workerPoolSpecs", 0, "machineSpec") -> "job_spec.worker_pool_specs[0].machine_spec"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + snake(part)
    return out


@functools.lru_cache(maxsize=8)
def _catalog(override: str | None) -> Catalog:
    return load_catalog(override)


def reject_hardware(job: Mapping[str, Any], location: str, override: str | None = None) -> None:
    """Raise the 400 Vertex AI gives a job its hardware or scheduling rules refuse; else return.

    `override` is a hardware catalog override file (read once), as `--hardware-catalog` takes.
    """
    findings = [f for f in check_job(job, location, _catalog(override)) if f.severity is Severity.ERROR]
    if not findings:
        return
    violations = [(api_field(f.path), f.api_message or f.message) for f in findings]
    # Vertex AI words a machine/accelerator mismatch as the whole message, not as a field list.
    first = findings[0]
    lone = first.api_message if first.api_message and first.api_message.startswith("Accelerator ") else ""
    raise invalid_argument(violations, prefix=lone)
