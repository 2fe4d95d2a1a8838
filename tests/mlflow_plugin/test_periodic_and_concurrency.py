"""Cumulative metrics are re-logged every flush_s; concurrent runs share the devices."""

from __future__ import annotations

import threading
import time

import mlflow
import pytest
from plugin_fakes import FakeMeter
from plugin_support import read_run

from carbonledger.measure.base import J_PER_KWH
from carbonledger.settings import get_settings


def test_periodic_flush_relogs_cumulative_metrics_with_heartbeat(
    mlflow_uri: str, plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBONLEDGER_FLUSH_S", "0.2")
    get_settings.cache_clear()
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        time.sleep(0.9)
        history = client.get_metric_history(run.info.run_id, "carbon/energy_kwh")
        assert read_run(mlflow_uri, run.info.run_id).data.tags["carbon.status"] == "running"
    assert len(history) >= 2, "no periodic flush while the run was running"
    values = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert values == sorted(values) and values[0] > 0  # cumulative, never reset
    beats = client.get_metric_history(run.info.run_id, "carbon/heartbeat_ms")
    assert len(beats) >= len(history)
    final = read_run(mlflow_uri, run.info.run_id)
    assert final.data.metrics["carbon/energy_kwh"] >= values[-1]
    assert final.data.tags["carbon.status"] == "complete"


def test_flusher_thread_starts_with_the_first_run_only(mlflow_uri: str, plugin: FakeMeter) -> None:
    names = {t.name for t in threading.enumerate()}
    assert "carbonledger-flusher" not in names
    with mlflow.start_run():
        assert "carbonledger-flusher" in {t.name for t in threading.enumerate()}
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("carbonledger"))


def test_runs_in_two_threads_split_device_energy_by_time_share(
    mlflow_uri: str, plugin: FakeMeter
) -> None:
    ids: dict[str, str] = {}
    b_may_start, b_done = threading.Event(), threading.Event()

    def worker_a() -> None:
        with mlflow.start_run(run_name="a") as r:
            ids["a"] = r.info.run_id
            time.sleep(0.15)
            b_may_start.set()
            b_done.wait(5)
            time.sleep(0.15)

    def worker_b() -> None:
        b_may_start.wait(5)
        with mlflow.start_run(run_name="b") as r:
            ids["b"] = r.info.run_id
            time.sleep(0.3)
        b_done.set()

    threads = [threading.Thread(target=worker_a), threading.Thread(target=worker_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    a = read_run(mlflow_uri, ids["a"]).data
    b = read_run(mlflow_uri, ids["b"]).data
    assert "mlflow.parentRunId" not in b.tags  # independent runs, not nested
    p = plugin.total_power_w
    # B shared the devices with A for its whole life: half the device energy of its window.
    assert b.metrics["carbon/energy_kwh"] == pytest.approx(
        p * b.metrics["carbon/duration_s"] / J_PER_KWH / 2, rel=1e-6
    )
    # Conservation: the two runs together carry exactly the device energy of A's window.
    assert a.metrics["carbon/energy_kwh"] + b.metrics["carbon/energy_kwh"] == pytest.approx(
        p * a.metrics["carbon/duration_s"] / J_PER_KWH, rel=1e-6
    )
