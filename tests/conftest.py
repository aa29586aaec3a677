"""Shared pytest fixtures. Emulator fixtures: `emulator` (fast real clock) and `emulator_factory`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from planner.emulator import Emulator, EmulatorConfig

# Jobs finish in well under a second, so lifecycle tests need no sleeps worth mentioning.
FAST_EMULATOR = EmulatorConfig(
    queue_seconds=0.05, pending_seconds=0.05, run_seconds=0.3, cancel_seconds=0.1, seed=1234
)


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with `factory(clock=..., **config_overrides)`; all are stopped at teardown."""
    started: list[Emulator] = []

    def factory(*, clock: Callable[[], float] | None = None, **overrides: Any) -> Emulator:
        emulator = Emulator(replace(FAST_EMULATOR, **overrides), clock=clock)
        started.append(emulator)
        return emulator.start()

    try:
        yield factory
    finally:
        for emulator in reversed(started):
            emulator.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., Emulator]) -> Emulator:
    """A started emulator on a free loopback port, fast lifecycle, seeded."""
    return emulator_factory()


# -- golden files (tests/testdata/<area>/<case>/…): `pytest --update-golden` rewrites them ------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files under tests/testdata/ from the current output, then review the diff",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when pytest runs with --update-golden: golden tests write their files instead of comparing."""
    return bool(request.config.getoption("--update-golden"))
