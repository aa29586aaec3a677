"""Creating 1,000 jobs with `planner apply --parallelism 16` under 25 ms of API latency.

Target (from the apply issue): the apply with latency takes at most
1.5 x (jobs x latency / parallelism) plus the same apply's time with no latency, both
measured in this run against an emulator process. Each apply starts from empty state and
an empty emulator, and is `planner apply --auto-approve` run as a user would.

    .venv/bin/python benchmarks/bench_apply.py [--jobs 1000] [--latency-ms 25] [--parallelism 16]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import compile_planner, emulator_process, planner_cmd, run_measured, write_config


def apply_once(work: Path, config: Path, latency_ms: float, parallelism: int, tag: str) -> float:
    data = work / f"emulator-{tag}.json"
    state = work / f"state-{tag}" / "default.json"
    with emulator_process(data, "--latency-ms", str(latency_ms), "--run-seconds", "3600") as url:
        run = run_measured(
            planner_cmd(
                "apply",
                str(config),
                "--auto-approve",
                "--parallelism",
                str(parallelism),
                "--endpoint",
                url,
                "--state",
                str(state),
                "-q",
                "--no-color",
            ),
            cwd=work,
        )
    if run.returncode != 0:
        raise SystemExit(f"apply ({tag}) exited {run.returncode}:\n{run.stderr[-3000:]}")
    jobs = json.loads(state.read_text())["jobs"]
    return run.seconds if jobs else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--parallelism", type=int, default=16)
    args = parser.parse_args()
    compile_planner()
    with tempfile.TemporaryDirectory(prefix="planner-bench-apply-") as tmp:
        work = Path(tmp)
        config = write_config(work / "jobs.yaml", args.jobs)
        no_latency = apply_once(work, config, 0.0, args.parallelism, "nolatency")
        with_latency = apply_once(work, config, args.latency_ms, args.parallelism, "latency")
    ideal = args.jobs * args.latency_ms / 1000 / args.parallelism
    budget = 1.5 * ideal + no_latency
    print(f"apply of {args.jobs} creates, parallelism {args.parallelism}:")
    print(f"  no latency:               {no_latency:.2f} s")
    print(f"  {args.latency_ms:g} ms latency:            {with_latency:.2f} s")
    print(f"  ideal latency-bound time: {ideal:.2f} s  (jobs x latency / parallelism)")
    print(f"  budget 1.5 x ideal + no-latency time = {budget:.2f} s")
    print(
        f"  overhead of latency: {with_latency - no_latency:.2f} s = {(with_latency - no_latency) / ideal:.2f} x ideal"
    )
    ok = with_latency <= budget
    print("RESULT:", "target met" if ok else "target NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
