"""The logs operation: which job an address or resource name stands for, and its log lines from
Cloud Logging, read once or followed until the job ends (planner.logs reads; the CLI shows).

No click and no printing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.errors import UsageError
from planner.operations.backend import Backend
from planner.operations.state import JOB_NAME

if TYPE_CHECKING:
    from planner.logs import LogLine

@dataclass(frozen=True)
class LogSource:
    """One job's log lines, through `client`."""

    client: Any
    name: str  # projects/P/locations/L/customJobs/ID

    @property
    def project(self) -> str:
        return self.name.split("/")[1]

    @property
    def job_id(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def _read(self, project: str, filter: str) -> Iterator[dict[str, Any]]:
        from planner.api.cloudlogging import list_log_entries

        return list_log_entries(self.client, project, filter)

    def lines(self, *, since: str | None = None, replica: str | None = None) -> list[LogLine]:
        """The lines logged so far (`since` an RFC 3339 time; `replica` e.g. workerpool0-0)."""
        from planner.logs import read_lines

        return read_lines(self._read, self.project, self.job_id, since=since, replica=replica)

    def follow(self, on_line: Callable[[LogLine], None], *, on_state: Callable[[str], None] = lambda _s: None,
               since: str | None = None, replica: str | None = None, interval: float = 3.0) -> None:
        """Hand each line to `on_line` as it arrives, and the job's state to `on_state` as it is
        read, until the job has ended; KeyboardInterrupt propagates."""
        from planner.logs import follow
        from planner.refresh import live_job

        def job_state() -> str:
            state = str(live_job(self.client.get_job(self.name)).state)
            on_state(state)
            return state

        follow(self._read, self.project, self.job_id, on_line=on_line, since=since, replica=replica,
               interval=interval, job_state=job_state)


def log_source(backend: Backend, address: str) -> LogSource:
    """The job `address` names in state (read without a lock), or the job a resource name names."""
    client = backend.client()
    if JOB_NAME.fullmatch(address):
        return LogSource(client, address)
    state = backend.store().read()  # read only: no lock
    if state is None or address not in state.jobs:
        raise UsageError(f"{address}: not in state (give an address from `planner state list` or a job name)")
    return LogSource(client, state.jobs[address].name)
