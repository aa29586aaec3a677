"""The emulator's settings (one frozen dataclass) and their parsing from command-line strings.

`config_from_cli` turns the raw option values of `planner emulator serve` into an
`EmulatorConfig`, raising `UsageError` for anything malformed; the CLI owns the flags.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

from planner.errors import UsageError

FAULT_STATUSES: Final = frozenset({429, 500, 503})
DEFAULT_PAGE_SIZE: Final = 100


class Quota(NamedTuple):
    """At most `limit` requests per `window_seconds`, per (project, location), sliding window.

    A plain `(limit, window_seconds)` tuple is accepted wherever a Quota is.
    """

    limit: int
    window_seconds: float


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes an emulator run; the defaults make a quiet, realistic server."""

    host: str = "127.0.0.1"
    port: int = 0
    data_path: str | os.PathLike[str] | None = None
    latency_ms: float = 0.0
    fail_rates: Mapping[int, float] = field(default_factory=dict)
    drop_rate: float = 0.0
    lost_create_rate: float = 0.0
    echo_defaults: bool = False
    max_page_size: int = 1000
    default_page_size: int = DEFAULT_PAGE_SIZE
    queue_seconds: float = 2.0
    pending_seconds: float = 1.0
    run_seconds: float = 30.0
    cancel_seconds: float = 1.0
    # How long a delete operation stays in progress (done: false) before it is done.
    delete_seconds: float = 0.0
    create_quota: tuple[int, float] | None = None
    request_quota: tuple[int, float] | None = None
    seed: int | None = None
    allow_remote: bool = False
    delete_active: Literal["reject", "allow"] = "reject"
    max_body_bytes: int = 1024 * 1024
    # How often the append-only data log is fsync'd at most (every write is flushed to the OS).
    fsync_interval_seconds: float = 0.2
    # Skip the hardware and submit-time checks (planner.hardware) that Vertex AI makes on create.
    lenient: bool = False
    hardware_catalog: str | None = None  # an override file added to planner's hardware catalog

    def __post_init__(self) -> None:
        problems = validate_config(self)
        if problems:
            raise ValueError("; ".join(problems))


def validate_config(config: EmulatorConfig) -> list[str]:
    problems: list[str] = []
    for name in ("latency_ms", "queue_seconds", "pending_seconds", "run_seconds", "cancel_seconds", "delete_seconds"):
        if getattr(config, name) < 0:
            problems.append(f"{name} must be >= 0")
    for name in ("drop_rate", "lost_create_rate"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            problems.append(f"{name} must be between 0 and 1")
    for status, rate in config.fail_rates.items():
        if status not in FAULT_STATUSES:
            problems.append(f"fail rate status {status} is not one of {sorted(FAULT_STATUSES)}")
        if not 0.0 <= rate <= 1.0:
            problems.append(f"fail rate for {status} must be between 0 and 1")
    if sum(config.fail_rates.values()) + config.drop_rate > 1.0:
        problems.append("fail rates and drop rate add up to more than 1")
    if config.max_page_size < 1 or config.default_page_size < 1:
        problems.append("page sizes must be >= 1")
    if not 0 <= config.port <= 65535:
        problems.append("port must be between 0 and 65535")
    if config.delete_active not in ("reject", "allow"):
        problems.append("delete_active must be 'reject' or 'allow'")
    for quota in (config.create_quota, config.request_quota):
        if quota is not None and (len(quota) != 2 or quota[0] < 1 or quota[1] <= 0):
            problems.append("a quota needs a limit >= 1 and a window > 0")
    if not config.allow_remote and not is_loopback(config.host):
        problems.append(f"host {config.host!r} is not a loopback address (allow_remote is off)")
    return problems


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_QUOTA = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_quota(text: str) -> Quota:
    """"10/2s" → 10 per 2 seconds; "60/m" → 60 per minute; "600/1m", "5/500ms"."""
    match = _QUOTA.match(text)
    if not match or (match.group(2) is None and match.group(3) is None):
        raise UsageError(f"invalid quota {text!r}: expected N/WINDOW such as 60/1m or 10/2s")
    amount = float(match.group(2)) if match.group(2) is not None else 1.0
    window = amount * _UNIT_SECONDS[match.group(3) or "s"]
    limit = int(match.group(1))
    if limit < 1 or window <= 0:
        raise UsageError(f"invalid quota {text!r}: the limit and the window must be positive")
    return Quota(limit, window)


def parse_fail_rates(items: Sequence[str]) -> dict[int, float]:
    """["503=0.2", "429=0.1"] → {503: 0.2, 429: 0.1}."""
    rates: dict[int, float] = {}
    for item in items:
        status_text, sep, rate_text = item.partition("=")
        try:
            status = int(status_text.strip())
            rate = float(rate_text.strip())
        except ValueError:
            raise UsageError(f"invalid --fail-rate {item!r}: expected STATUS=RATE such as 503=0.2") from None
        if not sep or status not in FAULT_STATUSES:
            raise UsageError(f"invalid --fail-rate {item!r}: STATUS must be one of 429, 500, 503")
        if not 0.0 <= rate <= 1.0:
            raise UsageError(f"invalid --fail-rate {item!r}: RATE must be between 0 and 1")
        rates[status] = rate
    return rates


def config_from_cli(
    host: str = "127.0.0.1",
    port: int = 8080,
    data: str | os.PathLike[str] | None = None,
    latency_ms: float = 0.0,
    fail_rate: Sequence[str] = (),
    lost_create_rate: float = 0.0,
    echo_defaults: bool = False,
    max_page_size: int | None = None,
    queue_seconds: float | None = None,
    run_seconds: float | None = None,
    cancel_seconds: float | None = None,
    delete_seconds: float = 0.0,
    create_quota: str | None = None,
    request_quota: str | None = None,
    allow_remote: bool = False,
    drop_rate: float = 0.0,
    seed: int | None = None,
    lenient: bool = False,
    hardware_catalog: str | None = None,
) -> EmulatorConfig:
    """The config for `planner emulator serve`; every bad value is a UsageError naming the flag.

    None for a number means "the EmulatorConfig default".
    """
    base = EmulatorConfig()
    max_page_size = base.max_page_size if max_page_size is None else max_page_size
    queue_seconds = base.queue_seconds if queue_seconds is None else queue_seconds
    run_seconds = base.run_seconds if run_seconds is None else run_seconds
    cancel_seconds = base.cancel_seconds if cancel_seconds is None else cancel_seconds
    if not allow_remote and not is_loopback(host):
        raise UsageError(
            f"--host {host} is not a loopback address; the emulator has no authentication",
            hint="use 127.0.0.1, or pass --allow-remote if you really mean it",
        )
    checks: list[tuple[str, float, float | None]] = [
        ("--latency-ms", latency_ms, None),
        ("--queue-seconds", queue_seconds, None),
        ("--run-seconds", run_seconds, None),
        ("--cancel-seconds", cancel_seconds, None),
        ("--delete-seconds", delete_seconds, None),
        ("--lost-create-rate", lost_create_rate, 1.0),
        ("--drop-rate", drop_rate, 1.0),
    ]
    for flag, value, upper in checks:
        if value < 0 or (upper is not None and value > upper):
            bound = f"between 0 and {upper:g}" if upper is not None else ">= 0"
            raise UsageError(f"{flag} must be {bound}, got {value:g}")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {port}")
    if max_page_size < 1:
        raise UsageError(f"--max-page-size must be >= 1, got {max_page_size}")
    if hardware_catalog is not None:
        from planner.hardware import load_catalog

        load_catalog(hardware_catalog)  # a bad file is a UsageError now, not a 500 on the first create
    rates = parse_fail_rates(fail_rate)
    if sum(rates.values()) + drop_rate > 1.0:
        raise UsageError("--fail-rate values and --drop-rate add up to more than 1")
    return EmulatorConfig(
        host=host,
        port=port,
        data_path=data,
        latency_ms=latency_ms,
        fail_rates=rates,
        drop_rate=drop_rate,
        lost_create_rate=lost_create_rate,
        echo_defaults=echo_defaults,
        max_page_size=max_page_size,
        default_page_size=min(DEFAULT_PAGE_SIZE, max_page_size),
        queue_seconds=queue_seconds,
        run_seconds=run_seconds,
        cancel_seconds=cancel_seconds,
        delete_seconds=delete_seconds,
        create_quota=parse_quota(create_quota) if create_quota else None,
        request_quota=parse_quota(request_quota) if request_quota else None,
        allow_remote=allow_remote,
        seed=seed,
        lenient=lenient,
        hardware_catalog=hardware_catalog,
    )
