"""Listing 10,000 jobs from the emulator: planner's VertexClient vs google-cloud-aiplatform's REST client.

Both list the same seeded jobs, 100 per page, from the same in-process emulator in the
same run; each is timed over several alternating rounds and the best round counts.

    .venv/bin/python benchmarks/bench_list.py [--jobs 10000] [--page-size 100] [--rounds 3]

Exit status 1 if planner is not at least --min-ratio (3×) faster.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from planner.api import build_client
from planner.emulator import running_emulator

PROJECT = "bench-project"
LOCATION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"


def job(i: int) -> dict[str, object]:
    return {
        "displayName": f"bench-{i}",
        "labels": {"managed-by": "planner", "planner-workspace": "default", "planner-address": f"bench-{i}"},
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-8", "acceleratorType": "NVIDIA_TESLA_T4",
                                    "acceleratorCount": 1},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": "us-docker.pkg.dev/p/r/train:1.4", "args": ["--epochs", "10"]},
                }
            ],
            "scheduling": {"timeout": "3600s"},
            "baseOutputDirectory": {"outputUriPrefix": "gs://bucket/out/"},
        },
    }


def timed(fn: Callable[[], int], expected: int) -> float:
    started = time.perf_counter()
    count = fn()
    elapsed = time.perf_counter() - started
    if count != expected:
        raise SystemExit(f"listed {count} jobs, expected {expected}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-ratio", type=float, default=3.0)
    args = parser.parse_args(argv)

    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform_v1 import JobServiceClient

    with running_emulator(queue_seconds=3600, run_seconds=3600) as emulator:
        started = time.perf_counter()
        for i in range(args.jobs):
            emulator.seed_job(PROJECT, LOCATION, job(i))
        print(f"seeded {args.jobs} jobs in {time.perf_counter() - started:.1f}s at {emulator.url}")

        planner_client = build_client(endpoint=emulator.url)
        gapic = JobServiceClient(
            credentials=AnonymousCredentials(),
            transport="rest",
            client_options={"api_endpoint": emulator.url},
        )

        def with_planner() -> int:
            return sum(1 for _ in planner_client.list_jobs(PROJECT, LOCATION, page_size=args.page_size))

        def with_gapic() -> int:
            pager = gapic.list_custom_jobs(request={"parent": PARENT, "page_size": args.page_size})
            return sum(1 for _ in pager)

        # Alternate so both see the same warm emulator; one untimed warm-up each.
        with_planner(), with_gapic()
        planner_times, gapic_times = [], []
        for _ in range(args.rounds):
            planner_times.append(timed(with_planner, args.jobs))
            gapic_times.append(timed(with_gapic, args.jobs))
        planner_client.close()

    planner_best, gapic_best = min(planner_times), min(gapic_times)
    ratio = gapic_best / planner_best
    pages = -(-args.jobs // args.page_size)
    print(f"planner VertexClient.list_jobs      : {planner_best:.3f}s  ({args.jobs} jobs, {pages} pages)")
    print(f"aiplatform_v1 JobServiceClient rest : {gapic_best:.3f}s")
    print(f"ratio (aiplatform / planner)        : {ratio:.1f}x  (required >= {args.min_ratio:g}x)")
    print(f"all rounds: planner {', '.join(f'{t:.3f}' for t in planner_times)}; "
          f"aiplatform {', '.join(f'{t:.3f}' for t in gapic_times)}")
    return 0 if ratio >= args.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
