"""Shared parts of the benchmark scripts: config generation, an emulator subprocess, timing.

Benchmarks print figures and ratios against a baseline measured in the same run; they are
never timed assertions in the test suite. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT = "bench-project"
LOCATION = "us-central1"


def job_yaml(index: int) -> str:
    return (
        f"  job-{index:05d}:\n"
        f"    displayName: job-{index:05d}\n"
        f"    labels: {{shard: s{index % 16}}}\n"
        f"    jobSpec:\n"
        f"      workerPoolSpecs:\n"
        f"        - machineSpec: {{machineType: n1-standard-4}}\n"
        f"          replicaCount: 1\n"
        f"          containerSpec:\n"
        f"            imageUri: us-docker.pkg.dev/bench/train/model:{index % 7}\n"
        f'            args: [--epochs, "{index % 50}", --seed, "{index}"]\n'
        f"            env: [{{name: RUN, value: r{index}}}]\n"
        f"      scheduling: {{timeout: 2h}}\n"
    )


def write_config(path: Path, count: int) -> Path:
    lines = [
        "version: 1",
        f"project: {PROJECT}",
        f"location: {LOCATION}",
        "defaults:",
        "  labels: {team: bench}",
        "jobs:",
    ]
    text = "\n".join(lines) + "\n" + "".join(job_yaml(i) for i in range(count))
    path.write_text(text)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def planner_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "planner", *args]


def compile_planner() -> None:
    """Byte-compile planner's modules first, as pip does when it installs a package.

    With PYTHONDONTWRITEBYTECODE set (as on CI machines), or after an edit, every measured
    run would otherwise compile planner's source again: a tenth of a second that no
    installed planner spends.
    """
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "planner"), quiet=1)


@contextmanager
def emulator_process(data: Path, *extra: str) -> Iterator[str]:
    """`planner emulator serve` in its own process (so it does not share the measured GIL)."""
    port = free_port()
    proc = subprocess.Popen(
        planner_cmd("emulator", "serve", "--port", str(port), "--data", str(data), *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/v1/projects/{PROJECT}/locations/{LOCATION}/customJobs?pageSize=1", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"emulator did not start: {err}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    returncode: int
    stderr: str


# Runs a command and writes "<seconds> <peak RSS in KiB> <exit status>" to a file. The measured
# command is started from this small process, not from the benchmark's: Linux counts the
# memory a process had before exec in its peak RSS, and a benchmark that has just seeded
# 10,000 jobs would lend the command a hundred megabytes it never used.
_MEASURE = """
import os, subprocess, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
with open(out + ".stderr", "w") as err:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
with open(out, "w") as f:
    f.write(f"{elapsed} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_measured(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Wall time and peak RSS of one subprocess (RSS from wait4's rusage, see _MEASURE).

    stderr goes to a file: progress lines would fill a pipe nobody reads and block the child.
    """
    out = cwd / f".measure-{time.monotonic_ns()}"
    subprocess.run(
        [sys.executable, "-I", "-S", "-c", _MEASURE, str(out), *cmd],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=True,
    )
    seconds, peak_kib, code = out.read_text().split()
    stderr = Path(f"{out}.stderr").read_text(errors="replace")
    return Run(float(seconds), int(peak_kib) / 1024, int(code), stderr)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def self_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
