"""The analyst views on SQLite and PostgreSQL, against figures computed independently."""

from __future__ import annotations

from collections import defaultdict

import pytest
from expected import rows
from sqlalchemy import Engine, inspect, text

from carbonledger.ledger import lifecycle_runs
from carbonledger.reporting import lifecycle

VIEWS = {
    "v_run_emissions",
    "v_team_monthly",
    "v_model_lifecycle",
    "v_budget_status",
    "v_inference_daily",
    "v_scope2",
}


def _all(engine: Engine, sql: str) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


def test_migration_creates_every_reporting_view(ledger: Engine) -> None:
    assert VIEWS <= set(inspect(ledger).get_view_names())


def test_team_monthly_equals_runs_and_windows_times_factors(seeded: Engine) -> None:
    want: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for r in rows(seeded):
        w = want[(r["month"], r["team"])]
        w[0] += r["loc_kg"]
        w[1] += r["mkt_kg"]
        w[2] += r["loc_kg"] if r["activity"] == "inference" else 0.0
        w[3] += r["est_kg"]
    got = _all(
        seeded,
        "SELECT month, team, co2e_location_kg, co2e_market_kg, inference_co2e_location_kg, "
        "estimated_co2e_location_kg, measured_co2e_location_kg FROM v_team_monthly",
    )
    assert {(g.month, g.team) for g in got} == set(want)
    for g in got:
        w = want[(g.month, g.team)]
        assert (g[2], g[3], g[4], g[5]) == pytest.approx(tuple(w), abs=1e-9)
        assert g.measured_co2e_location_kg == pytest.approx(w[0] - w[3], abs=1e-9)


def test_scope2_shows_both_bases_with_sources(seeded: Engine) -> None:
    got = _all(
        seeded,
        "SELECT zone, market_factor_source, market_instrument, market_is_location_fallback, "
        "SUM(co2e_location_kg), SUM(co2e_market_kg) FROM v_scope2 "
        "GROUP BY zone, market_factor_source, market_instrument, market_is_location_fallback",
    )
    by_zone = {g.zone: g for g in got}
    de = by_zone["DE"]
    assert (de.market_factor_source, de.market_instrument, de.market_is_location_fallback) == (
        "ppa-windpark-2024",
        "PPA",
        0,
    )
    assert de[5] == pytest.approx(de[4] * 30.0 / 380.0)  # same energy, contractual factor
    assert by_zone["FR"].market_is_location_fallback == 1
    assert by_zone["FR"][4] == pytest.approx(by_zone["FR"][5])
    total = sum(r["loc_kg"] for r in rows(seeded))
    assert sum(g[4] for g in got) == pytest.approx(total, abs=1e-9)


def test_model_lifecycle_counts_tagged_and_lineage_runs_once(seeded: Engine) -> None:
    with seeded.connect() as conn:
        ids = set(lifecycle_runs(conn, model_name="bert-qa"))
    want = sum(r["loc_kg"] for r in rows(seeded) if r["run_id"] in ids)
    inference = sum(r["loc_kg"] for r in rows(seeded) if r["activity"] == "inference")
    (got,) = _all(
        seeded,
        "SELECT training_runs, training_co2e_location_kg, inference_co2e_location_kg, "
        "lifecycle_co2e_location_kg, served_versions FROM v_model_lifecycle "
        "WHERE model_name = 'bert-qa'",
    )
    assert got.training_runs == len(ids)
    assert got.training_co2e_location_kg == pytest.approx(want, abs=1e-9)
    assert got.inference_co2e_location_kg == pytest.approx(inference, abs=1e-9)
    assert got.lifecycle_co2e_location_kg == pytest.approx(want + inference, abs=1e-9)
    assert got.served_versions == 2


def test_budget_status_agrees_with_reporting_budgets(seeded: Engine) -> None:
    view = {
        r.budget_id: r
        for r in _all(
            seeded, "SELECT budget_id, used_co2e_kg, used_pct, is_exhausted FROM v_budget_status"
        )
    }
    app = lifecycle.budgets(seeded)
    assert len(app) == len(view) == 2
    for row in app.itertuples():
        assert row.used_co2e_kg == pytest.approx(view[row.budget_id].used_co2e_kg, abs=1e-9)
        assert row.used_pct == pytest.approx(view[row.budget_id].used_pct, abs=1e-9)
    lc = lifecycle.lifecycle(seeded, model_name="bert-qa")
    model_row = app[app.scope == "model"].iloc[0]
    assert model_row.used_co2e_kg == pytest.approx(lc.co2e_kg)
    assert view[int(model_row.budget_id)].is_exhausted == (lc.co2e_kg >= 40.0)
    assert (model_row.status == "exceeded") == (lc.co2e_kg >= 40.0)


def test_inference_daily_per_1000_requests(seeded: Engine) -> None:
    got = _all(
        seeded,
        "SELECT day, requests, co2e_location_kg, co2e_location_kg_per_1000_requests "
        "FROM v_inference_daily WHERE requests > 0",
    )
    assert got
    for g in got:
        assert g[3] == pytest.approx(1000.0 * g.co2e_location_kg / g.requests)


def test_model_lifecycle_agrees_with_the_budgets_package(seeded: Engine) -> None:
    from carbonledger.budgets.lifecycle import model_lifecycle

    for basis in ("location", "market"):
        for model in ("bert-qa", "resnet-prod"):
            with seeded.connect() as conn:
                theirs = model_lifecycle(conn, model_name=model, basis=basis)
            (ours,) = _all(
                seeded,
                f"SELECT training_runs, training_co2e_{basis}_kg, inference_co2e_{basis}_kg, "
                f"inference_requests FROM v_model_lifecycle WHERE model_name = '{model}'",
            )
            assert ours.training_runs == theirs.training_runs
            assert ours[1] == pytest.approx(theirs.training_co2e_kg, abs=1e-9)
            assert ours[2] == pytest.approx(theirs.inference_co2e_kg, abs=1e-9)
            assert ours.inference_requests == theirs.inference_requests
            app = lifecycle.lifecycle(seeded, model_name=model, basis=basis)
            assert app.co2e_kg == pytest.approx(theirs.training_co2e_kg + theirs.inference_co2e_kg)


def test_model_page_queries_on_both_databases(seeded: Engine) -> None:
    per = lifecycle.per_1000_requests(seeded, model_name="bert-qa")
    row = per[per.requests > 0].iloc[0]
    assert row.co2e_g_per_1000_requests == pytest.approx(row.co2e_location_kg * 1e6 / row.requests)
    versions = lifecycle.versions(seeded, model_name="bert-qa")
    assert versions.version.tolist() == [1, 2]
    assert int(versions.inference_requests.sum()) == int(per.requests.sum())
    monthly = lifecycle.lifecycle_by_month(seeded, model_name="bert-qa")
    total = lifecycle.lifecycle(seeded, model_name="bert-qa").co2e_kg
    assert monthly.cumulative_co2e_location_kg.iloc[-1] == pytest.approx(total)
