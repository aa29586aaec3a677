"""gcloud `ai custom-jobs create --config` files: read one into a planner job, write one from a job.

The file gcloud takes is a CustomJobSpec in YAML. gcloud's own reference asks for camelCase
keys, but files written for the Python SDK (and older docs) use snake_case, and both spell the
worker pools either as a list or, for one pool, as a single mapping; all of these are read.
`read_config` keeps every value's source position, so `planner.config.validate` checks the job it
becomes against the same schema as any desired-state file and reports problems at the
gcloud file's own lines. Turning the job into desired-state YAML is `planner.generate`'s
business; what is valid is `planner.config.validate`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from planner import apimodel
from planner.config.load import Document, Span, parse_document
from planner.errors import ConfigError, Diagnostic, SourceLocation

_SNAKE = re.compile(r"_([a-z0-9])")
_ROOT: Span = (1, 1, 1, 1, None)


def camel(key: str) -> str:
    """`boot_disk_size_gb` -> `bootDiskSizeGb`; camelCase keys are left as they are."""
    return _SNAKE.sub(lambda m: m.group(1).upper(), key)


def read_config(text: str, file: str) -> tuple[dict[str, Any], Span]:
    """The CustomJobSpec of a gcloud config file in camelCase, with positions; ConfigError if it
    is not YAML, not a mapping, or spells one key two ways."""
    document, problems = parse_document(text, file)
    if document is None or problems:
        raise ConfigError(problems or [Diagnostic(SourceLocation(file, 1, 1), "", "expected a CustomJobSpec mapping")])
    diagnostics: list[Diagnostic] = []
    spec, span = _camel_tree(document, document.data, document.span, "", diagnostics)
    if diagnostics:
        raise ConfigError(diagnostics)
    assert isinstance(spec, dict)
    pools = spec.get("workerPoolSpecs")
    if isinstance(pools, dict):  # one pool written as a mapping, as in gcloud's reference example
        children = span[4]
        assert isinstance(children, dict)
        pool_span = children["workerPoolSpecs"]
        spec["workerPoolSpecs"] = [pools]
        children["workerPoolSpecs"] = (pool_span[0], pool_span[1], pool_span[2], pool_span[3], [pool_span])
    return spec, span


def _camel_tree(doc: Document, value: Any, span: Span, path: str, diagnostics: list[Diagnostic]) -> tuple[Any, Span]:
    children = span[4]
    if isinstance(value, dict) and isinstance(children, dict):
        out: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        for key, item in value.items():
            name = camel(key)
            if name in out:
                where = doc.location(children[key], key=True)
                diagnostics.append(Diagnostic(where, f"{path}.{name}".lstrip("."), f'"{key}" repeats "{name}"'))
                continue
            out[name], spans[name] = _camel_tree(doc, item, children[key], f"{path}.{name}".lstrip("."), diagnostics)
        return out, (span[0], span[1], span[2], span[3], spans)
    if isinstance(value, list) and isinstance(children, list):
        pairs = [
            _camel_tree(doc, v, s, f"{path}[{i}]", diagnostics)
            for i, (v, s) in enumerate(zip(value, children, strict=True))
        ]
        return [p[0] for p in pairs], (span[0], span[1], span[2], span[3], [p[1] for p in pairs])
    return value, span


def as_document(
    file: str,
    spec: dict[str, Any],
    span: Span,
    *,
    address: str,
    display_name: str,
    project: str,
    location: str,
    labels: Mapping[str, str] | None = None,
) -> Document:
    """A desired-state document holding the one job, whose jobSpec keeps the gcloud file's
    positions (what planner adds itself is placed at line 1)."""
    job: dict[str, Any] = {"displayName": display_name, "jobSpec": spec}
    job_spans: dict[str, Span] = {"displayName": _ROOT, "jobSpec": span}
    if labels:
        job["labels"] = dict(labels)
        job_spans["labels"] = (1, 1, 1, 1, {k: _ROOT for k in labels})
    data = {"version": 1, "project": project, "location": location, "jobs": {address: job}}
    spans: dict[str, Span] = {
        "version": _ROOT,
        "project": _ROOT,
        "location": _ROOT,
        "jobs": (1, 1, 1, 1, {address: (1, 1, 1, 1, job_spans)}),
    }
    return Document(file, data, (1, 1, 1, 1, spans))


def has_env_values(job_spec: Mapping[str, Any]) -> bool:
    for pool in job_spec.get("workerPoolSpecs") or ():
        if not isinstance(pool, Mapping):
            continue
        for kind in ("containerSpec", "pythonPackageSpec"):
            code = pool.get(kind)
            if isinstance(code, Mapping) and any(
                isinstance(e, Mapping) and e.get("value") for e in code.get("env") or ()
            ):
                return True
    return False


def config_text(canonical: Mapping[str, Any], *, location: str) -> str:
    """A gcloud config file (the CustomJobSpec) for a canonical job, with the flags gcloud takes
    for the rest (display name, labels, region) in a comment."""
    job_spec = canonical.get("jobSpec") or {}
    flags = [f"--region={location}", f"--display-name={_shell_quote(str(canonical.get('displayName', '')))}"]
    labels = canonical.get("labels")
    if isinstance(labels, Mapping) and labels:
        flags.append("--labels=" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())))
    encryption = canonical.get("encryptionSpec")
    if isinstance(encryption, Mapping) and encryption.get("kmsKeyName"):
        flags.append(f"--kms-key={encryption['kmsKeyName']}")
    head = f"# gcloud ai custom-jobs create {' '.join(flags)} --config=THIS_FILE\n"
    return head + yaml.safe_dump(_plain(job_spec), sort_keys=False, default_flow_style=False, allow_unicode=True)


def _shell_quote(text: str) -> str:
    return text if re.fullmatch(r"[A-Za-z0-9_.,:/=+-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def _plain(value: Any) -> Any:
    """Plain YAML values; int64 fields as integers, as gcloud's own examples write them."""
    if isinstance(value, Mapping):
        return {
            str(k): int(v) if k in apimodel.INT64_FIELDS and isinstance(v, str) and v.isdigit() else _plain(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
