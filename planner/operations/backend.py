"""What every command needs to reach Vertex AI and its state: the per-run Backend (API client,
state store, embedded emulator), the state opened for a command (`open_state`: store → lock →
read → the explicit-state check), the state lock, deferred signals for critical sections, and
the collector policy for long-lived objects.

No click and no printing: the CLI turns flags and settings into a Backend
(`planner.cli.options._backend`) and shows what happens.
"""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.errors import UsageError

if TYPE_CHECKING:
    from planner.state import State

DEFAULT_STATE_DIR = Path("state")


@dataclass
class Backend:
    """The per-run parts: API client, state store, and the embedded emulator if any."""

    workspace: str
    state_spec: str | None
    emulator: bool
    endpoint: str | None
    impersonate_service_account: str | None = None
    max_requests_per_minute: float | None = None
    max_creates_per_minute: float | None = None
    lock_timeout: float = 0.0
    hardware_catalog: str | None = None  # --hardware-catalog: the embedded emulator checks with it too
    ignore_backup: bool = False
    request_timeout: float = 60.0
    storage_host: str | None = None  # STORAGE_EMULATOR_HOST: a GCS emulator, no credentials
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    def client(self) -> Any:
        from planner.api import build_client

        endpoint = self.endpoint
        if self.emulator:
            endpoint = self._start_emulator()
        client = build_client(endpoint=endpoint, impersonate_service_account=self.impersonate_service_account,
                              max_requests_per_minute=self.max_requests_per_minute,
                              max_creates_per_minute=self.max_creates_per_minute, timeout=self.request_timeout)
        self._cleanups.append(client.close)
        LIVE_CLIENTS.append(client)
        return client

    def _start_emulator(self) -> str:
        from planner.emulator import Emulator, EmulatorConfig

        DEFAULT_STATE_DIR.mkdir(parents=True, exist_ok=True)
        config = EmulatorConfig(data_path=DEFAULT_STATE_DIR / "emulator.json", queue_seconds=2.0, run_seconds=60.0,
                                cancel_seconds=2.0, hardware_catalog=self.hardware_catalog)
        emulator = Emulator(config)
        emulator.start()
        self._cleanups.append(emulator.stop)
        return str(emulator.url)

    def store(self) -> Any:
        from planner.state import open_store

        credentials = None
        if self.state_spec and self.state_spec.startswith("gs://") and self.storage_host is None:
            from planner.api import storage_auth

            credentials = storage_auth(impersonate_service_account=self.impersonate_service_account)
        store = open_store(self.state_spec, self.workspace, base_dir=DEFAULT_STATE_DIR, storage_host=self.storage_host,
                           credentials=credentials, ignore_backup=self.ignore_backup)
        self._cleanups.append(store.close)
        return store

    def close(self) -> None:
        while self._cleanups:
            with suppress(Exception):
                self._cleanups.pop()()


# Clients of this run, so a Ctrl-C ends their waits (signal handlers are process-wide anyway).
LIVE_CLIENTS: list[Any] = []


def on_interrupt(_signum: int, _frame: object) -> None:
    """Ctrl-C outside apply: end every request wait (within a quarter second), then unwind as usual."""
    for client in LIVE_CLIENTS:
        client.cancel()
    raise KeyboardInterrupt


@contextmanager
def locked(store: Any, operation: str, timeout: float) -> Iterator[str]:
    """Hold the state lock for the whole command; released on every exit path, Ctrl-C included."""
    from planner.state import LockInfo

    lock_id = store.lock(LockInfo.new(operation, path=store.description), timeout)
    try:
        yield lock_id
    finally:
        with signals_deferred():
            store.unlock(lock_id)


def explicit_state(backend: Backend, store: Any, state: State | None) -> State | None:
    """A state that --state (or PLANNER_STATE) names must exist for commands that only read it:
    a mistyped path would otherwise read as an empty state ("No drift")."""
    if state is None and backend.state_spec:
        raise UsageError(f"no state at {store.description}", hint="check --state / PLANNER_STATE")
    return state


@dataclass(frozen=True)
class OpenState:
    """What `open_state` gives a command: the API client if asked for, the store, and the state
    read (None: there is none yet, or `read=False`)."""

    client: Any
    store: Any
    state: State | None


@contextmanager
def open_state(backend: Backend, lock: str | None = None, *, client: bool = False, read: bool = True,
               must_exist: bool = False) -> Iterator[OpenState]:
    """The opening every state command shares: the API client first (`client`), then the store,
    its lock held for the operation `lock` names (None: a command that only reads takes none),
    the state read (not with `read=False`, for commands that work on the store itself) and, with
    `must_exist`, the explicit-state check. The lock is released on every exit path."""
    api = backend.client() if client else None
    store = backend.store()
    with locked(store, lock, backend.lock_timeout) if lock is not None else nullcontext():
        state = store.read() if read else None
        if must_exist:
            explicit_state(backend, store, state)
        yield OpenState(api, store, state)


@contextmanager
def long_lived() -> Iterator[None]:
    """Build objects that live until the command ends (the configuration, state, live jobs, plan).

    The collector is paused while they are built and they are then frozen (moved where
    collections never look): otherwise the first collection after building 10,000 jobs
    walks every object just made, about 0.4 s, and later ones walk them again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Let a critical section (unlock, final state write) finish even if Ctrl-C arrives."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda s, _f: received.append(s))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            raise KeyboardInterrupt
