"""How a job state looks on a terminal: its short name and its colour, for every view that shows live jobs.

The status table, `apply --wait` transitions and the live progress line all colour states
from here; where a line goes is the views' business.
"""

from __future__ import annotations

from typing import Final

from planner.render.style import Style

STATE_COLORS: Final[dict[str, str]] = {
    "JOB_STATE_SUCCEEDED": "green",
    "JOB_STATE_FAILED": "red",
    "JOB_STATE_CANCELLED": "red",
    "JOB_STATE_EXPIRED": "red",
    "MISSING": "red",
    "JOB_STATE_QUEUED": "cyan",
    "JOB_STATE_PENDING": "cyan",
    "JOB_STATE_RUNNING": "yellow",
    "JOB_STATE_CANCELLING": "yellow",
    "JOB_STATE_UPDATING": "yellow",
}


def state_label(state: str) -> str:
    """JOB_STATE_RUNNING → RUNNING; pseudo-states (MISSING, NOT_CREATED) as they are."""
    return state.removeprefix("JOB_STATE_")


def paint_state(style: Style, state: str, text: str | None = None) -> str:
    """`text` (default: the state's label) in the state's colour."""
    return style.paint(state_label(state) if text is None else text, STATE_COLORS.get(state, ""))


def duration_text(seconds: float | None) -> str:
    """45s, 12m05s, 3h04m, 2d03h: two units at most, so a column stays narrow."""
    if seconds is None:
        return "-"
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
