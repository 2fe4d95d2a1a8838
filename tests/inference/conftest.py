"""Fixtures for the inference suites: a fake clock and devices, a meter logging to MLflow."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ledger"))

from cl_ledger_fixtures import _plugin_off, client, ledger, ledger_url  # noqa: E402, F401
from inference_helpers import INTENSITY, POWER_W, PUE, T0_S  # noqa: E402

from carbonledger.inference.meter import InferenceMeter  # noqa: E402
from carbonledger.testing import FakeClock, fake_meter  # noqa: E402


@pytest.fixture(autouse=True)
def _factors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Zone DE at 380 g/kWh, PUE 1.2, and clean plugin state around each test."""
    from carbonledger.mlflow_plugin import reset

    monkeypatch.setenv("CARBONLEDGER_GRID_ZONE", "DE")
    monkeypatch.setenv("CARBONLEDGER_INTENSITY_G_PER_KWH", str(INTENSITY))
    monkeypatch.setenv("CARBONLEDGER_PUE", str(PUE))
    reset()
    yield
    reset()


@pytest.fixture
def clock() -> FakeClock:
    """The wall clock of the meters and fake devices, at 2024-06-01T00:00:00Z."""
    return FakeClock(T0_S)


@pytest.fixture
def make_meter(mlflow_uri: str, clock: FakeClock) -> Iterator[Callable[..., InferenceMeter]]:
    """Build meters on fake devices that log synchronously to the test's MLflow store."""
    from carbonledger.mlflow_plugin import flusher

    made: list[InferenceMeter] = []

    def make(**kwargs: Any) -> InferenceMeter:
        kwargs.setdefault("tracking_uri", mlflow_uri)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("meter_factory", lambda: fake_meter(POWER_W, clock=clock))
        kwargs.setdefault("send", flusher.deliver)
        kwargs.setdefault("elect", False)
        kwargs.setdefault("start_thread", False)
        meter = InferenceMeter(**kwargs)
        made.append(meter)
        return meter

    yield make
    for meter in made:
        meter.close()
