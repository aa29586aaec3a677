"""Where Vertex AI requests go: regional hosts, an explicit override, and the plain-http loopback rule.

The endpoint decides the base URL per location and whether requests are anonymous;
it never reads flags or the environment (the CLI passes `--endpoint` or
`PLANNER_API_ENDPOINT` in) and knows nothing about credentials beyond that one bit.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import httpx

from planner.errors import UsageError

GLOBAL_BASE_URL: Final = "https://aiplatform.googleapis.com"
REGIONAL_BASE_URL: Final = "https://{location}-aiplatform.googleapis.com"
# Locations are lower-case words and digits joined by '-', e.g. us-central1, europe-west4.
_LOCATION = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (brackets allowed)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    """The resolved API root: per-location Google hosts, or one explicit base URL for every location."""

    override: str | None = None
    anonymous: bool = False

    def base_url(self, location: str) -> str:
        """The scheme://host[:port][/prefix] that `/v1/...` paths are appended to."""
        if self.override is not None:
            return self.override
        if location == "global":
            return GLOBAL_BASE_URL
        if not _LOCATION.match(location):
            raise UsageError(f"invalid location {location!r}: expected a region such as us-central1")
        return REGIONAL_BASE_URL.format(location=location)

    def __str__(self) -> str:
        return self.override or REGIONAL_BASE_URL


def parse_endpoint(url: str | None) -> Endpoint:
    """Check an explicit endpoint (`--endpoint` / PLANNER_API_ENDPOINT); None means Google's regional hosts.

    https to any host is accepted; plain http only to a loopback host, and then the
    requests are anonymous, as with Google's own emulators. A bare host (no scheme)
    means https, as `client_options.api_endpoint` does in Google's clients.
    """
    if url is None or not url.strip():
        return Endpoint()
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port  # validates the port
    except ValueError as exc:
        raise UsageError(f"invalid API endpoint {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in ("http", "https"):
        raise UsageError(f"invalid API endpoint {url!r}: the scheme must be https (or http for a loopback host)")
    if not host:
        raise UsageError(f"invalid API endpoint {url!r}: no host")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise UsageError(f"invalid API endpoint {url!r}: no credentials, query or fragment allowed in it")
    loopback = is_loopback_host(host)
    if scheme == "http" and not loopback:
        raise UsageError(
            f"refusing plain http to {host}: only loopback hosts (127.0.0.1, ::1, localhost) may use http",
            hint="use an https:// endpoint, or run the emulator on 127.0.0.1",
        )
    path = parts.path.rstrip("/")
    # Accept ".../v1" as written in some docs; planner appends the version itself.
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return Endpoint(override=f"{scheme}://{netloc}{path}", anonymous=(scheme == "http"))


def redact_url(url: httpx.URL | str) -> str:
    """scheme://host[:port]/path of a URL: no query string, no user info."""
    u = httpx.URL(url) if isinstance(url, str) else url
    return str(u.copy_with(query=None, fragment=None, username=None, password=None))
