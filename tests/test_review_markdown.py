"""The PR view (markdown of a priced plan): a realistic change read cell by cell, and GitHub's size limit.

The realistic change is planned against the emulator and priced with
tests/testdata/cost/prices.json (figures worked out in test_cost.py): a CPU create, a sweep
of five identical T4 creates, a GPU replace of a running job (1 → 2 T4, new image) and the
delete of a running 8 × A100 job. `PLANNER_REVIEW_MD=FILE` keeps the markdown for
tests/review_screenshot.py (HTML + headless Chromium screenshot).
"""

from __future__ import annotations

import os
from pathlib import Path

from plan_harness import CREATED_AT, client_for, seed_case
from test_cost import OLD_A100, OLD_T4, PRICES

from planner.apimodel import LABEL_ADDRESS, LABEL_MANAGED_BY, LABEL_WORKSPACE, MANAGED_BY_VALUE
from planner.canonical import canonical_spec, spec_hash
from planner.config.model import Desired, DesiredJob
from planner.config.validate import load_desired
from planner.emulator import ManualClock
from planner.operations.plan import refresh_and_plan
from planner.plans.engine import make_plan
from planner.plans.model import PlanOptions
from planner.pricing.cost import annotate
from planner.pricing.prices import load_book
from planner.refresh import Live, live_job
from planner.render import render_plan
from planner.render.markdown import DETAILS_BUDGET
from planner.state.model import JobRecord, State

GITHUB_LIMIT = 65_536

SWEEP = "".join(
    f"""
  sweep-lr-{i}:
    displayName: sweep-lr-{i}
    labels: {{team: vision}}
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {{machineType: n1-standard-8, acceleratorType: NVIDIA_TESLA_T4, acceleratorCount: 1}}
          replicaCount: 1
          containerSpec: {{imageUri: us-docker.pkg.dev/demo/train/sweep:2, args: [--lr, "0.{i}"]}}
      scheduling: {{timeout: 10h}}
"""
    for i in range(1, 6)
)

CONFIG = f"""\
version: 1
project: demo-project
location: us-central1
jobs:
  a-new-cpu:
    displayName: a-new-cpu
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {{machineType: n1-standard-4}}
          replicaCount: 1
          containerSpec: {{imageUri: us-docker.pkg.dev/demo/train/cpu:1}}
  b-t4:
    displayName: b-t4
    jobSpec:
      workerPoolSpecs:
        - machineSpec: {{machineType: n1-standard-8, acceleratorType: NVIDIA_TESLA_T4, acceleratorCount: 2}}
          replicaCount: 1
          containerSpec: {{imageUri: us-docker.pkg.dev/demo/train/t4:1.5}}
      scheduling: {{timeout: 10h}}
{SWEEP}"""

CONTEXT = {"commit": "0123456789abcdef0123", "pr": "42", "actor": "alice", "run": "777", "planner": "0.1.0"}


def realistic_markdown(tmp_path: Path, emulator_factory) -> str:  # type: ignore[no-untyped-def]
    (tmp_path / "jobs.yaml").write_text(CONFIG)
    desired = load_desired([tmp_path / "jobs.yaml"], variables={})
    emulator = emulator_factory(clock=ManualClock(1_795_000_000.0), seed=7)
    case = {
        "live": [
            {"id": "t4", "address": "b-t4", "state": "JOB_STATE_RUNNING", "spec": OLD_T4},
            {"id": "a100", "address": "c-a100", "state": "JOB_STATE_RUNNING", "spec": OLD_A100},
        ],
        "state": {"b-t4": {"job": "t4", "spec": OLD_T4}, "c-a100": {"job": "a100", "spec": OLD_A100}},
    }
    _names, prior = seed_case(emulator, case, desired)
    with client_for(emulator) as client:
        planned = refresh_and_plan(client, desired, prior, workspace="default", created_at=CREATED_AT)
    plan = annotate(planned.plan, planned.live, prior, load_book(str(PRICES)))
    return render_plan(plan, "markdown", context=CONTEXT)


def test_realistic_change(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    md = realistic_markdown(tmp_path, emulator_factory)
    keep = os.environ.get("PLANNER_REVIEW_MD")
    if keep:
        Path(keep).write_text(md)
    lines = md.splitlines()
    assert lines[2] == "commit `0123456789ab` · PR #42 · by @alice · run 777 · planner 0.1.0"
    assert "|  | Job | Change | Resources | Cost | Project / location | Console |" in lines
    rows = [line for line in lines if line.startswith("| `")]
    assert rows[0] == (
        "| `+` | `a-new-cpu` | create (new) | n1-standard-4 × 1 | +$0.22/h, up to $36.96 "
        "| `demo-project` / `us-central1` | — |"
    )
    # The replace says what changed, the new resources, what it adds and what it stops.
    assert rows[1].startswith(
        "| `-/+` | `b-t4` | replace: 1 → 2 T4, image …:1.4 → …:1.5 | 2 × T4 · n1-standard-8 × 1 "
        "| +$1.12/h, up to $11.20; stops $0.77/h | `demo-project` / `us-central1` | [`"
    )
    assert "](https://console.cloud.google.com/ai/platform/locations/us-central1/training/" in rows[1]
    assert rows[2].startswith(
        "| `-` | `c-a100` | delete (running; removed from config) | 8 × A100 · a2-highgpu-8g × 1 | stops $34.02/h |"
    )
    # Five identical T4 creates are one row: 0.40 + 0.35 + 0.02 = 0.77 per hour each, 7.70 for 10 h.
    assert rows[3] == (
        "| `+` | `sweep-lr-…` ×5 | create 5 jobs (a sweep) | 1 × T4 · n1-standard-8 × 1 "
        "| each +$0.77/h, up to $7.70 | `demo-project` / `us-central1` | — |"
    )
    assert len(rows) == 4
    # Totals: adds 0.22 + 1.12 + 5 × 0.77 = 5.19/h, up to 36.96 + 11.20 + 5 × 7.70 = 86.66; stops 0.77 + 34.02.
    assert "**Cost: +$5.19/h, up to +$86.66 (timeouts) for 7 new jobs; stops $34.79/h**  " in lines
    # Accelerators: +2 and +5 T4 new, -1 T4 and -8 A100 stopped; net rate 5.19 - 34.79 = -29.60.
    assert "Net: -8 A100, +6 T4, -$29.60/h" in lines
    # Each warning once (not in the table, the alert and the details).
    assert md.count("which is running") == 2
    assert "> - `b-t4`: replacing its job, which is running" in lines
    assert md.count("boot disk not counted") == 0
    # One details block per table row: the sweep's says which jobs, what differs, and one spec.
    assert md.count("<details>") == 4
    assert "- jobs: `sweep-lr-1`, `sweep-lr-2`, `sweep-lr-3`, `sweep-lr-4`, `sweep-lr-5`" in lines
    assert "- they differ in: `jobSpec.workerPoolSpecs[0].containerSpec.args`" in lines


def test_thousand_changes_stay_under_githubs_limit() -> None:
    book = load_book(str(PRICES))
    jobs = {}
    for i in range(600):  # distinct resources, so no sweep folds them
        body = {
            "displayName": f"job-{i}",
            "jobSpec": {
                "workerPoolSpecs": [
                    {
                        "machineSpec": {"machineType": "n1-standard-4"},
                        "replicaCount": str(i + 1),
                        "containerSpec": {
                            "imageUri": f"us-docker.pkg.dev/demo/train/model:{i}",
                            "args": ["--i", str(i)],
                        },
                    }
                ]
            },
        }
        address = f"create-job-with-a-long-address-{i:04d}"
        jobs[address] = DesiredJob(address, "demo-project", "us-central1", body)
    live = {}
    records = {}
    for i in range(400):
        address = f"removed-job-with-a-long-address-{i:04d}"
        name = f"projects/demo-project/locations/us-central1/customJobs/{9_000_000_000_000 + i}"
        spec = canonical_spec(
            {
                "displayName": address,
                "jobSpec": {
                    "workerPoolSpecs": [
                        {
                            "machineSpec": {
                                "machineType": "a2-highgpu-8g",
                                "acceleratorType": "NVIDIA_TESLA_A100",
                                "acceleratorCount": 8,
                            },
                            "replicaCount": str(i + 1),
                            "containerSpec": {"imageUri": "img:1"},
                        }
                    ]
                },
            }
        )
        labels = {LABEL_MANAGED_BY: MANAGED_BY_VALUE, LABEL_ADDRESS: address, LABEL_WORKSPACE: "default"}
        live[name] = live_job({**spec, "name": name, "state": "JOB_STATE_RUNNING", "labels": labels})
        records[address] = JobRecord(
            address, name, "demo-project", "us-central1", spec_hash(spec), spec, "JOB_STATE_RUNNING"
        )
    prior = State(lineage="l", serial=1, jobs=records)
    plan = make_plan(Desired(jobs=dict(sorted(jobs.items()))), prior, Live(jobs=live), PlanOptions())
    plan = annotate(plan, Live(jobs=live), prior, book)
    assert len([c for c in plan.changes if c.cost]) == 1000
    md = render_plan(plan, "markdown", context=CONTEXT)
    assert len(md) < GITHUB_LIMIT
    assert len(md) < DETAILS_BUDGET + 5_000
    assert "rows left out to stay within GitHub's comment limit" in md
    assert "left out to keep this comment within GitHub's size limit" in md
    # The totals are always there, whatever was left out.
    assert "**Cost: +$" in md and "for 600 new jobs" in md


def test_a_thousand_job_sweep_is_one_row() -> None:
    book = load_book(str(PRICES))
    body = {
        "displayName": "s",
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-4"},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": "i:1"},
                }
            ]
        },
    }
    jobs = {f"sweep-{i:04d}": DesiredJob(f"sweep-{i:04d}", "p", "us-central1", body) for i in range(1000)}
    plan = annotate(make_plan(Desired(jobs=jobs), None, Live(jobs={}), PlanOptions()), Live(jobs={}), None, book)
    md = render_plan(plan, "markdown")
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert rows == [
        "| `+` | `sweep-0…` ×1000 | create 1000 jobs (a sweep) | n1-standard-4 × 1 | each +$0.22/h, up to $36.96 "
        "| `p` / `us-central1` | — |"
    ]
    # 1000 × 0.22 = 220 per hour; 1000 × 36.96 = 36,960 up to the timeouts.
    assert "**Cost: +$220.00/h, up to +$36,960.00 (timeouts) for 1000 new jobs; stops $0.00/h**" in md
    assert len(md) < GITHUB_LIMIT
    # The text view's cost summary folds the sweep the same way.
    text = render_plan(plan, "text")
    assert "    + sweep-0… ×1000  n1-standard-4 × 1  each +$0.22/h, up to $36.96\n" in text


def _system_python_with_markdown() -> str | None:
    import shutil
    import subprocess

    for python in ("/usr/bin/python3", shutil.which("python3")):
        if python and subprocess.run([python, "-c", "import markdown"], capture_output=True).returncode == 0:
            return python
    return None


def test_realistic_change_in_a_real_browser(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    """The markdown as HTML in headless Chromium (skipped where chromium or python-markdown is missing)."""
    import shutil
    import subprocess

    import pytest

    python = _system_python_with_markdown()
    if shutil.which("chromium") is None or python is None:
        pytest.skip("needs chromium and python3-markdown (Debian packages)")
    source = tmp_path / "review.md"
    source.write_text(realistic_markdown(tmp_path, emulator_factory))
    png = tmp_path / "review.png"
    script = Path(__file__).resolve().parent / "review_screenshot.py"
    subprocess.run([python, str(script), str(source), str(png)], check=True, capture_output=True, timeout=180)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    page = png.with_suffix(".html").read_text()
    assert "<td>replace: 1 → 2 T4, image …:1.4 → …:1.5</td>" in page
    assert '<blockquote class="warning">' in page
