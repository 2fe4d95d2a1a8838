"""Model efficiency: traffic on a version dearer per request than a nearly as good one.

Per served version of a model: fully loaded facility Wh per request (idle included) from its
windows, and the objective metric (``run_metrics``) of the run that produced it (lineage).
A version within ``CARBONLEDGER_ADVISE_METRIC_MARGIN`` (relative) of the best metric and
cheaper per request is the candidate; serving a dearer version's requests with it saves
``requests x (Wh_dear - Wh_cheap) / 1000`` facility kWh, at the dear version's realised
intensity (its CO2e / facility kWh). It assumes the same traffic and hardware.

The versions' totals come from ``rollup_inference_daily`` (whole UTC days of the window) and
``inference_co2e`` (a window opening inside a day: that day's part), the views' figures up to
float summation order; the views alone where the rollups fold differently (the
``unassigned`` team, a window closing before the latest serving window).
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from carbonledger import contract
from carbonledger.advise.base import Recommendation, Scope, as_utc, day, filters
from carbonledger.advise.training import higher_is_better, objective_key
from carbonledger.budgets.usage import split_range
from carbonledger.reporting.db import frame, scalar
from carbonledger.settings import get_settings

_TOTALS = (
    "SELECT model_name, model_version, MIN(team) AS team, "
    "CAST(SUM(requests) AS BIGINT) AS requests, "
    "SUM(facility_energy_kwh) AS facility_kwh, SUM(co2e_location_kg) AS co2e_kg, "
)
_VIEW = (
    _TOTALS + "MIN(window_start) AS first, MAX(window_start) AS last FROM inference_co2e "
    "WHERE window_start >= :since AND {until} AND model_name IS NOT NULL "
    "AND model_version IS NOT NULL AND {filters} GROUP BY model_name, model_version"
)
# rollup_inference_daily keys a window without a model as '(unknown)' v0 (v_inference_daily)
_ROLLUP = (
    _TOTALS + "MIN(day) AS first, MAX(day) AS last FROM rollup_inference_daily "
    "WHERE day >= :first AND model_name <> '(unknown)' AND model_version <> 0 AND {filters} "
    "GROUP BY model_name, model_version"
)


def model_efficiency(engine: Engine, scope: Scope) -> list[Recommendation]:
    """One recommendation per served version with a cheaper, nearly as good sibling."""
    settings = get_settings()
    served = served_versions(engine, scope)
    if served.empty:
        return []
    metrics = frame(
        engine,
        "SELECT rm.name AS model_name, mv.version AS model_version, m.key, m.value "
        "FROM model_versions mv JOIN registered_models rm ON rm.id = mv.registered_model_id "
        "JOIN run_metrics m ON m.source_id = rm.source_id AND m.run_id = mv.run_id "
        "WHERE m.value IS NOT NULL AND rm.name IN :names",
        names=sorted(set(served.model_name)),
    )
    out = []
    for model, g in served.groupby("model_name"):
        mets = metrics[metrics.model_name == model]
        key = objective_key(sorted(set(mets.key)), settings.history_keys)
        if key is None:
            continue
        value = {
            int(v): float(x)
            for v, x in zip(
                mets[mets.key == key].model_version, mets[mets.key == key].value, strict=True
            )
        }
        g = g[g.model_version.astype(int).isin(value)].copy()
        if len(g) < 2:
            continue
        g["wh"] = g.facility_kwh * 1000.0 / g.requests
        up = higher_is_better(key)
        best = (
            max(value[int(v)] for v in g.model_version)
            if up
            else min(value[int(v)] for v in g.model_version)
        )
        ok = g[
            [
                _close(value[int(v)], best, settings.advise_metric_margin, up)
                for v in g.model_version
            ]
        ]
        cheap = ok.sort_values(["wh", "model_version"]).iloc[0]
        for dear in g[g.wh > cheap.wh].itertuples():
            kwh = float(dear.requests) * (dear.wh - cheap.wh) / 1000.0
            kg = kwh * float(dear.co2e_kg) / float(dear.facility_kwh)
            if kg <= 0:
                continue
            v, c = int(dear.model_version), int(cheap.model_version)
            out.append(
                Recommendation(
                    kind=contract.ADVICE_MODEL_EFFICIENCY,
                    team=str(dear.team),
                    model_name=str(model),
                    model_version=v,
                    title=f"Serve {model} v{c} instead of v{v}",
                    evidence=(
                        f"v{v}: {dear.wh:.3g} Wh per request, {key} {value[v]:.4g}, "
                        f"{int(dear.requests):,} requests {day(dear.first)} to {day(dear.last)}; "
                        f"v{c}: {cheap.wh:.3g} Wh per request, {key} {value[c]:.4g} (within "
                        f"{settings.advise_metric_margin:.0%} of the best)"
                    ),
                    saving_co2e_kg_per_year=scope.per_year(kg),
                    saving_energy_kwh_per_year=scope.per_year(kwh),
                    method=(
                        "requests x (Wh per request of the version - of the cheaper one) at "
                        "the version's CO2e per kWh, scaled to a year"
                    ),
                    confidence=contract.CONFIDENCE_ESTIMATE,
                )
            )
    return out


def served_versions(engine: Engine, scope: Scope) -> pd.DataFrame:
    """Per served version of the scope with requests: team, requests, facility kWh, CO2e, days.

    Columns ``model_name``, ``model_version``, ``team`` (the least team name),
    ``requests``, ``facility_kwh``, ``co2e_kg`` (location-based), ``first``/``last``
    (``YYYY-MM-DD`` of the first and last window start).
    """
    where = filters("team", "model_name")
    params = scope.bind(engine)
    latest = as_utc(scalar(engine, "SELECT MAX(window_start) FROM inference_windows"))
    if scope.team == contract.UNASSIGNED_TEAM or (latest is not None and latest > scope.until):
        sql = _VIEW.format(until="window_start <= :until", filters=where)
        parts = [frame(engine, sql, **params)]
    else:
        whole, edges = split_range(scope.since, None, "day")
        assert whole is not None and whole[0] is not None
        parts = [
            frame(engine, _ROLLUP.format(filters=where), first=f"{whole[0]:%Y-%m-%d}", **params)
        ]
        for start, end in edges:  # a window opening inside a UTC day: that day's part
            assert start is not None and end is not None
            edge = Scope(since=start, until=end, team=scope.team, model_name=scope.model_name)
            sql = _VIEW.format(until="window_start < :until", filters=where)
            parts.append(frame(engine, sql, **edge.bind(engine)))
    df = pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)
    if df.empty:
        return df
    df["first"] = [day(v) for v in df["first"]]
    df["last"] = [day(v) for v in df["last"]]
    df = df.groupby(["model_name", "model_version"], as_index=False, sort=True).agg(
        team=("team", "min"),
        requests=("requests", "sum"),
        facility_kwh=("facility_kwh", "sum"),
        co2e_kg=("co2e_kg", "sum"),
        first=("first", "min"),
        last=("last", "max"),
    )
    return df[df.requests > 0].reset_index(drop=True)


def _close(value: float, best: float, margin: float, up: bool) -> bool:
    gap = (best - value) if up else (value - best)
    return gap <= margin * abs(best)
