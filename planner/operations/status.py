"""The status operation: what every managed job is doing now, read on demand or until every job has
ended (read only: no lock taken, nothing written); planner.status reads, planner.watch paces the
reads, the CLI shows each report.

No click and no printing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from planner.operations.backend import Backend
from planner.operations.plan import timestamp, utc_now

if TYPE_CHECKING:
    from planner.config.model import Desired
    from planner.status import StatusFilter, StatusReport


def status_reader(backend: Backend, desired: Desired | None = None, *, only: StatusFilter | None = None,
                  prices: Any = None, clock: Callable[[], datetime] = utc_now,
                  now: Callable[[], float] = time.time) -> Callable[[], StatusReport]:  # fmt: skip
    """A read of the status (planner.status.read_status) through the backend's client and store:
    the state read again each time, `desired`'s jobs never applied included, `only` kept."""
    from planner.status import read_status

    client = backend.client()
    store = backend.store()

    def read() -> StatusReport:
        prior = store.read()  # read only: no lock taken, nothing written
        return read_status(client, prior, backend.workspace, now=now(), desired=desired, only=only,
                           created_at=timestamp(clock()), prices=prices)

    return read


def watch_until_ended(read: Callable[[], StatusReport], show: Callable[[StatusReport | None, StatusReport], None],
                      *, interval: float) -> StatusReport:  # fmt: skip
    """`status --watch`: read every `interval` seconds, showing each (previous, current) pair, until
    every job has ended; KeyboardInterrupt propagates."""
    from planner.watch import watch_status

    return watch_status(read, show, interval=interval)
