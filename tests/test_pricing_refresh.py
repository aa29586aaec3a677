"""`planner pricing refresh` against a loopback fake of the Cloud Billing Catalog API: SKUs → file → plan figures.

The fake serves SKUs whose rates are those of tests/testdata/cost/prices.json, mixed with
SKUs refresh must leave out (prediction, tokens, a per-request rate). The SKU descriptions
are test fixtures written in the shapes `planner.pricing.catalog` documents it reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from billing_catalog_fake import FakeCatalog, sku
from cli_harness import Cli

from planner.pricing.catalog import VERTEX_AI_SERVICE, classify
from planner.pricing.prices import load_book

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT / "tests" / "testdata" / "cost" / "prices.json"

SKUS = [
    sku("0001-AAAA", "Vertex AI: Training on n1-standard-4 running in Iowa", ["us-central1"], 0.20),
    sku("0002-AAAA", "Vertex AI: Training on n1-standard-4 running in Netherlands", ["europe-west4"], 0.25),
    sku("0003-AAAA", "Vertex AI: Training on n1-standard-8 running in Iowa", ["us-central1"], 0.40),
    sku("0004-AAAA", "Vertex AI: Training Nvidia Tesla T4 GPU running in Iowa", ["us-central1"], 0.35),
    sku("0005-AAAA", "Vertex AI: Training on a2-highgpu-8g running in Iowa", ["us-central1"], 10.0),
    sku("0006-AAAA", "Vertex AI: Training Nvidia Tesla A100 GPU running in Iowa", ["us-central1"], 3.0),
    sku("0007-AAAA", "Vertex AI: Training on a3-highgpu-8g Spot running in Iowa", ["us-central1"], 20.0),
    sku("0008-AAAA", "Vertex AI: Training Nvidia H100 80GB GPU Spot running in Iowa", ["us-central1"], 4.0),
    sku("0009-AAAA", "Vertex AI: Training on a3-highgpu-8g DWS Flex Start in Iowa", ["us-central1"], 25.0),
    sku("0010-AAAA", "Vertex AI: Training Nvidia H100 80GB GPU DWS Flex Start in Iowa", ["us-central1"], 5.0),
    sku("0011-AAAA", "Vertex AI: Training SSD backed PD capacity in Iowa", ["us-central1"], 0.146, unit="GiBy.mo"),
    # Left out: not training, not per hour, or nothing it can name.
    sku("0101-BBBB", "Vertex AI: Online Prediction on n1-standard-4 running in Iowa", ["us-central1"], 0.22),
    sku("0102-BBBB", "Gemini 2.5 Pro Text Input - Predictions", ["global"], 0.00000125, unit="count"),
    sku("0103-BBBB", "Vertex AI: Training management fee", ["us-central1"], 0.01, unit="count"),
]


def test_classify() -> None:
    assert classify("Vertex AI: Training on a2-highgpu-8g running in Iowa") == ("machine", "a2-highgpu-8g", "on-demand")
    assert classify("Training Nvidia A100 80GB GPU Preemptible") == ("accelerator", "NVIDIA_A100_80GB", "spot")
    assert classify("Training Nvidia Tesla A100 GPU") == ("accelerator", "NVIDIA_TESLA_A100", "on-demand")
    assert classify("Online Prediction on n1-standard-4") is None
    assert classify("Training on something new") is None


def test_refresh_round_trip_gives_the_same_plan_figures(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "refreshed.json"
    cli = Cli(tmp_path, emulator)
    with FakeCatalog(VERTEX_AI_SERVICE, SKUS, max_page_size=4) as fake:
        result = cli.run("pricing", "refresh", "--out", str(out), "--endpoint", fake.url, backend=False)
        assert result.code == 0, result
        # 14 SKUs in pages of 4: four requests, following nextPageToken.
        assert len(fake.requests) == 4
        assert all("currencyCode=USD" in r for r in fake.requests)
    assert "Wrote 11 prices from 11 of 14 SKUs" in result.out
    refreshed = load_book(str(out))
    expected = load_book(str(PRICES))
    rates = {k: round(e.usd, 9) for k, e in refreshed.entries.items()}
    assert rates == {k: round(e.usd, 9) for k, e in expected.entries.items()}
    for entry in refreshed.entries.values():
        assert entry.source.startswith(f"{fake.url}/v1/services/{VERTEX_AI_SERVICE}/skus (skuId ")
        assert entry.retrieved_at == refreshed.retrieved_at

    (tmp_path / "jobs.yaml").write_text(
        "version: 1\nproject: demo-project\nlocation: us-central1\njobs:\n"
        "  big:\n    displayName: big\n    jobSpec:\n      workerPoolSpecs:\n"
        "        - machineSpec: {machineType: a2-highgpu-8g, acceleratorType: NVIDIA_TESLA_A100, acceleratorCount: 8}\n"
        "          replicaCount: 1\n          containerSpec: {imageUri: img:1}\n"
        "  flex:\n    displayName: flex\n    jobSpec:\n      workerPoolSpecs:\n"
        "        - machineSpec: {machineType: a3-highgpu-8g, acceleratorType: NVIDIA_H100_80GB, acceleratorCount: 8}\n"
        "          replicaCount: 1\n          containerSpec: {imageUri: img:1}\n"
        "      scheduling: {strategy: FLEX_START, timeout: 2h}\n"
    )
    figures = []
    for prices in (PRICES, out):
        plan = cli.run("plan", "jobs.yaml", "--format", "json", "--price-file", str(prices))
        assert plan.code == 0, plan
        doc = json.loads(plan.out)
        figures.append({c["address"]: c["cost"]["after"]["hourly_usd"] for c in doc["resource_changes"]})
    # 8 × A100: 10 + 24 + 100 GB × 0.146/730 = 34.02; flex H100: 25 + 40 + 0.02 = 65.02.
    assert figures[0] == figures[1] == {"big": 34.02, "flex": 65.02}


def test_refresh_reports_an_api_error(tmp_path: Path, emulator) -> None:  # type: ignore[no-untyped-def]
    with FakeCatalog("OTHER-SERVICE", SKUS) as fake:
        result = Cli(tmp_path, emulator).run(
            "pricing", "refresh", "--out", str(tmp_path / "p.json"), "--endpoint", fake.url, backend=False
        )
    assert result.code == 1
    assert "HTTP 404" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "p.json").exists()


def test_the_default_refresh_target_is_the_price_file_planner_ships() -> None:
    """Without --out, `pricing refresh` replaces the bundled file the plan reads (planner/data/prices.json)."""
    from planner.pricing.prices import bundled_price_file, load_book

    path = bundled_price_file()
    assert path.is_file() and path.parent.name == "data" and path.parent.parent.name == "planner"
    assert load_book().entries  # the same file is the one plans price with
