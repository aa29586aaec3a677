"""The `Emulator` handle: an `EmulatorApp` served in a background thread, with start, stop, its
URL, request log and helpers for tests; `running_emulator` and `serve_forever` around it. What
the API does is `app`'s, the HTTP itself `handler`'s.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from planner import apimodel
from planner.emulator.app import EmulatorApp
from planner.emulator.config import EmulatorConfig
from planner.emulator.decode import decode_custom_job
from planner.emulator.faults import RequestLog
from planner.emulator.filter import compile_filter, parse_timestamp
from planner.emulator.handler import Server
from planner.emulator.lifecycle import encode_job
from planner.emulator.wire import ApiFailure


class Emulator:
    """A running (or startable) emulator: `start()`, `url`, `request_log`, test helpers, `stop()`."""

    def __init__(self, config: EmulatorConfig | None = None, *, clock: Callable[[], float] | None = None):
        self.config = config or EmulatorConfig()
        self.clock: Callable[[], float] = clock or time.time
        self.app = EmulatorApp(self.config, self.clock)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        if self._stopped:
            raise RuntimeError("a stopped emulator cannot be restarted; create a new Emulator on the same data")
        self._server = Server((self.config.host, self.config.port), self.app)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="planner-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and flush the data file; safe to call twice."""
        self._stopped = True
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            with server.connections_lock:
                open_connections = list(server.connections)
            for conn in open_connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            if self._thread is not None:
                self._thread.join(timeout=5)
        self.app.store.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def request_log(self) -> RequestLog:
        return self.app.log

    # -- helpers for tests and benchmarks (no HTTP, no faults, not logged) ---------------------

    def seed_job(
        self,
        project: str,
        location: str,
        job_json: Mapping[str, Any],
        *,
        state: str | None = None,
        create_time: float | str | datetime | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Insert a job straight into the store (validated like a create); returns it as GET would.

        Raises ValueError for a body the API would reject or an unknown state.
        """
        body = dict(job_json)
        if labels:
            body["labels"] = {**dict(body.get("labels") or {}), **labels}
        try:
            spec = decode_custom_job(body)
        except ApiFailure as failure:
            raise ValueError(failure.message) from None
        if state is not None and state not in apimodel.JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        job = self.app.store.create(project, location, spec, created=_epoch(create_time), state=state)
        return encode_job(job, self.clock())

    def get_job(self, name: str) -> dict[str, Any]:
        return encode_job(self.app.store.get(name), self.clock())

    def list_jobs(self, project: str, location: str, filter_text: str = "") -> list[dict[str, Any]]:
        """Every job of (project, location) matching an AIP-160 filter, newest first, as list returns
        them, but with no HTTP, no faults and no request-log entry (for test assertions)."""
        predicate = compile_filter(filter_text)
        page = self.app.store.page(project, location, predicate, None, 10**9)
        return [encode_job(job, page.now) for job in page.jobs]

    def set_job_state(self, name: str, state: str) -> dict[str, Any]:
        """Force a job into `state` from now on (an out-of-band change, as another tool would make)."""
        return encode_job(self.app.store.force_state(name, state), self.clock())

    def delete_job_directly(self, name: str) -> bool:
        """Remove a job without an operation (deleted outside planner); False if it did not exist."""
        return self.app.store.remove(name)

    def job_count(self) -> int:
        return self.app.store.count()


def _epoch(value: float | str | datetime | None) -> float | None:
    if value is None or isinstance(value, float | int):
        return value
    if isinstance(value, datetime):
        return value.timestamp()
    return parse_timestamp(value)


@contextlib.contextmanager
def running_emulator(
    config: EmulatorConfig | None = None, *, clock: Callable[[], float] | None = None, **overrides: Any
) -> Iterator[Emulator]:
    """A started emulator, stopped (and its data flushed) on exit."""
    emulator = Emulator(replace(config or EmulatorConfig(), **overrides), clock=clock)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def serve_forever(config: EmulatorConfig, *, ready: Callable[[Emulator], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM (for `planner emulator serve`); flushes the data file on the way out.

    `ready` is called once the server listens; without one, the URL is announced on stdout
    (the port may have been chosen by the OS). Ctrl-C ends with
    KeyboardInterrupt after a clean stop, so the CLI can exit 130; SIGTERM returns normally.
    """
    stopping = threading.Event()
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    emulator = Emulator(config)
    emulator.start()
    try:
        if ready is not None:
            ready(emulator)
        else:
            print(f"planner emulator listening on {emulator.url} (Ctrl-C to stop)", flush=True)
        while not stopping.wait(0.5):
            pass
    finally:
        emulator.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
