"""Policy gates: one test per rule, the --max-cost budget, and the CLI refusing a plan with nothing sent.

Figures use tests/testdata/cost/prices.json (see test_cost.py): the A100 job below costs
10 + 8 × 3 + 0.02 = 34.02 per hour, for its 10 h timeout 340.20; the T4 job 0.40 + 0.35 +
0.02 = 0.77 per hour, for 7 days (168 h) 129.36.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_harness import Cli

from planner.config.model import Desired, DesiredJob
from planner.errors import ConfigError
from planner.plans.engine import make_plan
from planner.plans.model import Plan, PlanOptions
from planner.policy import Policy, Violation, check, load_policy_file, max_cost_policy
from planner.pricing.cost import annotate
from planner.pricing.prices import load_book
from planner.refresh import Live

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT / "tests" / "testdata" / "cost" / "prices.json"

A100 = {
    "displayName": "big",
    "labels": {"team": "vision"},
    "jobSpec": {
        "workerPoolSpecs": [
            {
                "machineSpec": {
                    "machineType": "a2-highgpu-8g",
                    "acceleratorType": "NVIDIA_TESLA_A100",
                    "acceleratorCount": 8,
                },
                "replicaCount": "1",
                "containerSpec": {"imageUri": "img:1"},
            }
        ],
        "scheduling": {"timeout": "36000s"},
    },
}
T4 = {
    "displayName": "small",
    "jobSpec": {
        "workerPoolSpecs": [
            {
                "machineSpec": {
                    "machineType": "n1-standard-8",
                    "acceleratorType": "NVIDIA_TESLA_T4",
                    "acceleratorCount": 1,
                },
                "replicaCount": "1",
                "containerSpec": {"imageUri": "img:1"},
            }
        ]
    },
}


def plan_of(**jobs: tuple[str, dict[str, Any]]) -> Plan:
    desired = Desired(jobs={a: DesiredJob(a, "p", loc, body) for a, (loc, body) in sorted(jobs.items())})
    plan = make_plan(desired, None, Live(jobs={}), PlanOptions())
    return annotate(plan, Live(jobs={}), None, load_book(str(PRICES)))


def messages(violations: list[Violation]) -> list[str]:
    return [str(v) for v in violations]


def test_allowed_regions() -> None:
    plan = plan_of(big=("us-central1", A100), small=("me-west1", T4))
    assert messages(check(plan, Policy(allowed_regions=("us-central1",)))) == [
        "small: policy allowedRegions: location me-west1 is not allowed (allowed: us-central1)"
    ]


def test_allowed_accelerators() -> None:
    plan = plan_of(big=("us-central1", A100), small=("us-central1", T4))
    assert messages(check(plan, Policy(allowed_accelerators=("NVIDIA_TESLA_T4",)))) == [
        "big: policy allowedAccelerators: NVIDIA_TESLA_A100 is not allowed (allowed: NVIDIA_TESLA_T4)"
    ]


def test_max_accelerators_per_job() -> None:
    plan = plan_of(big=("us-central1", A100), small=("us-central1", T4))
    assert messages(check(plan, Policy(max_accelerators_per_job=4))) == [
        "big: policy maxAcceleratorsPerJob: holds 8 accelerators, more than 4"
    ]
    assert check(plan, Policy(max_accelerators_per_job=8)) == []


def test_max_cost_per_job() -> None:
    plan = plan_of(big=("us-central1", A100), small=("us-central1", T4))
    assert messages(check(plan, Policy(max_cost_per_job=200))) == [
        "big: policy maxCostPerJob: may cost up to $340.20 ($34.02/h for 10 h), over the limit of $200.00"
    ]


def test_max_cost_per_job_fails_when_the_price_is_unknown() -> None:
    plan = plan_of(small=("me-west1", T4))
    assert messages(check(plan, Policy(max_cost_per_job=1000))) == [
        "small: policy maxCostPerJob: cannot be checked: no price for n1-standard-8 in me-west1 in prices of "
        "2026-11-20; no price for NVIDIA_TESLA_T4 in me-west1 in prices of 2026-11-20"
    ]


def test_max_cost_per_plan_and_max_cost_flag() -> None:
    plan = plan_of(big=("us-central1", A100), small=("us-central1", T4))
    # 340.20 + 129.36 = 469.56 up to the timeouts; 34.02 + 0.77 = 34.79 per hour.
    expected = (
        "the 2 jobs this plan starts may cost up to $469.56 ($34.79/h until their timeouts), "
        "$69.56 over the limit of $400.00"
    )
    assert messages(check(plan, Policy(max_cost_per_plan=400))) == [f"plan: policy maxCostPerPlan: {expected}"]
    assert messages(check(plan, max_cost_policy(400))) == [f"plan: --max-cost: {expected}"]
    assert check(plan, max_cost_policy(469.57)) == []


def test_required_labels() -> None:
    plan = plan_of(big=("us-central1", A100), small=("us-central1", T4))
    assert messages(check(plan, Policy(required_labels=("team", "owner")))) == [
        "big: policy requiredLabels: missing label owner",
        "small: policy requiredLabels: missing labels team, owner",
    ]


def test_spot_or_flex_above_gpus() -> None:
    spot = {**A100, "jobSpec": {**A100["jobSpec"], "scheduling": {"strategy": "SPOT"}}}
    plan = plan_of(big=("us-central1", A100), small=("us-central1", T4), spot=("us-central1", spot))
    assert messages(check(plan, Policy(spot_or_flex_above_gpus=4))) == [
        "big: policy requireSpotOrFlexAboveGpus: 8 GPUs on demand; above 4 GPUs set "
        "jobSpec.scheduling.strategy to SPOT or FLEX_START"
    ]


def test_policies_combine_to_the_strictest() -> None:
    a = Policy(allowed_regions=("us-central1", "europe-west4"), max_cost_per_job=100, required_labels=("team",))
    b = Policy(allowed_regions=("europe-west4",), max_cost_per_job=50, required_labels=("owner",))
    combined = a.combine(b)
    assert combined.allowed_regions == ("europe-west4",)
    assert combined.max_cost_per_job == 50
    assert combined.required_labels == ("owner", "team")


def test_policy_file_errors_name_file_line_column(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("policy:\n  allowedRegion: [us-central1]\n  maxCostPerJob: lots\n")
    with pytest.raises(ConfigError) as err:
        load_policy_file(str(path))
    text = str(err.value)
    assert f"{path}:2:3: policy.allowedRegion: unknown policy rule; did you mean allowedRegions?" in text
    assert f"{path}:3:3: policy.maxCostPerJob: must be a number of US dollars, at least 0" in text
    path.write_text("maxAcceleratorsPerJob: 4\n")
    assert load_policy_file(str(path)).max_accelerators_per_job == 4


# -- the command line: exit 1, the numbers, nothing sent -----------------------------------------

CONFIG = """\
version: 1
project: demo-project
location: us-central1
{policy}jobs:
  big:
    displayName: big
    labels: {{team: vision}}
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {{machineType: a2-highgpu-8g, acceleratorType: NVIDIA_TESLA_A100, acceleratorCount: 8}}
          replicaCount: 1
          containerSpec: {{imageUri: img:1}}
      scheduling: {{timeout: 10h}}
"""


def test_max_cost_exceeded_fails_the_plan_with_the_numbers(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "jobs.yaml").write_text(CONFIG.format(policy=""))
    cli = Cli(tmp_path, emulator)
    result = cli.run("plan", "jobs.yaml", "--price-file", str(PRICES), "--max-cost", "300", "--detailed-exitcode")
    assert result.code == 1, result
    assert "the plan breaks 1 policy violation; nothing was sent" in result.err
    assert (
        "plan: --max-cost: the 1 job this plan starts may cost up to $340.20 ($34.02/h until their timeouts), "
        "$40.20 over the limit of $300.00"
    ) in result.err
    assert "Traceback" not in result.err
    # Within budget the plan goes through, and --detailed-exitcode still says "changes".
    ok = cli.run("plan", "jobs.yaml", "--price-file", str(PRICES), "--max-cost", "400", "--detailed-exitcode")
    assert ok.code == 2, ok
    assert "Cost: +$34.02/h, up to +$340.20 (timeouts) for 1 new job; stops $0.00/h" in ok.out
    # apply is gated too, before anything is created.
    applied = cli.run("apply", "jobs.yaml", "--price-file", str(PRICES), "--max-cost", "300", "--auto-approve")
    assert applied.code == 1 and "--max-cost" in applied.err
    assert all(r.method == "GET" for r in emulator.request_log.records)
    assert emulator.list_jobs("demo-project", "us-central1", "") == []


def test_policy_in_the_configuration_and_in_a_file(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    policy = "policy:\n  requireSpotOrFlexAboveGpus: 4\n"
    (tmp_path / "jobs.yaml").write_text(CONFIG.format(policy=policy))
    (tmp_path / "team.yaml").write_text("requiredLabels: [team, owner]\n")
    cli = Cli(tmp_path, emulator)
    result = cli.run("plan", "jobs.yaml", "--price-file", str(PRICES), "--policy", "team.yaml")
    assert result.code == 1, result
    assert "the plan breaks 2 policy violations; nothing was sent" in result.err
    assert "big: policy requiredLabels (team.yaml:1:1): missing label owner" in result.err
    assert "big: policy requireSpotOrFlexAboveGpus (jobs.yaml:5:3): 8 GPUs on demand" in result.err
    assert all(r.method == "GET" for r in emulator.request_log.records)


def test_a_saved_plan_keeps_its_costs(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "jobs.yaml").write_text(CONFIG.format(policy=""))
    cli = Cli(tmp_path, emulator, env={"GITHUB_SHA": "feedfacecafe0000", "GITHUB_REF": "refs/pull/7/merge"})
    saved = cli.run("plan", "jobs.yaml", "--price-file", str(PRICES), "-o", "plan.json")
    assert saved.code == 0, saved
    shown = cli.run("show", "plan.json", "--format", "markdown", backend=False)
    assert shown.code == 0, shown
    assert "commit `feedfacecafe` · PR #7 · planner " in shown.out
    assert "| 8 × A100 · a2-highgpu-8g × 1 | +$34.02/h, up to $340.20 |" in shown.out
    applied = cli.run("apply", "plan.json")
    assert applied.code == 0, applied
    assert "Cost: +$34.02/h, up to +$340.20 (timeouts) for 1 new job; stops $0.00/h" in applied.out
