"""Cloud Logging's `entries:list` (v2) through the run's one client: same httpx pool, credentials and retries.

It owns the wire of log reads: the Logging API root (the `--endpoint` override when one
is set, so the emulator serves logs too), the request body and the pagination. Which
entries to ask for (the filter) is `planner.logs`' business.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

from planner.api.client import VertexClient, _Call
from planner.api.endpoint import redact_url
from planner.errors import ApiError

LOGGING_BASE_URL: Final = "https://logging.googleapis.com"
ENTRIES_LIST_PATH: Final = "/v2/entries:list"
# The API's maximum; a server that allows fewer returns fewer.
PAGE_SIZE: Final = 1000


def logging_base_url(client: VertexClient) -> str:
    """Where Logging requests go: the explicit endpoint (emulator) if any, else Google's Logging host."""
    return client.endpoint.override or LOGGING_BASE_URL


def list_log_entries(
    client: VertexClient,
    project: str,
    filter: str,
    *,
    order_by: str = "timestamp asc",
    page_size: int = PAGE_SIZE,
) -> Iterator[dict[str, Any]]:
    """Every LogEntry of `projects/P` matching `filter`, in `order_by` order, page by page."""
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{project}"],
        "filter": filter,
        "orderBy": order_by,
        "pageSize": page_size,
    }
    seen: set[str] = set()
    base = logging_base_url(client)
    while True:
        call = _Call(
            "logging.entries.list",
            "POST",
            project,
            "global",
            ENTRIES_LIST_PATH,
            body=json.dumps(body, separators=(",", ":")).encode(),
            base_url=base,
        )
        response = client._execute(call)
        data = client._json(response)
        yield from data.get("entries") or ()
        token = data.get("nextPageToken")
        if not token:
            return
        if token in seen:
            raise ApiError(
                "the server repeated a page token; stopping to avoid an endless listing",
                method="POST",
                url=redact_url(response.request.url),
            )
        seen.add(token)
        body["pageToken"] = str(token)
