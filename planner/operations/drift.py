"""The drift operation: read the state (no lock, nothing written), list the live jobs and classify
how they moved away from the last apply (planner.drift decides; the CLI shows the DriftReport).

No click and no printing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from planner.operations.backend import Backend, explicit_state, long_lived
from planner.operations.plan import read_live, timestamp, utc_now

if TYPE_CHECKING:
    from planner.config.model import Desired
    from planner.drift import DriftReport


def drift(backend: Backend, desired: Desired | None = None, *, ignore: Sequence[str] = (),
          include_unmanaged: bool = False, clock: Callable[[], datetime] = utc_now) -> DriftReport:  # fmt: skip
    """How the live jobs differ from the state (and from `desired`, if given), `ignore` globs over
    addresses and field paths left out; unlabelled jobs too with `include_unmanaged`."""
    from planner.drift import detect_drift

    client = backend.client()
    store = backend.store()
    with long_lived():
        prior = explicit_state(backend, store, store.read())  # read only: no lock taken, nothing written
        live = read_live(client, desired, prior, backend.workspace, include_unmanaged=include_unmanaged)
    return detect_drift(prior, live, workspace=backend.workspace, desired=desired, ignore=ignore,
                        include_unmanaged=include_unmanaged, created_at=timestamp(clock()))
