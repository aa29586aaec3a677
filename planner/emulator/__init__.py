"""A local, persistent imitation of the Vertex AI v1 customJobs REST API (DESIGN §10).

Google's own clients work against it unchanged; tests and `--emulator` use it instead of
the cloud. Modules: `config` (settings, CLI parsing), `wire` (message tables, errors,
response shaping), `decode` (request bodies and their validation), `filter` (AIP-160),
`lifecycle` (job and operation records, states derived from the clock), `store` (the
in-memory index behind one lock), `datalog` (the data file), `tokens` (page tokens), `faults`
(latency, failures, quotas, request log), `routing` (paths, query parameters, bodies), `app`
(the customJobs RPCs), `lro` (the operations RPCs), `handler` (HTTP), `server` (the
`Emulator` handle), `clock` (a hand-driven clock for tests), `cloudlogging` (a minimal Cloud
Logging `v2/entries:list` with synthetic lines for its jobs, for `planner logs`).

Decisions where the real service is undocumented (reference §8):
- Output-only fields in a create body are ignored (AIP-203); unknown fields are rejected.
- Label keys and values: at most 63 characters (the stricter of 63/64); at most 64 labels.
- Cancel of a finished job and delete of an active one: 400 FAILED_PRECONDITION
  (`delete_active="allow"` switches the latter off). Cancel of a CANCELLING job is a no-op.
- List order: createTime descending, then ID descending. Default page size 100, capped at
  `max_page_size` (1000). Page tokens are HMAC-signed, bound to parent and filter, and die
  with the server process (a restarted server answers an old token with 400).
- Filters: `display_name` `=`/`!=`/`:` treat `*` as a wildcard; `labels.KEY:VALUE` likewise;
  `labels.KEY=VALUE` is exact. Free-text terms and other fields are 400 INVALID_ARGUMENT.
- Names use the project as given (no project-number mapping); IDs are 19-digit numbers,
  increasing, never reused (the next ID is persisted).
- `echo_defaults` fills the documented defaults into answers (diskSpec pd-ssd/100, or
  hyperdisk-balanced on a3-ultragpu; scheduling timeout 604800s, strategy STANDARD,
  maxWaitDuration 86400s for FLEX_START); serviceAccount is never filled in. The trailing
  `/` on outputUriPrefix is always appended, as documented.
- A job labelled `emulator-outcome: failed` ends FAILED (error code 13) instead of SUCCEEDED.
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
