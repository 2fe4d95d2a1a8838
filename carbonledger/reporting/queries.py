"""Organisation and team figures for a period, read from the rollups.

Every function takes the engine and keyword filters (a :class:`Period`, optional team) and
returns plain numbers or a DataFrame with unit-suffixed columns; the app and the period
report call the same functions, so they agree to the gram.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from carbonledger.reporting.db import frame
from carbonledger.reporting.periods import Period
from carbonledger.reporting.rollups import weighted_intensity_sql

_TEAM = "(CAST(:team AS VARCHAR(200)) IS NULL OR team = :team)"


@dataclass(frozen=True, slots=True)
class Totals:
    """Organisation (or team) totals of a period; masses in kg CO2e, energy in kWh."""

    co2e_location_kg: float
    co2e_market_kg: float
    facility_energy_kwh: float
    training_co2e_location_kg: float
    inference_co2e_location_kg: float
    measured_co2e_location_kg: float
    estimated_co2e_location_kg: float
    training_runs: int
    runs_with_estimates: int
    inference_requests: int

    @property
    def estimated_share(self) -> float:
        """Share (0..1) of location-based CO2e from estimated components (energy-weighted)."""
        return _share(self.estimated_co2e_location_kg, self.co2e_location_kg)

    @property
    def inference_share(self) -> float:
        """Share (0..1) of location-based CO2e that comes from inference."""
        return _share(self.inference_co2e_location_kg, self.co2e_location_kg)


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _window(period: Period, team: str | None) -> dict[str, Any]:
    return {"first": period.first_month, "last": period.last_month, "team": team}


def filter_options(engine: Engine) -> dict[str, list[str]]:
    """Months, teams and models present in the ledger (for the app's filters)."""
    months = frame(
        engine,
        "SELECT DISTINCT month FROM rollup_team_month UNION "
        "SELECT DISTINCT month FROM rollup_inference_daily ORDER BY 1",
    )
    teams = frame(
        engine,
        "SELECT DISTINCT team FROM rollup_team_month UNION "
        "SELECT DISTINCT team FROM rollup_inference_daily ORDER BY 1",
    )
    models = frame(
        engine,
        "SELECT DISTINCT model_name FROM rollup_model_month UNION "
        "SELECT DISTINCT model_name FROM rollup_inference_daily ORDER BY 1",
    )
    return {
        "months": months.iloc[:, 0].tolist() if len(months) else [],
        "teams": teams.iloc[:, 0].tolist() if len(teams) else [],
        "models": models.iloc[:, 0].tolist() if len(models) else [],
    }


def totals(engine: Engine, *, period: Period, team: str | None = None) -> Totals:
    """Totals of the period for the organisation, or one team."""
    df = frame(
        engine,
        "SELECT activity, SUM(records) AS records, "
        "SUM(records_with_estimates) AS records_with_estimates, "
        "CAST(SUM(requests) AS BIGINT) AS requests, "
        "SUM(facility_energy_kwh) AS facility_energy_kwh, "
        "SUM(co2e_location_kg) AS co2e_location_kg, SUM(co2e_market_kg) AS co2e_market_kg, "
        "SUM(estimated_co2e_location_kg) AS estimated_co2e_location_kg "
        f"FROM rollup_team_month WHERE month >= :first AND month <= :last AND {_TEAM} "
        "GROUP BY activity",
        **_window(period, team),
    )
    if df.empty:
        return Totals(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0)
    training = df[df.activity == "training"]
    location = float(df.co2e_location_kg.sum())
    estimated = float(df.estimated_co2e_location_kg.sum())
    return Totals(
        co2e_location_kg=location,
        co2e_market_kg=float(df.co2e_market_kg.sum()),
        facility_energy_kwh=float(df.facility_energy_kwh.sum()),
        training_co2e_location_kg=float(training.co2e_location_kg.sum()),
        inference_co2e_location_kg=float(df[df.activity == "inference"].co2e_location_kg.sum()),
        measured_co2e_location_kg=location - estimated,
        estimated_co2e_location_kg=estimated,
        training_runs=int(training.records.sum()),
        runs_with_estimates=int(training.records_with_estimates.sum()),
        inference_requests=int(df.requests.sum()),
    )


def monthly_trend(engine: Engine, *, period: Period, team: str | None = None) -> pd.DataFrame:
    """CO2e per month and activity (training / inference), both Scope 2 bases."""
    return frame(
        engine,
        "SELECT month, activity, SUM(facility_energy_kwh) AS facility_energy_kwh, "
        "SUM(co2e_location_kg) AS co2e_location_kg, SUM(co2e_market_kg) AS co2e_market_kg "
        f"FROM rollup_team_month WHERE month >= :first AND month <= :last AND {_TEAM} "
        "GROUP BY month, activity ORDER BY month, activity",
        **_window(period, team),
    )


def by_team(engine: Engine, *, period: Period) -> pd.DataFrame:
    """CO2e of the period per team, largest first, with training/inference and estimates."""
    return frame(
        engine,
        "SELECT team, SUM(co2e_location_kg) AS co2e_location_kg, "
        "SUM(co2e_market_kg) AS co2e_market_kg, "
        "SUM(CASE WHEN activity = 'training' THEN co2e_location_kg ELSE 0 END) "
        "AS training_co2e_location_kg, "
        "SUM(CASE WHEN activity = 'inference' THEN co2e_location_kg ELSE 0 END) "
        "AS inference_co2e_location_kg, "
        "SUM(estimated_co2e_location_kg) AS estimated_co2e_location_kg, "
        "SUM(CASE WHEN activity = 'training' THEN records ELSE 0 END) AS training_runs, "
        "SUM(facility_energy_kwh) AS facility_energy_kwh "
        "FROM rollup_team_month WHERE month >= :first AND month <= :last "
        "GROUP BY team ORDER BY co2e_location_kg DESC, team",
        **_window(period, None),
    )


def by_model(engine: Engine, *, period: Period, team: str | None = None) -> pd.DataFrame:
    """Training (lifecycle runs) and inference CO2e of the period per model, largest first."""
    return frame(
        engine,
        "WITH t AS (SELECT model_name, SUM(runs) AS training_runs, "
        "SUM(co2e_location_kg) AS loc, SUM(co2e_market_kg) AS mkt FROM rollup_model_month "
        f"WHERE month >= :first AND month <= :last AND {_TEAM} GROUP BY model_name), "
        "i AS (SELECT model_name, CAST(SUM(requests) AS BIGINT) AS requests, "
        "SUM(co2e_location_kg) AS loc, "
        "SUM(co2e_market_kg) AS mkt FROM rollup_inference_daily "
        f"WHERE month >= :first AND month <= :last AND {_TEAM} GROUP BY model_name), "
        "m AS (SELECT model_name FROM t UNION SELECT model_name FROM i) "
        "SELECT m.model_name, COALESCE(t.training_runs, 0) AS training_runs, "
        "COALESCE(t.loc, 0) AS training_co2e_location_kg, "
        "COALESCE(i.loc, 0) AS inference_co2e_location_kg, "
        "COALESCE(i.requests, 0) AS inference_requests, "
        "COALESCE(t.loc, 0) + COALESCE(i.loc, 0) AS co2e_location_kg, "
        "COALESCE(t.mkt, 0) + COALESCE(i.mkt, 0) AS co2e_market_kg "
        "FROM m LEFT JOIN t ON t.model_name = m.model_name "
        "LEFT JOIN i ON i.model_name = m.model_name "
        "ORDER BY co2e_location_kg DESC, m.model_name",
        **_window(period, team),
    )


def scope2(engine: Engine, *, period: Period, team: str | None = None) -> pd.DataFrame:
    """Scope 2 per zone: location- and market-based side by side, with factor sources.

    Reads ``rollup_scope2_month``, the ``v_scope2`` view pre-aggregated by the ETL.
    """
    return frame(
        engine,
        "SELECT zone, factor_year, intensity_method, location_factor_source, "
        f"{weighted_intensity_sql('co2e_location_kg', 'location_intensity_g_per_kwh')} "
        "AS location_intensity_g_per_kwh, market_factor_source, "
        f"{weighted_intensity_sql('co2e_market_kg', 'market_intensity_g_per_kwh')} "
        "AS market_intensity_g_per_kwh, market_is_location_fallback, "
        "SUM(facility_energy_kwh) AS facility_energy_kwh, "
        "SUM(co2e_location_kg) AS co2e_location_kg, SUM(co2e_market_kg) AS co2e_market_kg, "
        "SUM(co2e_location_yearly_kg) AS co2e_location_yearly_kg "
        f"FROM rollup_scope2_month WHERE month >= :first AND month <= :last AND {_TEAM} "
        "GROUP BY zone, factor_year, intensity_method, location_factor_source, "
        "market_factor_source, market_is_location_fallback "
        "ORDER BY co2e_location_kg DESC, zone",
        **_window(period, team),
    )


def top_runs(
    engine: Engine, *, period: Period, team: str | None = None, limit: int = 10
) -> pd.DataFrame:
    """The period's largest emitting training runs."""
    return frame(
        engine,
        "SELECT run_id, run_name, team, model_name, start_time, facility_energy_kwh, "
        "co2e_location_kg, co2e_market_kg, estimated_co2e_location_kg FROM v_run_emissions "
        "WHERE kind <> 'inference' AND start_time >= :start AND start_time < :end "
        f"AND {_TEAM} AND co2e_location_kg IS NOT NULL "
        "ORDER BY co2e_location_kg DESC LIMIT :limit",
        start=_ts(engine, period.start),
        end=_ts(engine, period.end),
        team=team,
        limit=int(limit),
    )


def _ts(engine: Engine, value: Any) -> Any:
    """A bound timestamp in the form the backend compares correctly."""
    if engine.dialect.name == "sqlite":
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value
