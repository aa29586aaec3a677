"""A job's log lines from Cloud Logging: the console's filter for a CustomJob, one read or a follow.

It owns which entries belong to a job (`resource.type="ml_job" resource.labels.job_id="ID"`,
optionally one replica's `task_name` and a `timestamp>=` bound), turning entries into
`LogLine`s, and following: re-reading from the last timestamp seen, each line given once.
The wire is `planner.api.cloudlogging`'s; printing is the CLI's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from planner import apimodel


class EntryReader(Protocol):
    """Lists LogEntries of a project matching a filter, oldest first (planner.api.cloudlogging)."""

    def __call__(self, project: str, filter: str) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True)
class LogLine:
    timestamp: str
    severity: str
    task: str  # the replica (`workerpool0-0`) or `service`
    text: str
    insert_id: str


def job_filter(job_id: str, *, since: str | None = None, replica: str | None = None) -> str:
    """The filter the Cloud console uses for a CustomJob's logs, narrowed by replica and start time."""
    parts = ['resource.type="ml_job"', f'resource.labels.job_id="{job_id}"']
    if replica:
        parts.append(f'resource.labels.task_name="{replica}"')
    if since:
        parts.append(f'timestamp>="{since}"')
    return " ".join(parts)


def _text(entry: Mapping[str, Any]) -> str:
    if "textPayload" in entry:
        return str(entry["textPayload"])
    payload = entry.get("jsonPayload")
    if isinstance(payload, Mapping):
        message = payload.get("message")
        return str(message) if message is not None else str(dict(payload))
    return ""


def log_line(entry: Mapping[str, Any]) -> LogLine:
    labels = (entry.get("resource") or {}).get("labels") or {}
    return LogLine(
        timestamp=str(entry.get("timestamp", "")),
        severity=str(entry.get("severity", "DEFAULT")),
        task=str(labels.get("task_name", "") or "-"),
        text=_text(entry).rstrip("\n"),
        insert_id=str(entry.get("insertId", "")),
    )


def read_lines(
    read: EntryReader, project: str, job_id: str, *, since: str | None = None, replica: str | None = None
) -> list[LogLine]:
    return [log_line(e) for e in read(project, job_filter(job_id, since=since, replica=replica))]


def follow(
    read: EntryReader,
    project: str,
    job_id: str,
    *,
    on_line: Callable[[LogLine], None],
    since: str | None = None,
    replica: str | None = None,
    interval: float = 3.0,
    job_state: Callable[[], str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print lines as they arrive until the job has ended (per `job_state`), or KeyboardInterrupt.

    Each read asks from the latest timestamp seen (inclusive, since several lines can share
    one) and skips the insert IDs already given at that timestamp. Returns the lines given.
    """
    last = since
    at_last: set[str] = set()
    count = 0
    while True:
        ended = job_state is not None and job_state() in apimodel.TERMINAL_STATES
        fresh = _new(read_lines(read, project, job_id, since=last, replica=replica), last, at_last)
        for line in fresh:
            on_line(line)
            count += 1
            if line.timestamp != last:
                last, at_last = line.timestamp, set()
            at_last.add(line.insert_id)
        if ended:  # the state was read before the lines: nothing the job wrote is left behind
            return count
        sleep(interval)


def _new(lines: Iterable[LogLine], last: str | None, at_last: set[str]) -> list[LogLine]:
    return [line for line in lines if not (line.timestamp == last and line.insert_id in at_last)]
