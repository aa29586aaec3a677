"""Cost estimates: golden cases with the figures worked out by hand, and plans priced end to end.

Prices come from tests/testdata/cost/prices.json (round test figures, not Vertex's): per hour
n1-standard-4 $0.20 (europe-west4 $0.25), n1-standard-8 $0.40, T4 $0.35, a2-highgpu-8g $10,
A100 $3, a3-highgpu-8g $20 spot / $25 flex-start, H100 $4 spot / $5 flex-start, pd-ssd boot
disk $0.0002 per GB-hour (the default 100 GB: $0.02/h). The expected figures below are
computed by hand from those rates, never read back from the code.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from plan_harness import CREATED_AT, client_for, seed_case

from planner.config.model import Desired, DesiredJob
from planner.config.validate import load_desired
from planner.documents.plan import plan_to_json
from planner.emulator import ManualClock
from planner.errors import UsageError
from planner.operations.plan import refresh_and_plan
from planner.pricing.cost import annotate, estimate, footer, totals
from planner.pricing.prices import STALE_DAYS, book_from_json, load_book
from planner.render import render_plan

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT / "tests" / "testdata" / "cost" / "prices.json"


@pytest.fixture(scope="module")
def book():  # type: ignore[no-untyped-def]
    return load_book(str(PRICES))


def pool(machine: str, replicas: int = 1, accelerator: str | None = None, count: int = 0, **extra: Any) -> dict:
    spec: dict[str, Any] = {"machineType": machine}
    if accelerator:
        spec |= {"acceleratorType": accelerator, "acceleratorCount": count}
    return {"machineSpec": spec, "replicaCount": replicas, "containerSpec": {"imageUri": "img:1"}, **extra}


def job(*pools: dict, scheduling: dict | None = None, persistent: str | None = None) -> dict:
    spec: dict[str, Any] = {"workerPoolSpecs": list(pools)}
    if scheduling:
        spec["scheduling"] = scheduling
    if persistent:
        spec["persistentResourceId"] = persistent
    return {"displayName": "j", "jobSpec": spec}


def test_cpu_only(book) -> None:  # type: ignore[no-untyped-def]
    est = estimate(job(pool("n1-standard-4")), "us-central1", book)
    # 0.20 machine + 100 GB × 0.0002 disk = 0.22 per hour; no timeout: 7 days = 168 h → 36.96.
    assert est.hourly_usd == pytest.approx(0.22)
    assert est.hours_bound == 168
    assert est.max_usd == pytest.approx(36.96)
    assert est.provisioning == "on-demand" and est.missing == () and est.notes == ()


def test_t4_on_n1(book) -> None:  # type: ignore[no-untyped-def]
    est = estimate(
        job(pool("n1-standard-8", 1, "NVIDIA_TESLA_T4", 1), scheduling={"timeout": "10h"}), "us-central1", book
    )
    # 0.40 + 1 × 0.35 + 0.02 = 0.77 per hour, for 10 h = 7.70.
    assert est.hourly_usd == pytest.approx(0.77)
    assert est.max_usd == pytest.approx(7.70)


def test_eight_a100(book) -> None:  # type: ignore[no-untyped-def]
    spec = job(pool("a2-highgpu-8g", 1, "NVIDIA_TESLA_A100", 8), scheduling={"timeout": "86400s"})
    est = estimate(spec, "us-central1", book)
    # 10 + 8 × 3 + 0.02 = 34.02 per hour, for 24 h = 816.48.
    assert est.hourly_usd == pytest.approx(34.02)
    assert est.max_usd == pytest.approx(816.48)


def test_h100_spot(book) -> None:  # type: ignore[no-untyped-def]
    spec = job(pool("a3-highgpu-8g", 2, "NVIDIA_H100_80GB", 8), scheduling={"strategy": "SPOT", "timeout": "2h"})
    est = estimate(spec, "us-central1", book)
    # Spot rates: per replica 20 + 8 × 4 + 0.02 = 52.02; 2 replicas = 104.04 per hour; 2 h = 208.08.
    assert est.provisioning == "spot"
    assert est.hourly_usd == pytest.approx(104.04)
    assert est.max_usd == pytest.approx(208.08)


def test_flex_start(book) -> None:  # type: ignore[no-untyped-def]
    spec = job(pool("a3-highgpu-8g", 1, "NVIDIA_H100_80GB", 8), scheduling={"strategy": "FLEX_START"})
    est = estimate(spec, "us-central1", book)
    # Flex-start rates: 25 + 8 × 5 + 0.02 = 65.02 per hour; 168 h = 10,923.36.
    assert est.provisioning == "flex-start"
    assert est.hourly_usd == pytest.approx(65.02)
    assert est.max_usd == pytest.approx(10923.36)


def test_h100_on_demand_has_no_price_even_though_spot_has(book) -> None:  # type: ignore[no-untyped-def]
    est = estimate(job(pool("a3-highgpu-8g", 1, "NVIDIA_H100_80GB", 8)), "us-central1", book)
    assert est.hourly_usd is None and est.max_usd is None
    assert est.missing == (
        "no price for a3-highgpu-8g in us-central1 in prices of 2026-11-20",
        "no price for NVIDIA_H100_80GB in us-central1 in prices of 2026-11-20",
    )


def test_multi_pool(book) -> None:  # type: ignore[no-untyped-def]
    spec = job(
        pool("n1-standard-8", 1, "NVIDIA_TESLA_T4", 1),
        {},  # an empty placeholder pool bills nothing
        pool("n1-standard-4", 3, diskSpec={"bootDiskType": "pd-ssd", "bootDiskSizeGb": 200}),
        scheduling={"timeout": "3600s"},
    )
    est = estimate(spec, "us-central1", book)
    # Pool 0: 0.40 + 0.35 + 0.02 = 0.77. Pool 2: 3 × (0.20 + 200 × 0.0002) = 3 × 0.24 = 0.72. Total 1.49; 1 h.
    assert est.hourly_usd == pytest.approx(1.49)
    assert est.max_usd == pytest.approx(1.49)
    assert [p.machine_type for p in est.pools] == ["n1-standard-8", "n1-standard-4"]


def test_persistent_resource_costs_nothing_extra(book) -> None:  # type: ignore[no-untyped-def]
    spec = job(pool("a2-highgpu-8g", 1, "NVIDIA_TESLA_A100", 8), persistent="my-cluster")
    est = estimate(spec, "us-central1", book)
    assert est.hourly_usd == 0 and est.max_usd == 0
    assert est.persistent_resource == "my-cluster"
    assert "persistent resource my-cluster" in est.notes[0]


def test_unknown_region_is_never_another_regions_price(book) -> None:  # type: ignore[no-untyped-def]
    est = estimate(job(pool("n1-standard-4")), "me-west1", book)
    assert est.hourly_usd is None and est.max_usd is None
    assert est.missing == ("no price for n1-standard-4 in me-west1 in prices of 2026-11-20",)
    # The disk has no me-west1 price either: left out, and said so.
    assert est.notes == ("boot disk not counted: no price for pd-ssd boot disk in me-west1 in prices of 2026-11-20",)
    # europe-west4 has its own price (0.25, no disk price there: 0.25 per hour).
    assert estimate(job(pool("n1-standard-4")), "europe-west4", book).hourly_usd == pytest.approx(0.25)


def test_price_file_problems_are_user_errors(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text('{"format_version": 1, "retrieved_at": "2026-01-01", "entries": [{"kind": "gpu"}]}')
    with pytest.raises(UsageError, match=r"entries\[0\]\.kind"):
        load_book(str(bad))
    bad.write_text("{nope")
    with pytest.raises(UsageError, match=r"p\.json:1:2: not JSON"):
        load_book(str(bad))
    with pytest.raises(UsageError, match="cannot be read"):
        load_book(str(tmp_path / "missing.json"))


def test_old_prices_warn(book) -> None:  # type: ignore[no-untyped-def]
    assert book.stale_warning(date(2026, 11, 20)) is None
    day = date.fromordinal(date(2026, 11, 20).toordinal() + STALE_DAYS)
    assert book.stale_warning(day) is None
    warning = book.stale_warning(date.fromordinal(day.toordinal() + 1))
    assert warning is not None and "91 days old" in warning


def test_bundled_prices_cite_their_source() -> None:
    bundled = load_book()
    assert bundled.origin == "bundled"
    for entry in bundled.entries.values():
        assert entry.source.startswith("https://cloud.google.com/vertex-ai/pricing")
        assert entry.retrieved_at
    assert book_from_json({"format_version": 1, "retrieved_at": "2026-01-01", "entries": []}, "x").entries == {}


# -- plans: replace and delete, priced end to end against the emulator ---------------------------

CONFIG = """\
version: 1
project: demo-project
location: us-central1
jobs:
  a-new-cpu:
    displayName: a-new-cpu
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {machineType: n1-standard-4}
          replicaCount: 1
          containerSpec: {imageUri: us-docker.pkg.dev/demo/train/cpu:1}
  b-t4:
    displayName: b-t4
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {machineType: n1-standard-8, acceleratorType: NVIDIA_TESLA_T4, acceleratorCount: 2}
          replicaCount: 1
          containerSpec: {imageUri: us-docker.pkg.dev/demo/train/t4:1.5}
      scheduling: {timeout: 10h}
"""

OLD_T4 = {
    "displayName": "b-t4",
    "jobSpec": {
        "workerPoolSpecs": [
            {
                "machineSpec": {
                    "machineType": "n1-standard-8",
                    "acceleratorType": "NVIDIA_TESLA_T4",
                    "acceleratorCount": 1,
                },
                "replicaCount": "1",
                "containerSpec": {"imageUri": "us-docker.pkg.dev/demo/train/t4:1.4"},
            }
        ],
        "scheduling": {"timeout": "36000s"},
    },
}
OLD_A100 = {
    "displayName": "c-a100",
    "jobSpec": {
        "workerPoolSpecs": [
            {
                "machineSpec": {
                    "machineType": "a2-highgpu-8g",
                    "acceleratorType": "NVIDIA_TESLA_A100",
                    "acceleratorCount": 8,
                },
                "replicaCount": "1",
                "containerSpec": {"imageUri": "us-docker.pkg.dev/demo/train/a100:3"},
            }
        ]
    },
}


def priced_plan(tmp_path: Path, emulator_factory, book):  # type: ignore[no-untyped-def]
    (tmp_path / "jobs.yaml").write_text(CONFIG)
    desired = load_desired([tmp_path / "jobs.yaml"], variables={})
    emulator = emulator_factory(clock=ManualClock(1_795_000_000.0), seed=7)
    case = {
        "live": [
            {"id": "t4", "address": "b-t4", "state": "JOB_STATE_RUNNING", "spec": OLD_T4},
            {"id": "a100", "address": "c-a100", "state": "JOB_STATE_RUNNING", "spec": OLD_A100},
        ],
        "state": {"b-t4": {"job": "t4", "spec": OLD_T4}, "c-a100": {"job": "a100", "spec": OLD_A100}},
    }
    _names, prior = seed_case(emulator, case, desired)
    with client_for(emulator) as client:
        planned = refresh_and_plan(client, desired, prior, workspace="default", created_at=CREATED_AT)
    return annotate(planned.plan, planned.live, prior, book), emulator


def test_replace_and_delete_are_priced(tmp_path: Path, emulator_factory, book) -> None:  # type: ignore[no-untyped-def]
    plan, emulator = priced_plan(tmp_path, emulator_factory, book)
    doc = plan_to_json(plan)
    jsonschema.validate(doc, __import__("json").loads((ROOT / "schemas" / "plan.schema.json").read_text()))
    rows = {c["address"]: c for c in doc["resource_changes"]}
    assert [rows[a]["action"] for a in ("a-new-cpu", "b-t4", "c-a100")] == ["create", "replace", "delete"]
    new = rows["a-new-cpu"]["cost"]
    assert new["before"] is None and new["after"]["hourly_usd"] == pytest.approx(0.22)
    replace_ = rows["b-t4"]["cost"]
    # New: 0.40 + 2 × 0.35 + 0.02 = 1.12 per hour, 10 h = 11.20. Old (running): 0.40 + 0.35 + 0.02 = 0.77.
    assert replace_["after"]["hourly_usd"] == pytest.approx(1.12)
    assert replace_["after"]["max_usd"] == pytest.approx(11.20)
    assert replace_["before"]["hourly_usd"] == pytest.approx(0.77)
    assert replace_["stops_running"] is True
    delete = rows["c-a100"]["cost"]
    # Running 8 × A100: 10 + 24 + 0.02 = 34.02 per hour stops.
    assert delete["after"] is None and delete["before"]["hourly_usd"] == pytest.approx(34.02)
    assert delete["stops_running"] is True
    t = totals(doc["resource_changes"])
    # Adds 0.22 + 1.12 = 1.34/h, up to 36.96 + 11.20 = 48.16; stops 0.77 + 34.02 = 34.79/h.
    assert footer(t) == "Cost: +$1.34/h, up to +$48.16 (timeouts) for 2 new jobs; stops $34.79/h"
    # Accelerators: +2 T4 new, -1 T4 and -8 A100 stopped.
    assert dict(t.accelerators) == {"NVIDIA_TESLA_A100": -8, "NVIDIA_TESLA_T4": 1}
    text = render_plan(plan, "text")
    assert "Cost: +$1.34/h, up to +$48.16 (timeouts) for 2 new jobs; stops $34.79/h" in text
    assert "Net: -8 A100, +1 T4, -$33.45/h" in text
    assert "2 × T4 · n1-standard-8 × 1 (1 → 2 T4, image …:1.4 → …:1.5)  +$1.12/h, up to $11.20; stops $0.77/h" in text
    assert all(r.method == "GET" for r in emulator.request_log.records)


def test_unpriced_plan_documents_are_unchanged() -> None:
    job_ = DesiredJob("a", "p", "us-central1", job(pool("n1-standard-4")))
    desired = Desired(jobs={"a": job_})
    from planner.plans.engine import make_plan
    from planner.plans.model import PlanOptions
    from planner.refresh import Live

    plan = make_plan(desired, None, Live(jobs={}), PlanOptions())
    assert "cost" not in plan_to_json(plan)["resource_changes"][0]


def test_old_price_file_warns_in_the_plan(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    from cli_harness import Cli

    old = __import__("json").loads(PRICES.read_text())
    old["retrieved_at"] = "2020-01-01"
    (tmp_path / "old.json").write_text(__import__("json").dumps(old))
    (tmp_path / "jobs.yaml").write_text(CONFIG)
    result = Cli(tmp_path, emulator).run("plan", "jobs.yaml", "--price-file", "old.json", "--format", "markdown")
    assert result.code == 0, result
    assert result.out.count("prices are ") == 1
    assert "days old (retrieved 2020-01-01, old.json); run " in result.out
    # Prices of 2020-01-01 are what the rows cite.
    assert "prices of 2020-01-01" not in result.out  # every rate was found
    assert "price file old.json of 2020-01-01" in result.out


def test_a_matrix_sweep_is_named_as_the_plan_summary_names_it() -> None:
    from planner.render.cost_view import group_label

    sweep = [{"address": f"train[lr={lr},seed=1]"} for lr in ("0.001", "0.0003")]
    assert group_label(sweep) == "train[…]"
    assert group_label([{"address": "eval-a"}, {"address": "eval-b"}]) == "eval-…"
    assert group_label([{"address": "a"}, {"address": "b"}]) == ""
    assert group_label([*sweep, {"address": "train[lr=0.1,seed=9]"}, {"address": "other[x=1]"}]) == ""
