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
