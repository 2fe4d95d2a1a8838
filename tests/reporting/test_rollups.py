"""Rollups equal the views, and the ETL's refresh only recomputes what changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select, text, update

from carbonledger.ledger.models import InferenceWindow, Run
from carbonledger.ledger.repositories import add_emission_factor
from carbonledger.reporting.rollups import RefreshSummary, refresh_rollups


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
    out = dict(rows)
    for table in ("rollup_scope2_day", "rollup_scope2_month", "rollup_ranges"):  # renumbered ids
        out[table] = sorted((r[1:] for r in rows[table]), key=lambda r: [str(v) for v in r])
    return out


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
    _equals_a_full_rebuild(seeded)


def _same_row(got: tuple, want: tuple) -> bool:
    return len(got) == len(want) and all(
        g == pytest.approx(w) if isinstance(w, float) else g == w
        for g, w in zip(got, want, strict=True)
    )


# -- serving windows refresh by UTC day ---------------------------------------------------


def _settle(engine: Engine) -> None:
    """Backdate every ``loaded_at`` and refresh, so the next refresh sees only later loads.

    (SQLite's ``loaded_at`` has one-second steps: a load in the second of the last one would
    be re-checked; a mark in an earlier second makes the comparison exact on both databases.)
    """
    old = datetime(2020, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(update(Run).values(loaded_at=old))
        conn.execute(update(InferenceWindow).values(loaded_at=old))
        refresh_rollups(conn)
    with engine.begin() as conn:
        assert refresh_rollups(conn) == RefreshSummary(False, (), ())


def _window(conn, start: datetime, energy_kwh: float, *, version: int = 1) -> dict:  # noqa: ANN001
    source = conn.execute(text("SELECT MIN(source_id) FROM inference_windows")).scalar()
    return {
        "source_id": source,
        "run_id": f"serve-v{version}",
        "model_name": "bert-qa",
        "model_version": version,
        "team": "nlp",
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "activity_year": start.year,
        "requests": 7,
        "energy_kwh": energy_kwh,
        "estimated_energy_kwh": energy_kwh / 2,
        "pue": 1.2,
        "facility_energy_kwh": energy_kwh * 1.2,
        "grid_zone": "DE",
    }


def _equals_a_full_rebuild(engine: Engine) -> None:
    incremental = _without_ids(_rollup_rows(engine))
    with engine.begin() as conn:
        refresh_rollups(conn, full=True)
    full = _without_ids(_rollup_rows(engine))
    assert incremental.keys() == full.keys()
    for table, rows_full in full.items():
        assert len(incremental[table]) == len(rows_full), table
        for got, want in zip(incremental[table], rows_full, strict=True):
            assert _same_row(got, want), (table, got, want)


def _daily_energy(engine: Engine, day: str) -> float:
    return _one(engine, f"SELECT SUM(energy_kwh) FROM rollup_inference_daily WHERE day = '{day}'")[
        0
    ]


def test_a_new_day_of_windows_refreshes_only_that_day(seeded: Engine) -> None:
    from carbonledger.etl.inference import upsert_windows

    _settle(seeded)
    day = datetime(2024, 7, 20, tzinfo=UTC)  # the seed's windows end on 2024-07-15
    with seeded.begin() as conn:
        rows = [_window(conn, day + timedelta(minutes=m), 0.01) for m in range(60)]
        assert upsert_windows(conn, rows, update=False) == (60, 0)
        summary = refresh_rollups(conn)
    assert summary == RefreshSummary(False, ("2024-07",), ("2024-07-20",))
    assert _daily_energy(seeded, "2024-07-20") == pytest.approx(0.6)
    _equals_a_full_rebuild(seeded)


def test_windows_arriving_late_for_an_older_day(seeded: Engine) -> None:
    from carbonledger.etl.inference import upsert_windows

    _settle(seeded)
    before = _daily_energy(seeded, "2024-06-10")
    late = datetime(2024, 6, 10, 9, 30, tzinfo=UTC)  # between the seed's windows of that day
    with seeded.begin() as conn:
        assert upsert_windows(conn, [_window(conn, late, 0.25)], update=False) == (1, 0)
        summary = refresh_rollups(conn)
    assert summary == RefreshSummary(False, ("2024-06",), ("2024-06-10",))
    assert _daily_energy(seeded, "2024-06-10") == pytest.approx(before + 0.25)
    _equals_a_full_rebuild(seeded)


def test_a_window_reloaded_with_changed_energy_dirties_its_day(seeded: Engine) -> None:
    from carbonledger.etl.inference import upsert_windows

    _settle(seeded)
    start = datetime(2024, 6, 3, 6, tzinfo=UTC)  # a seeded window of version 1
    with seeded.connect() as conn:
        (old,) = conn.execute(
            select(InferenceWindow.energy_kwh).where(
                InferenceWindow.run_id == "serve-v1", InferenceWindow.window_start == start
            )
        ).one()
    before = _daily_energy(seeded, "2024-06-03")
    with seeded.begin() as conn:
        assert upsert_windows(conn, [_window(conn, start, old + 1.0)], update=True) == (0, 1)
        summary = refresh_rollups(conn)
    assert summary == RefreshSummary(False, ("2024-06",), ("2024-06-03",))
    assert _daily_energy(seeded, "2024-06-03") == pytest.approx(before + 1.0)
    _equals_a_full_rebuild(seeded)


def test_windows_across_a_month_boundary_refresh_both_days_and_months(seeded: Engine) -> None:
    from carbonledger.etl.inference import upsert_windows

    _settle(seeded)
    last = datetime(2024, 7, 31, 23, 59, tzinfo=UTC)
    with seeded.begin() as conn:
        rows = [_window(conn, last, 0.5), _window(conn, last + timedelta(minutes=1), 0.75)]
        assert upsert_windows(conn, rows, update=False) == (2, 0)
        summary = refresh_rollups(conn)
    assert summary == RefreshSummary(False, ("2024-07", "2024-08"), ("2024-07-31", "2024-08-01"))
    assert _daily_energy(seeded, "2024-07-31") == pytest.approx(0.5)
    assert _daily_energy(seeded, "2024-08-01") == pytest.approx(0.75)
    (august,) = _one(
        seeded,
        "SELECT records FROM rollup_team_month WHERE month = '2024-08' AND activity = 'inference'",
    )
    assert august == 1
    _equals_a_full_rebuild(seeded)


def test_a_factor_change_with_new_windows_still_rebuilds_everything(seeded: Engine) -> None:
    from carbonledger.etl.inference import upsert_windows

    _settle(seeded)
    with seeded.begin() as conn:
        upsert_windows(conn, [_window(conn, datetime(2024, 7, 20, tzinfo=UTC), 0.1)], update=False)
        add_emission_factor(
            conn, zone="DE", year=2024, intensity_g_per_kwh=300.0, source="restated-2024"
        )
        assert refresh_rollups(conn) == RefreshSummary(True, (), ())
    _equals_a_full_rebuild(seeded)
    assert _team_month(seeded) == pytest.approx(_view_team_month(seeded), abs=1e-9)


def _serving_run_with_embodied(engine: Engine) -> None:
    """The seed's serving run of version 1 in the ledger, with an embodied reservation."""
    from carbonledger import contract as c
    from carbonledger.ledger.embodied_models import EmbodiedFactor, RunEmbodied

    with engine.begin() as conn:
        source = conn.execute(text("SELECT MIN(source_id) FROM inference_windows")).scalar()
        start = datetime(2024, 6, 1, tzinfo=UTC)
        run_pk = conn.execute(
            insert(Run)
            .values(
                source_id=source,
                run_id="serve-v1",
                kind="inference",
                status="RUNNING",
                team="nlp",
                start_time=start,
                end_time=start + timedelta(days=20),
                activity_year=2024,
                metering="metered",
                energy_kwh=0.0,
                content_hash="s1",
            )  # fmt: skip
            .returning(Run.id)
        ).scalar_one()
        conn.execute(
            insert(EmbodiedFactor).values(
                factor_key="host-s1",
                version=1,
                embodied_co2e_kg=4000.0,
                method=c.EMBODIED_CCF_INSTANCE,
                source="test",
                relative_uncertainty=0.5,
                uncertainty_key="embodied:ccf",
                content_hash="host-s1",
            )  # fmt: skip
        )
        conn.execute(
            insert(RunEmbodied).values(
                run_pk=run_pk,
                reservation_hash="host-s1",
                factor_key="host-s1",
                resource="vcpu",
                resources_reserved=8,
                resources_host=64,
                duration_s=20 * 86400.0,
                lifetime_years=4.0,
            )  # fmt: skip
        )
        assert refresh_rollups(conn).full  # a new embodied factor


def test_inference_rollups_equal_the_views(seeded: Engine) -> None:
    _serving_run_with_embodied(seeded)
    per_month = (
        "SELECT month, team, SUM(windows), SUM(requests), SUM(energy_kwh), "
        "SUM(facility_energy_kwh), SUM(estimated_facility_energy_kwh), SUM(co2e_location_kg), "
        "SUM(co2e_market_kg), SUM(estimated_co2e_location_kg), SUM(estimated_co2e_market_kg), "
        "SUM(co2e_location_yearly_kg) FROM v_inference_daily GROUP BY month, team"
    )
    rolled = (
        "SELECT month, team, records, requests, energy_kwh, facility_energy_kwh, "
        "estimated_facility_energy_kwh, co2e_location_kg, co2e_market_kg, "
        "estimated_co2e_location_kg, estimated_co2e_market_kg, co2e_location_yearly_kg "
        "FROM rollup_team_month WHERE activity = 'inference'"
    )
    embodied = (
        "SELECT month, COALESCE(team, 'unassigned'), SUM(embodied_co2e_kg) "
        "FROM v_window_embodied GROUP BY 1, 2"
    )
    with seeded.connect() as conn:
        view = {r[:2]: [float(v) for v in r[2:]] for r in conn.execute(text(per_month))}
        got = {r[:2]: [float(v) for v in r[2:]] for r in conn.execute(text(rolled))}
        view_embodied = {r[:2]: float(r[2] or 0.0) for r in conn.execute(text(embodied))}
        got_embodied = {
            r[:2]: r[2]
            for r in conn.execute(
                text(
                    "SELECT month, team, embodied_co2e_kg FROM rollup_team_month "
                    "WHERE activity = 'inference'"
                )
            )
        }
    assert set(got) == set(view) and view
    for key, figures in view.items():
        assert got[key] == pytest.approx(figures, abs=1e-9), key
    assert got_embodied == pytest.approx(view_embodied, abs=1e-9)
    assert sum(got_embodied.values()) > 0


def test_the_window_query_reads_only_the_days_partition(seeded: Engine) -> None:
    """The day's windows and their hours: only that month's partitions, hours by their key."""
    from carbonledger.ledger.partitions import ensure_partitions
    from carbonledger.reporting.rollup_sql import day_ranges
    from carbonledger.reporting.rollup_windows import days_grouped_sql

    if seeded.dialect.name != "postgresql":
        pytest.skip("SQLite has no partitions")
    with seeded.begin() as conn:  # the seed's windows went to the default partition
        ensure_partitions(conn, datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 7, 31, tzinfo=UTC))
        conn.exec_driver_sql("ANALYZE inference_windows")
        conn.exec_driver_sql("ANALYZE activity_energy_hours")
        params: dict = {}
        sql = days_grouped_sql(conn, day_ranges(["2024-06-10"]), params)
        plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {sql}"), params))
    scanned = {name for name in plan.split() if name.startswith("inference_windows_")}
    assert scanned == {"inference_windows_p202406"}, plan
    assert "LATERAL" not in plan and "activity_energy_hours_p202406" in plan, plan


def test_etl_full_rebuilds_the_rollups(ledger: Engine, client, mlflow_uri: str) -> None:  # noqa: ANN001
    """Rollup rows changed behind the refresh's back (as hourly factor rows deleted by hand
    would be: the change check does not count hourly factors) are mended by ``etl --full``,
    which rebuilds every rollup; an incremental pass leaves them (asserted on PostgreSQL)."""
    from cl_ledger_fixtures import make_run, metered_metrics, metered_tags

    from carbonledger.etl import run_etl

    exp = client.create_experiment("reporting-full")
    make_run(client, exp, metrics=metered_metrics(), tags=metered_tags("DE"))
    run_etl(ledger, mlflow_uris=[mlflow_uri])
    right = _team_month(ledger)
    assert right and right == pytest.approx(_view_team_month(ledger), abs=1e-9)
    with ledger.begin() as conn:
        conn.execute(text("UPDATE rollup_team_month SET co2e_location_kg = -1"))
    run_etl(ledger, mlflow_uris=[mlflow_uri])  # incremental: nothing changed, nothing redone
    if ledger.dialect.name == "postgresql":  # (SQLite re-checks the mark's second: 1 s steps)
        assert set(_team_month(ledger).values()) == {-1}
    with ledger.begin() as conn:
        conn.execute(text("UPDATE rollup_team_month SET co2e_location_kg = -1"))
    run_etl(ledger, mlflow_uris=[mlflow_uri], full=True)
    assert _team_month(ledger) == pytest.approx(right, abs=1e-9)


def test_a_new_or_restated_hourly_factor_rebuilds_everything(seeded: Engine) -> None:
    """Hourly factors are not counted by the change check: their highest id must move it."""
    from carbonledger.ledger.hourly_factors import load_hourly_factors, shipped_hourly_frame

    hour = shipped_hourly_frame(["DE"]).head(1)
    with seeded.begin() as conn:
        assert not refresh_rollups(conn).full  # nothing changed since the seed
        load_hourly_factors(conn, frame=hour, source="grid-operator", licence=None)
        assert refresh_rollups(conn).full  # a new hour
        assert not refresh_rollups(conn).full
        restated = hour.assign(intensity_g_per_kwh=hour["intensity_g_per_kwh"] + 1.0)
        assert load_hourly_factors(
            conn, frame=restated, source="grid-operator", licence=None
        ).restated
        assert refresh_rollups(conn).full  # a restated hour
    assert _team_month(seeded) == pytest.approx(_view_team_month(seeded), abs=1e-9)
