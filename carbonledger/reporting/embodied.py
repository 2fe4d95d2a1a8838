"""Embodied emissions, SCI and ranges for the app and the report: queries over the views.

Embodied CO2e is Scope 3 and every function returns it **beside** the operational (Scope 2,
location-based) figure, never summed into it. Training is counted through runs (kind other
than ``inference``), serving through its windows (``v_window_embodied``), as for operational
CO2e. A total's range follows the documented rule (``carbonledger.uncertainty.total_range``):
each error source's standard uncertainty adds linearly across the records of the total, then
the sources add in quadrature. Runs' operational sources come from ``v_run_uncertainty``,
serving windows' from their methods with the same constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from carbonledger import contract as c
from carbonledger.reporting.db import frame
from carbonledger.reporting.periods import Period
from carbonledger.uncertainty import (
    Contribution,
    Range,
    energy_uncertainty,
    intensity_uncertainty,
    to_range,
)


def _filter(month: str = "month", team: str = "team") -> str:
    return (
        f"(CAST(:first AS VARCHAR(7)) IS NULL OR {month} >= :first) "
        f"AND (CAST(:last AS VARCHAR(7)) IS NULL OR {month} <= :last) "
        f"AND (CAST(:team AS VARCHAR(200)) IS NULL OR {team} = :team)"
    )


def _window_model(model: str | None, column: str = "model_name") -> str:
    return "1 = 1" if model is None else f"{column} = :model"


def _run_model(engine: Engine, model: str | None) -> str:
    """The runs of ``model``'s lifecycle (``v_lifecycle_runs``); every run when ``None``.

    On PostgreSQL an array of the model's run keys, so only those runs' CO2e is computed (a
    semi-join on the view was planned over every run: 5 s at 200,000 runs).
    """
    if model is None:
        return "1 = 1"
    runs = "SELECT run_pk FROM v_lifecycle_runs WHERE model_name = :model"
    if engine.dialect.name == "postgresql":
        return f"run_pk = ANY(ARRAY({runs}))"
    return f"run_pk IN ({runs})"


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


@dataclass(frozen=True, slots=True)
class FootprintTotal:
    """A total with both scopes apart, each with its range.

    Attributes:
        operational: location-based operational CO2e (Scope 2), kg, with its range.
        embodied: embodied CO2e (Scope 3), kg, with its range; not part of ``operational``.
        records: runs and serving windows counted.
        records_without_embodied: of them, those without an embodied figure (each says why).
    """

    operational: Range
    embodied: Range
    records: int
    records_without_embodied: int


def _window_contributions(
    engine: Engine, params: dict[str, Any], model: str | None
) -> tuple[float, list[Contribution]]:
    """Operational CO2e of the serving windows and its contributions, per method set."""
    df = frame(
        engine,
        "SELECT i.methods, i.intensity_method, "
        "SUM(w.gpu_energy_kwh * COALESCE(i.pue, 1.0) * i.location_intensity_g_per_kwh) "
        "/ 1000.0 AS gpu_kg, "
        "SUM(w.cpu_energy_kwh * COALESCE(i.pue, 1.0) * i.location_intensity_g_per_kwh) "
        "/ 1000.0 AS cpu_kg, "
        "SUM(w.ram_energy_kwh * COALESCE(i.pue, 1.0) * i.location_intensity_g_per_kwh) "
        "/ 1000.0 AS ram_kg, SUM(i.co2e_location_kg) AS co2e_kg "
        "FROM inference_co2e i JOIN inference_windows w ON w.id = i.window_pk "
        "JOIN v_window_embodied e ON e.window_pk = i.window_pk "
        f"WHERE {_filter('e.month', 'i.team')} AND {_window_model(model, 'i.model_name')} "
        "GROUP BY i.methods, i.intensity_method",
        **params,
    )
    total, parts = 0.0, []
    for row in df.itertuples(index=False):
        kg = float(row.co2e_kg or 0.0)
        total += kg
        methods = c.parse_methods(row.methods)
        known = 0.0
        for component, part in (("gpu", row.gpu_kg), ("cpu", row.cpu_kg), ("ram", row.ram_kg)):
            if part is not None and not pd.isna(part):
                method = methods.get(component)
                key = f"energy:{method or 'unknown'}"
                parts.append(Contribution(key, energy_uncertainty(method) * float(part)))
                known += float(part)
        rest = kg - known
        if rest > 1e-12 * max(kg, 1.0):  # energy not split by component (imported windows)
            method = "+".join(sorted(set(methods.values()))) or None
            parts.append(
                Contribution(f"energy:{method or 'unknown'}", energy_uncertainty(method) * rest)
            )
        intensity = str(row.intensity_method or c.INTENSITY_YEARLY)  # as activity_co2e chose
        parts.append(Contribution(f"intensity:{intensity}", intensity_uncertainty(intensity) * kg))
    return total, parts


def total_with_range(
    engine: Engine,
    *,
    period: Period | None = None,
    team: str | None = None,
    model: str | None = None,
) -> FootprintTotal:
    """Operational (Scope 2) and embodied (Scope 3) totals, apart, each with its range.

    ``model`` selects a registered model's lifecycle: its training runs (``v_lifecycle_runs``)
    and the serving windows of its versions.
    """
    params = _params(period, team, model)
    run_model, window_model = _run_model(engine, model), _window_model(model)
    runs = frame(
        engine,
        "SELECT COUNT(*) AS n, SUM(co2e_location_kg) AS co2e_kg FROM v_run_emissions "
        f"WHERE kind <> 'inference' AND {_FILTER} AND {run_model}",
        **params,
    )
    run_parts = frame(
        engine,
        "SELECT u.uncertainty_key, SUM(u.sigma_kg) AS sigma_kg FROM v_run_uncertainty u "
        "WHERE u.run_pk IN (SELECT run_pk FROM v_run_emissions "
        f"WHERE kind <> 'inference' AND {_FILTER} AND {run_model}) "
        "GROUP BY u.uncertainty_key",
        **params,
    )
    window_kg, contributions = _window_contributions(engine, params, model)
    contributions += [
        Contribution(r.uncertainty_key, float(r.sigma_kg))
        for r in run_parts.itertuples(index=False)
        if r.sigma_kg is not None and not pd.isna(r.sigma_kg)
    ]
    operational_kg = float(runs.co2e_kg.fillna(0.0).iloc[0]) + window_kg
    embodied = frame(
        engine,
        "WITH a AS (SELECT embodied_co2e_kg, relative_uncertainty, uncertainty_key "
        f"FROM v_run_embodied WHERE kind <> 'inference' AND {_FILTER} AND {run_model} "
        "UNION ALL SELECT embodied_co2e_kg, relative_uncertainty, uncertainty_key "
        f"FROM v_window_embodied WHERE {_FILTER} AND {window_model}) "
        "SELECT uncertainty_key, SUM(embodied_co2e_kg) AS co2e_kg, "
        "SUM(CASE WHEN embodied_co2e_kg IS NULL THEN 1 ELSE 0 END) AS missing, "
        "SUM(embodied_co2e_kg * relative_uncertainty) AS sigma_kg FROM a "
        "GROUP BY uncertainty_key",
        **params,
    )
    known = embodied[embodied.uncertainty_key.notna()]
    embodied_kg = float(known.co2e_kg.fillna(0.0).sum())
    embodied_parts = [
        Contribution(str(r.uncertainty_key), float(r.sigma_kg))
        for r in known.itertuples(index=False)
        if r.sigma_kg is not None and not pd.isna(r.sigma_kg)
    ]
    windows = frame(
        engine,
        f"SELECT COUNT(*) AS n FROM v_window_embodied WHERE {_FILTER} AND {window_model}",
        **params,
    )
    return FootprintTotal(
        operational=to_range(operational_kg, contributions),
        embodied=to_range(embodied_kg, embodied_parts),
        records=int(runs.n.iloc[0]) + int(windows.n.iloc[0]),
        records_without_embodied=int(embodied.missing.fillna(0).sum()),
    )
