"""One canonical form for a CustomJob spec, so desired and live compare without perpetual diffs.

Both sides go through `canonical_spec`: output-only fields dropped, enums as names,
int64 as strings, durations as "Ns", documented server defaults removed, proto3 zero
values removed, trailing "/" on outputUriPrefix, planner's own labels stripped. The
spec hash (DESIGN §4) is the SHA-256 of the canonical JSON. `diff` builds on this.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from planner import apimodel, jsoncodec
from planner.config.matrix import address_label

USER_FIELDS: Final = ("displayName", "labels", "jobSpec", "encryptionSpec")

# Documented server defaults (reference §5.4): a value equal to its default is dropped.
_DEFAULT_TIMEOUT: Final = Decimal(7 * 86400)
_DEFAULT_MAX_WAIT: Final = Decimal(86400)
_DEFAULT_BOOT_DISK_GB: Final = 100
_A3_ULTRA_PREFIX: Final = "a3-ultragpu"
_SERVICE_AGENT: Final = re.compile(r"^service-\d+@gcp-sa-aiplatform-cc\.iam\.gserviceaccount\.com$")
_ZERO_ENUMS: Final = frozenset({"ACCELERATOR_TYPE_UNSPECIFIED", "TYPE_UNSPECIFIED", "STRATEGY_UNSPECIFIED"})
_INT32_FIELDS: Final = frozenset({"acceleratorCount", "bootDiskSizeGb"})


def canonical_spec(job: Mapping[str, Any]) -> dict[str, Any]:
    """The user-settable part of a CustomJob (desired body or live resource) in canonical form."""
    out: dict[str, Any] = {}
    for key in USER_FIELDS:
        if key in job:
            value = _canon(_plain(job[key]), key)
            if not _is_zero(value):
                out[key] = value
    labels = out.get("labels")
    if isinstance(labels, dict):
        user = {k: v for k, v in labels.items() if not apimodel.is_reserved_label(k)}
        if user:
            out["labels"] = user
        else:
            del out["labels"]
    _drop_defaults(out)
    return out


def _plain(value: Any) -> Any:
    """Read-only mappings (e.g. MappingProxyType) as dicts, so the hot path can test for dict."""
    if isinstance(value, dict) or not isinstance(value, Mapping):
        return value
    return {k: _plain(v) for k, v in value.items()}


def spec_hash(canonical: Mapping[str, Any]) -> str:
    """SHA-256 hex of a canonical spec; its first 16 digits are the planner-spec label."""
    return hashlib.sha256(jsoncodec.dumps_sorted(canonical)).hexdigest()


_SPECIAL: Final = frozenset(apimodel.ENUM_FIELDS) | apimodel.INT64_FIELDS | apimodel.DURATION_FIELDS | _INT32_FIELDS


def _canon(value: Any, key: str) -> Any:
    # Hot path (every field of every job, desired and live): plain leaves return at once.
    # (isinstance against the Mapping ABC is several times slower than against dict.)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            c = _canon(v, k if isinstance(k, str) else str(k))
            if c is None or c is False or c == {} or c == [] or c == "" or (c == 0 and type(c) is not bool):
                continue
            out[k if isinstance(k, str) else str(k)] = c
        return out
    if isinstance(value, list):
        # Positions matter (worker pool 0 is the chief), so list items are kept even when empty.
        return [_canon(v, key) for v in value]
    if key not in _SPECIAL:
        return value
    table = apimodel.ENUM_FIELDS.get(key)
    if table is not None:
        name = apimodel.enum_name(table, value)
        if name is None:
            return value
        return None if name in _ZERO_ENUMS else name
    if key in apimodel.INT64_FIELDS:
        text = _int_string(value)
        return None if text == "0" else text
    if key in apimodel.DURATION_FIELDS and isinstance(value, str):
        return apimodel.canonical_duration(value) or value
    if key in _INT32_FIELDS and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value


def _int_string(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return str(int(value))
    return value


def _is_zero(value: Any) -> bool:
    if value is None or value is False:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)) and value == 0:
        return True
    return isinstance(value, (str, list, dict)) and len(value) == 0


def _drop_defaults(spec: dict[str, Any]) -> None:
    job_spec = spec.get("jobSpec")
    if not isinstance(job_spec, dict):
        return
    for pool in _dicts(job_spec.get("workerPoolSpecs")):
        disk = pool.get("diskSpec")
        if isinstance(disk, dict):
            machine = pool.get("machineSpec")
            machine_type = machine.get("machineType", "") if isinstance(machine, dict) else ""
            default_type = "hyperdisk-balanced" if str(machine_type).startswith(_A3_ULTRA_PREFIX) else "pd-ssd"
            if disk.get("bootDiskType") == default_type:
                del disk["bootDiskType"]
            if disk.get("bootDiskSizeGb") == _DEFAULT_BOOT_DISK_GB:
                del disk["bootDiskSizeGb"]
            if not disk:
                del pool["diskSpec"]
    scheduling = job_spec.get("scheduling")
    if isinstance(scheduling, dict):
        if _seconds(scheduling.get("timeout")) == _DEFAULT_TIMEOUT:
            del scheduling["timeout"]
        if _seconds(scheduling.get("maxWaitDuration")) == _DEFAULT_MAX_WAIT:
            del scheduling["maxWaitDuration"]
        if scheduling.get("strategy") == "STANDARD":
            del scheduling["strategy"]
        if not scheduling:
            del job_spec["scheduling"]
    output = job_spec.get("baseOutputDirectory")
    if isinstance(output, dict):
        prefix = output.get("outputUriPrefix")
        if isinstance(prefix, str) and prefix and not prefix.endswith("/"):
            output["outputUriPrefix"] = prefix + "/"
    account = job_spec.get("serviceAccount")
    if isinstance(account, str) and _SERVICE_AGENT.match(account):
        del job_spec["serviceAccount"]
    if not job_spec:
        del spec["jobSpec"]


def _dicts(values: Any) -> Iterable[dict[str, Any]]:
    if isinstance(values, list):
        return [v for v in values if isinstance(v, dict)]
    return []


def _seconds(value: Any) -> Decimal | None:
    return apimodel.parse_duration(value) if isinstance(value, str) else None


def identity_labels(address: str, workspace: str, hash_hex: str) -> dict[str, str]:
    """The labels every job planner creates carries for life (DESIGN §4)."""
    return {
        apimodel.LABEL_MANAGED_BY: apimodel.MANAGED_BY_VALUE,
        apimodel.LABEL_ADDRESS: address_label(address),  # a sweep address does not fit a label
        apimodel.LABEL_WORKSPACE: workspace,
        apimodel.LABEL_SPEC: hash_hex[:16],
    }


def request_body(canonical: Mapping[str, Any], address: str, workspace: str) -> dict[str, Any]:
    """The create request for a canonical desired spec: the spec plus the identity labels."""
    body = jsoncodec.loads(jsoncodec.dumps_sorted(canonical))  # a deep copy
    labels = dict(body.get("labels", {}))
    labels.update(identity_labels(address, workspace, spec_hash(canonical)))
    body["labels"] = labels
    return dict(body)
