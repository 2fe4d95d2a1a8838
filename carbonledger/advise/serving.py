"""Idle serving: model versions kept up through the hours of day with no or few requests.

Per served version: ``idle share = idle energy / energy`` over its windows, and requests by
UTC hour of day. An hour is *quiet* when it carries less than
``CARBONLEDGER_ADVISE_QUIET_HOUR_SHARE`` of the version's requests. When the idle share is at
least ``CARBONLEDGER_ADVISE_IDLE_SHARE``, scaling to zero in the quiet hours saves the idle
energy of the windows in them: ``saving = sum(co2e_location_kg x idle / energy)`` over those
windows (the ledger's CO2e, the idle part of it). A window without an idle/active split
counts as idle only when it served no request.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Engine

from carbonledger import contract
from carbonledger.advise.base import Recommendation, Scope, as_utc, day, filters
from carbonledger.reporting.db import frame
from carbonledger.settings import get_settings

METHOD = (
    "sum over the windows in quiet hours of the window's CO2e x idle energy / energy "
    "(ledger factors), scaled to a year"
)


def idle_serving(engine: Engine, scope: Scope) -> list[Recommendation]:
    """One recommendation per mostly idle served version with quiet hours."""
    settings = get_settings()
    df = frame(
        engine,
        "SELECT model_name, model_version, team, window_start, requests, energy_kwh, "
        "COALESCE(idle_energy_kwh, CASE WHEN requests = 0 THEN energy_kwh ELSE 0 END) AS idle_kwh, "
        "facility_energy_kwh, co2e_location_kg FROM inference_co2e "
        "WHERE window_start >= :since AND window_start <= :until AND energy_kwh > 0 "
        f"AND co2e_location_kg IS NOT NULL AND {filters('team', 'model_name')}",
        **scope.bind(engine),
    )
    if df.empty:
        return []
    df["hour"] = [_hour(v) for v in df.window_start]
    out = []
    keys = ["model_name", "model_version", "team"]
    for (model, version, team), g in df.fillna({"team": contract.UNASSIGNED_TEAM}).groupby(
        keys, dropna=False
    ):
        idle_share = float(g.idle_kwh.sum() / g.energy_kwh.sum())
        requests = int(g.requests.sum())
        by_hour: dict[int, int] = defaultdict(int)
        for hour, n in zip(g.hour, g.requests, strict=True):
            by_hour[int(hour)] += int(n)
        quiet = sorted(
            h for h in range(24) if by_hour[h] <= settings.advise_quiet_hour_share * requests
        )
        if idle_share < settings.advise_idle_share or not quiet:
            continue
        q = g[g.hour.isin(quiet)]
        share = q.idle_kwh / q.energy_kwh
        kg = float((q.co2e_location_kg * share).sum())
        kwh = float((q.facility_energy_kwh * share).sum())
        if kg <= 0:
            continue
        label = f"{model} v{int(version)}" if model == model else "an unnamed model"
        out.append(
            Recommendation(
                kind=contract.ADVICE_IDLE_SERVING,
                team=str(team),
                model_name=str(model) if model == model else None,
                model_version=int(version) if version == version else None,
                title=f"Scale {label} to zero in its {len(quiet)} quiet hours of the day",
                evidence=(
                    f"{len(g)} serving windows {day(g.window_start.min())} to "
                    f"{day(g.window_start.max())}: {idle_share:.0%} of the energy idle, "
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


def _hour(value: object) -> int:
    when = as_utc(value)
    return when.hour if when else 0


def _hours(hours: list[int]) -> str:
    """Hours as ranges: ``0-5, 22-23``."""
    spans: list[list[int]] = []
    for h in hours:
        if spans and spans[-1][1] == h - 1:
            spans[-1][1] = h
        else:
            spans.append([h, h])
    return ", ".join(f"{a:02d}-{b + 1:02d}h" for a, b in spans)
