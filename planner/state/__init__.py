"""State: the model, its file format, and where it is stored (local file or GCS) with lock and journal.

`open_store` picks the store for a `--state` value; everything else a caller needs is
re-exported here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.errors import UsageError
from planner.state.fileformat import read_state, write_state
from planner.state.local import LocalStore
from planner.state.lock import LockInfo
from planner.state.model import STATE_FORMAT_VERSION, JobRecord, JournalEntry, PendingStep, State, apply_entries
from planner.state.store import StateStore

if TYPE_CHECKING:
    import httpx

    from planner.state.gcs import GcsStore


def __getattr__(name: str) -> Any:
    # The GCS store (and httpx with it) is imported only when asked for: a plan against a
    # local state should not pay for it before its configuration has loaded.
    if name == "GcsStore":
        from planner.state.gcs import GcsStore

        return GcsStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "STATE_FORMAT_VERSION",
    "GcsStore",
    "JobRecord",
    "JournalEntry",
    "LocalStore",
    "LockInfo",
    "PendingStep",
    "State",
    "StateStore",
    "apply_entries",
    "open_store",
    "read_state",
    "write_state",
]

# A workspace is also a label value (planner-workspace) and part of a file or object name.
_WORKSPACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def open_store(
    spec: str | None,
    workspace: str,
    *,
    base_dir: Path,
    storage_host: str | None = None,
    credentials: httpx.Auth | None = None,
    http: httpx.Client | None = None,
    ignore_backup: bool = False,
) -> LocalStore | GcsStore:
    """The store for a `--state` value.

    - None: `base_dir/<workspace>.json`.
    - `gs://BUCKET[/PREFIX]`: `PREFIX/<workspace>.json` in BUCKET, through `http` (a new client
      owned by the store if None) with `credentials`; `storage_host` (the CLI's
      STORAGE_EMULATOR_HOST) points at a loopback emulator, used without credentials.
    - anything else is a file path, used as given; an existing directory (or a path ending
      in `/`) holds `<workspace>.json`.

    `ignore_backup` lets a local store start a new state where only a backup or journal is left.
    """
    if not _WORKSPACE.match(workspace):
        raise UsageError(
            f"invalid workspace name {workspace!r}: use lowercase letters, digits, '-' and '_' "
            "(at most 63, starting with a letter or digit)"
        )
    if spec is None or spec == "":
        return LocalStore(base_dir / f"{workspace}.json", ignore_backup=ignore_backup)
    if spec.startswith("gs://"):
        import httpx

        from planner.state.gcs import GcsStore, parse_gs_url, storage_base_url

        bucket, prefix = parse_gs_url(spec)
        base_url, emulator = storage_base_url(storage_host)
        owns = http is None
        client = http if http is not None else httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
        return GcsStore(
            bucket,
            prefix,
            workspace,
            http=client,
            auth=credentials,
            base_url=base_url,
            anonymous=emulator,
            owns_http=owns,
        )
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec):
        raise UsageError(f"unsupported state location {spec}: use a file path or gs://BUCKET/PREFIX")
    path = Path(spec)
    if spec.endswith("/") or path.is_dir():
        path = path / f"{workspace}.json"
    return LocalStore(path, ignore_backup=ignore_backup)
