"""No endless waits (issue #13): total request deadlines, Ctrl-C within a second, unreachable endpoints."""

from __future__ import annotations

import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_harness import config_text

from planner.api import RetryPolicy, build_client
from planner.errors import ApiError
from planner.state import LocalStore


class _Trickle(socketserver.BaseRequestHandler):
    """Answers 200 with a long body, then sends one byte every half second: a never-ending answer."""

    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        server: TrickleServer = self.server  # type: ignore[assignment]
        if server.stall_headers:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        else:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
        try:
            self.request.sendall(head)
            while not server.done.is_set():
                server.done.wait(0.5)
                self.request.sendall(b" " if not server.stall_headers else b"X")
        except OSError:
            return


class TrickleServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, stall_headers: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Trickle)
        self.stall_headers = stall_headers
        self.done = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(params=[False, True], ids=["body", "headers"])
def trickle(request: pytest.FixtureRequest) -> Iterator[TrickleServer]:
    server = TrickleServer(stall_headers=request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.done.set()
        server.shutdown()
        server.server_close()


def test_a_trickling_answer_ends_at_the_total_deadline(trickle: TrickleServer) -> None:
    client = build_client(endpoint=trickle.url, timeout=1.5)
    client.retry = RetryPolicy(max_attempts=1)
    started = time.monotonic()
    with pytest.raises(ApiError, match="total deadline"):
        client.get_job("projects/p/locations/us-central1/customJobs/1")
    assert time.monotonic() - started < 5
    client.close()


def planner(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "planner", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )


def test_ctrl_c_ends_a_stalled_plan_within_a_second_and_frees_the_lock(tmp_path: Path, trickle: TrickleServer) -> None:
    (tmp_path / "jobs.yaml").write_text(config_text(2))
    state = tmp_path / "state" / "default.json"
    proc = planner("plan", "jobs.yaml", "--endpoint", trickle.url, "--state", str(state), cwd=tmp_path)
    deadline = time.monotonic() + 30
    while not (state.parent / "default.json.lock").exists():  # the plan holds its lock: it is waiting now
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 1.5, err
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert LocalStore(state).lock_info() is None


def test_an_unreachable_endpoint_fails_within_seconds(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    (tmp_path / "jobs.yaml").write_text(config_text(1))
    started = time.monotonic()
    proc = planner("plan", "jobs.yaml", "--endpoint", f"http://127.0.0.1:{port}", "--state", "s.json", cwd=tmp_path)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert f"cannot connect to http://127.0.0.1:{port}" in err, err
    assert time.monotonic() - started < 10


def test_ctrl_c_while_the_cli_is_still_importing_is_a_quiet_exit(tmp_path: Path) -> None:
    for delay in (0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2):
        proc = planner("validate", "missing.yaml", cwd=tmp_path)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        if "init_import_site" in err:
            continue  # the interpreter's own start-up was interrupted, before any planner code
        assert "Traceback" not in err, (delay, err)
        assert proc.returncode in (1, 130, -signal.SIGINT), (delay, proc.returncode, err)


def test_cancel_ends_operation_polling_at_once(emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emulator = emulator_factory(delete_seconds=60, run_seconds=0.05)
    client = build_client(endpoint=emulator.url)
    job = {
        "displayName": "j",
        "jobSpec": {
            "workerPoolSpecs": [
                {"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": "1",
                 "containerSpec": {"imageUri": "gcr.io/p/i:1"}}
            ]
        },
    }
    name = client.create_job("p", "us-central1", job, find_existing=lambda: None)["name"]
    time.sleep(0.5)
    operation = client.delete_job(name)
    assert not operation.get("done")
    threading.Timer(0.5, client.cancel).start()
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        client.wait_operation(operation["name"], timeout=60)
    assert info.value.status == "CANCELLED"
    assert time.monotonic() - started < 2
    client.close()
