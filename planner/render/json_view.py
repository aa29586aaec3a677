"""The JSON view: a document (planner.documents) dumped as text.

The documents and their JSON Schemas are planner.documents'; this module only writes them
out, as `planner plan --format json`, `drift --format json` and `status --format json` print them.
"""

from __future__ import annotations

import json
from typing import Any


def dump(doc: Any) -> str:
    """Two-space indented JSON in the document's own key order, with a trailing newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
