"""The emulator's HTTP front end: routing, query parameters, bodies, faults, and the `Emulator` handle.

`EmulatorApp` turns one request (method, path, query, body) into one answer and knows
nothing of sockets; `_Handler` (http.server, HTTP/1.1 keep-alive, always Content-Length)
reads bodies safely, asks the fault injector, writes or drops the answer and logs it.
`Emulator` owns a ThreadingHTTPServer in a background thread plus the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from planner import apimodel
from planner.emulator import cloudlogging, wire
from planner.emulator.config import EmulatorConfig
from planner.emulator.decode import decode_custom_job
from planner.emulator.faults import Decision, FaultInjector, RequestLog, RequestRecord
from planner.emulator.filter import FilterError, compile_filter, parse_timestamp
from planner.emulator.hardware_gate import reject_hardware
from planner.emulator.lifecycle import JobRecord, OperationRecord, Timing, encode_job, encode_operation, job_view
from planner.emulator.store import JobStore
from planner.emulator.tokens import PageTokens
from planner.emulator.wire import ApiFailure

SYSTEM_PARAMS: Final = frozenset(
    {
        "alt", "$alt", "prettyPrint", "$prettyPrint", "pp", "fields", "$fields", "key", "quotaUser",
        "$.xgafv", "access_token", "oauth_token", "callback", "uploadType", "upload_protocol",
        "upload_type", "userIp", "$callback",
    }
)
_METHOD_PARAMS: Final[dict[str, frozenset[str]]] = {
    "list": frozenset({"filter", "pageSize", "page_size", "pageToken", "page_token", "readMask", "read_mask"}),
    "operations.list": frozenset(
        {"filter", "pageSize", "page_size", "pageToken", "page_token", "returnPartialSuccess",
         "return_partial_success"}
    ),
    "operations.wait": frozenset({"timeout"}),
}
_FILTER_CACHE_SIZE: Final = 256
_PAGE_CACHE_ENTRIES: Final = 512
_PAGE_CACHE_BYTES: Final = 32 * 1024 * 1024
# Bodies up to this size are read and discarded when over the limit, to answer 413 in sync.
_DRAIN_LIMIT: Final = 64 * 1024 * 1024


@dataclass(frozen=True)
class Route:
    rpc: str
    project: str
    location: str
    job_id: str | None = None
    op_id: str | None = None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def job_name(self) -> str:
        return f"{self.parent}/customJobs/{self.job_id}"


# (shape of the path after projects/P/locations/L, custom verb) → {HTTP method: rpc}; "*" is an ID.
_ROUTES: Final[dict[tuple[tuple[str, ...], str | None], dict[str, str]]] = {
    (("customJobs",), None): {"GET": "list", "POST": "create"},
    (("customJobs", "*"), None): {"GET": "get", "DELETE": "delete"},
    (("customJobs", "*"), "cancel"): {"POST": "cancel"},
    (("operations",), None): {"GET": "operations.list"},
    (("operations", "*"), None): {"GET": "operations.get", "DELETE": "operations.delete"},
    (("operations", "*"), "cancel"): {"POST": "operations.cancel"},
    (("operations", "*"), "wait"): {"POST": "operations.wait"},
    (("customJobs", "*", "operations"), None): {"GET": "operations.list"},
    (("customJobs", "*", "operations", "*"), None): {"GET": "operations.get", "DELETE": "operations.delete"},
    (("customJobs", "*", "operations", "*"), "cancel"): {"POST": "operations.cancel"},
    (("customJobs", "*", "operations", "*"), "wait"): {"POST": "operations.wait"},
}


def route(method: str, path: str) -> Route:
    """The API method a request path names; 404 for an unknown path, 405 for a wrong verb."""
    segments = unquote(path).strip("/").split("/")

    def not_found() -> ApiFailure:
        return ApiFailure("NOT_FOUND", f"The requested URL {path} was not found on this server.")

    if len(segments) < 6 or segments[0] not in ("v1", "ui") or segments[1] != "projects" or segments[3] != "locations":
        raise not_found()
    project, location, rest = segments[2], segments[4], segments[5:]
    verb: str | None = None
    if ":" in rest[-1]:
        rest[-1], verb = rest[-1].rsplit(":", 1)
    if not project or not location or any(not s or ":" in s for s in rest):
        raise not_found()
    shape = tuple("*" if i % 2 else s for i, s in enumerate(rest))
    methods = _ROUTES.get((shape, verb))
    if methods is None or (segments[0] == "ui" and "operations" not in rest):
        raise not_found()
    rpc = methods.get(method)
    if rpc is None:
        raise ApiFailure(
            "METHOD_NOT_ALLOWED",
            f"The method {method} is not allowed for {path}; allowed: {', '.join(sorted(methods))}.",
            headers={"Allow": ", ".join(sorted(methods))},
        )
    job_id = rest[1] if len(rest) > 1 and rest[0] == "customJobs" else None
    op_id = rest[-1] if len(rest) >= 2 and rest[-2] == "operations" else None
    return Route(rpc, project, location, job_id, op_id)


@dataclass
class Answer:
    status: int
    body: Mapping[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # the body already encoded (takes precedence over `body`)

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def failure_answer(failure: ApiFailure) -> Answer:
    return Answer(failure.http_status, failure.body(), dict(failure.headers))


class EmulatorApp:
    """The API behaviour behind the sockets: one call per request."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float]):
        self.config = config
        self.clock = clock
        seed = config.seed
        self.store = JobStore(
            clock=clock,
            timing=Timing(
                config.queue_seconds, config.pending_seconds, config.run_seconds, config.cancel_seconds,
                config.delete_seconds,
            ),
            data_path=config.data_path,
            fsync_interval=config.fsync_interval_seconds,
            rng=random.Random(None if seed is None else f"ids-{seed}"),
            delete_active=config.delete_active,
        )
        secret = secrets.token_bytes(32) if seed is None else hashlib.sha256(f"tokens-{seed}".encode()).digest()
        self.tokens = PageTokens(secret)
        self.faults = FaultInjector(
            fail_rates=config.fail_rates,
            drop_rate=config.drop_rate,
            lost_create_rate=config.lost_create_rate,
            create_quota=config.create_quota,
            request_quota=config.request_quota,
            clock=clock,
            rng=random.Random(None if seed is None else f"faults-{seed}"),
        )
        self.log = RequestLog()
        self.filters: dict[str, Callable[[Mapping[str, Any]], bool]] = {}  # compiled, by filter text
        self.pages: dict[tuple[Any, ...], tuple[int, float, bytes]] = {}  # (version, valid until, answer)
        self.pages_bytes = 0

    # -- request parsing ----------------------------------------------------------------------

    @staticmethod
    def query_params(rpc: str, query: str) -> dict[str, str]:
        params: dict[str, str] = {}
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False, errors="strict")
        except UnicodeDecodeError:
            raise wire.invalid_argument([("query", "The query string is not valid UTF-8.")]) from None
        allowed = _METHOD_PARAMS.get(rpc, frozenset())
        for key, value in pairs:
            if key not in SYSTEM_PARAMS and key not in allowed:
                message = (f'Invalid JSON payload received. Unknown name "{key}": Cannot bind query parameter. '
                           f"Field '{key}' could not be found in request message.")
                raise wire.invalid_argument([(key, message)], prefix=message)
            params[key] = value
        for key in ("alt", "$alt"):
            if key in params and params[key].split(";")[0] not in ("json", ""):
                raise wire.invalid_argument([(key, f"Unsupported value {params[key]!r}; only json is served.")])
        return params

    @staticmethod
    def enum_numbers(params: Mapping[str, str]) -> bool:
        return any("enum-encoding=int" in params.get(key, "") for key in ("$alt", "alt"))

    @staticmethod
    def json_body(body: bytes) -> Any:
        """The parsed JSON body; an empty body is an empty object, as Google's front end reads it."""
        if not body.strip():
            return {}
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            message = f"Invalid JSON payload received. {exc}."
            raise wire.invalid_argument([("", message)], prefix=message) from None
        except RecursionError:  # nested deeper than any message: Google's front end answers 400 too
            message = "Invalid JSON payload received. Nesting too deep."
            raise wire.invalid_argument([("", message)], prefix=message) from None
        except ValueError:  # an integer beyond Python's digit limit for int()
            message = "Invalid JSON payload received. A number is too large."
            raise wire.invalid_argument([("", message)], prefix=message) from None

    # -- dispatch -----------------------------------------------------------------------------

    def answer(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        handler = getattr(self, "rpc_" + target.rpc.replace(".", "_"))
        result: Answer = handler(target, params, body)
        return result

    def encode(self, job_json: dict[str, Any], params: Mapping[str, str],
               mask: list[tuple[str, ...]] | None = None) -> dict[str, Any]:
        out = wire.with_server_defaults(job_json) if self.config.echo_defaults else job_json
        if mask:
            out = wire.project(out, mask)
        return wire.enums_as_numbers(out) if self.enum_numbers(params) else out

    def job_bytes(self, job: JobRecord, now: float, params: Mapping[str, str]) -> tuple[bytes, float]:
        """The encoded job and until when it holds; memoised on the record while its view is unchanged."""
        view = job_view(job, now)
        numbers = self.enum_numbers(params)
        hit = job.cache.get(numbers)
        if hit is not None and hit[0] == view:
            return hit[1], view.until
        encoded = json.dumps(self.encode(encode_job(job, now, view), params), ensure_ascii=False,
                             separators=(",", ":")).encode("utf-8")
        job.cache[numbers] = (view, encoded)
        return encoded, view.until

    def rpc_create(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        spec = decode_custom_job(self.json_body(body))
        if not self.config.lenient:
            reject_hardware(spec, target.location, self.config.hardware_catalog)  # what Vertex AI refuses
        job = self.store.create(target.project, target.location, spec)
        return Answer(200, {}, raw=self.job_bytes(job, self.clock(), params)[0])

    def rpc_get(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        job = self.store.get(target.job_name)
        return Answer(200, {}, raw=self.job_bytes(job, self.clock(), params)[0])

    def rpc_list(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        filter_text = params.get("filter", "")
        predicate = self.filters.get(filter_text)
        if predicate is None:
            try:
                predicate = compile_filter(filter_text)
            except FilterError as exc:
                raise wire.invalid_argument(
                    [("filter", str(exc))], prefix=f"Invalid filter {filter_text!r}: {exc}"
                ) from None
            if len(self.filters) >= _FILTER_CACHE_SIZE:
                self.filters.clear()
            self.filters[filter_text] = predicate
        size = self.page_size(params)
        token = params.get("pageToken", params.get("page_token", ""))
        after = self.tokens.read(token, target.parent, filter_text) if token else None
        mask_text = params.get("readMask", params.get("read_mask", ""))
        mask = wire.parse_field_mask(mask_text) if mask_text else None
        # Refresh loops ask for the same pages again and again: answers are memoised until the
        # store changes or a job the page depends on changes state on the clock.
        numbers = self.enum_numbers(params)
        cache_key = (target.parent, filter_text, after, size, mask_text, numbers)
        version = self.store.version()
        hit = self.pages.get(cache_key)
        if hit is not None and hit[0] == version and self.clock() < hit[1]:
            return Answer(200, {}, raw=hit[2])
        page = self.store.page(target.project, target.location, predicate, after, size)
        now = page.now
        until = page.until
        token = self.tokens.issue(target.parent, filter_text, page.next_key) if page.next_key is not None else ""
        if mask:
            out: dict[str, Any] = {}
            if page.jobs:
                out["customJobs"] = [self.encode(encode_job(job, now), params, mask) for job in page.jobs]
                until = min([until, *(job_view(job, now).until for job in page.jobs)])
            if token:
                out["nextPageToken"] = token
            raw = Answer(200, out).payload()
        else:
            parts: list[bytes] = []
            if page.jobs:
                encoded = []
                for job in page.jobs:
                    data, job_until = self.job_bytes(job, now, params)
                    encoded.append(data)
                    until = min(until, job_until)
                parts.append(b'"customJobs":[' + b",".join(encoded) + b"]")
            if token:
                parts.append(b'"nextPageToken":' + json.dumps(token).encode())
            raw = b"{" + b",".join(parts) + b"}"
        if len(self.pages) >= _PAGE_CACHE_ENTRIES or self.pages_bytes > _PAGE_CACHE_BYTES:
            self.pages.clear()
            self.pages_bytes = 0
        self.pages[cache_key] = (version, until, raw)
        self.pages_bytes += len(raw)
        return Answer(200, {}, raw=raw)

    def page_size(self, params: Mapping[str, str]) -> int:
        text = params.get("pageSize", params.get("page_size", ""))
        default = min(self.config.default_page_size, self.config.max_page_size)
        if not text:
            return default
        try:
            size = int(text)
        except ValueError:
            raise wire.invalid_argument([("page_size", f"Invalid value {text!r}: expected an integer.")]) from None
        if size < 0:
            raise wire.invalid_argument([("page_size", "The page size must not be negative.")])
        if size == 0:
            return default
        return min(size, self.config.max_page_size)

    def rpc_cancel(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        request = self.json_body(body)
        unknown = [key for key in (request if isinstance(request, dict) else {}) if key != "name"]
        if not isinstance(request, dict) or unknown:
            message = f"Invalid JSON payload received. Unknown name {unknown[0]!r}: Cannot find field." if unknown \
                else "Invalid JSON payload received. Expected an object."
            raise wire.invalid_argument([("", message)], prefix=message)
        self.store.cancel(target.job_name)
        return Answer(200, {})

    def rpc_delete(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        op = self.store.delete(target.job_name)
        return Answer(200, encode_operation(op, self.clock()))

    def _operation(self, target: Route) -> OperationRecord:
        name = f"{target.parent}/operations/{target.op_id}"
        if target.job_id is not None:
            return self.store.get_operation(f"{target.job_name}/operations/{target.op_id}", job=target.job_name)
        return self.store.get_operation(name)

    def rpc_operations_get(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        return Answer(200, encode_operation(self._operation(target), self.clock()))

    def rpc_operations_wait(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        # Like Vertex: answer when the operation is done, or after `timeout` (at most 60 s) anyway.
        op = self._operation(target)
        limit = apimodel.parse_duration(params.get("timeout", "")) if params.get("timeout") else None
        wait = min(60.0, float(limit) if limit is not None else 60.0, max(0.0, op.done_at - self.clock()))
        if wait > 0:
            time.sleep(wait)
        return Answer(200, encode_operation(op, self.clock()))

    def rpc_operations_delete(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        self.store.delete_operation(self._operation(target))
        return Answer(200, {})

    def rpc_operations_cancel(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        op = self._operation(target)
        raise ApiFailure("FAILED_PRECONDITION", f'Operation "{op.name}" is not cancellable: it is already done.')

    def rpc_operations_list(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        job = target.job_name if target.job_id is not None else None
        ops = self.store.list_operations(target.project, target.location, job)
        size = self.page_size(params)
        token = params.get("pageToken", params.get("page_token", ""))
        binding = f"{target.parent}/operations {job or ''}"
        if token:
            after = self.tokens.read(token, binding, "")
            ops = [op for op in ops if (-op.created, -int(op.id)) > after]
        out: dict[str, Any] = {}
        if ops[:size]:
            out["operations"] = [encode_operation(op, self.clock()) for op in ops[:size]]
        if len(ops) > size:
            last = ops[size - 1]
            out["nextPageToken"] = self.tokens.issue(binding, "", (-last.created, -int(last.id)))
        return Answer(200, out)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: EmulatorApp):
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is normal; anything else is printed as a bug."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _BodyTooLarge(Exception):
    def __init__(self, size: int, drained: bool):
        super().__init__(size)
        self.size = size
        self.drained = drained


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "planner-emulator"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    # Buffered writes: status line, headers and body leave in one segment when the request is
    # done (handle_one_request flushes), which avoids Nagle/delayed-ACK stalls on keep-alive.
    wbufsize = 64 * 1024
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors http.server finds itself (bad request line, headers too long, …), Google-shaped."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # an unparsable request line: answer with a status line anyway
            self.request_version = "HTTP/1.1"
        status = {404: "NOT_FOUND", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE"}.get(
            code, "INTERNAL" if code >= 500 else "INVALID_ARGUMENT"
        )
        failure = ApiFailure(status, message or explain or f"HTTP {code}", http_status=code)
        payload = Answer(code, failure.body()).payload()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(limit)
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise wire.invalid_argument([("Content-Length", "Invalid Content-Length header.")]) from None
        if length > limit:
            drained = length <= _DRAIN_LIMIT
            remaining = length if drained else 0
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            raise _BodyTooLarge(length, drained)
        return self.rfile.read(length)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)
            except ValueError:
                self.close_connection = True
                raise wire.invalid_argument([("Transfer-Encoding", "Malformed chunked body.")]) from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            total += size
            if total > _DRAIN_LIMIT:
                raise _BodyTooLarge(total, False)
            data = self.rfile.read(size)
            self.rfile.readline(3)
            if total <= limit:
                parts.append(data)
        if total > limit:
            raise _BodyTooLarge(total, True)
        return b"".join(parts)

    def _serve(self) -> None:
        app = self.server.app
        split = urlsplit(self.path)
        rpc, fault, answer = self._handle(app, split.path, split.query)
        status = 0 if answer is None else answer.status
        # Logged before answering, so a client that has its answer (or lost it) finds the record.
        app.log.add(RequestRecord(self.command, split.path, split.query, status, fault, rpc, time.time()))
        if answer is not None:
            self._write(answer)
        else:
            self._drop()

    def _handle(self, app: EmulatorApp, path: str, query: str) -> tuple[str, str | None, Answer | None]:
        """(rpc, injected fault, answer); no answer means: close the connection without one."""
        rpc = "unknown"
        try:
            try:
                body = self._read_body(app.config.max_body_bytes)
            except _BodyTooLarge as exc:
                if not exc.drained:
                    self.close_connection = True
                raise ApiFailure(
                    "PAYLOAD_TOO_LARGE",
                    f"The request body is {exc.size} bytes; the limit is {app.config.max_body_bytes} bytes.",
                    details=[wire.error_info("REQUEST_TOO_LARGE")],
                ) from None
            method = self.command
            override = self.headers.get("X-HTTP-Method-Override")
            if override and method == "POST":
                # google-api-python-client sends a GET whose URL is over 2,048 characters as a POST
                # with this header and the query string as a form-encoded body.
                method = override.strip().upper()
                content_type = self.headers.get("Content-Type", "")
                if method == "GET" and content_type.startswith("application/x-www-form-urlencoded"):
                    query = "&".join(q for q in (query, body.decode("utf-8", "replace")) if q)
                    body = b""
            if cloudlogging.is_logging_path(path):  # Cloud Logging's entries:list, for `planner logs`
                status, out = cloudlogging.answer(app.store, app.tokens, app.clock, method, app.json_body(body))
                return cloudlogging.RPC, None, Answer(status, out)
            target = route(method, path)
            rpc = target.rpc
            params = app.query_params(rpc, query)
            if app.config.latency_ms:
                time.sleep(app.config.latency_ms / 1000.0)
            decision: Decision = app.faults.decide(rpc, target.project, target.location)
            if decision.action == "drop":
                return rpc, decision.fault, None
            if decision.failure is not None:
                return rpc, decision.fault, failure_answer(decision.failure)
            answer = app.answer(target, params, body)
            if rpc == "create" and app.faults.lose_create_answer():
                return rpc, "lost_create", None
            return rpc, None, answer
        except ApiFailure as failure:
            return rpc, None, failure_answer(failure)
        except Exception as exc:  # a bug in the emulator: answer 500 and say so on stderr
            traceback.print_exc(file=sys.stderr)
            bug = ApiFailure("INTERNAL", f"Emulator internal error: {type(exc).__name__}: {exc}")
            return rpc, None, failure_answer(bug)

    def _write(self, answer: Answer) -> None:
        payload = answer.payload()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class Emulator:
    """A running (or startable) emulator: `start()`, `url`, `request_log`, test helpers, `stop()`."""

    def __init__(self, config: EmulatorConfig | None = None, *, clock: Callable[[], float] | None = None):
        self.config = config or EmulatorConfig()
        self.clock: Callable[[], float] = clock or time.time
        self.app = EmulatorApp(self.config, self.clock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        if self._stopped:
            raise RuntimeError("a stopped emulator cannot be restarted; create a new Emulator on the same data")
        self._server = _Server((self.config.host, self.config.port), self.app)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="planner-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and flush the data file; safe to call twice."""
        self._stopped = True
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            with server.connections_lock:
                open_connections = list(server.connections)
            for conn in open_connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            if self._thread is not None:
                self._thread.join(timeout=5)
        self.app.store.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def request_log(self) -> RequestLog:
        return self.app.log

    # -- helpers for tests and benchmarks (no HTTP, no faults, not logged) ---------------------

    def seed_job(
        self,
        project: str,
        location: str,
        job_json: Mapping[str, Any],
        *,
        state: str | None = None,
        create_time: float | str | datetime | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Insert a job straight into the store (validated like a create); returns it as GET would.

        Raises ValueError for a body the API would reject or an unknown state.
        """
        body = dict(job_json)
        if labels:
            body["labels"] = {**dict(body.get("labels") or {}), **labels}
        try:
            spec = decode_custom_job(body)
        except ApiFailure as failure:
            raise ValueError(failure.message) from None
        if state is not None and state not in apimodel.JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        job = self.app.store.create(project, location, spec, created=_epoch(create_time), state=state)
        return encode_job(job, self.clock())

    def get_job(self, name: str) -> dict[str, Any]:
        return encode_job(self.app.store.get(name), self.clock())

    def list_jobs(self, project: str, location: str, filter_text: str = "") -> list[dict[str, Any]]:
        """Every job of (project, location) matching an AIP-160 filter, newest first, as list returns
        them, but with no HTTP, no faults and no request-log entry (for test assertions)."""
        predicate = compile_filter(filter_text)
        page = self.app.store.page(project, location, predicate, None, 10**9)
        return [encode_job(job, page.now) for job in page.jobs]

    def set_job_state(self, name: str, state: str) -> dict[str, Any]:
        """Force a job into `state` from now on (an out-of-band change, as another tool would make)."""
        return encode_job(self.app.store.force_state(name, state), self.clock())

    def delete_job_directly(self, name: str) -> bool:
        """Remove a job without an operation (deleted outside planner); False if it did not exist."""
        return self.app.store.remove(name)

    def job_count(self) -> int:
        return self.app.store.count()


def _epoch(value: float | str | datetime | None) -> float | None:
    if value is None or isinstance(value, float | int):
        return value
    if isinstance(value, datetime):
        return value.timestamp()
    return parse_timestamp(value)


@contextlib.contextmanager
def running_emulator(
    config: EmulatorConfig | None = None, *, clock: Callable[[], float] | None = None, **overrides: Any
) -> Iterator[Emulator]:
    """A started emulator, stopped (and its data flushed) on exit."""
    emulator = Emulator(replace(config or EmulatorConfig(), **overrides), clock=clock)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def serve_forever(config: EmulatorConfig, *, ready: Callable[[Emulator], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM (for `planner emulator serve`); flushes the data file on the way out.

    `ready` is called once the server listens; without one, the URL is announced on stdout
    (the port may have been chosen by the OS). Ctrl-C ends with
    KeyboardInterrupt after a clean stop, so the CLI can exit 130; SIGTERM returns normally.
    """
    stopping = threading.Event()
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    emulator = Emulator(config)
    emulator.start()
    try:
        if ready is not None:
            ready(emulator)
        else:
            print(f"planner emulator listening on {emulator.url} (Ctrl-C to stop)", flush=True)
        while not stopping.wait(0.5):
            pass
    finally:
        emulator.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
