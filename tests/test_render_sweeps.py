"""The grouped sweep rows of a plan's summary (planner.render.sweeps), on plan documents."""

from __future__ import annotations

from typing import Any

from planner.render.sweeps import group_rows, hardware


def row(
    address: str, action: str = "create", accel: str | None = "NVIDIA_L4", count: int = 1, spot: bool = True
) -> dict[str, Any]:
    machine: dict[str, Any] = {"machineType": "g2-standard-8"}
    if accel:
        machine.update(acceleratorType=accel, acceleratorCount=count)
    job_spec: dict[str, Any] = {"workerPoolSpecs": [{"machineSpec": machine, "replicaCount": "1"}]}
    if spot:
        job_spec["scheduling"] = {"strategy": "SPOT"}
    return {
        "address": address,
        "action": action,
        "reason": "new",
        "changes": [],
        "job": None,
        "after": {"jobSpec": job_spec},
    }


def test_rows_of_one_sweep_and_action_fold_into_one_row_in_place() -> None:
    rows = [
        row("alpha"),
        row("train[lr=0.1,seed=1]"),
        row("train[lr=0.1,seed=2]", accel="NVIDIA_H100_80GB", count=8, spot=False),
        row("train[lr=0.2,seed=1]"),
        row("train[lr=0.3,seed=1]", action="delete"),
        row("zeta"),
    ]
    out = group_rows(rows)
    assert [(r["address"], r["action"]) for r in out] == [
        ("alpha", "create"),
        ("train[…]", "create"),
        ("train[lr=0.3,seed=1]", "delete"),  # alone: keeps its own row
        ("zeta", "create"),
    ]
    assert out[1]["reason"] == "3 jobs, 2 × L4 SPOT, 1 × 8×H100_80GB"


def test_hardware_names_the_chief_pool() -> None:
    assert hardware(row("x", accel=None, spot=False)["after"]) == "g2-standard-8"
    assert hardware(row("x", accel="NVIDIA_TESLA_T4")["after"]) == "T4 SPOT"
    assert hardware(None) is None and hardware({"displayName": "x"}) is None
