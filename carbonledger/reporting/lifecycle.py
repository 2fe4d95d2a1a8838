"""A registered model's lifecycle for the app and the report, read from the rollups.

Totals, the month-by-month timeline and budgets are the budget gate's figures
(``carbonledger.budgets``: the training runs of ``v_lifecycle_runs``, the one lifecycle
definition, plus every version's serving; ``evaluate_budgets`` for usage, thresholds and
projected exhaustion), read through ``budgets.lifecycle_rollups`` and
``evaluate_budgets(source="rollups")``: whole months and days from the rollups, the rest from
the views with selective predicates. The Models page, the report and ``budgets check`` show
the same figures (tests/reporting/test_rollup_pages.py). Per-request figures and versions
are read from the rollups.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine

from carbonledger.budgets import lifecycle_rollups
from carbonledger.budgets.definitions import list_budgets
from carbonledger.budgets.evaluate import evaluate_budgets
from carbonledger.budgets.lifecycle import Basis, Lifecycle
from carbonledger.contract import G_PER_KG
from carbonledger.reporting.db import check_params, frame
from carbonledger.reporting.periods import Period

BUDGET_COLUMNS = (
    "budget_id",
    "scope",
    "scope_name",
    "period",
    "basis",
    "limit_co2e_kg",
    "thresholds_pct",
    "period_start",
    "training_co2e_kg",
    "inference_co2e_kg",
    "used_co2e_kg",
    "used_pct",
    "remaining_co2e_kg",
    "status",
    "burn_rate_kg_per_day",
    "projected_exhaustion",
)


def lifecycle(engine: Engine, *, model_name: str, basis: Basis = "location") -> Lifecycle:
    """All-time lifecycle totals of ``model_name`` (what ``budgets lifecycle`` prints)."""
    check_params({"model_name": model_name})
    with engine.connect() as conn:
        return lifecycle_rollups.model_lifecycle(conn, model_name=model_name, basis=basis)


def lifecycle_by_month(engine: Engine, *, model_name: str) -> pd.DataFrame:
    """Training and inference CO2e per month with the running lifecycle total (both bases)."""
    check_params({"model_name": model_name})
    with engine.connect() as conn:
        loc = lifecycle_rollups.lifecycle_by_month(conn, model_name=model_name, basis="location")
        mkt = lifecycle_rollups.lifecycle_by_month(conn, model_name=model_name, basis="market")
    market = {p.period: p for p in mkt}
    return pd.DataFrame(
        [
            {
                "month": p.period,
                "training_co2e_location_kg": p.training_co2e_kg,
                "inference_co2e_location_kg": p.inference_co2e_kg,
                "co2e_location_kg": p.training_co2e_kg + p.inference_co2e_kg,
                "co2e_market_kg": market[p.period].training_co2e_kg
                + market[p.period].inference_co2e_kg,
                "requests": p.requests,
                "cumulative_co2e_location_kg": p.cumulative_co2e_kg,
                "cumulative_co2e_market_kg": market[p.period].cumulative_co2e_kg,
            }
            for p in loc
        ],
        columns=[
            "month",
            "training_co2e_location_kg",
            "inference_co2e_location_kg",
            "co2e_location_kg",
            "co2e_market_kg",
            "requests",
            "cumulative_co2e_location_kg",
            "cumulative_co2e_market_kg",
        ],
    )


def per_1000_requests(
    engine: Engine, *, model_name: str, period: Period | None = None
) -> pd.DataFrame:
    """Inference CO2e per 1,000 requests per day and version (idle energy included)."""
    where = "model_name = :model"
    params: dict[str, object] = {"model": model_name}
    if period is not None:
        where += " AND month >= :first AND month <= :last"
        params.update(first=period.first_month, last=period.last_month)
    df = frame(
        engine,
        "SELECT day, model_version, CAST(SUM(requests) AS BIGINT) AS requests, "
        "SUM(facility_energy_kwh) AS facility_energy_kwh, "
        "SUM(co2e_location_kg) AS co2e_location_kg FROM rollup_inference_daily "
        f"WHERE {where} GROUP BY day, model_version ORDER BY day, model_version",
        **params,
    )
    df["co2e_g_per_1000_requests"] = [
        (kg * G_PER_KG * 1000.0 / r) if r else None
        for kg, r in zip(df.co2e_location_kg, df.requests, strict=True)
    ]
    return df


def versions(engine: Engine, *, model_name: str) -> pd.DataFrame:
    """Versions of the model with the run that produced each and its served inference."""
    return frame(
        engine,
        "SELECT mv.version, mv.run_id, mv.created_at, mv.lineage, "
        "COALESCE(i.requests, 0) AS inference_requests, "
        "COALESCE(i.co2e_location_kg, 0) AS inference_co2e_location_kg "
        "FROM model_versions mv JOIN registered_models rm ON rm.id = mv.registered_model_id "
        "LEFT JOIN (SELECT model_version, CAST(SUM(requests) AS BIGINT) AS requests, "
        "SUM(co2e_location_kg) AS co2e_location_kg FROM rollup_inference_daily "
        "WHERE model_name = :model GROUP BY model_version) i ON i.model_version = mv.version "
        "WHERE rm.name = :model ORDER BY mv.version",
        model=model_name,
    )


def budgets(
    engine: Engine,
    *,
    team: str | None = None,
    model_name: str | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Every budget (or a team's or a model's) as ``budgets check`` evaluates it at ``now``."""
    check_params({"team": team, "model_name": model_name})
    with engine.connect() as conn:
        chosen = [
            b
            for b in list_budgets(conn)
            if (team is None or (b.scope == "team" and b.scope_name == team))
            and (model_name is None or (b.scope == "model" and b.scope_name == model_name))
        ]
        statuses = evaluate_budgets(
            conn, now=now or datetime.now(UTC), budgets=chosen, source="rollups"
        )
    rows = []
    for s in statuses:
        b = s.budget
        rows.append(
            {
                "budget_id": b.id,
                "scope": b.scope,
                "scope_name": b.scope_name,
                "period": b.period,
                "basis": b.basis,
                "limit_co2e_kg": b.limit_co2e_kg,
                "thresholds_pct": list(b.thresholds_pct),
                "period_start": s.period_start.date().isoformat() if s.period_start else None,
                "training_co2e_kg": s.training_co2e_kg,
                "inference_co2e_kg": s.inference_co2e_kg,
                "used_co2e_kg": s.used_co2e_kg,
                "used_pct": s.used_pct,
                "remaining_co2e_kg": s.remaining_co2e_kg,
                "status": s.status,
                "burn_rate_kg_per_day": s.burn_rate_kg_per_day,
                "projected_exhaustion": s.projection,
            }
        )
    return pd.DataFrame(rows, columns=list(BUDGET_COLUMNS))
