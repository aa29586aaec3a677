"""Why a saved plan is stale: the state it was made on and the live jobs it saw, compared with now.

Pure: it is given the plan, the state read now and the live fingerprint entries computed now,
and returns the reasons as lines (empty: not stale). Reading them is `operations.apply`'s business.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def state_reasons(plan: Any, prior: Any) -> list[str]:
    """The plan was made on another state (lineage) or on an earlier write of it (serial)."""
    lineage = prior.lineage if prior is not None else None
    serial = prior.serial if prior is not None else None
    if plan.lineage != lineage:
        return [f"the state's lineage is {lineage or 'none'}, the plan was made for {plan.lineage or 'no state'}"]
    if plan.serial != serial:
        return [f"the state changed since the plan (serial {plan.serial} → {serial}); a saved plan is applied once"]
    return []


def live_reasons(plan: Any, entries: Sequence[Any]) -> list[str]:
    """What differs between the live jobs the plan saw (its fingerprint entries) and `entries`,
    given that their fingerprints differ."""
    problems: list[str] = []
    before = {e[1]: e for e in plan.fingerprint_entries}
    after = {e[1]: e for e in entries}
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        if b == a:
            continue
        address = (a or b or ("?",))[0]
        if b is None:
            problems.append(f"{address}: job {name} appeared")
        elif a is None:
            problems.append(f"{address}: job {name} is gone")
        else:
            problems.append(f"{address}: job {name} is now {a[3]} (was {b[3]})")
    return problems or ["the live jobs changed since the plan"]
