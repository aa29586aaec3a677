"""A loopback reverse proxy that gives gcp-storage-emulator the generation preconditions it lacks.

The emulator ignores `ifGenerationMatch` (it never answers 412) and `generation=` on
reads, so against it alone the GCS store's lock and lost-update guards prove nothing.
This proxy forwards every request to the emulator, but first — under one lock, so the
check and the change are atomic — it looks up the object's current generation and answers
412 when an `ifGenerationMatch` does not hold (0 meaning "must not exist"), and 404 when a
read asks for a generation that is not the current one. It understands the requests the
state store sends: object GET/DELETE/PATCH on `/storage/v1/b/B/o/NAME` and uploads to
`/upload/storage/v1/b/B/o?name=NAME`.

For retry tests it can also fail on purpose: `inject("503")` answers the next matching
request 503 without forwarding it; `inject("lose")` forwards it and then answers 503, as if
the response had been lost.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

_OBJECT = re.compile(r"^/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>[^/]+)$")
_UPLOAD = re.compile(r"^/upload/storage/v1/b/(?P<bucket>[^/]+)/o$")
_HOP_BY_HOP = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "accept-encoding"}
)


@dataclass
class _Fault:
    kind: str  # "503" | "lose"
    method: str | None
    path_contains: str


@dataclass
class ProxyStats:
    forwarded: int = 0
    precondition_failures: int = 0
    faults_injected: int = 0
    requests: list[str] = field(default_factory=list)


class PreconditionProxy:
    """Start with `with PreconditionProxy(upstream) as proxy:`; `proxy.url` is its base URL."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.stats = ProxyStats()
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes; without this, Nagle plus delayed
                # ACKs add ~40 ms to every keep-alive response.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, content = proxy._serve(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PreconditionProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._client.close()

    def inject(self, kind: str, *, method: str | None = None, path_contains: str = "") -> None:
        """Fail the next request matching `method` and `path_contains` ("503" or "lose")."""
        with self._lock:
            self._faults.append(_Fault(kind, method, path_contains))

    # --- request handling -----------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for i, fault in enumerate(self._faults):
            if (fault.method is None or fault.method == method) and fault.path_contains in path:
                del self._faults[i]
                self.stats.faults_injected += 1
                return fault
        return None

    def _generation(self, bucket: str, name: str) -> int:
        resp = self._client.get(f"{self.upstream}/storage/v1/b/{bucket}/o/{quote(name, safe='')}")
        if resp.status_code == 404:
            return 0
        resp.raise_for_status()
        return int(resp.json()["generation"])

    def _target(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[str, str] | None:
        match = _OBJECT.match(path)
        if match:
            return match["bucket"], unquote(match["name"])
        match = _UPLOAD.match(path)
        if match and method == "POST" and "name" in query:
            return match["bucket"], query["name"][0]
        return None

    def _serve(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        with self._lock:
            self.stats.requests.append(f"{method} {parts.path}")
            fault = self._take_fault(method, raw_path)
            if fault is not None and fault.kind == "503":
                return 503, [("Content-Type", "application/json")], b'{"error": {"code": 503, "message": "injected"}}'
            target = self._target(method, parts.path, query)
            if target is not None:
                wanted = query.get("ifGenerationMatch", [None])[0]
                read_generation = query.get("generation", [None])[0] if method == "GET" else None
                if wanted is not None or read_generation is not None:
                    current = self._generation(*target)
                    # Like GCS, a missing object is 404 for reads and deletes, whatever the condition.
                    missing_target = current == 0 and method in ("GET", "DELETE", "PATCH")
                    if wanted is not None and int(wanted) != current and not missing_target:
                        self.stats.precondition_failures += 1
                        return 412, [("Content-Type", "application/json")], (
                            b'{"error": {"code": 412, "message": "At least one of the pre-conditions '
                            b'you specified did not hold."}}'
                        )
                    if read_generation is not None and int(read_generation) != current and not missing_target:
                        return 404, [("Content-Type", "application/json")], b'{"error": {"code": 404}}'
            forward_headers = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            resp = self._client.request(method, self.upstream + raw_path, content=body, headers=forward_headers)
            self.stats.forwarded += 1
            if fault is not None and fault.kind == "lose":
                return 503, [("Content-Type", "application/json")], b'{"error": {"code": 503, "message": "lost"}}'
            out_headers = [
                (k, v)
                for k, v in resp.headers.items()
                if k.lower() not in _HOP_BY_HOP and k.lower() != "content-encoding"
            ]
            return resp.status_code, out_headers, resp.content
