"""Time loading and validating a 10,000-job desired-state file (target: under 0.6 s).

    .venv/bin/python benchmarks/bench_validate.py [--jobs 10000] [--repeat 3]

Writes the file to a temporary directory, times `load_desired` (the values tier, variables,
defaults, schema checks, normalisation) several times under the CLI's collector threshold
(`cli.main`), then the first read of the config hash, which `load_desired` leaves to whoever
reads it (a plan does, `planner validate` does not), and times pyyaml's
`yaml.load(..., Loader=CSafeLoader)` on the same file as the baseline, which only parses (no
positions, no validation).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from planner.config.validate import load_desired

HEADER = """\
version: 1
project: ${var.project:-bench-project}
location: us-central1
defaults:
  labels: {team: vision, cost-center: ml-1234}
  jobSpec:
    scheduling: {timeout: 2h}
jobs:
"""

JOB = """\
  job-{i:05d}:
    displayName: train-{i:05d}
    labels: {{shard: s{shard}}}
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {{machineType: n1-standard-8, acceleratorType: NVIDIA_TESLA_T4, acceleratorCount: 1}}
          replicaCount: 1
          containerSpec:
            imageUri: us-docker.pkg.dev/bench/repo/train:1.{minor}
            args: [--shard, "{i}"]
            env: [{{name: SEED, value: "{i}"}}]
    lifecycle: {{rerunOn: [JOB_STATE_FAILED]}}
"""


def make_config(jobs: int) -> str:
    return HEADER + "".join(JOB.format(i=i, shard=i % 17, minor=i % 9) for i in range(jobs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    gc.set_threshold(100_000, 50, 100)  # as planner.cli.main sets it

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobs.yaml"
        path.write_text(make_config(args.jobs), encoding="utf-8")
        size = path.stat().st_size
        print(f"{args.jobs} jobs, {size / 1e6:.2f} MB, libyaml C parser: {yaml.__with_libyaml__}")

        ours = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            desired = load_desired([path], variables={})
            ours.append(time.perf_counter() - start)
        assert len(desired.jobs) == args.jobs
        print("load_desired (load + validate):  " + "  ".join(f"{t:.2f}s" for t in ours), end="")
        print(f"   best {min(ours):.2f}s  median {statistics.median(ours):.2f}s")
        start = time.perf_counter()
        assert len(desired.config_hash) == 64
        print(f"config hash, first read:          {time.perf_counter() - start:.2f}s (a plan reads it)")

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        start = time.perf_counter()
        with path.open(encoding="utf-8") as stream:
            yaml.load(stream, Loader=loader)
        baseline = time.perf_counter() - start
        print(f"yaml.load(CSafeLoader), parse only: {baseline:.2f}s")
        print(f"ratio load_desired / CSafeLoader:   {min(ours) / baseline:.2f}")
        target = 0.6
        verdict = "OK" if min(ours) < target else "SLOWER THAN TARGET"
        print(f"target < {target}s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
