"""Runs: a filterable table, one run's detail, and the efficiency (Pareto) analysis."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pandas as pd
from sqlalchemy import Engine

from carbonledger import contract
from carbonledger.ledger.engine import redact_uri
from carbonledger.reporting.db import frame
from carbonledger.reporting.periods import Period
from carbonledger.settings import get_settings

RUN_COLUMNS = (
    "run_id, run_name, experiment_id, team, model_name, kind, status, start_time, "
    "duration_s, metering, any_component_estimated, facility_energy_kwh, "
    "inclusive_facility_energy_kwh, zone, co2e_location_kg, co2e_market_kg, "
    "estimated_co2e_location_kg, inclusive_co2e_location_kg, gpu_model, gpu_count"
)
_FILTERS = (
    "start_time >= :start AND start_time < :end "
    "AND (CAST(:team AS VARCHAR(200)) IS NULL OR team = :team) "
    "AND (CAST(:model AS VARCHAR(500)) IS NULL OR model_name = :model) "
    "AND (CAST(:status AS VARCHAR(16)) IS NULL OR status = :status) "
    "AND (CAST(:search AS VARCHAR(500)) IS NULL OR run_name LIKE :search OR run_id = :raw)"
)


_EXPERIMENT_JOIN = (
    "LEFT JOIN experiments x ON x.source_id = e.source_id AND x.experiment_id = e.experiment_id"
)


def _bounds(engine: Engine, period: Period) -> dict[str, Any]:
    if engine.dialect.name == "sqlite":
        fmt = "%Y-%m-%d %H:%M:%S"
        return {"start": period.start.strftime(fmt), "end": period.end.strftime(fmt)}
    return {"start": period.start, "end": period.end}


def runs_table(
    engine: Engine,
    *,
    period: Period,
    team: str | None = None,
    model_name: str | None = None,
    status: str | None = None,
    search: str | None = None,
    limit: int = 500,
) -> pd.DataFrame:
    """Runs of the period (newest first) matching the filters, at most ``limit`` rows.

    The page of runs is chosen on the ``runs`` table (index on ``start_time``) before the
    view computes CO2e for those rows only, so it stays fast at a million runs.
    """
    ids = frame(
        engine,
        f"SELECT id FROM runs WHERE {_FILTERS} ORDER BY start_time DESC LIMIT :limit",
        **_bounds(engine, period),
        team=team,
        model=model_name,
        status=status,
        search=f"%{search}%" if search else None,
        raw=search,
        limit=int(limit),
    )
    columns = ", ".join(f"e.{c.strip()}" for c in RUN_COLUMNS.split(","))
    # Experiment names are looked up and the rows sorted apart: with a join or an ORDER BY
    # on the view, PostgreSQL computed CO2e for every run first (3-4 s for a page of 500 at
    # 200,000 runs, against 0.4 s).
    runs = frame(
        engine,
        f"SELECT {columns}, e.source_id AS source_pk FROM v_run_emissions e WHERE e.run_pk IN :ids",
        ids=[int(i) for i in ids.id] or [-1],
    )
    runs = runs.sort_values(["start_time", "run_id"], ascending=[False, True], kind="stable")
    names = frame(
        engine,
        "SELECT source_id AS source_pk, experiment_id, name FROM experiments "
        "WHERE experiment_id IN :experiments",
        experiments=sorted({str(x) for x in runs.experiment_id.dropna()}) or [""],
    )
    out = runs.merge(names, on=["source_pk", "experiment_id"], how="left").reset_index(drop=True)
    out["experiment"] = out.name.where(out.name.notna(), out.experiment_id)
    return out.drop(columns=["source_pk", "name"])


def run_detail(engine: Engine, *, run_id: str) -> dict[str, Any] | None:
    """One run: hardware, methods, energy by component, intensity source, MLflow link.

    ``inclusive_*`` figures are the run's as MLflow holds them (a parent's include its nested
    runs, ``nested_runs`` of them); the plain ones are its exclusive part.
    """
    pk = frame(engine, "SELECT MIN(id) AS pk FROM runs WHERE run_id = :run_id", run_id=run_id)
    if pk.empty or pk.pk.iloc[0] is None or pk.pk.isna().iloc[0]:
        return None
    df = frame(
        engine,
        "SELECT e.*, r.methods, r.attribution, r.cpu_model, r.cpu_count, r.ram_gb, "
        "r.node_count, r.country, r.cloud_provider, r.cloud_region, r.plugin_version, "
        "r.plugin_intensity_source, r.avg_power_w, r.peak_power_w, s.uri AS source_uri "
        "FROM v_run_emissions e JOIN runs r ON r.id = e.run_pk "
        "JOIN tracking_sources s ON s.id = e.source_id WHERE e.run_pk = :pk",
        pk=int(pk.pk.iloc[0]),
    )
    if df.empty:
        return None
    df = df.loc[:, ~df.columns.duplicated()]
    row = df.iloc[0].to_dict()
    uri = str(row.pop("source_uri"))
    row["source"] = redact_uri(uri)
    row["mlflow_url"] = mlflow_run_url(uri, str(row["experiment_id"]), run_id)
    row["energy_history"] = energy_history(engine, source_id=int(row["source_id"]), run_id=run_id)
    row["energy"] = frame(
        engine,
        "SELECT component, energy_kwh, inclusive_energy_kwh, method, is_estimate "
        "FROM run_energy WHERE run_pk = :pk ORDER BY component",
        pk=int(row["run_pk"]),
    )
    # A parent's MLflow figure includes its nested runs: shown alone, the run shows that
    # inclusive figure; its own (exclusive) part is what sums over runs use.
    row["nested_runs"] = int(
        frame(
            engine,
            "SELECT COUNT(*) AS n FROM runs WHERE source_id = :source AND parent_run_id = :run",
            source=int(row["source_id"]),
            run=run_id,
        ).n.iloc[0]
    )
    return row


def energy_history(engine: Engine, *, source_id: int, run_id: str) -> pd.DataFrame:
    """The run's cumulative IT energy over time (``run_metric_history``), oldest first."""
    df = frame(
        engine,
        "SELECT timestamp_ms, value AS energy_kwh FROM run_metric_history "
        "WHERE source_id = :source AND run_id = :run AND key = :key ORDER BY step",
        source=source_id,
        run=run_id,
        key=contract.M_ENERGY_KWH,
    )
    df["time"] = pd.to_datetime(df.timestamp_ms, unit="ms", utc=True)
    return df[["time", "energy_kwh"]]


def mlflow_base_url(source_uri: str) -> str | None:
    """The MLflow UI base URL of a tracking source (``None`` for a store without a UI).

    ``CARBONLEDGER_MLFLOW_UI_URLS`` (JSON, source URI -> UI URL) first, else the source URI
    itself when it is http(s), credentials removed.
    """
    configured = get_settings().mlflow_ui_urls.get(source_uri)
    if configured:
        return configured.rstrip("/")
    if not source_uri.startswith(("http://", "https://")):
        return None
    base = redact_uri(source_uri).rstrip("/")
    if ":***@" in base:  # never put credentials in a link
        scheme, rest = base.split("://", 1)
        base = f"{scheme}://{rest.split('@', 1)[1]}"
    return base


def mlflow_model_url(source_uri: str, model_name: str, version: int | None = None) -> str | None:
    """Link to a registered model (or one version) in the MLflow UI, if it has one."""
    base = mlflow_base_url(source_uri)
    if base is None:
        return None
    path = f"/#/models/{quote(model_name, safe='')}"
    return base + path + (f"/versions/{version}" if version is not None else "")


def model_mlflow_url(engine: Engine, *, model_name: str) -> str | None:
    """Link to a registered model in the MLflow UI of the first source that holds it."""
    df = frame(
        engine,
        "SELECT s.uri FROM registered_models rm JOIN tracking_sources s ON s.id = rm.source_id "
        "WHERE rm.name = :name ORDER BY s.id LIMIT 1",
        name=model_name,
    )
    return mlflow_model_url(str(df.uri.iloc[0]), model_name) if len(df) else None


def mlflow_run_url(source_uri: str, experiment_id: str, run_id: str) -> str | None:
    """Link to the run in the MLflow UI (``None`` for a non-HTTP store such as SQLite)."""
    base = mlflow_base_url(source_uri)
    if base is None:
        return None
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def metric_keys(engine: Engine, *, period: Period, team: str | None = None) -> list[str]:
    """Non-carbon MLflow metrics logged by runs of the period (for the Efficiency page)."""
    df = frame(
        engine,
        "SELECT DISTINCT m.key FROM run_metrics m JOIN v_run_emissions e "
        "ON e.source_id = m.source_id AND e.run_id = m.run_id "
        "WHERE e.start_time >= :start AND e.start_time < :end "
        "AND (CAST(:team AS VARCHAR(200)) IS NULL OR e.team = :team) ORDER BY m.key",
        **_bounds(engine, period),
        team=team,
    )
    return df.key.tolist() if len(df) else []


def efficiency(
    engine: Engine,
    *,
    metric: str,
    period: Period,
    team: str | None = None,
    model_name: str | None = None,
    higher_is_better: bool = True,
) -> pd.DataFrame:
    """Each run's ``metric`` against its CO2e, with ``on_front`` marking the Pareto front."""
    df = frame(
        engine,
        "SELECT e.run_id, e.run_name, COALESCE(x.name, e.experiment_id) AS experiment, "
        "e.model_name, e.team, e.co2e_location_kg, m.value AS metric_value FROM run_metrics m "
        "JOIN v_run_emissions e ON e.source_id = m.source_id AND e.run_id = m.run_id "
        f"{_EXPERIMENT_JOIN} "
        "WHERE m.key = :metric AND m.value IS NOT NULL AND e.co2e_location_kg IS NOT NULL "
        "AND e.start_time >= :start AND e.start_time < :end "
        "AND (CAST(:team AS VARCHAR(200)) IS NULL OR e.team = :team) "
        "AND (CAST(:model AS VARCHAR(500)) IS NULL OR e.model_name = :model) "
        "ORDER BY e.co2e_location_kg, e.run_id",
        metric=metric,
        team=team,
        model=model_name,
        **_bounds(engine, period),
    )
    df["on_front"] = pareto_front(
        df.co2e_location_kg.tolist(), df.metric_value.tolist(), higher_is_better
    )
    return df


def pareto_front(co2e_kg: list[float], metric: list[float], higher_is_better: bool) -> list[bool]:
    """Which points no other point beats (less or equal CO2e and a better or equal metric)."""
    sign = 1.0 if higher_is_better else -1.0
    order = sorted(range(len(co2e_kg)), key=lambda i: (co2e_kg[i], -sign * metric[i]))
    front = [False] * len(co2e_kg)
    best = float("-inf")
    for i in order:
        if sign * metric[i] > best:
            front[i] = True
            best = sign * metric[i]
    return front
