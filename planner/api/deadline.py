"""Total deadlines and cancellation for requests: socket waits bounded by the calling thread's deadline.

httpx's timeouts bound each socket wait, not a request: a server that sends one byte every
two seconds keeps a 60 s read timeout from ever firing. Here every wait of a request
(connect, send, each read of the headers and of the body) is cut to what is left of the
request's total deadline, set by the caller around each attempt (`Deadlines.scope`), and is
sliced so that `cancel()` (Ctrl-C) ends it within a quarter of a second. What happens after
a deadline or a cancellation (retry, give up) is the client's business.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
import typing
from collections.abc import Callable, Iterable, Iterator

import httpcore
import httpx

# The longest a socket wait runs before it looks at the deadline and cancellation again.
SLICE = 0.25


class Deadlines:
    """The deadline of the request each thread is sending, and a cancellation for all of them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._local = threading.local()
        self._cancel_at: float | None = None
        self._cancelled = threading.Event()

    @contextlib.contextmanager
    def scope(self, seconds: float) -> Iterator[None]:
        """Bound everything this thread sends or receives inside the block to `seconds` in total."""
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = self._clock() + seconds
        try:
            yield
        finally:
            self._local.deadline = previous

    def cancel(self, grace: float = 0.0) -> None:
        """End every request still waiting `grace` seconds from now (and every pause of the client)."""
        at = self._clock() + grace
        self._cancel_at = at if self._cancel_at is None else min(self._cancel_at, at)
        if grace <= 0:
            self._cancelled.set()
        else:
            timer = threading.Timer(grace, self._cancelled.set)
            timer.daemon = True
            timer.start()

    @property
    def cancelled(self) -> bool:
        return self._cancel_at is not None and self._clock() >= self._cancel_at

    def pause(self, seconds: float, sleep: Callable[[float], None]) -> None:
        """Sleep between attempts; a cancellation ends the pause at once (when `sleep` is the real one)."""
        if sleep is time.sleep:
            self._cancelled.wait(seconds)
        else:
            sleep(seconds)

    def remaining(self) -> float | None:
        """Seconds left for this thread's request (None outside a scope); raises once cancelled."""
        if self.cancelled:
            raise httpcore.ReadError("cancelled: planner was interrupted")
        deadline: float | None = getattr(self._local, "deadline", None)
        if deadline is None:
            return None
        left = deadline - self._clock()
        if left <= 0:
            raise httpcore.ReadTimeout("the request's total deadline passed before the whole answer arrived")
        return left


def _cap(timeout: float | None, left: float | None) -> float | None:
    if left is None:
        return timeout
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A socket stream whose every wait keeps to the request's deadline and to cancellation."""

    def __init__(self, inner: httpcore.NetworkStream, deadlines: Deadlines) -> None:
        self._inner = inner
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        waited = 0.0
        while True:
            wait = _cap(timeout, self._deadlines.remaining())
            if wait is not None and timeout is not None:
                wait = min(wait, timeout - waited)
            piece = SLICE if wait is None else min(SLICE, max(wait, 0.0))
            try:
                return self._inner.read(max_bytes, piece)
            except httpcore.ReadTimeout:
                # Nothing was received in this slice (a timed-out recv consumes nothing).
                waited += piece
                if timeout is not None and waited >= timeout:
                    raise
                continue

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cap(timeout, self._deadlines.remaining()))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _cap(timeout, self._deadlines.remaining()))
        return _Stream(tls, self._deadlines)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.SyncBackend):
    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        wait = _cap(timeout, self._deadlines.remaining())
        return _Stream(super().connect_tcp(host, port, wait, local_address, socket_options), self._deadlines)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport (its request and error mapping) over pools whose sockets keep deadlines.

    Each thread gets its own small pool: a sync request holds one connection at a time, and
    one shared pool makes every request of 16 or 32 parallel workers take the pool's lock and
    poll every idle connection's socket, which cost more CPU than the request itself.
    """

    def __init__(self, deadlines: Deadlines, *, verify: bool, limits: httpx.Limits, trust_env: bool) -> None:
        # HTTPTransport.__init__ is not called: it would build a pool (and SSL context) never used.
        self._ssl_context = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
        self._keepalive_expiry = limits.keepalive_expiry
        self._deadlines = deadlines
        self._local = threading.local()
        self._pools: list[httpcore.ConnectionPool] = []
        self._pools_lock = threading.Lock()

    @property
    def _pool(self) -> httpcore.ConnectionPool:  # type: ignore[override]  # HTTPTransport sends through it
        pool: httpcore.ConnectionPool | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = httpcore.ConnectionPool(
                ssl_context=self._ssl_context,
                max_connections=2,
                max_keepalive_connections=2,
                keepalive_expiry=self._keepalive_expiry,
                http1=True,
                http2=False,
                network_backend=_Backend(self._deadlines),
            )
            self._local.pool = pool
            with self._pools_lock:
                self._pools.append(pool)
        return pool

    def close(self) -> None:
        with self._pools_lock:
            pools, self._pools = self._pools, []
        for pool in pools:
            pool.close()
