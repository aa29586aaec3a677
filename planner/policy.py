"""Policy gates: rules a plan must keep before anything is sent (regions, accelerators, labels, cost).

A policy comes from a `policy:` mapping in the configuration or from `--policy FILE` (the
same mapping, at the top level of its own YAML file or under `policy:`); `--max-cost USD`
is the plan budget on the command line. Several sources combine to the strictest of them.
Rules look only at the jobs a plan would start (creates and replaces). A job whose cost is
unknown fails a cost rule: a budget that cannot be checked is not kept. `check` returns
every violation, each naming the job and the rule; the CLI refuses the plan (exit 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from planner.errors import ConfigError, Diagnostic, PlannerError, SourceLocation, UsageError
from planner.plans.model import Action, Plan
from planner.pricing.cost import accelerator_counts, totals, usd

# YAML key → (kind, description); kinds: regions/accelerators/labels are string lists, the rest numbers.
RULES: Final[dict[str, tuple[str, str]]] = {
    "allowedRegions": ("strings", "locations jobs may run in"),
    "allowedAccelerators": ("strings", "accelerator types jobs may use (acceleratorType names)"),
    "maxAcceleratorsPerJob": ("count", "accelerators one job may hold at once, over all its replicas and pools"),
    "maxCostPerJob": ("usd", "most a job may cost up to its timeout, in USD"),
    "maxCostPerPlan": ("usd", "most the jobs a plan starts may cost up to their timeouts, in USD"),
    "requiredLabels": ("strings", "labels every job must carry, e.g. team"),
    "requireSpotOrFlexAboveGpus": (
        "count",
        "jobs with more GPUs than this must use scheduling.strategy SPOT or FLEX_START",
    ),
}


class PolicyError(PlannerError):
    """The plan breaks a policy rule or the --max-cost budget; nothing was sent."""


@dataclass(frozen=True)
class Violation:
    address: str  # "plan" for plan-wide rules
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.address}: {self.rule}: {self.message}"


@dataclass(frozen=True)
class Policy:
    allowed_regions: tuple[str, ...] | None = None
    allowed_accelerators: tuple[str, ...] | None = None
    max_accelerators_per_job: int | None = None
    max_cost_per_job: float | None = None
    max_cost_per_plan: float | None = None
    required_labels: tuple[str, ...] = ()
    spot_or_flex_above_gpus: int | None = None
    # rule → where it was set (file:line:column, or "--max-cost"), for the messages.
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def empty(self) -> bool:
        return self == Policy()

    def combine(self, other: Policy) -> Policy:
        """The strictest of both: allowed lists intersect, limits take the lower, labels add up."""
        origins = {**other.origins, **self.origins}
        for rule, mine, theirs in (
            ("allowedRegions", self.allowed_regions, other.allowed_regions),
            ("allowedAccelerators", self.allowed_accelerators, other.allowed_accelerators),
            ("maxAcceleratorsPerJob", self.max_accelerators_per_job, other.max_accelerators_per_job),
            ("maxCostPerJob", self.max_cost_per_job, other.max_cost_per_job),
            ("maxCostPerPlan", self.max_cost_per_plan, other.max_cost_per_plan),
            ("requireSpotOrFlexAboveGpus", self.spot_or_flex_above_gpus, other.spot_or_flex_above_gpus),
        ):
            if mine is not None and theirs is not None and rule in self.origins and rule in other.origins:
                origins[rule] = f"{self.origins[rule]} and {other.origins[rule]}"
        return Policy(
            allowed_regions=_meet(self.allowed_regions, other.allowed_regions),
            allowed_accelerators=_meet(self.allowed_accelerators, other.allowed_accelerators),
            max_accelerators_per_job=_low(self.max_accelerators_per_job, other.max_accelerators_per_job),
            max_cost_per_job=_low(self.max_cost_per_job, other.max_cost_per_job),
            max_cost_per_plan=_low(self.max_cost_per_plan, other.max_cost_per_plan),
            required_labels=tuple(sorted({*self.required_labels, *other.required_labels})),
            spot_or_flex_above_gpus=_low(self.spot_or_flex_above_gpus, other.spot_or_flex_above_gpus),
            origins=origins,
        )


def max_cost_policy(limit: float) -> Policy:
    return Policy(max_cost_per_plan=limit, origins={"maxCostPerPlan": "--max-cost"})


def _meet(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if a is None or b is None:
        return a if b is None else b
    return tuple(x for x in a if x in b)


def _low(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


# -- reading -----------------------------------------------------------------------------------


def policy_schema() -> dict[str, Any]:
    """JSON Schema of a `policy:` mapping (in the desired-state schema and for editors)."""
    kinds: dict[str, dict[str, Any]] = {
        "strings": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "count": {"type": "integer", "minimum": 0},
        "usd": {"type": "number", "minimum": 0},
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "Rules every job the plan starts must keep; a violation fails the plan, nothing is sent.",
        "properties": {rule: {**kinds[kind], "description": text} for rule, (kind, text) in RULES.items()},
    }


def parse_policy(data: Any, locate: Any, prefix: str) -> tuple[Policy, list[Diagnostic]]:
    """A Policy from a `policy:` mapping; locate(path) → SourceLocation | None for messages."""
    problems: list[Diagnostic] = []
    if not isinstance(data, dict):
        return Policy(), [Diagnostic(locate(()), prefix, "policy must be a mapping of rules")]
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, value in data.items():
        where = locate((key,))
        path = f"{prefix}.{key}" if prefix else key
        rule = RULES.get(key)
        if rule is None:
            near = _near(key, RULES)
            hint = f"; did you mean {near}?" if near else f"; known rules: {', '.join(RULES)}"
            problems.append(Diagnostic(locate((key,)), path, f"unknown policy rule{hint}"))
            continue
        kind = rule[0]
        if kind == "strings":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                problems.append(Diagnostic(where, path, "must be a list of non-empty strings"))
                continue
            values[key] = tuple(value)
        elif kind == "count":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problems.append(Diagnostic(where, path, "must be a whole number, at least 0"))
                continue
            values[key] = value
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                problems.append(Diagnostic(where, path, "must be a number of US dollars, at least 0"))
                continue
            values[key] = float(value)
        origins[key] = str(where) if where is not None else path
    policy = Policy(
        allowed_regions=values.get("allowedRegions"),
        allowed_accelerators=values.get("allowedAccelerators"),
        max_accelerators_per_job=values.get("maxAcceleratorsPerJob"),
        max_cost_per_job=values.get("maxCostPerJob"),
        max_cost_per_plan=values.get("maxCostPerPlan"),
        required_labels=values.get("requiredLabels", ()),
        spot_or_flex_above_gpus=values.get("requireSpotOrFlexAboveGpus"),
        origins=origins,
    )
    return policy, problems


def _near(word: str, known: Iterable[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def load_policy_file(path: str) -> Policy:
    """--policy FILE: the rules at the top level of a YAML file, or under its `policy:` key."""
    from planner.config.load import parse_document

    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"--policy {path}: cannot be read ({err.strerror or err})") from err
    document, problems = parse_document(raw, path)
    if document is None:
        raise ConfigError(problems)
    data: Any = document.data
    base: tuple[str, ...] = ()
    if set(data) == {"policy"}:
        data, base = data["policy"], ("policy",)

    def locate(sub: Sequence[str]) -> SourceLocation | None:
        span = document.find([*base, *sub])
        if span is None:
            return None
        return document.location(span, key=bool(sub))

    policy, problems = parse_policy(data, locate, ".".join(base))
    if problems:
        raise ConfigError(problems)
    return policy


# -- checking ----------------------------------------------------------------------------------


def check(plan: Plan, policy: Policy) -> list[Violation]:
    """Every violation of policy by the jobs plan would start (creates and replaces), in address order."""
    out: list[Violation] = []
    starting = [c for c in plan.changes if c.action in (Action.CREATE, Action.REPLACE) and c.after is not None]
    for change in starting:
        after = (change.cost or {}).get("after")
        out += _job_violations(change.address, change.location, change.after or {}, after, policy)
    if policy.max_cost_per_plan is not None:
        rule = _rule_name(policy, "maxCostPerPlan")
        docs = [{"address": c.address, "cost": c.cost} for c in starting]
        t = totals(docs)
        if t.unpriced:
            out.append(
                Violation(
                    "plan",
                    rule,
                    f"cannot be checked: no price for {', '.join(t.unpriced)} (see their cost); "
                    "pass a --price-file that prices them",
                )
            )
        elif t.adds_max > policy.max_cost_per_plan:
            over = t.adds_max - policy.max_cost_per_plan
            out.append(
                Violation(
                    "plan",
                    rule,
                    f"the {_jobs(t.new_jobs)} this plan starts may cost up to {usd(t.adds_max)} "
                    f"({usd(t.adds_hourly)}/h until their timeouts), {usd(over)} over the limit of "
                    f"{usd(policy.max_cost_per_plan)}",
                )
            )
    return out


def _rule_name(policy: Policy, rule: str) -> str:
    origin = policy.origins.get(rule)
    if origin == "--max-cost":
        return "--max-cost"
    return f"policy {rule} ({origin})" if origin else f"policy {rule}"


def _job_violations(
    address: str, location: str, spec: Mapping[str, Any], cost: Mapping[str, Any] | None, policy: Policy
) -> list[Violation]:
    out: list[Violation] = []

    def add(rule: str, message: str) -> None:
        out.append(Violation(address, _rule_name(policy, rule), message))

    if policy.allowed_regions is not None and location not in policy.allowed_regions:
        add("allowedRegions", f"location {location} is not allowed (allowed: {_list(policy.allowed_regions)})")
    pools = (cost or {}).get("pools") or []
    counts: dict[str, int] = accelerator_counts(cost) if cost is not None else {}
    if policy.allowed_accelerators is not None:
        for kind in sorted({p["accelerator_type"] for p in pools if p["accelerator_type"]}):
            if kind not in policy.allowed_accelerators:
                add("allowedAccelerators", f"{kind} is not allowed (allowed: {_list(policy.allowed_accelerators)})")
    held = sum(counts.values())
    if policy.max_accelerators_per_job is not None and held > policy.max_accelerators_per_job:
        add("maxAcceleratorsPerJob", f"holds {held} accelerators, more than {policy.max_accelerators_per_job}")
    labels = spec.get("labels") if isinstance(spec.get("labels"), Mapping) else {}
    missing = [k for k in policy.required_labels if not labels or k not in labels]
    if missing:
        add("requiredLabels", f"missing label{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if policy.spot_or_flex_above_gpus is not None and cost is not None:
        gpus = sum(n for kind, n in counts.items() if kind.startswith("NVIDIA_"))
        if gpus > policy.spot_or_flex_above_gpus and cost["provisioning"] == "on-demand":
            add(
                "requireSpotOrFlexAboveGpus",
                f"{gpus} GPUs on demand; above {policy.spot_or_flex_above_gpus} GPUs set "
                "jobSpec.scheduling.strategy to SPOT or FLEX_START",
            )
    if policy.max_cost_per_job is not None:
        if cost is None or cost["max_usd"] is None:
            why = "; ".join(cost["missing"]) if cost is not None and cost["missing"] else "not priced"
            add("maxCostPerJob", f"cannot be checked: {why}")
        elif cost["max_usd"] > policy.max_cost_per_job:
            add(
                "maxCostPerJob",
                f"may cost up to {usd(cost['max_usd'])} ({usd(cost['hourly_usd'])}/h for "
                f"{_hours(cost['hours_bound'])}), over the limit of {usd(policy.max_cost_per_job)}",
            )
    return out


def _jobs(n: int) -> str:
    return f"{n} job" if n == 1 else f"{n} jobs"


def _hours(hours: float) -> str:
    return f"{hours:g} h"


def _list(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


def refuse(violations: Sequence[Violation]) -> PolicyError:
    lines = "\n".join(f"  - {v}" for v in violations)
    noun = "violation" if len(violations) == 1 else "violations"
    return PolicyError(
        f"the plan breaks {len(violations)} policy {noun}; nothing was sent:\n{lines}",
        hint="change the jobs, or the policy (--policy, `policy:` in the configuration, --max-cost)",
    )


def config_policy(files: Sequence[str]) -> Policy:
    """The `policy:` mappings of the configuration's files (already validated), combined.

    The files are read again, but only those with a top-level `policy:` line are parsed,
    so a large configuration without a policy costs one byte search per file.
    """
    from planner.config.load import parse_document

    combined = Policy()
    for name in files:
        try:
            raw = Path(name).read_bytes()
        except OSError as err:
            raise UsageError(f"{name}: cannot read: {err.strerror or err}") from err
        if not (raw.startswith(b"policy:") or b"\npolicy:" in raw):
            continue
        document, problems = parse_document(raw, name)
        if document is None:
            raise ConfigError(problems)
        if "policy" not in document.data:
            continue

        def locate(sub: Sequence[str], document: Any = document) -> SourceLocation | None:
            span = document.find(["policy", *sub])
            return None if span is None else document.location(span, key=bool(sub))

        policy, problems = parse_policy(document.data["policy"], locate, "policy")
        if problems:
            raise ConfigError(problems)
        combined = combined.combine(policy)
    return combined
