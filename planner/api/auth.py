"""google-auth credentials as an httpx.Auth: Bearer tokens, refreshed safely across threads.

google-auth ships no httpx transport, so this module has two small adapters: a
google.auth.transport.Request over httpx (used by credentials to reach token
endpoints: OAuth, STS for workload identity federation, IAM credentials for
impersonation, the metadata server) and `GoogleAuth`, which applies the token to
every request. Which credentials to use is `build_client`'s decision, not this module's.
Tokens never appear in logs, reprs or exception messages.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Generator, Mapping
from typing import Any, Final

import google.auth.credentials
import google.auth.exceptions
import google.auth.transport
import httpx

from planner.api.endpoint import redact_url
from planner.errors import ApiError

CLOUD_PLATFORM_SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"
# google-auth treats a token as expired 3 min 45 s before its expiry; do the same by default.
DEFAULT_REFRESH_MARGIN: Final = 225.0

log = logging.getLogger(__name__)


def _utcnow() -> datetime.datetime:
    # google-auth keeps `expiry` as a naive UTC datetime.
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class _AuthResponse(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._status = response.status_code
        self._headers = dict(response.headers)
        self._data = response.content

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class HttpxAuthRequest(google.auth.transport.Request):
    """The google.auth.transport.Request interface over an httpx.Client (no `requests` needed)."""

    def __init__(self, http: httpx.Client, *, timeout: float = 30.0) -> None:
        self._http = http
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _AuthResponse:
        try:
            response = self._http.request(
                method, url, content=body, headers=headers, timeout=timeout if timeout is not None else self._timeout
            )
        except httpx.HTTPError as exc:
            # Token endpoints take secrets in the body, never in the URL, but drop the query anyway.
            raise google.auth.exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"{method} {redact_url(url)}: {type(exc).__name__}: {exc}"
            ) from None
        return _AuthResponse(response)

    def __repr__(self) -> str:
        return "HttpxAuthRequest()"


class GoogleAuth(httpx.Auth):
    """Adds `Authorization: Bearer …` (and the credentials' quota project) to each request.

    The token is refreshed under a lock when it is missing or within `refresh_margin`
    seconds of expiry, so concurrent requests cause one refresh. A 401 answer forces
    one refresh (unless another thread already replaced the token) and one resend.
    """

    requires_request_body = True

    def __init__(
        self,
        credentials: google.auth.credentials.Credentials,
        *,
        token_http: httpx.Client | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        now: Callable[[], datetime.datetime] = _utcnow,
    ) -> None:
        self.credentials = credentials
        # The client that reaches token endpoints; owned (and closed) by this object.
        self._token_http = token_http if token_http is not None else httpx.Client(timeout=30.0)
        self._request = HttpxAuthRequest(self._token_http)
        self._margin = datetime.timedelta(seconds=refresh_margin)
        self._now = now
        self._lock = threading.Lock()
        self.refresh_count = 0

    def __repr__(self) -> str:
        return f"GoogleAuth({type(self.credentials).__name__})"

    def close(self) -> None:
        self._token_http.close()

    def _needs_refresh(self) -> bool:
        creds = self.credentials
        if not creds.token:
            return True
        expiry = creds.expiry
        return expiry is not None and self._now() + self._margin >= expiry

    def _refresh_locked(self, request: httpx.Request) -> None:
        log.debug("refreshing %s credentials", type(self.credentials).__name__)
        try:
            self.credentials.refresh(self._request)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.GoogleAuthError as exc:
            raise ApiError(
                f"could not obtain an access token ({type(self.credentials).__name__}): {exc}",
                method=request.method,
                url=redact_url(request.url),
                status="UNAUTHENTICATED",
            ) from None
        self.refresh_count += 1

    def _auth_headers(self, request: httpx.Request, *, stale_token: str | None = None) -> dict[str, str]:
        """Headers to apply, refreshing first if needed; `stale_token` forces a refresh if still current."""
        with self._lock:
            creds = self.credentials
            if self._needs_refresh() or (stale_token is not None and creds.token == stale_token):
                self._refresh_locked(request)
            headers: dict[str, str] = {}
            creds.apply(headers)  # type: ignore[no-untyped-call]
            return headers

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if isinstance(self.credentials, google.auth.credentials.AnonymousCredentials):
            yield request
            return
        headers = self._auth_headers(request)
        request.headers.update(headers)
        response = yield request
        if response.status_code != 401:
            return
        used = headers.get("authorization", "").removeprefix("Bearer ")
        log.debug("401 from %s %s: refreshing credentials once", request.method, redact_url(request.url))
        request.headers.update(self._auth_headers(request, stale_token=used))
        yield request
