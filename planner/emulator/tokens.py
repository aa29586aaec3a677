"""Opaque list page tokens: the position to continue from, bound to the request, HMAC-signed.

A token carries the sort key of the last job returned and a digest of the parent and
filter it was issued for (AIP-158: other parameters must match); a token altered by a
client, issued by another server, or replayed with a different filter is rejected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Final

from planner.emulator.wire import invalid_argument

_TAG_BYTES: Final = 16


class PageTokens:
    def __init__(self, secret: bytes):
        self._secret = secret

    def _binding(self, parent: str, filter_text: str) -> str:
        return hashlib.sha256(f"{parent}\n{filter_text}".encode()).hexdigest()[:24]

    def issue(self, parent: str, filter_text: str, key: tuple[float, int]) -> str:
        payload = json.dumps([repr(key[0]), key[1], self._binding(parent, filter_text)]).encode()
        tag = hmac.new(self._secret, payload, hashlib.sha256).digest()[:_TAG_BYTES]
        return base64.urlsafe_b64encode(tag + payload).decode().rstrip("=")

    def read(self, token: str, parent: str, filter_text: str) -> tuple[float, int]:
        """The sort key a token continues from; 400 INVALID_ARGUMENT if it is not ours or not for this call."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            tag, payload = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
            expected = hmac.new(self._secret, payload, hashlib.sha256).digest()[:_TAG_BYTES]
            if len(tag) != _TAG_BYTES or not hmac.compare_digest(tag, expected):
                raise ValueError("bad signature")
            created, job_id, binding = json.loads(payload)
            key = (float(created), int(job_id))
        except (ValueError, TypeError, json.JSONDecodeError):
            raise invalid_argument(
                [("page_token", "The page token is invalid.")], prefix="Invalid page token."
            ) from None
        if binding != self._binding(parent, filter_text):
            raise invalid_argument(
                [("page_token", "The page token was issued for a different parent or filter.")],
                prefix="Invalid page token: it does not match the request's parent and filter.",
            )
        return key
