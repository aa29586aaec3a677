"""`planner pricing refresh`: a price file rebuilt from the Cloud Billing Catalog API's SKUs for Vertex AI.

Lists `GET {base}/v1/services/{service}/skus?currencyCode=USD` page by page and keeps the
custom-training SKUs it can read with certainty: a machine type (`n1-standard-4`), an
accelerator (`Nvidia Tesla T4`, `A100 80GB`, `H100`, …) or a boot disk (`SSD`, `Standard`,
`Hyperdisk Balanced`) named in a description that says training, priced per hour (disks:
per GiB-hour, or per GiB-month at Google's 730 hours a month), one entry per service
region. `Spot`/`Preemptible` in the description means spot, `DWS`/`Flex start` means
flex-start, anything else on-demand. Every other SKU is counted and left out, never
guessed at; each kept entry cites its SKU ID and description. The HTTP client is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from planner.errors import ApiError
from planner.pricing.prices import PriceBook, PriceEntry, make_book

VERTEX_AI_SERVICE: Final = "C7E2-9256-1C43"  # the Vertex AI service in the Cloud Billing catalog
DEFAULT_BASE_URL: Final = "https://cloudbilling.googleapis.com"
HOURS_PER_MONTH: Final = 730.0
PAGE_SIZE: Final = 5000

_TRAINING: Final = re.compile(r"\btraining\b", re.IGNORECASE)
_NOT_TRAINING: Final = re.compile(r"\b(prediction|predictions|inference|serving|workbench|notebook)\b", re.I)
_MACHINE: Final = re.compile(
    r"\b([a-z][0-9][a-z]?-(?:standard|highmem|highcpu|highgpu|megagpu|ultragpu|edgegpu|ultramem|megamem)-[0-9]+g?)\b"
)
# Most specific first: "A100 80GB" before "A100", "H100 Mega" before "H100".
_ACCELERATORS: Final = (
    (re.compile(r"\ba100[ -]?80\s?gb\b", re.I), "NVIDIA_A100_80GB"),
    (re.compile(r"\ba100\b", re.I), "NVIDIA_TESLA_A100"),
    (re.compile(r"\bh100\b.*\bmega\b|\bmega\b.*\bh100\b", re.I), "NVIDIA_H100_MEGA_80GB"),
    (re.compile(r"\bh100\b", re.I), "NVIDIA_H100_80GB"),
    (re.compile(r"\bh200\b", re.I), "NVIDIA_H200_141GB"),
    (re.compile(r"\bb200\b", re.I), "NVIDIA_B200"),
    (re.compile(r"\bl4\b", re.I), "NVIDIA_L4"),
    (re.compile(r"\b(?:tesla )?t4\b", re.I), "NVIDIA_TESLA_T4"),
    (re.compile(r"\b(?:tesla )?v100\b", re.I), "NVIDIA_TESLA_V100"),
    (re.compile(r"\b(?:tesla )?p100\b", re.I), "NVIDIA_TESLA_P100"),
    (re.compile(r"\b(?:tesla )?p4\b", re.I), "NVIDIA_TESLA_P4"),
    (re.compile(r"\b(?:tesla )?k80\b", re.I), "NVIDIA_TESLA_K80"),
)
_GPU_WORD: Final = re.compile(r"\b(gpu|nvidia|accelerator)\b", re.I)
_DISKS: Final = (
    (re.compile(r"\bhyperdisk[ -]balanced\b", re.I), "hyperdisk-balanced"),
    (re.compile(r"\bssd\b", re.I), "pd-ssd"),
    (re.compile(r"\b(?:pd[ -]standard|standard (?:pd|persistent disk|disk))\b", re.I), "pd-standard"),
)
_DISK_WORD: Final = re.compile(r"\b(disk|pd|storage)\b", re.I)
_SPOT: Final = re.compile(r"\b(spot|preemptible)\b", re.I)
_FLEX: Final = re.compile(r"\b(dws|flex[ -]start|dynamic workload scheduler)\b", re.I)


@dataclass(frozen=True)
class RefreshResult:
    book: PriceBook
    seen: int  # SKUs listed
    kept: int  # SKUs that gave entries
    conflicts: tuple[str, ...]  # keys priced by two SKUs (the later effectiveTime wins)


def list_skus(http: httpx.Client, base_url: str, service: str) -> Iterator[Mapping[str, Any]]:
    """Every SKU of the service, following nextPageToken."""
    url = f"{base_url.rstrip('/')}/v1/services/{service}/skus"
    token = ""
    while True:
        params = {"currencyCode": "USD", "pageSize": str(PAGE_SIZE)}
        if token:
            params["pageToken"] = token
        try:
            response = http.get(url, params=params)
        except httpx.RequestError as err:
            raise ApiError(f"request failed: {type(err).__name__}: {err}", method="GET", url=url) from err
        if response.status_code != 200:
            raise ApiError(
                f"the Cloud Billing Catalog API answered HTTP {response.status_code}",
                method="GET",
                url=url,
                http_status=response.status_code,
            )
        try:
            page = response.json()
        except ValueError as err:
            raise ApiError("the Cloud Billing Catalog API answered with something that is not JSON", url=url) from err
        yield from page.get("skus") or ()
        token = page.get("nextPageToken") or ""
        if not token:
            return


def refresh(http: httpx.Client, base_url: str, service: str, today: str) -> RefreshResult:
    chosen: dict[tuple[str, str, str, str], tuple[str, PriceEntry]] = {}
    conflicts: list[str] = []
    seen = kept = 0
    for sku in list_skus(http, base_url, service):
        seen += 1
        entries = sku_entries(sku, base_url, service, today)
        if entries:
            kept += 1
        effective = _pricing(sku)[1]
        for entry in entries:
            key = (entry.kind, entry.name, entry.region, entry.provisioning)
            previous = chosen.get(key)
            if previous is not None:
                conflicts.append(" ".join(key))
                if previous[0] >= effective:
                    continue
            chosen[key] = (effective, entry)
    book = make_book((e for _, e in chosen.values()), today, "pricing refresh")
    return RefreshResult(book=book, seen=seen, kept=kept, conflicts=tuple(sorted(set(conflicts))))


def classify(description: str) -> tuple[str, str, str] | None:
    """(kind, name, provisioning) of a custom-training SKU description, or None if not one."""
    if not _TRAINING.search(description) or _NOT_TRAINING.search(description):
        return None
    provisioning = "flex-start" if _FLEX.search(description) else "spot" if _SPOT.search(description) else "on-demand"
    machine = _MACHINE.search(description.lower())
    if machine:
        return "machine", machine.group(1), provisioning
    if _GPU_WORD.search(description):
        for pattern, name in _ACCELERATORS:
            if pattern.search(description):
                return "accelerator", name, provisioning
        return None
    if _DISK_WORD.search(description):
        for pattern, name in _DISKS:
            if pattern.search(description):
                return "disk", name, "on-demand"
    return None


def sku_entries(sku: Mapping[str, Any], base_url: str, service: str, today: str) -> list[PriceEntry]:
    description = str(sku.get("description") or "")
    found = classify(description)
    if found is None:
        return []
    kind, name, provisioning = found
    expression, _effective = _pricing(sku)
    unit = str(expression.get("usageUnit") or "")
    price = _unit_price(expression)
    if price is None:
        return []
    if kind == "disk":
        if unit == "GiBy.mo":
            price /= HOURS_PER_MONTH
        elif unit != "GiBy.h":
            return []
    elif unit != "h":
        return []
    sku_id = str(sku.get("skuId") or sku.get("name") or "?")
    source = f"{base_url.rstrip('/')}/v1/services/{service}/skus (skuId {sku_id}: {description})"
    regions = [str(r) for r in sku.get("serviceRegions") or () if r and r != "global"]
    return [
        PriceEntry(
            kind=kind,
            name=name,
            region=region,
            provisioning=provisioning,
            usd=price,
            source=source,
            retrieved_at=today,
        )
        for region in regions
    ]


def _pricing(sku: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The SKU's latest pricing expression and its effectiveTime."""
    infos = [i for i in sku.get("pricingInfo") or () if isinstance(i, Mapping)]
    if not infos:
        return {}, ""
    latest = max(infos, key=lambda i: str(i.get("effectiveTime") or ""))
    return latest.get("pricingExpression") or {}, str(latest.get("effectiveTime") or "")


def _unit_price(expression: Mapping[str, Any]) -> float | None:
    """The list rate: the tier that starts at zero usage (units + nanos, in USD)."""
    tiers = [t for t in expression.get("tieredRates") or () if isinstance(t, Mapping)]
    if not tiers:
        return None
    first = min(tiers, key=lambda t: float(t.get("startUsageAmount") or 0))
    price = first.get("unitPrice") or {}
    if (price.get("currencyCode") or "USD") != "USD":
        return None
    try:
        return int(price.get("units") or 0) + int(price.get("nanos") or 0) / 1e9
    except (TypeError, ValueError):
        return None
