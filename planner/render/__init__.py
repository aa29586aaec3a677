"""Views: plans and drift reports rendered as text, markdown or JSON; the CLI prints them.

Pure functions. Every view is built from the one JSON document of the model
(planner.documents: `plan_to_json`, `drift_to_json`), so env values are masked
the same way everywhere unless show_sensitive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from planner.documents.drift import drift_to_json
from planner.documents.plan import plan_to_json
from planner.drift import DriftReport
from planner.errors import PlannerError
from planner.plans.model import Plan
from planner.render.cost_view import priced
from planner.render.json_view import dump
from planner.render.markdown import render_drift_markdown, render_plan_markdown
from planner.render.review import render_review_markdown
from planner.render.text import render_drift_text, render_plan_text

FORMATS: Final = ("text", "markdown", "json")

__all__ = ["FORMATS", "drift_to_json", "render_drift", "render_plan"]


def render_plan(
    plan: Plan,
    fmt: str,
    *,
    color: bool = False,
    show_sensitive: bool = False,
    context: Mapping[str, str] | None = None,
) -> str:
    """The plan as `text`, `markdown` or `json`; colour (ANSI) applies to text only.

    A priced plan's markdown is the PR view (render.review), with the CI `context` if given.
    """
    doc = plan_to_json(plan, show_sensitive=show_sensitive)
    if fmt == "text":
        return render_plan_text(doc, color=color, show_sensitive=show_sensitive)
    if fmt == "markdown" and priced(doc):
        return render_review_markdown(doc, context=context, show_sensitive=show_sensitive)
    if fmt == "markdown":
        return render_plan_markdown(doc, show_sensitive=show_sensitive)
    if fmt == "json":
        return dump(doc)
    raise _unknown(fmt)


def render_drift(report: DriftReport, fmt: str, *, color: bool = False, show_sensitive: bool = False) -> str:
    """The drift report as `text`, `markdown` or `json`; colour (ANSI) applies to text only."""
    doc = drift_to_json(report, show_sensitive=show_sensitive)
    if fmt == "text":
        return render_drift_text(doc, color=color, show_sensitive=show_sensitive)
    if fmt == "markdown":
        return render_drift_markdown(doc, show_sensitive=show_sensitive)
    if fmt == "json":
        return dump(doc)
    raise _unknown(fmt)


def _unknown(fmt: str) -> PlannerError:
    return PlannerError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
