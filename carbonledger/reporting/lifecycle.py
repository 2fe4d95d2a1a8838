"""A registered model's lifecycle: training vs cumulative inference, budget burn-down, versions.

Read from the rollups (``rollup_model_month``, ``rollup_inference_daily``); the same figures
as ``v_model_lifecycle`` and ``v_budget_status`` (tests check they agree).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Engine

from carbonledger.reporting.db import frame
from carbonledger.reporting.periods import Period

DEFAULT_THRESHOLDS_PCT = (50.0, 75.0, 90.0, 100.0)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Lifecycle totals of one model (kg CO2e, location-based unless named market)."""

    model_name: str
    training_runs: int
    training_co2e_location_kg: float
    training_co2e_market_kg: float
    inference_requests: int
    inference_co2e_location_kg: float
    inference_co2e_market_kg: float

    @property
    def co2e_location_kg(self) -> float:
        """Training + inference, location-based."""
        return self.training_co2e_location_kg + self.inference_co2e_location_kg

    @property
    def co2e_market_kg(self) -> float:
        """Training + inference, market-based."""
        return self.training_co2e_market_kg + self.inference_co2e_market_kg


def lifecycle(engine: Engine, *, model_name: str) -> Lifecycle:
    """All-time lifecycle totals of ``model_name``."""
    t = frame(
        engine,
        "SELECT COALESCE(SUM(runs), 0) AS runs, COALESCE(SUM(co2e_location_kg), 0) AS loc_kg, "
        "COALESCE(SUM(co2e_market_kg), 0) AS mkt_kg FROM rollup_model_month "
        "WHERE model_name = :model",
        model=model_name,
    ).iloc[0]
    i = frame(
        engine,
        "SELECT COALESCE(SUM(requests), 0) AS requests, "
        "COALESCE(SUM(co2e_location_kg), 0) AS loc_kg, COALESCE(SUM(co2e_market_kg), 0) AS mkt_kg "
        "FROM rollup_inference_daily WHERE model_name = :model",
        model=model_name,
    ).iloc[0]
    return Lifecycle(
        model_name,
        int(t.runs),
        float(t.loc_kg),
        float(t.mkt_kg),
        int(i.requests),
        float(i.loc_kg),
        float(i.mkt_kg),
    )


def lifecycle_by_month(engine: Engine, *, model_name: str) -> pd.DataFrame:
    """Training and inference CO2e per month, with the cumulative lifecycle total."""
    df = frame(
        engine,
        "SELECT month, 'training' AS activity, SUM(co2e_location_kg) AS co2e_location_kg, "
        "SUM(co2e_market_kg) AS co2e_market_kg FROM rollup_model_month "
        "WHERE model_name = :model GROUP BY month UNION ALL "
        "SELECT month, 'inference', SUM(co2e_location_kg), SUM(co2e_market_kg) "
        "FROM rollup_inference_daily WHERE model_name = :model GROUP BY month "
        "ORDER BY 1, 2",
        model=model_name,
    )
    if df.empty:
        return df.assign(cumulative_co2e_location_kg=[], cumulative_co2e_market_kg=[])
    wide = df.pivot_table(
        index="month", columns="activity", values="co2e_location_kg", aggfunc="sum"
    ).fillna(0.0)
    for col in ("training", "inference"):
        if col not in wide:
            wide[col] = 0.0
    market = df.groupby("month")["co2e_market_kg"].sum()
    out = pd.DataFrame(
        {
            "month": wide.index,
            "training_co2e_location_kg": wide["training"].to_numpy(),
            "inference_co2e_location_kg": wide["inference"].to_numpy(),
            "co2e_market_kg": market.reindex(wide.index).to_numpy(),
        }
    )
    out["co2e_location_kg"] = out.training_co2e_location_kg + out.inference_co2e_location_kg
    out["cumulative_co2e_location_kg"] = out.co2e_location_kg.cumsum()
    out["cumulative_co2e_market_kg"] = out.co2e_market_kg.cumsum()
    return out.reset_index(drop=True)


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
        (kg * 1e6 / r) if r else None
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
    engine: Engine, *, team: str | None = None, model_name: str | None = None
) -> pd.DataFrame:
    """Budgets with what their scope used (rollups), as ``v_budget_status`` computes it."""
    df = frame(
        engine,
        "SELECT id AS budget_id, scope, scope_name, period, basis, limit_co2e_kg, "
        "thresholds_pct FROM budgets WHERE (CAST(:team AS VARCHAR(500)) IS NULL OR "
        "(scope = 'team' AND scope_name = :team)) AND (CAST(:model AS VARCHAR(500)) IS NULL OR "
        "(scope = 'model' AND scope_name = :model)) ORDER BY scope, scope_name, period",
        team=team,
        model=model_name,
    )
    df["thresholds_pct"] = [
        [float(x) for x in (json.loads(v) if isinstance(v, str) else v or DEFAULT_THRESHOLDS_PCT)]
        for v in df["thresholds_pct"]
    ]
    used, starts = [], []
    for row in df.itertuples():
        start = period_start_month(row.period, date.today())
        starts.append(start)
        if row.scope == "model":
            lc = lifecycle(engine, model_name=row.scope_name)
            used.append(lc.co2e_market_kg if row.basis == "market" else lc.co2e_location_kg)
        else:
            col = "co2e_market_kg" if row.basis == "market" else "co2e_location_kg"
            used.append(
                float(
                    frame(
                        engine,
                        f"SELECT COALESCE(SUM({col}), 0) AS kg FROM rollup_team_month "
                        "WHERE team = :team AND month >= :first AND month <= :last",
                        team=row.scope_name,
                        first=start,
                        last=date.today().strftime("%Y-%m"),
                    ).kg.iloc[0]
                )
            )
    df["period_start_month"] = starts
    df["used_co2e_kg"] = used
    df["used_pct"] = 100.0 * df["used_co2e_kg"] / df["limit_co2e_kg"] if len(df) else []
    return df


def period_start_month(period: str, today: date) -> str | None:
    """First month of a team budget's current period (``None`` for a lifecycle budget)."""
    if period == "month":
        return today.strftime("%Y-%m")
    if period == "quarter":
        return f"{today.year}-{((today.month - 1) // 3) * 3 + 1:02d}"
    if period == "year":
        return f"{today.year}-01"
    return None


def projected_exhaustion(
    monthly: pd.DataFrame, *, limit_co2e_kg: float, trailing_months: int = 3
) -> date | None:
    """Date the budget runs out at the trailing burn rate (``None``: no burn, or never).

    Args:
        monthly: ``lifecycle_by_month`` output (``month``, ``co2e_location_kg``).
        limit_co2e_kg: the budget.
        trailing_months: how many of the latest months set the burn rate.
    """
    if monthly.empty:
        return None
    used = float(monthly.co2e_location_kg.sum())
    last = monthly.tail(trailing_months)
    rate_kg_per_day = float(last.co2e_location_kg.sum()) / (30.4375 * len(last))
    last_month = str(monthly.month.iloc[-1])
    end_of_data = date(int(last_month[:4]), int(last_month[5:7]), 28) + timedelta(days=4)
    end_of_data = end_of_data.replace(day=1)
    if used >= limit_co2e_kg:
        return end_of_data  # already spent by the end of the data
    if rate_kg_per_day <= 0:
        return None
    return end_of_data + timedelta(days=(limit_co2e_kg - used) / rate_kg_per_day)
