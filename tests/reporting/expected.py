"""Independent expectations: CO2e computed in Python from the raw tables and TEST_FACTORS.

Nothing here uses the views or the rollups, so a wrong view or rollup cannot agree with it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from cl_ledger_fixtures import TEST_FACTORS
from sqlalchemy import Engine, text

MARKET = {("DE", 2024): 30.0}  # seed.py's contractual factor


def location_intensity(zone: str, year: int) -> float:
    years = sorted(f.year for f in TEST_FACTORS if f.zone == zone)
    chosen = max((y for y in years if y <= year), default=years[0])
    return next(f.intensity_g_per_kwh for f in TEST_FACTORS if (f.zone, f.year) == (zone, chosen))


def _month(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m")
    return str(value)[:7]


def rows(engine: Engine) -> list[dict[str, Any]]:
    """Every training run and inference window as {team, model, month, activity, kg...}."""
    out = []
    with engine.connect() as conn:
        for r in conn.execute(
            text(
                "SELECT team, model_name, start_time, activity_year, grid_zone, "
                "facility_energy_kwh, any_component_estimated, run_id, energy_kwh, "
                "estimated_energy_kwh FROM runs "
                "WHERE kind <> 'inference'"
            )
        ):
            zone = r.grid_zone or "WORLD"
            loc = location_intensity(zone, r.activity_year)
            mkt = MARKET.get((zone, r.activity_year), loc)
            out.append(
                {
                    "team": r.team,
                    "model": r.model_name,
                    "month": _month(r.start_time),
                    "activity": "training",
                    "estimated": bool(r.any_component_estimated),
                    "run_id": r.run_id,
                    "requests": 0,
                    "loc_kg": r.facility_energy_kwh * loc / 1000.0,
                    # energy-weighted: only the estimated components' share is estimated
                    "est_kg": r.facility_energy_kwh
                    * loc
                    / 1000.0
                    * (r.estimated_energy_kwh or 0.0)
                    / r.energy_kwh,
                    "mkt_kg": r.facility_energy_kwh * mkt / 1000.0,
                }
            )
        for w in conn.execute(
            text(
                "SELECT team, model_name, window_start, activity_year, grid_zone, "
                "facility_energy_kwh, requests FROM inference_windows"
            )
        ):
            zone = w.grid_zone or "WORLD"
            loc = location_intensity(zone, w.activity_year)
            mkt = MARKET.get((zone, w.activity_year), loc)
            out.append(
                {
                    "team": w.team,
                    "model": w.model_name,
                    "month": _month(w.window_start),
                    "activity": "inference",
                    "estimated": False,
                    "run_id": None,
                    "requests": w.requests,
                    "loc_kg": w.facility_energy_kwh * loc / 1000.0,
                    "est_kg": 0.0,
                    "mkt_kg": w.facility_energy_kwh * mkt / 1000.0,
                }
            )
    return out


def totals(engine: Engine, *, first: str, last: str, team: str | None = None) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for r in rows(engine):
        if first <= r["month"] <= last and (team is None or r["team"] == team):
            sums["loc_kg"] += r["loc_kg"]
            sums["mkt_kg"] += r["mkt_kg"]
            sums[f"{r['activity']}_kg"] += r["loc_kg"]
            sums["estimated_kg"] += r["est_kg"]
            sums["runs"] += r["activity"] == "training"
    return dict(sums)
