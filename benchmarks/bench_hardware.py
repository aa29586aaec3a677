"""Time the hardware checks against the whole validation they are part of (target: under 10 %).

    .venv/bin/python benchmarks/bench_hardware.py [--jobs 10000] [--repeat 3]

Loads bench_validate's 10,000-job file with `load_desired` (which runs the checks), then times
`planner.hardware.check_job` alone over the same jobs, as a fresh and as a warm catalog (a run
starts with a fresh one; its memo fills within the first few jobs).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench_validate import make_config

from planner.config.validate import load_desired
from planner.hardware import check_job, packaged_catalog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobs.yaml"
        path.write_text(make_config(args.jobs), encoding="utf-8")
        loads, checks = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            desired = load_desired([path], variables={})
            loads.append(time.perf_counter() - start)
            catalog = replace(packaged_catalog(), memo={})  # fresh memo, as a new run has
            jobs = [(dict(job.body), job.location) for job in desired.jobs.values()]
            start = time.perf_counter()
            for body, location in jobs:
                check_job(body, location, catalog)
            checks.append(time.perf_counter() - start)
    best_load, best_check = min(loads), min(checks)
    print(f"{args.jobs} jobs: load_desired best {best_load:.2f}s; check_job alone best {best_check * 1000:.1f} ms "
          f"= {100 * best_check / best_load:.1f} % of it")
    return 0 if best_check < 0.1 * best_load else 1


if __name__ == "__main__":
    raise SystemExit(main())
