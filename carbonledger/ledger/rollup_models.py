"""Reporting tables: pre-aggregated rollups the app reads, run metrics, and the refresh state.

The ETL refreshes the rollups incrementally (``carbonledger.reporting.rollups``) in the same
transaction as the data, so the app and ``carbonledger report`` read a few thousand rows
instead of millions of runs and inference windows. Months are ``YYYY-MM`` and days
``YYYY-MM-DD`` text keys in UTC, so period filters are plain comparisons on both databases.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Double, ForeignKey, Index, Integer, String

from carbonledger.ledger.models import Base, Col, InferenceWindow, Run, Timestamp, column

# Period filters on every run and every window (the runs page without a team, the refresh).
Index("ix_runs_start_time", Run.start_time)
Index("ix_inference_windows_window_start", InferenceWindow.window_start)
# The refresh finds windows re-loaded since the last one (their days are recomputed).
Index("ix_inference_windows_loaded_at", InferenceWindow.loaded_at)


class RollupTeamMonth(Base):
    """CO2e per team, month and activity (training/inference), with its estimated part.

    ``estimated_*`` is the share of the figures that rests on estimated components, weighted
    by energy (a run's measured GPU energy stays measured when its RAM is estimated);
    ``records_with_estimates`` counts the records with at least one estimated component.
    """

    __tablename__ = "rollup_team_month"

    month: Col[str] = column(String(7), primary_key=True)
    team: Col[str] = column(String(200), primary_key=True)
    activity: Col[str] = column(String(16), primary_key=True)
    records: Col[int] = column(BigInteger)
    records_with_estimates: Col[int] = column(BigInteger)
    requests: Col[int] = column(BigInteger)
    energy_kwh: Col[float] = column(Double)
    facility_energy_kwh: Col[float] = column(Double)
    estimated_facility_energy_kwh: Col[float] = column(Double)
    co2e_location_kg: Col[float] = column(Double)
    co2e_market_kg: Col[float] = column(Double)
    estimated_co2e_location_kg: Col[float] = column(Double)
    estimated_co2e_market_kg: Col[float] = column(Double)
    co2e_location_yearly_kg: Col[float | None] = column(Double)
    embodied_co2e_kg: Col[float | None] = column(Double)  # Scope 3, apart


class RollupModelMonth(Base):
    """Training CO2e per registered model (``v_lifecycle_runs``), team and month."""

    __tablename__ = "rollup_model_month"

    model_name: Col[str] = column(String(500), primary_key=True)
    team: Col[str] = column(String(200), primary_key=True)
    month: Col[str] = column(String(7), primary_key=True)
    runs: Col[int] = column(BigInteger)
    facility_energy_kwh: Col[float] = column(Double)
    co2e_location_kg: Col[float] = column(Double)
    co2e_market_kg: Col[float] = column(Double)
    estimated_co2e_location_kg: Col[float] = column(Double)
    co2e_location_yearly_kg: Col[float | None] = column(Double)
    embodied_co2e_kg: Col[float | None] = column(Double)  # Scope 3, apart


class RollupInferenceDaily(Base):
    """Inference energy, requests and CO2e per model version, team and UTC day.

    The serving rows of ``rollup_team_month`` are this table summed by month, so it carries
    what they need: the estimated part (``estimated_*``, ``windows_with_estimates``: windows
    with some estimated energy) and the windows' embodied CO2e (Scope 3, apart).
    """

    __tablename__ = "rollup_inference_daily"
    __table_args__ = (Index(None, "month"),)

    day: Col[str] = column(String(10), primary_key=True)
    model_name: Col[str] = column(String(500), primary_key=True)
    model_version: Col[int] = column(Integer, primary_key=True)
    team: Col[str] = column(String(200), primary_key=True)
    month: Col[str] = column(String(7))
    windows: Col[int] = column(BigInteger)
    requests: Col[int] = column(BigInteger)
    energy_kwh: Col[float] = column(Double)
    facility_energy_kwh: Col[float] = column(Double)
    co2e_location_kg: Col[float] = column(Double)
    co2e_market_kg: Col[float] = column(Double)
    estimated_co2e_location_kg: Col[float] = column(Double)
    co2e_location_yearly_kg: Col[float | None] = column(Double)
    windows_with_estimates: Col[int | None] = column(BigInteger)
    estimated_facility_energy_kwh: Col[float | None] = column(Double)
    estimated_co2e_market_kg: Col[float | None] = column(Double)
    embodied_co2e_kg: Col[float | None] = column(Double)  # Scope 3, apart


class Scope2Figures:
    """Columns of a Scope 2 rollup row: its factor grouping and figures (a mixin)."""

    team: Col[str] = column(String(200))
    zone: Col[str] = column(String(64))
    factor_year: Col[int | None] = column(Integer)
    facility_energy_kwh: Col[float] = column(Double)
    location_intensity_g_per_kwh: Col[float | None] = column(Double)
    location_factor_source: Col[str | None] = column(String(200))
    location_factor_version: Col[int | None] = column(Integer)
    co2e_location_kg: Col[float] = column(Double)
    market_intensity_g_per_kwh: Col[float | None] = column(Double)
    market_factor_source: Col[str | None] = column(String(200))
    market_instrument: Col[str | None] = column(String(200))
    market_is_location_fallback: Col[int] = column(Integer)
    co2e_market_kg: Col[float] = column(Double)
    intensity_method: Col[str | None] = column(String(32))
    co2e_location_yearly_kg: Col[float | None] = column(Double)


class RollupScope2Day(Scope2Figures, Base):
    """Serving windows' Scope 2 per UTC day, team, zone, factor and intensity method.

    The inference rows of ``rollup_scope2_month`` are this table summed by month (the
    intensities are energy-weighted means, so a month's mean follows from its days').
    """

    __tablename__ = "rollup_scope2_day"
    __table_args__ = (Index(None, "day"), Index(None, "month"))

    id: Col[int] = column(Integer, primary_key=True)
    day: Col[str] = column(String(10))
    month: Col[str] = column(String(7))
    windows: Col[int] = column(BigInteger)


class RollupScope2Month(Scope2Figures, Base):
    """``v_scope2`` pre-aggregated: per month, activity, team, zone, factor and intensity method.

    Intensities are energy-weighted means of the group's records (with hourly factors each
    record has its own); ``co2e_location_yearly_kg`` is the yearly-factor figure beside them.
    """

    __tablename__ = "rollup_scope2_month"
    __table_args__ = (Index(None, "month"),)

    id: Col[int] = column(Integer, primary_key=True)
    month: Col[str] = column(String(7))
    activity: Col[str] = column(String(16))
    records: Col[int] = column(BigInteger)
    unmetered_records: Col[int] = column(BigInteger)


class RollupRanges(Base):
    """The parts of a total with its ranges, summed by month, day, team and model.

    ``carbonledger.reporting.range_parts`` defines the parts (``part``: ``run_co2e``,
    ``run_sigma``, ``window_co2e``, ``run_embodied``, ``window_embodied``) and
    ``carbonledger.reporting.rollup_ranges`` how the rows are grouped (``activity``:
    ``training`` every training run once, ``lifecycle`` a registered model's lifecycle runs,
    ``inference`` serving windows, by UTC ``day``). Team, model and the error-source columns
    are NULL where the records have none; ``sigma_kg`` is the sum of the records' standard
    uncertainties from ``uncertainty_key`` (they add linearly within a source).
    """

    __tablename__ = "rollup_ranges"
    __table_args__ = (
        Index(None, "activity", "month"),
        Index(None, "model_name"),
        Index(None, "day"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    activity: Col[str] = column(String(16))
    part: Col[str] = column(String(16))
    month: Col[str] = column(String(7))
    day: Col[str | None] = column(String(10))
    team: Col[str | None] = column(String(200))
    model_name: Col[str | None] = column(String(500))
    uncertainty_key: Col[str | None] = column(String(300))
    methods: Col[str | None] = column(String(500))
    intensity_method: Col[str | None] = column(String(64))
    records: Col[int] = column(BigInteger)
    records_without_embodied: Col[int] = column(BigInteger)
    co2e_kg: Col[float | None] = column(Double)
    sigma_kg: Col[float | None] = column(Double)
    gpu_co2e_kg: Col[float | None] = column(Double)
    cpu_co2e_kg: Col[float | None] = column(Double)
    ram_co2e_kg: Col[float | None] = column(Double)


class RunMetric(Base):
    """The latest value of each non-carbon MLflow metric of a run (accuracy, loss, ...)."""

    __tablename__ = "run_metrics"

    source_id: Col[int] = column(
        ForeignKey("tracking_sources.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Col[str] = column(String(64), primary_key=True)
    key: Col[str] = column(String(250), primary_key=True)
    value: Col[float | None] = column(Double)
    step: Col[int | None] = column(BigInteger)
    timestamp_ms: Col[int | None] = column(BigInteger)


class RollupState(Base):
    """Watermarks of the last rollup refresh (one row, ``id = 1``)."""

    __tablename__ = "rollup_state"

    id: Col[int] = column(Integer, primary_key=True)
    runs_loaded_at: Col[datetime | None] = column(Timestamp)
    factors_max_id: Col[int | None] = column(Integer)
    factors_count: Col[int | None] = column(Integer)
    versions_max_id: Col[int | None] = column(Integer)
    windows_max_id: Col[int | None] = column(BigInteger)
    windows_loaded_at: Col[datetime | None] = column(Timestamp)
    refreshed_at: Col[datetime | None] = column(Timestamp)


class RunMetricHistory(Base):
    """Logged points of a run's objective metrics and cumulative energy (downsampled).

    Filled by the ETL for the keys matching ``CARBONLEDGER_HISTORY_KEYS`` and the plugin's
    cumulative energy metric; at most ``CARBONLEDGER_HISTORY_MAX_POINTS`` points per key
    (a longer history keeps evenly spaced points, its first, its last and its best).
    """

    __tablename__ = "run_metric_history"

    source_id: Col[int] = column(
        ForeignKey("tracking_sources.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Col[str] = column(String(64), primary_key=True)
    key: Col[str] = column(String(250), primary_key=True)
    step: Col[int] = column(BigInteger, primary_key=True)
    timestamp_ms: Col[int] = column(BigInteger)
    value: Col[float | None] = column(Double)
