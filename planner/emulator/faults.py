"""Injected latency, failures, dropped connections and quotas, and the log of every request answered.

Decisions come from one seeded `random.Random` behind a lock, so a test with a seed sees
the same faults for the same request sequence; quotas use the emulator's injectable clock.
The HTTP handler (`handler`) asks `FaultInjector` what to do and records the outcome in `RequestLog`.
"""

from __future__ import annotations

import math
import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from planner.emulator.wire import ApiFailure, error_info

MUTATING_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw and answered it.

    `status` is the HTTP status answered, 0 when the connection was closed without an answer;
    `fault` names an injected fault ("429", "500", "503", "drop", "lost_create", "quota") or is None.
    `rpc` is the API method ("create", "get", "list", "cancel", "delete", "operations.get", …).
    """

    method: str
    path: str
    query: str
    status: int
    fault: str | None
    rpc: str
    time: float

    @property
    def mutating(self) -> bool:
        return self.method in MUTATING_METHODS

    @property
    def answered(self) -> bool:
        return self.status != 0


class RequestLog:
    """Every request the emulator received, in order; safe to read from tests.

    A long-running server keeps only the latest `limit` records (tests never get near it).
    """

    def __init__(self, limit: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=limit)

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def calls(self, rpc: str | None = None, *, method: str | None = None) -> list[RequestRecord]:
        return [
            r
            for r in self.records
            if (rpc is None or r.rpc == rpc) and (method is None or r.method == method.upper())
        ]

    def mutating(self) -> list[RequestRecord]:
        """Requests that could change something (POST/PUT/PATCH/DELETE), whatever they were answered."""
        return [r for r in self.records if r.mutating]

    def status_counts(self, rpc: str | None = None) -> Counter[int]:
        return Counter(r.status for r in self.calls(rpc))

    def rpc_counts(self) -> Counter[str]:
        return Counter(r.rpc for r in self.records)

    def fault_counts(self) -> Counter[str]:
        return Counter(r.fault for r in self.records if r.fault is not None)

    def fraction(self, rpc: str, status: int) -> float:
        """Share of `rpc` calls answered with `status` (0.0 if there were none)."""
        calls = self.calls(rpc)
        return sum(1 for r in calls if r.status == status) / len(calls) if calls else 0.0


@dataclass(frozen=True)
class Decision:
    """What to do with a request before handling it."""

    action: str  # "serve" | "fail" | "drop"
    failure: ApiFailure | None = None
    fault: str | None = None


_QUOTA_METRICS: Final = {
    "create": "aiplatform.googleapis.com/custom_job_submission_requests",
    "request": "aiplatform.googleapis.com/resource_management_requests",
}


class FaultInjector:
    def __init__(
        self,
        *,
        fail_rates: Mapping[int, float],
        drop_rate: float,
        lost_create_rate: float,
        create_quota: tuple[int, float] | None,
        request_quota: tuple[int, float] | None,
        clock: Callable[[], float],
        rng: random.Random,
    ):
        self._fail_rates = sorted(fail_rates.items())
        self._drop_rate = drop_rate
        self._lost_create_rate = lost_create_rate
        self._quotas: dict[str, tuple[int, float] | None] = {"create": create_quota, "request": request_quota}
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str, str], deque[float]] = {}

    def decide(self, rpc: str, project: str | None, location: str | None) -> Decision:
        """Quotas first (they are deterministic), then the random faults."""
        with self._lock:
            if project is not None and location is not None:
                kinds = ["request"] + (["create"] if rpc == "create" else [])
                for kind in kinds:
                    failure = self._check_quota(kind, project, location)
                    if failure is not None:
                        return Decision("fail", failure, "quota")
                for kind in kinds:
                    self._charge(kind, project, location)
            if not self._fail_rates and not self._drop_rate:
                return Decision("serve")
            roll = self._rng.random()
            if roll < self._drop_rate:
                return Decision("drop", fault="drop")
            edge = self._drop_rate
            for status, rate in self._fail_rates:
                edge += rate
                if roll < edge:
                    return Decision("fail", injected_failure(status), str(status))
            return Decision("serve")

    def lose_create_answer(self) -> bool:
        if not self._lost_create_rate:
            return False
        with self._lock:
            return self._rng.random() < self._lost_create_rate

    def _window(self, kind: str, project: str, location: str) -> deque[float] | None:
        quota = self._quotas[kind]
        if quota is None:
            return None
        window = self._windows.setdefault((kind, project, location), deque())
        now = self._clock()
        while window and window[0] <= now - quota[1]:
            window.popleft()
        return window

    def _check_quota(self, kind: str, project: str, location: str) -> ApiFailure | None:
        window = self._window(kind, project, location)
        quota = self._quotas[kind]
        if window is None or quota is None or len(window) < quota[0]:
            return None
        limit, seconds = quota
        retry_after = max(1, math.ceil(window[0] + seconds - self._clock()))
        metric = _QUOTA_METRICS[kind]
        return ApiFailure(
            "RESOURCE_EXHAUSTED",
            f"The following quota metrics exceed quota limits: {metric} "
            f"(limit {limit} per {seconds:g}s for projects/{project}, region {location}).",
            details=[
                error_info(
                    "RATE_LIMIT_EXCEEDED",
                    {
                        "quota_metric": metric,
                        "quota_limit_value": str(limit),
                        "consumer": f"projects/{project}",
                        "service": "aiplatform.googleapis.com",
                        "quota_location": location,
                    },
                )
            ],
            headers={"Retry-After": str(retry_after)},
        )

    def _charge(self, kind: str, project: str, location: str) -> None:
        window = self._window(kind, project, location)
        if window is not None:
            window.append(self._clock())


def injected_failure(status: int) -> ApiFailure:
    if status == 429:
        return ApiFailure(
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for aiplatform.googleapis.com/resource_management_requests "
            "(emulator: injected 429).",
            details=[error_info("RATE_LIMIT_EXCEEDED", {"service": "aiplatform.googleapis.com"})],
            headers={"Retry-After": "1"},
        )
    if status == 503:
        return ApiFailure("UNAVAILABLE", "The service is currently unavailable (emulator: injected 503).")
    return ApiFailure("INTERNAL", "Internal error encountered (emulator: injected 500).")
