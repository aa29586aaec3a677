"""When to retry a Vertex AI request and how long to wait: exponential backoff with full jitter.

The policy only computes delays; the client sleeps (through an injected `sleep`) and
decides what is retryable for a create. Time and randomness are injected so tests
are deterministic.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Final

# 429 RESOURCE_EXHAUSTED, 500 INTERNAL, 502 bad gateway, 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED.
RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent or malformed.

    `now` is the current Unix time (only used for the HTTP-date form).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - now)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter (delay = U(0, min(cap, base * 2**n))).

    A request is tried at most `max_attempts` times and no retry starts after
    `max_elapsed` seconds from the first attempt. A server's Retry-After is a floor
    for the next delay; if it would end past the time budget the request gives up.
    """

    # Twelve tries keep a request alive through a bad stretch (at a 30% failure rate, one
    # request in two million still fails); the time budget below bounds the waiting.
    max_attempts: int = 12
    max_elapsed: float = 120.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    multiplier: float = 2.0
    random: Callable[[], float] = field(default=_random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.max_elapsed < 0 or self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoff settings must be non-negative and multiplier >= 1")

    def backoff(self, retry_number: int) -> float:
        """The jittered delay before retry `retry_number` (1 for the first retry)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** max(0, retry_number - 1))
        return self.random() * ceiling

    def start(self, clock: Callable[[], float]) -> RetryBudget:
        """A fresh budget for one logical request, timed by `clock` (monotonic seconds)."""
        return RetryBudget(self, clock, clock())


class RetryBudget:
    """The retry state of one logical request: attempts made and time spent."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float], started: float) -> None:
        self.policy = policy
        self._clock = clock
        self._started = started
        self.attempts = 0
        self.retries = 0

    def attempt(self) -> int:
        """Record that an attempt is being sent; returns its number (1-based)."""
        self.attempts += 1
        return self.attempts

    def elapsed(self) -> float:
        return self._clock() - self._started

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """How long to wait before the next attempt, or None when the budget is spent."""
        policy = self.policy
        if self.attempts >= policy.max_attempts:
            return None
        remaining = policy.max_elapsed - self.elapsed()
        delay = policy.backoff(self.retries + 1)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if delay > remaining:
            return None
        self.retries += 1
        return delay
