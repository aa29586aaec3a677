"""The environment planner reads, as frozen settings: the only reader of os.environ.

`read()` takes the environment as it is when a command starts (tests set it per run); the
CLI combines these with its flags (a flag wins). Left out on purpose: google-auth's own
credential lookup (GOOGLE_APPLICATION_CREDENTIALS, in planner.api) and the emulator's
server settings, which follow their own conventions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from planner import __version__

# PLANNER_VAR_<NAME> gives the variable NAME (planner.config.variables).
ENV_PREFIX = "PLANNER_VAR_"


@dataclass(frozen=True)
class Settings:
    no_color: bool = False  # NO_COLOR set (https://no-color.org)
    state_spec: str | None = None  # PLANNER_STATE
    endpoint: str | None = None  # PLANNER_API_ENDPOINT
    storage_emulator_host: str | None = None  # STORAGE_EMULATOR_HOST (a GCS emulator)
    billing_endpoint: str | None = None  # PLANNER_BILLING_ENDPOINT
    billing_api_key: str | None = field(default=None, repr=False)  # PLANNER_BILLING_API_KEY: a secret
    variables: Mapping[str, str] = field(default_factory=dict, repr=False)  # PLANNER_VAR_*: may be sensitive
    ci: Mapping[str, str] = field(default_factory=dict)  # commit, pr, actor, run of a CI job (the PR view)


def read(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of this environment (os.environ unless given)."""
    env = os.environ if environ is None else environ
    return Settings(
        no_color="NO_COLOR" in env,
        state_spec=env.get("PLANNER_STATE") or None,
        endpoint=env.get("PLANNER_API_ENDPOINT") or None,
        storage_emulator_host=env.get("STORAGE_EMULATOR_HOST") or None,
        billing_endpoint=env.get("PLANNER_BILLING_ENDPOINT") or None,
        billing_api_key=env.get("PLANNER_BILLING_API_KEY") or None,
        variables={k: v for k, v in env.items() if k.startswith(ENV_PREFIX)},
        ci=_ci_context(env),
    )


def _ci_context(env: Mapping[str, str]) -> dict[str, str]:
    """Commit, PR number, actor and run of the CI job (GitHub Actions, GitLab CI)."""
    context = {"planner": __version__}
    commit = env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA")
    if commit:
        context["commit"] = commit
    ref = env.get("GITHUB_REF", "")
    pr = env.get("CI_MERGE_REQUEST_IID") or (ref.split("/")[2] if ref.startswith("refs/pull/") else "")
    if pr:
        context["pr"] = pr
    actor = env.get("GITHUB_ACTOR") or env.get("GITLAB_USER_LOGIN")
    if actor:
        context["actor"] = actor
    run = env.get("GITHUB_RUN_ID") or env.get("CI_PIPELINE_ID")
    if run:
        context["run"] = run
    return context
