"""Evaluating budgets: what each scope used, thresholds, status and projected exhaustion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from budget_helpers import NOW, add_run, add_window
from sqlalchemy import Engine

from carbonledger.budgets import (
    NOT_AT_THIS_RATE,
    evaluate_budgets,
    exit_code,
    make_spec,
    period_bounds,
    set_budget,
)
from carbonledger.ledger import add_emission_factor

KG_PER_KWH = 0.380  # DE 2024


def test_periods_are_utc_month_quarter_year_and_lifecycle_has_none() -> None:
    when = datetime(2024, 11, 20, 23, tzinfo=UTC)
    assert period_bounds("month", when) == (
        datetime(2024, 11, 1, tzinfo=UTC),
        datetime(2024, 12, 1, tzinfo=UTC),
    )
    assert period_bounds("quarter", when) == (
        datetime(2024, 10, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert period_bounds("year", when)[1] == datetime(2025, 1, 1, tzinfo=UTC)
    assert period_bounds("lifecycle", when) == (None, None)


def test_a_model_budget_counts_its_whole_lifecycle_and_crossed_thresholds(ledger: Engine) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=datetime(2024, 1, 5, tzinfo=UTC), model="fraud")
        add_run(conn, facility_kwh=50.0, start=NOW - timedelta(days=10), model="fraud")
        add_window(conn, facility_kwh=60.0, start=NOW - timedelta(days=1))
        add_run(conn, facility_kwh=999.0, start=NOW, model="other")
        set_budget(conn, spec=make_spec(model="fraud", limit_co2e_kg=100.0))
        [s] = evaluate_budgets(conn, now=NOW)

    assert s.training_co2e_kg == pytest.approx(150 * KG_PER_KWH)
    assert s.inference_co2e_kg == pytest.approx(60 * KG_PER_KWH)
    assert s.used_pct == pytest.approx(210 * KG_PER_KWH)  # 79.8% of 100 kg
    assert s.crossed_pct == (50.0, 75.0) and s.status == "warning"
    assert exit_code([s]) == 1
    # the trailing 30 days burned 110 kWh: 41.8 kg, 1.393 kg/day; 20.2 kg left -> 14.5 days
    assert s.burn_rate_kg_per_day == pytest.approx(110 * KG_PER_KWH / 30)
    expected = NOW + timedelta(days=(100 - 210 * KG_PER_KWH) / (110 * KG_PER_KWH / 30))
    assert s.projected_exhaustion == expected
    assert s.projection == expected.date().isoformat()


def test_a_team_budget_counts_its_period_only_training_and_inference(ledger: Engine) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=10.0, start=datetime(2024, 6, 1, tzinfo=UTC))
        add_run(conn, facility_kwh=20.0, start=datetime(2024, 5, 31, 23, 59, tzinfo=UTC))
        add_run(conn, facility_kwh=40.0, start=datetime(2024, 4, 2, tzinfo=UTC))
        add_run(conn, facility_kwh=80.0, start=datetime(2024, 6, 2, tzinfo=UTC), team="nlp")
        add_run(conn, facility_kwh=5.0, start=datetime(2024, 6, 3, tzinfo=UTC), kind="inference")
        add_window(conn, facility_kwh=1.0, start=datetime(2024, 6, 4, tzinfo=UTC))
        for period in ("month", "quarter", "year"):
            set_budget(conn, spec=make_spec(team="vision", period=period, limit_co2e_kg=1000))
        by_period = {s.budget.period: s for s in evaluate_budgets(conn, now=NOW)}

    assert by_period["month"].used_co2e_kg == pytest.approx(11 * KG_PER_KWH)
    assert by_period["quarter"].used_co2e_kg == pytest.approx(71 * KG_PER_KWH)
    assert by_period["year"].used_co2e_kg == pytest.approx(71 * KG_PER_KWH)
    assert by_period["month"].inference_co2e_kg == pytest.approx(KG_PER_KWH)
    assert by_period["month"].period_start == datetime(2024, 6, 1, tzinfo=UTC)
    assert all(s.status == "ok" for s in by_period.values())


def test_exceeded_budgets_and_the_ci_exit_codes(ledger: Engine) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=NOW, model="a")  # 38 kg
        add_run(conn, facility_kwh=100.0, start=NOW, model="b")
        set_budget(conn, spec=make_spec(model="a", limit_co2e_kg=38.0))  # exactly spent
        set_budget(conn, spec=make_spec(model="b", limit_co2e_kg=1000.0))
        a, b = evaluate_budgets(conn, now=NOW)

    assert a.status == "exceeded" and a.projection == "exceeded" and a.remaining_co2e_kg <= 1e-9
    assert b.status == "ok" and b.crossed_pct == ()
    assert (exit_code([b]), exit_code([a, b]), exit_code([])) == (0, 2, 0)


def test_no_burn_or_a_date_past_the_period_is_not_at_this_rate(ledger: Engine) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=NOW - timedelta(days=60), model="old")
        add_run(conn, facility_kwh=10.0, start=datetime(2024, 6, 1, tzinfo=UTC), team="slow")
        set_budget(conn, spec=make_spec(model="old", limit_co2e_kg=1000.0))
        set_budget(conn, spec=make_spec(team="slow", period="month", limit_co2e_kg=100.0))
        old, slow = evaluate_budgets(conn, now=NOW)

    assert old.burn_rate_kg_per_day == 0.0 and old.projection == NOT_AT_THIS_RATE
    # 3.8 kg in June at 0.127 kg/day: 96.2 kg left would take two years, June ends first
    assert slow.burn_rate_kg_per_day > 0 and slow.projection == NOT_AT_THIS_RATE


def test_market_based_budgets_use_the_contractual_factor(ledger: Engine) -> None:
    with ledger.begin() as conn:
        add_emission_factor(
            conn, zone="DE", year=2024, intensity_g_per_kwh=20.0, source="ppa", basis="market"
        )
        add_run(conn, facility_kwh=100.0, start=NOW, model="green")
        set_budget(conn, spec=make_spec(model="green", limit_co2e_kg=10.0, basis="market"))
        set_budget(conn, spec=make_spec(team="vision", period="year", limit_co2e_kg=10.0))
        green, team = evaluate_budgets(conn, now=NOW)

    assert green.used_co2e_kg == pytest.approx(2.0) and green.crossed_pct == ()
    assert team.used_co2e_kg == pytest.approx(38.0) and team.status == "exceeded"


def test_custom_thresholds(ledger: Engine) -> None:
    with ledger.begin() as conn:
        add_run(conn, facility_kwh=100.0, start=NOW, model="m")  # 38 kg
        set_budget(conn, spec=make_spec(model="m", limit_co2e_kg=40.0, thresholds_pct="80,95"))
        [s] = evaluate_budgets(conn, now=NOW)
    assert s.crossed_pct == (80.0, 95.0) and s.status == "warning"
