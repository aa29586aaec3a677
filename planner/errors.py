"""The one exception hierarchy of planner: every user-facing failure is a PlannerError.

Foreign exceptions (yaml, httpx, OSError, json) are converted where they enter the
project; the CLI maps PlannerError to its exit code and prints its message without a
traceback. Anything else reaching the CLI is a bug (exit 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130
# `apply --wait`: the changes were made, but a job it waited for ended FAILED, CANCELLED or
# EXPIRED (or vanished) — or the wait ran out of --timeout with jobs still running.
EXIT_JOB_FAILED = 4
EXIT_WAIT_TIMEOUT = 5


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A position in a source file; line and column are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One configuration problem: where it is, which field, and what is wrong."""

    location: SourceLocation | None
    path: str
    message: str

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        if loc is None:
            return ("", 0, 0, self.path, self.message)
        return (loc.file, loc.line, loc.column, self.path, self.message)

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location is not None else ""
        field = f"{self.path}: " if self.path else ""
        return f"{prefix}{field}{self.message}"

    def to_json(self) -> dict[str, Any]:
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "path": self.path,
            "message": self.message,
        }


class PlannerError(Exception):
    """Base of every error planner reports to a user; carries its exit code."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, location: SourceLocation | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location is not None else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(PlannerError):
    """Desired-state files are invalid; carries every diagnostic found, sorted."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics: Sequence[Diagnostic] = sorted(diagnostics, key=Diagnostic.sort_key)
        count = len(self.diagnostics)
        summary = "\n".join(str(d) for d in self.diagnostics)
        super().__init__(summary if count else "invalid configuration")

    def __str__(self) -> str:
        count = len(self.diagnostics)
        noun = "error" if count == 1 else "errors"
        return f"{self.message}\n{count} {noun} found."


class UsageError(PlannerError):
    """A command line that cannot be carried out as given (bad flag value, missing file)."""


class StateError(PlannerError):
    """The state file or object cannot be read or written safely."""


class StateLockedError(StateError):
    """Another run holds the state lock; the message names the holder."""

    def __init__(self, message: str, *, lock_info: dict[str, Any] | None = None):
        super().__init__(message, hint="wait for it to finish, or `planner force-unlock LOCK_ID` if it is dead")
        self.lock_info = lock_info or {}


class StalePlanError(PlannerError):
    """A saved plan no longer matches the state, the live jobs or the configuration."""


class PlanRefusedError(PlannerError):
    """The plan would violate a lifecycle rule such as preventDestroy."""


class ApiError(PlannerError):
    """A Vertex AI (or storage) request failed for good, after any retries."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        http_status: int | None = None,
        status: str | None = None,
        attempts: int = 1,
        details: Sequence[Any] = (),
    ):
        self.method = method
        self.url = url
        self.http_status = http_status
        self.status = status
        self.attempts = attempts
        self.details = list(details)
        where = f"{method} {url}".strip()
        code = " ".join(str(x) for x in (http_status, status) if x)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        head = f"{where}: " if where else ""
        tail = f" ({code}{tries})" if code or tries else ""
        super().__init__(f"{head}{message}{tail}")
