"""One ETL pass over one or more tracking sources.

For each source, in one transaction under the load lock: read the cursor, extract changed
runs, validate, stage, upsert (with what each run reserved), load inference windows, sync the
registry, mark stale runs and write the cursor. A pass that fails or is killed commits
nothing. After the sources, one budget pass syncs ``budgets.yaml``, records and posts alerts
and writes status tags.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from carbonledger.budgets import check_budgets, load_budget_file
from carbonledger.errors import EtlError, EtlLockedError
from carbonledger.etl import embodied, registry
from carbonledger.etl.history import store_metric_histories
from carbonledger.etl.inference import inference_records, load_run_windows
from carbonledger.etl.load import Loader, analyze_loaded, mark_stale
from carbonledger.etl.run_metrics import store_run_metrics
from carbonledger.etl.sources import Source, open_source
from carbonledger.etl.state import (
    Cursor,
    acquire_load_lock,
    locked_message,
    read_cursor,
    write_cursor,
)
from carbonledger.etl.teams import TeamRules
from carbonledger.etl.transform import Rejected, RunRecord, TransformConfig, transform_run
from carbonledger.intensity.place import configured_zone
from carbonledger.ledger import migrate
from carbonledger.ledger.engine import redact_uri
from carbonledger.ledger.repositories import get_or_create_source, known_zones
from carbonledger.reporting.rollups import refresh_rollups
from carbonledger.settings import get_settings

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]
"""Called as ``progress(source_uri, runs_seen_so_far)`` after each page."""


@dataclass(slots=True)
class SourceSummary:
    """What one pass did to one source."""

    source: str
    loaded: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    stale: int = 0
    models: int = 0
    windows: int = 0
    full: bool = False
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored with the cursor)."""
        out = asdict(self)
        out["quarantined"] = dict(self.quarantined)
        return out


def run_etl(
    engine: Engine,
    *,
    mlflow_uris: list[str],
    full: bool = False,
    lock_timeout_s: float = 60.0,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> list[SourceSummary]:
    """Load every source into the ledger; each source is one atomic transaction.

    Raises:
        LedgerError: the ledger schema is missing or outdated.
        EtlLockedError: another ETL holds the lock longer than ``lock_timeout_s``.
        EtlError: a tracking server cannot be read (the ledger is left as it was).
    """
    if not mlflow_uris:
        raise EtlError(
            "no MLflow tracking URI to read: pass --mlflow-uri, or set CARBONLEDGER_MLFLOW_URIS "
            "or MLFLOW_TRACKING_URI"
        )
    migrate.require_current(engine)
    settings = get_settings()
    rules = TeamRules.load(settings.team_rules_path)
    budget_specs = load_budget_file(settings.budgets_path) if settings.budgets_path else None
    unmetered_zone = _unmetered_zone(settings)
    summaries: list[SourceSummary] = []
    for uri in mlflow_uris:
        started = time.perf_counter()
        summary = SourceSummary(source=uri, full=full)
        try:
            with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn:
                with conn.begin():
                    acquire_load_lock(conn, lock_timeout_s=lock_timeout_s)
                    if conn.dialect.name == "postgresql":
                        # The views' plans look costly (correlated factor look-ups) but run
                        # in milliseconds per thousand rows: compiling them costs seconds.
                        conn.exec_driver_sql("SET LOCAL jit = off")
                    log.info("etl: load lock held, loading %s", redact_uri(uri))
                    config = TransformConfig(
                        rules=rules,
                        known_zones=known_zones(conn),
                        unmetered_power_w=settings.unmetered_power_w,
                        unmetered_pue=settings.pue or 1.0,
                        unmetered_zone=unmetered_zone,
                    )
                    with open_source(uri) as source:
                        source_id, cursor = _load_source(
                            conn, source, summary, config, full, progress
                        )
                    summary.stale = mark_stale(
                        conn,
                        source_id,
                        now=now or datetime.now(UTC),
                        stale_after_s=settings.stale_after_s,
                    )
                    refresh_rollups(conn, full=full and not summaries)  # once a pass
                    summary.duration_s = round(time.perf_counter() - started, 3)
                    write_cursor(conn, source_id, cursor, summary.as_dict())
                    log.info("etl: committing %s", redact_uri(uri))
        except OperationalError as exc:
            if "locked" in str(exc).lower():
                raise EtlLockedError(locked_message(lock_timeout_s)) from None
            raise
        summaries.append(summary)
        log.info("etl: committed %s: %s", redact_uri(uri), summary.as_dict())
    budgets = check_budgets(engine, now=now, specs=budget_specs)  # alerts, status tags
    log.info("etl: %d budgets checked, %d new alerts", len(budgets.statuses), budgets.alerts_new)
    return summaries


def _unmetered_zone(settings: Any) -> str | None:
    """Where runs without carbon data ran: the configured place, resolved like everywhere.

    Raises:
        ConfigError: the configured zone, region or country is unknown.
    """
    from carbonledger.errors import ConfigError, UnknownLocationError

    try:
        return configured_zone(settings)
    except UnknownLocationError as exc:
        raise ConfigError(
            f"the place configured for runs without carbon data is unknown: {exc}"
        ) from None


def _load_source(
    conn: Connection,
    source: Source,
    summary: SourceSummary,
    config: TransformConfig,
    full: bool,
    progress: Progress | None,
) -> tuple[int, Cursor]:
    uri = source.uri
    source_id = get_or_create_source(conn, uri=uri)
    cursor = read_cursor(conn, source_id)
    experiments = source.experiments()
    loader = Loader(conn, source_id)
    seen: set[str] = set()
    rejected: list[Rejected] = []
    inference_runs: list[tuple[Any, RunRecord]] = []
    pages = source.changed_run_pages(
        sorted(experiments),
        end_time_ms=None if full else cursor.end_time_ms,
        heartbeat_ms=None if full else cursor.heartbeat_ms,
        lookback_ms=int(get_settings().etl_lookback_s * 1000),
    )
    for page in pages:
        fresh = [r for r in page if r.info.run_id not in seen and (full or not cursor.seen(r))]
        seen.update(r.info.run_id for r in page)
        records: list[RunRecord] = []
        for run in fresh:
            out = transform_run(run, experiments.get(run.info.experiment_id), config)
            if isinstance(out, Rejected):
                rejected.append(out)
            else:
                records.append(out)
        loader.stage(records)
        inference_runs += inference_records(fresh, records)
        store_run_metrics(conn, source_id, fresh)
        store_metric_histories(conn, source, source_id, fresh, records)
        cursor.advance(page)
        if progress is not None:
            progress(uri, len(seen))
    loader.resolve_quarantine()
    counts = loader.merge()
    settings = get_settings()
    if settings.etl_hourly and (counts.loaded or counts.updated):
        from carbonledger.etl.hours import write_run_hours  # numpy and pandas: when needed

        touched = loader.touched()
        write_run_hours(conn, source, source_id, touched, use_history=settings.etl_hourly_history)
    loader.close()
    analyze_loaded(conn, counts.loaded + counts.updated)
    if not loader.embodied_staged:  # a new override restates without a reload
        counts.embodied = embodied.refresh_ledger(conn)
    summary.loaded, summary.updated, summary.unchanged = (
        counts.loaded,
        counts.updated,
        counts.unchanged,
    )
    windows = load_run_windows(conn, source, source_id, inference_runs, full=full)
    summary.windows = windows.loaded + windows.updated
    if settings.etl_hourly and inference_runs:
        from carbonledger.etl.hours import write_window_hours

        write_window_hours(conn, source_id, [run.info.run_id for run, _ in inference_runs])
    rejected += windows.rejected
    loader.quarantine(rejected)
    summary.quarantined = Counter(r.reason for r in rejected)
    registry.sync_experiments(
        conn,
        source_id,
        experiments,
        config.rules,
        runs_changed=bool(counts.loaded or counts.updated or counts.attribution.reattributed),
    )
    summary.models, cursor.models_updated_ms = registry.sync_models(
        conn,
        source,
        source_id,
        updated_since_ms=None if full else cursor.models_updated_ms,
    )
    return source_id, cursor
