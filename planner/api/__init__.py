"""planner's Vertex AI client: endpoints, google-auth over httpx, retries, adaptive pacing, typed errors.

`build_client` wires the pieces for a run; the stages above (refresh, apply) see only
`VertexClient` and catch `planner.errors.ApiError`.
"""

from __future__ import annotations

import http.cookiejar
import os
import warnings
from typing import TYPE_CHECKING, Any, Final

import httpx

from planner.api.client import (
    API_CLIENT_HEADER,
    DEFAULT_REQUEST_TIMEOUT,
    ClientStats,
    VertexClient,
    error_from_response,
    parse_error_body,
)
from planner.api.deadline import Deadlines, DeadlineTransport
from planner.api.endpoint import Endpoint, is_loopback_host, parse_endpoint
from planner.api.ratelimit import CREATE, REQUEST, AimdSettings, RateLimiter, Ticket
from planner.api.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from planner.errors import UsageError

if TYPE_CHECKING:
    import google.auth.credentials

    from planner.api.auth import CLOUD_PLATFORM_SCOPE, GoogleAuth, HttpxAuthRequest

__all__ = [
    "API_CLIENT_HEADER",
    "CLOUD_PLATFORM_SCOPE",
    "CREATE",
    "REQUEST",
    "RETRYABLE_STATUSES",
    "AimdSettings",
    "ClientStats",
    "Deadlines",
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

# google-auth is imported only where credentials are used: an anonymous loopback endpoint
# (the emulator) never needs it, and importing it costs every such run some 25 ms.
_AUTH_NAMES: Final = frozenset({"CLOUD_PLATFORM_SCOPE", "GoogleAuth", "HttpxAuthRequest"})


def __getattr__(name: str) -> Any:
    if name in _AUTH_NAMES:
        from planner.api import auth

        return getattr(auth, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# apply runs up to --parallelism requests at once; keep a connection for each, with headroom.
POOL_SIZE: Final = 32
# A host that does not accept a connection within this long is taken as unreachable.
CONNECT_TIMEOUT: Final = 10.0
IMPERSONATION_LIFETIME: Final = 3600


class _NoCookies(http.cookiejar.CookieJar):
    """Vertex AI and Google's token endpoints set no cookies: a run keeps none and sends none."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


def make_http_client(
    *, timeout: float = 60.0, trust_env: bool = True, tls: bool = True, deadlines: Deadlines | None = None
) -> httpx.Client:
    """The one httpx.Client of a run: HTTP/1.1 keep-alive, a pool for parallel apply, bounded timeouts.

    `tls=False` is for a plain-http loopback endpoint, which never uses TLS: the client then
    skips building a verifying SSL context (loading the CA bundle takes a tenth of a second).
    With `deadlines`, every socket wait also keeps to the calling request's total deadline
    and ends soon after a cancellation (see `planner.api.deadline`).
    """
    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE, keepalive_expiry=30.0)
    transport = None
    if deadlines is not None:
        transport = DeadlineTransport(deadlines, verify=tls, limits=limits, trust_env=trust_env)
    return httpx.Client(
        verify=tls,
        timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT), pool=timeout),
        limits=limits,
        follow_redirects=False,
        trust_env=trust_env,
        transport=transport,
        cookies=_NoCookies(),
    )


def _application_default_credentials(request: HttpxAuthRequest) -> google.auth.credentials.Credentials:
    """ADC, in google-auth's order, without ever needing the `requests` package.

    google.auth.default() loads a key file (GOOGLE_APPLICATION_CREDENTIALS, then gcloud's
    application_default_credentials.json) without passing our transport on, and for an
    external account (workload identity federation) it then imports google-auth's
    `requests` transport, which fails where `requests` is not installed. So the two
    files are loaded here with the httpx transport; the metadata server and App Engine
    are left to google.auth.default(). Scopes are added by the caller: with scopes,
    google-auth would also look up an external account's project ID (an STS exchange
    and a Resource Manager call) that planner does not need.
    """
    import google.auth
    from google.auth import _cloud_sdk, environment_vars

    path = os.environ.get(environment_vars.CREDENTIALS, "")  # a missing file is an error, as in google-auth
    if not path:
        gcloud_file: str = _cloud_sdk.get_application_default_credentials_path()  # type: ignore[no-untyped-call]
        path = gcloud_file if os.path.isfile(gcloud_file) else ""
    if path:
        with warnings.catch_warnings():
            # The warning is about configuration from untrusted sources; ADC files are the user's own.
            warnings.simplefilter("ignore", DeprecationWarning)
            loaded = google.auth.load_credentials_from_file(path, request=request)  # type: ignore[no-untyped-call]
        creds: google.auth.credentials.Credentials = loaded[0]
        return creds
    found, _project = google.auth.default(request=request)
    return found


def _credentials(
    explicit: google.auth.credentials.Credentials | None,
    impersonate_service_account: str | None,
    quota_project: str | None,
    request: HttpxAuthRequest,
) -> google.auth.credentials.Credentials:
    import google.auth.credentials
    import google.auth.exceptions

    from planner.api.auth import CLOUD_PLATFORM_SCOPE

    if explicit is not None:
        creds = explicit
    else:
        try:
            creds = _application_default_credentials(request)
        except google.auth.exceptions.GoogleAuthError as exc:
            raise UsageError(
                f"no usable Google credentials: {exc}",
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
    timeout: float = DEFAULT_REQUEST_TIMEOUT,
    credentials: google.auth.credentials.Credentials | None = None,
) -> VertexClient:
    """The client of one run.

    `endpoint` None means Google's regional hosts with Application Default Credentials:
    the key file named by GOOGLE_APPLICATION_CREDENTIALS (the one environment variable
    read here, as google-auth would), gcloud's ADC file, then the metadata server. A plain-http loopback endpoint
    means anonymous requests: no credentials are looked up, impersonation is ignored.
    `credentials` replaces ADC (tests, embedding). Nothing is fetched until the first request.
    `timeout` is each attempt's total deadline: connecting, sending and the whole answer.
    """
    ep = parse_endpoint(endpoint)
    if ep.anonymous:
        auth: GoogleAuth | None = None
    else:
        from planner.api.auth import GoogleAuth, HttpxAuthRequest

        token_http = httpx.Client(timeout=min(timeout, 30.0))
        try:
            creds = _credentials(credentials, impersonate_service_account, quota_project, HttpxAuthRequest(token_http))
        except BaseException:
            token_http.close()
            raise
        auth = GoogleAuth(creds, token_http=token_http)
    # A loopback emulator must not be reached through an HTTP(S)_PROXY from the environment.
    deadlines = Deadlines()
    http = make_http_client(timeout=timeout, trust_env=not ep.anonymous, tls=not ep.anonymous, deadlines=deadlines)
    limiter = RateLimiter(
        max_requests_per_minute=max_requests_per_minute, max_creates_per_minute=max_creates_per_minute
    )
    return VertexClient(
        http,
        endpoint=endpoint,
        auth=auth,
        limiter=limiter,
        quota_project=quota_project,
        deadlines=deadlines,
        request_timeout=timeout,
    )


def storage_auth(
    *, impersonate_service_account: str | None = None, quota_project: str | None = None, timeout: float = 30.0
) -> GoogleAuth:
    """google-auth credentials (ADC, impersonation) as an httpx.Auth for the GCS state store."""
    token_http = httpx.Client(timeout=timeout)
    try:
        creds = _credentials(None, impersonate_service_account, quota_project, HttpxAuthRequest(token_http))
    except BaseException:
        token_http.close()
        raise
    return GoogleAuth(creds, token_http=token_http)
