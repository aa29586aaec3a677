"""planner's Vertex AI client: endpoints, google-auth over httpx, retries, adaptive pacing, typed errors.

`build_client` wires the pieces for a run; the stages above (refresh, apply) see only
`VertexClient` and catch `planner.errors.ApiError`.
"""

from __future__ import annotations

from typing import Final

import google.auth
import google.auth.credentials
import google.auth.exceptions
import httpx

from planner.api.auth import CLOUD_PLATFORM_SCOPE, GoogleAuth, HttpxAuthRequest
from planner.api.client import API_CLIENT_HEADER, ClientStats, VertexClient, error_from_response, parse_error_body
from planner.api.endpoint import Endpoint, is_loopback_host, parse_endpoint
from planner.api.ratelimit import CREATE, REQUEST, AimdSettings, RateLimiter, Ticket
from planner.api.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from planner.errors import UsageError

__all__ = [
    "API_CLIENT_HEADER",
    "CLOUD_PLATFORM_SCOPE",
    "CREATE",
    "REQUEST",
    "RETRYABLE_STATUSES",
    "AimdSettings",
    "ClientStats",
    "Endpoint",
    "GoogleAuth",
    "HttpxAuthRequest",
    "RateLimiter",
    "RetryPolicy",
    "Ticket",
    "VertexClient",
    "build_client",
    "error_from_response",
    "is_loopback_host",
    "make_http_client",
    "parse_endpoint",
    "parse_error_body",
    "parse_retry_after",
]

# apply runs up to --parallelism requests at once; keep a connection for each, with headroom.
POOL_SIZE: Final = 32
IMPERSONATION_LIFETIME: Final = 3600


def make_http_client(*, timeout: float = 60.0, trust_env: bool = True) -> httpx.Client:
    """The one httpx.Client of a run: HTTP/1.1 keep-alive, a pool for parallel apply, bounded timeouts."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0), pool=timeout),
        limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE, keepalive_expiry=30.0),
        follow_redirects=False,
        trust_env=trust_env,
    )


def _credentials(
    explicit: google.auth.credentials.Credentials | None,
    impersonate_service_account: str | None,
    quota_project: str | None,
) -> google.auth.credentials.Credentials:
    if explicit is not None:
        creds = explicit
    else:
        try:
            # Covers a key file in GOOGLE_APPLICATION_CREDENTIALS, gcloud user credentials,
            # external accounts (workload identity federation) and the metadata server.
            creds, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise UsageError(
                f"no Google credentials found: {exc}",
                hint="run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, "
                "or use --emulator",
            ) from None
    creds = google.auth.credentials.with_scopes_if_required(  # type: ignore[no-untyped-call]
        creds, [CLOUD_PLATFORM_SCOPE]
    )
    if impersonate_service_account:
        from google.auth import impersonated_credentials

        creds = impersonated_credentials.Credentials(  # type: ignore[no-untyped-call]
            source_credentials=creds,
            target_principal=impersonate_service_account,
            target_scopes=[CLOUD_PLATFORM_SCOPE],
            lifetime=IMPERSONATION_LIFETIME,
        )
    if quota_project:
        with_quota = getattr(creds, "with_quota_project", None)
        if callable(with_quota):
            try:
                creds = with_quota(quota_project)
            except NotImplementedError:
                pass  # the x-goog-user-project header is sent by the client anyway
    return creds


def build_client(
    *,
    endpoint: str | None,
    impersonate_service_account: str | None = None,
    quota_project: str | None = None,
    max_requests_per_minute: float | None = None,
    max_creates_per_minute: float | None = None,
    timeout: float = 60.0,
    credentials: google.auth.credentials.Credentials | None = None,
) -> VertexClient:
    """The client of one run.

    `endpoint` None means Google's regional hosts with Application Default Credentials
    (google-auth reads GOOGLE_APPLICATION_CREDENTIALS, gcloud's files and the metadata
    server itself; planner reads no environment here). A plain-http loopback endpoint
    means anonymous requests: no credentials are looked up, impersonation is ignored.
    `credentials` replaces ADC (tests, embedding). Nothing is fetched until the first request.
    """
    ep = parse_endpoint(endpoint)
    if ep.anonymous:
        auth: GoogleAuth | None = None
    else:
        creds = _credentials(credentials, impersonate_service_account, quota_project)
        auth = GoogleAuth(creds, token_http=httpx.Client(timeout=min(timeout, 30.0)))
    # A loopback emulator must not be reached through an HTTP(S)_PROXY from the environment.
    http = make_http_client(timeout=timeout, trust_env=not ep.anonymous)
    limiter = RateLimiter(
        max_requests_per_minute=max_requests_per_minute, max_creates_per_minute=max_creates_per_minute
    )
    return VertexClient(http, endpoint=endpoint, auth=auth, limiter=limiter, quota_project=quota_project)
