"""The direct store read gives the same ledger as MLflow's client, row for row.

One MLflow store (SQLite or PostgreSQL) with metered, unmetered, running, failed, nested,
quarantined and inference runs, deleted runs and experiments, registered models (a LoggedModel
version, a deleted version, a prompt that is not a model) is loaded into two ledgers: one
through ``MlflowClient``, one with SQL on MLflow's tables. After the first load, after changes
(an incremental pass) and after ``--full`` both ledgers hold the same rows in every table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cl_ledger_fixtures import T0_MS, TEST_FACTORS, metered_metrics, metered_tags
from ledger_diff import assert_same_ledger
from sqlalchemy import Engine, create_engine, text

from carbonledger.etl import run_etl
from carbonledger.inference import runs as inf
from carbonledger.ledger import create_ledger_engine, migrate
from carbonledger.ledger.repositories import seed_emission_factors
from carbonledger.settings import get_settings

NOW = datetime.fromtimestamp((T0_MS + 5 * 3_600_000) / 1000, tz=UTC)


def _run(client: Any, exp: str, *, metrics: dict[str, float] | None = None, **kw: Any) -> str:
    """A run logged like the plugin does: one batch at ``step`` 0, then terminated."""
    from mlflow.entities import Metric, RunTag

    start = kw.pop("start_ms", T0_MS)
    end = kw.pop("end_ms", start + 3_600_000)
    run = client.create_run(exp, start_time=start, run_name=kw.pop("name", None))
    history = kw.pop("history", [])
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, start, 0) for k, v in (metrics or {}).items()] + history,
        tags=[RunTag(k, v) for k, v in kw.pop("tags", {}).items()],
    )
    if end is not None:
        client.set_terminated(run.info.run_id, kw.pop("status", "FINISHED"), end_time=end)
    return str(run.info.run_id)


def _window(step: int, ts: int, requests: float, *, window_s: float | None = 60.0) -> list[Any]:
    from mlflow.entities import Metric

    values = {
        inf.W_REQUESTS: requests,
        inf.W_ROWS: 2 * requests,
        inf.W_ERRORS: 0.0,
        inf.W_BUSY_S: 1.5,
        inf.W_COMPONENT["gpu"]: 0.005,
        inf.W_COMPONENT["cpu"]: 0.001,
        inf.W_ACTIVE: 0.002,
        inf.W_PUE: 1.2,
        inf.W_INTENSITY: 380.0,
        inf.W_LATENCY[50.0]: 3.0,
    }
    if window_s is not None:
        values[inf.W_WINDOW_S] = window_s
    return [Metric(k, v, ts, step) for k, v in values.items()]


def populate(client: Any, store: str) -> dict[str, str]:
    """The store of the comparison; returns the ids the changes refer to."""
    from mlflow.entities import Metric

    ids: dict[str, str] = {}
    train = client.create_experiment("team-a/train", tags={"carbon.team": "alpha"})
    sweeps = client.create_experiment("sweeps", tags={"team": "beta"})
    doomed = client.create_experiment("doomed")
    ids["doomed"] = doomed
    m, t = metered_metrics(), metered_tags()
    loss = [Metric("loss", 1.0 / (s + 1), T0_MS + s, s) for s in range(3)]
    loss += [Metric("accuracy", float("nan"), T0_MS, 0), Metric("f1", 0.5, T0_MS + 9, 7)]
    ids["r1"] = _run(client, train, metrics=m, tags=t, history=loss, name="first")
    ids["r2"] = _run(
        client, train, metrics=metered_metrics(gpu=2.0), tags=metered_tags("FR"), end_ms=T0_MS + 7
    )
    ids["unmetered"] = _run(client, sweeps, tags={"team": "gamma"})
    ids["running"] = _run(
        client, sweeps, metrics=metered_metrics(heartbeat_ms=T0_MS + 60_000), tags=t, end_ms=None
    )
    ids["failed"] = _run(
        client, sweeps, metrics=m, tags={**t, "carbon.model_name": "ranker"}, status="FAILED"
    )
    parent = ids["parent"] = _run(client, sweeps, metrics=metered_metrics(gpu=3.0), tags=t)
    for i in range(2):
        _run(client, sweeps, metrics=m, tags={**t, "mlflow.parentRunId": parent}, name=f"c{i}")
    _run(
        client,
        sweeps,
        tags={"mlflow.parentRunId": parent, "carbon.unmetered_reason": "created-after-the-fact"},
    )
    _run(client, sweeps, metrics={**m, "carbon/gpu_energy_kwh": float("nan")}, tags=t)
    _run(client, sweeps, metrics=m, tags=metered_tags("XX"))
    _run(client, sweeps, metrics={**m, "carbon/cpu_energy_kwh": -1.0}, tags=t)
    _run(client, sweeps, metrics={**m, "carbon/pue": float("inf")}, tags=t)
    nameless = _run(client, sweeps, metrics=m, tags=t, name="from-the-tag")
    with create_engine(store).begin() as conn:  # MLflow <= 1.29 runs: the name only in a tag
        conn.execute(text("UPDATE runs SET name = '' WHERE run_uuid = :r"), {"r": nameless})
    windows = _window(0, T0_MS, 10) + _window(1, T0_MS + 60_000, 4) + _window(1, T0_MS + 61, 5)
    windows += _window(2, T0_MS + 120_000, 3, window_s=None)  # a window without its length
    ids["serving"] = _run(
        client,
        train,
        metrics={**metered_metrics(heartbeat_ms=T0_MS + 120_000), inf.T_WINDOWS: 3.0},
        tags={**t, "carbon.kind": "inference", "carbon.model_name": "fraud"}
        | {"carbon.model_version": "2"},
        history=windows,
        end_ms=None,
    )
    _run(client, doomed, metrics=m, tags=t)
    client.create_registered_model("ranker", tags={"owner": "search"})
    client.create_model_version("ranker", source="/a/1", run_id=ids["r1"])
    logged = client.create_logged_model(train, source_run_id=ids["r2"], name="m")
    client.create_model_version("ranker", source=f"models:/{logged.model_id}")
    client.create_model_version("ranker", source="/a/3", run_id=ids["failed"])
    client.delete_model_version("ranker", "3")
    client.create_registered_model("fraud")
    client.create_model_version("fraud", source="/a/f", run_id=ids["serving"])
    client.register_prompt("greeting", "Hello {{name}}")  # a prompt is no registered model
    return ids


def change(client: Any, ids: dict[str, str]) -> None:
    """What happens between two passes: new runs, heartbeats, deletions, registry edits."""
    from mlflow.entities import Metric

    train = client.get_experiment_by_name("team-a/train").experiment_id
    new = _run(client, train, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS + 9e6)
    grown = metered_metrics(gpu=4.0, heartbeat_ms=T0_MS + 180_000)
    client.log_batch(ids["running"], [Metric(k, v, T0_MS + 180_000, 1) for k, v in grown.items()])
    more = _window(3, T0_MS + 180_000, 7) + [
        Metric(inf.T_WINDOWS, 4.0, T0_MS + 180_000, 1),
        Metric("carbon/heartbeat_ms", T0_MS + 180_000.0, T0_MS + 180_000, 1),
    ]
    client.log_batch(ids["serving"], more)
    client.delete_run(ids["r2"])  # only --full sees it (no cursor moves)
    client.set_tag(ids["r1"], "carbon.team", "search")  # likewise
    client.delete_experiment(ids["doomed"])
    client.create_model_version("ranker", source="/a/4", run_id=new)
    client.set_registered_model_tag("fraud", "stage", "prod")


def _ledger(url: str) -> Engine:
    engine = create_ledger_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        seed_emission_factors(conn, factors=TEST_FACTORS)
    return engine


def load(engine: Engine, store: str, read: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Any:
    monkeypatch.setenv("CARBONLEDGER_ETL_READ", read)
    get_settings.cache_clear()
    [summary] = run_etl(engine, mlflow_uris=[store], now=NOW, **kw)
    out = summary.as_dict()
    out.pop("duration_s")
    return out


@pytest.fixture
def two_ledgers(ledger_url: str, tmp_path: Any) -> Any:
    """Two empty ledgers on the same engine: ``ledger_url`` and a sibling."""
    if ledger_url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path / 'ledger-client.db'}"
        yield _ledger(ledger_url), _ledger(other)
        return
    import uuid

    from sqlalchemy.engine import make_url

    schema = f"cl_test_{uuid.uuid4().hex[:12]}"
    base = make_url(ledger_url)
    admin = create_ledger_engine(base.update_query_dict({"options": ""}, append=False))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    other = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield _ledger(ledger_url), _ledger(other.render_as_string(hide_password=False))
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def test_the_same_store_read_both_ways_gives_the_same_ledger_row_for_row(
    store_uri: str, two_ledgers: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    direct, through_client = two_ledgers
    client = MlflowClient(store_uri, registry_uri=store_uri)
    ids = populate(client, store_uri)

    first = load(direct, store_uri, "store", monkeypatch)
    assert first == load(through_client, store_uri, "client", monkeypatch)
    rows = assert_same_ledger(direct, through_client)
    assert first["loaded"] == 12 and first["windows"] == 2 and first["models"] == 2
    assert sum(first["quarantined"].values()) == 5  # 4 runs and one window
    assert len(rows.tables["run_metrics"]) == 3 and len(rows.tables["model_versions"]) == 3

    change(client, ids)
    second = load(direct, store_uri, "store", monkeypatch)
    assert second == load(through_client, store_uri, "client", monkeypatch)
    assert second["loaded"] == 1 and second["windows"] == 1
    assert_same_ledger(direct, through_client)

    full = load(direct, store_uri, "store", monkeypatch, full=True)
    assert full == load(through_client, store_uri, "client", monkeypatch, full=True)
    rows = assert_same_ledger(direct, through_client)
    stages = {dict(r)["run_id"]: dict(r)["lifecycle_stage"] for r in rows.tables["runs"]}
    assert stages[ids["r2"]] == "deleted"
    assert list(stages.values()).count("deleted") == 2  # r2, and the doomed experiment's run

    again = load(direct, store_uri, "store", monkeypatch)
    assert again == load(through_client, store_uri, "client", monkeypatch)
    assert (again["loaded"], again["updated"]) == (0, 0)
    assert_same_ledger(direct, through_client)
