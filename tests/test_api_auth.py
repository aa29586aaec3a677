"""google-auth over httpx, for real: a loopback OAuth token endpoint, STS and IAM stand-ins, and an API
that checks Bearer tokens.

The service-account key is generated here (cryptography), its `token_uri` points at the
loopback server, which verifies the signed JWT assertion and hands out short-lived tokens.
Nothing leaves 127.0.0.1: ADC is pointed at key files, and the metadata server is disabled.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import os
import secrets
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.auth import identity_pool, impersonated_credentials
from google.oauth2 import service_account

from planner.api import CLOUD_PLATFORM_SCOPE, GoogleAuth, RetryPolicy, VertexClient, build_client
from planner.errors import ApiError

EMAIL = "planner-test@p.iam.gserviceaccount.com"
KEY_ID = "test-key-1"
JOB = "projects/p/locations/us-central1/customJobs/42"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AuthServer:
    """Token endpoint (/token), STS (/sts), IAM generateAccessToken (/iam/...) and a tiny Vertex API (/v1/...)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.expires_in = 3600
        self.token_delay = 0.0
        self.lock = threading.Lock()
        self.valid: set[str] = set()
        self.issued: list[str] = []
        self.grants: list[str] = []
        self.api_calls: list[tuple[str, str | None, str | None]] = []  # (path, bearer, quota project)
        self.reject_all = False
        self.token_error = False
        self.subject_token = "subject-" + secrets.token_hex(8)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body = outer.handle_post(self.path, raw, self.headers)
                self._send(status, body)

            def do_GET(self) -> None:
                status, body = outer.handle_api(self.path, self.headers)
                self._send(status, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    # -- what the service account key file says --

    def key_info(self) -> dict[str, Any]:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": "p",
            "private_key_id": KEY_ID,
            "private_key": pem,
            "client_email": EMAIL,
            "client_id": "1234",
            "token_uri": f"{self.url}/token",
        }

    def external_account_info(self, subject_file: Path) -> dict[str, Any]:
        return {
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/gh",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": f"{self.url}/sts",
            "credential_source": {"file": str(subject_file)},
        }

    # -- handlers --

    def _issue(self, grant: str) -> str:
        token = f"ya29.{grant}-{secrets.token_hex(12)}"
        with self.lock:
            self.valid.add(token)
            self.issued.append(token)
            self.grants.append(grant)
        return token

    def _verify_assertion(self, assertion: str) -> None:
        head, payload, signature = assertion.split(".")
        self.key.public_key().verify(
            _b64d(signature), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        header, claims = json.loads(_b64d(head)), json.loads(_b64d(payload))
        assert header["alg"] == "RS256" and header["kid"] == KEY_ID
        # google-auth always addresses the assertion to Google's token endpoint, whatever token_uri says.
        assert claims["iss"] == EMAIL and claims["aud"] == "https://oauth2.googleapis.com/token"
        # cloud-platform for API calls; impersonation rescopes the source credentials to iam.
        assert {CLOUD_PLATFORM_SCOPE, "https://www.googleapis.com/auth/iam"} & set(claims["scope"].split())
        assert claims["exp"] > time.time()

    def handle_post(self, path: str, raw: bytes, headers: Any) -> tuple[int, dict[str, Any]]:
        if self.token_delay:
            time.sleep(self.token_delay)
        if path == "/token":
            form = urllib.parse.parse_qs(raw.decode())
            if self.token_error or form.get("grant_type") != [JWT_GRANT]:
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            try:
                self._verify_assertion(form["assertion"][0])
            except Exception as exc:
                return 400, {"error": "invalid_grant", "error_description": f"bad assertion: {exc}"}
            return 200, {"access_token": self._issue("sa"), "expires_in": self.expires_in, "token_type": "Bearer"}
        if path == "/sts":
            form = urllib.parse.parse_qs(raw.decode())
            if form.get("grant_type") != [TOKEN_EXCHANGE] or form.get("subject_token") != [self.subject_token]:
                return 400, {"error": "invalid_grant", "error_description": "bad subject token"}
            return 200, {
                "access_token": self._issue("sts"),
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }
        if path.startswith("/iam/"):
            bearer = (headers.get("Authorization") or "").removeprefix("Bearer ")
            if bearer not in self.valid:
                return 401, {"error": {"code": 401, "message": "bad source token", "status": "UNAUTHENTICATED"}}
            expire = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.expires_in)
            return 200, {"accessToken": self._issue("iam"), "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return 404, {"error": {"code": 404, "message": "no such endpoint", "status": "NOT_FOUND"}}

    def handle_api(self, path: str, headers: Any) -> tuple[int, dict[str, Any]]:
        auth = headers.get("Authorization")
        bearer = auth.removeprefix("Bearer ") if auth else None
        with self.lock:
            self.api_calls.append((path, bearer, headers.get("x-goog-user-project")))
            ok = bearer in self.valid and not self.reject_all
        if not ok:
            return 401, {
                "error": {
                    "code": 401,
                    "message": "Request had invalid authentication credentials.",
                    "status": "UNAUTHENTICATED",
                }
            }
        name = path.removeprefix("/v1/")
        if name != JOB:
            return 404, {"error": {"code": 404, "message": f"{name} not found", "status": "NOT_FOUND"}}
        return 200, {"name": JOB, "displayName": "demo", "state": "JOB_STATE_RUNNING"}

    def revoke_all(self) -> None:
        with self.lock:
            self.valid.clear()


@pytest.fixture
def server() -> Iterator[AuthServer]:
    srv = AuthServer()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def no_metadata_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """ADC must find only what the test puts there: no gcloud config, no GCE metadata server."""
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:1")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:1")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_QUOTA_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)


def _sa_credentials(server: AuthServer) -> service_account.Credentials:
    return service_account.Credentials.from_service_account_info(server.key_info(), scopes=[CLOUD_PLATFORM_SCOPE])


def _client(server: AuthServer, auth: GoogleAuth) -> VertexClient:
    # Plain http to loopback with an explicit auth: only tests do this (build_client would go anonymous).
    return VertexClient(httpx.Client(timeout=10.0), endpoint=server.url, auth=auth,
                        retry=RetryPolicy(max_attempts=2, initial_backoff=0.01))


def test_token_fetched_used_and_refreshed_on_expiry(server: AuthServer) -> None:
    server.expires_in = 2
    auth = GoogleAuth(_sa_credentials(server), refresh_margin=0.5)
    with _client(server, auth) as client:
        assert client.get_job(JOB)["name"] == JOB
        assert server.grants == ["sa"]
        first = server.issued[0]
        assert server.api_calls[-1][1] == first
        client.get_job(JOB)
        assert len(server.issued) == 1  # still fresh: no second token request
        time.sleep(1.6)  # now within the 0.5 s margin of expiry
        client.get_job(JOB)
        assert len(server.issued) == 2
        assert server.api_calls[-1][1] == server.issued[1] != first
        assert auth.refresh_count == 2


def test_concurrent_requests_cause_a_single_refresh(server: AuthServer) -> None:
    server.expires_in = 2
    server.token_delay = 0.3  # a slow token endpoint widens the race
    auth = GoogleAuth(_sa_credentials(server), refresh_margin=0.5)
    with _client(server, auth) as client:
        for round_number in (1, 2):
            barrier = threading.Barrier(16)
            errors: list[BaseException] = []

            def worker(barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
                barrier.wait()
                try:
                    client.get_job(JOB)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=worker) for _ in range(16)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert errors == []
            assert len(server.issued) == round_number
            assert {bearer for _, bearer, _ in server.api_calls[-16:]} == {server.issued[-1]}
            if round_number == 1:
                time.sleep(1.6)  # expire, then 16 threads again


def test_401_refreshes_once_and_resends(server: AuthServer) -> None:
    auth = GoogleAuth(_sa_credentials(server))
    with _client(server, auth) as client:
        client.get_job(JOB)
        server.revoke_all()  # the server forgot the token: the next answer is 401
        assert client.get_job(JOB)["name"] == JOB
        assert len(server.issued) == 2
        server.reject_all = True  # every token refused: one refresh, then the 401 is the answer
        calls = len(server.api_calls)
        with pytest.raises(ApiError) as info:
            client.get_job(JOB)
        assert info.value.http_status == 401 and info.value.status == "UNAUTHENTICATED"
        assert len(server.api_calls) - calls == 2 and len(server.issued) == 3


def test_tokens_never_appear_in_logs_errors_or_reprs(server: AuthServer, caplog: pytest.LogCaptureFixture) -> None:
    google_logger = logging.getLogger("google")
    google_logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    errors: list[ApiError] = []
    try:
        auth = GoogleAuth(_sa_credentials(server), refresh_margin=0.0)
        with _client(server, auth) as client:
            client.get_job(JOB)
            for name in (JOB.replace("42", "43"), "projects/p/locations/us-central1/customJobs/44"):
                with pytest.raises(ApiError) as info:
                    client.get_job(name)
                errors.append(info.value)
            server.revoke_all()
            client.get_job(JOB)  # 401 → refresh → resend
            server.reject_all = True
            with pytest.raises(ApiError) as info:
                client.get_job(JOB)
            errors.append(info.value)
            server.reject_all = False
            server.token_error = True
            server.revoke_all()
            auth.credentials.token = None  # force a refresh that fails
            with pytest.raises(ApiError) as info:
                client.get_job(JOB)
            errors.append(info.value)
            texts = [caplog.text, repr(client), repr(auth), str(client.stats.snapshot())]
            texts += [str(e) for e in errors] + [repr(e.details) for e in errors]
    finally:
        google_logger.removeHandler(caplog.handler)
    assert len(server.issued) >= 2
    assert "GET" in caplog.text and "/v1/projects/p" in caplog.text  # debug logging was really on
    assert errors[-1].status == "UNAUTHENTICATED" and "could not obtain an access token" in str(errors[-1])
    for token in server.issued:
        for text in texts:
            assert token not in text
        assert token.split("-", 1)[1] not in caplog.text


def test_adc_from_a_key_file(server: AuthServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             no_metadata_server: None) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(server.key_info()))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    client = build_client(endpoint=None, quota_project="billing-proj")
    try:
        auth = client._auth
        assert isinstance(auth, GoogleAuth)
        assert isinstance(auth.credentials, service_account.Credentials)
        assert client.endpoint.base_url("us-central1") == "https://us-central1-aiplatform.googleapis.com"
        # Use the ADC-built auth against the loopback API (the regional URL is never requested).
        with _client(server, auth) as loopback:
            loopback.get_job(JOB)
        assert server.grants == ["sa"]
        assert server.api_calls[-1][2] == "billing-proj"  # the credentials carry the quota project
    finally:
        client.close()


def test_external_account_workload_identity(server: AuthServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            no_metadata_server: None) -> None:
    subject = tmp_path / "oidc-token"
    subject.write_text(server.subject_token)
    config = tmp_path / "wif.json"
    config.write_text(json.dumps(server.external_account_info(subject)))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(config))
    client = build_client(endpoint=None)  # no STS or project lookup at construction
    assert server.grants == []
    try:
        auth = client._auth
        assert isinstance(auth, GoogleAuth) and isinstance(auth.credentials, identity_pool.Credentials)
        with _client(server, auth) as loopback:
            loopback.get_job(JOB)
            loopback.get_job(JOB)
        assert server.grants == ["sts"]
    finally:
        client.close()


def test_impersonation_uses_the_source_token(server: AuthServer) -> None:
    creds = impersonated_credentials.Credentials(
        source_credentials=_sa_credentials(server),
        target_principal="deployer@p.iam.gserviceaccount.com",
        target_scopes=[CLOUD_PLATFORM_SCOPE],
        iam_endpoint_override=f"{server.url}/iam/generateAccessToken",
    )
    with _client(server, GoogleAuth(creds)) as client:
        client.get_job(JOB)
    assert server.grants == ["sa", "iam"]
    assert server.api_calls[-1][1] == server.issued[-1]


def test_workload_identity_works_without_requests_installed(server: AuthServer, tmp_path: Path) -> None:
    """`requests` is not a runtime dependency: ADC discovery and refresh go through httpx."""
    subject = tmp_path / "oidc-token"
    subject.write_text(server.subject_token)
    config = tmp_path / "wif.json"
    config.write_text(json.dumps(server.external_account_info(subject)))
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["requests"] = None  # any `import requests` now fails
        import httpx
        from planner.api import VertexClient, build_client
        client = build_client(endpoint=None)
        with VertexClient(httpx.Client(), endpoint={server.url!r}, auth=client._auth) as loopback:
            print(loopback.get_job({JOB!r})["name"])
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_"))}
    env.update(GOOGLE_APPLICATION_CREDENTIALS=str(config), NO_GCE_CHECK="True", GCE_METADATA_HOST="127.0.0.1:1",
               CLOUDSDK_CONFIG=str(tmp_path / "gcloud"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == JOB
    assert server.grants == ["sts"]
