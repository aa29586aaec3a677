"""Owns the run's secrets: which strings must never be printed, logged or written, and masking them.

What is secret: the values of `sensitive: true` variables (planner.config.variables) and the values of
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


# --- secrets at rest: what state files hold instead of a secret --------------------------------

# A stored digest: DIGEST_PREFIX + salt + ":" + sha256(salt, value) in hex. The salt is random per
# value, so equal secrets do not look equal and a digest cannot be looked up in a table.
DIGEST_PREFIX: Final = "planner-digest:sha256:"


def digest(value: str, salt: str | None = None) -> str:
    import hashlib
    import os

    salt = salt if salt is not None else os.urandom(8).hex()
    hexdigest = hashlib.sha256(f"{salt}\0{value}".encode()).hexdigest()
    return f"{DIGEST_PREFIX}{salt}:{hexdigest}"


def is_digest(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(DIGEST_PREFIX)


def matches_digest(stored: str, value: str) -> bool:
    """Is `value` the secret `stored` (a digest) was made from?"""
    salt = stored[len(DIGEST_PREFIX) :].split(":", 1)[0]
    return digest(value, salt) == stored


def describe_digest(stored: str) -> str:
    """How `state show` prints a stored digest."""
    return f"(sensitive, digest sha256:{stored.rsplit(':', 1)[-1][:16]}...)"


def _env_lists(spec: Any) -> list[list[Any]]:
    """Every `env` list of a spec (containerSpec.env and pythonPackageSpec.env of each worker pool)."""
    out: list[list[Any]] = []
    job_spec = spec.get("jobSpec") if isinstance(spec, dict) else None
    pools = job_spec.get("workerPoolSpecs") if isinstance(job_spec, dict) else None
    if not isinstance(pools, list):
        return out
    for pool in pools:
        if not isinstance(pool, dict):
            continue
        for kind in ("containerSpec", "pythonPackageSpec"):
            section = pool.get(kind)
            env = section.get("env") if isinstance(section, dict) else None
            if isinstance(env, list):
                out.append(env)
    return out


def at_rest(spec: Any) -> Any:
    """The spec as a state file stores it: every `env` value, and every string holding a registered
    sensitive value, replaced by a salted digest. The same object when there is nothing to hide
    (the common case, and the cheap one: only the env lists are looked at)."""
    values = _values
    needs = values and _mask(spec, values) != spec
    if not needs and not any(
        isinstance(item, dict) and isinstance(item.get("value"), str) and not is_digest(item["value"])
        for env in _env_lists(spec)
        for item in env
    ):
        return spec
    return _hide(spec, values, ())


def _hide(value: Any, values: frozenset[str], path: tuple[Any, ...]) -> Any:
    if isinstance(value, str):
        if is_digest(value):
            return value
        in_env = len(path) >= 3 and path[-1] == "value" and path[-3] == "env"
        if in_env or any(v in value for v in values):
            return digest(value)
        return value
    if isinstance(value, dict):
        return {k: _hide(v, values, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v, values, (*path, i)) for i, v in enumerate(value)]
    return value


def align(stored: Any, spec: Any) -> Any:
    """`spec` with each string that sits where `stored` holds a digest replaced by that digest when
    it matches (or by a fresh digest when it does not), so that comparing the two compares secrets
    by digest and never shows one."""
    if is_digest(stored) and isinstance(spec, str):
        return stored if matches_digest(stored, spec) else digest(spec)
    if isinstance(stored, dict) and isinstance(spec, dict):
        return {k: align(stored[k], v) if k in stored else v for k, v in spec.items()}
    if isinstance(stored, list) and isinstance(spec, list):
        return [align(stored[i], v) if i < len(stored) else v for i, v in enumerate(spec)]
    return spec


def show_at_rest(value: Any) -> Any:
    """A stored spec for display: digests described, never printed as if they were values."""
    if is_digest(value):
        return describe_digest(value)
    if isinstance(value, dict):
        return {k: show_at_rest(v) for k, v in value.items()}
    if isinstance(value, list):
        return [show_at_rest(v) for v in value]
    return value
