"""Owns the run's secrets: which strings must never be printed, logged or written, and masking them.

What is secret: the values of `sensitive: true` variables (planner.variables) and the values of
`env` entries (planner.diff says where those sit in a spec; this module masks them in any JSON
document that holds specs). The CLI registers a run's sensitive values once, before anything
is printed; every output path (rendered plans and reports, error messages, --debug logs, the
embedded emulator's request log) goes through `mask_text` / `mask_data`. Kept here, in one place,
so that every module masking secrets masks the same ones.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, Final

MASK: Final = "(sensitive value)"

_lock = threading.Lock()
_values: frozenset[str] = frozenset()


def register(values: Iterable[str]) -> None:
    """Add strings (sensitive variable values) that must be masked wherever they would appear."""
    global _values
    fresh = {v for v in values if v}
    if fresh:
        with _lock:
            _values = _values | fresh


def registered() -> frozenset[str]:
    return _values


def mask_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """text with every registered secret (longest first, so one inside another goes too) masked."""
    values = _values if secrets is None else frozenset(secrets)
    if not values or not text:
        return text
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


def contains_secret(text: str, secrets: Iterable[str] | None = None) -> bool:
    values = _values if secrets is None else frozenset(secrets)
    return any(v in text for v in values)


def mask_data(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of a JSON-like value with every string holding a secret masked (keys included)."""
    values = _values if secrets is None else frozenset(secrets)
    if not values:
        return value
    return _mask(value, values)


def _mask(value: Any, values: frozenset[str]) -> Any:
    if isinstance(value, str):
        return mask_text(value, values)
    if isinstance(value, dict):
        return {mask_text(k, values): _mask(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, values) for v in value]
    return value


class MaskingFilter(logging.Filter):
    """Masks registered secrets in log records (the --debug log), whatever logged them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _values:
            message = record.getMessage()
            masked = mask_text(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


class MaskingStream:
    """A text stream that masks registered secrets in everything written through it.

    The CLI puts its standard output and error behind one of these, so that no command, view
    or library printing there can show a sensitive variable's value. Each write is masked on
    its own: a value would escape only if split across two writes, which click.echo and the
    logging handler never do.
    """

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError("write() argument must be str")  # click probes for binary streams
        self._stream.write(mask_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def mask_standard_streams() -> None:
    """Put sys.stdout and sys.stderr behind MaskingStream (once)."""
    import sys

    if not isinstance(sys.stdout, MaskingStream):
        sys.stdout = MaskingStream(sys.stdout)  # type: ignore[assignment]
    if not isinstance(sys.stderr, MaskingStream):
        sys.stderr = MaskingStream(sys.stderr)  # type: ignore[assignment]
