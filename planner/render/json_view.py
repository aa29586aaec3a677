"""The JSON views: a plan or drift document (planner.documents) dumped as text.

The documents and their JSON Schemas are planner.documents'; this module only writes them
out, as `planner plan --format json` and `planner drift --format json` print them.
"""

from __future__ import annotations

import json
from typing import Any

from planner.documents.drift import drift_to_json
from planner.documents.plan import plan_to_json
from planner.drift import DriftReport
from planner.plans.model import Plan


def render_plan_json(plan: Plan, *, show_sensitive: bool = False) -> str:
    return dump(plan_to_json(plan, show_sensitive=show_sensitive))


def render_drift_json(report: DriftReport, *, show_sensitive: bool = False) -> str:
    return dump(drift_to_json(report, show_sensitive=show_sensitive))


def dump(doc: Any) -> str:
    """Two-space indented JSON in the document's own key order, with a trailing newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
