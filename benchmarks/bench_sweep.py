"""Time validating a sweep (`matrix:` over `extends:`) against the same jobs written out by hand.

    .venv/bin/python benchmarks/bench_sweep.py [--lrs 10] [--seeds 100] [--repeat 3]

Writes two files to a temporary directory: one job with a `lrs x seeds` matrix extending a
template, and the `lrs x seeds` jobs it expands to, each written in full. Times `load_desired`
on each (median of --repeat runs) and checks that both give the same job bodies.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from planner.config.validate import load_desired

HEADER = """\
version: 1
project: bench-project
location: us-central1
"""

TEMPLATE = """\
templates:
  l4-spot:
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {machineType: g2-standard-8, acceleratorType: NVIDIA_L4, acceleratorCount: 1}
          replicaCount: 1
          containerSpec:
            imageUri: us-docker.pkg.dev/bench/repo/train:1
            args: ["--lr=${matrix.lr}", "--seed=${matrix.seed}"]
      scheduling: {strategy: SPOT}
jobs:
  train:
    extends: l4-spot
    displayName: train-${matrix.seed}
    labels: {seed: "${matrix.seed}"}
    maxJobs: 100000
    matrix:
"""

JOB = """\
  train-{n}:
    displayName: train-{seed}
    labels: {{seed: "{seed}"}}
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {{machineType: g2-standard-8, acceleratorType: NVIDIA_L4, acceleratorCount: 1}}
          replicaCount: 1
          containerSpec:
            imageUri: us-docker.pkg.dev/bench/repo/train:1
            args: ["--lr={lr}", "--seed={seed}"]
      scheduling: {{strategy: SPOT}}
"""


def timed(path: Path, repeat: int) -> tuple[float, list[str]]:
    times = []
    bodies: list[str] = []
    for _ in range(repeat):
        start = time.perf_counter()
        desired = load_desired([path], variables={})
        times.append(time.perf_counter() - start)
        bodies = sorted(json.dumps(j.body, sort_keys=True) for j in desired.jobs.values())
    return statistics.median(times), bodies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lrs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    lrs = [repr((i + 1) / 1000) for i in range(args.lrs)]  # as YAML reads them back
    seeds = list(range(1, args.seeds + 1))
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "sweep.yaml"
        sweep.write_text(
            HEADER + TEMPLATE + f"      lr: [{', '.join(lrs)}]\n      seed: [{', '.join(map(str, seeds))}]\n"
        )
        written = Path(tmp) / "written.yaml"
        written.write_text(
            HEADER
            + "jobs:\n"
            + "".join(JOB.format(n=n, lr=lr, seed=s) for n, (lr, s) in enumerate((lr, s) for lr in lrs for s in seeds))
        )
        sweep_s, sweep_bodies = timed(sweep, args.repeat)
        written_s, written_bodies = timed(written, args.repeat)
    if sweep_bodies != written_bodies:
        print("the sweep and the written-out jobs differ", file=sys.stderr)
        return 1
    jobs = len(sweep_bodies)
    print(f"{jobs} jobs: sweep {sweep_s:.3f} s (template + matrix), written out {written_s:.3f} s", end="")
    print(f" (median of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
