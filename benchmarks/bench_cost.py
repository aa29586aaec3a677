"""What pricing adds to a plan: annotate + render of N new jobs, and of N unchanged jobs, priced and not.

In process, no network: the plan is made from N desired jobs (CPU, T4 and A100 mixed, so
no sweep folds them) against no live jobs (all creates), then against N live jobs that
match (all no-ops, the 10,000-job no-change case). Times `pricing.cost.annotate` and the
text and markdown renderings with and without costs, median of --repeat runs.

    .venv/bin/python benchmarks/bench_cost.py [--jobs 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from common import median

from planner.canonical import canonical_spec, request_body, spec_hash
from planner.config.model import Desired, DesiredJob
from planner.plans.engine import make_plan
from planner.plans.model import Plan, PlanOptions
from planner.pricing.cost import annotate
from planner.pricing.prices import load_book
from planner.refresh import Live, live_job
from planner.render import render_plan
from planner.state.model import JobRecord, State

PRICES = Path(__file__).resolve().parents[1] / "tests" / "testdata" / "cost" / "prices.json"
POOLS = (
    {"machineType": "n1-standard-4"},
    {"machineType": "n1-standard-8", "acceleratorType": "NVIDIA_TESLA_T4", "acceleratorCount": 1},
    {"machineType": "a2-highgpu-8g", "acceleratorType": "NVIDIA_TESLA_A100", "acceleratorCount": 8},
)


def body(i: int) -> dict[str, object]:
    return {
        "displayName": f"job-{i:05d}",
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": POOLS[i % 3],
                    "replicaCount": str(1 + i % 50),
                    "containerSpec": {"imageUri": f"us-docker.pkg.dev/b/train:{i}"},
                }
            ]
        },
    }


def timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times)


def report(name: str, plan: Plan, live: Live, prior: State | None, repeat: int) -> None:
    book = load_book(str(PRICES))
    priced = annotate(plan, live, prior, book)
    t_annotate = timed(lambda: annotate(plan, live, prior, book), repeat)
    for fmt in ("text", "markdown"):
        plain = timed(lambda: render_plan(plan, fmt), repeat)  # noqa: B023
        costly = timed(lambda: render_plan(priced, fmt), repeat)  # noqa: B023
        print(f"{name}: render {fmt:8s} unpriced {plain * 1000:7.1f} ms, priced {costly * 1000:7.1f} ms")
    print(f"{name}: annotate {t_annotate * 1000:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    jobs = {f"job-{i:05d}": DesiredJob(f"job-{i:05d}", "b", "us-central1", body(i)) for i in range(args.jobs)}
    desired = Desired(jobs=jobs)
    creates = make_plan(desired, None, Live(jobs={}), PlanOptions())
    report(f"{args.jobs} creates", creates, Live(jobs={}), None, args.repeat)

    live = {}
    records = {}
    for address, job in jobs.items():
        spec = canonical_spec(job.body)
        digest = spec_hash(spec)
        name = f"projects/b/locations/us-central1/customJobs/{len(live) + 1}"
        resource = {**request_body(spec, address, "default"), "name": name, "state": "JOB_STATE_RUNNING"}
        live[name] = live_job(resource)
        records[address] = JobRecord(address, name, "b", "us-central1", digest, spec, "JOB_STATE_RUNNING")
    prior = State(lineage="l", serial=1, jobs=records)
    noop = make_plan(desired, prior, Live(jobs=live), PlanOptions())
    report(f"{args.jobs} unchanged", noop, Live(jobs=live), prior, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
