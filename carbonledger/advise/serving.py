"""Idle serving: model versions kept up through the hours of day with no or few requests.

Per served version: ``idle share = idle energy / energy`` over its windows, and requests by
UTC hour of day. An hour is *quiet* when it carries less than
``CARBONLEDGER_ADVISE_QUIET_HOUR_SHARE`` of the version's requests. When the idle share is at
least ``CARBONLEDGER_ADVISE_IDLE_SHARE``, scaling to zero in the quiet hours saves the idle
energy of the windows in them: ``saving = sum(co2e_location_kg x idle / energy)`` over those
windows (the ledger's CO2e, the idle part of it). A window without an idle/active split
counts as idle only when it served no request.

The windows counted are those with energy and a location-based CO2e. Energy, requests and
idle share need no CO2e, so they are summed per version and hour of day from
``inference_windows`` (a window's CO2e is known when it has a facility energy and its zone a
location-based factor: ``activity_co2e``'s factor lookup); only the versions that qualify
read ``inference_co2e``, for the CO2e of their quiet hours.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from carbonledger import contract
from carbonledger.advise.base import Recommendation, Scope, day, filters
from carbonledger.ledger.repositories import WORLD_ZONE
from carbonledger.reporting.db import frame
from carbonledger.reporting.rollup_sql import hour_sql
from carbonledger.settings import get_settings

METHOD = (
    "sum over the windows in quiet hours of the window's CO2e x idle energy / energy "
    "(ledger factors), scaled to a year"
)
IDLE_KWH = "COALESCE(idle_energy_kwh, CASE WHEN requests = 0 THEN energy_kwh ELSE 0 END)"
_KEYS = "model_name, model_version, COALESCE(team, :unassigned)"

# Per version and UTC hour of day, from the windows' own columns (no CO2e needed).
_HOURS = (
    "SELECT model_name, model_version, COALESCE(team, :unassigned) AS team, {hour} AS hour, "
    "COUNT(*) AS windows, CAST(SUM(requests) AS BIGINT) AS requests, "
    f"SUM(energy_kwh) AS energy_kwh, SUM({IDLE_KWH}) AS idle_kwh, "
    f"SUM(facility_energy_kwh * {IDLE_KWH} / energy_kwh) AS idle_facility_kwh, "
    "MIN(window_start) AS first, MAX(window_start) AS last FROM inference_windows w "
    "WHERE window_start >= :since AND window_start <= :until AND energy_kwh > 0 "
    "AND facility_energy_kwh IS NOT NULL AND EXISTS (SELECT 1 FROM emission_factors f "
    "WHERE f.zone = COALESCE(w.grid_zone, :world) AND f.basis = 'location') "
    "AND {filters} GROUP BY " + _KEYS + ", {hour}"
)
# The idle CO2e of the qualifying versions' windows by hour of day, from the ledger's CO2e.
_IDLE_KG = (
    "SELECT model_name, model_version, COALESCE(team, :unassigned) AS team, {hour} AS hour, "
    f"SUM(co2e_location_kg * {IDLE_KWH} / energy_kwh) AS idle_kg FROM inference_co2e "
    "WHERE window_start >= :since AND window_start <= :until AND energy_kwh > 0 "
    "AND co2e_location_kg IS NOT NULL AND {filters} "
    "AND (model_name IN :names OR (:unnamed = 1 AND model_name IS NULL)) "
    "GROUP BY " + _KEYS + ", {hour}"
)

Key = tuple[str | None, int | None, str]


def _key(model: Any, version: Any, team: Any) -> Key:
    """A version's key with NULLs (NaN in a frame) as ``None``."""
    return (
        str(model) if model is not None and model == model else None,
        int(version) if version is not None and version == version else None,
        str(team),
    )


def idle_serving(engine: Engine, scope: Scope) -> list[Recommendation]:
    """One recommendation per mostly idle served version with quiet hours."""
    settings = get_settings()
    hour = hour_sql(engine.dialect.name, "window_start")
    params = scope.bind(engine) | {"unassigned": contract.UNASSIGNED_TEAM}
    df = frame(
        engine,
        _HOURS.format(hour=hour, filters=filters("team", "model_name")),
        world=WORLD_ZONE,
        **params,
    )
    if df.empty:
        return []
    found = []
    for keys, g in df.groupby(["model_name", "model_version", "team"], dropna=False):
        idle_share = float(g.idle_kwh.sum() / g.energy_kwh.sum())
        requests = int(g.requests.sum())
        by_hour: dict[int, int] = defaultdict(int)
        for h, n in zip(g.hour, g.requests, strict=True):
            by_hour[int(h)] += int(n)
        quiet = sorted(
            h for h in range(24) if by_hour[h] <= settings.advise_quiet_hour_share * requests
        )
        if idle_share >= settings.advise_idle_share and quiet:
            found.append((_key(*keys), g, idle_share, requests, quiet))
    if not found:
        return []
    names = sorted({k[0] for k, *_ in found if k[0] is not None})
    kg_by_hour = frame(
        engine,
        _IDLE_KG.format(hour=hour, filters=filters("team", "model_name")),
        names=names,
        unnamed=int(any(k[0] is None for k, *_ in found)),
        **params,
    )
    idle_kg: dict[Key, pd.DataFrame] = {
        _key(*keys): g
        for keys, g in kg_by_hour.groupby(["model_name", "model_version", "team"], dropna=False)
    }
    out = []
    for (model, version, team), g, idle_share, requests, quiet in found:
        q = g[g.hour.isin(quiet)]
        kg_hours = idle_kg.get((model, version, team))
        kg = 0.0 if kg_hours is None else float(kg_hours[kg_hours.hour.isin(quiet)].idle_kg.sum())
        kwh = float(q.idle_facility_kwh.sum())
        if kg <= 0:
            continue
        label = f"{model} v{version}" if model is not None else "an unnamed model"
        out.append(
            Recommendation(
                kind=contract.ADVICE_IDLE_SERVING,
                team=team,
                model_name=model,
                model_version=version,
                title=f"Scale {label} to zero in its {len(quiet)} quiet hours of the day",
                evidence=(
                    f"{int(g.windows.sum())} serving windows {day(g['first'].min())} to "
                    f"{day(g['last'].max())}: {idle_share:.0%} of the energy idle, "
                    f"{requests:,} requests; quiet hours (UTC) {_hours(quiet)} carry "
                    f"{int(q.requests.sum()):,} requests"
                ),
                saving_co2e_kg_per_year=scope.per_year(kg),
                saving_energy_kwh_per_year=scope.per_year(kwh),
                method=METHOD,
                confidence=contract.CONFIDENCE_ESTIMATE,
            )
        )
    return out


def _hours(hours: list[int]) -> str:
    """Hours as ranges: ``0-5, 22-23``."""
    spans: list[list[int]] = []
    for h in hours:
        if spans and spans[-1][1] == h - 1:
            spans[-1][1] = h
        else:
            spans.append([h, h])
    return ", ".join(f"{a:02d}-{b + 1:02d}h" for a, b in spans)
