"""A run on a shared GPU: its share is its GPU energy, its part of the remainder is reported
beside it as ``carbon/gpu_remainder_kwh`` (never inside the energy), and it is documented."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import mlflow
import pytest
from plugin_fakes import FakeHardware, FakeMeter
from plugin_support import read_run

from carbonledger.contract import (
    M_ENERGY_KWH,
    M_GPU_ENERGY_KWH,
    M_GPU_REMAINDER_KWH,
    METHOD_NVML_PROCESS_SHARE,
    TAG_METHODS,
)
from carbonledger.measure import Meter, SourceReading
from carbonledger.measure.base import J_PER_KWH

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin.md"
OWN_W, REMAINDER_W = 120.0, 80.0  # this process's share, and the part of the rest it reports


class SharedGpu:
    """A GPU source whose device is shared: 120 W charged here, 80 W of remainder reported."""

    component = "gpu"
    method = METHOD_NVML_PROCESS_SHARE
    devices = ("GPU-shared",)
    notes: list[str] = []

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._t0 = time.monotonic()

    def reading(self) -> SourceReading:
        with self._lock:
            dt = time.monotonic() - self._t0
        return SourceReading(
            OWN_W * dt, REMAINDER_W * dt, (OWN_W + REMAINDER_W) * dt, {self.method: 200.0 * dt}
        )

    def energy_j(self) -> float:
        return self.reading().energy_j

    def close(self) -> None:
        pass


def test_a_shared_gpu_run_logs_its_remainder_beside_its_energy(
    mlflow_uri: str, plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.mlflow_plugin import accounting

    meter = Meter([SharedGpu()])
    monkeypatch.setattr(meter, "hardware", FakeHardware)
    monkeypatch.setattr(accounting, "meter_factory", lambda: meter)
    with mlflow.start_run() as run:
        time.sleep(0.3)
    stored = read_run(mlflow_uri, run.info.run_id)
    metrics = stored.data.metrics
    gpu_j = metrics[M_GPU_ENERGY_KWH] * J_PER_KWH
    remainder_j = metrics[M_GPU_REMAINDER_KWH] * J_PER_KWH
    assert gpu_j > 0 and remainder_j == pytest.approx(gpu_j * REMAINDER_W / OWN_W, rel=1e-6)
    assert metrics[M_ENERGY_KWH] == pytest.approx(metrics[M_GPU_ENERGY_KWH])  # not inside
    assert stored.data.tags[TAG_METHODS] == f"gpu={METHOD_NVML_PROCESS_SHARE}"
    meter.close()


def test_a_run_on_an_unshared_gpu_has_no_remainder_metric(
    mlflow_uri: str, plugin: FakeMeter
) -> None:
    with mlflow.start_run() as run:
        time.sleep(0.05)
    assert M_GPU_REMAINDER_KWH not in read_run(mlflow_uri, run.info.run_id).data.metrics


def test_the_remainder_metric_is_documented() -> None:
    documented = set(re.findall(r"`(carbon[./][^`]+)`", DOC.read_text()))
    assert M_GPU_REMAINDER_KWH in documented
