"""Owns what a saved plan file (`planner plan -o FILE`) keeps of the configuration, and what
`planner apply FILE` takes back from it: the variables, and no secret.

A saved plan records the values of the non-sensitive variables it was made with, and of each
sensitive variable only a salted digest. It holds no `env` value and no sensitive variable's
value (both are masked, like Terraform's "(sensitive value)"); the specs it would create are
therefore re-derived from the configuration at apply time, each checked against the spec hash
the plan recorded. The plan model and its JSON are planner.plans.model's and
planner.documents.plan's; this module adds and reads the "variables" entry and re-derives the specs.
It is the one module of planner.plans that reads files: `reread` loads the configuration the plan
was made from again, because the plan itself holds no secret to send.
"""

from __future__ import annotations

import hashlib
import secrets as random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from planner.canonical import canonical_spec
from planner.config.model import Desired
from planner.config.variables import Declaration, Given, Values, values_for
from planner.errors import ConfigError, Diagnostic, UsageError
from planner.plans.hashes import desired_hashes
from planner.plans.model import Plan
from planner.secrets import mask_data
from planner.state.model import State

SOURCE = "the saved plan"


def salted_digest(salt: str, name: str, text: str) -> str:
    return "sha256:" + hashlib.sha256(f"{salt}\0{name}\0{text}".encode()).hexdigest()


def variables_entry(values: Values) -> dict[str, Any]:
    """The saved plan's "variables": non-sensitive values as typed, sensitive ones as salted digests."""
    salt = random.token_hex(16)
    sensitive = values.sensitive_names
    return {
        "values": {n: values.typed[n] for n in sorted(values) if n not in sensitive},
        "salt": salt,
        "sensitive": {n: salted_digest(salt, n, values[n]) for n in sorted(values) if n in sensitive},
    }


def without_secrets(doc: dict[str, Any]) -> dict[str, Any]:
    """The plan document with every registered sensitive value masked (env values are masked by
    `plan_to_json` itself)."""
    out = mask_data(doc)
    assert isinstance(out, dict)
    return out


@dataclass(frozen=True)
class SavedVariables:
    recorded: Mapping[str, Any]
    salt: str
    sensitive: Mapping[str, str]

    @staticmethod
    def of(doc: Mapping[str, Any]) -> SavedVariables:
        entry = doc.get("variables") or {}
        return SavedVariables(
            recorded=dict(entry.get("values") or {}),
            salt=str(entry.get("salt") or ""),
            sensitive=dict(entry.get("sensitive") or {}),
        )


def values_for_apply(
    saved: SavedVariables, declared: Mapping[str, Declaration], given: Sequence[Given]
) -> Values:
    """The variables to re-read the configuration with: the plan's own values, plus the sensitive
    ones given again (environment or flags), each matching the digest the plan holds.

    Like Terraform, a flag setting a non-sensitive variable is an error with a saved plan; a
    PLANNER_VAR_ environment value for one is ignored (CI sets them for every step).
    """
    problems: list[Diagnostic] = []
    again: dict[str, Given] = {}
    for item in given:
        if item.name in saved.sensitive:
            again[item.name] = item
        elif not item.source.startswith("PLANNER_VAR_"):
            message = (
                "a saved plan carries its variables: run `planner plan` again to change one "
                "(only sensitive variables are given again)"
            )
            problems.append(Diagnostic(item.location, item.where(), message))
    if problems:
        raise ConfigError(problems)
    chosen = [Given(n, v, SOURCE) for n, v in saved.recorded.items()]
    for name in sorted(saved.sensitive):
        again_given = again.get(name)
        if again_given is None:
            raise UsageError(
                f'the plan needs the sensitive variable "{name}" again: set PLANNER_VAR_{name} or pass --var {name}=…',
                hint="a saved plan holds only a digest of a sensitive value, never the value",
            )
        chosen.append(again_given)
    values = values_for(declared, chosen)
    for name, digest in sorted(saved.sensitive.items()):
        if salted_digest(saved.salt, name, values.get(name, "")) != digest:
            raise UsageError(
                f'sensitive variable "{name}" differs from the value the plan was made with (its digest does not match)'
            )
    return values


def rederive(plan: Plan, desired: Desired, prior: State | None) -> tuple[Plan, list[str]]:
    """The plan with the spec of every create/replace/adopt taken from the configuration again,
    or the reasons it cannot be: a job gone from the configuration, or one whose spec differs."""
    records = prior.jobs if prior is not None else {}
    hashes = desired_hashes(desired, records)
    problems: list[str] = []
    changes = []
    for change in plan.changes:
        if change.after is None:
            changes.append(change)
            continue
        job = desired.jobs.get(change.address)
        if job is None:
            problems.append(f"{change.address}: no longer in the configuration")
        elif hashes.get(change.address) != change.after_hash:
            problems.append(f"{change.address}: the configuration now gives a different spec than the plan's")
        else:
            change = replace(change, after=canonical_spec(job.body))
        changes.append(change)
    return replace(plan, changes=tuple(changes)), problems


def reread(
    plan: Plan, doc: Mapping[str, Any], prior: State | None, given: Sequence[Given], *, hardware: Any = None
) -> tuple[Plan, list[str]]:
    """Load the plan's configuration again with the plan's variables (and the run's hardware
    options); the plan with its specs re-derived, and every reason the plan no longer matches
    its configuration."""
    from planner.config.validate import load_desired
    from planner.config.variables import read_declarations

    config = doc.get("config") or {}
    files = [f for f in config.get("files", []) if isinstance(f, str)]
    missing = [f for f in files if not Path(f).exists()]
    if not files or missing:
        if any(change.after is not None for change in plan.changes):  # a spec to send or store
            where = ", ".join(missing) if missing else "none recorded"
            return plan, [
                f"its configuration files are missing ({where}): a saved plan holds no secret, so apply reads "
                "the specs it sends from the configuration; run it where the plan was made"
            ]
        return plan, []
    declared, problems = read_declarations(Path(f) for f in files)
    if problems:
        raise ConfigError(problems)
    values = values_for_apply(SavedVariables.of(doc), declared, given)
    from planner import secrets

    secrets.register(values.sensitive_values())
    current = load_desired(files, variables=values, hardware=hardware)
    reasons = []
    if current.config_hash != config.get("hash"):
        reasons.append("the configuration files changed since the plan")
    plan, more = rederive(plan, current, prior)
    return plan, reasons + more
