"""The operations.* RPCs (get, wait, list, delete, cancel) over the operations a job delete
leaves; the store keeps them, `lifecycle` writes them, and `app` routes to these methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from planner import apimodel
from planner.emulator.config import EmulatorConfig
from planner.emulator.lifecycle import OperationRecord, encode_operation
from planner.emulator.routing import Answer, Route, page_size
from planner.emulator.store import JobStore
from planner.emulator.tokens import PageTokens
from planner.emulator.wire import ApiFailure


class OperationEndpoints:
    """One method per operations.* RPC, called as `(route, query parameters, body) -> Answer`."""

    def __init__(self, store: JobStore, tokens: PageTokens, config: EmulatorConfig, clock: Callable[[], float]):
        self.store = store
        self.tokens = tokens
        self.config = config
        self.clock = clock

    def _operation(self, target: Route) -> OperationRecord:
        name = f"{target.parent}/operations/{target.op_id}"
        if target.job_id is not None:
            return self.store.get_operation(f"{target.job_name}/operations/{target.op_id}", job=target.job_name)
        return self.store.get_operation(name)

    def rpc_get(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        return Answer(200, encode_operation(self._operation(target), self.clock()))

    def rpc_wait(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        # Like Vertex: answer when the operation is done, or after `timeout` (at most 60 s) anyway.
        op = self._operation(target)
        limit = apimodel.parse_duration(params.get("timeout", "")) if params.get("timeout") else None
        wait = min(60.0, float(limit) if limit is not None else 60.0, max(0.0, op.done_at - self.clock()))
        if wait > 0:
            time.sleep(wait)
        return Answer(200, encode_operation(op, self.clock()))

    def rpc_delete(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        self.store.delete_operation(self._operation(target))
        return Answer(200, {})

    def rpc_cancel(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        op = self._operation(target)
        raise ApiFailure("FAILED_PRECONDITION", f'Operation "{op.name}" is not cancellable: it is already done.')

    def rpc_list(self, target: Route, params: Mapping[str, str], body: bytes) -> Answer:
        job = target.job_name if target.job_id is not None else None
        ops = self.store.list_operations(target.project, target.location, job)
        size = page_size(params, self.config)
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
