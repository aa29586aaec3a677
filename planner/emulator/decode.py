"""Reading a CustomJob request body as Vertex AI does: proto3 JSON decoding into the canonical
stored form and the semantic rules beyond types, every violation in one 400 INVALID_ARGUMENT.

The message tables, the error shape and response encoding are `wire`'s. Output-only fields in
a request body are ignored, as AIP-203 prescribes; unknown fields are rejected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from planner import apimodel
from planner.emulator.wire import MESSAGES, Field, invalid_argument, snake

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
