"""Live progress views: apply steps, `apply --wait` transitions, and the one-line status bar under them;
then the apply report (what was done, failed, left pending) and what a failed journal left unrecorded.

On a terminal, finished steps scroll up as lines that fit 80 columns (short job IDs, not
resource names) while one live line at the bottom says done/total, failures, elapsed time
and, once there is a rate to go by, an ETA; colours follow the step outcome or job state.
Without a terminal there is no live line and no escape: one plain line per event, each
said once. The views write to the stream they are given (the CLI passes stderr).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, TextIO

from planner.render.jobstate import duration_text, paint_state, state_label
from planner.render.style import Style
from planner.render.text import short_job

WIDTH: Final = 80
_OUTCOME_MARKS: Final = {"done": "✓", "failed": "✗", "pending": "…", "skipped": "-"}
_OUTCOME_COLORS: Final = {"done": "green", "failed": "red", "pending": "yellow", "skipped": ""}


def fit(text: str, width: int = WIDTH) -> str:
    """Cut a line to `width` characters with an ellipsis (the full text is in the final report)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def step_text(step: Any) -> str:
    kind = str(step.kind.value)
    if step.job and kind != "create":
        return f"{kind} {short_job(step.job)}"
    return kind


def eta_text(done: int, total: int, elapsed: float) -> str:
    """`ETA 1m20s` from the average rate so far; empty before the first item is done or after the last."""
    if done <= 0 or done >= total or elapsed <= 0:
        return ""
    return f"ETA {duration_text(math.ceil(elapsed / done * (total - done)))}"  # never "ETA 0s" while work remains


class LiveLine:
    """One status line kept at the bottom of a terminal, cleared before any other line is printed."""

    def __init__(self, stream: TextIO, *, tty: bool):
        self.stream = stream
        self.tty = tty
        self.shown = False
        self.lock = threading.RLock()

    def print(self, text: str) -> None:
        with self.lock:
            self._clear()
            self.stream.write(text + "\n")
            self.stream.flush()

    def show(self, text: str) -> None:
        if not self.tty:
            return
        with self.lock:
            self.stream.write("\r\033[K" + fit(text, WIDTH - 1))
            self.stream.flush()
            self.shown = True

    def _clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.shown = False

    def close(self) -> None:
        with self.lock:
            self._clear()
            self.stream.flush()


class _LiveView:
    """What the live views share: the live line on `stream`, the style, and the time since they began."""

    def __init__(self, stream: TextIO, *, tty: bool, color: bool, clock: Callable[[], float]):
        self.live = LiveLine(stream, tty=tty)
        self.style = Style(color)
        self.clock = clock
        self.started = clock()

    def close(self) -> None:
        self.live.close()


class ApplyProgress(_LiveView):
    """The apply view: one line per finished step; a live `done/total` line on a terminal.

    Workers only hand their events over (`event`, a deque append: no lock, no write on the
    step's path); the thread that calls `tick` (the CLI's main loop, a few times a second)
    and `close` prints them, in the order they happened.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        total: int,
        tty: bool,
        color: bool,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(stream, tty=tty, color=color, clock=clock)
        self.total = total
        self.done = 0
        self.failed = 0
        self.running: dict[tuple[str, str, str], float] = {}
        self.lock = threading.RLock()  # `line` may come from a signal handler while `tick` prints
        self._events: deque[tuple[Any, float]] = deque()

    def event(self, event: Any) -> None:
        self._events.append((event, self.clock()))

    def _show(self, event: Any, at: float) -> None:
        key = (event.address, event.step.kind.value, event.step.job or "")
        if event.status == "start":
            self.running[key] = at
            if not self.live.tty:
                self.live.print(fit(f"{event.address}: {step_text(event.step)} …"))
            return
        self.running.pop(key, None)
        self.done += 1
        if event.status == "failed":
            self.failed += 1
        mark = _OUTCOME_MARKS.get(event.status, "?")
        job = f" {short_job(event.job)}" if event.job and event.step.kind.value == "create" else ""
        head = f"{mark} {event.address}: {step_text(event.step)} {event.status}{job} [{event.elapsed:.1f}s]"
        color = _OUTCOME_COLORS.get(event.status, "")
        self.live.print(self.style.paint(fit(head), color))
        if event.message:
            # The reason is worth reading whole: on its own indented line, not cut.
            self.live.print(f"    {event.message}")

    def tick(self) -> None:
        """Print the events handed over since the last tick, then the live line."""
        with self.lock:
            while self._events:
                self._show(*self._events.popleft())
            self._status()

    def line(self, text: str) -> None:
        self.tick()
        self.live.print(text)

    def status_text(self) -> str:
        elapsed = self.clock() - self.started
        parts = [f"{self.done}/{self.total} steps"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.running:
            parts.append(f"{len(self.running)} running")
        parts.append(duration_text(elapsed))
        eta = eta_text(self.done, self.total, elapsed)
        if eta:
            parts.append(eta)
        return "  " + ", ".join(parts)

    def _status(self) -> None:
        self.live.show(self.status_text())

    def close(self) -> None:
        self.tick()
        self.live.close()


class WaitView(_LiveView):
    """The `apply --wait` view: each state change once, and a live `finished/total` line on a terminal."""

    def __init__(
        self,
        stream: TextIO,
        *,
        total: int,
        tty: bool,
        color: bool,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(stream, tty=tty, color=color, clock=clock)
        self.total = total
        self.finished = 0
        self.failed = 0
        self._sleep = sleep

    def transition(self, t: Any) -> None:
        was = state_label(t.before) if t.before else "-"
        head = f"[{duration_text(t.elapsed):>6}] {t.job.address} {short_job(t.job.name)}: {was} → "
        plain = head + state_label(t.after)
        self.live.print(head + paint_state(self.style, t.after) if len(plain) <= WIDTH else fit(plain))
        if t.error:
            self.live.print(f"    {self.style.red('error:')} {t.error}")

    def poll(self, result: Any) -> None:
        self.finished = len(result.states) - len(result.unfinished)
        self.failed = len(result.failed)
        self._status()

    def sleep(self, seconds: float) -> None:
        """Sleep between polls, keeping the elapsed time on the live line current (polls may be a minute apart)."""
        end = self.clock() + seconds
        while (left := end - self.clock()) > 0:
            self._sleep(min(1.0, left) if self.live.tty else left)
            self._status()

    def _status(self) -> None:
        parts = [f"{self.finished}/{self.total} jobs finished"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(f"{duration_text(self.clock() - self.started)} waiting")
        self.live.show("  " + ", ".join(parts))


class FollowView(_LiveView):
    """`logs --follow`: log lines on stdout; on a terminal, a live line on stderr with the job's state."""

    def __init__(
        self, out: TextIO, err: TextIO, *, tty: bool, color: bool, clock: Callable[[], float] = time.monotonic
    ):
        super().__init__(err, tty=tty, color=color, clock=clock)
        self.out = out
        self.count = 0
        self.state = ""

    def line(self, text: str) -> None:
        with self.live.lock:
            self.live.close()
            self.out.write(text + "\n")
            self.out.flush()
            self.count += 1
            self._status()

    def job_state(self, state: str) -> None:
        self.state = state
        self._status()

    def _status(self) -> None:
        state = paint_state(self.style, self.state) if self.state else "?"
        elapsed = duration_text(self.clock() - self.started)
        self.live.show(f"  following: job {state}, {self.count} lines, {elapsed} (Ctrl-C stops)")


def report_lines(report: Any) -> list[str]:
    """The apply report (an ApplyReport): counts, then the failed, pending and skipped steps."""
    by_outcome: dict[str, list[Any]] = {"done": [], "failed": [], "pending": [], "skipped": []}
    for result in report.results:
        by_outcome[result.outcome.value].append(result)
    failed, pending, skipped = by_outcome["failed"], by_outcome["pending"], by_outcome["skipped"]
    lines = [
        "",
        f"Apply complete: {len(by_outcome['done'])} steps done, {len(failed)} failed, {len(pending)} pending, "
        f"{len(skipped)} skipped.",
    ]
    for title, rows in (("Failed", failed), ("Pending (the next apply finishes these)", pending), ("Skipped", skipped)):
        if rows:
            lines.append(f"{title}:")
            for r in rows:
                message = f": {r.message}" if r.message else ""
                lines.append(f"  - {r.address}: {step_text(r.step)}{message}")
    return lines


def unrecorded_lines(report: Any, write_failed: bool) -> list[str]:
    """After a journal or final-write failure: exactly what exists but may not be in state."""
    lines: list[str] = []
    if report.unrecorded:
        lines.append(
            f"\nThe state journal could not be written ({report.unrecorded[0].error}); "
            "apply stopped starting new steps."
        )
        saved = "could not be saved either" if write_failed else "are in the state file written at the end"
        lines.append(f"Done but not journalled ({len(report.unrecorded)}; they {saved}):")
        lines.extend(f"  - {item.address}: {item.job or '(no job)'}" for item in report.unrecorded)
    if write_failed:
        lines.append(
            "The final state write failed: steps journalled before it are kept in the journal and folded in "
            "by the next run; jobs created but not recorded are adopted by their planner labels on the next "
            "plan (never created twice)."
        )
    return lines
