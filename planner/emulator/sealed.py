"""Owns how the emulator's data file keeps `env` values: sealed, never in plain text.

Vertex AI keeps a job's environment variables encrypted at rest and answers them in GET; the
emulator does the same with a key of its own in `<data file>.key` (mode 0600, made on first
use), so that its data file, which `--emulator` keeps under `state/`, holds no secret for a
grep or a backup to find. The cipher is SHA-256 in counter mode with a random nonce per value:
enough that the file does not hold the value, not a vault (whoever reads the key file reads
the values, as whoever can read the process's memory can).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from typing import Any, Final

PREFIX: Final = "emulator-sealed:"
_NONCE_BYTES: Final = 12


def load_key(path: str) -> bytes:
    """The key in `path`, made (random, mode 0600) if there is none yet."""
    try:
        with open(path, "rb") as fh:
            key = fh.read()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    return key


def _stream(key: bytes, nonce: bytes, size: int) -> bytes:
    blocks = []
    for counter in range((size + 31) // 32):
        blocks.append(hashlib.sha256(key + nonce + counter.to_bytes(4, "big")).digest())
    return b"".join(blocks)[:size]


def seal_text(key: bytes, text: str) -> str:
    data = text.encode("utf-8")
    nonce = os.urandom(_NONCE_BYTES)
    body = bytes(a ^ b for a, b in zip(data, _stream(key, nonce, len(data)), strict=True))
    return PREFIX + base64.b64encode(nonce + body).decode("ascii")


def unseal_text(key: bytes, sealed: str) -> str:
    try:
        raw = base64.b64decode(sealed[len(PREFIX) :], validate=True)
        nonce, body = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return bytes(a ^ b for a, b in zip(body, _stream(key, nonce, len(body)), strict=True)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return sealed  # a value that only looks sealed (or another key's): kept as it is


def seal(key: Callable[[], bytes], value: Any) -> Any:
    """A copy of a data-file record with every `env` entry's value sealed (only what changes is
    copied); `key` is asked for only when there is something to seal."""
    return _walk(value, lambda text: seal_text(key(), text) if not text.startswith(PREFIX) else text)


def unseal(key: Callable[[], bytes], value: Any) -> Any:
    """A record read back: every sealed `env` value in plain text again."""
    return _walk(value, lambda text: unseal_text(key(), text) if text.startswith(PREFIX) else text)


def _walk(value: Any, change: Any) -> Any:
    if isinstance(value, dict):
        out = None
        for k, v in value.items():
            if k == "env" and isinstance(v, list):
                new: Any = [
                    {**item, "value": change(item["value"])}
                    if isinstance(item, dict) and isinstance(item.get("value"), str)
                    else item
                    for item in v
                ]
            else:
                new = _walk(v, change)
            if new is not v:
                if out is None:
                    out = dict(value)
                out[k] = new
        return value if out is None else out
    if isinstance(value, list):
        items = [_walk(v, change) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value
