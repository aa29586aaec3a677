"""Turns loaded documents into the Desired model: variables, defaults, schema checks, normalisation.

`load` hands it plain values with positions; it hands `plan` a Desired, or raises ConfigError
with every problem found, each at file:line:column with its field path. It never reads the
environment: the CLI gathers variables (--var, --var-file, PLANNER_VAR_*) and passes them in.
Its neighbours: `interpolate` replaces ``${var.X}``, `merge` layers `defaults` under jobs,
`templates` expands `extends:`/`matrix:`, `schema` checks, `digest` fingerprints the result.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.apimodel import canonical_duration as _canonical_duration
from planner.apimodel import is_reserved_label
from planner.config import fast as fastyaml
from planner.config import templates
from planner.config.digest import config_hash
from planner.config.interpolate import interpolate_document
from planner.config.load import Document, Span, find_span, load_each, read_config_file, resolve_paths
from planner.config.merge import merge, without
from planner.config.messages import (
    SECRET_PATH,
    check_field_path,
    describe,
    format_path,
    schema_message,
    unknown_field,
)
from planner.config.model import Desired, DesiredJob, Lifecycle, OnRemove
from planner.config.positions import NOWHERE, Deferred, Positions
from planner.config.schema import schemas
from planner.config.variables import as_values
from planner.errors import ConfigError, Diagnostic, SourceLocation
from planner.hardware import HardwareOptions, Severity, check_job, packaged_catalog

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

BODY_FIELDS = ("displayName", "labels", "jobSpec", "encryptionSpec")

# Thousands of jobs repeat the same few durations and ignoreChanges paths.
canonical_duration = functools.lru_cache(maxsize=1024)(_canonical_duration)


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
        documents.append(Document(name, values.data, NOWHERE, values.templated))
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


class _Validation:
    def __init__(
        self, variables: Mapping[str, str], hardware: HardwareOptions | None = None, again: _Revalidation | None = None
    ):
        # With `again`, the documents come from the values tier: no positions, so anything to
        # report declines (_Decline) and the builder's load reports it.
        self.again = again
        self.positions_of = again.positions if again is not None else None  # (one bound method for all jobs)
        self.variables = variables
        self.schemas = schemas()
        self.diagnostics: dict[tuple[SourceLocation | None, str], Diagnostic] = {}
        self.warnings: dict[tuple[SourceLocation | None, str], Diagnostic] = {}
        self.hardware = hardware or HardwareOptions()
        self.catalog = self.hardware.catalog or packaged_catalog()
        self.good_paths: set[str] = set()
        self.unresolved: set[SourceLocation] = set()
        self.bad_defaults: list[tuple[str | int, ...]] = []
        # The file's own project and location (values, spans) for its jobs that set none.
        self.inherited: tuple[dict[str, Any], dict[str, Span]] = ({}, {})
        # Thousands of jobs share a few lifecycles (frozen, so one object serves them all).
        self.lifecycles: dict[tuple[Any, ...], Lifecycle] = {}

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
        files = tuple(d.file for d in documents)
        # The hash is computed when first read: a plan records it, `planner validate` never needs it.
        lazy_hash = functools.partial(config_hash, ordered)
        return Desired(jobs=ordered, files=files, config_hash=lazy_hash, warnings=warnings)

    def _document(self, doc: Document, jobs: dict[str, DesiredJob], defined_at: dict[str, SourceLocation]) -> None:
        data = interpolate_document(doc, self.variables, self.report_unresolved)
        assert isinstance(data, dict)
        inherited = {name: data[name] for name in ("project", "location") if isinstance(data.get(name), str)}
        spans: dict[str, Span] = {}
        for name in inherited:
            found = doc.find([name])
            assert found is not None
            spans[name] = found
        self.inherited = (inherited, spans)
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
                self._expanded(doc, address, job, job_span, defaults, defaults_span, jobs, defined_at)
                continue
            built = self._job(doc, address, job, job_span, key_loc, defaults, defaults_span)
            if built is not None:
                jobs[address] = built

    def _expanded(
        self,
        doc: Document,
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
        for item in templates.expand_job(doc, address, job, job_span, defaults, defaults_span, self.report):
            if item.address in defined_at and item.address != address:
                where = defined_at[item.address]
                self.report(key_loc, f"jobs.{address}", f'job "{item.address}" is already defined at {where}')
                continue
            defined_at.setdefault(item.address, key_loc)
            before = len(self.diagnostics)
            built = self._job(doc, item.address, item.job, item.span, doc.location(item.span, key=True), {}, None)
            if item.origins and len(self.diagnostics) > before:
                for key in list(self.diagnostics)[before:]:  # a dict keeps insertion order
                    self.diagnostics[key] = templates.attribute(self.diagnostics[key], item, key_loc)
            if built is not None:
                jobs[item.address] = built

    # --- one job ---

    def _job(
        self,
        doc: Document,
        address: str,
        job: Any,
        job_span: Span,
        key_loc: SourceLocation,
        defaults: dict[str, Any],
        defaults_span: Span | None,
    ) -> DesiredJob | None:
        prefix: tuple[str | int, ...] = ("jobs", address)
        if not isinstance(job, dict):
            self.report(doc.location(job_span), format_path(prefix), f"expected a mapping, got {describe(job)}")
            return None
        if defaults_span is not None:
            job, job_span = merge(defaults, defaults_span, job, job_span)
        else:
            job = dict(job)
        inherited, spans = self.inherited
        missing = [name for name in inherited if name not in job]
        if missing:
            for name in missing:
                job[name] = inherited[name]
            job_children = job_span[4]
            assert isinstance(job_children, dict)
            job_children = {**job_children, **{name: spans[name] for name in missing}}
            job_span = (job_span[0], job_span[1], job_span[2], job_span[3], job_children)

        before = len(self.diagnostics)
        if not self.schemas.job_ok(job) and not self._only_bad_defaults(job, job_span, defaults_span):
            for error in self.schemas.job.iter_errors(job):
                self._schema_error(doc, error, job_span, prefix)
        for name in ("project", "location"):
            if name not in job:
                message = f'no {name}: set "{name}" at the top of the file or on the job'
                self.report(key_loc, format_path(prefix), message)
        self._semantic_checks(doc, job, job_span, prefix)
        if len(self.diagnostics) == before:
            self._hardware_checks(doc, job, job_span, prefix)
        if len(self.diagnostics) != before:
            return None

        _normalise(job)
        return DesiredJob(
            address=address,
            project=job["project"],
            location=job["location"],
            body={k: job[k] for k in BODY_FIELDS if k in job},
            lifecycle=self._lifecycle(job.get("lifecycle", {})),
            source=key_loc if self.again is None else None,
            positions=Deferred(self.positions_of, address) if self.positions_of else Positions(doc.file, job_span),
        )

    def _lifecycle(self, lifecycle: dict[str, Any]) -> Lifecycle:
        key = (
            lifecycle.get("preventDestroy", False),
            tuple(lifecycle.get("ignoreChanges", ())),
            lifecycle.get("onRemove", "delete"),
            tuple(lifecycle.get("rerunOn", ())),
        )
        found = self.lifecycles.get(key)
        if found is None:
            found = self.lifecycles[key] = Lifecycle(
                prevent_destroy=key[0], ignore_changes=key[1], on_remove=OnRemove(key[2]), rerun_on=key[3]
            )
        return found

    def _only_bad_defaults(self, job: dict[str, Any], job_span: Span, defaults_span: Span | None) -> bool:
        """True if the job passes once the values it took from bad `defaults` entries are removed."""
        if not self.bad_defaults or defaults_span is None:
            return False
        pruned: Any = job
        for path in self.bad_defaults:
            if path and find_span(job_span, path) is find_span(defaults_span, path) is not None:
                pruned = without(pruned, path)
        return pruned is not job and self.schemas.job_ok(pruned)

    def _semantic_checks(self, doc: Document, job: dict[str, Any], span: Span, prefix: tuple[str | int, ...]) -> None:
        """What the schema cannot say: reserved labels, duration ranges, ignoreChanges paths."""

        def report_at(rel: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
            found = find_span(span, rel)
            self.report(doc.location(found, key=key) if found else None, format_path((*prefix, *rel)), message)

        labels = job.get("labels")
        if isinstance(labels, dict):
            for key in labels:
                if is_reserved_label(key):
                    message = f'label "{key}" is reserved for planner (managed-by and planner-* identify its jobs)'
                    report_at(("labels", key), message, key=True)
        spec = job.get("jobSpec")
        scheduling = spec.get("scheduling") if isinstance(spec, dict) else None
        if isinstance(scheduling, dict):
            for name in ("timeout", "maxWaitDuration"):
                value = scheduling.get(name)
                if isinstance(value, str) and canonical_duration(value) is None:
                    message = f"duration {describe(value)} is out of range (at most 315576000000s)"
                    report_at(("jobSpec", "scheduling", name), message)
        lifecycle = job.get("lifecycle")
        ignore = lifecycle.get("ignoreChanges") if isinstance(lifecycle, dict) else None
        if isinstance(ignore, list):
            for i, path in enumerate(ignore):
                if not isinstance(path, str) or path in self.good_paths:
                    continue
                problem = check_field_path(path, self.schemas.job_fields)
                if problem is None:
                    self.good_paths.add(path)
                else:
                    report_at(("lifecycle", "ignoreChanges", i), problem)

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
