"""A local, persistent imitation of the Vertex AI v1 customJobs REST API (DESIGN §10).

Google's own clients work against it unchanged; tests and `--emulator` use it instead of
the cloud. Modules: `config` (settings, CLI parsing), `wire` (proto3 JSON, validation,
errors), `filter` (AIP-160), `store` (jobs, lifecycle, persistence), `tokens` (page tokens),
`faults` (latency, failures, quotas, request log), `server` (HTTP and the `Emulator` handle).
"""

from planner.emulator.clock import ManualClock
from planner.emulator.config import EmulatorConfig, Quota, config_from_cli, parse_quota
from planner.emulator.faults import RequestLog, RequestRecord
from planner.emulator.server import Emulator, running_emulator, serve_forever

__all__ = [
    "Emulator",
    "EmulatorConfig",
    "ManualClock",
    "Quota",
    "RequestLog",
    "RequestRecord",
    "config_from_cli",
    "parse_quota",
    "running_emulator",
    "serve_forever",
]
