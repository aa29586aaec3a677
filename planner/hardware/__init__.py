"""What planner knows about Vertex AI training hardware, and the checks built on that knowledge.

`catalog` owns the catalog (machine types, accelerators, regions: data generated from
schemas/catalog.yaml, plus a user's override file); `rules` owns the checks that validation and
the emulator both run on a job. How a finding is worded for a YAML file (file:line:column) or
for an HTTP answer (400 INVALID_ARGUMENT) is left to `validate` and `emulator`.
"""

from planner.hardware.catalog import Catalog, load_catalog, packaged_catalog
from planner.hardware.rules import Finding, HardwareOptions, Severity, check_job

__all__ = ["Catalog", "Finding", "HardwareOptions", "Severity", "check_job", "load_catalog", "packaged_catalog"]
