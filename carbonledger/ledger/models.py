"""The ledger's tables, as typed Core tables (``carbonledger.ledger.table_base``).

Activity data (kWh per component, zone, period) is kept apart from emission factors: CO2e is
recomputed by the ``run_co2e`` view (see ``migrations/``) from the current version of each factor,
so a restated factor restates every total, and the plugin's own figure stays beside it.
Constraint names follow ``NAMING_CONVENTION`` so migrations stay stable across databases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from carbonledger.ledger.table_base import NAMING_CONVENTION, Base, Col, column

__all__ = ["NAMING_CONVENTION", "Base", "Col", "column"]  # and the tables below

RUN_KINDS = ("training", "inference", "estimate")
METERING = ("metered", "unmetered", "imported")
BASES = ("location", "market")

JsonType = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)


class TrackingSource(Base):
    """An MLflow tracking server (or an import such as a CodeCarbon CSV) the ledger reads."""

    __tablename__ = "tracking_sources"

    id: Col[int] = column(Integer, primary_key=True)
    uri: Col[str] = column(String(1000), unique=True)
    kind: Col[str] = column(String(32), default="mlflow")
    created_at: Col[datetime] = column(Timestamp, server_default=func.now())


class Team(Base):
    """A team runs are charged to (``unassigned`` when no rule matches)."""

    __tablename__ = "teams"

    id: Col[int] = column(Integer, primary_key=True)
    name: Col[str] = column(String(200), unique=True)


class Experiment(Base):
    """An MLflow experiment of a tracking source."""

    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("source_id", "experiment_id"),)

    id: Col[int] = column(Integer, primary_key=True)
    source_id: Col[int] = column(ForeignKey("tracking_sources.id", ondelete="CASCADE"))
    experiment_id: Col[str] = column(String(64))
    name: Col[str] = column(String(500))
    team: Col[str | None] = column(String(200))
    tags: Col[dict[str, Any]] = column(JsonType, default=dict)


class RegisteredModel(Base):
    """A registered model of a tracking source's model registry."""

    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("source_id", "name"),)

    id: Col[int] = column(Integer, primary_key=True)
    source_id: Col[int] = column(ForeignKey("tracking_sources.id", ondelete="CASCADE"))
    name: Col[str] = column(String(500))
    created_at: Col[datetime | None] = column(Timestamp)
    updated_at: Col[datetime | None] = column(Timestamp)
    tags: Col[dict[str, Any]] = column(JsonType, default=dict)


class ModelVersion(Base):
    """A version of a registered model and the run that produced it (lineage)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("registered_model_id", "version"),)

    id: Col[int] = column(Integer, primary_key=True)
    registered_model_id: Col[int] = column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Col[int] = column(Integer)
    run_id: Col[str | None] = column(String(64), index=True)
    model_id: Col[str | None] = column(String(64))
    lineage: Col[str | None] = column(String(32))  # run_id | logged-model
    created_at: Col[datetime | None] = column(Timestamp)


class Run(Base):
    """One MLflow run (training, inference window run, or estimate) with its activity data.

    ``energy_kwh``/``facility_energy_kwh`` are the run's **exclusive** energy: MLflow's figure
    of a parent run includes its nested children (the plugin's totals are inclusive), so the
    ETL subtracts the children's and keeps MLflow's figure in ``inclusive_*``; any sum over
    runs counts each kWh once. ``estimated_energy_kwh`` is the exclusive energy of the
    components measured by an estimate. Team and model: ``own_*`` come from the run's own tags,
    ``fallback_*`` from its experiment and the mapping rules, and ``team``/``model_name`` are
    what the run is charged to (own tags, else the nearest tagged ancestor's, else the
    fallback; see ``carbonledger.etl.attribution``). ``plugin_*`` columns keep the plugin's
    own figures beside the ledger's recomputation (``run_co2e`` view).
    """

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("source_id", "run_id"),
        CheckConstraint("kind IN ('training', 'inference', 'estimate')", name="kind"),
        CheckConstraint("metering IN ('metered', 'unmetered', 'imported')", name="metering"),
        Index(None, "team", "start_time"),
        Index(None, "model_name"),
        Index(None, "status", "heartbeat_at"),
        Index(None, "source_id", "parent_run_id"),
        Index(None, "loaded_at"),  # the rollups' dirty-month check (f6b7c8d9e0a1)
    )

    id: Col[int] = column(Integer, primary_key=True)
    source_id: Col[int] = column(ForeignKey("tracking_sources.id", ondelete="CASCADE"))
    run_id: Col[str] = column(String(64))
    experiment_id: Col[str | None] = column(String(64))
    run_name: Col[str | None] = column(String(500))
    # MLflow's mlflow.parentRunId: a nested run, whose energy its parent's figure includes.
    parent_run_id: Col[str | None] = column(String(64))
    kind: Col[str] = column(String(16), default="training")
    status: Col[str] = column(String(16))
    lifecycle_stage: Col[str | None] = column(String(16))
    is_stale: Col[bool] = column(Boolean, default=False)
    stale_at: Col[datetime | None] = column(Timestamp)
    start_time: Col[datetime | None] = column(Timestamp)
    end_time: Col[datetime | None] = column(Timestamp)
    heartbeat_at: Col[datetime | None] = column(Timestamp)
    activity_year: Col[int | None] = column(Integer)
    user_id: Col[str | None] = column(String(200))
    team: Col[str] = column(String(200), default="unassigned")
    team_rule: Col[str | None] = column(String(64))
    model_name: Col[str | None] = column(String(500))
    model_rule: Col[str | None] = column(String(64))
    own_team: Col[str | None] = column(String(200))
    own_model_name: Col[str | None] = column(String(500))
    fallback_team: Col[str | None] = column(String(200))
    fallback_team_rule: Col[str | None] = column(String(64))
    fallback_model_name: Col[str | None] = column(String(500))
    # hardware and location
    gpu_model: Col[str | None] = column(String(200))
    gpu_count: Col[int | None] = column(Integer)
    cpu_model: Col[str | None] = column(String(200))
    cpu_count: Col[int | None] = column(Integer)
    ram_gb: Col[float | None] = column(Double)
    node_count: Col[int | None] = column(Integer)
    attribution: Col[str | None] = column(String(16))
    methods: Col[str | None] = column(String(500))
    country: Col[str | None] = column(String(8))
    cloud_provider: Col[str | None] = column(String(16))
    cloud_region: Col[str | None] = column(String(64))
    grid_zone: Col[str | None] = column(String(64))
    # activity data
    metering: Col[str] = column(String(16), default="metered")
    any_component_estimated: Col[bool] = column(Boolean, default=False)
    duration_s: Col[float | None] = column(Double)
    energy_kwh: Col[float | None] = column(Double)
    estimated_energy_kwh: Col[float | None] = column(Double)
    inclusive_energy_kwh: Col[float | None] = column(Double)
    pue: Col[float | None] = column(Double)
    facility_energy_kwh: Col[float | None] = column(Double)
    inclusive_facility_energy_kwh: Col[float | None] = column(Double)
    avg_power_w: Col[float | None] = column(Double)
    peak_power_w: Col[float | None] = column(Double)
    # the plugin's own figures, kept beside the ledger's recomputation
    plugin_version: Col[str | None] = column(String(32))
    plugin_intensity_g_per_kwh: Col[float | None] = column(Double)
    plugin_intensity_source: Col[str | None] = column(String(200))
    plugin_co2e_kg: Col[float | None] = column(Double)
    content_hash: Col[str] = column(String(64))
    loaded_at: Col[datetime] = column(Timestamp, server_default=func.now())


class RunEnergy(Base):
    """Energy of one component of a run, with the method that produced it.

    ``energy_kwh`` is exclusive of nested children (like ``runs.energy_kwh``);
    ``inclusive_energy_kwh`` is the figure MLflow holds.
    """

    __tablename__ = "run_energy"

    run_pk: Col[int] = column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    component: Col[str] = column(String(16), primary_key=True)  # gpu|cpu|ram|machine
    energy_kwh: Col[float] = column(Double)
    inclusive_energy_kwh: Col[float | None] = column(Double)
    method: Col[str | None] = column(String(64))
    is_estimate: Col[bool] = column(Boolean, default=False)


class EmissionFactor(Base):
    """A versioned grid emission factor; the highest ``version`` per key is current.

    ``basis`` is ``location`` (grid average) or ``market`` (a contractual factor the
    organisation configured for a zone and year: PPA, green tariff, supplier mix).
    """

    __tablename__ = "emission_factors"
    __table_args__ = (
        UniqueConstraint("zone", "year", "basis", "version"),
        CheckConstraint("basis IN ('location', 'market')", name="basis"),
        CheckConstraint("intensity_g_per_kwh >= 0", name="intensity_nonnegative"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    zone: Col[str] = column(String(64))
    country: Col[str | None] = column(String(8))
    year: Col[int] = column(Integer)
    basis: Col[str] = column(String(16), default="location")
    intensity_g_per_kwh: Col[float] = column(Double)
    source: Col[str] = column(String(200))
    licence: Col[str | None] = column(String(200))
    instrument: Col[str | None] = column(String(200))
    version: Col[int] = column(Integer, default=1)
    valid_from: Col[datetime] = column(Timestamp, server_default=func.now())
    note: Col[str | None] = column(Text)


class InferenceWindow(Base):
    """Energy, requests and latency of one serving window of a model version.

    Metered windows come from MLflow inference runs (``carbon.kind=inference``), one row per
    window and version; imported ones from ``carbonledger import inference`` (request counts,
    energy given or estimated from a benchmark, ``energy_is_estimate``). ``energy_kwh`` is
    ``active_energy_kwh + idle_energy_kwh``: idle energy is charged to the versions a process
    hosts by time share, active energy by request share. CO2e is recomputed by the
    ``inference_co2e`` view from the current emission factors, like ``run_co2e``.
    ``estimated_energy_kwh`` is the part of ``energy_kwh`` that an estimate produced (all of
    it for windows estimated from request counts; the estimated components of a metered one).
    """

    __tablename__ = "inference_windows"
    __table_args__ = (
        UniqueConstraint("source_id", "run_id", "window_start"),
        CheckConstraint("metering IN ('metered', 'imported')", name="metering"),
        CheckConstraint("requests >= 0", name="requests_nonnegative"),
        Index(None, "model_name", "window_start"),
        Index(None, "team", "window_start"),
    )

    id: Col[int] = column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source_id: Col[int] = column(ForeignKey("tracking_sources.id", ondelete="CASCADE"))
    run_id: Col[str] = column(String(64))
    model_name: Col[str | None] = column(String(500))
    model_version: Col[int | None] = column(Integer)
    team: Col[str | None] = column(String(200))
    window_start: Col[datetime] = column(Timestamp)
    window_end: Col[datetime] = column(Timestamp)
    activity_year: Col[int | None] = column(Integer)
    requests: Col[int] = column(BigInteger, default=0)
    rows: Col[int] = column(BigInteger, default=0, server_default="0")
    errors: Col[int] = column(BigInteger, default=0, server_default="0")
    busy_s: Col[float | None] = column(Double)
    latency_p50_ms: Col[float | None] = column(Double)
    latency_p95_ms: Col[float | None] = column(Double)
    latency_p99_ms: Col[float | None] = column(Double)
    metering: Col[str] = column(String(16), default="metered", server_default="metered")
    any_component_estimated: Col[bool] = column(Boolean, default=False, server_default=false())
    methods: Col[str | None] = column(String(500))
    gpu_energy_kwh: Col[float | None] = column(Double)
    cpu_energy_kwh: Col[float | None] = column(Double)
    ram_energy_kwh: Col[float | None] = column(Double)
    energy_kwh: Col[float] = column(Double)
    estimated_energy_kwh: Col[float | None] = column(Double)
    active_energy_kwh: Col[float | None] = column(Double)
    idle_energy_kwh: Col[float | None] = column(Double)
    pue: Col[float | None] = column(Double)
    facility_energy_kwh: Col[float] = column(Double)
    grid_zone: Col[str | None] = column(String(64))
    plugin_intensity_g_per_kwh: Col[float | None] = column(Double)
    plugin_co2e_kg: Col[float | None] = column(Double)
    loaded_at: Col[datetime] = column(Timestamp, server_default=func.now())


class Budget(Base):
    """A carbon budget: a model's lifecycle, or a team per month, quarter or year.

    ``origin`` is ``yaml`` for budgets synced from ``budgets.yaml`` (the file owns them: a
    budget removed from it is removed here) or ``cli`` for ``carbonledger budgets set``.
    """

    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("scope", "scope_name", "period"),
        CheckConstraint("scope IN ('model', 'team')", name="scope"),
        CheckConstraint("limit_co2e_kg > 0", name="limit_positive"),
        CheckConstraint("period IN ('lifecycle', 'month', 'quarter', 'year')", name="period"),
        CheckConstraint("basis IN ('location', 'market')", name="basis"),
        CheckConstraint("origin IN ('cli', 'yaml')", name="origin"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    scope: Col[str] = column(String(16))
    scope_name: Col[str] = column(String(500))
    period: Col[str] = column(String(16))  # lifecycle | month | quarter | year
    limit_co2e_kg: Col[float] = column(Double)
    basis: Col[str] = column(String(16), default="location")
    thresholds_pct: Col[list[float]] = column(JsonType, default=lambda: [50, 75, 90, 100])
    origin: Col[str] = column(String(16), default="cli", server_default="cli")
    note: Col[str | None] = column(Text)
    created_at: Col[datetime] = column(Timestamp, server_default=func.now())
    updated_at: Col[datetime] = column(Timestamp, server_default=func.now())


class BudgetAlert(Base):
    """A threshold crossing already notified, so an alert fires once per crossing and period.

    ``delivery`` is ``pending`` (recorded, not yet posted), ``sent`` (the webhook took it),
    ``failed`` (pending and failed are retried at the next check) or ``none`` (no webhook).
    """

    __tablename__ = "budget_alerts"
    __table_args__ = (
        UniqueConstraint("budget_id", "threshold_pct", "period_start"),
        CheckConstraint("delivery IN ('pending', 'sent', 'failed', 'none')", name="delivery"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    budget_id: Col[int] = column(ForeignKey("budgets.id", ondelete="CASCADE"))
    threshold_pct: Col[float] = column(Double)
    period_start: Col[datetime] = column(Timestamp)
    fired_at: Col[datetime] = column(Timestamp, server_default=func.now())
    co2e_kg: Col[float] = column(Double)
    used_pct: Col[float | None] = column(Double)
    limit_co2e_kg: Col[float | None] = column(Double)
    delivery: Col[str] = column(String(16), default="none", server_default="none")
    detail: Col[str | None] = column(Text)


class EtlState(Base):
    """The incremental cursor of one source, written in the same transaction as its data."""

    __tablename__ = "etl_state"

    source_id: Col[int] = column(
        ForeignKey("tracking_sources.id", ondelete="CASCADE"), primary_key=True
    )
    end_time_ms: Col[int | None] = column(BigInteger)
    end_time_boundary_ids: Col[list[str]] = column(JsonType, default=list)
    heartbeat_ms: Col[int | None] = column(BigInteger)
    heartbeat_boundary_ids: Col[list[str]] = column(JsonType, default=list)
    models_updated_ms: Col[int | None] = column(BigInteger)
    last_load_at: Col[datetime | None] = column(Timestamp)
    last_summary: Col[dict[str, Any]] = column(JsonType, default=dict)


class Quarantine(Base):
    """A record the ETL refused, with the reason and the raw payload; never silently dropped."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("source_id", "record_id"),)

    id: Col[int] = column(Integer, primary_key=True)
    source_id: Col[int] = column(ForeignKey("tracking_sources.id", ondelete="CASCADE"))
    record_id: Col[str] = column(String(200))
    reason: Col[str] = column(String(64))
    detail: Col[str] = column(Text)
    payload: Col[dict[str, Any]] = column(JsonType)
    first_seen_at: Col[datetime] = column(Timestamp, server_default=func.now())
    last_seen_at: Col[datetime] = column(Timestamp, server_default=func.now())
