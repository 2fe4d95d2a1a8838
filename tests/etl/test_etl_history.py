"""The ETL keeps the histories the advice needs: objective metrics and cumulative energy."""

from __future__ import annotations

from typing import Any

import pytest
from cl_ledger_fixtures import T0_MS, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger import contract
from carbonledger.etl import run_etl
from carbonledger.etl.history import downsample, history_keys


def _history_run(client: Any, exp: str, points: int) -> str:
    from mlflow.entities import Metric, RunTag

    run_id = client.create_run(exp, start_time=T0_MS).info.run_id
    metrics = []
    for step in range(points):
        ts = T0_MS + (step + 1) * 60_000
        metrics += [
            Metric("val_loss", 1.0 / (1 + step) if step < points - 3 else 0.5, ts, step),
            Metric("lr", 0.1, ts, step),
            Metric(contract.M_ENERGY_KWH, 0.1 * (step + 1), ts, step),
        ]
    final = metered_metrics(gpu=0.1 * points, cpu=0.0, ram=0.0, duration_s=60.0 * points)
    ts = T0_MS + points * 60_000
    metrics += [
        Metric(k, v, ts, points - 1) for k, v in final.items() if k != contract.M_ENERGY_KWH
    ]
    client.log_batch(
        run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in metered_tags().items()]
    )
    client.set_terminated(run_id, end_time=T0_MS + (points + 1) * 60_000)
    return run_id


def _points(engine: Engine, run_id: str) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    with engine.connect() as conn:
        for key, step, value in conn.execute(
            text(
                "SELECT key, step, value FROM run_metric_history WHERE run_id = :r "
                "ORDER BY key, step"
            ),
            {"r": run_id},
        ):
            out.setdefault(key, []).append((int(step), float(value)))
    return out


def test_objective_and_energy_histories_are_kept(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    run_id = _history_run(client, client.create_experiment("h"), 10)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    kept = _points(ledger, run_id)
    assert set(kept) == {"val_loss", contract.M_ENERGY_KWH}  # lr is no objective
    assert [s for s, _ in kept["val_loss"]] == list(range(10))
    assert kept[contract.M_ENERGY_KWH][-1] == (9, pytest.approx(1.0))
    run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)  # a reload replaces, never doubles
    assert len(_points(ledger, run_id)["val_loss"]) == 10


def test_long_histories_are_downsampled_keeping_ends_and_best(
    ledger: Engine, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_HISTORY_MAX_POINTS", "10")
    get_settings.cache_clear()
    run_id = _history_run(client, client.create_experiment("long"), 60)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    loss = _points(ledger, run_id)["val_loss"]
    assert len(loss) == 10
    steps = [s for s, _ in loss]
    assert steps[0] == 0 and steps[-1] == 59
    assert 56 in steps  # the best (lowest) loss, 1/57, is never dropped


def test_downsample_and_keys() -> None:
    points = [(i, i * 1000, float((i - 40) ** 2)) for i in range(100)]
    kept = downsample(points, 12)
    assert len(kept) == 12 and kept[0][0] == 0 and kept[-1][0] == 99
    assert (40, 40_000, 0.0) in kept and (99, 99_000, 59.0**2) in kept
    assert downsample(points[:5], 12) == points[:5]
    keys = history_keys(
        ["val_loss", "lr", "eval_accuracy", contract.M_ENERGY_KWH], ["val*loss", "eval*acc*"]
    )
    assert keys == ["eval_accuracy", "val_loss", contract.M_ENERGY_KWH]


@pytest.mark.parametrize("read", ["client", "store"])
def test_energy_history_alone_is_not_kept_on_either_read_path(
    ledger: Engine, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, read: str
) -> None:
    from mlflow.entities import Metric

    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_ETL_READ", read)
    get_settings.cache_clear()
    run_id = client.create_run(client.create_experiment("e"), start_time=T0_MS).info.run_id
    final = metered_metrics(gpu=1.0, cpu=0.0, ram=0.0)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, T0_MS + 60_000, 1) for k, v in final.items()]
        + [Metric(contract.M_ENERGY_KWH, 0.5, T0_MS + 30_000, 0)],
        tags=[],
    )
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in metered_tags().items()])
    client.set_terminated(run_id, end_time=T0_MS + 3_600_000)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    kept = _points(ledger, run_id)
    # no objective metric, no history: the same on both paths (one ledger, however read)
    assert kept == {}
