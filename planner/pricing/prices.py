"""The price book: a versioned file of hourly rates for custom training, and exact lookups in it.

A rate is keyed by (kind, name, region, provisioning): kind is `machine` (per machine-hour),
`accelerator` (per accelerator-hour) or `disk` (per GB-hour of boot disk). A lookup never
falls back to another region or provisioning model: a missing key is reported as missing
("no price for a2-highgpu-8g in me-west1 in prices of 2026-12-01"), so a plan never shows a
figure that was made up. Every entry carries its source and retrieval date.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Final

from planner.errors import UsageError

FORMAT_VERSION: Final = 1
KINDS: Final = ("machine", "accelerator", "disk")
PROVISIONING: Final = ("on-demand", "spot", "flex-start")
STALE_DAYS: Final = 90
BUNDLED: Final = "bundled"


@dataclass(frozen=True)
class PriceEntry:
    kind: str
    name: str
    region: str
    provisioning: str
    usd: float  # per hour (machine, accelerator) or per GB-hour (disk)
    source: str
    retrieved_at: str

    def to_json(self) -> dict[str, Any]:
        unit = "usd_per_gb_hour" if self.kind == "disk" else "usd_per_hour"
        return {
            "kind": self.kind,
            "name": self.name,
            "region": self.region,
            "provisioning": self.provisioning,
            unit: self.usd,
            "source": self.source,
            "retrieved_at": self.retrieved_at,
        }


@dataclass(frozen=True)
class PriceBook:
    retrieved_at: str  # the date the book speaks for: "prices of <date>"
    origin: str  # "bundled" or the path of a --price-file
    entries: Mapping[tuple[str, str, str, str], PriceEntry] = field(default_factory=dict)
    currency: str = "USD"

    def rate(self, kind: str, name: str, region: str, provisioning: str) -> PriceEntry | None:
        return self.entries.get((kind, name, region, provisioning))

    def missing(self, what: str, region: str, provisioning: str) -> str:
        model = "" if provisioning == "on-demand" else f" ({provisioning})"
        return f"no price for {what}{model} in {region} in prices of {self.retrieved_at}"

    def age_days(self, today: date) -> int | None:
        try:
            return (today - date.fromisoformat(self.retrieved_at[:10])).days
        except ValueError:
            return None

    def stale_warning(self, today: date) -> str | None:
        """The warning for a book older than STALE_DAYS, or None."""
        age = self.age_days(today)
        if age is None or age <= STALE_DAYS:
            return None
        return (
            f"prices are {age} days old (retrieved {self.retrieved_at}, {self.origin}); "
            "run `planner pricing refresh` or pass a newer --price-file"
        )


def book_to_json(book: PriceBook, *, note: str = "") -> dict[str, Any]:
    entries = sorted(book.entries.values(), key=lambda e: (e.kind, e.name, e.region, e.provisioning))
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "currency": book.currency,
        "retrieved_at": book.retrieved_at,
    }
    if note:
        doc["note"] = note
    doc["entries"] = [e.to_json() for e in entries]
    return doc


def book_from_json(doc: Any, origin: str) -> PriceBook:
    """Parse a price file; every problem names the file and the entry."""
    if not isinstance(doc, dict):
        raise UsageError(f"{origin}: a price file is a JSON object")
    if doc.get("format_version") != FORMAT_VERSION:
        raise UsageError(f"{origin}: format_version must be {FORMAT_VERSION}, not {doc.get('format_version')!r}")
    if doc.get("currency", "USD") != "USD":
        raise UsageError(f"{origin}: only USD prices are supported, not {doc.get('currency')!r}")
    retrieved_at = doc.get("retrieved_at")
    if not isinstance(retrieved_at, str) or not _is_date(retrieved_at):
        raise UsageError(f"{origin}: retrieved_at must be a date (YYYY-MM-DD)")
    raw = doc.get("entries")
    if not isinstance(raw, list):
        raise UsageError(f"{origin}: entries must be a list")
    entries: dict[tuple[str, str, str, str], PriceEntry] = {}
    for i, item in enumerate(raw):
        entry = _entry(item, f"{origin}: entries[{i}]")
        key = (entry.kind, entry.name, entry.region, entry.provisioning)
        if key in entries:
            raise UsageError(f"{origin}: entries[{i}]: a second price for {' '.join(key)}")
        entries[key] = entry
    return PriceBook(retrieved_at=retrieved_at, origin=origin, entries=entries)


def _entry(item: Any, where: str) -> PriceEntry:
    if not isinstance(item, dict):
        raise UsageError(f"{where}: an entry is an object")
    kind = item.get("kind")
    if kind not in KINDS:
        raise UsageError(f"{where}.kind: one of {', '.join(KINDS)}, not {kind!r}")
    provisioning = item.get("provisioning")
    if provisioning not in PROVISIONING:
        raise UsageError(f"{where}.provisioning: one of {', '.join(PROVISIONING)}, not {provisioning!r}")
    unit = "usd_per_gb_hour" if kind == "disk" else "usd_per_hour"
    usd = item.get(unit)
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or usd < 0:
        raise UsageError(f"{where}.{unit}: a number of dollars, at least 0")
    texts = {}
    for key in ("name", "region", "source", "retrieved_at"):
        value = item.get(key)
        if not isinstance(value, str) or not value:
            raise UsageError(f"{where}.{key}: a non-empty string")
        texts[key] = value
    if not _is_date(texts["retrieved_at"]):
        raise UsageError(f"{where}.retrieved_at: a date (YYYY-MM-DD)")
    return PriceEntry(
        kind=str(kind),
        name=texts["name"],
        region=texts["region"],
        provisioning=str(provisioning),
        usd=float(usd),
        source=texts["source"],
        retrieved_at=texts["retrieved_at"],
    )


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return len(text) >= 10


def bundled_price_file() -> Path:
    """Where the price file shipped with planner lives (`pricing refresh` writes it there by default)."""
    return Path(str(resources.files("planner").joinpath("data", "prices.json")))


def load_book(path: str | None = None) -> PriceBook:
    """The bundled price file, or the one at path (--price-file, e.g. negotiated prices)."""
    if path is None:
        text = bundled_price_file().read_text(encoding="utf-8")
        origin = BUNDLED
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise UsageError(f"--price-file {path}: cannot be read ({err.strerror or err})") from err
        origin = path
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{origin}:{err.lineno}:{err.colno}: not JSON ({err.msg})") from err
    return book_from_json(doc, origin)


def make_book(entries: Iterable[PriceEntry], retrieved_at: str, origin: str) -> PriceBook:
    return PriceBook(
        retrieved_at=retrieved_at,
        origin=origin,
        entries={(e.kind, e.name, e.region, e.provisioning): e for e in entries},
    )
