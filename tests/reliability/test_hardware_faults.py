"""Broken hardware interfaces never fail a run: NVML raising, RAPL files vanishing, a clock step.

The real plugin hooks and the real ``Meter`` (device detection from the settings) run on a
SQLite MLflow store; hardware is simulated (``pynvml`` patched with ``autospec=True`` where it
is used, a powercap tree in ``tmp_path``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pynvml
import pytest

from carbonledger.measure import detect, meter
from carbonledger.settings import get_settings


@pytest.fixture(autouse=True)
def _real_meter(monkeypatch: pytest.MonkeyPatch, mlflow_uri: str) -> Iterator[None]:
    from conftest_plugin_state import reset_plugin

    from carbonledger.mlflow_plugin import accounting, hooks

    monkeypatch.setenv("CARBONLEDGER_INTENSITY_G_PER_KWH", "400")
    monkeypatch.setenv("CARBONLEDGER_PUE", "1.0")
    monkeypatch.setenv("CARBONLEDGER_FLUSH_S", "0.2")
    monkeypatch.setenv("CARBONLEDGER_CPU_TDP_W", "100")
    monkeypatch.setenv("CARBONLEDGER_ESTIMATE_INTERVAL_S", "0.1")
    get_settings.cache_clear()
    assert hooks.try_install()
    monkeypatch.setattr(accounting, "meter_factory", accounting._default_meter)
    meter.reset_shared_meter()
    detect.reset_warnings()
    reset_plugin()  # a meter failure of an earlier test included
    yield
    if mlflow.active_run() is not None:
        mlflow.end_run()
    reset_plugin()
    meter.reset_shared_meter()


def _rapl_tree(root: Path) -> Path:
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("1000000\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    return zone


def _run(seconds: float, during: Any = None) -> mlflow.entities.Run:
    with mlflow.start_run() as run:
        time.sleep(seconds / 2)
        if during is not None:
            during()
        time.sleep(seconds / 2)
    return mlflow.MlflowClient().get_run(run.info.run_id)


def _methods(run: mlflow.entities.Run) -> dict[str, str]:
    raw = run.data.tags["carbon.methods"]
    return dict(part.split("=", 1) for part in raw.split(";"))


def test_nvml_raising_on_every_call_meters_cpu_and_ram_and_says_so(mocker: Any) -> None:
    """Injected: every ``pynvml`` function raises ``NVMLError(UNKNOWN)`` (a broken driver),
    from ``nvmlInit`` on. Checked: the run finishes, has CPU and RAM energy from the estimates,
    no GPU figure is invented, and ``carbon.methods`` names the estimates."""
    nv = mocker.patch("carbonledger.measure.nvml.pynvml", autospec=True)
    err = pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)
    for name in dir(pynvml):
        if name.startswith("nvml") and callable(getattr(pynvml, name)):
            getattr(nv, name).side_effect = err

    run = _run(0.6)

    assert run.info.status == "FINISHED"
    methods = _methods(run)
    assert "estimate" in methods["cpu"] and "estimate" in methods["ram"], methods
    assert "gpu" not in methods
    assert run.data.metrics["carbon/cpu_energy_kwh"] > 0
    assert run.data.metrics.get("carbon/gpu_energy_kwh", 0.0) == 0.0
    assert run.data.tags["carbon.status"] == "complete"


def test_nvml_failing_mid_run_keeps_the_run_and_its_energy(mocker: Any) -> None:
    """Injected: NVML works at the start (one GPU with an energy counter), then every call
    raises ``NVMLError(GPU_IS_LOST)`` mid-run. Checked: the run finishes with complete totals,
    the GPU energy measured before the fault is kept (never negative, never dropped), and CPU
    and RAM keep being charged."""
    nv = mocker.patch("carbonledger.measure.nvml.pynvml", autospec=True)
    state = {"mj": 1_000_000, "broken": False}
    lost = pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    def ok(value: Any) -> Any:
        def call(*args: Any) -> Any:
            if state["broken"]:
                raise lost
            return value(*args) if callable(value) else value

        return call

    def energy(_h: Any) -> int:
        state["mj"] += 30_000  # 30 J per read
        return state["mj"]

    nv.nvmlInit.side_effect = ok(None)
    nv.nvmlShutdown.side_effect = ok(None)
    nv.nvmlDeviceGetCount.side_effect = ok(1)
    nv.nvmlDeviceGetHandleByIndex.side_effect = ok(lambda i: "h0")
    nv.nvmlDeviceGetUUID.side_effect = ok("GPU-aaaaaaaa-1111-2222-3333-444444444444")
    nv.nvmlDeviceGetName.side_effect = ok("NVIDIA A100-SXM4-40GB")
    nv.nvmlSystemGetDriverVersion.side_effect = ok("550.54.15")
    nv.nvmlDeviceGetEnforcedPowerLimit.side_effect = ok(400_000)
    nv.nvmlDeviceGetMemoryInfo.side_effect = ok(type("Mem", (), {"total": 40 * 2**30})())
    nv.nvmlDeviceGetPowerUsage.side_effect = ok(250_000)
    nv.nvmlDeviceGetTotalEnergyConsumption.side_effect = ok(energy)

    run = _run(0.8, during=lambda: state.update(broken=True))

    assert run.info.status == "FINISHED"
    assert run.data.tags["carbon.status"] == "complete"
    metrics = run.data.metrics
    assert metrics["carbon/gpu_energy_kwh"] > 0
    assert metrics["carbon/cpu_energy_kwh"] > 0
    assert metrics["carbon/energy_kwh"] == pytest.approx(
        metrics["carbon/gpu_energy_kwh"]
        + metrics["carbon/cpu_energy_kwh"]
        + metrics["carbon/ram_energy_kwh"]
    )


def test_rapl_files_vanishing_mid_run_finish_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected: a powercap tree (package-0) that is deleted mid-run (a driver unloaded, a
    container's bind mount gone). Checked: the run finishes with ``carbon.status=complete``,
    CPU energy measured before the fault is kept, and the methods tag still says ``rapl``
    (measured) for the part that was measured, RAM estimated."""
    root = tmp_path / "powercap"
    zone = _rapl_tree(root)
    monkeypatch.setenv("CARBONLEDGER_RAPL_ROOT", str(root))
    get_settings.cache_clear()

    def grow_then_vanish() -> None:
        (zone / "energy_uj").write_text("31000000\n")  # +30 J
        time.sleep(0.3)  # a flush reads it
        shutil.rmtree(root)

    run = _run(0.8, during=grow_then_vanish)

    assert run.info.status == "FINISHED"
    assert run.data.tags["carbon.status"] == "complete"
    assert run.data.metrics["carbon/cpu_energy_kwh"] == pytest.approx(30 / 3.6e6, rel=0.01)
    methods = _methods(run)
    assert methods["cpu"] == "rapl" and "estimate" in methods["ram"], methods


def test_a_wall_clock_step_neither_fails_the_run_nor_charges_the_jump(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Injected: the wall clock (``time.time``) jumps back one hour and then forward two hours
    mid-run (an NTP step); the monotonic clock runs on. Checked: the run finishes, energy and
    duration are finite and non-negative, and the estimated CPU energy reflects the ~0.8 s the
    run lasted (100 W TDP), not the hours the wall clock jumped."""
    offset = {"s": 0.0}
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + offset["s"])

    def step() -> None:
        offset["s"] = -3600.0
        time.sleep(0.25)
        offset["s"] = 7200.0

    run = _run(0.8, during=step)

    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for key in ("carbon/energy_kwh", "carbon/cpu_energy_kwh", "carbon/duration_s"):
        assert metrics[key] >= 0, (key, metrics[key])
    assert metrics["carbon/cpu_energy_kwh"] < 100 * 5 / 3.6e6  # under 5 s at 100 W
    assert "estimate" in _methods(run)["cpu"]
