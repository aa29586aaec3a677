"""A hand-driven clock for the emulator: tests move time forward instead of sleeping."""

from __future__ import annotations

import threading


class ManualClock:
    """Callable like `time.time`; starts at `start` (epoch seconds) and moves only by `advance`/`set`."""

    def __init__(self, start: float = 1_767_225_600.0):  # 2026-01-01T00:00:00Z
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now
