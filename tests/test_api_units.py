"""Unit tests of planner.api without a server: endpoint rules, retry policy, rate limiter, error parsing.

`httpx.MockTransport` is used only for faults a real server cannot produce on demand
(a refused connection mid-run, a read timeout after the request left, a broken URL scheme).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from planner.api import (
    CREATE,
    REQUEST,
    AimdSettings,
    RateLimiter,
    RetryPolicy,
    VertexClient,
    build_client,
    error_from_response,
    parse_endpoint,
    parse_error_body,
    parse_retry_after,
)
from planner.api.client import split_name
from planner.errors import ApiError, UsageError


class FakeTime:
    """A clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


# -- endpoint ------------------------------------------------------------------------------------


def test_default_endpoint_is_regional_and_global() -> None:
    ep = parse_endpoint(None)
    assert not ep.anonymous
    assert ep.base_url("us-central1") == "https://us-central1-aiplatform.googleapis.com"
    assert ep.base_url("europe-west4") == "https://europe-west4-aiplatform.googleapis.com"
    assert ep.base_url("global") == "https://aiplatform.googleapis.com"
    with pytest.raises(UsageError):
        ep.base_url("us-central1.evil.com/")


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.9.8.7:1/", "http://127.9.8.7:1"),
        ("http://localhost:9000/v1/", "http://localhost:9000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("HTTP://LOCALHOST:8080", "http://localhost:8080"),
    ],
)
def test_plain_http_loopback_is_anonymous(url: str, base: str) -> None:
    ep = parse_endpoint(url)
    assert ep.anonymous
    assert ep.base_url("us-central1") == base
    assert ep.base_url("europe-west4") == base  # one endpoint for every location


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "http://10.0.0.1:8080", "http://localhost.evil.com", "http://0.0.0.0:80", "ftp://x"],
)
def test_plain_http_elsewhere_is_refused(url: str) -> None:
    with pytest.raises(UsageError):
        parse_endpoint(url)


@pytest.mark.parametrize("url", ["https://user:pw@host", "https://host/?key=1", "https://host:99999", "https://"])
def test_malformed_endpoints_are_refused(url: str) -> None:
    with pytest.raises(UsageError):
        parse_endpoint(url)


def test_https_endpoint_overrides_every_location() -> None:
    ep = parse_endpoint("https://vertex-proxy.example.com/v1/")
    assert not ep.anonymous
    assert ep.base_url("us-central1") == "https://vertex-proxy.example.com"
    bare = parse_endpoint("us-central1-aiplatform.googleapis.com")
    assert bare.base_url("asia-east1") == "https://us-central1-aiplatform.googleapis.com"


def test_resource_names() -> None:
    assert split_name("projects/p/locations/us-central1/customJobs/12") == ("p", "us-central1")
    assert split_name("projects/p/locations/l/operations/9") == ("p", "l")
    for bad in ("customJobs/1", "projects/p/locations/l", "projects/p/locations/l/customJobs/1?x=1"):
        with pytest.raises(UsageError):
            split_name(bad)


# -- retry policy --------------------------------------------------------------------------------


def test_backoff_is_exponential_with_full_jitter() -> None:
    top = RetryPolicy(random=lambda: 1.0, initial_backoff=0.5, max_backoff=10.0)
    assert [top.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert RetryPolicy(random=lambda: 0.0).backoff(5) == 0.0
    half = RetryPolicy(random=lambda: 0.5, initial_backoff=1.0)
    assert half.backoff(3) == 2.0


def test_budget_bounds_attempts() -> None:
    t = FakeTime()
    budget = RetryPolicy(max_attempts=3, random=lambda: 1.0).start(t.clock)
    delays = []
    while True:
        budget.attempt()
        delay = budget.next_delay()
        if delay is None:
            break
        delays.append(delay)
        t.sleep(delay)
    assert budget.attempts == 3
    assert delays == [0.5, 1.0]


def test_budget_bounds_total_time_and_honours_retry_after() -> None:
    t = FakeTime()
    budget = RetryPolicy(max_elapsed=10.0, random=lambda: 0.0).start(t.clock)
    budget.attempt()
    assert budget.next_delay(retry_after=4.0) == 4.0  # Retry-After is a floor for the jittered delay
    t.sleep(4.0)
    budget.attempt()
    assert budget.next_delay(retry_after=7.0) is None  # would end past the 10 s budget: give up now
    assert budget.next_delay(retry_after=5.0) == 5.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("3", now=0) == 3.0
    assert parse_retry_after(" 1.5 ", now=0) == 1.5
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=1792567670.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=1792567690.0) == 0.0
    for bad in (None, "", "soon", "-3", "nan"):
        assert parse_retry_after(bad, now=0) is None


# -- rate limiter ---------------------------------------------------------------------------------


def test_limiter_starts_unlimited_for_requests_and_creates() -> None:
    """Vertex counts quotas per minute: spreading the first creates would not keep a burst under one."""
    t = FakeTime()
    limiter = RateLimiter(clock=t.clock, sleep=t.sleep)
    for kind in (REQUEST, CREATE):
        for _ in range(1000):
            limiter.on_success(limiter.acquire("p", "l", kind))
        assert limiter.rate("p", "l", kind) is None
    assert t.sleeps == []
    # The first 429 limits the bucket to what succeeded lately, and only that bucket.
    limiter.on_throttled(limiter.acquire("p", "l", CREATE))
    assert limiter.rate("p", "l", CREATE) is not None and limiter.rate("p", "l", REQUEST) is None


@pytest.mark.parametrize(("kind", "per_minute"), [(REQUEST, 600.0), (CREATE, 60.0), (CREATE, 7.0)])
def test_fixed_cap_is_held_within_five_percent(kind: Any, per_minute: float) -> None:
    t = FakeTime()
    caps = {"max_requests_per_minute": per_minute} if kind == REQUEST else {"max_creates_per_minute": per_minute}
    limiter = RateLimiter(clock=t.clock, sleep=t.sleep, **caps)
    start = t.now
    times = []
    for _ in range(int(per_minute * 5)):
        ticket = limiter.acquire("p", "us-central1", kind)
        times.append(ticket.at)
        limiter.on_success(ticket)  # successes must not lift a fixed cap
    # Every 60-second window holds at most the cap (+5 %), and the cap is actually reached.
    for i, first in enumerate(times):
        in_window = sum(1 for x in times[i:] if x < first + 60.0)
        assert in_window <= per_minute * 1.05
    first_minute = sum(1 for x in times if x < start + 60.0)
    assert first_minute >= per_minute * 0.95
    other = REQUEST if kind == CREATE else CREATE
    assert limiter.rate("p", "us-central1", other) is None  # the other bucket is not capped


def test_fixed_cap_holds_across_threads() -> None:
    limiter = RateLimiter(max_requests_per_minute=3000.0)  # 50/s, real clock
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(8):
            limiter.acquire("p", "l", REQUEST)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(stamps) == 64
    assert max(stamps) - started >= 63 / 50 * 0.95


def _successes(limiter: RateLimiter, t: FakeTime, n: int, spacing: float, kind: Any = REQUEST) -> None:
    for _ in range(n):
        limiter.on_success(limiter.acquire("p", "l", kind))
        t.now += spacing


def test_throttling_episode_lowers_the_measured_rate_once() -> None:
    t = FakeTime()
    limiter = RateLimiter(clock=t.clock, sleep=t.sleep)
    _successes(limiter, t, 20, 0.05)  # 20 ok within the last second: about 20/s
    in_flight = [limiter.acquire("p", "l", REQUEST) for _ in range(6)]
    for ticket in in_flight:
        limiter.on_throttled(ticket)
    rate = limiter.rate("p", "l", REQUEST)
    assert rate is not None and rate == pytest.approx(14.0, rel=0.1)  # 0.7 × measured, once for the episode
    # A 429 for a request paced after the decrease is a new episode: decrease again.
    limiter.on_throttled(limiter.acquire("p", "l", REQUEST))
    assert limiter.rate("p", "l", REQUEST) == pytest.approx(rate * 0.7)


def test_stray_429s_do_not_slow_a_limited_bucket() -> None:
    t = FakeTime()
    limiter = RateLimiter(clock=t.clock, sleep=t.sleep)
    _successes(limiter, t, 10, 0.1)
    limiter.on_throttled(limiter.acquire("p", "l", REQUEST))
    previous = limiter.rate("p", "l", REQUEST)
    assert previous is not None
    for i in range(400):
        ticket = limiter.acquire("p", "l", REQUEST)
        if i % 20 == 19:
            limiter.on_throttled(ticket)
        else:
            limiter.on_success(ticket)
        rate = limiter.rate("p", "l", REQUEST)
        assert rate is None or rate >= previous
        previous = rate if rate is not None else previous
    # Two 429s in a row are not stray: that is a new episode.
    limiter.on_throttled(limiter.acquire("p", "l", REQUEST))
    limiter.on_throttled(limiter.acquire("p", "l", REQUEST))
    after = limiter.rate("p", "l", REQUEST)
    assert after is not None and after < previous


def test_additive_increase_after_a_decrease_then_unlimited_again() -> None:
    t = FakeTime()
    settings = AimdSettings(increase_per_second=1.0, unlimited_above=50.0)
    limiter = RateLimiter(clock=t.clock, sleep=t.sleep, settings=settings)
    _successes(limiter, t, 10, 0.1)
    limiter.on_throttled(limiter.acquire("p", "l", REQUEST), retry_after=2.0)
    low = limiter.rate("p", "l", REQUEST)
    assert low is not None
    before = t.now
    ticket = limiter.acquire("p", "l", REQUEST)
    assert ticket.at >= before + 2.0 - 1e-9  # the bucket paused for Retry-After
    limiter.on_success(ticket)
    # At the paced rate the allowed rate grows by about 1 request/s per second.
    start, start_rate = t.now, limiter.rate("p", "l", REQUEST)
    assert start_rate is not None
    for _ in range(50):
        limiter.on_success(limiter.acquire("p", "l", REQUEST))
    grown = limiter.rate("p", "l", REQUEST)
    assert grown is not None and grown > start_rate
    assert grown - start_rate == pytest.approx(t.now - start, rel=0.3)
    for _ in range(5000):
        limiter.on_success(limiter.acquire("p", "l", REQUEST))
        if limiter.rate("p", "l", REQUEST) is None:
            break
    assert limiter.rate("p", "l", REQUEST) is None


def test_buckets_are_per_project_location_and_kind() -> None:
    t = FakeTime()
    limiter = RateLimiter(clock=t.clock, sleep=t.sleep)
    _successes(limiter, t, 10, 0.05, kind=REQUEST)
    for _ in range(5):
        limiter.on_throttled(limiter.acquire("p", "l", REQUEST))
    assert limiter.rate("p", "l", REQUEST) is not None
    assert limiter.rate("p", "l", CREATE) is None  # untouched: still unlimited
    assert limiter.rate("p", "other", REQUEST) is None
    assert limiter.rate("q", "l", REQUEST) is None


def test_waiter_takes_a_new_slot_after_a_decrease() -> None:
    t = FakeTime()
    limiter = RateLimiter(clock=t.clock, sleep=t.sleep, max_requests_per_minute=60.0)
    first = limiter.acquire("p", "l", REQUEST)

    def sleep_and_throttle(seconds: float) -> None:
        # While this waiter sleeps, another request is throttled: the bucket slows down.
        limiter._sleep = t.sleep
        for _ in range(3):
            limiter.on_throttled(first)
        t.sleep(seconds)

    limiter._sleep = sleep_and_throttle
    second = limiter.acquire("p", "l", REQUEST)
    assert second.epoch == first.epoch + 1
    assert second.at > first.at + 1.0


# -- error parsing --------------------------------------------------------------------------------


def _response(status: int, content: bytes, url: str = "https://h/v1/projects/p/locations/l/customJobs?pageToken=s3cr3t"
              ) -> httpx.Response:
    return httpx.Response(status, content=content, request=httpx.Request("GET", url))


def test_google_error_body_becomes_one_api_error() -> None:
    body = (
        b'{"error":{"code":400,"message":"Job is running.","status":"FAILED_PRECONDITION",'
        b'"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"X"}]}}'
    )
    err = error_from_response(_response(400, body), attempts=2)
    assert (err.method, err.http_status, err.status, err.attempts) == ("GET", 400, "FAILED_PRECONDITION", 2)
    assert err.url == "https://h/v1/projects/p/locations/l/customJobs"
    assert err.details[0]["reason"] == "X"
    assert "Job is running." in str(err) and "s3cr3t" not in str(err)


def test_non_json_and_empty_error_bodies() -> None:
    err = error_from_response(_response(502, b"<html><body>\n  Bad   Gateway </body></html>"))
    assert err.status is None and "Bad Gateway" in err.message
    empty = error_from_response(_response(503, b""))
    assert empty.status == "UNAVAILABLE" and "503" in empty.message
    assert parse_error_body(b'{"error":"invalid_grant","error_description":"bad"}') == ("invalid_grant: bad", None, [])
    assert parse_error_body(b"[1,2]")[0] == "[1,2]"


# -- client faults a server cannot produce on demand ------------------------------------------------


def _client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> tuple[VertexClient, FakeTime]:
    t = FakeTime()
    http = httpx.Client(transport=httpx.MockTransport(handler))
    kwargs.setdefault("retry", RetryPolicy(random=lambda: 0.5))
    return VertexClient(http, endpoint="http://127.0.0.1:9", sleep=t.sleep, clock=t.clock, **kwargs), t


JOB = {"name": "projects/p/locations/l/customJobs/1", "displayName": "x"}


def test_create_after_refused_connection_is_resent_without_lookup() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=JOB)

    lookups = []
    client, _ = _client(handler)
    job = client.create_job("p", "l", {"displayName": "x"}, find_existing=lambda: lookups.append(1) or None)
    assert job == JOB and calls == ["POST", "POST"] and lookups == []


def test_create_after_read_timeout_looks_up_before_resending() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadTimeout("timed out", request=request)

    client, _ = _client(handler)
    job = client.create_job("p", "l", {"displayName": "x"}, find_existing=lambda: JOB)
    assert job == JOB and calls == ["POST"]
    assert client.stats.create_lookups == 1


def test_create_gives_up_with_a_final_lookup() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    answers: list[dict[str, Any] | None] = [None, None, JOB]
    client, _ = _client(handler, retry=RetryPolicy(max_attempts=3, random=lambda: 0.0))
    assert client.create_job("p", "l", {}, find_existing=lambda: answers.pop(0)) == JOB
    assert client.stats.by_method["create"] == 3 and answers == []

    client2, _ = _client(handler, retry=RetryPolicy(max_attempts=2, random=lambda: 0.0))
    with pytest.raises(ApiError) as info:
        client2.create_job("p", "l", {}, find_existing=lambda: None)
    assert info.value.attempts == 2 and info.value.method == "POST" and "RemoteProtocolError" in str(info.value)


def test_unusable_transport_is_not_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.UnsupportedProtocol("no", request=request)

    client, t = _client(handler)
    with pytest.raises(ApiError) as info:
        client.get_job("projects/p/locations/l/customJobs/1")
    assert info.value.attempts == 1 and t.sleeps == []


def test_headers_and_non_json_success() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"not json")

    client, _ = _client(handler, quota_project="billing-proj")
    with pytest.raises(ApiError, match="not a JSON object"):
        client.get_job("projects/p/locations/l/customJobs/1")
    assert seen[0].headers["x-goog-api-client"].startswith("planner/")
    assert seen[0].headers["x-goog-user-project"] == "billing-proj"
    assert "authorization" not in seen[0].headers


def test_wait_operation_times_out_as_deadline_exceeded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"name": "projects/p/locations/l/operations/1", "done": False})

    client, t = _client(handler)
    with pytest.raises(ApiError) as info:
        client.wait_operation("projects/p/locations/l/operations/1", timeout=10.0)
    assert info.value.status == "DEADLINE_EXCEEDED"
    assert sum(t.sleeps) == pytest.approx(10.0)


# -- build_client -------------------------------------------------------------------------------


def test_build_client_loopback_is_anonymous_and_never_looks_up_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("ADC must not be consulted for a loopback endpoint")

    monkeypatch.setattr(google.auth, "default", boom)
    client = build_client(endpoint="http://127.0.0.1:1", impersonate_service_account="sa@p.iam.gserviceaccount.com")
    try:
        assert client._auth is None and client.endpoint.anonymous
    finally:
        client.close()
    with pytest.raises(UsageError, match="plain http"):
        build_client(endpoint="http://vertex.example.com")


def test_build_client_without_credentials_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    import google.auth.exceptions

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise google.auth.exceptions.DefaultCredentialsError("Could not automatically determine credentials.")

    monkeypatch.setattr(google.auth, "default", missing)
    with pytest.raises(UsageError) as info:
        build_client(endpoint=None)
    assert info.value.hint and "application-default" in info.value.hint


def test_build_client_impersonation_and_quota_project() -> None:
    from google.auth import impersonated_credentials
    from google.auth.credentials import AnonymousCredentials
    from google.oauth2 import credentials as user_credentials

    source = user_credentials.Credentials(token="unused-token")  # never refreshed: nothing is sent
    client = build_client(
        endpoint="https://vertex.example.com",
        credentials=source,
        impersonate_service_account="deployer@p.iam.gserviceaccount.com",
        quota_project="billing",
    )
    try:
        creds = client._auth.credentials  # type: ignore[union-attr]
        assert isinstance(creds, impersonated_credentials.Credentials)
        assert creds.quota_project_id == "billing"
        assert client._headers["x-goog-user-project"] == "billing"
    finally:
        client.close()
    anonymous = build_client(endpoint="https://vertex.example.com", credentials=AnonymousCredentials())
    anonymous.close()


def test_an_anonymous_loopback_client_never_imports_google_auth() -> None:
    """The emulator needs no credentials, so no run against it pays for importing google-auth."""
    import subprocess
    import sys

    code = (
        "import sys, planner.cli, planner.api\n"
        "planner.api.build_client(endpoint='http://127.0.0.1:9').close()\n"
        "print(sorted(m for m in sys.modules if m.startswith('google.auth')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
