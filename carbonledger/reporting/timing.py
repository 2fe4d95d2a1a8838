"""Carbon-aware timing: what each run would have emitted at the cleanest start within ±N hours.

``shift_savings`` takes every training run's hours (``activity_energy_hours``, written by the
ETL), shifts the same energy profile by -N..+N hours in the same zone and prices every shift
with the zone's hourly factors, else its profile estimate (ratio x the run's yearly factor),
else the yearly factor, exactly as ``activity_co2e`` prices the actual hours. One vectorised
pass per zone and shift (numpy), not per run. The What-if page, the report's timing section
and ``advise`` read it; ``intensity_heatmap`` is the zone's mean intensity by month and hour.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from carbonledger import contract
from carbonledger.intensity.hourly import calendar, profile_cells
from carbonledger.ledger.repositories import WORLD_ZONE

COLUMNS = [
    "run_id",
    "team",
    "model_name",
    "zone",
    "start_utc",
    "energy_kwh",
    "co2e_actual_kg",
    "co2e_best_kg",
    "best_start_utc",
    "saving_kg",
    "intensity_method",
]
MAX_FLEX_H = 168

_RUNS = """
SELECT e.run_pk, e.run_id, e.team, e.model_name, e.zone, e.start_time, e.energy_kwh,
       e.co2e_location_kg, e.location_yearly_intensity_g_per_kwh, e.intensity_method
FROM v_run_emissions e
WHERE e.kind <> 'inference' AND e.start_time IS NOT NULL {where}
"""

_HOURS = """
SELECT h.record_pk, h.utc_hour, h.facility_energy_kwh
FROM activity_energy_hours h JOIN runs r ON r.id = h.record_pk
WHERE h.record_kind = 'run' AND r.kind <> 'inference' AND r.start_time IS NOT NULL {where}
"""


def _rows(conn: Connection | Engine, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return [tuple(r) for r in c.execute(text(sql), params).all()]
    return [tuple(r) for r in conn.execute(text(sql), params).all()]


def _filters(alias: str, team: str | None, since: datetime | None) -> tuple[str, dict[str, Any]]:
    where, params = "", dict[str, Any]()
    if team is not None:
        where += f" AND {alias}.team = :team"
        params["team"] = team
    if since is not None:
        where += f" AND {alias}.start_time >= :since"
        params["since"] = since
    return where, params


def _zone_factors(
    conn: Connection | Engine, zone: str, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Hourly factors of ``zone`` for hours lo..hi (NaN where none) and its 576 ratios."""
    dense = np.full(hi - lo + 1, np.nan)
    rows = _rows(
        conn,
        "SELECT utc_hour, intensity_g_per_kwh FROM hourly_emission_factors "
        "WHERE zone = :z AND basis = 'location' AND is_current "
        "AND utc_hour >= :lo AND utc_hour <= :hi",
        {"z": zone, "lo": lo, "hi": hi},
    )
    if rows:
        arr = np.asarray(rows, dtype=np.float64)
        dense[arr[:, 0].astype(np.int64) - lo] = arr[:, 1]
    cells = _rows(
        conn,
        "SELECT profile_cell, ratio FROM hourly_profiles WHERE zone = :z AND basis = 'location'",
        {"z": zone},
    )
    if not cells:
        return dense, None
    ratios = np.full(576, np.nan)
    arr = np.asarray(cells, dtype=np.float64)
    ratios[arr[:, 0].astype(np.int64)] = arr[:, 1]
    return dense, ratios


def zones_with_hourly_data(conn: Connection | Engine) -> list[str]:
    """Zones with location-based hourly factors or an hourly profile, sorted."""
    rows = _rows(
        conn,
        "SELECT zone FROM hourly_emission_factors WHERE basis = 'location' UNION "
        "SELECT zone FROM hourly_profiles WHERE basis = 'location'",
        {},
    )
    return sorted(str(r[0]) for r in rows)


def _zone_filter(column: str, zones: list[str], params: dict[str, Any]) -> str:
    names = [f"hz{i}" for i in range(len(zones))]
    params.update(zip(names, zones, strict=True))
    return f" AND {column} IN ({', '.join(':' + n for n in names)})"


def shift_savings(
    conn: Connection | Engine,
    *,
    flex_h: int,
    team: str | None = None,
    since: datetime | None = None,
    hourly_zones_only: bool = False,
) -> pd.DataFrame:
    """One row per training run: actual CO2e and CO2e at its cleanest start within ±flex_h.

    Columns: ``run_id``, ``team``, ``model_name``, ``zone``, ``start_utc``, ``energy_kwh``,
    ``co2e_actual_kg`` (the ledger's location-based figure), ``co2e_best_kg``,
    ``best_start_utc``, ``saving_kg`` (>= 0) and ``intensity_method`` (how the best shift was
    priced: ``hourly``, ``hourly-profile-estimate`` or ``yearly``).

    ``hourly_zones_only`` leaves out the runs of zones without hourly factors or profile
    (``advise`` sets it): every shift of such a run is priced at its yearly factor, as its
    actual hours are, so it has nothing to gain (a saving there is float rounding of the
    hours' sum, or hours missing from ``activity_energy_hours``).
    """
    flex = max(0, min(int(flex_h), MAX_FLEX_H))
    where, params = _filters("e", team, since)
    zones = zones_with_hourly_data(conn) if hourly_zones_only else []
    if hourly_zones_only:
        if not zones:
            return pd.DataFrame(columns=COLUMNS)
        where += _zone_filter("e.zone", zones, params)
    runs = pd.DataFrame(
        _rows(conn, _RUNS.format(where=where), params),
        columns=[
            "run_pk", "run_id", "team", "model_name", "zone", "start_time", "energy_kwh",
            "co2e_location_kg", "yearly", "method",
        ],
    )  # fmt: skip
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    where, params = _filters("r", team, since)
    if hourly_zones_only:
        params["world"] = WORLD_ZONE
        where += _zone_filter("COALESCE(r.grid_zone, :world)", zones, params)
    hours = pd.DataFrame(
        _rows(conn, _HOURS.format(where=where), params), columns=["run_pk", "utc_hour", "kwh"]
    )
    actual = runs["co2e_location_kg"].fillna(0.0).to_numpy(dtype=np.float64)
    best = actual.copy()
    shift = np.zeros(len(runs), dtype=np.int64)
    method = runs["method"].fillna(contract.INTENSITY_YEARLY).to_numpy(dtype=object)
    position = pd.Series(np.arange(len(runs)), index=runs["run_pk"].to_numpy())
    hours = hours[hours["run_pk"].isin(position.index)]
    for zone, part in hours.groupby(runs.set_index("run_pk").loc[hours["run_pk"], "zone"].values):
        idx = position.loc[part["run_pk"]].to_numpy()
        h = part["utc_hour"].to_numpy(dtype=np.int64)
        kwh = part["kwh"].to_numpy(dtype=np.float64)
        yearly = runs["yearly"].to_numpy(dtype=np.float64)[idx]
        lo, hi = int(h.min()) - flex, int(h.max()) + flex
        dense, ratios = _zone_factors(conn, str(zone), lo, hi)
        for k in range(-flex, flex + 1):
            moved = h + k
            factor = dense[moved - lo]
            from_hourly = ~np.isnan(factor)
            if ratios is not None:
                factor = np.where(from_hourly, factor, ratios[profile_cells(moved)] * yearly)
            factor = np.where(np.isnan(factor), yearly, factor)
            grams = np.bincount(idx, weights=kwh * factor, minlength=len(runs))
            co2e = grams.astype(np.float64) / contract.G_PER_KG
            hourly_all = np.bincount(idx, weights=~from_hourly, minlength=len(runs)) == 0
            touched = np.zeros(len(runs), dtype=bool)
            touched[idx] = True
            better = touched & (co2e < best - 1e-12)
            best[better] = co2e[better]
            shift[better] = k
            label = np.where(
                hourly_all,
                contract.INTENSITY_HOURLY,
                contract.INTENSITY_HOURLY_PROFILE
                if ratios is not None
                else contract.INTENSITY_YEARLY,
            )
            method[better] = label[better]
    start = pd.to_datetime(runs["start_time"], utc=True)
    out = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "team": runs["team"],
            "model_name": runs["model_name"],
            "zone": runs["zone"],
            "start_utc": start,
            "energy_kwh": runs["energy_kwh"].fillna(0.0),
            "co2e_actual_kg": actual,
            "co2e_best_kg": best,
            "best_start_utc": start + pd.to_timedelta(shift, unit="h"),
            "saving_kg": actual - best,
            "intensity_method": method,
        }
    )
    return out.sort_values("saving_kg", ascending=False, kind="stable").reset_index(drop=True)


def period_savings(
    engine: Engine, *, period: Any, flex_h: int, team: str | None = None
) -> pd.DataFrame:
    """``shift_savings`` of the runs that started in ``period`` (a ``Period``)."""
    savings = shift_savings(engine, flex_h=flex_h, team=team, since=period.start)
    if savings.empty:
        return savings
    return savings[savings["start_utc"] < pd.Timestamp(period.end)].reset_index(drop=True)


def savings_by_team(savings: pd.DataFrame) -> pd.DataFrame:
    """``shift_savings`` summed per team, with the saving as a share of the actual."""
    if savings.empty:
        return pd.DataFrame(
            columns=["team", "runs", "co2e_actual_kg", "co2e_best_kg", "saving_kg", "saving_pct"]
        )
    g = savings.groupby("team", dropna=False, as_index=False).agg(
        runs=("run_id", "count"),
        co2e_actual_kg=("co2e_actual_kg", "sum"),
        co2e_best_kg=("co2e_best_kg", "sum"),
        saving_kg=("saving_kg", "sum"),
    )
    actual = g["co2e_actual_kg"].where(g["co2e_actual_kg"] > 0)
    g["saving_pct"] = (100.0 * g["saving_kg"] / actual).fillna(0.0)
    return g.sort_values("saving_kg", ascending=False).reset_index(drop=True)


def intensity_heatmap(conn: Connection | Engine, *, zone: str) -> pd.DataFrame:
    """Mean hourly intensity of ``zone`` by month (rows 1-12) and UTC hour of day (0-23)."""
    rows = _rows(
        conn,
        "SELECT utc_hour, intensity_g_per_kwh FROM hourly_emission_factors "
        "WHERE zone = :z AND basis = 'location' AND is_current",
        {"z": zone},
    )
    if not rows:
        return pd.DataFrame()
    arr = np.asarray(rows, dtype=np.float64)
    _, month, hod, _ = calendar(arr[:, 0].astype(np.int64))
    df = pd.DataFrame({"month": month, "hour": hod, "value": arr[:, 1]})
    return df.pivot_table(index="month", columns="hour", values="value", aggfunc="mean")


def yearly_by_team(
    conn: Connection | Engine, *, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """Per team: the yearly-only CO2e and the share of energy priced by hourly factors."""
    where, params = _filters("e", None, since)
    if until is not None:
        where += " AND e.start_time < :until"
        params["until"] = until
    rows = _rows(
        conn,
        "SELECT e.team, SUM(e.co2e_location_yearly_kg), "
        "SUM(CASE WHEN e.intensity_method = 'hourly' THEN e.facility_energy_kwh ELSE 0 END), "
        f"SUM(e.facility_energy_kwh) FROM v_run_emissions e WHERE e.kind <> 'inference' {where} "
        "GROUP BY e.team",
        params,
    )
    df = pd.DataFrame(rows, columns=["team", "co2e_location_yearly_kg", "hourly_kwh", "kwh"])
    total = df["kwh"].where(df["kwh"] > 0)
    df["hourly_share_pct"] = (100.0 * df["hourly_kwh"] / total).fillna(0.0)
    return df[["team", "co2e_location_yearly_kg", "hourly_share_pct"]]


def hourly_zones(conn: Connection | Engine) -> list[str]:
    """Zones with hourly factors in the ledger."""
    rows = _rows(
        conn,
        "SELECT DISTINCT zone FROM hourly_emission_factors WHERE basis = 'location' ORDER BY zone",
        {},
    )
    return [r[0] for r in rows]
