"""Run the real `planner` command line in a subprocess against an emulator, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.emulator import Emulator

WORKSPACE = "default"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


class Cli:
    """`planner …` in `cwd`, pointed at one emulator and one local state file."""

    def __init__(
        self, cwd: Path, emulator: Emulator, *, state: Path | str | None = None, env: dict[str, str] | None = None
    ):
        self.cwd = cwd
        self.emulator = emulator
        self.state = state or cwd / "state" / f"{WORKSPACE}.json"
        self.extra_env = env or {}
        self._count = 0

    def argv(self, *args: str, backend: bool = True) -> list[str]:
        extra = ["--endpoint", self.emulator.url, "--state", str(self.state)] if backend else []
        return [sys.executable, "-m", "planner", *args, *extra]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
        env["NO_COLOR"] = "1"
        env.update(self.extra_env)
        return env

    def run(self, *args: str, backend: bool = True, timeout: float = 120, stdin: str | None = None) -> Result:
        proc = subprocess.run(
            self.argv(*args, backend=backend),
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            input=stdin,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def start(self, *args: str) -> Started:
        """Run in the background; output goes to files (a full pipe would block the child)."""
        self._count += 1
        out = self.cwd / f".out-{self._count}.txt"
        err = self.cwd / f".err-{self._count}.txt"
        with out.open("w") as fo, err.open("w") as fe:
            proc = subprocess.Popen(self.argv(*args), cwd=self.cwd, stdout=fo, stderr=fe, text=True, env=self.env())
        return Started(proc, out, err)


class Started:
    """A background `planner` run."""

    def __init__(self, proc: subprocess.Popen[str], out: Path, err: Path):
        self.proc = proc
        self.pid = proc.pid
        self._out = out
        self._err = err

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.kill()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout=timeout)

    def finish(self, timeout: float = 180) -> Result:
        code = self.proc.wait(timeout=timeout)
        return Result(code, self._out.read_text(), self._err.read_text())


def labelled_jobs(emulator: Emulator, project: str, location: str, workspace: str = WORKSPACE) -> list[dict[str, Any]]:
    """Every job the emulator holds with planner's labels for the workspace (read directly: no faults)."""
    query = f'labels.managed-by="planner" AND labels.planner-workspace="{workspace}"'
    return emulator.list_jobs(project, location, query)


def duplicates(jobs: list[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(j["labels"]["planner-address"] for j in jobs)
    return {a: n for a, n in counts.items() if n > 1}


def config_text(count: int, *, project: str = "demo-project", image_tag: str = "1", extra: str = "") -> str:
    lines = ["version: 1", f"project: {project}", "location: us-central1", "jobs:"]
    for i in range(count):
        lines += [
            f"  job-{i:04d}:",
            f"    displayName: job-{i:04d}",
            "    jobSpec:",
            "      workerPoolSpecs:",
            "        - machineSpec: {machineType: n1-standard-4}",
            "          replicaCount: 1",
            "          containerSpec:",
            f"            imageUri: 'us-docker.pkg.dev/demo/train/model:{image_tag}'",
            f"            args: ['--i', '{i}']",
        ]
        if extra:
            lines.append(extra)
    return "\n".join(lines) + "\n"
