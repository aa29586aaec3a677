"""Emulator settings: the CLI parser (`config_from_cli`) and the config's own checks."""

from __future__ import annotations

import pytest

from planner.emulator import EmulatorConfig, Quota, config_from_cli, parse_quota, running_emulator
from planner.errors import UsageError


def test_cli_values_map_onto_the_config() -> None:
    config = config_from_cli(
        host="127.0.0.1", port=0, data="emu.json", latency_ms=5, fail_rate=["503=0.2", "429=0.1"],
        lost_create_rate=0.05, echo_defaults=True, max_page_size=50, queue_seconds=1, run_seconds=2,
        cancel_seconds=3, create_quota="60/1m", request_quota="10/2s", allow_remote=False, drop_rate=0.01,
    )
    assert config.fail_rates == {503: 0.2, 429: 0.1}
    assert config.create_quota == Quota(60, 60.0)
    assert config.request_quota == (10, 2.0)
    assert (config.data_path, config.max_page_size, config.default_page_size) == ("emu.json", 50, 50)
    assert (config.queue_seconds, config.run_seconds, config.cancel_seconds) == (1, 2, 3)
    assert config.echo_defaults and config.drop_rate == 0.01 and config.lost_create_rate == 0.05


def test_cli_none_means_default() -> None:
    config = config_from_cli(max_page_size=None, queue_seconds=None, run_seconds=None, cancel_seconds=None)
    default = EmulatorConfig()
    assert (config.max_page_size, config.queue_seconds, config.run_seconds) == (
        default.max_page_size, default.queue_seconds, default.run_seconds)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "0.0.0.0"},
        {"host": "example.com"},
        {"fail_rate": ["404=0.1"]},
        {"fail_rate": ["503"]},
        {"fail_rate": ["503=2"]},
        {"fail_rate": ["503=0.7", "429=0.5"]},
        {"lost_create_rate": 1.5},
        {"latency_ms": -1},
        {"port": 70000},
        {"max_page_size": 0},
        {"create_quota": "ten/1s"},
        {"request_quota": "0/1s"},
        {"create_quota": "5/0s"},
    ],
)
def test_cli_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        config_from_cli(**kwargs)  # type: ignore[arg-type]


def test_remote_host_needs_allow_remote() -> None:
    assert config_from_cli(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"
    with pytest.raises(ValueError):
        EmulatorConfig(host="0.0.0.0")


@pytest.mark.parametrize(("text", "expected"), [("10/2s", (10, 2.0)), ("60/m", (60, 60.0)),
                                                ("600/1m", (600, 60.0)), ("5/500ms", (5, 0.5)), ("3/1h", (3, 3600.0))])
def test_parse_quota(text: str, expected: tuple[int, float]) -> None:
    assert parse_quota(text) == expected


def test_running_emulator_context_manager() -> None:
    with running_emulator(seed=3, queue_seconds=0) as emulator:
        assert emulator.url.startswith("http://127.0.0.1:")
        port = emulator.port
    with pytest.raises(RuntimeError):
        _ = emulator.url
    assert port > 0
