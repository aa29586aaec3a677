"""Throughput of the Vertex AI emulator: list pages of 100 jobs per second and creates per second.

The emulator runs in its own process (as `planner emulator serve` would) on a data file
pre-seeded with 10,000 jobs; client threads (in two processes, so the clients' own JSON work
does not share one interpreter lock) use httpx with keep-alive, no injected latency. Besides
the rate achieved, the server's CPU time per request is read from /proc: on a machine that
other work keeps busy, that is the steadier figure. The emulator memoises list answers until
the store or a listed job's state changes, so a second list workload uses a new filter on
every walk to show the cost without that memo. The baseline, measured in the same run and the same way, is a bare
ThreadingHTTPServer (HTTP/1.1) answering `{}`: the ceiling of the standard-library HTTP stack
and the client on this machine, to which the emulator's figures are compared.

    .venv/bin/python benchmarks/bench_emulator.py [--seconds 4] [--processes 2] [--threads 2] [--jobs 10000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from planner.emulator import Emulator, EmulatorConfig

PARENT = "projects/bench/locations/us-central1"
JOBS = f"/v1/{PARENT}/customJobs"
FILTER = "labels.managed-by=planner AND labels.planner-workspace=default"
TARGET_RPS = 300.0


def job_body(i: int) -> dict[str, Any]:
    return {
        "displayName": f"bench-{i}",
        "labels": {"managed-by": "planner", "planner-workspace": "default", "planner-address": f"job-{i}"},
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": {"machineType": "n1-standard-8", "acceleratorType": "NVIDIA_TESLA_T4",
                                    "acceleratorCount": 1},
                    "replicaCount": "1",
                    "containerSpec": {"imageUri": "us-docker.pkg.dev/p/r/train:1.4", "args": ["--epochs", "10"],
                                      "env": [{"name": "SEED", "value": str(i)}]},
                }
            ],
            "scheduling": {"timeout": "3600s"},
            "baseOutputDirectory": {"outputUriPrefix": f"gs://bench/out/{i}/"},
        },
    }


def seed_data_file(path: str, count: int) -> float:
    emulator = Emulator(EmulatorConfig(data_path=path, seed=1))
    start = time.perf_counter()
    for i in range(count):
        emulator.seed_job("bench", "us-central1", job_body(i))
    emulator.app.store.compact()
    emulator.stop()
    return time.perf_counter() - start


def start_server_process(data_path: str) -> tuple[subprocess.Popen[str], str]:
    code = (
        "import sys\n"
        "from planner.emulator import EmulatorConfig, serve_forever\n"
        "serve_forever(EmulatorConfig(port=0, data_path=sys.argv[1], queue_seconds=5, run_seconds=600),"
        " ready=lambda e: print(e.url, flush=True))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, data_path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"emulator did not start: {url!r}")
    return proc, url


def run_threads(threads: int, seconds: float, work: Callable[[httpx.Client], int], url: str) -> int:
    """Each thread repeats `work` (which returns requests made) until the time is up."""
    counts = [0] * threads
    deadline = time.perf_counter() + seconds
    errors: list[BaseException] = []

    def loop(slot: int) -> None:
        try:
            with httpx.Client(base_url=url, timeout=30, verify=False) as client:
                while time.perf_counter() < deadline:
                    counts[slot] += work(client)
        except BaseException as exc:  # reported below; a benchmark must not hide failures
            errors.append(exc)

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts)


def _client_process(args: tuple[str, str, float, int, int]) -> int:
    kind, url, seconds, threads, first_id = args
    return run_threads(threads, seconds, WORKLOADS[kind](first_id), url)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0.0 where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def measure(kind: str, url: str, server_pid: int, seconds: float, processes: int, threads: int) -> tuple[float, float]:
    """(requests per second achieved, server CPU milliseconds per request) for one workload."""
    cpu_before = process_cpu_seconds(server_pid)
    start = time.perf_counter()
    jobs = [(kind, url, seconds, threads, 10_000_000 * (i + 1)) for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        total = sum(pool.map(_client_process, jobs))
    took = time.perf_counter() - start
    cpu = process_cpu_seconds(server_pid) - cpu_before
    return total / took, (cpu * 1000 / total if total else 0.0)


def _baseline_get(first_id: int) -> Callable[[httpx.Client], int]:
    def work(client: httpx.Client) -> int:
        client.get("/").raise_for_status()
        return 1

    return work


def _list_pages(first_id: int, *, cold: bool = False) -> Callable[[httpx.Client], int]:
    walks = iter(range(first_id, first_id + 10_000_000))

    def work(client: httpx.Client) -> int:
        pages, token = 0, ""
        # cold: a filter never seen before on every walk, so no answer can come from the page memo
        flt = f'{FILTER} AND NOT display_name="walk-{next(walks)}"' if cold else FILTER
        while pages < 20:  # walk the first 20 pages (2,000 jobs), then start over
            params = {"filter": flt, "pageSize": "100"}
            if token:
                params["pageToken"] = token
            response = client.get(JOBS, params=params)
            response.raise_for_status()
            body = response.json()
            if len(body["customJobs"]) != 100:
                raise AssertionError(f"short page: {len(body['customJobs'])}")
            pages += 1
            token = body.get("nextPageToken", "")
            if not token:
                break
        return pages

    return work


def _create(first_id: int) -> Callable[[httpx.Client], int]:
    counter = iter(range(first_id, first_id + 10_000_000))
    lock = threading.Lock()

    def work(client: httpx.Client) -> int:
        with lock:
            i = next(counter)
        client.post(JOBS, json=job_body(i)).raise_for_status()
        return 1

    return work


def _get(first_id: int) -> Callable[[httpx.Client], int]:
    names: list[str] = []

    def work(client: httpx.Client) -> int:
        if not names:
            names.extend(job["name"] for job in client.get(JOBS, params={"pageSize": 50}).json()["customJobs"])
        for name in names:
            client.get(f"/v1/{name}").raise_for_status()
        return len(names)

    return work


WORKLOADS: dict[str, Callable[[int], Callable[[httpx.Client], int]]] = {
    "baseline": _baseline_get,
    "list": _list_pages,
    "list-cold": lambda first_id: _list_pages(first_id, cold=True),
    "create": _create,
    "get": _get,
}


class _Baseline(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # one segment per answer, as the emulator does (no Nagle stalls)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def baseline_process() -> tuple[subprocess.Popen[str], str]:
    code = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from http.server import ThreadingHTTPServer\n"
        "from bench_emulator import _Baseline\n"
        "server = ThreadingHTTPServer(('127.0.0.1', 0), _Baseline)\n"
        "server.daemon_threads = True\n"
        "print(f'http://127.0.0.1:{server.server_address[1]}', flush=True)\n"
        "server.serve_forever()\n"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, "-c", code, here], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each measurement")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=2, help="client threads per process (keep-alive each)")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs seeded before measuring")
    args = parser.parse_args()

    rows: list[tuple[str, float, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "emulator.json")
        seed_seconds = seed_data_file(data, args.jobs)
        size_mb = os.path.getsize(data) / 1e6
        print(f"seeded {args.jobs} jobs in {seed_seconds:.2f}s ({args.jobs / seed_seconds:,.0f} jobs/s, "
              f"data file {size_mb:.1f} MB)")

        base_proc, base_url = baseline_process()
        try:
            rate, cpu = measure("baseline", base_url, base_proc.pid, args.seconds, args.processes, args.threads)
            rows.append(("baseline: bare http.server GET {}", rate, "requests/s", cpu))
        finally:
            base_proc.terminate()
            base_proc.wait()

        proc, url = start_server_process(data)
        try:
            for kind, label, unit in (
                ("list", "list: pages of 100 jobs (label filter)", "pages/s"),
                ("list-cold", "list, no memo hits (new filter every walk)", "pages/s"),
                ("create", "create: POST customJobs (persisted)", "creates/s"),
                ("get", "get: GET customJobs/ID", "requests/s"),
            ):
                rate, cpu = measure(kind, url, proc.pid, args.seconds, args.processes, args.threads)
                rows.append((label, rate, unit, cpu))
            if httpx.get(url + JOBS, params={"pageSize": 1}).status_code != 200:
                raise SystemExit("emulator stopped answering")
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nemulator throughput ({args.processes} client processes x {args.threads} threads, httpx keep-alive, "
          f"no injected latency; {os.cpu_count()} CPUs, load average {load:.1f})")
    print(f"  {'workload':<42} {'achieved':>10}            {'server CPU/request':>18}")
    for label, rate, unit, cpu in rows:
        print(f"  {label:<42} {rate:>10,.0f} {unit:<11} {cpu:>15.2f} ms")
    measured = [(label, rate) for label, rate, _, _ in rows if not label.startswith("baseline")]
    worst_label, worst = min(measured, key=lambda item: item[1])
    verdict = "meets" if worst >= TARGET_RPS else "MISSES"
    print(f"\nslowest emulator figure: {worst:,.0f}/s ({worst_label.split(':')[0]}) {verdict} the target of "
          f"{TARGET_RPS:.0f} requests/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
