"""desired_hashes' fast path (`recorded`: the body is the spec its state record holds, env values
kept as salted digests) against the slow path it stands for: canonicalise and hash the body."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from planner.canonical import canonical_spec, spec_hash
from planner.config.model import Desired, DesiredJob
from planner.plans.hashes import desired_hashes, recorded
from planner.state.fileformat import record_from_json, record_to_json
from planner.state.model import JobRecord

P, L = "proj", "us-central1"
words = st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=8)
env = st.lists(st.fixed_dictionaries({"name": words.map(str.upper), "value": st.text(max_size=12)}), max_size=3)
container = st.fixed_dictionaries(
    {"imageUri": words.map(lambda w: f"img:{w}"), "args": st.lists(words, max_size=3)},
    optional={"env": env},
)
python_package = st.fixed_dictionaries(
    {"executorImageUri": words, "packageUris": st.lists(words, min_size=1, max_size=2), "pythonModule": words},
    optional={"env": env},
)
pool = st.fixed_dictionaries(
    {
        "machineSpec": st.fixed_dictionaries({"machineType": st.sampled_from(["n1-standard-4", "e2-standard-8"])}),
        "replicaCount": st.sampled_from(["1", "2", 3]),
    },
    optional={"containerSpec": container, "pythonPackageSpec": python_package},
)
job_spec = st.fixed_dictionaries({"workerPoolSpecs": st.lists(pool, min_size=1, max_size=2)})
bodies = st.fixed_dictionaries(
    {"displayName": words, "jobSpec": job_spec},
    optional={"labels": st.dictionaries(words, words, max_size=2)},
)


def stored(body: dict[str, Any]) -> JobRecord:
    """The record of `body` as applied, read back from its state file form (env values digested)."""
    canonical = canonical_spec(body)
    record = JobRecord(
        address="job", name=f"projects/{P}/locations/{L}/customJobs/1", project=P, location=L,
        spec_hash=spec_hash(canonical), spec=canonical, last_state="JOB_STATE_RUNNING",
    )
    return record_from_json("job", record_to_json(record), "state")


def hashes(body: dict[str, Any], record: JobRecord) -> dict[str, str]:
    desired = Desired(jobs={"job": DesiredJob(address="job", project=P, location=L, body=body)})
    return desired_hashes(desired, {"job": record})


def envs(body: dict[str, Any]) -> list[dict[str, Any]]:
    pools = body["jobSpec"]["workerPoolSpecs"]
    sections = [p.get(kind, {}) for p in pools for kind in ("containerSpec", "pythonPackageSpec")]
    return [item for section in sections for item in section.get("env", [])]


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_an_applied_spec_is_recognised_through_its_digests(body: dict[str, Any]) -> None:
    record = stored(body)
    canonical = canonical_spec(body)
    assert recorded(canonical, record.spec)  # the fast path is taken, env values digested or not
    assert hashes(canonical, record) == {"job": spec_hash(canonical)}
    assert hashes(body, record) == {"job": spec_hash(canonical_spec(body))}


@settings(max_examples=200, deadline=None)
@given(bodies, bodies, st.text(max_size=12))
def test_a_changed_body_is_hashed_for_real(body: dict[str, Any], other: dict[str, Any], value: str) -> None:
    record = stored(body)
    for changed in (other, _with_env_value(canonical_spec(body), value)):
        assert hashes(changed, record) == {"job": spec_hash(canonical_spec(changed))}


def _with_env_value(body: dict[str, Any], value: str) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    for item in envs(changed)[:1]:
        item["value"] = value
    return changed


def test_the_digest_decides_an_env_value() -> None:
    body = canonical_spec(
        {
            "displayName": "train",
            "jobSpec": {
                "workerPoolSpecs": [
                    {
                        "machineSpec": {"machineType": "n1-standard-4"},
                        "replicaCount": "1",
                        "containerSpec": {"imageUri": "img:1", "env": [{"name": "TOKEN", "value": "s3cret"}]},
                    }
                ]
            },
        }
    )
    record = stored(body)
    assert record.spec != body  # the state file holds a digest, not the value
    assert recorded(body, record.spec)
    other = _with_env_value(body, "s3cret2")
    assert not recorded(other, record.spec)
    assert hashes(other, record) == {"job": spec_hash(other)} != {"job": record.spec_hash}
