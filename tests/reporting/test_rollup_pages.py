"""The pages' rollup-backed budget and lifecycle figures equal the views' on the seeded ledger.

The app and the report read budgets and lifecycles through the rollups
(``evaluate_budgets(source="rollups")``, ``budgets.lifecycle_rollups``); ``budgets check``
and ``budgets lifecycle`` read the views. Both must give the same figures at any evaluation
time: on month and day boundaries, mid-day (the burn window's ragged edges), with a serving
window without a team and a run without a start time (folded differently by the rollups).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from seed import MODELS, TEAMS
from sqlalchemy import Engine, insert, select, text

from carbonledger.budgets import (
    evaluate_budgets,
    lifecycle_rollups,
    lifecycle_timeline,
    model_lifecycle,
)
from carbonledger.budgets.lifecycle import Basis
from carbonledger.budgets.usage import split_range
from carbonledger.ledger.models import Budget, InferenceWindow, Run, TrackingSource
from carbonledger.reporting import embodied, lifecycle, reporting_engine
from carbonledger.reporting.rollups import refresh_rollups

REL = 1e-9
NOWS = (
    datetime(2024, 6, 15, 13, 37, 11, tzinfo=UTC),  # mid-day: both burn edges partial
    datetime(2024, 7, 10, 6, 0, tzinfo=UTC),  # on a window's start (excluded)
    datetime(2024, 7, 1, tzinfo=UTC),  # on a month boundary
    datetime(2024, 9, 30, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 12, 31, 12, tzinfo=UTC),  # quarter without activity
)


@pytest.fixture
def ledger_with_edges(seeded: Engine) -> Engine:
    """The seed plus what the rollups fold apart: a team-less window, a run without a start,
    and budgets on every team and model, each period and basis."""
    with seeded.begin() as conn:
        source_id = conn.execute(select(TrackingSource.id)).scalar_one()
        conn.execute(
            insert(InferenceWindow),
            [
                {
                    "source_id": source_id,
                    "run_id": "serve-anon",
                    "model_name": "bert-qa",
                    "model_version": 1,
                    "team": None,
                    "window_start": t,
                    "window_end": t + timedelta(minutes=1),
                    "activity_year": 2024,
                    "requests": 40,
                    "energy_kwh": 0.25,
                    "pue": 1.2,
                    "facility_energy_kwh": 0.3,
                    "grid_zone": "DE",
                }
                for t in (
                    datetime(2024, 6, 15, 3, tzinfo=UTC),
                    datetime(2024, 6, 20, 9, tzinfo=UTC),
                )
            ],
        )
        conn.execute(
            insert(Run).values(
                source_id=source_id,
                run_id="run-no-start",
                experiment_id="1",
                kind="training",
                status="FINISHED",
                activity_year=2024,
                team="vision",
                model_name="resnet-prod",
                grid_zone="FR",
                metering="metered",
                any_component_estimated=False,
                energy_kwh=3.0,
                pue=1.2,
                facility_energy_kwh=3.6,
                content_hash="no-start",
            )
        )
        existing = {(b.scope, b.scope_name) for b in conn.execute(select(Budget))}
        rows = []
        for i, team in enumerate((*TEAMS, "unassigned")):
            for j, period in enumerate(("month", "quarter", "year")):
                if ("team", team) not in existing or period != "year":
                    rows.append(
                        {
                            "scope": "team",
                            "scope_name": team,
                            "period": period,
                            "limit_co2e_kg": 5.0 + 40.0 * j,
                            "basis": "market" if (i + j) % 2 else "location",
                        }
                    )
        for i, model in enumerate(MODELS):
            if ("model", model) not in existing:
                rows.append(
                    {
                        "scope": "model",
                        "scope_name": model,
                        "period": "lifecycle",
                        "limit_co2e_kg": 30.0,
                        "basis": "market" if i % 2 else "location",
                    }
                )
        conn.execute(insert(Budget), rows)
        refresh_rollups(conn)
    return seeded


def _same_status(a, b) -> None:  # noqa: ANN001
    assert a.budget == b.budget
    assert (a.period_start, a.period_end) == (b.period_start, b.period_end)
    assert a.training_co2e_kg == pytest.approx(b.training_co2e_kg, rel=REL, abs=1e-12)
    assert a.inference_co2e_kg == pytest.approx(b.inference_co2e_kg, rel=REL, abs=1e-12)
    assert a.burn_rate_kg_per_day == pytest.approx(b.burn_rate_kg_per_day, rel=REL, abs=1e-12)
    assert (a.status, a.crossed_pct, a.projection) == (b.status, b.crossed_pct, b.projection)


@pytest.mark.parametrize("now", NOWS, ids=lambda t: t.isoformat())
def test_budgets_from_rollups_equal_the_views(ledger_with_edges: Engine, now: datetime) -> None:
    with ledger_with_edges.connect() as conn:
        views = evaluate_budgets(conn, now=now)
        rollups = evaluate_budgets(conn, now=now, source="rollups")
    assert len(views) == len(rollups) == 15
    for a, b in zip(rollups, views, strict=True):
        _same_status(a, b)
    if now == NOWS[0]:  # the seeded figures are not all zero: the comparison bites
        assert sum(s.used_co2e_kg for s in views) > 1.0
        assert any(s.burn_rate_kg_per_day > 0 for s in views if s.budget.scope == "team")
        with ledger_with_edges.connect() as conn:  # the rollups charge it to "unassigned"
            anon = conn.execute(
                text("SELECT SUM(windows) FROM rollup_inference_daily WHERE team = 'unassigned'")
            ).scalar()
        assert anon == 2


def test_budgets_page_table_equals_the_gate(ledger_with_edges: Engine) -> None:
    now = NOWS[0]
    with ledger_with_edges.connect() as conn:
        gate = {s.budget.id: s for s in evaluate_budgets(conn, now=now)}
    engine = reporting_engine(ledger_with_edges.url.render_as_string(hide_password=False))
    try:
        for kwargs in ({}, {"team": "nlp"}, {"model_name": "bert-qa"}):
            table = lifecycle.budgets(engine, now=now, **kwargs)
            assert len(table) > 0
            for row in table.itertuples():
                s = gate[row.budget_id]
                assert row.used_co2e_kg == pytest.approx(s.used_co2e_kg, rel=REL, abs=1e-12)
                assert row.burn_rate_kg_per_day == pytest.approx(
                    s.burn_rate_kg_per_day, rel=REL, abs=1e-12
                )
                assert (row.status, row.projected_exhaustion) == (s.status, s.projection)
            if kwargs:
                assert set(table.scope_name) == set(kwargs.values())
    finally:
        engine.dispose()


@pytest.mark.parametrize("basis", ["location", "market"])
def test_lifecycle_from_rollups_equals_the_views(ledger_with_edges: Engine, basis: Basis) -> None:
    with ledger_with_edges.connect() as conn:
        for model in (*MODELS, "no-such-model"):
            view = model_lifecycle(conn, model_name=model, basis=basis)
            rolled = lifecycle_rollups.model_lifecycle(
                conn,
                model_name=model,
                basis=basis,
            )
            for name in view.__slots__:
                a, b = getattr(rolled, name), getattr(view, name)
                assert a == (pytest.approx(b, rel=REL) if isinstance(b, float) else b), name
            v_points = lifecycle_timeline(conn, model_name=model, basis=basis, bucket="month")
            r_points = lifecycle_rollups.lifecycle_by_month(conn, model_name=model, basis=basis)
            assert [p.period for p in r_points] == [p.period for p in v_points]
            for a, b in zip(r_points, v_points, strict=True):
                assert a.requests == b.requests
                assert a.training_co2e_kg == pytest.approx(b.training_co2e_kg, rel=REL)
                assert a.inference_co2e_kg == pytest.approx(b.inference_co2e_kg, rel=REL)
                assert a.cumulative_co2e_kg == pytest.approx(b.cumulative_co2e_kg, rel=REL)
        bert = lifecycle_rollups.model_lifecycle(conn, model_name="bert-qa")
        assert bert.inference_windows > 0 and bert.training_runs > 0
        assert lifecycle_rollups.model_lifecycle(conn, model_name="resnet-prod").training_runs


def test_split_range_covers_the_range_once() -> None:
    t = datetime(2024, 5, 16, 13, 37, tzinfo=UTC)
    whole, edges = split_range(t, t + timedelta(days=30), "month")
    assert whole is None and edges == [(t, t + timedelta(days=30))]
    whole, edges = split_range(t, t + timedelta(days=30), "day")
    assert whole == (datetime(2024, 5, 17, tzinfo=UTC), datetime(2024, 6, 15, tzinfo=UTC))
    assert edges == [
        (t, datetime(2024, 5, 17, tzinfo=UTC)),
        (datetime(2024, 6, 15, tzinfo=UTC), t + timedelta(days=30)),
    ]
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    assert split_range(start, end, "month") == ((start, end), [])
    assert split_range(None, None, "day") == ((None, None), [])
    assert split_range(t, t, "day") == (None, [])


def test_sci_of_one_model_equals_v_sci(ledger_with_edges: Engine) -> None:
    engine = reporting_engine(ledger_with_edges.url.render_as_string(hide_password=False))
    try:
        every = embodied.sci_by_version(engine)
        for model in (*MODELS, "no-such-model"):
            mine = embodied.sci_by_version(engine, model_name=model)
            view = every[every.model_name == model]
            assert list(mine.columns) == list(every.columns)
            assert len(mine) == len(view)
            expected = {r.model_version: r for r in view.itertuples()}
            for r in mine.itertuples():
                v = expected[r.model_version]
                assert (r.requests, r.windows) == (v.requests, v.windows)
                assert r.windows_without_embodied == v.windows_without_embodied
                for column in ("operational_co2e_kg", "embodied_co2e_kg", "sci_co2e_g_per_request"):
                    assert getattr(r, column) == pytest.approx(getattr(v, column), rel=REL)
        assert len(embodied.sci_by_version(engine, model_name="bert-qa")) == 2
    finally:
        engine.dispose()
