"""Every fluent run ends with its final carbon totals, written before the terminal status."""

from __future__ import annotations

import time

import mlflow
import pytest
from plugin_fakes import FakeMeter
from plugin_support import INTENSITY, PUE, read_run

from carbonledger.measure.base import J_PER_KWH


def _expected_kwh(power_w: float, duration_s: float) -> float:
    return power_w * duration_s / J_PER_KWH


def test_with_block_logs_exact_totals_and_tags(mlflow_uri: str, plugin: FakeMeter) -> None:
    with mlflow.start_run() as run:
        time.sleep(0.2)
    stored = read_run(mlflow_uri, run.info.run_id)
    m, tags = stored.data.metrics, stored.data.tags
    assert stored.info.status == "FINISHED"
    d = m["carbon/duration_s"]
    assert d >= 0.2
    assert m["carbon/gpu_energy_kwh"] == pytest.approx(_expected_kwh(300.0, d), rel=1e-9)
    assert m["carbon/cpu_energy_kwh"] == pytest.approx(_expected_kwh(60.0, d), rel=1e-9)
    assert m["carbon/ram_energy_kwh"] == pytest.approx(_expected_kwh(6.0, d), rel=1e-9)
    e = m["carbon/energy_kwh"]
    assert e == pytest.approx(_expected_kwh(366.0, d), rel=1e-9)
    assert m["carbon/pue"] == PUE
    assert m["carbon/facility_energy_kwh"] == pytest.approx(e * PUE)
    assert m["carbon/intensity_g_per_kwh"] == INTENSITY
    assert m["carbon/co2e_kg"] == pytest.approx(e * PUE * INTENSITY / 1000)
    assert m["carbon/avg_power_w"] == pytest.approx(366.0, rel=1e-6)
    assert m["carbon/peak_power_w"] == pytest.approx(366.0, rel=1e-6)
    assert abs(m["carbon/heartbeat_ms"] - time.time() * 1000) < 60_000
    assert tags["carbon.status"] == "complete"
    assert tags["carbon.metered"] == "true"
    assert tags["carbon.gpu_model"] == "NVIDIA H100 80GB HBM3"
    assert tags["carbon.methods"] == ("cpu=rapl;gpu=nvml-energy-counter;ram=ram-w-per-gb-estimate")
    assert tags["carbon.measured"] == "partial"
    assert tags["carbon.attribution"] == "device"
    assert tags["carbon.intensity_source"].startswith("explicit")
    assert tags["carbon.pue_source"] == "explicit"
    assert tags["carbon.node_count"] == "1"
    assert tags["carbon.plugin_version"]


def test_final_totals_are_written_before_the_terminal_status(
    mlflow_uri: str, plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    seen = {}
    orig = SqlAlchemyStore.update_run_info

    def spy(self, run_id, run_status, end_time, run_name):  # type: ignore[no-untyped-def]
        seen["metrics_at_status"] = dict(self.get_run(run_id).data.metrics)
        return orig(self, run_id, run_status, end_time, run_name)

    monkeypatch.setattr(SqlAlchemyStore, "update_run_info", spy)
    run = mlflow.start_run()
    mlflow.end_run(status="FAILED")
    assert "carbon/co2e_kg" in seen["metrics_at_status"]
    assert read_run(mlflow_uri, run.info.run_id).info.status == "FAILED"


def test_nested_parent_is_inclusive_of_children(mlflow_uri: str, plugin: FakeMeter) -> None:
    with mlflow.start_run() as parent:
        time.sleep(0.1)
        with mlflow.start_run(nested=True) as child:
            time.sleep(0.2)
        time.sleep(0.1)
    p = read_run(mlflow_uri, parent.info.run_id).data.metrics
    c = read_run(mlflow_uri, child.info.run_id).data.metrics
    assert c["carbon/energy_kwh"] == pytest.approx(_expected_kwh(366.0, c["carbon/duration_s"]))
    assert p["carbon/energy_kwh"] == pytest.approx(_expected_kwh(366.0, p["carbon/duration_s"]))
    # inclusive: the parent's window covers the child's, and no energy is counted twice
    assert p["carbon/energy_kwh"] > c["carbon/energy_kwh"]
    assert p["carbon/duration_s"] > c["carbon/duration_s"] + 0.2 - 0.01
    assert len(plugin.windows) == 1  # one process window, not one per run


def test_resumed_run_adds_to_its_previous_totals(mlflow_uri: str, plugin: FakeMeter) -> None:
    with mlflow.start_run() as first:
        time.sleep(0.1)
    before = read_run(mlflow_uri, first.info.run_id).data.metrics
    with mlflow.start_run(run_id=first.info.run_id):
        time.sleep(0.1)
    after = read_run(mlflow_uri, first.info.run_id).data.metrics
    assert after["carbon/duration_s"] > before["carbon/duration_s"] + 0.1 - 0.01
    assert after["carbon/energy_kwh"] == pytest.approx(
        _expected_kwh(366.0, after["carbon/duration_s"]), rel=1e-6
    )


def test_resumed_through_mlflow_run_id_env(
    mlflow_uri: str, plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = mlflow.MlflowClient()
    exp = client.create_experiment("resume-env")
    run = client.create_run(exp)
    client.set_terminated(run.info.run_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    with mlflow.start_run(experiment_id=exp):
        time.sleep(0.05)
    m = read_run(mlflow_uri, run.info.run_id).data.metrics
    assert m["carbon/energy_kwh"] > 0


def test_client_created_run_is_metered(mlflow_uri: str, plugin: FakeMeter) -> None:
    client = mlflow.MlflowClient()
    run = client.create_run("0")
    time.sleep(0.05)
    client.set_terminated(run.info.run_id, "KILLED")
    stored = read_run(mlflow_uri, run.info.run_id)
    assert stored.info.status == "KILLED"
    assert stored.data.metrics["carbon/energy_kwh"] == pytest.approx(
        _expected_kwh(366.0, stored.data.metrics["carbon/duration_s"])
    )


def test_run_created_after_the_fact_is_not_metered(mlflow_uri: str, plugin: FakeMeter) -> None:
    from carbonledger.mlflow_plugin import flusher

    client = mlflow.MlflowClient()
    past_ms = int(time.time() * 1000) - 3_600_000
    run = client.create_run("0", start_time=past_ms)
    client.set_terminated(run.info.run_id)
    f = flusher.current()
    assert f is not None
    assert f.drain()
    stored = read_run(mlflow_uri, run.info.run_id)
    assert stored.data.tags["carbon.metered"] == "false"
    assert stored.data.tags["carbon.unmetered_reason"] == "created-after-the-fact"
    assert not any(k.startswith("carbon/") for k in stored.data.metrics)
    assert plugin.windows == []


def test_disable_turns_everything_off(
    mlflow_uri: str, plugin: FakeMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.mlflow_plugin import flusher
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_DISABLE", "1")
    get_settings.cache_clear()
    with mlflow.start_run() as run:
        pass
    stored = read_run(mlflow_uri, run.info.run_id)
    assert not any(k.startswith("carbon") for k in stored.data.metrics)
    assert not any(k.startswith("carbon") for k in stored.data.tags)
    assert plugin.windows == [] and flusher.current() is None
