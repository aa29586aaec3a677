"""Applying a saved plan: refuse it when stale (planner.plans.staleness says why), else give back the
plan with its specs re-derived from the configuration and the state and live jobs to apply on.

No click and no printing: the CLI gathers the variables and shows the plan and progress.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from planner.errors import StalePlanError
from planner.plans.staleness import live_reasons, state_reasons


def check_saved_plan(
    client: Any,
    store: Any,
    workspace: str,
    plan: Any,
    doc: Mapping[str, Any],
    given: Callable[[], Sequence[Any]],
    hardware: Any,
) -> tuple[Any, Any, Any]:
    """(plan, prior state, live jobs) for a saved plan that is not stale; StalePlanError otherwise.
    `given` gathers the variables given now (reading var files), only once the state matches."""
    from planner.operations.plan import read_live
    from planner.plans.engine import live_entries
    from planner.plans.planfile import reread
    from planner.refresh import fingerprint

    prior = store.read()
    problems = state_reasons(plan, prior)
    if not problems:
        plan, reasons = reread(plan, doc, prior, given(), hardware=hardware)
        problems.extend(reasons)
    live = None
    if not problems:
        pairs = {(c.project, c.location) for c in plan.changes if c.project}
        live = read_live(client, None, prior, workspace, extra_pairs=pairs)
        entries = live_entries(plan, prior, live, workspace)
        if fingerprint(entries) != plan.live_fingerprint:
            problems.extend(live_reasons(plan, entries))
    if problems:
        raise StalePlanError(
            "the saved plan is stale:\n  - " + "\n  - ".join(problems),
            hint="run `planner plan` again and review the new plan",
        )
    return plan, prior, live
