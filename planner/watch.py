"""Watching jobs over time: `apply --wait` (until every new job is terminal) and `status --watch`.

It owns the polling: one labelled listing per (project, location) per poll, never a GET
per job, spaced by a backoff suited to hours-long jobs, and each state change reported
once. It takes its clock and sleep as parameters and prints nothing; the CLI attaches a view.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from planner import apimodel
from planner.refresh import JobReader
from planner.status import FAILURE_STATES, MISSING, SUCCESS_STATES, StatusReport, list_managed

# Only what a transition needs: the listing is small even for thousands of jobs.
WAIT_READ_MASK: Final = "name,state,labels,error"
# A job missing from this many listings in a row is taken as deleted (a listing just after a
# create may not show the job yet).
MISSING_POLLS: Final = 2


@dataclass(frozen=True)
class Backoff:
    """Poll after `initial` seconds, then `factor` times longer each time, at most `maximum`.

    The defaults reach a poll a minute after about ten polls: quick for short jobs, about
    60 listings an hour per location for long ones, whatever the number of jobs.
    """

    initial: float = 2.0
    factor: float = 1.5
    maximum: float = 60.0

    def delays(self) -> Iterable[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(self.maximum, delay * self.factor)


@dataclass(frozen=True)
class WatchedJob:
    """A job to wait for: its resource name and the address it stands for."""

    name: str
    address: str

    @property
    def pair(self) -> tuple[str, str]:
        parts = self.name.split("/")
        return (parts[1], parts[3]) if len(parts) > 3 else ("", "")


@dataclass(frozen=True)
class Transition:
    """A job seen in a new state (reported once per change, not once per poll)."""

    job: WatchedJob
    before: str | None
    after: str
    error: str
    elapsed: float


@dataclass(frozen=True)
class WaitResult:
    states: Mapping[str, str]  # name → the last state seen (MISSING if gone)
    errors: Mapping[str, str]  # name → error message of a job that failed
    timed_out: bool
    polls: int
    elapsed: float

    @property
    def failed(self) -> list[str]:
        return sorted(n for n, s in self.states.items() if s in FAILURE_STATES or s == MISSING)

    @property
    def succeeded(self) -> list[str]:
        return sorted(n for n, s in self.states.items() if s in SUCCESS_STATES)

    @property
    def unfinished(self) -> list[str]:
        return sorted(n for n, s in self.states.items() if not _finished(s))


def _finished(state: str) -> bool:
    return state in apimodel.TERMINAL_STATES or state == MISSING


def wait_for_jobs(
    client: JobReader,
    jobs: Iterable[WatchedJob],
    workspace: str,
    *,
    timeout: float | None,
    on_transition: Callable[[Transition], None] = lambda _t: None,
    on_poll: Callable[[WaitResult], None] = lambda _r: None,
    backoff: Backoff = Backoff(),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WaitResult:
    """Poll until every job is terminal (or gone), or `timeout` seconds pass (None: no limit).

    KeyboardInterrupt from `sleep` propagates: stopping the wait never touches the jobs.
    """
    watched = {job.name: job for job in jobs}
    states: dict[str, str] = {}
    errors: dict[str, str] = {}
    absent: dict[str, int] = {}
    started = clock()
    polls = 0
    delays = iter(backoff.delays())

    def result(timed_out: bool) -> WaitResult:
        return WaitResult(
            {n: states.get(n, "JOB_STATE_UNSPECIFIED") for n in watched},
            dict(errors), timed_out, polls, clock() - started,
        )

    while True:
        live = list_managed(client, {j.pair for j in watched.values()}, workspace, read_mask=WAIT_READ_MASK)
        polls += 1
        for name, job in sorted(watched.items(), key=lambda kv: kv[1].address):
            before = states.get(name)
            if before is not None and _finished(before):
                continue
            found = live.get(name)
            if found is None:
                absent[name] = absent.get(name, 0) + 1
                if absent[name] < MISSING_POLLS:
                    continue
                after, error = MISSING, "the job is gone (deleted outside planner?)"
            else:
                absent.pop(name, None)
                after, error = found.state, found.error_message
            if after != before:
                states[name] = after
                if error and (after in FAILURE_STATES or after == MISSING):
                    errors[name] = error
                on_transition(Transition(job, before, after, error, clock() - started))
        current = result(False)
        on_poll(current)
        if not current.unfinished:
            return current
        remaining = None if timeout is None else timeout - (clock() - started)
        if remaining is not None and remaining <= 0:
            return result(True)
        delay = next(delays)
        sleep(delay if remaining is None else min(delay, remaining))


def watch_status(
    read: Callable[[], StatusReport],
    on_report: Callable[[StatusReport | None, StatusReport], None],
    *,
    interval: float,
    until_terminal: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> StatusReport:
    """Read the status every `interval` seconds and hand each (previous, current) pair to the view.

    Returns once every row is terminal (with `until_terminal`); otherwise runs until
    KeyboardInterrupt, which propagates.
    """
    previous: StatusReport | None = None
    while True:
        current = read()
        on_report(previous, current)
        if until_terminal and current.all_terminal:
            return current
        previous = current
        sleep(interval)
