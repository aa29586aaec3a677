"""Turns loaded documents into the Desired model: variables, defaults, schema checks, normalisation.

`load` hands it plain values with positions; it hands `plan` a Desired, or raises ConfigError
with every problem found, each at file:line:column with its field path. It never reads the
environment: the CLI gathers variables (--var, --var-file, PLANNER_VAR_*) and passes them in.

Variables: ``${var.NAME}`` anywhere in a string value, ``${var.NAME:-default}`` with a default,
``$${`` for a literal ``${``. A value that is nothing but one unquoted reference takes the
type YAML would give the text (``acceleratorCount: ${var.gpus}`` with gpus=2 is the integer 2);
quote it to keep a string. Mapping keys are never interpolated.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from planner import jsoncodec
from planner.apimodel import canonical_duration as _canonical_duration
from planner.apimodel import is_reserved_label
from planner.config import fast as fastyaml
from planner.config import templates
from planner.config.load import (
    Document,
    Span,
    find_span,
    load_each,
    read_config_file,
    resolve_paths,
    resolve_plain_scalar,
)
from planner.config.messages import (
    SECRET_PATH,
    SIMPLE_KEY,
    check_field_path,
    describe,
    field_places,
    format_path,
    schema_message,
    unknown_field,
)
from planner.config.model import Desired, DesiredJob, Lifecycle, OnRemove
from planner.config.variables import as_values, typed_reference
from planner.config.variables import missing_message as variables_missing_message
from planner.errors import ConfigError, Diagnostic, SourceLocation
from planner.hardware import HardwareOptions, Severity, check_job, packaged_catalog

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

# A generated copy of schemas/desired-state.schema.json, shipped inside the package.
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "data"
DESIRED_STATE_SCHEMA = "desired-state.schema.json"

BODY_FIELDS = ("displayName", "labels", "jobSpec", "encryptionSpec")

_VAR_TOKEN = re.compile(r"\$\$\{|\$\{var\.([^}]*)\}|\$\{var\.")
_VAR_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)



# Thousands of jobs repeat the same few durations and ignoreChanges paths.
canonical_duration = functools.lru_cache(maxsize=1024)(_canonical_duration)


# --- the schema, compiled once ------------------------------------------------------------------


class _Schemas:
    def __init__(self, schema: dict[str, Any]):
        self.schema = schema
        defs = schema["$defs"]
        file_schema = copy.deepcopy(schema)
        file_schema["properties"]["jobs"]["additionalProperties"] = True
        self._file_schema = file_schema
        self._file_rs = jsonschema_rs.validator_for(file_schema)
        job_schema = {"$ref": "#/$defs/job", "$defs": defs}
        self._job_schema = job_schema
        self._job_rs = jsonschema_rs.validator_for(job_schema)
        self.job_fields: dict[str, Any] = defs["job"]["properties"]
        self.field_places = field_places(self.job_fields)

    def file_ok(self, data: dict[str, Any]) -> bool:
        return _valid(self._file_rs, data) or self.file.is_valid(data)

    def job_ok(self, job: dict[str, Any]) -> bool:
        return _valid(self._job_rs, job) or self.job.is_valid(job)

    # jsonschema explains what the fast checks above only detect; importing it costs a tenth
    # of a second, so only a configuration with errors pays for it.
    @functools.cached_property
    def file(self) -> Draft202012Validator:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self._file_schema)

    @functools.cached_property
    def job(self) -> Draft202012Validator:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self._job_schema)


def _valid(fast: Any, value: Any) -> bool:
    """Does jsonschema-rs say valid? It answers for 10,000 jobs in a few hundredths of a second;
    a "no" (or a value it cannot read) is asked of jsonschema again, which has the final word,
    so the two can only differ in speed."""
    try:
        return bool(fast.is_valid(value))
    except (ValueError, TypeError, OverflowError):
        return False


@functools.cache
def _schemas() -> _Schemas:
    text = (SCHEMA_DIR / DESIRED_STATE_SCHEMA).read_text(encoding="utf-8")
    return _Schemas(json.loads(text))


# --- entry point --------------------------------------------------------------------------------


def load_desired(
    paths: Sequence[str | Path],
    *,
    variables: Mapping[str, str],
    hardware: HardwareOptions | None = None,
) -> Desired:
    """Load, merge, check and normalise desired-state files; raise ConfigError with all problems.

    `hardware` says which catalog the hardware checks use and how strict they are (default:
    the packaged catalog, strict); warnings come back in `Desired.warnings`.

    Check fast, explain slow: a large configuration is first read by the values tier
    (`planner.config.fast`) and validated without positions; whenever that tier declines a
    file, or validation finds anything at all to say, the files are loaded again by the
    positional builder, which words every problem.
    """
    variables = as_values(paths, variables)  # declared variables: defaults, types (planner.config.variables)
    desired = _load_values(paths, variables, hardware)
    if desired is None:
        # Every file is checked: one with a YAML syntax error does not hide the others' problems.
        documents, syntax_problems = load_each(paths)
        desired = _Validation(variables, hardware).run(documents, syntax_problems)
    return desired


def validate_documents(documents: Sequence[Document], *, variables: Mapping[str, str]) -> Desired:
    """Documents already parsed (e.g. a gcloud config turned into a job by planner.gcloud), checked
    as load_desired checks files; raise ConfigError with all problems."""
    return _Validation(variables).run(documents)


# Below this many bytes of YAML the builder takes a few hundredths of a second, and gives every
# job its source position at once.
FAST_MIN_BYTES = 1 << 20


class _Decline(Exception):
    """The values tier has something to say about the configuration: the builder's load says it."""


class _Nowhere(dict[str, Any]):
    """The children of a value whose position the values tier does not know: every child is nowhere."""

    def __getitem__(self, key: str) -> Span:
        return _NOWHERE

    def get(self, key: str, default: Any = None) -> Span:  # type: ignore[override]
        return _NOWHERE

    def __contains__(self, key: object) -> bool:
        return True


_NOWHERE: Span = (0, 0, 0, 0, _Nowhere())


def _load_values(
    paths: Sequence[str | Path], variables: Mapping[str, str], hardware: HardwareOptions | None
) -> Desired | None:
    """The configuration validated from the values tier's values, or None for the builder's load."""
    texts: list[tuple[str, str]] = []
    for path in resolve_paths(paths):
        try:
            texts.append((str(path), read_config_file(path).decode("utf-8").removeprefix("\ufeff")))
        except UnicodeDecodeError:
            return None
    if sum(len(text) for _, text in texts) < FAST_MIN_BYTES:
        return None
    documents = []
    for name, text in texts:
        values = fastyaml.fast_values(text)
        if values is None:
            return None
        documents.append(Document(name, values.data, _NOWHERE, values.templated))
    try:
        return _Validation(variables, hardware, again=_Revalidation(paths, variables, hardware)).run(documents)
    except _Decline:
        return None


class _Revalidation:
    """The positions of jobs validated from values: nothing uses them on a plan's way, so the
    first job asked for loads the files again with the builder."""

    def __init__(self, paths: Sequence[str | Path], variables: Mapping[str, str], hardware: HardwareOptions | None):
        self._paths = list(paths)
        self._variables = dict(variables)
        self._hardware = hardware
        self._positions: dict[str, Mapping[str, SourceLocation]] | None = None

    def positions(self, address: str) -> Mapping[str, SourceLocation]:
        if self._positions is None:
            documents, problems = load_each(self._paths)
            desired = _Validation(self._variables, self._hardware).run(documents, problems)
            self._positions = {a: job.positions for a, job in desired.jobs.items()}
        return self._positions.get(address, {})


class _DeferredPositions(Mapping[str, SourceLocation]):
    def __init__(self, again: _Revalidation, address: str):
        self._again = again
        self._address = address

    def __getitem__(self, path: str) -> SourceLocation:
        return self._again.positions(self._address)[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._again.positions(self._address))

    def __len__(self) -> int:
        return len(self._again.positions(self._address))


class _Validation:
    def __init__(
        self, variables: Mapping[str, str], hardware: HardwareOptions | None = None, again: _Revalidation | None = None
    ):
        # With `again`, the documents come from the values tier: no positions, so anything to
        # report declines (_Decline) and the builder's load reports it.
        self.again = again
        self.variables = variables
        self.schemas = _schemas()
        self.diagnostics: dict[tuple[SourceLocation | None, str], Diagnostic] = {}
        self.warnings: dict[tuple[SourceLocation | None, str], Diagnostic] = {}
        self.hardware = hardware or HardwareOptions()
        self.catalog = self.hardware.catalog or packaged_catalog()
        self.good_paths: set[str] = set()
        self.unresolved: set[SourceLocation] = set()
        self.bad_defaults: list[tuple[str | int, ...]] = []

    def report(self, location: SourceLocation | None, path: str, message: str) -> None:
        if self.again is not None:
            raise _Decline
        if location is not None and location in self.unresolved:
            return  # the value still holds a ${var.X} that could not be replaced: said once
        # A value merged from `defaults` would otherwise be reported once per job.
        self.diagnostics.setdefault((location, message), Diagnostic(location, path, message))

    def report_unresolved(self, location: SourceLocation, path: str, message: str) -> None:
        self.report(location, path, message)
        self.unresolved.add(location)

    def run(self, documents: Sequence[Document], problems: Sequence[Diagnostic] = ()) -> Desired:
        jobs: dict[str, DesiredJob] = {}
        defined_at: dict[str, SourceLocation] = {}
        for problem in problems:
            self.diagnostics.setdefault((problem.location, problem.message), problem)
        for doc in documents:
            self._document(doc, jobs, defined_at)
        if self.diagnostics:
            raise ConfigError(self.diagnostics.values())
        ordered = {address: jobs[address] for address in sorted(jobs)}
        warnings = tuple(sorted(self.warnings.values(), key=Diagnostic.sort_key))
        return Desired(
            jobs=ordered, files=tuple(d.file for d in documents), config_hash=config_hash(ordered), warnings=warnings
        )

    def _document(self, doc: Document, jobs: dict[str, DesiredJob], defined_at: dict[str, SourceLocation]) -> None:
        data = _interpolate_document(self, doc)
        assert isinstance(data, dict)
        # Paths inside `defaults` already reported as wrong: a job failing only because of
        # them is not explained again (that would cost a slow jsonschema pass per job).
        self.bad_defaults = []
        if not self.schemas.file_ok(data):
            for error in self.schemas.file.iter_errors(data):
                self._schema_error(doc, error, doc.span, ())
                path = tuple(error.absolute_path)
                if path[:1] == ("defaults",):
                    if "propertyNames" in error.schema_path:
                        self.bad_defaults.append((*path[1:], str(error.instance)))
                    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
                        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
                        self.bad_defaults.extend((*path[1:], k) for k in error.instance if k not in known)
                    else:
                        self.bad_defaults.append(path[1:])

        defaults = data.get("defaults")
        defaults_span = doc.find(["defaults"])
        if not isinstance(defaults, dict) or defaults_span is None:
            defaults, defaults_span = {}, None
        else:
            self._semantic_checks(doc, defaults, defaults_span, ("defaults",))

        raw_jobs = data.get("jobs")
        jobs_span = doc.find(["jobs"])
        if not isinstance(raw_jobs, dict) or jobs_span is None:
            return
        children = jobs_span[4]
        assert isinstance(children, dict)
        mentions = templates.matrix_mentions(doc, data)
        for address, job in raw_jobs.items():
            job_span = children[address]
            key_loc = doc.location(job_span, key=True)
            if address in defined_at:
                self.report(key_loc, f"jobs.{address}", f'job "{address}" is already defined at {defined_at[address]}')
                continue
            defined_at[address] = key_loc
            if templates.needs_expansion(job, address, mentions):
                if self.again is not None:
                    raise _Decline  # templates place the values they make: the builder's load does
                self._expanded(doc, data, address, job, job_span, defaults, defaults_span, jobs, defined_at)
                continue
            built = self._job(doc, data, address, job, job_span, defaults, defaults_span)
            if built is not None:
                jobs[address] = built

    def _expanded(
        self,
        doc: Document,
        data: dict[str, Any],
        address: str,
        job: dict[str, Any],
        job_span: Span,
        defaults: dict[str, Any],
        defaults_span: Span | None,
        jobs: dict[str, DesiredJob],
        defined_at: dict[str, SourceLocation],
    ) -> None:
        """A job with `extends:` or `matrix:` (see planner.config.templates), validated as the jobs it makes."""
        key_loc = doc.location(job_span, key=True)
        for item in templates.expand_job(doc, address, job, job_span, defaults, defaults_span, _merge, self.report):
            if item.address in defined_at and item.address != address:
                where = defined_at[item.address]
                self.report(key_loc, f"jobs.{address}", f'job "{item.address}" is already defined at {where}')
                continue
            defined_at.setdefault(item.address, key_loc)
            before = len(self.diagnostics)
            built = self._job(doc, data, item.address, item.job, item.span, {}, None)
            if item.origins and len(self.diagnostics) > before:
                for key in list(self.diagnostics)[before:]:  # a dict keeps insertion order
                    self.diagnostics[key] = templates.attribute(self.diagnostics[key], item, key_loc)
            if built is not None:
                jobs[item.address] = built

    # --- one job ---

    def _job(
        self,
        doc: Document,
        data: dict[str, Any],
        address: str,
        job: Any,
        job_span: Span,
        defaults: dict[str, Any],
        defaults_span: Span | None,
    ) -> DesiredJob | None:
        prefix: tuple[str | int, ...] = ("jobs", address)
        key_loc = doc.location(job_span, key=True)
        if not isinstance(job, dict):
            self.report(doc.location(job_span), format_path(prefix), f"expected a mapping, got {describe(job)}")
            return None
        if defaults_span is not None:
            job, job_span = _merge(defaults, defaults_span, job, job_span)
        else:
            job = dict(job)
        job_children = job_span[4]
        assert isinstance(job_children, dict)
        for name in ("project", "location"):
            if name not in job and isinstance(data.get(name), str):
                job[name] = data[name]
                file_span = doc.find([name])
                assert file_span is not None
                job_children = {**job_children, name: file_span}
        job_span = (job_span[0], job_span[1], job_span[2], job_span[3], job_children)

        before = len(self.diagnostics)
        if not self.schemas.job_ok(job) and not self._only_bad_defaults(job, job_span, defaults_span):
            for error in self.schemas.job.iter_errors(job):
                self._schema_error(doc, error, job_span, prefix)
        for name in ("project", "location"):
            if name not in job:
                self.report(
                    key_loc,
                    format_path(prefix),
                    f'no {name}: set "{name}" at the top of the file or on the job',
                )
        self._semantic_checks(doc, job, job_span, prefix)
        if len(self.diagnostics) == before:
            self._hardware_checks(doc, job, job_span, prefix)
        if len(self.diagnostics) != before:
            return None

        _normalise(job)
        lifecycle = job.get("lifecycle", {})
        return DesiredJob(
            address=address,
            project=job["project"],
            location=job["location"],
            body={k: job[k] for k in BODY_FIELDS if k in job},
            lifecycle=Lifecycle(
                prevent_destroy=lifecycle.get("preventDestroy", False),
                ignore_changes=tuple(lifecycle.get("ignoreChanges", ())),
                on_remove=OnRemove(lifecycle.get("onRemove", "delete")),
                rerun_on=tuple(lifecycle.get("rerunOn", ())),
            ),
            source=key_loc if self.again is None else None,
            positions=_Positions(doc.file, job_span) if self.again is None else _DeferredPositions(self.again, address),
        )

    def _only_bad_defaults(self, job: dict[str, Any], job_span: Span, defaults_span: Span | None) -> bool:
        """True if the job passes once the values it took from bad `defaults` entries are removed."""
        if not self.bad_defaults or defaults_span is None:
            return False
        pruned: Any = job
        for path in self.bad_defaults:
            if path and find_span(job_span, path) is find_span(defaults_span, path) is not None:
                pruned = _without(pruned, path)
        return pruned is not job and self.schemas.job_ok(pruned)

    def _semantic_checks(self, doc: Document, job: dict[str, Any], span: Span, prefix: tuple[str | int, ...]) -> None:
        """What the schema cannot say: reserved labels, duration ranges, ignoreChanges paths."""
        labels = job.get("labels")
        if isinstance(labels, dict):
            for key in labels:
                if is_reserved_label(key):
                    label_span = find_span(span, ("labels", key))
                    where = doc.location(label_span, key=True) if label_span else None
                    self.report(
                        where,
                        format_path((*prefix, "labels", key)),
                        f'label "{key}" is reserved for planner (managed-by and planner-* identify its jobs)',
                    )
        spec = job.get("jobSpec")
        scheduling = spec.get("scheduling") if isinstance(spec, dict) else None
        if isinstance(scheduling, dict):
            for name in ("timeout", "maxWaitDuration"):
                value = scheduling.get(name)
                if isinstance(value, str) and canonical_duration(value) is None:
                    value_span = find_span(span, ("jobSpec", "scheduling", name))
                    self.report(
                        doc.location(value_span) if value_span else None,
                        format_path((*prefix, "jobSpec", "scheduling", name)),
                        f"duration {describe(value)} is out of range (at most 315576000000s)",
                    )
        lifecycle = job.get("lifecycle")
        ignore = lifecycle.get("ignoreChanges") if isinstance(lifecycle, dict) else None
        if isinstance(ignore, list):
            for i, path in enumerate(ignore):
                if not isinstance(path, str):
                    continue
                if path in self.good_paths:
                    continue
                problem = check_field_path(path, self.schemas.job_fields)
                if problem is None:
                    self.good_paths.add(path)
                if problem is not None:
                    item_span = find_span(span, ("lifecycle", "ignoreChanges", i))
                    self.report(
                        doc.location(item_span) if item_span else None,
                        format_path((*prefix, "lifecycle", "ignoreChanges", i)),
                        problem,
                    )

    def _hardware_checks(self, doc: Document, job: dict[str, Any], span: Span, prefix: tuple[str | int, ...]) -> None:
        """Submit-time rules (planner.hardware), on a job the schema accepts; the emulator runs the same."""
        for finding in check_job(job, job.get("location"), self.catalog, allow_unknown=self.hardware.allow_unknown):
            path, found = finding.path, None
            while found is None and path:  # a missing field is reported where its parent is
                found = find_span(span, path)
                path = path[:-1] if found is None else path
            where = doc.location(found) if found is not None else doc.location(span, key=True)
            target = self.diagnostics if finding.severity is Severity.ERROR else self.warnings
            diagnostic = Diagnostic(where, format_path((*prefix, *finding.path)), finding.message)
            target.setdefault((where, finding.message), diagnostic)
            if self.again is not None:
                raise _Decline  # an error or a warning: either is worded with its position

    # --- schema errors → diagnostics ---

    def _schema_error(self, doc: Document, error: ValidationError, root: Span, prefix: tuple[str | int, ...]) -> None:
        rel = tuple(error.absolute_path)
        path = format_path((*prefix, *rel))
        span = find_span(root, rel) or root
        schema = error.schema if isinstance(error.schema, dict) else {}
        kind = error.validator
        value = error.instance

        if kind == "additionalProperties" and isinstance(value, dict):
            known = schema.get("properties", {})
            output_only = schema.get("x-output-only", ())
            children = span[4] if isinstance(span[4], dict) else {}
            for key in value:
                if key in known:
                    continue
                key_span = children.get(key, span)
                where = doc.location(key_span, key=True)
                key_path = format_path((*prefix, *rel, key))
                if key in output_only:
                    self.report(where, key_path, f'"{key}" is output-only (set by Vertex AI); remove it')
                else:
                    self.report(where, key_path, unknown_field(key, known, self.schemas.field_places))
            return
        if "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
            key = str(value)
            children = span[4] if isinstance(span[4], dict) else {}
            key_span = children.get(key, span)
            what = schema.get("x-kind", "key")
            rule = schema.get("description", f"must match {schema.get('pattern')}")
            self.report(
                doc.location(key_span, key=True), format_path((*prefix, *rel, key)), f'invalid {what} "{key}": {rule}'
            )
            return
        if kind == "required":
            missing = [name for name in error.validator_value if isinstance(value, dict) and name not in value]
            where = doc.location(span, key=True)
            for name in missing:
                self.report(where, path, f'missing required field "{name}"')
            return
        if kind in ("anyOf", "not") and "x-one-of" in schema:
            names = " or ".join(schema["x-one-of"])
            both = f"set only one of {names}, not both"
            message = f"a worker pool needs one of {names}" if kind == "anyOf" else both
            self.report(doc.location(span, key=True), path, message)
            return
        message = schema_message(kind, error.validator_value, value, schema)
        if SECRET_PATH.search(path) and not isinstance(value, dict | list):
            message = message.replace(describe(value), "a value (not shown: values under env are secret)")
        self.report(doc.location(span), path, message)


# --- variables, defaults, normalisation ---------------------------------------------------------


def _interpolate_text(text: str, variables: Mapping[str, str]) -> tuple[str, str | None]:
    """Text with ${var.X} replaced; or (text, problem)."""
    problem: str | None = None

    def replace(match: re.Match[str]) -> str:
        nonlocal problem
        token = match.group(0)
        if token == "$${":
            return "${"
        inner = match.group(1)
        body = _VAR_BODY.fullmatch(inner) if inner is not None else None
        if body is None:
            usage = "write ${var.NAME} or ${var.NAME:-default}"
            problem = problem or f'malformed variable reference "{token}": {usage}'
            return token
        name, default = body.group(1), body.group(2)
        if name in variables:
            return str(variables[name])
        missing = variables_missing_message(variables, name, default is not None)
        if missing is None:
            return default or ""
        problem = problem or missing
        return token

    return _VAR_TOKEN.sub(replace, text), problem


def _substitute(
    validation: _Validation, doc: Document, value: Any, span: Span, path: Sequence[str | int], plain: bool
) -> Any:
    if not isinstance(value, str) or "${" not in value:
        return value
    result, problem = _interpolate_text(value, validation.variables)
    if problem is not None:
        validation.report_unresolved(doc.location(span), format_path(path), problem)
        return value
    if plain and value.startswith("${") and _VAR_TOKEN.fullmatch(value):
        declared, typed = typed_reference(validation.variables, value)
        if declared:
            return typed
        try:
            typed = resolve_plain_scalar(result) if result else result
        except ValueError:  # an integer beyond Python's digit limit for int()
            problem = f"the variable's value is a number of {len(result)} digits, too large for any field"
            validation.report_unresolved(doc.location(span), format_path(path), problem)
            return value
        if isinstance(typed, (bool, int)):
            return typed
    return result


def _interpolate_document(validation: _Validation, doc: Document) -> dict[str, Any]:
    """The document's data with variables replaced (in place, unless aliases share values)."""
    if doc.aliased:
        plain = set()
        for path, is_plain in doc.templated:
            found = find_span(doc.span, path)
            if is_plain and found is not None:
                plain.add((found[0], found[1]))
        data = _copy_interpolated(validation, doc, doc.data, doc.span, (), plain)
        assert isinstance(data, dict)
        return data
    data = doc.data
    for path, is_plain in doc.templated:
        container: Any = data
        for part in path[:-1]:
            container = container[part]
        span = find_span(doc.span, path) or _NOWHERE  # (nowhere: the values tier's documents)
        container[path[-1]] = _substitute(validation, doc, container[path[-1]], span, path, is_plain)
    return data


def _copy_interpolated(
    validation: _Validation,
    doc: Document,
    value: Any,
    span: Span,
    path: tuple[str | int, ...],
    plain: set[tuple[int, int]],
) -> Any:
    """A fresh copy of value (aliases become separate values) with variables replaced."""
    if isinstance(value, str):
        return _substitute(validation, doc, value, span, path, (span[0], span[1]) in plain)
    children = span[4]
    if isinstance(value, dict):
        assert isinstance(children, dict)
        return {k: _copy_interpolated(validation, doc, v, children[k], (*path, k), plain) for k, v in value.items()}
    if isinstance(value, list):
        assert isinstance(children, list)
        return [_copy_interpolated(validation, doc, v, children[i], (*path, i), plain) for i, v in enumerate(value)]
    return value


def _without(value: Any, path: Sequence[str | int]) -> Any:
    """value with the entry at path removed, copying only the containers along the path."""
    head, rest = path[0], path[1:]
    if isinstance(value, dict) and isinstance(head, str) and head in value:
        out = dict(value)
        if rest:
            out[head] = _without(value[head], rest)
        else:
            del out[head]
        return out
    if isinstance(value, list) and isinstance(head, int) and 0 <= head < len(value):
        items = list(value)
        if rest:
            items[head] = _without(value[head], rest)
        else:
            del items[head]
        return items
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _merge(base: dict[str, Any], base_span: Span, over: dict[str, Any], over_span: Span) -> tuple[dict[str, Any], Span]:
    """Deep-merge over onto base (over wins, lists replace); values from base are copied."""
    base_children = base_span[4]
    over_children = over_span[4]
    assert isinstance(base_children, dict) and isinstance(over_children, dict)
    merged: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    for key, value in base.items():
        if key not in over:
            merged[key] = _copy(value)
            spans[key] = base_children[key]
    for key, value in over.items():
        if key in base and isinstance(value, dict) and isinstance(base[key], dict):
            merged[key], spans[key] = _merge(base[key], base_children[key], value, over_children[key])
        else:
            merged[key] = value
            spans[key] = over_children[key]
    return merged, (over_span[0], over_span[1], over_span[2], over_span[3], spans)


def _normalise(job: dict[str, Any]) -> None:
    """In place, on values this job owns: int64 as strings, durations as "Ns"."""
    spec = job.get("jobSpec")
    if not isinstance(spec, dict):
        return
    pools = spec.get("workerPoolSpecs")
    if isinstance(pools, list):
        for i, pool in enumerate(pools):
            # An unresolved "${var.X}" was reported already (and its schema error suppressed).
            if isinstance(pool, dict) and "replicaCount" in pool and not _unresolved(pool["replicaCount"]):
                pools[i] = {**pool, "replicaCount": str(int(pool["replicaCount"]))}
    scheduling = spec.get("scheduling")
    if isinstance(scheduling, dict):
        changed = dict(scheduling)
        for name in ("timeout", "maxWaitDuration"):
            if isinstance(changed.get(name), str):
                changed[name] = canonical_duration(changed[name]) or changed[name]
        spec["scheduling"] = changed


def _unresolved(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def config_hash(jobs: Mapping[str, DesiredJob], digests: Mapping[str, bytes] | None = None) -> str:
    """sha256 over the job digests in address order; `digests` may hold some already computed."""
    total = hashlib.sha256()
    for address in sorted(jobs):
        digest = digests.get(address) if digests is not None else None
        total.update(digest if digest is not None else job_digest(jobs[address]))
    return total.hexdigest()


def job_digest(job: DesiredJob) -> bytes:
    """sha256 of one job's canonical JSON (address, project, location, body, lifecycle)."""
    entry = {
        "address": job.address,
        "project": job.project,
        "location": job.location,
        "body": job.body,
        "lifecycle": {
            "preventDestroy": job.lifecycle.prevent_destroy,
            "ignoreChanges": list(job.lifecycle.ignore_changes),
            "onRemove": job.lifecycle.on_remove.value,
            "rerunOn": list(job.lifecycle.rerun_on),
        },
    }
    return hashlib.sha256(jsoncodec.dumps_sorted(entry)).digest()


class _Positions(Mapping[str, SourceLocation]):
    """Dotted path -> SourceLocation for every value of one job, computed on first use."""

    def __init__(self, file: str, span: Span):
        self._file = file
        self._span = span
        self._table: dict[str, SourceLocation] | None = None

    def _build(self) -> dict[str, SourceLocation]:
        if self._table is None:
            table: dict[str, SourceLocation] = {}
            stack: list[tuple[str, Span]] = [("", self._span)]
            while stack:
                path, span = stack.pop()
                if path:
                    table[path] = SourceLocation(self._file, span[0], span[1])
                children = span[4]
                if isinstance(children, dict):
                    for key, child in children.items():
                        stack.append((_join(path, key), child))
                elif isinstance(children, list):
                    for i, child in enumerate(children):
                        stack.append((f"{path}[{i}]", child))
            self._table = table
        return self._table

    def __getitem__(self, key: str) -> SourceLocation:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())


def _join(path: str, key: str) -> str:
    if SIMPLE_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"
