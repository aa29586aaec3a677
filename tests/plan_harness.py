"""Run planner's stages against a real emulator for golden and end-to-end tests.

A golden case is a directory with `config/*.yaml` (desired), `case.yaml` (live jobs to seed
and the prior state, by handles) and the expected renderings `plan.txt`, `plan.md`, `plan.json`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from planner.api import VertexClient
from planner.canonical import canonical_spec, request_body, spec_hash
from planner.config.model import Desired
from planner.emulator import Emulator
from planner.state.model import JobRecord, ReleasedJob, State

CREATED_AT = "2026-11-26T12:00:00Z"


@contextmanager
def client_for(emulator: Emulator) -> Iterator[VertexClient]:
    http = httpx.Client(timeout=30.0)
    client = VertexClient(http, endpoint=emulator.url)
    try:
        yield client
    finally:
        client.close()


def seed_case(emulator: Emulator, case: Mapping[str, Any], desired: Desired) -> tuple[dict[str, str], State | None]:
    """Seed the live jobs of a case; return handle → job name and the prior state it describes."""
    names: dict[str, str] = {}
    workspace = case.get("workspace", "default")
    for index, job in enumerate(case.get("live", [])):
        spec = _spec(job.get("spec", "desired"), job.get("address"), desired)
        address = job.get("address")
        body = request_body(canonical_spec(spec), address, job.get("workspace", workspace)) if address else dict(spec)
        project = job.get("project", "demo-project")
        location = job.get("location", "us-central1")
        created = f"2026-11-{20 + index // 24:02d}T{index % 24:02d}:00:00Z"
        seeded = emulator.seed_job(project, location, body, state=job.get("state"), create_time=created)
        names[job["id"]] = seeded["name"]
    records = {}
    for address, rec in (case.get("state") or {}).items():
        spec = canonical_spec(_spec(rec.get("spec", "desired"), address, desired))
        handle = rec["job"]
        name = names.get(handle, f"projects/demo-project/locations/us-central1/customJobs/{handle}")
        records[address] = JobRecord(
            address=address,
            name=name,
            project=rec.get("project", "demo-project"),
            location=rec.get("location", "us-central1"),
            spec_hash=spec_hash(spec),
            spec=spec,
            last_state=rec.get("last_state", "JOB_STATE_RUNNING"),
            old_names=tuple(
                names.get(h, f"projects/demo-project/locations/us-central1/customJobs/{h}") for h in rec.get("old", [])
            ),
            prevent_destroy=bool(rec.get("prevent_destroy", False)),
            on_remove=rec.get("on_remove", "delete"),
            ignore_changes=None if rec.get("ignore_changes") is None else tuple(rec["ignore_changes"]),
            rerun_on=None if rec.get("rerun_on") is None else tuple(rec["rerun_on"]),
            history=tuple(rec.get("history", ())),
        )
    released = {}
    for item in case.get("released", []):
        name = names[item["job"]]
        parts = name.split("/")
        released[name] = ReleasedJob(
            item["address"], name, parts[1], parts[3], item.get("at", "2026-11-25T10:00:00Z"), item.get("how", "forget")
        )
    prior = (
        State(lineage="00000000-0000-4000-8000-000000000001", serial=7, jobs=records, released=released)
        if "state" in case
        else None
    )
    return names, prior


def _spec(value: Any, address: str | None, desired: Desired) -> dict[str, Any]:
    if value == "desired":
        assert address is not None, "spec: desired needs an address"
        return dict(desired.jobs[address].body)
    if isinstance(value, str) and value.startswith("desired:"):
        return dict(desired.jobs[value.split(":", 1)[1]].body)
    if isinstance(value, dict) and "from" in value:
        base = dict(desired.jobs[value["from"]].body)
        return _merge(base, value.get("with", {}))
    assert isinstance(value, dict)
    return value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def load_case(directory: Path) -> dict[str, Any]:
    data = yaml.safe_load((directory / "case.yaml").read_text()) or {}
    assert isinstance(data, dict)
    return data
