"""A loopback fake of the Cloud Billing Catalog API's SKU listing, for `planner pricing refresh` tests.

Serves `GET /v1/services/{service}/skus` with the documented response shape (skus[] with
description, category, serviceRegions, pricingInfo[].pricingExpression.tieredRates[].unitPrice
{currencyCode, units, nanos}; nextPageToken while more remain), pages of at most
`max_page_size`, and a Google-style 404 for any other service. Records every request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def sku(sku_id: str, description: str, regions: Sequence[str], usd: float, unit: str = "h") -> dict[str, Any]:
    units = int(usd)
    nanos = round((usd - units) * 1e9)
    return {
        "name": f"services/X/skus/{sku_id}",
        "skuId": sku_id,
        "description": description,
        "category": {"serviceDisplayName": "Vertex AI", "resourceFamily": "ApplicationServices"},
        "serviceRegions": list(regions),
        "pricingInfo": [
            {
                "effectiveTime": "2026-11-01T00:00:00Z",
                "pricingExpression": {
                    "usageUnit": unit,
                    "displayQuantity": 1,
                    "tieredRates": [
                        {
                            "startUsageAmount": 0,
                            "unitPrice": {"currencyCode": "USD", "units": str(units), "nanos": nanos},
                        }
                    ],
                },
            }
        ],
    }


class FakeCatalog:
    def __init__(self, service: str, skus: Sequence[dict[str, Any]], *, max_page_size: int = 3):
        self.service = service
        self.skus = list(skus)
        self.max_page_size = max_page_size
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                if url.path != f"/v1/services/{fake.service}/skus":
                    self._send(404, {"error": {"code": 404, "message": "Service not found.", "status": "NOT_FOUND"}})
                    return
                size = min(int(query.get("pageSize", ["5000"])[0]), fake.max_page_size)
                start = int(query.get("pageToken", ["0"])[0] or 0)
                page = fake.skus[start : start + size]
                body: dict[str, Any] = {"skus": page}
                if start + size < len(fake.skus):
                    body["nextPageToken"] = str(start + size)
                self._send(200, body)

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeCatalog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
