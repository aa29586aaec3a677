"""Client-side pacing of Vertex AI requests: an adaptive (AIMD) rate per (project, location, kind).

Vertex AI quotas are per project and region, with job submissions counted apart from
other requests, so each (project, location) has two buckets: `create` and `request`.
A bucket starts unlimited, is
lowered multiplicatively when Vertex answers 429 RESOURCE_EXHAUSTED, then raised
additively as requests succeed. Fixed caps are optional. The limiter only paces;
retrying is the client's business.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["create", "request"]
CREATE: Final[Kind] = "create"
REQUEST: Final[Kind] = "request"
BucketKey = tuple[str, str, Kind]


@dataclass(frozen=True)
class Ticket:
    """Permission to send one request: which bucket, when, and under which rate epoch."""

    key: BucketKey
    at: float
    epoch: int


@dataclass(frozen=True)
class AimdSettings:
    """How a bucket adapts (rates in requests/second).

    - Start: every bucket is unlimited. Vertex AI counts its quotas per minute (60 job
      submissions and 600 resource-management requests per project and region by default:
      https://cloud.google.com/vertex-ai/docs/quotas), so
      spreading the first creates over a few tenths of a second (a slow start) would
      not keep a burst under one; it only delayed every apply by about half a second.
      The first 429 sets the rate from what succeeded in the last `estimate_window`.
    - Decrease: on a 429 the rate becomes `decrease_factor` × the lower of the current
      rate and the successes of the last `estimate_window` seconds, and the bucket
      pauses for Retry-After (or one interval). One decrease per episode: 429s for
      requests paced before the last decrease do not lower it again. Once limited, a
      429 lowers the rate only if the recent share of 429s (an exponentially weighted
      average over about `1/share_weight` answers) reaches `throttle_share`.
    - Increase: while requests succeed the rate grows by about `increase_per_second`
      every second (at most `max_step_fraction` per success); above `unlimited_above`
      the bucket is unlimited again.
    """

    decrease_factor: float = 0.7
    increase_per_second: float = 1.0
    max_step_fraction: float = 0.1
    throttle_share: float = 0.15
    share_weight: float = 0.1
    min_rate: float = 0.1
    fallback_rate: float = 1.0
    unlimited_above: float = 1000.0
    estimate_window: float = 1.0
    max_pause: float = 10.0


class _Bucket:
    __slots__ = ("cap", "epoch", "next_free", "paused_until", "rate", "recent_ok", "throttle_share")

    def __init__(self, cap: float | None) -> None:
        self.cap = cap
        self.rate: float | None = None  # adaptive rate; None = not limited (a cap may still apply)
        self.next_free = -math.inf
        self.paused_until = -math.inf
        self.epoch = 0
        self.throttle_share = 0.0
        self.recent_ok: deque[float] = deque()

    def effective_rate(self) -> float | None:
        if self.rate is None:
            return self.cap
        if self.cap is None:
            return self.rate
        return min(self.rate, self.cap)


class RateLimiter:
    """Thread-safe pacing per (project, location, kind) with optional fixed caps per minute."""

    def __init__(
        self,
        *,
        max_requests_per_minute: float | None = None,
        max_creates_per_minute: float | None = None,
        settings: AimdSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, cap in (
            ("max_requests_per_minute", max_requests_per_minute),
            ("max_creates_per_minute", max_creates_per_minute),
        ):
            if cap is not None and not cap > 0:
                raise ValueError(f"{name} must be > 0")
        self._caps: dict[Kind, float | None] = {
            REQUEST: None if max_requests_per_minute is None else max_requests_per_minute / 60.0,
            CREATE: None if max_creates_per_minute is None else max_creates_per_minute / 60.0,
        }
        self.settings = settings or AimdSettings()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[BucketKey, _Bucket] = {}

    def _bucket(self, key: BucketKey) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            kind = key[2]
            bucket = self._buckets[key] = _Bucket(self._caps[kind])
        return bucket

    def acquire(self, project: str, location: str, kind: Kind) -> Ticket:
        """Block (via the injected sleep) until one request may be sent; returns its ticket.

        Slots are reserved in order (no burst): at rate r, consecutive slots are 1/r
        apart. A waiter whose bucket was slowed down while it slept takes a new slot.
        """
        key: BucketKey = (project, location, kind)
        while True:
            with self._lock:
                bucket = self._bucket(key)
                now = self._clock()
                at = max(now, bucket.paused_until)
                rate = bucket.effective_rate()
                if rate is not None:
                    at = max(at, bucket.next_free)
                    bucket.next_free = at + 1.0 / rate
                epoch = bucket.epoch
            wait = at - now
            if wait <= 0:
                return Ticket(key, at, epoch)
            self._sleep(wait)
            with self._lock:
                if self._bucket(key).epoch == epoch:
                    return Ticket(key, at, epoch)

    def on_success(self, ticket: Ticket) -> None:
        """A request of this bucket got a non-429 answer: additive increase."""
        settings = self.settings
        with self._lock:
            bucket = self._bucket(ticket.key)
            now = self._clock()
            bucket.throttle_share *= 1.0 - settings.share_weight
            recent = bucket.recent_ok
            recent.append(now)
            horizon = now - settings.estimate_window
            while recent and recent[0] < horizon:
                recent.popleft()
            rate = bucket.rate
            if rate is None:
                return
            rate += min(settings.increase_per_second / rate, settings.max_step_fraction * rate)
            bucket.rate = None if rate >= settings.unlimited_above else rate

    def on_throttled(self, ticket: Ticket, retry_after: float | None = None) -> None:
        """A request of this bucket was answered 429: maybe decrease the rate and pause the bucket."""
        settings = self.settings
        with self._lock:
            bucket = self._bucket(ticket.key)
            now = self._clock()
            w = settings.share_weight
            bucket.throttle_share = bucket.throttle_share * (1.0 - w) + w
            if ticket.epoch != bucket.epoch:
                return  # this episode was already answered by a decrease
            limited = bucket.rate is not None
            if limited and bucket.throttle_share < settings.throttle_share:
                return  # a stray 429 in a mostly successful stream
            horizon = now - settings.estimate_window
            measured = sum(1 for t in bucket.recent_ok if t >= horizon) / settings.estimate_window
            current = bucket.effective_rate()
            if current is None:
                base = measured if measured > 0 else settings.fallback_rate
            else:
                base = min(current, measured) if measured > 0 else current
            new_rate = max(settings.min_rate, base * settings.decrease_factor)
            bucket.rate = new_rate
            bucket.recent_ok.clear()
            bucket.epoch += 1
            pause = retry_after if retry_after is not None else 1.0 / new_rate
            bucket.paused_until = max(bucket.paused_until, now + min(pause, settings.max_pause))
            bucket.next_free = bucket.paused_until

    def rate(self, project: str, location: str, kind: Kind) -> float | None:
        """The allowed requests/second of a bucket now; None when it is not limited."""
        with self._lock:
            return self._bucket((project, location, kind)).effective_rate()
