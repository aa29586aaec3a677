"""`VertexClient`: the CustomJob methods of Vertex AI v1 over httpx, with retries, pacing and typed errors.

It owns the wire: URLs per location, headers, JSON, pagination, the retry loop and
the never-blind create. It does not choose credentials or endpoints (`build_client`
does) and it does not interpret jobs (callers get the JSON dicts as sent by Vertex).
Every failure leaves it as one `ApiError`.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from planner import __version__
from planner.api.deadline import Deadlines
from planner.api.endpoint import Endpoint, parse_endpoint, redact_url
from planner.api.ratelimit import CREATE, REQUEST, Kind, RateLimiter, Ticket
from planner.api.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from planner.apimodel import API_VERSION
from planner.errors import ApiError, UsageError

log = logging.getLogger(__name__)

API_CLIENT_HEADER: Final = f"planner/{__version__}"
# Each attempt's total deadline (connect, send, the whole answer): `--request-timeout`.
DEFAULT_REQUEST_TIMEOUT: Final = 60.0
# Before the endpoint has answered once in this run, a refused or unreachable connection is
# retried only this long: a wrong endpoint or a stopped emulator fails in seconds, not minutes.
FRESH_CONNECT_BUDGET: Final = 3.0
# Google status names implied by an HTTP status when the body does not say (google/rpc/code.proto).
_IMPLIED_STATUS: Final[dict[int, str]] = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# Failures after which the request certainly did not reach the server.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport failures worth another attempt (timeouts, resets, a server closing a kept-alive connection).
_RETRYABLE_TRANSPORT: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_SEGMENT: Final = r"[^/?#\s]+"
_RESOURCE_NAME: Final = re.compile(rf"^projects/({_SEGMENT})/locations/({_SEGMENT})(?:/{_SEGMENT})+$")
_PARENT_PART: Final = re.compile(rf"^{_SEGMENT}$")


@dataclass
class ClientStats:
    """Counters of one client (thread-safe): what was sent and what came back."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    create_lookups: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _sent(self, rpc: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_method[rpc] += 1

    def _answered(self, status: int) -> None:
        with self._lock:
            self.by_status[status] += 1
            if status == 429:
                self.throttled += 1
            elif status >= 500:
                self.server_errors += 1

    def _add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, Any]:
        """A plain copy for reports: counters, per method and per HTTP status."""
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "throttled": self.throttled,
                "server_errors": self.server_errors,
                "transport_errors": self.transport_errors,
                "create_lookups": self.create_lookups,
                "by_method": dict(self.by_method),
                "by_status": dict(self.by_status),
            }


@dataclass(frozen=True)
class _Call:
    rpc: str
    method: str
    project: str
    location: str
    path: str  # "/v1/..." without query
    kind: Kind = REQUEST
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    base_url: str | None = None  # another Google API's root (Cloud Logging); None: the Vertex endpoint


def parse_error_body(content: bytes) -> tuple[str, str | None, list[Any]]:
    """(message, Google status, details) from a Google error body; non-JSON bodies give their text."""
    try:
        data = json.loads(content) if content else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            status = error.get("status")
            details = error.get("details")
            return (
                str(error.get("message") or ""),
                status if isinstance(status, str) and status else None,
                list(details) if isinstance(details, list) else [],
            )
        if isinstance(error, str):  # OAuth-style {"error": "...", "error_description": "..."}
            description = data.get("error_description")
            return (f"{error}: {description}" if description else error), None, []
    text = " ".join(content.decode("utf-8", errors="replace").split())
    return (text[:300] + "…" if len(text) > 300 else text), None, []


def error_from_response(response: httpx.Response, *, attempts: int = 1) -> ApiError:
    """One ApiError for an HTTP error answer: method, URL without query, HTTP and Google status."""
    request = response.request
    message, status, details = parse_error_body(response.content)
    code = response.status_code
    if not message:
        message = f"HTTP {code} {response.reason_phrase}".strip()
    return ApiError(
        message,
        method=request.method,
        url=redact_url(request.url),
        http_status=code,
        status=status or _IMPLIED_STATUS.get(code),
        attempts=attempts,
        details=details,
    )


# Shorter values are not masked: replacing "1" or "on" everywhere would garble every message.
_MIN_MASKED_LENGTH: Final = 4
MASK: Final = "(sensitive value)"


def secret_values(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The env values of a CustomJob request body (every worker pool, container and Python package)."""
    found: set[str] = set()
    spec = body.get("jobSpec")
    pools = spec.get("workerPoolSpecs") if isinstance(spec, Mapping) else None
    for pool in pools if isinstance(pools, list) else ():
        if not isinstance(pool, Mapping):
            continue
        for key in ("containerSpec", "pythonPackageSpec"):
            part = pool.get(key)
            env = part.get("env") if isinstance(part, Mapping) else None
            for item in env if isinstance(env, list) else ():
                value = item.get("value") if isinstance(item, Mapping) else None
                if isinstance(value, int | float) and not isinstance(value, bool):
                    value = json.dumps(value)  # as an error would quote a number sent by mistake
                if isinstance(value, str) and len(value) >= _MIN_MASKED_LENGTH:
                    found.add(value)
    return tuple(sorted(found, key=len, reverse=True))  # longest first: a secret may contain another


def mask_text(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret (as written, or JSON-escaped inside a quoted string) replaced by MASK."""
    for secret in secrets:
        text = text.replace(secret, MASK)
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
        if escaped != secret:
            text = text.replace(escaped, MASK)
    return text


def _mask_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, Mapping):
        return {k: _mask_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(v, secrets) for v in value]
    return value


def mask_error(err: ApiError, secrets: tuple[str, ...]) -> ApiError:
    """The same error with every secret of the request masked in its message and details."""
    if not secrets:
        return err
    err.message = mask_text(err.message, secrets)
    err.args = (err.message,)
    err.details = [_mask_value(d, secrets) for d in err.details]
    return err


def _transport_error(call: _Call, url: str, exc: httpx.RequestError, attempts: int) -> ApiError:
    detail = str(exc) or "no detail"
    return ApiError(
        f"request failed: {type(exc).__name__}: {detail}",
        method=call.method,
        url=redact_url(url),
        status="UNAVAILABLE" if isinstance(exc, _RETRYABLE_TRANSPORT) else None,
        attempts=attempts,
    )


def split_name(name: str) -> tuple[str, str]:
    """(project, location) of a resource name such as projects/p/locations/l/customJobs/1."""
    match = _RESOURCE_NAME.match(name)
    if not match:
        raise UsageError(f"invalid resource name {name!r}: expected projects/P/locations/L/...")
    return match.group(1), match.group(2)


def _check_parent(project: str, location: str) -> None:
    for what, value in (("project", project), ("location", location)):
        if not _PARENT_PART.match(value):
            raise UsageError(f"invalid {what} {value!r}")


class VertexClient:
    """The Vertex AI CustomJob API as planner uses it. Thread-safe; one per run.

    `auth` is applied as given (build_client decides: none for a plain-http loopback
    endpoint). `sleep` and `clock` drive retry delays, operation polling and, unless
    a limiter is passed, the rate limiter.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        endpoint: str | None = None,
        auth: httpx.Auth | None = None,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        quota_project: str | None = None,
        deadlines: Deadlines | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self._http = http
        # Deadlines reach the sockets only through a DeadlineTransport (`make_http_client`);
        # with another transport, cancellation still ends pauses between attempts.
        self.deadlines = deadlines or Deadlines()
        self.request_timeout = request_timeout
        self._answered = False  # has the endpoint answered at all in this run?
        self.endpoint: Endpoint = parse_endpoint(endpoint)
        self._auth = auth
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(clock=clock, sleep=sleep)
        self._sleep = sleep
        self._clock = clock
        self.stats = ClientStats()
        headers = {"x-goog-api-client": API_CLIENT_HEADER}
        if quota_project:
            headers["x-goog-user-project"] = quota_project
        self._headers = headers
        self._json_headers = {**headers, "content-type": "application/json"}

    def __repr__(self) -> str:
        return f"VertexClient(endpoint={str(self.endpoint)!r})"

    def __enter__(self) -> VertexClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cancel(self, grace: float = 0.0) -> None:
        """End every request still waiting `grace` seconds from now; later requests fail at once (Ctrl-C)."""
        self.deadlines.cancel(grace)

    def close(self) -> None:
        self._http.close()
        close_auth = getattr(self._auth, "close", None)
        if callable(close_auth):
            close_auth()

    # -- the API -----------------------------------------------------------------------------

    def list_jobs(
        self,
        project: str,
        location: str,
        *,
        filter: str | None = None,
        page_size: int = 100,
        read_mask: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every job under projects/P/locations/L matching `filter` (AIP-160), page by page."""
        _check_parent(project, location)
        params: dict[str, str] = {"pageSize": str(page_size)}
        if filter:
            params["filter"] = filter
        if read_mask:
            params["readMask"] = read_mask
        path = f"/{API_VERSION}/projects/{project}/locations/{location}/customJobs"
        seen_tokens: set[str] = set()
        while True:
            call = _Call("list", "GET", project, location, path, params=dict(params))
            response = self._execute(call)
            data = self._json(response)
            jobs = data.get("customJobs") or ()
            yield from jobs
            token = data.get("nextPageToken")
            if not token:
                return
            if token in seen_tokens:
                raise ApiError(
                    "the server repeated a page token; stopping to avoid an endless listing",
                    method="GET",
                    url=redact_url(response.request.url),
                )
            seen_tokens.add(token)
            params["pageToken"] = str(token)

    def get_job(self, name: str) -> dict[str, Any]:
        project, location = split_name(name)
        return self._json(self._execute(_Call("get", "GET", project, location, f"/{API_VERSION}/{name}")))

    def create_job(
        self,
        project: str,
        location: str,
        body: dict[str, Any],
        *,
        find_existing: Callable[[], dict[str, Any] | None],
    ) -> dict[str, Any]:
        """POST a CustomJob (see `_create_job`); an error never quotes an env value of the request."""
        secrets = secret_values(body)
        try:
            return self._create_job(project, location, body, find_existing=find_existing, secrets=secrets)
        except ApiError as err:
            raise mask_error(err, secrets) from None

    def _create_job(
        self,
        project: str,
        location: str,
        body: dict[str, Any],
        *,
        find_existing: Callable[[], dict[str, Any] | None],
        secrets: tuple[str, ...],
    ) -> dict[str, Any]:
        """POST a CustomJob; never re-sent blindly.

        After an ambiguous failure (5xx, or a connection lost once the request may have
        left) the client waits its backoff, then calls `find_existing()` (the caller
        lists by its identity labels) and returns that job if there is one; only
        otherwise is the POST sent again. A 429 or a refused connection means nothing
        was created, so the POST is simply retried. When retries run out after an
        ambiguous failure, `find_existing()` has the last word before the error.
        """
        _check_parent(project, location)
        call = _Call(
            "create",
            "POST",
            project,
            location,
            f"/{API_VERSION}/projects/{project}/locations/{location}/customJobs",
            kind=CREATE,
            body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        )
        budget = self.retry.start(self._clock)
        url = self._url(call)
        while True:
            attempt = budget.attempt()
            response, exc = self._attempt(call, url)
            retry_after: float | None = None
            if response is not None:
                code = response.status_code
                if code < 400:
                    return self._json(response)
                if code not in RETRYABLE_STATUSES:
                    raise error_from_response(response, attempts=attempt)
                ambiguous = code != 429
                retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
                failure: ApiError = error_from_response(response, attempts=attempt)
            else:
                assert exc is not None
                failure = _transport_error(call, url, exc, attempt)
                # Interrupted with the create perhaps on the server: the next plan finds it by labels.
                self._give_up_early(call, url, exc, budget.elapsed(), attempt)
                if not isinstance(exc, _RETRYABLE_TRANSPORT):
                    raise failure from None
                ambiguous = not isinstance(exc, _NOT_SENT)
            delay = budget.next_delay(retry_after)
            if delay is None:
                if ambiguous:
                    found = self._lookup(call, find_existing)
                    if found is not None:
                        return found
                raise failure
            self.stats._add("retries")
            shown = mask_text(failure.message, secrets)
            log.debug("create in %s/%s: %s; retrying in %.2fs", project, location, shown, delay)
            self._pause(delay)
            if ambiguous:
                found = self._lookup(call, find_existing)
                if found is not None:
                    return found

    def cancel_job(self, name: str) -> None:
        project, location = split_name(name)
        self._execute(_Call("cancel", "POST", project, location, f"/{API_VERSION}/{name}:cancel", body=b"{}"))

    def delete_job(self, name: str) -> dict[str, Any]:
        """DELETE a job; returns the long-running Operation."""
        project, location = split_name(name)
        return self._json(self._execute(_Call("delete", "DELETE", project, location, f"/{API_VERSION}/{name}")))

    def get_operation(self, name: str) -> dict[str, Any]:
        project, location = split_name(name)
        call = _Call("operations.get", "GET", project, location, f"/{API_VERSION}/{name}")
        return self._json(self._execute(call))

    def wait_operation(self, name: str, *, timeout: float) -> dict[str, Any]:
        """Poll an Operation (0.5 s, growing ×1.5 to 5 s) until `done`; returns it (check its `error`).

        Raises ApiError (status DEADLINE_EXCEEDED) if it is not done after `timeout` seconds.
        """
        deadline = self._clock() + timeout
        interval = 0.5
        while True:
            operation = self.get_operation(name)
            if operation.get("done"):
                return operation
            remaining = deadline - self._clock()
            if remaining <= 0:
                location = split_name(name)[1]
                raise ApiError(
                    f"operation {name} is not done after {timeout:g}s",
                    method="GET",
                    url=f"{self.endpoint.base_url(location)}/{API_VERSION}/{name}",
                    status="DEADLINE_EXCEEDED",
                )
            self._pause(min(interval, remaining))  # Ctrl-C ends the wait at once
            interval = min(interval * 1.5, 5.0)

    # -- the wire ----------------------------------------------------------------------------

    def _pause(self, seconds: float) -> None:
        self.deadlines.pause(seconds, self._sleep)
        if self.deadlines.cancelled:
            raise ApiError("interrupted: the request was not retried", status="CANCELLED")

    def _give_up_early(self, call: _Call, url: str, exc: httpx.RequestError, elapsed: float, attempt: int) -> None:
        """Raise instead of retrying: after a cancellation, or when a fresh run cannot connect at all."""
        if self.deadlines.cancelled:
            raise ApiError(
                "interrupted while waiting for the answer",
                method=call.method,
                url=redact_url(url),
                status="CANCELLED",
                attempts=attempt,
            ) from None
        fresh = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) and not self._answered
        if fresh and elapsed >= FRESH_CONNECT_BUDGET:
            base = self.endpoint.base_url(call.location)
            reason = str(exc) or type(exc).__name__
            raise ApiError(
                f"cannot connect to {redact_url(base)}: {reason} (check --endpoint / PLANNER_API_ENDPOINT, "
                "or that the emulator is running)",
                status="UNAVAILABLE",
                attempts=attempt,
            ) from None

    def _url(self, call: _Call) -> str:
        if call.base_url is not None:
            return call.base_url + call.path
        return self.endpoint.base_url(call.location) + call.path

    def _lookup(self, call: _Call, find_existing: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        self.stats._add("create_lookups")
        found = find_existing()
        if found is not None:
            log.debug("create in %s/%s: the job was created after all: %s", call.project, call.location,
                      found.get("name", "?"))
        return found

    def _attempt(self, call: _Call, url: str) -> tuple[httpx.Response | None, httpx.RequestError | None]:
        """Send once through the limiter: (response, None) for any HTTP answer, (None, error) otherwise."""
        ticket: Ticket = self.limiter.acquire(call.project, call.location, call.kind)
        self.stats._sent(call.rpc)
        started = time.perf_counter()
        try:
            with self.deadlines.scope(self.request_timeout):
                response = self._http.request(
                    call.method,
                    _parsed(url),
                    params=call.params,
                    content=call.body,
                    headers=self._json_headers if call.body is not None else self._headers,
                    auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
                )
        except httpx.RequestError as exc:
            self.stats._add("transport_errors")
            log.debug("%s %s failed: %s", call.method, call.path, type(exc).__name__)
            return None, exc
        code = response.status_code
        self._answered = True
        self.stats._answered(code)
        if code == 429:
            self.limiter.on_throttled(ticket, parse_retry_after(response.headers.get("retry-after"), now=time.time()))
        elif code < 500:
            self.limiter.on_success(ticket)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %d (%.0f ms)", call.method, call.path, code, (time.perf_counter() - started) * 1000)
        return response, None

    def _execute(self, call: _Call) -> httpx.Response:
        """Send with retries on 429/5xx/connection errors; the successful response or one ApiError."""
        budget = self.retry.start(self._clock)
        url = self._url(call)
        while True:
            attempt = budget.attempt()
            response, exc = self._attempt(call, url)
            retry_after: float | None = None
            if response is not None:
                code = response.status_code
                if code < 400:
                    return response
                failure = error_from_response(response, attempts=attempt)
                if code not in RETRYABLE_STATUSES:
                    raise failure
                retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
            else:
                assert exc is not None
                failure = _transport_error(call, url, exc, attempt)
                self._give_up_early(call, url, exc, budget.elapsed(), attempt)
                if not isinstance(exc, _RETRYABLE_TRANSPORT):
                    raise failure from None
            delay = budget.next_delay(retry_after)
            if delay is None:
                raise failure
            self.stats._add("retries")
            log.debug("%s %s: %s; retry %d in %.2fs", call.method, call.path, failure.message, attempt, delay)
            self._pause(delay)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            data = json.loads(response.content) if response.content else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ApiError(
                "the answer is not a JSON object",
                method=response.request.method,
                url=redact_url(response.request.url),
                http_status=response.status_code,
            )
        return data


@functools.lru_cache(maxsize=256)
def _parsed(url: str) -> httpx.URL:
    """A URL parsed once: every create of a location goes to the same one (httpx.URL is immutable)."""
    return httpx.URL(url)
