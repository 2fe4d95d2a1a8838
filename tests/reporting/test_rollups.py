"""Rollups equal the views, and the ETL's refresh only recomputes what changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text, update

from carbonledger.ledger.models import Run
from carbonledger.ledger.repositories import add_emission_factor
from carbonledger.reporting.rollups import refresh_rollups


def _one(engine: Engine, sql: str) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(text(sql)).one())


def _team_month(engine: Engine) -> dict[tuple[str, str], float]:
    with engine.connect() as conn:
        return {
            (r[0], r[1]): r[2]
            for r in conn.execute(
                text(
                    "SELECT month, team, SUM(co2e_location_kg) FROM rollup_team_month "
                    "GROUP BY month, team"
                )
            )
        }


def _view_team_month(engine: Engine) -> dict[tuple[str, str], float]:
    with engine.connect() as conn:
        return {
            (r[0], r[1]): r[2]
            for r in conn.execute(text("SELECT month, team, co2e_location_kg FROM v_team_monthly"))
        }


def test_rollups_equal_the_views(seeded: Engine) -> None:
    assert _team_month(seeded) == pytest.approx(_view_team_month(seeded), abs=1e-9)
    models = _one(seeded, "SELECT SUM(co2e_location_kg) FROM rollup_model_month")
    lifecycle = _one(seeded, "SELECT SUM(training_co2e_location_kg) FROM v_model_lifecycle")
    assert models[0] == pytest.approx(lifecycle[0], abs=1e-9)
    daily = _one(seeded, "SELECT SUM(requests), SUM(co2e_market_kg) FROM rollup_inference_daily")
    view = _one(seeded, "SELECT SUM(requests), SUM(co2e_market_kg) FROM v_inference_daily")
    assert daily == pytest.approx(view)


def test_incremental_refresh_recomputes_only_changed_months(seeded: Engine) -> None:
    with seeded.begin() as conn:
        again = refresh_rollups(conn)
    if seeded.dialect.name == "postgresql":  # SQLite re-checks the last second's runs (>=)
        assert again.months == ()
    with seeded.begin() as conn:
        conn.execute(
            update(Run)
            .where(Run.run_id == "run0003")
            .values(team="moved-team", loaded_at=datetime(2100, 1, 1, tzinfo=UTC))
        )
        summary = refresh_rollups(conn)
    assert not summary.full
    (month,) = _one(seeded, "SELECT month FROM v_run_emissions WHERE run_id = 'run0003'")
    assert month in summary.months
    if seeded.dialect.name == "postgresql":
        assert summary.months == (month,)
    assert _team_month(seeded) == pytest.approx(_view_team_month(seeded), abs=1e-9)
    assert any(team == "moved-team" for _, team in _team_month(seeded))


def test_restated_factor_rebuilds_everything(seeded: Engine) -> None:
    before = sum(_team_month(seeded).values())
    with seeded.begin() as conn:
        add_emission_factor(
            conn, zone="FR", year=2024, intensity_g_per_kwh=60.0, source="restated-2024"
        )
        assert refresh_rollups(conn).full
    after = _team_month(seeded)
    assert after == pytest.approx(_view_team_month(seeded), abs=1e-9)
    assert sum(after.values()) > before


def test_etl_fills_run_metrics_and_rollups(ledger: Engine, client, mlflow_uri: str) -> None:  # noqa: ANN001
    from cl_ledger_fixtures import make_run, metered_metrics, metered_tags

    from carbonledger.etl import run_etl
    from carbonledger.reporting import parse_period, queries

    exp = client.create_experiment("reporting-etl")
    for i, acc in enumerate((0.8, 0.9)):
        metrics = {**metered_metrics(gpu=1.0 + i), "accuracy": acc}
        make_run(client, exp, metrics=metrics, tags=metered_tags("DE", **{"carbon.team": "t1"}))
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    assert _one(ledger, "SELECT COUNT(*), SUM(value) FROM run_metrics WHERE key = 'accuracy'") == (
        2,
        pytest.approx(1.7),
    )
    assert _one(ledger, "SELECT COUNT(*) FROM run_metrics WHERE key LIKE 'carbon/%'") == (0,)
    t = queries.totals(ledger, period=parse_period("2024-06"), team="t1")
    view = _one(ledger, "SELECT SUM(co2e_location_kg) FROM v_run_emissions WHERE team = 't1'")
    assert t.co2e_location_kg == pytest.approx(view[0]) and t.training_runs == 2
    # a no-change pass leaves the rollups as they were
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    again = queries.totals(ledger, period=parse_period("2024-06"), team="t1")
    assert again.co2e_location_kg == pytest.approx(t.co2e_location_kg)


def test_scope2_rollup_equals_the_view(seeded: Engine) -> None:
    sql = (
        "SELECT zone, activity, COALESCE(market_factor_source, '-'), SUM(facility_energy_kwh), "
        "SUM(co2e_location_kg), SUM(co2e_market_kg) FROM {} "
        "GROUP BY zone, activity, COALESCE(market_factor_source, '-')"
    )
    with seeded.connect() as conn:
        view = {r[:3]: r[3:] for r in conn.execute(text(sql.format("v_scope2")))}
        rolled = {r[:3]: r[3:] for r in conn.execute(text(sql.format("rollup_scope2_month")))}
        world = conn.execute(
            text("SELECT COUNT(*) FROM runs WHERE grid_zone IS NULL AND kind <> 'inference'")
        ).scalar()
    assert set(view) == set(rolled)
    for key, value in view.items():
        assert rolled[key] == pytest.approx(value, abs=1e-9)
    from carbonledger.reporting import methodology, parse_period

    assert (
        methodology.estimate_counts(seeded, period=parse_period("2024")).world_default_runs == world
    )


def _rollup_rows(engine: Engine) -> dict[str, list[tuple]]:
    from carbonledger.reporting.rollups import ROLLUP_TABLES

    with engine.connect() as conn:
        return {
            t: sorted(
                (tuple(r) for r in conn.execute(text(f"SELECT * FROM {t}"))),  # noqa: S608
                key=lambda r: [str(v) for v in r[:6]],
            )
            for t in ROLLUP_TABLES
        }


def _without_ids(rows: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    scope2 = [r[1:] for r in rows["rollup_scope2_month"]]  # a surrogate id, renumbered
    return {**rows, "rollup_scope2_month": sorted(scope2, key=lambda r: [str(v) for v in r])}


def test_a_serving_run_reloaded_dirties_no_month(seeded: Engine) -> None:
    with seeded.begin() as conn:
        refresh_rollups(conn)
        conn.execute(
            update(Run)
            .where(Run.kind == "inference")
            .values(loaded_at=datetime(2100, 1, 1, tzinfo=UTC))
        )
        summary = refresh_rollups(conn)
    if seeded.dialect.name == "postgresql":  # SQLite re-checks the last second's runs (>=)
        assert summary.months == ()


def test_incremental_refresh_after_new_windows_equals_a_full_rebuild(seeded: Engine) -> None:
    from carbonledger.etl.inference import upsert_windows

    with seeded.begin() as conn:
        refresh_rollups(conn)
        source, run_id, model = conn.execute(
            text("SELECT source_id, run_id, model_name FROM inference_windows LIMIT 1")
        ).one()
        last = conn.execute(text("SELECT MAX(window_start) FROM inference_windows")).scalar()
        last = datetime.fromisoformat(str(last)) if isinstance(last, str) else last
        day = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        rows = [
            {
                "source_id": source,
                "run_id": f"{run_id}-new-{v}",
                "model_name": model,
                "model_version": 50 + v,
                "team": "team-new",
                "window_start": day + timedelta(minutes=m),
                "window_end": day + timedelta(minutes=m + 1),
                "activity_year": day.year,
                "requests": m,
                "energy_kwh": 0.01 * (m + 1),
                "pue": 1.1,
                "facility_energy_kwh": 0.011 * (m + 1),
                "grid_zone": "DE",
            }
            for v in range(3)
            for m in range(30)
        ]
        assert upsert_windows(conn, rows, update=False) == (90, 0)
        summary = refresh_rollups(conn)
    assert not summary.full and f"{day:%Y-%m}" in summary.months
    if seeded.dialect.name == "postgresql":  # SQLite re-checks the last second's runs (>=)
        assert summary.months == (f"{day:%Y-%m}",)
    incremental = _without_ids(_rollup_rows(seeded))
    with seeded.begin() as conn:
        refresh_rollups(conn, full=True)
    full = _without_ids(_rollup_rows(seeded))
    assert incremental.keys() == full.keys()
    for table, rows_full in full.items():
        assert len(incremental[table]) == len(rows_full), table
        for got, want in zip(incremental[table], rows_full, strict=True):
            assert _same_row(got, want), (table, got, want)


def _same_row(got: tuple, want: tuple) -> bool:
    return len(got) == len(want) and all(
        g == pytest.approx(w) if isinstance(w, float) else g == w
        for g, w in zip(got, want, strict=True)
    )
