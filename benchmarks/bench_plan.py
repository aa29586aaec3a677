"""A no-change plan of 10,000 managed jobs with 25 ms of API latency, against GET-per-job.

Measures `planner plan --detailed-exitcode` as a user runs it (a subprocess: YAML load and
validation, state read, labelled paginated refresh, plan, text rendering) against an
emulator process with `--latency-ms 25`, and, in the same run, the baseline: refreshing
the same 10,000 jobs one GET at a time with 10 in parallel. Targets: under 1.5 s wall, at
least 18x faster than the baseline, peak memory under 200 MB.

With `--baseline-ref REF` (default 67c57d1, the commit before the one-way data flow
work; "" for none) the same plan is also run by planner as of REF (its sources extracted
with `git archive` into the temporary directory), alternating with this checkout's runs
against the same emulator, so both see the same machine load; this one must be as fast.

    .venv/bin/python benchmarks/bench_plan.py [--jobs 10000] [--latency-ms 25] [--repeat 3] [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import compileall
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from common import LOCATION, PROJECT, compile_planner, emulator_process, median, planner_cmd, run_measured, write_config

from planner.api import VertexClient
from planner.canonical import canonical_spec, request_body, spec_hash
from planner.config.validate import load_desired
from planner.emulator import Emulator, EmulatorConfig
from planner.state import LocalStore
from planner.state.model import JobRecord, State


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-parallelism", type=int, default=10)
    parser.add_argument("--baseline-ref", default="67c57d1", help="Also time planner as of this git commit.")
    args = parser.parse_args()
    compile_planner()

    with tempfile.TemporaryDirectory(prefix="planner-bench-plan-") as tmp:
        work = Path(tmp)
        config = write_config(work / "jobs.yaml", args.jobs)
        data = work / "emulator.json"
        print(f"config: {args.jobs} jobs, {config.stat().st_size / 1e6:.1f} MB")

        # Seed the emulator's data file with the jobs exactly as planner creates them, and the state.
        t0 = time.perf_counter()
        desired = load_desired([config], variables={})
        seeder = Emulator(EmulatorConfig(data_path=data, run_seconds=3600.0, seed=1))
        records = {}
        for address, job in desired.jobs.items():
            canonical = canonical_spec(job.body)
            resource = seeder.seed_job(PROJECT, LOCATION, request_body(canonical, address, "default"))
            records[address] = JobRecord(
                address=address,
                name=resource["name"],
                project=PROJECT,
                location=LOCATION,
                spec_hash=spec_hash(canonical),
                spec=canonical,
                last_state="JOB_STATE_RUNNING",
            )
        seeder.stop()
        state_path = work / "state" / "default.json"
        LocalStore(state_path).write(State(lineage="bench", serial=0, jobs=records))
        names = [r.name for r in records.values()]
        print(f"seeded {len(names)} jobs and their state in {time.perf_counter() - t0:.1f}s")

        before = _extract(args.baseline_ref, work / "before") if args.baseline_ref else None
        with emulator_process(data, "--latency-ms", str(args.latency_ms), "--run-seconds", "3600") as url:
            command = planner_cmd(
                "plan", str(config), "--endpoint", url, "--state", str(state_path), "--detailed-exitcode", "-q"
            )
            here = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            runs, before_runs = [], []
            # One run first, not counted: the fresh emulator encodes its pages once and caches them
            # (its cost, not planner's); the baseline's GETs come after the plans, also warm.
            for i in range(args.repeat + 1):
                for env, out in [(here, runs)] + ([({"PYTHONPATH": str(before)}, before_runs)] if before else []):
                    run = run_measured(command, cwd=work, env=env)
                    if run.returncode != 0:
                        print(f"plan exited {run.returncode} (expected 0, no changes):\n{run.stderr}", file=sys.stderr)
                        return 1
                    if i:
                        out.append(run)
            plan_s = median([r.seconds for r in runs])
            peak = max(r.peak_rss_mb for r in runs)

            http = httpx.Client(timeout=60.0, limits=httpx.Limits(max_connections=args.baseline_parallelism))
            client = VertexClient(http, endpoint=url)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.baseline_parallelism) as pool:
                fetched = sum(1 for _ in pool.map(client.get_job, names))
            baseline_s = time.perf_counter() - t0
            client.close()

    print()
    print(f"planner plan (no changes, {args.jobs} jobs, latency {args.latency_ms:g} ms):")
    print(f"  wall time     median {plan_s:.2f} s of {[round(r.seconds, 2) for r in runs]}   (target < 1.5 s)")
    print(f"  peak memory   {peak:.0f} MB of {[round(r.peak_rss_mb) for r in runs]}   (target < 200 MB)")
    ok = True
    if before_runs:
        before_s = median([r.seconds for r in before_runs])
        print(f"planner as of {args.baseline_ref}, same runs, alternating:")
        print(f"  wall time     median {before_s:.2f} s of {[round(r.seconds, 2) for r in before_runs]}")
        print(f"  peak memory   {max(r.peak_rss_mb for r in before_runs):.0f} MB")
        print(f"  this checkout takes {plan_s / before_s:.2f}x its time   (target <= 1, within noise)")
        ok = plan_s <= before_s * 1.05
    print(f"baseline: {fetched} GETs, {args.baseline_parallelism} in parallel: {baseline_s:.2f} s")
    print(f"ratio: plan is {baseline_s / plan_s:.1f}x faster than GET-per-job   (target >= 18x)")
    ok = ok and plan_s < 1.5 and baseline_s / plan_s >= 18 and peak < 200
    print("RESULT:", "targets met" if ok else "targets NOT met")
    return 0 if ok else 1


def _extract(ref: str, into: Path) -> Path:
    """planner's sources as of `ref` (git archive of this repository), byte-compiled."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "archive", ref, "planner"], cwd=repo, check=True, capture_output=True).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    compileall.compile_dir(str(into / "planner"), quiet=1)
    return into


if __name__ == "__main__":
    sys.exit(main())
