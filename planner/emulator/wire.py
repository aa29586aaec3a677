"""Proto3 JSON of the v1 CustomJob as the real server reads and writes it.

Owns the message tables, request decoding and validation (→ `ApiFailure` with Google's
error shape), and response encoding (defaults omitted, int64 as strings, enums as names
or numbers, optional echo of server defaults, readMask projection). Output-only fields
in a request body are ignored, as AIP-203 prescribes; unknown fields are rejected.
"""

from __future__ import annotations

import json
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


# Proto3 JSON parsers accept the lowerCamel JSON name and the original proto field name.
_ALIASES: Final[dict[str, dict[str, str]]] = {
    msg: {**{f: f for f in fields}, **{snake(f): f for f in fields}} for msg, fields in MESSAGES.items()
}

_SNAKE_NAMES: Final[dict[str, str]] = {f: snake(f) for fields in MESSAGES.values() for f in fields}

_INT32_MAX: Final = 2**31 - 1
_INT64_MAX: Final = 2**63 - 1
_DURATION: Final = re.compile(r"^-?\d+(\.\d{1,9})?s$")
BOOT_DISK_TYPES: Final = frozenset({"pd-ssd", "pd-standard", "hyperdisk-balanced"})
MAX_DISPLAY_NAME: Final = 128
MAX_ENV: Final = 100
MAX_PACKAGE_URIS: Final = 100
MAX_LABELS: Final = 64
MAX_LABEL_LENGTH: Final = 63


# ---------------------------------------------------------------------------------------------
# Decoding: JSON body → canonical stored form (camelCase, enum names, zero values dropped).


class _Decoder:
    def __init__(self) -> None:
        self.violations: list[tuple[str, str]] = []

    def fail(self, path: str, message: str) -> None:
        self.violations.append((path, message))

    def message(self, name: str, value: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, f"Invalid value at '{path}' ({_type_name(value)}): expected an object.")
            return None
        out: dict[str, Any] = {}
        fields = MESSAGES[name]
        aliases = _ALIASES[name]
        for key, raw in value.items():
            json_name = aliases.get(key)
            sub = f"{path}.{snake(key) if json_name is None else _SNAKE_NAMES[json_name]}"
            if json_name is None:
                self.fail(path, f'Invalid JSON payload received. Unknown name "{key}" at \'{path}\': '
                          "Cannot find field.")
                continue
            spec = fields[json_name]
            if spec.output_only or raw is None:
                continue  # AIP-203: output-only input is ignored; null means "not set"
            decoded = self.field(spec, raw, sub)
            if decoded is not None and not is_zero(decoded, spec):
                out[json_name] = decoded
        return out

    def field(self, spec: Field, raw: Any, path: str) -> Any:
        if spec.repeated:
            if not isinstance(raw, list):
                self.fail(path, f"Invalid value at '{path}' ({_type_name(raw)}): expected a list.")
                return None
            items = []
            for i, item in enumerate(raw):
                decoded = self.scalar(spec, item, f"{path}[{i}]")
                if decoded is not None:
                    items.append(decoded)
                elif spec.kind == "message":
                    items.append({})
            return items
        return self.scalar(spec, raw, path)

    def scalar(self, spec: Field, raw: Any, path: str) -> Any:
        kind = spec.kind
        if kind == "message":
            if raw is None:
                return {}
            return self.message(spec.message, raw, path)
        if kind == "string":
            if isinstance(raw, str):
                return raw
            self.fail(path, f"Invalid value at '{path}' (TYPE_STRING), {_short(raw)}")
            return None
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            self.fail(path, f"Invalid value at '{path}' (TYPE_BOOL), {_short(raw)}")
            return None
        if kind in ("int32", "int64"):
            number = _integer(raw)
            limit = _INT32_MAX if kind == "int32" else _INT64_MAX
            if number is None or not -limit - 1 <= number <= limit:
                type_name = "TYPE_INT32" if kind == "int32" else "TYPE_INT64"
                self.fail(path, f"Invalid value at '{path}' ({type_name}), {_short(raw)}")
                return None
            return str(number) if kind == "int64" else number
        if kind == "duration":
            if isinstance(raw, str) and _DURATION.match(raw):
                seconds = apimodel.parse_duration(raw.lstrip("-"))
                if seconds is not None:
                    text = apimodel.format_duration(seconds)
                    return "-" + text if raw.startswith("-") and seconds != 0 else text
            self.fail(path, f"Invalid value at '{path}' (type.googleapis.com/google.protobuf.Duration), "
                      f"{_short(raw)}")
            return None
        if kind == "enum":
            assert spec.enum is not None
            name = apimodel.enum_name(dict(spec.enum), raw)
            if name is None:
                self.fail(path, f"Invalid value at '{path}' (TYPE_ENUM), {_short(raw)}")
            return name
        if kind == "map":
            if not isinstance(raw, dict):
                self.fail(path, f"Invalid value at '{path}' ({_type_name(raw)}): expected an object.")
                return None
            out: dict[str, str] = {}
            for key, item in raw.items():
                if not isinstance(item, str):
                    self.fail(f"{path}[{key}]", f"Invalid value at '{path}[{key}]' (TYPE_STRING), "
                              f"{_short(item)}")
                else:
                    out[key] = item
            return out
        raise AssertionError(f"unhandled kind {kind}")


def _integer(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip() or "x"):
        return int(raw)
    return None


def _type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "bool", int: "number", float: "number"}.get(
        type(value), "null"
    )


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def is_zero(value: Any, spec: Field) -> bool:
    """True for a proto3 default that JSON leaves out; set message fields (durations too) are kept."""
    if spec.repeated:
        return bool(value == [])
    if spec.kind in ("message", "duration"):
        return False
    if spec.kind == "enum":
        return spec.enum is not None and spec.enum.get(value, 0) == 0
    zero: dict[str, Any] = {"map": {}, "bool": False, "int64": "0", "int32": 0, "string": ""}
    return bool(value == zero.get(spec.kind, object()))


def decode_custom_job(body: Any) -> dict[str, Any]:
    """Validated canonical user part of a CustomJob request body; raises 400 with every violation."""
    decoder = _Decoder()
    job = decoder.message("CustomJob", body, "custom_job") if isinstance(body, dict) else None
    if job is None:
        if not decoder.violations:
            decoder.fail("custom_job", f"Invalid JSON payload received. Expected an object, got "
                         f"{_type_name(body)}.")
        raise invalid_argument(decoder.violations, prefix=decoder.violations[0][1])
    if decoder.violations:
        raise invalid_argument(decoder.violations, prefix=decoder.violations[0][1])
    violations = semantic_violations(job)
    if violations:
        raise invalid_argument(violations)
    prefix = job.get("jobSpec", {}).get("baseOutputDirectory", {}).get("outputUriPrefix")
    if prefix and not prefix.endswith("/"):
        job["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"] = prefix + "/"
    return job


# ---------------------------------------------------------------------------------------------
# Semantic validation (the rules the real service enforces beyond types).

_REQUIRED = "Required field is not set."


def semantic_violations(job: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    display_name = job.get("displayName", "")
    if not display_name:
        out.append(("display_name", _REQUIRED))
    elif len(display_name) > MAX_DISPLAY_NAME:
        out.append(("display_name", f"The display name can be up to {MAX_DISPLAY_NAME} characters long."))
    out.extend(label_violations(job.get("labels", {})))
    if "encryptionSpec" in job and not job["encryptionSpec"].get("kmsKeyName"):
        out.append(("encryption_spec.kms_key_name", _REQUIRED))
    spec = job.get("jobSpec")
    if spec is None:
        out.append(("job_spec", _REQUIRED))
        return out
    pools = spec.get("workerPoolSpecs", [])
    if not pools:
        out.append(("job_spec.worker_pool_specs", "At least one worker pool spec is required."))
    for i, pool in enumerate(pools):
        out.extend(_pool_violations(pool, f"job_spec.worker_pool_specs[{i}]", first=i == 0))
    scheduling = spec.get("scheduling", {})
    for key in ("timeout", "maxWaitDuration"):
        if str(scheduling.get(key, "")).startswith("-"):
            out.append((f"job_spec.scheduling.{snake(key)}", "The duration must not be negative."))
    output = spec.get("baseOutputDirectory")
    if output is not None and not output.get("outputUriPrefix"):
        out.append(("job_spec.base_output_directory.output_uri_prefix", _REQUIRED))
    for i, peering in enumerate(spec.get("pscInterfaceConfig", {}).get("dnsPeeringConfigs", [])):
        path = f"job_spec.psc_interface_config.dns_peering_configs[{i}]"
        for key in ("domain", "targetProject", "targetNetwork"):
            if not peering.get(key):
                out.append((f"{path}.{snake(key)}", _REQUIRED))
        if peering.get("domain") and not peering["domain"].endswith("."):
            out.append((f"{path}.domain", "The domain must end with a dot."))
    return out


def _pool_violations(pool: Mapping[str, Any], path: str, *, first: bool) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not pool and not first:
        return out  # an empty pool after the first means "no workers of this kind"
    machine = pool.get("machineSpec", {})
    if not machine.get("machineType"):
        out.append((f"{path}.machine_spec.machine_type", _REQUIRED))
    if machine.get("acceleratorCount", 0) < 0:
        out.append((f"{path}.machine_spec.accelerator_count", "The value must not be negative."))
    affinity = machine.get("reservationAffinity")
    if affinity is not None and not affinity.get("reservationAffinityType"):
        out.append((f"{path}.machine_spec.reservation_affinity.reservation_affinity_type", _REQUIRED))
    if int(pool.get("replicaCount", "0")) < 0:
        out.append((f"{path}.replica_count", "The value must not be negative."))
    tasks = [key for key in ("containerSpec", "pythonPackageSpec") if key in pool]
    if not tasks:
        out.append((f"{path}.task", "One of container_spec or python_package_spec must be set."))
    elif len(tasks) == 2:
        out.append((f"{path}.task", "Only one of container_spec or python_package_spec may be set."))
    container = pool.get("containerSpec")
    if container is not None:
        if not container.get("imageUri"):
            out.append((f"{path}.container_spec.image_uri", _REQUIRED))
        out.extend(_env_violations(container.get("env", []), f"{path}.container_spec.env"))
    package = pool.get("pythonPackageSpec")
    if package is not None:
        sub = f"{path}.python_package_spec"
        for key in ("executorImageUri", "packageUris", "pythonModule"):
            if not package.get(key):
                out.append((f"{sub}.{snake(key)}", _REQUIRED))
        if len(package.get("packageUris", [])) > MAX_PACKAGE_URIS:
            out.append((f"{sub}.package_uris", f"At most {MAX_PACKAGE_URIS} package URIs are allowed."))
        out.extend(_env_violations(package.get("env", []), f"{sub}.env"))
    disk = pool.get("diskSpec", {})
    if "bootDiskType" in disk and disk["bootDiskType"] not in BOOT_DISK_TYPES:
        out.append((f"{path}.disk_spec.boot_disk_type",
                    f"Unsupported boot disk type {disk['bootDiskType']!r}; use one of "
                    f"{', '.join(sorted(BOOT_DISK_TYPES))}."))
    if disk.get("bootDiskSizeGb", 0) < 0:
        out.append((f"{path}.disk_spec.boot_disk_size_gb", "The value must not be negative."))
    for kind, keys in (("nfsMounts", ("server", "path", "mountPoint")),
                       ("lustreMounts", ("instanceIp", "volumeHandle", "filesystem", "mountPoint"))):
        for j, mount in enumerate(pool.get(kind, [])):
            for key in keys:
                if not mount.get(key):
                    out.append((f"{path}.{snake(kind)}[{j}].{snake(key)}", _REQUIRED))
            if kind == "nfsMounts" and mount.get("path") and not mount["path"].startswith("/"):
                out.append((f"{path}.nfs_mounts[{j}].path", "The path must start with '/'."))
    return out


def _env_violations(env: Sequence[Mapping[str, Any]], path: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if len(env) > MAX_ENV:
        out.append((path, f"At most {MAX_ENV} environment variables are allowed."))
    for i, var in enumerate(env):
        if not var.get("name"):
            out.append((f"{path}[{i}].name", _REQUIRED))
    return out


def _is_label_char(ch: str, *, first: bool) -> bool:
    if "a" <= ch <= "z":
        return True
    if ord(ch) > 127:  # international characters: letters and digits that are not upper case
        return (ch.isalpha() and not ch.isupper()) or (not first and ch.isdigit())
    return not first and ("0" <= ch <= "9" or ch in "_-")


def label_violations(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if len(labels) > MAX_LABELS:
        out.append(("labels", f"At most {MAX_LABELS} labels are allowed, got {len(labels)}."))
    for key, value in labels.items():
        if not key or len(key) > MAX_LABEL_LENGTH or not all(
            _is_label_char(ch, first=i == 0) for i, ch in enumerate(key)
        ):
            out.append((f"labels[{key}]",
                        f"Label key {key!r} is invalid: keys are 1-{MAX_LABEL_LENGTH} characters, start "
                        "with a lowercase letter or international character, and contain only lowercase "
                        "letters, digits, '_', '-' and international characters."))
        if len(value) > MAX_LABEL_LENGTH or not all(_is_label_char(ch, first=False) for ch in value):
            out.append((f"labels[{key}]",
                        f"Label value {value!r} is invalid: values are at most {MAX_LABEL_LENGTH} characters "
                        "of lowercase letters, digits, '_', '-' and international characters."))
    return out


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
