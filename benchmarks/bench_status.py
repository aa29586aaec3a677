"""`planner status` of 10,000 managed jobs: wall time and requests, as a user runs it.

Seeds an emulator data file and a state with N labelled jobs, then runs `planner status
--format json` (a subprocess: state read, one labelled paginated listing per location,
JSON rendering) against an emulator process, `--repeat` times after one warm-up run (the
fresh emulator encodes its pages once). The requests of one run are counted by a second
run against an emulator in this process on the same data (its request log is here). Targets: under 2 s wall, at most
ceil(N / page size) list requests for the one location, no GET.

    .venv/bin/python benchmarks/bench_status.py [--jobs 10000] [--latency-ms 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import LOCATION, PROJECT, compile_planner, emulator_process, median, planner_cmd, run_measured

from planner.emulator import Emulator, EmulatorConfig
from planner.state import LocalStore
from planner.state.model import JobRecord, State

BODY = {
    "displayName": "train",
    "jobSpec": {
        "workerPoolSpecs": [
            {
                "machineSpec": {"machineType": "n1-standard-8", "acceleratorType": "NVIDIA_TESLA_T4",
                                "acceleratorCount": 1},
                "replicaCount": "1",
                "containerSpec": {"imageUri": "us-docker.pkg.dev/bench/train/model:1", "args": ["--epochs", "10"]},
            }
        ]
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compile_planner()

    with tempfile.TemporaryDirectory(prefix="planner-bench-status-") as tmp:
        work = Path(tmp)
        data = work / "emulator.json"
        t0 = time.perf_counter()
        seeder = Emulator(EmulatorConfig(data_path=data, run_seconds=3600.0, seed=1))
        records = {}
        for i in range(args.jobs):
            address = f"job-{i:05d}"
            labels = {"managed-by": "planner", "planner-workspace": "default", "planner-address": address}
            state = ("JOB_STATE_FAILED", "JOB_STATE_SUCCEEDED", None)[i % 3]
            job = seeder.seed_job(PROJECT, LOCATION, BODY, labels=labels, state=state)
            records[address] = JobRecord(address, job["name"], PROJECT, LOCATION, "", {}, "JOB_STATE_QUEUED")
        page_size = seeder.config.max_page_size
        seeder.stop()
        state_path = work / "state" / "default.json"
        LocalStore(state_path).write(State(lineage="bench", serial=0, jobs=records))
        print(f"seeded {args.jobs} jobs and their state in {time.perf_counter() - t0:.1f}s")

        # Requests of one run, counted by an emulator in this process on the same data.
        with Emulator(EmulatorConfig(data_path=data, run_seconds=3600.0)) as counter:
            proc = subprocess.run(
                planner_cmd("status", "--format", "json", "--endpoint", counter.url, "--state", str(state_path)),
                capture_output=True, text=True, cwd=work, check=False,
            )
            if proc.returncode != 0:
                print(f"status exited {proc.returncode}:\n{proc.stderr}", file=sys.stderr)
                return 1
            rows = len(json.loads(proc.stdout)["jobs"])
            calls = Counter(r.rpc for r in counter.request_log.records)

        with emulator_process(data, "--latency-ms", str(args.latency_ms), "--run-seconds", "3600") as url:
            command = planner_cmd("status", "--format", "json", "--endpoint", url, "--state", str(state_path))
            runs = [run_measured(command, cwd=work) for _ in range(args.repeat + 1)]
        if any(r.returncode != 0 for r in runs):
            print(f"status failed:\n{runs[-1].stderr}", file=sys.stderr)
            return 1
        warmup, runs = runs[0], runs[1:]

    limit = math.ceil(args.jobs / page_size)
    wall = median([r.seconds for r in runs])
    print()
    print(f"planner status --format json ({args.jobs} jobs, latency {args.latency_ms:g} ms):")
    print(f"  rows          {rows}")
    print(f"  requests      {dict(calls)}   (target: list <= {limit}, no get)")
    print(f"  warm-up run   {warmup.seconds:.2f} s (not counted)")
    print(f"  wall time     median {wall:.2f} s of {[round(r.seconds, 2) for r in runs]}   (target < 2 s)")
    print(f"  peak memory   {max(r.peak_rss_mb for r in runs):.0f} MB")
    ok = rows == args.jobs and calls.get("list", 0) <= limit and set(calls) == {"list"} and wall < 2.0
    print("RESULT:", "targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
