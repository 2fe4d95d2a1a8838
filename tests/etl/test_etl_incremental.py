"""Incremental loads: cursor on end time + heartbeat, boundary de-duplication, --full."""

from __future__ import annotations

from typing import Any

import pytest
from cl_ledger_fixtures import T0_MS, make_run, metered_metrics, metered_tags
from sqlalchemy import Engine, text

from carbonledger.etl import run_etl


def value(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_only_runs_finished_after_the_cursor_are_read_again(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("e")
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS + 1000)
    assert run_etl(ledger, mlflow_uris=[mlflow_uri])[0].loaded == 1

    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS + 5000)
    second = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    assert (second.loaded, second.updated, second.unchanged) == (1, 0, 0)
    assert value(ledger, "SELECT end_time_ms FROM etl_state") == T0_MS + 5000


def test_runs_on_the_cursor_boundary_are_not_reloaded_but_new_ones_there_are(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("e")
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS)
    run_etl(ledger, mlflow_uris=[mlflow_uri])

    # A run ending at exactly the cursor, written after the first pass, is still found.
    late = make_run(client, exp, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS)
    second = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]
    third = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    assert (second.loaded, second.unchanged) == (1, 0)
    assert (third.loaded, third.updated, third.unchanged) == (0, 0, 0)
    assert value(ledger, "SELECT count(*) FROM runs WHERE run_id = :r", r=late) == 1


def test_a_running_run_is_updated_when_its_heartbeat_moves(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    from mlflow.entities import Metric

    exp = client.create_experiment("e")
    run_id = make_run(
        client,
        exp,
        metrics=metered_metrics(gpu=1.0, heartbeat_ms=T0_MS + 60_000),
        tags=metered_tags(),
        end_ms=None,
    )
    first = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]
    assert value(ledger, "SELECT status FROM runs") == "RUNNING"

    grown = metered_metrics(gpu=3.0, heartbeat_ms=T0_MS + 120_000)
    client.log_batch(run_id, metrics=[Metric(k, v, T0_MS + 120_000, 1) for k, v in grown.items()])
    second = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]
    unchanged = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    assert first.loaded == 1 and second.updated == 1
    assert (unchanged.loaded, unchanged.updated) == (0, 0)
    assert value(ledger, "SELECT energy_kwh FROM runs") == pytest.approx(3.25)
    assert value(
        ledger,
        "SELECT e.energy_kwh FROM run_energy e JOIN runs r ON r.id = e.run_pk "
        "WHERE e.component = 'gpu'",
    ) == pytest.approx(3.0)

    client.set_terminated(run_id, "FINISHED", end_time=T0_MS + 180_000)
    done = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]
    assert done.updated == 1 and value(ledger, "SELECT status FROM runs") == "FINISHED"


def test_full_resyncs_changes_the_cursor_cannot_see(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("e")
    run_id = make_run(client, exp, metrics=metered_metrics(), tags=metered_tags())
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    client.set_tag(run_id, "carbon.team", "search")  # a tag edit moves no cursor

    assert run_etl(ledger, mlflow_uris=[mlflow_uri])[0].updated == 0
    full = run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)[0]

    assert full.updated == 1 and value(ledger, "SELECT team FROM runs") == "search"


def test_several_sources_are_kept_apart(ledger: Engine, tmp_path: Any) -> None:
    from mlflow.tracking import MlflowClient

    uris = [f"sqlite:///{tmp_path / name}.db" for name in ("a", "b")]
    for uri in uris:
        c = MlflowClient(uri)
        make_run(c, c.create_experiment("e"), metrics=metered_metrics(), tags=metered_tags())
    summaries = run_etl(ledger, mlflow_uris=uris)

    assert [s.loaded for s in summaries] == [1, 1]
    assert value(ledger, "SELECT count(DISTINCT source_id) FROM runs") == 2


def test_a_run_that_commits_after_the_cursor_passed_its_end_time_is_still_loaded(
    ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    # Run B's machine clock is 0.5 s behind: it ends "before" A but is written after the pass.
    exp = client.create_experiment("e")
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS + 10_000)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    late = make_run(
        client, exp, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS + 9_500
    )

    second = run_etl(ledger, mlflow_uris=[mlflow_uri])[0]

    assert second.loaded == 1
    assert value(ledger, "SELECT count(*) FROM runs WHERE run_id = :r", r=late) == 1
    assert value(ledger, "SELECT end_time_ms FROM etl_state") == T0_MS + 10_000


def test_the_lookback_is_a_setting_and_beyond_it_only_full_finds_a_late_run(
    ledger: Engine, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_ETL_LOOKBACK_S", "1")
    get_settings.cache_clear()
    exp = client.create_experiment("e")
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS + 60_000)
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags(), end_ms=T0_MS)

    assert run_etl(ledger, mlflow_uris=[mlflow_uri])[0].loaded == 0
    assert run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)[0].loaded == 1


def test_a_run_read_again_unchanged_still_gets_its_reservation_restaged_when_that_changed(
    ledger: Engine, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unchanged runs are not staged; the amortisation lifetime is a setting outside the
    content hash, so a changed setting still rewrites the reservation of every run re-read
    (here by --full) while the run itself counts as unchanged."""
    from carbonledger.settings import get_settings

    exp = client.create_experiment("e")
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags())

    def lifetimes() -> set[float]:
        with ledger.connect() as conn:
            return set(conn.execute(text("SELECT lifetime_years FROM run_embodied")).scalars())

    run_etl(ledger, mlflow_uris=[mlflow_uri])
    first = lifetimes()
    again = run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)[0]
    assert (again.loaded, again.updated, again.unchanged) == (0, 0, 1) and lifetimes() == first

    monkeypatch.setenv("CARBONLEDGER_EMBODIED_LIFETIME_YEARS", "7")
    get_settings.cache_clear()
    changed = run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)[0]
    assert (changed.loaded, changed.updated, changed.unchanged) == (0, 0, 1)
    assert lifetimes() == {7.0} != first
