"""Wire facts of the v1 CustomJob resource shared by validation, diff and the emulator.

Enum names and numbers (from google-cloud-aiplatform's protos), which fields are
int64 or durations, the job states, and the proto3 JSON rules for durations. The
field tables themselves live in schemas/; this module holds only what code needs.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

API_VERSION: Final = "v1"

JOB_STATES: Final[dict[str, int]] = {
    "JOB_STATE_UNSPECIFIED": 0,
    "JOB_STATE_QUEUED": 1,
    "JOB_STATE_PENDING": 2,
    "JOB_STATE_RUNNING": 3,
    "JOB_STATE_SUCCEEDED": 4,
    "JOB_STATE_FAILED": 5,
    "JOB_STATE_CANCELLING": 6,
    "JOB_STATE_CANCELLED": 7,
    "JOB_STATE_PAUSED": 8,
    "JOB_STATE_EXPIRED": 9,
    "JOB_STATE_UPDATING": 10,
    "JOB_STATE_PARTIALLY_SUCCEEDED": 11,
}

ACCELERATOR_TYPES: Final[dict[str, int]] = {
    "ACCELERATOR_TYPE_UNSPECIFIED": 0,
    "NVIDIA_TESLA_K80": 1,
    "NVIDIA_TESLA_P100": 2,
    "NVIDIA_TESLA_V100": 3,
    "NVIDIA_TESLA_P4": 4,
    "NVIDIA_TESLA_T4": 5,
    "TPU_V2": 6,
    "TPU_V3": 7,
    "NVIDIA_TESLA_A100": 8,
    "NVIDIA_A100_80GB": 9,
    "TPU_V4_POD": 10,
    "NVIDIA_L4": 11,
    "TPU_V5_LITEPOD": 12,
    "NVIDIA_H100_80GB": 13,
    "NVIDIA_H100_MEGA_80GB": 14,
    "NVIDIA_H200_141GB": 15,
    "NVIDIA_B200": 16,
    "NVIDIA_GB200": 17,
    "NVIDIA_RTX_PRO_6000": 18,
}

RESERVATION_AFFINITY_TYPES: Final[dict[str, int]] = {
    "TYPE_UNSPECIFIED": 0,
    "NO_RESERVATION": 1,
    "ANY_RESERVATION": 2,
    "SPECIFIC_RESERVATION": 3,
}

SCHEDULING_STRATEGIES: Final[dict[str, int]] = {
    "STRATEGY_UNSPECIFIED": 0,
    "ON_DEMAND": 1,
    "LOW_COST": 2,
    "STANDARD": 3,
    "SPOT": 4,
    "FLEX_START": 6,
}

# Enum-typed fields, keyed by their last path segment(s) as they appear in a CustomJob.
ENUM_FIELDS: Final[dict[str, dict[str, int]]] = {
    "state": JOB_STATES,
    "acceleratorType": ACCELERATOR_TYPES,
    "reservationAffinityType": RESERVATION_AFFINITY_TYPES,
    "strategy": SCHEDULING_STRATEGIES,
}

# Fields carried as int64, i.e. JSON strings in proto3 JSON.
INT64_FIELDS: Final = frozenset({"replicaCount"})
# Fields of type google.protobuf.Duration.
DURATION_FIELDS: Final = frozenset({"timeout", "maxWaitDuration"})

# Output-only top-level fields of a CustomJob (never settable by a user).
OUTPUT_ONLY_FIELDS: Final = frozenset(
    {
        "name",
        "state",
        "createTime",
        "updateTime",
        "startTime",
        "endTime",
        "error",
        "webAccessUris",
        "satisfiesPzs",
        "satisfiesPzi",
    }
)

ACTIVE_STATES: Final = frozenset(
    {
        "JOB_STATE_QUEUED",
        "JOB_STATE_PENDING",
        "JOB_STATE_RUNNING",
        "JOB_STATE_CANCELLING",
        "JOB_STATE_UPDATING",
    }
)
TERMINAL_STATES: Final = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_PAUSED",
        "JOB_STATE_EXPIRED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
    }
)

# Labels planner owns (DESIGN §4). Users may not set these.
LABEL_MANAGED_BY: Final = "managed-by"
LABEL_ADDRESS: Final = "planner-address"
LABEL_WORKSPACE: Final = "planner-workspace"
LABEL_SPEC: Final = "planner-spec"
MANAGED_BY_VALUE: Final = "planner"
RESERVED_LABEL_PREFIX: Final = "planner-"


def is_reserved_label(key: str) -> bool:
    return key == LABEL_MANAGED_BY or key.startswith(RESERVED_LABEL_PREFIX)


def enum_name(table: dict[str, int], value: object) -> str | None:
    """The enum name for a name or number as either encoding sends it; None if unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if value in table:
            return value
        if value.isdigit():
            value = int(value)
        else:
            return None
    if isinstance(value, int):
        for name, number in table.items():
            if number == value:
                return name
    return None


_DURATION_UNITS: Final[dict[str, Decimal]] = {
    "ns": Decimal("0.000000001"),
    "us": Decimal("0.000001"),
    "µs": Decimal("0.000001"),
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
MAX_DURATION_SECONDS: Final = Decimal(315_576_000_000)


def parse_duration(text: str) -> Decimal | None:
    """Seconds in a duration such as "3600s", "1.5s", "2h", "90m", "1h30m", "7d"; None if malformed.

    Proto3 JSON accepts only "<seconds>[.frac]s"; the friendlier forms are planner's input
    convenience and are converted to the canonical form before anything is sent.
    """
    text = text.strip()
    if not text:
        return None
    pos = 0
    total = Decimal(0)
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        try:
            total += Decimal(match.group(1)) * _DURATION_UNITS[match.group(2)]
        except InvalidOperation:
            return None
        pos = match.end()
    if pos != len(text) or total > MAX_DURATION_SECONDS:
        return None
    return total


def format_duration(seconds: Decimal) -> str:
    """Proto3 JSON form: "3600s", "1.500s" (0, 3, 6 or 9 fractional digits)."""
    whole = int(seconds)
    frac = seconds - whole
    if frac == 0:
        return f"{whole}s"
    nanos = int((frac * 1_000_000_000).to_integral_value())
    for digits, div in ((3, 1_000_000), (6, 1_000), (9, 1)):
        if nanos % div == 0:
            return f"{whole}.{nanos // div:0{digits}d}s"
    return f"{whole}.{nanos:09d}s"  # unreachable: the 9-digit branch always matches


def canonical_duration(text: str) -> str | None:
    seconds = parse_duration(text)
    return None if seconds is None else format_duration(seconds)
