"""Terminal colour for the text views: ANSI escapes only when asked, and one symbol per action.

Owns how an action or drift kind looks (symbol, colour); the views decide where it goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

_RESET: Final = "\x1b[0m"
_CODES: Final = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}

# Terraform's symbols, plus `!` for cancel (stop, keep the record), `=` for state-only actions
# on the job record and `~` for a state-only update of its lifecycle settings.
ACTION_SYMBOLS: Final[dict[str, str]] = {
    "create": "+",
    "replace": "-/+",
    "cancel": "!",
    "delete": "-",
    "adopt": "=",
    "forget": "=",
    "update": "~",
    "no-op": " ",
}

ACTION_COLORS: Final[dict[str, str]] = {
    "create": "green",
    "replace": "yellow",
    "cancel": "red",
    "delete": "red",
    "adopt": "cyan",
    "forget": "cyan",
    "update": "cyan",
    "no-op": "",
}

FIELD_COLORS: Final[dict[str, str]] = {"+": "green", "-": "red", "~": "yellow"}

DRIFT_COLORS: Final[dict[str, str]] = {
    "in_sync": "green",
    "changed": "yellow",
    "missing": "red",
    "terminal": "red",
    "pending": "yellow",
    "unmanaged": "cyan",
    "released": "",
}


@dataclass(frozen=True)
class Style:
    """Wraps text in ANSI escapes when color is on; the identity otherwise."""

    color: bool = False

    def paint(self, text: str, *names: str) -> str:
        if not self.color:
            return text
        codes = [_CODES[n] for n in names if n]
        if not codes or not text:
            return text
        return f"\x1b[{';'.join(codes)}m{text}{_RESET}"

    def bold(self, text: str) -> str:
        return self.paint(text, "bold")

    def red(self, text: str) -> str:
        return self.paint(text, "red")

    def action(self, action: str, text: str) -> str:
        return self.paint(text, ACTION_COLORS.get(action, ""))

    def field(self, symbol: str, text: str) -> str:
        return self.paint(text, FIELD_COLORS.get(symbol, ""))

    def drift(self, kind: str, text: str) -> str:
        return self.paint(text, DRIFT_COLORS.get(kind, ""))
