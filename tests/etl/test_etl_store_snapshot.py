"""A store written during a pass: the direct read sees one snapshot, never a torn run, and the
cursor never moves past a run the pass did not load.

The writer is MLflow itself (``log_batch``, ``create_run``), injected between two of the pass's
queries. SQLite stores are put in WAL mode, where a writer can commit while the pass reads; in
SQLite's default rollback-journal mode the writer waits for the pass instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cl_ledger_fixtures import T0_MS, make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, create_engine, text

from carbonledger.etl import run_etl
from carbonledger.etl.store_read import StoreReader
from carbonledger.settings import get_settings


@pytest.fixture
def live_store(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    """The store (WAL mode on SQLite) and an MLflow client writing to it; direct reads only."""
    from mlflow.tracking import MlflowClient

    if store_uri.startswith("sqlite"):
        client = MlflowClient(store_uri)
        client.search_experiments()  # creates the schema
        with create_engine(store_uri).connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    monkeypatch.setenv("CARBONLEDGER_ETL_READ", "store")
    get_settings.cache_clear()
    return store_uri, MlflowClient(store_uri)


def write_during_the_pass(
    monkeypatch: pytest.MonkeyPatch, at_call: int, write: Callable[[], None]
) -> list[int]:
    """Run ``write`` just before the ``at_call``-th query for a page's tags or metrics."""
    original = StoreReader._children
    calls: list[int] = []

    def children(self: StoreReader, *args: Any) -> list[Any]:
        calls.append(1)
        if len(calls) == at_call:
            write()
        return original(self, *args)

    monkeypatch.setattr(StoreReader, "_children", children)
    return calls


def one(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def test_a_run_written_between_its_tags_and_its_metrics_is_read_as_it_was(
    live_store: tuple[str, Any], ledger: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.entities import Metric, RunTag

    uri, client = live_store
    run_id = make_run(
        client,
        client.create_experiment("e"),
        metrics=metered_metrics(gpu=1.0),
        tags=metered_tags("DE"),
    )

    def rewrite() -> None:  # one MLflow transaction: new energy and a new zone
        grown = metered_metrics(gpu=5.0)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, T0_MS + 1, 1) for k, v in grown.items()],
            tags=[RunTag("carbon.grid_zone", "FR"), RunTag("carbon.country", "FR")],
        )

    calls = write_during_the_pass(monkeypatch, 2, rewrite)  # after tags, before metrics
    run_etl(ledger, mlflow_uris=[uri])

    assert len(calls) >= 2
    row = one(ledger, "SELECT energy_kwh, grid_zone FROM runs WHERE run_id = :r", r=run_id)
    assert (row.energy_kwh, row.grid_zone) == (pytest.approx(1.25), "DE")  # all before
    monkeypatch.undo()
    monkeypatch.setenv("CARBONLEDGER_ETL_READ", "store")
    get_settings.cache_clear()
    run_etl(ledger, mlflow_uris=[uri], full=True)
    row = one(ledger, "SELECT energy_kwh, grid_zone FROM runs WHERE run_id = :r", r=run_id)
    assert (row.energy_kwh, row.grid_zone) == (pytest.approx(5.25), "FR")  # all after


def test_the_cursor_never_passes_a_run_committed_during_the_pass(
    live_store: tuple[str, Any], ledger: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, client = live_store
    exp = client.create_experiment("e")
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS + 1000)
    late: list[str] = []

    def finish_a_later_run() -> None:
        late.append(
            make_run(
                client, exp, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS + 9e6
            )
        )

    write_during_the_pass(monkeypatch, 1, finish_a_later_run)
    [first] = run_etl(ledger, mlflow_uris=[uri])

    assert first.loaded == 1
    assert one(ledger, "SELECT end_time_ms FROM etl_state").end_time_ms == T0_MS + 1000
    monkeypatch.setattr(StoreReader, "_children", StoreReader._children)
    [second] = run_etl(ledger, mlflow_uris=[uri])
    assert second.loaded == 1
    assert one(ledger, "SELECT count(*) AS n FROM runs WHERE run_id = :r", r=late[0]).n == 1
    assert one(ledger, "SELECT end_time_ms FROM etl_state").end_time_ms == T0_MS + 9e6


ZONE_OF_STEP = {1: "DE", 2: "FR", 3: "US-CAL-CISO"}
N_LIVE_RUNS = 8


def _write_runs(client: Any, exp: str, failures: list[BaseException]) -> None:
    """Each run: created, 3 batches (step k: gpu k kWh, cpu 0.2k, ram 0.05k, zone of step k,
    a growing heartbeat), then finished; heartbeats and end times grow in commit order."""
    import time

    from mlflow.entities import Metric, RunTag

    try:
        for i in range(N_LIVE_RUNS):
            start = T0_MS + i * 10_000
            run_id = client.create_run(exp, start_time=start).info.run_id
            for k in (1, 2, 3):
                values = metered_metrics(
                    gpu=k, cpu=0.2 * k, ram=0.05 * k, heartbeat_ms=start + 1000 * k
                )
                zone = ZONE_OF_STEP[k]
                client.log_batch(
                    run_id,
                    metrics=[Metric(key, v, start + 1000 * k, k) for key, v in values.items()],
                    tags=[RunTag(key, v) for key, v in metered_tags(zone).items()],
                )
                time.sleep(0.02)
            client.set_terminated(run_id, status="FINISHED", end_time=start + 5000)
    except BaseException as exc:  # the test fails on it, not the thread
        failures.append(exc)


def _ledger_runs(ledger: Engine) -> dict[str, tuple[Any, ...]]:
    with ledger.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.run_id, r.energy_kwh, r.grid_zone, r.status, e.energy_kwh AS gpu "
                "FROM runs r LEFT JOIN run_energy e ON e.run_pk = r.id AND e.component = 'gpu'"
            )
        ).all()
    return {row.run_id: tuple(row[1:]) for row in rows}


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_writer_thread_during_passes_never_tears_a_run_and_the_next_pass_loads_the_rest(
    live_store: tuple[str, Any], ledger: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected: a thread writes runs through MLflow (create, three batches of metrics and
    tags, finish) while incremental passes run back to back, no clock-skew lookback. Checked
    after every pass: each loaded run holds one committed state of the store. MLflow's
    ``log_batch`` commits a batch's metrics and its tags in two transactions (``_log_metrics``
    then ``_set_tags``, each in its own session), so a running run may be read between them:
    its metrics are one batch whole (energy and its GPU component together), its tags are of
    that batch or the one before, and a finished run is whole at its final figures. After the
    writer stops, one incremental pass loads every run at its final figures: the cursor never
    moved past a run a pass did not load."""
    import threading

    uri, client = live_store
    monkeypatch.setenv("CARBONLEDGER_ETL_LOOKBACK_S", "0")
    get_settings.cache_clear()
    exp = client.create_experiment("live")
    failures: list[BaseException] = []
    writer = threading.Thread(target=_write_runs, args=(client, exp, failures), daemon=True)
    writer.start()
    passes, partial = 0, 0
    while writer.is_alive() or passes == 0:
        run_etl(ledger, mlflow_uris=[uri])
        passes += 1
        seen = _ledger_runs(ledger)
        for run_id, (energy, zone, status, gpu) in seen.items():
            [k_tags] = [k for k, z in ZONE_OF_STEP.items() if z == zone] or [0]  # 0: none yet
            k = round(gpu or 0)  # the metrics' batch
            assert (energy or 0, gpu or 0) == (pytest.approx(1.25 * k), pytest.approx(k)), run_id
            assert k_tags in (k, k - 1), (run_id, k, zone)  # tags commit after the metrics
            if status == "FINISHED":
                assert (k, zone) == (3, ZONE_OF_STEP[3]), run_id
        partial += len(seen) < N_LIVE_RUNS or any(v[2] != "FINISHED" for v in seen.values())
    writer.join(60)
    assert not failures, failures
    assert passes >= 2 and partial >= 1, "no pass ran while the writer wrote"

    run_etl(ledger, mlflow_uris=[uri])
    final = _ledger_runs(ledger)
    assert len(final) == N_LIVE_RUNS
    want = (pytest.approx(3.75), "US-CAL-CISO", "FINISHED", pytest.approx(3.0))
    assert all(v == want for v in final.values()), final
