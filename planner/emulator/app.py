"""The API behaviour behind the sockets: `EmulatorApp` answers one routed request at a time,
holds the store, page tokens, fault injector and request log, and serves the customJobs
RPCs; routing and parsing are `routing`'s, the operations.* RPCs `lro`'s, HTTP `handler`'s.

List answers and encoded jobs are memoised: refresh loops ask for the same pages again and
again, and an answer holds until the store changes or a job on it changes state on the clock.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final

from planner.emulator import wire
from planner.emulator.config import EmulatorConfig
from planner.emulator.decode import decode_custom_job
from planner.emulator.faults import FaultInjector, RequestLog
from planner.emulator.filter import FilterError, compile_filter
from planner.emulator.hardware_gate import reject_hardware
from planner.emulator.lifecycle import JobRecord, Timing, encode_job, encode_operation, job_view
from planner.emulator.lro import OperationEndpoints
from planner.emulator.routing import Answer, Route, enum_numbers, json_body, page_size
from planner.emulator.store import JobStore
from planner.emulator.tokens import PageTokens

_FILTER_CACHE_SIZE: Final = 256
_PAGE_CACHE_ENTRIES: Final = 512
_PAGE_CACHE_BYTES: Final = 32 * 1024 * 1024

Rpc = Callable[[Route, Mapping[str, str], bytes], Answer]


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
        self.operations = OperationEndpoints(self.store, self.tokens, config, clock)
        self.rpcs: dict[str, Rpc] = {
            "create": self.rpc_create,
            "get": self.rpc_get,
            "list": self.rpc_list,
            "cancel": self.rpc_cancel,
            "delete": self.rpc_delete,
            "operations.get": self.operations.rpc_get,
            "operations.wait": self.operations.rpc_wait,
            "operations.list": self.operations.rpc_list,
            "operations.delete": self.operations.rpc_delete,
            "operations.cancel": self.operations.rpc_cancel,
        }

    def answer(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        return self.rpcs[target.rpc](target, params, body)

    def encode(self, job_json: dict[str, Any], params: Mapping[str, str],
               mask: list[tuple[str, ...]] | None = None) -> dict[str, Any]:
        out = wire.with_server_defaults(job_json) if self.config.echo_defaults else job_json
        if mask:
            out = wire.project(out, mask)
        return wire.enums_as_numbers(out) if enum_numbers(params) else out

    def job_bytes(self, job: JobRecord, now: float, params: Mapping[str, str]) -> tuple[bytes, float]:
        """The encoded job and until when it holds; memoised on the record while its view is unchanged."""
        view = job_view(job, now)
        numbers = enum_numbers(params)
        hit = job.cache.get(numbers)
        if hit is not None and hit[0] == view:
            return hit[1], view.until
        encoded = json.dumps(self.encode(encode_job(job, now, view), params), ensure_ascii=False,
                             separators=(",", ":")).encode("utf-8")
        job.cache[numbers] = (view, encoded)
        return encoded, view.until

    def rpc_create(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        spec = decode_custom_job(json_body(body))
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
        size = page_size(params, self.config)
        token = params.get("pageToken", params.get("page_token", ""))
        after = self.tokens.read(token, target.parent, filter_text) if token else None
        mask_text = params.get("readMask", params.get("read_mask", ""))
        mask = wire.parse_field_mask(mask_text) if mask_text else None
        # Refresh loops ask for the same pages again and again: answers are memoised until the
        # store changes or a job the page depends on changes state on the clock.
        numbers = enum_numbers(params)
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


    def rpc_cancel(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        request = json_body(body)
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
