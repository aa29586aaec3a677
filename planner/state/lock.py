"""Who holds a state lock (`LockInfo`) and how that is said; the stores do the locking itself."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from planner import __version__
from planner.errors import StateError, StateLockedError


def utc_now_rfc3339() -> str:
    """The current time as RFC 3339 UTC with a `Z`, to the second."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        return f"uid-{os.getuid()}"


@dataclass(frozen=True)
class LockInfo:
    """Holder information stored with a lock, so a second run can say who holds it.

    `id` is the lock ID that `unlock`/`force-unlock` take. Stores fill it in: the local
    store uses a random UUID, the GCS store the lock object's generation.
    """

    id: str
    operation: str  # "plan" | "apply" | "state rm" | …
    who: str
    host: str
    pid: int
    created: str  # RFC 3339 UTC
    version: str  # planner version of the holder
    path: str  # the state it locks, as the store describes it

    @staticmethod
    def new(
        operation: str,
        *,
        path: str = "",
        clock: Callable[[], str] = utc_now_rfc3339,
        who: str | None = None,
        host: str | None = None,
        pid: int | None = None,
    ) -> LockInfo:
        """Holder info for this process; `id` is left empty for the store to assign."""
        return LockInfo(
            id="",
            operation=operation,
            who=who if who is not None else _current_user(),
            host=host if host is not None else socket.gethostname(),
            pid=pid if pid is not None else os.getpid(),
            created=clock(),
            version=__version__,
            path=path,
        )

    def with_id(self, lock_id: str) -> LockInfo:
        return replace(self, id=lock_id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), sort_keys=True, indent=2) + "\n").encode()

    @staticmethod
    def from_json(data: object, source: str) -> LockInfo:
        if not isinstance(data, dict):
            raise StateError(f"lock info in {source} is not a JSON object")
        values: dict[str, Any] = {}
        for f in fields(LockInfo):
            value = data.get(f.name, 0 if f.name == "pid" else "")
            expected: type = int if f.name == "pid" else str
            if not isinstance(value, expected) or isinstance(value, bool):
                raise StateError(f"lock info in {source}: field {f.name!r} must be a {expected.__name__}")
            values[f.name] = value
        return LockInfo(**values)

    @staticmethod
    def from_bytes(raw: bytes, source: str) -> LockInfo:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise StateError(f"lock info in {source} is not valid JSON: {err}") from err
        return LockInfo.from_json(data, source)

    def describe(self) -> str:
        """One line naming the holder: `ID …, held by who@host (pid N) for "apply" since …`."""
        who = self.who or "unknown user"
        host = self.host or "unknown host"
        op = f' for "{self.operation}"' if self.operation else ""
        since = f" since {self.created}" if self.created else ""
        version = f", planner {self.version}" if self.version else ""
        return f"ID {self.id or '?'}, held by {who}@{host} (pid {self.pid}){op}{since}{version}"


def locked_error(description: str, holder: LockInfo | None, waited: float) -> StateLockedError:
    """The error for a lock not obtained within the timeout, naming the holder when known."""
    wait = f" (waited {waited:.1f}s)" if waited > 0 else ""
    if holder is None:
        return StateLockedError(f"state {description} is locked by another run; holder unknown{wait}")
    return StateLockedError(
        f"state {description} is locked{wait}: {holder.describe()}",
        lock_info=holder.to_json(),
    )
