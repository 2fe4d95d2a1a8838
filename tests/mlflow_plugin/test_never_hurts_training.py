"""Every hook catches its own exceptions, logs each kind once, and the user's call proceeds."""

from __future__ import annotations

import logging

import mlflow
import pytest
from plugin_fakes import FakeMeter
from plugin_support import read_run

from carbonledger.mlflow_plugin import accounting, plugin_state, reset
from carbonledger.settings import get_settings


def _plugin_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("carbonledger") and r.levelno >= logging.WARNING
    ]


def test_a_failing_meter_never_breaks_a_run_and_warns_once(
    mlflow_uri: str,
    plugin: FakeMeter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []

    def broken_meter() -> FakeMeter:
        calls.append(1)
        raise OSError("NVML exploded")

    monkeypatch.setattr(accounting, "meter_factory", broken_meter)
    ids = []
    for _ in range(3):
        with mlflow.start_run() as run:
            mlflow.log_metric("accuracy", 0.9)
        ids.append(run.info.run_id)
    for run_id in ids:
        stored = read_run(mlflow_uri, run_id)
        assert stored.info.status == "FINISHED"
        assert stored.data.metrics["accuracy"] == 0.9
    warnings = _plugin_warnings(caplog)
    assert (
        len(warnings) == 1 and "create_run hook" in warnings[0] and "NVML exploded" in warnings[0]
    )
    assert len(calls) == 1, "device detection must not be retried on every run"


def test_a_failed_meter_start_can_be_reset(
    mlflow_uri: str, plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_meter() -> FakeMeter:
        raise OSError("NVML exploded")

    monkeypatch.setattr(accounting, "meter_factory", broken_meter)
    with mlflow.start_run() as run:
        pass
    assert "carbon/energy_kwh" not in read_run(mlflow_uri, run.info.run_id).data.metrics
    assert plugin_state().meter_failure is not None and plugin_state().reported
    monkeypatch.setattr(accounting, "meter_factory", lambda: plugin)
    reset()  # forgets the failed start (and everything else the plugin holds)
    assert plugin_state().meter_failure is None and not plugin_state().reported
    with mlflow.start_run() as run:
        pass
    assert read_run(mlflow_uri, run.info.run_id).data.metrics["carbon/energy_kwh"] > 0


def test_a_failing_final_flush_still_sets_the_status(
    mlflow_uri: str,
    plugin: FakeMeter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from carbonledger.mlflow_plugin import tracker

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("bad maths")

    monkeypatch.setattr(tracker.RunTracker, "_entry", broken)
    with mlflow.start_run() as run:
        pass
    assert read_run(mlflow_uri, run.info.run_id).info.status == "FINISHED"
    assert any("set_terminated hook" in w for w in _plugin_warnings(caplog))


def test_invalid_settings_degrade_to_one_warning(
    mlflow_uri: str,
    plugin: FakeMeter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("CARBONLEDGER_FLUSH_S", "-5")
    get_settings.cache_clear()
    for _ in range(2):
        with mlflow.start_run() as run:
            pass
        assert read_run(mlflow_uri, run.info.run_id).info.status == "FINISHED"
    warnings = _plugin_warnings(caplog)
    assert len(warnings) == 1 and "CARBONLEDGER_FLUSH_S" in warnings[0]


def test_budget_preflight_seam_is_called_with_the_new_run(
    mlflow_uri: str, plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.mlflow_plugin import registry

    seen = []
    monkeypatch.setattr(registry, "PREFLIGHT", [lambda run_id, uri, tags: seen.append(tags)])
    with mlflow.start_run(tags={"carbon.model_name": "fraud"}):
        pass
    assert seen and seen[0]["carbon.model_name"] == "fraud"
