"""The inference meter: windows per version as MLflow inference runs, rotation, never blocking."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from inference_helpers import INTENSITY, PUE, Echo, inference_runs
from mlflow.tracking import MlflowClient

from carbonledger import contract
from carbonledger.inference import MeteredModel, runs
from carbonledger.inference.meter import InferenceMeter
from carbonledger.testing import FakeClock

WH_PER_MIN = 360.0 / 60.0  # fake devices: 360 W


class Picky(Echo):
    def predict(self, data: Any) -> Any:
        if data == "bad":
            raise ValueError("bad input")
        return data


def history(uri: str, run_id: str, key: str) -> list[tuple[int, float, int]]:
    points = MlflowClient(uri).get_metric_history(run_id, key)
    return sorted((m.step, m.value, m.timestamp) for m in points)


def test_a_window_becomes_one_step_of_an_inference_run_with_tags_and_totals(
    make_meter: Callable[..., InferenceMeter], clock: FakeClock, mlflow_uri: str
) -> None:
    meter = make_meter(team="search")
    model = MeteredModel(Picky(), model_name="fraud", model_version=3, meter=meter)
    for _ in range(40):
        model.predict([1, 2, 3, 4])
    with pytest.raises(ValueError):
        model.predict("bad")  # counted as a request and an error, then re-raised
    clock.advance(60)

    [record] = meter.close_window()

    assert (record.requests, record.rows) == (41, 161)
    assert record.it_energy_kwh == pytest.approx(WH_PER_MIN / 1000)
    [run] = inference_runs(mlflow_uri)
    tags = run.data.tags
    assert tags["carbon.kind"] == "inference"
    assert (tags["carbon.model_name"], tags["carbon.model_version"]) == ("fraud", "3")
    assert tags["carbon.team"] == "search" and tags["carbon.grid_zone"] == "DE"
    assert tags["carbon.inference_meter"] == "leader" and tags["carbon.window_s"] == "60"
    assert tags["carbon.methods"] == "cpu=fake;gpu=fake"
    assert run.info.status == "RUNNING" and run.info.run_name == "inference fraud v3 2024-06-01"
    [(step, requests, ts)] = history(mlflow_uri, run.info.run_id, contract.W_REQUESTS)
    assert (step, requests, ts) == (1, 41.0, 1_717_200_000_000)
    m = run.data.metrics
    assert m[contract.W_ERRORS] == 1.0 and m[contract.W_WINDOW_S] == pytest.approx(60.0)
    assert m[contract.W_ENERGY_KWH] == pytest.approx(0.006)
    assert m[contract.W_ACTIVE_ENERGY_KWH] + m[contract.W_IDLE_ENERGY_KWH] == pytest.approx(0.006)
    assert m[contract.W_FACILITY_ENERGY_KWH] == pytest.approx(0.006 * PUE)
    assert m[contract.W_CO2E_KG] == pytest.approx(0.006 * PUE * INTENSITY / 1000)
    assert m[contract.W_WH_PER_REQUEST] == pytest.approx(6.0 * PUE / 41)
    assert m[contract.W_CO2E_G_PER_REQUEST] == pytest.approx(6.0 * PUE * INTENSITY / 1000 / 41)
    assert m[contract.W_LATENCY_MS[99.0]] >= m[contract.W_LATENCY_MS[50.0]] >= 0
    assert m["carbon/energy_kwh"] == pytest.approx(0.006)  # run totals, like a training run
    assert m["carbon/co2e_kg"] == pytest.approx(0.006 * PUE * INTENSITY / 1000)
    assert m["carbon/heartbeat_ms"] == 1_717_200_060_000
    assert (m[contract.W_REQUESTS_TOTAL], m[contract.W_WINDOWS_TOTAL]) == (41.0, 1.0)


def test_versions_in_one_process_share_idle_by_time_and_active_by_requests(
    make_meter: Callable[..., InferenceMeter], clock: FakeClock, mlflow_uri: str
) -> None:
    meter = make_meter(idle_power_w=240.0)  # of the 360 W, 240 W is drawn anyway
    v1 = MeteredModel(Echo(), model_name="fraud", model_version=1, meter=meter)
    clock.advance(30)
    v2 = MeteredModel(Echo(), model_name="fraud", model_version=2, meter=meter)
    for _ in range(30):
        v1.predict([1])
    for _ in range(10):
        v2.predict([1])
    clock.advance(30)

    r1, r2 = meter.close_window()

    idle, active = 0.240 * 60 / 3600, 0.120 * 60 / 3600
    assert r1.idle_energy_kwh == pytest.approx(idle * 60 / 90)  # hosted 60 of 90 s
    assert r2.idle_energy_kwh == pytest.approx(idle * 30 / 90)
    assert r1.active_energy_kwh == pytest.approx(active * 30 / 40)
    assert r2.active_energy_kwh == pytest.approx(active * 10 / 40)
    assert r1.idle_method == "idle-baseline"
    assert {r.data.tags["carbon.model_version"] for r in inference_runs(mlflow_uri)} == {"1", "2"}


def test_an_idle_window_teaches_the_idle_baseline(
    make_meter: Callable[..., InferenceMeter], clock: FakeClock
) -> None:
    meter = make_meter()
    model = MeteredModel(Echo(), model_name="m", model_version=1, meter=meter)
    clock.advance(60)
    [quiet] = meter.close_window()
    model.predict([1])
    clock.advance(60)
    [busy] = meter.close_window()

    assert quiet.idle_method == "no-requests" and quiet.idle_power_w is None
    assert busy.idle_method == "idle-baseline" and busy.idle_power_w == pytest.approx(360.0)
    assert busy.idle_energy_kwh == pytest.approx(0.006)  # the devices drew nothing more


def test_runs_rotate_at_utc_midnight_and_the_old_one_is_finished(
    make_meter: Callable[..., InferenceMeter], mlflow_uri: str
) -> None:
    clock = FakeClock(1_717_200_000.0 + 86_400 - 60)  # 2024-06-01T23:59:00Z
    meter = make_meter(clock=clock)
    model = MeteredModel(Echo(), model_name="m", model_version=1, meter=meter)
    for _ in range(2):
        model.predict([1])
        clock.advance(60)
        meter.close_window()

    first, second = inference_runs(mlflow_uri)
    assert first.info.run_name.endswith("2024-06-01")
    assert second.info.run_name.endswith("2024-06-02")
    assert first.info.status == "FINISHED" and first.data.tags["carbon.status"] == "complete"
    assert first.info.end_time == 1_717_286_400_000
    assert second.info.status == "RUNNING"
    assert second.data.metrics[contract.W_REQUESTS_TOTAL] == 1.0  # totals restart with the run


def test_unloading_a_version_ends_its_run_and_close_ends_the_rest(
    make_meter: Callable[..., InferenceMeter], clock: FakeClock, mlflow_uri: str
) -> None:
    meter = make_meter()
    a = MeteredModel(Echo(), model_name="a", model_version=1, meter=meter)
    b = MeteredModel(Echo(), model_name="b", model_version=1, meter=meter)
    a.predict([1])
    b.predict([1])
    clock.advance(20)
    a.close()
    clock.advance(40)
    meter.close_window()
    status = {r.data.tags["carbon.model_name"]: r.info.status for r in inference_runs(mlflow_uri)}
    assert status == {"a": "FINISHED", "b": "RUNNING"}

    b.predict([1])
    clock.advance(10)
    meter.close()

    [run_b] = [r for r in inference_runs(mlflow_uri) if r.data.tags["carbon.model_name"] == "b"]
    assert run_b.info.status == "FINISHED" and run_b.data.metrics[contract.W_WINDOWS_TOTAL] == 2.0


def test_the_hot_path_never_waits_for_mlflow(
    make_meter: Callable[..., InferenceMeter], clock: FakeClock
) -> None:
    hang, entered, release = threading.Event(), threading.Event(), threading.Event()
    sent: list[Any] = []

    def send(entry: Any) -> None:  # a tracking server that hangs once `hang` is set
        if hang.is_set():
            entered.set()
            release.wait(10)
        sent.append(entry)

    meter = make_meter(send=send)
    model = MeteredModel(Echo(), model_name="m", model_version=1, meter=meter)
    model.predict([1])
    clock.advance(60)
    meter.close_window()
    hang.set()
    clock.advance(60)
    closer = threading.Thread(target=meter.close_window)
    closer.start()
    assert entered.wait(5)  # the window close is now stuck on MLflow

    t0 = time.perf_counter()
    for _ in range(1000):
        model.predict([1])
    elapsed = time.perf_counter() - t0
    release.set()
    closer.join(10)

    assert elapsed < 0.5  # a thousand calls while a window close waits on MLflow
    assert len(sent) == 2


def test_windows_wait_in_memory_while_the_run_cannot_be_created(
    make_meter: Callable[..., InferenceMeter],
    clock: FakeClock,
    mlflow_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meter = make_meter()
    model = MeteredModel(Echo(), model_name="m", model_version=1, meter=meter)
    real_create = runs.create_run

    def down(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("tracking server down")

    monkeypatch.setattr(runs, "create_run", down)
    for _ in range(3):
        model.predict([1])
        clock.advance(60)
        meter.close_window()
    assert inference_runs(mlflow_uri) == []

    monkeypatch.setattr(runs, "create_run", real_create)
    clock.advance(60)
    meter.close_window()

    [run] = inference_runs(mlflow_uri)
    steps = history(mlflow_uri, run.info.run_id, contract.W_REQUESTS)
    assert [(s, v) for s, v, _ in steps] == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 0.0)]
    assert [ts for _, _, ts in steps] == [1_717_200_000_000 + 60_000 * i for i in range(4)]


def test_a_second_process_on_the_node_is_a_follower_and_meters_no_energy(
    make_meter: Callable[..., InferenceMeter],
    clock: FakeClock,
    mlflow_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # private election folder
    leader = make_meter(elect=True)
    follower = make_meter(elect=True)
    a = MeteredModel(Echo(), model_name="m", model_version=1, meter=leader)
    b = MeteredModel(Echo(), model_name="m", model_version=1, meter=follower)
    a.predict([1])
    b.predict([1])
    clock.advance(60)

    [lead] = leader.close_window()
    [follow] = follower.close_window()

    assert (leader.role, follower.role) == ("leader", "follower")
    assert lead.it_energy_kwh == pytest.approx(0.006) and follow.it_energy_kwh == 0.0
    assert follow.requests == 1
    roles = sorted(r.data.tags["carbon.inference_meter"] for r in inference_runs(mlflow_uri))
    assert roles == ["follower", "leader"]
