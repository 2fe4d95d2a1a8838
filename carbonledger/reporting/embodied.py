"""Embodied emissions, SCI and ranges for the app and the report: queries over the views.

Embodied CO2e is Scope 3 and every function returns it **beside** the operational (Scope 2,
location-based) figure, never summed into it. Training is counted through runs (kind other
than ``inference``), serving through its windows (``v_window_embodied``), as for operational
CO2e. A total's range follows the documented rule (``carbonledger.uncertainty.total_range``):
each error source's standard uncertainty adds linearly across the records of the total, then
the sources add in quadrature. Runs' operational sources come from ``v_run_uncertainty``,
serving windows' from their methods with the same constants (``range_parts``). The pages'
total (:func:`total_with_range`) sums those parts from the ``rollup_ranges`` rollup;
:func:`total_from_views` computes it from the views, record by record.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine

from carbonledger import contract as c
from carbonledger.reporting.db import frame, frame_in
from carbonledger.reporting.periods import Period
from carbonledger.reporting.range_parts import (
    PARTS,
    FootprintTotal,
    assemble,
    run_co2e_sql,
    run_embodied_sql,
    run_keys,
    run_sigma_sql,
    window_co2e_sql,
    window_embodied_sql,
)

__all__ = [
    "SCI_COLUMNS",
    "FootprintTotal",
    "embodied_by_team",
    "sci_by_version",
    "total_from_views",
    "total_with_range",
]


def _filter(month: str = "month", team: str = "team") -> str:
    return (
        f"(CAST(:first AS VARCHAR(7)) IS NULL OR {month} >= :first) "
        f"AND (CAST(:last AS VARCHAR(7)) IS NULL OR {month} <= :last) "
        f"AND (CAST(:team AS VARCHAR(200)) IS NULL OR {team} = :team)"
    )


def _window_model(model: str | None, column: str = "model_name") -> str:
    return "1 = 1" if model is None else f"{column} = :model"


def _run_model(dialect: str, column: str, model: str | None) -> str:
    """The runs of ``model``'s lifecycle (``v_lifecycle_runs``); every run when ``None``."""
    if model is None:
        return "1 = 1"
    return run_keys(
        dialect, column, "SELECT run_pk FROM v_lifecycle_runs WHERE model_name = :model"
    )


_FILTER = _filter()


def _params(period: Period | None, team: str | None, model: str | None = None) -> dict[str, Any]:
    return {
        "first": period.first_month if period else None,
        "last": period.last_month if period else None,
        "team": team,
        "model": model,
    }


def embodied_by_team(engine: Engine, *, period: Period | None = None) -> pd.DataFrame:
    """Embodied CO2e (Scope 3) per team: training runs, serving windows, and what lacks one.

    Columns: ``team``, ``training_embodied_co2e_kg``, ``serving_embodied_co2e_kg``,
    ``embodied_co2e_kg``, ``records``, ``records_without_embodied``.
    """
    return frame(
        engine,
        "WITH a AS ("
        "SELECT team, embodied_co2e_kg AS training_kg, 0.0 AS serving_kg, embodied_co2e_kg "
        f"FROM v_run_embodied WHERE kind <> 'inference' AND {_FILTER} "
        "UNION ALL SELECT COALESCE(team, 'unassigned'), 0.0, embodied_co2e_kg, "
        f"embodied_co2e_kg FROM v_window_embodied WHERE {_FILTER}) "
        "SELECT team, SUM(COALESCE(training_kg, 0.0)) AS training_embodied_co2e_kg, "
        "SUM(COALESCE(serving_kg, 0.0)) AS serving_embodied_co2e_kg, "
        "SUM(COALESCE(embodied_co2e_kg, 0.0)) AS embodied_co2e_kg, COUNT(*) AS records, "
        "SUM(CASE WHEN embodied_co2e_kg IS NULL THEN 1 ELSE 0 END) AS records_without_embodied "
        "FROM a GROUP BY team ORDER BY embodied_co2e_kg DESC, team",
        **_params(period, None),
    )


SCI_COLUMNS = (
    "model_name",
    "model_version",
    "requests",
    "windows",
    "windows_without_embodied",
    "operational_co2e_kg",
    "embodied_co2e_kg",
    "sci_co2e_kg_per_request",
    "sci_co2e_g_per_request",
)


def sci_by_version(engine: Engine, *, model_name: str | None = None) -> pd.DataFrame:
    """SCI per request of every served model version (``v_sci``), highest first.

    With ``model_name``, that model's versions, read selectively (the Models page): requests,
    windows and operational CO2e from ``rollup_inference_daily``, embodied CO2e from
    ``v_window_embodied`` on the model's windows (an indexed predicate; the daily rollup has
    no embodied column), combined by ``v_sci``'s rule ``(operational + embodied) / requests``.
    """
    if model_name is None:
        return frame(
            engine,
            "SELECT model_name, model_version, functional_units AS requests, "
            "records AS windows, records_without_embodied AS windows_without_embodied, "
            "operational_co2e_kg, embodied_co2e_kg, "
            "sci_co2e_kg_per_unit AS sci_co2e_kg_per_request, "
            "sci_co2e_g_per_unit AS sci_co2e_g_per_request FROM v_sci "
            "WHERE functional_unit = 'request' "
            "ORDER BY sci_co2e_kg_per_request DESC, model_name, model_version",
        )
    served = frame(
        engine,
        "SELECT model_name, model_version, CAST(SUM(requests) AS BIGINT) AS requests, "
        "SUM(windows) AS windows, SUM(co2e_location_kg) AS operational_co2e_kg "
        "FROM rollup_inference_daily WHERE model_name = :model "
        "GROUP BY model_name, model_version",
        model=model_name,
    )
    embodied = frame(
        engine,
        "SELECT COALESCE(model_version, 0) AS model_version, "
        "SUM(CASE WHEN embodied_co2e_kg IS NULL THEN 1 ELSE 0 END) "
        "AS windows_without_embodied, SUM(COALESCE(embodied_co2e_kg, 0.0)) AS embodied_co2e_kg "
        "FROM v_window_embodied WHERE model_name = :model GROUP BY COALESCE(model_version, 0)",
        model=model_name,
    )
    df = served.merge(embodied, on="model_version", how="left")
    df["windows_without_embodied"] = df.windows_without_embodied.fillna(0).astype("int64")
    df["embodied_co2e_kg"] = df.embodied_co2e_kg.fillna(0.0)
    total = df.operational_co2e_kg + df.embodied_co2e_kg
    per = [t / r if r and r > 0 else None for t, r in zip(total, df.requests, strict=True)]
    df["sci_co2e_kg_per_request"] = pd.Series(per, index=df.index, dtype="float64")
    df["sci_co2e_g_per_request"] = df.sci_co2e_kg_per_request * c.G_PER_KG
    df = df.sort_values(
        ["sci_co2e_kg_per_request", "model_name", "model_version"],
        ascending=[False, True, True],
        na_position="last",
    )
    return df[list(SCI_COLUMNS)].reset_index(drop=True)


_TOTAL_PARTS = """
SELECT part, uncertainty_key, methods, intensity_method, SUM(records) AS records,
       SUM(records_without_embodied) AS records_without_embodied, SUM(co2e_kg) AS co2e_kg,
       SUM(sigma_kg) AS sigma_kg, SUM(gpu_co2e_kg) AS gpu_co2e_kg,
       SUM(cpu_co2e_kg) AS cpu_co2e_kg, SUM(ram_co2e_kg) AS ram_co2e_kg
FROM rollup_ranges WHERE {activity} AND {filter}
GROUP BY part, uncertainty_key, methods, intensity_method
"""


def total_with_range(
    engine: Engine,
    *,
    period: Period | None = None,
    team: str | None = None,
    model: str | None = None,
) -> FootprintTotal:
    """Operational (Scope 2) and embodied (Scope 3) totals, apart, each with its range.

    ``model`` selects a registered model's lifecycle: its training runs (``v_lifecycle_runs``)
    and the serving windows of its versions. Read from ``rollup_ranges`` (the parts of
    ``range_parts`` summed by month, team and model; as of the last refresh), plus, without a
    period, the runs without a start time (no month: read from the views).
    """
    params = _params(period, team, model)
    activity = (
        "activity IN ('training', 'inference')"
        if model is None
        else "activity IN ('lifecycle', 'inference') AND model_name = :model"
    )
    rows = frame(engine, _TOTAL_PARTS.format(activity=activity, filter=_FILTER), **params)
    parts = {part: rows[rows.part == part] for part in PARTS}
    unstarted = [] if period is not None else _unstarted_runs(engine)
    if unstarted:
        for part, df in _run_parts(engine, params, model, unstarted).items():
            parts[part] = pd.concat([parts[part], df], ignore_index=True)
    return assemble(*(parts[p] for p in PARTS))


def _unstarted_runs(engine: Engine) -> list[int]:
    """Keys of the training runs without a start time (no month, so not in the rollup)."""
    rows = frame(engine, "SELECT id FROM runs WHERE start_time IS NULL AND kind <> 'inference'")
    return [int(v) for v in rows.id]


def _run_parts(
    engine: Engine, params: dict[str, Any], model: str | None, only: list[int] | None = None
) -> dict[str, pd.DataFrame]:
    """The run parts of a total, read from the views (``only``: these runs' keys)."""
    dialect = engine.dialect.name
    runs = f"{_filter('r.month', 'r.team')} AND {_run_model(dialect, 'r.run_pk', model)}"
    embodied = f"{_filter('m.month', 'm.team')} AND {_run_model(dialect, 'm.run_pk', model)}"
    if only is not None:
        runs += " AND r.run_pk IN :only"
        embodied += " AND m.run_pk IN :only"
    sql = {
        "run_co2e": run_co2e_sql(dialect, runs="v_run_emissions", where=runs, grain=()),
        "run_sigma": run_sigma_sql(dialect, runs="v_run_emissions", where=runs, grain=()),
        "run_embodied": run_embodied_sql(dialect, where=embodied, grain=()),
    }
    if only is None:
        return {part: frame(engine, q, **params) for part, q in sql.items()}
    # sums, so the chunks' rows add up like one query's (assemble sums every part's rows)
    return {part: frame_in(engine, q, "only", only, **params) for part, q in sql.items()}


def total_from_views(
    engine: Engine,
    *,
    period: Period | None = None,
    team: str | None = None,
    model: str | None = None,
) -> FootprintTotal:
    """:func:`total_with_range` from the per-record views (what the rollup must equal)."""
    params = _params(period, team, model)
    parts = _run_parts(engine, params, model)
    dialect = engine.dialect.name
    windows = (
        f"{_filter('e.month', 'i.team')} AND {_window_model(model, 'i.model_name')}",
        f"{_filter('e.month', 'e.team')} AND {_window_model(model, 'e.model_name')}",
    )
    parts["window_co2e"] = frame(
        engine, window_co2e_sql(dialect, where=windows[0], grain=()), **params
    )
    parts["window_embodied"] = frame(
        engine, window_embodied_sql(dialect, where=windows[1], grain=()), **params
    )
    return assemble(*(parts[p] for p in PARTS))
