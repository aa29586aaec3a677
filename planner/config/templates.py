"""Templates and sweeps before validation: `templates:` + `extends:`, then `matrix:`, for one job.

A file's top-level ``templates:`` holds partial jobs by name; a job's ``extends: NAME`` (or a list
of names) stacks them in order, then the file's ``defaults``, then the job itself (layered by
`planner.config.merge`: a later layer wins, mappings merge deeply, lists replace, as with
defaults). A template may extend other templates. The merged job's ``matrix:`` is then expanded
by `planner.config.matrix`. What comes out is an ordinary job for `validate`, whose values keep
their source positions: a value taken from a template is reported at the template's line, and
`attribute` adds which job used it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from planner.config import matrix
from planner.config.load import Document, Span, find_span
from planner.config.merge import merge
from planner.config.messages import did_you_mean
from planner.errors import Diagnostic, SourceLocation

KEYS = ("extends", *matrix.KEYS)  # job keys handled here, never part of the job itself

Report = Callable[[SourceLocation | None, str, str], None]


@dataclass(frozen=True)
class Expanded:
    """One job ready for validation: its address, merged values and their positions."""

    address: str
    job: dict[str, Any]
    span: Span
    # (line, column) of every value taken from a template -> that template's name.
    origins: Mapping[tuple[int, int], str] = field(default_factory=dict)


def needs_expansion(job: Any, address: str, mentions: frozenset[str]) -> bool:
    """Does this job use extends/matrix (or ${matrix.X}, which then needs a matrix)?"""
    return isinstance(job, dict) and (address in mentions or not job.keys().isdisjoint(KEYS))


def matrix_mentions(doc: Document, data: Mapping[str, Any]) -> frozenset[str]:
    """The jobs of a document with a string holding "${matrix." (found from the loader's list of
    strings holding "${", so a file without any costs nothing)."""
    out: set[str] = set()
    for path, _ in doc.templated:
        if len(path) < 2 or path[0] != "jobs" or path[1] in out:
            continue
        value: Any = data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                value = None
                break
        if isinstance(value, str) and "${matrix." in value:
            out.add(str(path[1]))
    return frozenset(out)


def expand_job(
    doc: Document,
    address: str,
    job: dict[str, Any],
    job_span: Span,
    defaults: dict[str, Any],
    defaults_span: Span | None,
    report: Report,
) -> list[Expanded]:
    """The jobs one `jobs:` entry stands for (one, or one per matrix combination); [] after
    reporting a problem with `extends` or `matrix`."""
    prefix = f"jobs.{address}"

    def at(span: Span | None) -> SourceLocation | None:
        return doc.location(span) if span is not None else doc.location(job_span, key=True)

    origins: dict[tuple[int, int], str] = {}
    layers: list[tuple[dict[str, Any], Span]] = []
    if "extends" in job:
        chain = _chain(doc, job["extends"], find_span(job_span, ("extends",)), prefix, report, ())
        if chain is None:
            return []
        for name, value, span in chain:
            layers.append((value, span))
            _collect(span, name, origins)
    if defaults_span is not None:
        layers.append((defaults, defaults_span))
    merged, merged_span = dict(job), job_span
    if layers:
        base, base_span = layers[0][0], layers[0][1]
        for value, span in layers[1:]:
            base, base_span = merge(base, base_span, value, span)
        # The job's own key position, not the last template's.
        merged, merged_span = merge(base, base_span, job, job_span)
    merged.pop("extends", None)
    sweep = merged.pop("matrix", None)
    max_jobs = merged.pop("maxJobs", None)
    merged_span = _without_keys(merged_span, KEYS)
    say = _reporter(doc, prefix, report, origins, address, job_span)
    if sweep is None:
        if max_jobs is not None:
            report(at(find_span(job_span, ("maxJobs",))), f"{prefix}.maxJobs", "maxJobs needs a matrix")
            return []
        if matrix.mentions_matrix(merged):
            matrix.substitute(merged, merged_span, {}, set(), say)
            return []
        return [Expanded(address, merged, merged_span, origins)]

    def report_span(span: Span | None, path: str, message: str) -> None:
        report(at(span), f"{prefix}.{path}" if path else prefix, message)

    sweep_span = find_span(job_span, ("matrix",))
    combos = matrix.combinations(address, sweep, sweep_span, max_jobs, find_span(job_span, ("maxJobs",)), report_span)
    if not combos:
        return []
    plain = doc.plain_positions()
    out: list[Expanded] = []
    for combo in combos:
        values = matrix.substitute(merged, merged_span, combo.values, plain, say)
        out.append(Expanded(combo.address, values, merged_span, origins))
    return out


def attribute(diagnostic: Diagnostic, expanded: Expanded, job_location: SourceLocation) -> Diagnostic:
    """The diagnostic, saying which job used the template it points into (if it does)."""
    loc = diagnostic.location
    if loc is None or loc.file != job_location.file:
        return diagnostic
    name = expanded.origins.get((loc.line, loc.column))
    if name is None:
        return diagnostic
    note = f' (in template "{name}", used by job "{expanded.address}" at {job_location})'
    return Diagnostic(loc, diagnostic.path, diagnostic.message + note)


def _reporter(
    doc: Document, prefix: str, report: Report, origins: Mapping[tuple[int, int], str], address: str, job_span: Span
) -> matrix.Report:
    def inner(span: Span | None, path: str, message: str) -> None:
        name = origins.get((span[0], span[1])) if span is not None else None
        if name is not None:
            message += f' (in template "{name}", used by job "{address}" at {doc.location(job_span, key=True)})'
        report(doc.location(span) if span is not None else None, f"{prefix}.{path}" if path else prefix, message)

    return inner


def _chain(
    doc: Document,
    names: Any,
    span: Span | None,
    path: str,
    report: Report,
    stack: tuple[str, ...],
) -> list[tuple[str, dict[str, Any], Span]] | None:
    """The templates `names` stands for, each after the templates it extends; None on a problem."""
    where = doc.location(span) if span is not None else None
    listed = names if isinstance(names, list) else [names]
    if not listed or not all(isinstance(n, str) for n in listed):
        report(where, f"{path}.extends", "expected a template name or a list of template names")
        return None
    templates = doc.data.get("templates")
    templates_span = doc.find(["templates"])
    known = templates if isinstance(templates, dict) else {}
    out: list[tuple[str, dict[str, Any], Span]] = []
    for i, name in enumerate(listed):
        item_span = find_span(span, (i,)) if isinstance(names, list) and span is not None else span
        item_where = doc.location(item_span) if item_span is not None else where
        item_path = f"{path}.extends[{i}]" if isinstance(names, list) else f"{path}.extends"
        if name not in known or templates_span is None:
            otherwise = "" if known else "; define it under a top-level templates: of this file"
            hint = did_you_mean(name, sorted(known), otherwise)
            report(item_where, item_path, f'no template named "{name}"{hint}')
            return None
        if name in stack:
            cycle = " -> ".join((*stack, name))
            report(item_where, item_path, f"templates extend each other in a cycle: {cycle}")
            return None
        value = known[name]
        value_span = find_span(templates_span, (name,))
        assert value_span is not None
        if not isinstance(value, dict):
            report(doc.location(value_span), f"templates.{name}", "a template is a mapping (a partial job)")
            return None
        if "extends" in value:
            inner = _chain(
                doc, value["extends"], find_span(value_span, ("extends",)), f"templates.{name}", report, (*stack, name)
            )
            if inner is None:
                return None
            out.extend(inner)
        own = {k: v for k, v in value.items() if k != "extends"}
        out.append((name, own, _without_keys(value_span, ("extends",))))
    return out


def _without_keys(span: Span, keys: tuple[str, ...]) -> Span:
    children = span[4]
    if not isinstance(children, dict) or not any(k in children for k in keys):
        return span
    return (span[0], span[1], span[2], span[3], {k: v for k, v in children.items() if k not in keys})


def _collect(span: Span, name: str, out: dict[tuple[int, int], str]) -> None:
    stack = [span]
    while stack:
        item = stack.pop()
        out.setdefault((item[0], item[1]), name)
        out.setdefault((item[2], item[3]), name)
        children = item[4]
        if isinstance(children, dict):
            stack.extend(children.values())
        elif isinstance(children, list):
            stack.extend(children)

