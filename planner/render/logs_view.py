"""How a job's log line is printed: timestamp, replica, severity (coloured on a terminal), text."""

from __future__ import annotations

from typing import Final

from planner.logs import LogLine
from planner.render.style import Style

SEVERITY_COLORS: Final = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "red", "ALERT": "red", "EMERGENCY": "red"}


def log_line_text(line: LogLine, *, color: bool = False) -> str:
    severity = Style(color).paint(f"{line.severity:<7}", SEVERITY_COLORS.get(line.severity, ""))
    return f"{line.timestamp} {line.task:<14} {severity} {line.text}"
