"""The v1 CustomJob on the wire: its message tables, Google's error shape (`ApiFailure`), and
response shaping (server defaults echoed, enums as numbers, readMask projection).

Reading and validating request bodies is `decode`'s. Encoded messages omit defaults and write
int64 as strings and enums as names, as proto3 JSON does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from planner import apimodel

BAD_REQUEST_TYPE: Final = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO_TYPE: Final = "type.googleapis.com/google.rpc.ErrorInfo"
EMPTY_TYPE: Final = "type.googleapis.com/google.protobuf.Empty"
DELETE_METADATA_TYPE: Final = "type.googleapis.com/google.cloud.aiplatform.v1.DeleteOperationMetadata"
DOMAIN: Final = "aiplatform.googleapis.com"

HTTP_STATUS: Final[dict[str, int]] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,  # not a google.rpc.Code; the front end's answer for a wrong verb
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# google.rpc.Code numbers, for Status objects embedded in resources.
RPC_CODES: Final[dict[str, int]] = {
    "CANCELLED": 1,
    "INVALID_ARGUMENT": 3,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "INTERNAL": 13,
}


class ApiFailure(Exception):
    """An answer in Google's error shape; raised anywhere below the HTTP layer."""

    def __init__(
        self,
        status: str,
        message: str,
        *,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        http_status: int | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = [dict(d) for d in details]
        self.headers = dict(headers or {})
        self.http_status = http_status if http_status is not None else HTTP_STATUS.get(status, 500)

    def body(self) -> dict[str, Any]:
        status = self.status if self.status in RPC_CODES or self.status in HTTP_STATUS else "UNKNOWN"
        if status == "METHOD_NOT_ALLOWED":
            status = "UNIMPLEMENTED"
        elif status == "PAYLOAD_TOO_LARGE":
            status = "INVALID_ARGUMENT"
        return {
            "error": {
                "code": self.http_status,
                "message": self.message,
                "status": status,
                "details": self.details,
            }
        }


def invalid_argument(violations: Sequence[tuple[str, str]], *, prefix: str = "") -> ApiFailure:
    """400 INVALID_ARGUMENT listing every field violation, worded like Vertex AI's own answers."""
    listed = "".join(f"{i}.Field: {f}; Message: {d}\t" for i, (f, d) in enumerate(violations, 1))
    message = prefix or f"List of found errors:\t{listed}"
    detail = {
        "@type": BAD_REQUEST_TYPE,
        "fieldViolations": [{"field": f, "description": d} for f, d in violations],
    }
    return ApiFailure("INVALID_ARGUMENT", message, details=[detail])


def error_info(reason: str, metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"@type": ERROR_INFO_TYPE, "reason": reason, "domain": DOMAIN}
    if metadata:
        info["metadata"] = dict(metadata)
    return info


# ---------------------------------------------------------------------------------------------
# Message tables (discovery revision 20261106; oneof `task` from the protos).


@dataclass(frozen=True)
class Field:
    kind: str  # string | bool | int32 | int64 | duration | timestamp | enum | message | map | status
    repeated: bool = False
    message: str = ""
    enum: Mapping[str, int] | None = None
    output_only: bool = False


_S = Field("string")
_B = Field("bool")
_I32 = Field("int32")
_STRS = Field("string", repeated=True)


def _msg(name: str, *, repeated: bool = False) -> Field:
    return Field("message", repeated=repeated, message=name)


_OUT_TS = Field("timestamp", output_only=True)

MESSAGES: Final[dict[str, dict[str, Field]]] = {
    "CustomJob": {
        "name": Field("string", output_only=True),
        "displayName": _S,
        "jobSpec": _msg("CustomJobSpec"),
        "state": Field("enum", enum=apimodel.JOB_STATES, output_only=True),
        "createTime": _OUT_TS,
        "startTime": _OUT_TS,
        "endTime": _OUT_TS,
        "updateTime": _OUT_TS,
        "error": Field("status", output_only=True),
        "labels": Field("map"),
        "encryptionSpec": _msg("EncryptionSpec"),
        "webAccessUris": Field("map", output_only=True),
        "satisfiesPzs": Field("bool", output_only=True),
        "satisfiesPzi": Field("bool", output_only=True),
    },
    "CustomJobSpec": {
        "persistentResourceId": _S,
        "workerPoolSpecs": _msg("WorkerPoolSpec", repeated=True),
        "scheduling": _msg("Scheduling"),
        "serviceAccount": _S,
        "network": _S,
        "reservedIpRanges": _STRS,
        "pscInterfaceConfig": _msg("PscInterfaceConfig"),
        "baseOutputDirectory": _msg("GcsDestination"),
        "protectedArtifactLocationId": _S,
        "tensorboard": _S,
        "enableWebAccess": _B,
        "enableDashboardAccess": _B,
        "experiment": _S,
        "experimentRun": _S,
        "models": _STRS,
    },
    "WorkerPoolSpec": {
        "containerSpec": _msg("ContainerSpec"),
        "pythonPackageSpec": _msg("PythonPackageSpec"),
        "machineSpec": _msg("MachineSpec"),
        "replicaCount": Field("int64"),
        "nfsMounts": _msg("NfsMount", repeated=True),
        "lustreMounts": _msg("LustreMount", repeated=True),
        "diskSpec": _msg("DiskSpec"),
    },
    "ContainerSpec": {"imageUri": _S, "command": _STRS, "args": _STRS, "env": _msg("EnvVar", repeated=True)},
    "PythonPackageSpec": {
        "executorImageUri": _S,
        "packageUris": _STRS,
        "pythonModule": _S,
        "args": _STRS,
        "env": _msg("EnvVar", repeated=True),
    },
    "EnvVar": {"name": _S, "value": _S},
    "MachineSpec": {
        "machineType": _S,
        "acceleratorType": Field("enum", enum=apimodel.ACCELERATOR_TYPES),
        "acceleratorCount": _I32,
        "gpuPartitionSize": _S,
        "tpuTopology": _S,
        "reservationAffinity": _msg("ReservationAffinity"),
    },
    "ReservationAffinity": {
        "reservationAffinityType": Field("enum", enum=apimodel.RESERVATION_AFFINITY_TYPES),
        "key": _S,
        "values": _STRS,
    },
    "NfsMount": {"server": _S, "path": _S, "mountPoint": _S},
    "LustreMount": {"instanceIp": _S, "volumeHandle": _S, "filesystem": _S, "mountPoint": _S},
    "DiskSpec": {"bootDiskType": _S, "bootDiskSizeGb": _I32},
    "Scheduling": {
        "timeout": Field("duration"),
        "restartJobOnWorkerRestart": _B,
        "strategy": Field("enum", enum=apimodel.SCHEDULING_STRATEGIES),
        "disableRetries": _B,
        "maxWaitDuration": Field("duration"),
    },
    "PscInterfaceConfig": {
        "networkAttachment": _S,
        "dnsPeeringConfigs": _msg("DnsPeeringConfig", repeated=True),
    },
    "DnsPeeringConfig": {"domain": _S, "targetProject": _S, "targetNetwork": _S},
    "GcsDestination": {"outputUriPrefix": _S},
    "EncryptionSpec": {"kmsKeyName": _S},
}


def snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# ---------------------------------------------------------------------------------------------
# Encoding: stored form → response JSON.

A3_ULTRA_PREFIX: Final = "a3-ultragpu"
DEFAULT_TIMEOUT: Final = apimodel.format_duration(Decimal(7 * 86400))
DEFAULT_MAX_WAIT: Final = apimodel.format_duration(Decimal(86400))


def with_server_defaults(job: dict[str, Any]) -> dict[str, Any]:
    """The job as a server that echoes its documented defaults (reference §5.4) would return it."""
    spec = job.get("jobSpec")
    if not isinstance(spec, dict):
        return job
    spec = dict(spec)
    pools = []
    for pool in spec.get("workerPoolSpecs", []):
        if pool:
            pool = dict(pool)
            machine_type = str(pool.get("machineSpec", {}).get("machineType", ""))
            disk = dict(pool.get("diskSpec", {}))
            disk.setdefault(
                "bootDiskType", "hyperdisk-balanced" if machine_type.startswith(A3_ULTRA_PREFIX) else "pd-ssd"
            )
            disk.setdefault("bootDiskSizeGb", 100)
            pool["diskSpec"] = disk
        pools.append(pool)
    if pools:
        spec["workerPoolSpecs"] = pools
    scheduling = dict(spec.get("scheduling", {}))
    scheduling.setdefault("timeout", DEFAULT_TIMEOUT)
    scheduling.setdefault("strategy", "STANDARD")
    if scheduling["strategy"] == "FLEX_START":
        scheduling.setdefault("maxWaitDuration", DEFAULT_MAX_WAIT)
    spec["scheduling"] = scheduling
    return {**job, "jobSpec": spec}


def enums_as_numbers(value: Any, message: str = "CustomJob") -> Any:
    """A copy of an encoded message with every enum field written as its number."""
    if not isinstance(value, dict):
        return value
    fields = MESSAGES.get(message, {})
    out: dict[str, Any] = {}
    for key, item in value.items():
        spec = fields.get(key)
        if spec is None:
            out[key] = item
        elif spec.kind == "enum" and spec.enum is not None:
            out[key] = spec.enum.get(item, item)
        elif spec.kind == "message":
            if spec.repeated and isinstance(item, list):
                out[key] = [enums_as_numbers(x, spec.message) for x in item]
            else:
                out[key] = enums_as_numbers(item, spec.message)
        else:
            out[key] = item
    return out


def parse_field_mask(text: str) -> list[tuple[str, ...]]:
    """readMask "name,display_name,jobSpec.scheduling" → camelCase paths; 400 on an unknown field."""
    paths: list[tuple[str, ...]] = []
    for raw in text.split(","):
        raw = raw.strip()
        if not raw:
            continue
        segments = tuple(camel(part) for part in raw.split("."))
        message = "CustomJob"
        for depth, segment in enumerate(segments):
            spec = MESSAGES.get(message, {}).get(segment)
            if spec is None:
                if message == "" and depth > 0:
                    break  # inside a map: any key
                raise invalid_argument([("read_mask", f"Field path {raw!r} does not name a CustomJob field.")])
            message = spec.message if spec.kind == "message" and not spec.repeated else ""
        paths.append(segments)
    return paths


def project(job: Mapping[str, Any], paths: Sequence[tuple[str, ...]]) -> dict[str, Any]:
    """The fields of `job` named by a field mask, nested structure kept."""
    out: dict[str, Any] = {}
    for path in paths:
        source: Any = job
        for segment in path:
            if not isinstance(source, Mapping) or segment not in source:
                source = None
                break
            source = source[segment]
        if source is None:
            continue
        target = out
        for segment in path[:-1]:
            target = target.setdefault(segment, {})
        target[path[-1]] = source
    return out
