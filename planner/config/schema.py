"""The packaged desired-state schema, compiled once: jsonschema-rs says whether a value is valid,
jsonschema (imported only when it is not) says why.

Check fast, explain slow: the two engines may differ only in speed, never in the answer, since
a "no" from jsonschema-rs is asked of jsonschema again. Turning its errors into diagnostics is
`validate`'s business (with `messages` for the wording).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from planner.config.messages import field_places

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

# A generated copy of schemas/desired-state.schema.json, shipped inside the package.
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "data"
DESIRED_STATE_SCHEMA = "desired-state.schema.json"


class Schemas:
    """The whole file's schema (jobs not checked, they are checked one by one after merging
    `defaults`) and one job's."""

    def __init__(self, schema: dict[str, Any]):
        self.schema = schema
        defs = schema["$defs"]
        file_schema = copy.deepcopy(schema)
        file_schema["properties"]["jobs"]["additionalProperties"] = True
        self._file_schema = file_schema
        self._file_rs = jsonschema_rs.validator_for(file_schema)
        job_schema = {"$ref": "#/$defs/job", "$defs": defs}
        self._job_schema = job_schema
        self.job_rs = jsonschema_rs.validator_for(job_schema)
        self.job_fields: dict[str, Any] = defs["job"]["properties"]
        self.field_places = field_places(self.job_fields)

    def file_ok(self, data: dict[str, Any]) -> bool:
        return valid(self._file_rs, data) or self.file.is_valid(data)

    def job_ok(self, job: dict[str, Any]) -> bool:
        return valid(self.job_rs, job) or self.job.is_valid(job)

    # jsonschema explains what the fast checks above only detect; importing it costs a tenth
    # of a second, so only a configuration with errors pays for it.
    @functools.cached_property
    def file(self) -> Draft202012Validator:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self._file_schema)

    @functools.cached_property
    def job(self) -> Draft202012Validator:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self._job_schema)


def valid(fast: Any, value: Any) -> bool:
    """Does jsonschema-rs say valid? It answers for 10,000 jobs in a few hundredths of a second;
    a "no" (or a value it cannot read) is asked of jsonschema again, which has the final word,
    so the two can only differ in speed."""
    try:
        return bool(fast.is_valid(value))
    except (ValueError, TypeError, OverflowError):
        return False


@functools.cache
def schemas() -> Schemas:
    text = (SCHEMA_DIR / DESIRED_STATE_SCHEMA).read_text(encoding="utf-8")
    return Schemas(json.loads(text))
