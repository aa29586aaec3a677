"""The emulator on a socket: a ThreadingHTTPServer whose handler (HTTP/1.1 keep-alive, always
Content-Length) reads bodies safely, asks the fault injector, writes or drops the answer and logs
it; what a request means is `routing`'s and `app`'s, starting and stopping the server `server`'s.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import urlsplit

from planner.emulator import cloudlogging, wire
from planner.emulator.app import EmulatorApp
from planner.emulator.faults import Decision, RequestRecord
from planner.emulator.routing import Answer, failure_answer, json_body, query_params, route
from planner.emulator.wire import ApiFailure

# Bodies up to this size are read and discarded when over the limit, to answer 413 in sync.
_DRAIN_LIMIT: Final = 64 * 1024 * 1024


class Server(ThreadingHTTPServer):
    """Serves one `EmulatorApp`, remembering its open connections so a stop can close them."""

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
    server: Server

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
                status, out = cloudlogging.answer(app.store, app.tokens, app.clock, method, json_body(body))
                return cloudlogging.RPC, None, Answer(status, out)
            target = route(method, path)
            rpc = target.rpc
            params = query_params(rpc, query)
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
