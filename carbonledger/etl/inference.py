"""Inference windows into the ledger: from MLflow inference runs, and from usage CSVs.

**Inference runs** (``carbon.kind=inference``, written by ``carbonledger.inference``) are found
by the ETL like any run (their heartbeat moves with every window) and loaded into ``runs`` with
``kind='inference'``; :func:`load_run_windows` then reads their ``carbon/inference/*`` metric
histories, one window per ``step``, and upserts them into ``inference_windows`` keyed by
``(source_id, run_id, window_start)``. A run whose windows are all in the ledger already
(``carbon/inference/windows_total``) is not read again. Windows are immutable once logged:
an incremental load inserts new ones only; ``--full`` rewrites them (new team rules).

**Usage CSVs** (:func:`import_usage`) bring models served outside Python: one row per model
version and period with its request count, and its energy when known; otherwise the energy is
``requests x Wh per request`` from ``carbonledger inference-bench`` and flagged as an estimate.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from carbonledger import contract as c
from carbonledger.contract import method_is_estimate, parse_methods
from carbonledger.errors import EtlError, UnknownLocationError
from carbonledger.etl.load import Loader
from carbonledger.etl.transform import (
    MAX_POWER_W,
    Rejected,
    RunRecord,
    _Reject,
    check_values,
    json_safe,
    read_csv_rows,
    to_dt,
)
from carbonledger.intensity.factors import Location
from carbonledger.intensity.place import ledger_zone
from carbonledger.ledger import migrate
from carbonledger.ledger.models import InferenceWindow, Quarantine
from carbonledger.ledger.partitions import ensure_partitions
from carbonledger.ledger.repositories import get_or_create_source, known_zones

if TYPE_CHECKING:
    from carbonledger.etl.sources import Source

WINDOW_KEYS = (
    c.W_REQUESTS,
    c.W_ROWS,
    c.W_ERRORS,
    c.W_WINDOW_S,
    c.W_BUSY_S,
    *c.W_COMPONENT_ENERGY_KWH.values(),
    c.W_ACTIVE_ENERGY_KWH,
    c.W_PUE,
    c.W_INTENSITY_G_PER_KWH,
    *c.W_LATENCY_MS.values(),
)
IMPORT_SOURCE = "inference-import"
ESTIMATE_METHOD = "requests-x-bench-wh"
REQUIRED_COLUMNS = ("time", "model", "version", "requests")
BATCH = 1000


@dataclass(slots=True)
class WindowLoad:
    """Windows written by one load (``loaded`` new, ``updated`` rewritten by ``--full``)."""

    loaded: int = 0
    updated: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def inference_records(runs: Iterable[Any], records: Iterable[RunRecord]) -> list[tuple[Any, Any]]:
    """The ``(mlflow_run, RunRecord)`` pairs of the inference runs among ``records``."""
    by_id = {r.row["run_id"]: r for r in records if r.row.get("kind") == "inference"}
    return [(run, by_id[run.info.run_id]) for run in runs if run.info.run_id in by_id]


def load_run_windows(
    conn: Connection,
    source: Source,
    source_id: int,
    pairs: list[tuple[Any, RunRecord]],
    *,
    full: bool = False,
) -> WindowLoad:
    """Read the windows of inference runs and upsert them (in ``conn``'s transaction)."""
    result = WindowLoad()
    if not pairs:
        return result
    have = dict(
        conn.execute(
            select(InferenceWindow.run_id, func.count())
            .where(
                InferenceWindow.source_id == source_id,
                InferenceWindow.run_id.in_([run.info.run_id for run, _ in pairs]),
            )
            .group_by(InferenceWindow.run_id)
        ).all()
    )
    rows: list[dict[str, Any]] = []
    todo = [
        (run, record)
        for run, record in pairs
        if full
        or (total := run.data.metrics.get(c.W_WINDOWS_TOTAL)) is None
        or have.get(run.info.run_id, 0) < int(total)
    ]
    histories = source.metric_histories([run.info.run_id for run, _ in todo], WINDOW_KEYS)
    for (run, record), (_, history) in zip(todo, histories, strict=True):
        for step, window in _windows(history).items():
            out = _window_row(run, record, step, window, source_id)
            if isinstance(out, Rejected):
                result.rejected.append(out)
            else:
                rows.append(out)
    result.loaded, result.updated = upsert_windows(conn, rows, update=full)
    return result


def _windows(history: dict[str, list[Any]]) -> dict[int, dict[str, tuple[float, int]]]:
    """Metric histories regrouped by step: ``{step: {key: (value, timestamp_ms)}}``."""
    by_step: dict[int, dict[str, tuple[float, int]]] = defaultdict(dict)
    for key, points in history.items():
        for m in points:
            by_step[int(m.step)][key] = (float(m.value), int(m.timestamp))
    return {s: w for s, w in sorted(by_step.items()) if c.W_REQUESTS in w}


def _window_row(
    run: Any, record: RunRecord, step: int, w: dict[str, tuple[float, int]], source_id: int
) -> dict[str, Any] | Rejected:
    record_id = f"{run.info.run_id}/window/{step}"
    values = {k: v for k, (v, _) in w.items()}
    duration = values.get(c.W_WINDOW_S)
    energy = sum(values.get(k, 0.0) for k in c.W_COMPONENT_ENERGY_KWH.values())
    pue = values.get(c.W_PUE) or record.row.get("pue") or 1.0
    try:
        check_values(values)  # the runs' rules: finite and non-negative
        if duration is None or duration <= 0:
            raise _Reject("missing-field", f"{c.W_WINDOW_S} is missing or zero")
        if c.average_power_w(energy, duration) > MAX_POWER_W or not 1.0 <= pue <= 5.0:
            raise _Reject("impossible", f"{energy:g} kWh in {duration:g} s, PUE {pue:g}")
        start = to_dt(w[c.W_REQUESTS][1], f"{c.W_REQUESTS} timestamp")
        assert start is not None
        try:
            window_end = start + timedelta(seconds=duration)
        except OverflowError:
            detail = f"a window of {duration:g} s from {start:%Y-%m-%d} ends after 9999"
            raise _Reject("invalid-field", detail) from None
    except _Reject as rej:
        payload = json_safe({"run_id": run.info.run_id, "step": step, "metrics": values})
        return Rejected(record_id, rej.reason, f"window {step}: {rej.detail}", payload)
    active = values.get(c.W_ACTIVE_ENERGY_KWH)
    intensity = values.get(c.W_INTENSITY_G_PER_KWH)
    methods = parse_methods(record.row.get("methods"))
    estimated = sum(
        values.get(k) or 0.0
        for comp, k in c.W_COMPONENT_ENERGY_KWH.items()
        if method_is_estimate(methods.get(comp))
    )
    latency = {p: values.get(k) for p, k in c.W_LATENCY_MS.items()}
    return {
        "source_id": source_id,
        "run_id": run.info.run_id,
        "model_name": record.row.get("model_name"),
        "model_version": _int(run.data.tags.get(c.TAG_MODEL_VERSION)),
        "team": record.row.get("team"),
        "window_start": start,
        "window_end": window_end,
        "activity_year": start.year,
        "requests": int(values[c.W_REQUESTS]),
        "rows": int(values.get(c.W_ROWS, 0)),
        "errors": int(values.get(c.W_ERRORS, 0)),
        "busy_s": values.get(c.W_BUSY_S),
        "latency_p50_ms": latency[50.0],
        "latency_p95_ms": latency[95.0],
        "latency_p99_ms": latency[99.0],
        "metering": "metered",
        "any_component_estimated": bool(estimated),
        "estimated_energy_kwh": estimated,
        "methods": record.row.get("methods"),
        **{f"{comp}_energy_kwh": values.get(k) for comp, k in c.W_COMPONENT_ENERGY_KWH.items()},
        "energy_kwh": energy,
        "active_energy_kwh": active,
        "idle_energy_kwh": energy - active if active is not None else None,
        "pue": pue,
        "facility_energy_kwh": energy * pue,
        "grid_zone": record.row.get("grid_zone"),
        "plugin_intensity_g_per_kwh": intensity,
        "plugin_co2e_kg": energy * pue * intensity / 1000.0 if intensity is not None else None,
    }


def _int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(float(value))
    except (TypeError, ValueError):
        return None


def upsert_windows(
    conn: Connection, rows: list[dict[str, Any]], *, update: bool
) -> tuple[int, int]:
    """Insert windows (``update``: rewrite existing ones); returns ``(new, rewritten)``."""
    if not rows:
        return 0, 0
    ensure_partitions(
        conn, min(r["window_start"] for r in rows), max(r["window_end"] for r in rows)
    )
    key = (InferenceWindow.source_id, InferenceWindow.run_id, InferenceWindow.window_start)
    existing = 0
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        keys = [(r["source_id"], r["run_id"], r["window_start"]) for r in chunk]
        existing += int(
            conn.execute(
                select(func.count()).select_from(InferenceWindow).where(tuple_(*key).in_(keys))
            ).scalar_one()
        )
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(InferenceWindow)
        elements = ["source_id", "run_id", "window_start"]
        if update:
            skip = {"id", "source_id", "run_id", "window_start", "loaded_at"}
            sets = {col: stmt.excluded[col] for col in chunk[0] if col not in skip}
            stmt = stmt.on_conflict_do_update(
                index_elements=elements, set_={**sets, "loaded_at": func.now()}
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=elements)
        conn.execute(stmt, chunk)
    return len(rows) - existing, existing if update else 0


# -- usage CSVs (models served outside Python) ----------------------------------------------


@dataclass(slots=True)
class UsageImport:
    """What a usage import did."""

    source: str
    loaded: int = 0
    updated: int = 0
    estimated: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)


def bench_wh_per_request(path: Path) -> float:
    """``wh_per_request`` from the JSON that ``carbonledger inference-bench --output`` wrote.

    Raises:
        EtlError: the file is unreadable or has no positive ``wh_per_request``.
    """
    try:
        value = float(json.loads(Path(path).read_text(encoding="utf-8"))["wh_per_request"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EtlError(
            f"{path} is not an inference-bench result ({type(exc).__name__}): write one with "
            "`carbonledger inference-bench MODEL_URI --input sample.json --output bench.json`"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise EtlError(f"{path}: wh_per_request must be a positive number")
    return value


def import_usage(
    engine: Engine,
    path: Path,
    *,
    source: str = IMPORT_SOURCE,
    wh_per_request: float | None = None,
    team: str | None = None,
    zone: str | None = None,
    pue: float = 1.0,
    period_s: float = 86_400.0,
) -> UsageImport:
    """Load a usage CSV (``time, model, version, requests[, energy_kwh, ...]``) as windows.

    Each row is one window of ``model`` v``version`` starting at ``time`` (ISO 8601, UTC when
    no offset) and lasting ``duration_s`` (or until ``end_time``; default ``period_s``).
    ``energy_kwh`` is IT energy; without it the energy is ``requests x wh_per_request``
    (an estimate). Optional columns ``team``, ``zone``, ``pue`` override the options. Rows
    already imported (same model, version and time) are updated; bad rows go to quarantine.

    Raises:
        EtlError: the file cannot be read or lacks a required column.
        LedgerError: the ledger schema is missing or outdated.
    """
    migrate.require_current(engine)
    raw_rows = read_csv_rows(
        path,
        REQUIRED_COLUMNS,
        "a usage CSV has time, model, version, requests and optionally energy_kwh, "
        "duration_s, end_time, team, zone, pue",
    )
    summary = UsageImport(source=source)
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        source_id = get_or_create_source(conn, uri=source, kind="inference-csv")
        zones = known_zones(conn)
        latest: dict[str, dict[str, Any] | Rejected] = {}
        for line, raw in enumerate(raw_rows, start=2):
            out = _usage_row(raw, line, source_id, zones, wh_per_request, team, zone, pue, period_s)
            latest[out.record_id if isinstance(out, Rejected) else out["_record_id"]] = out
        rows = [r for r in latest.values() if not isinstance(r, Rejected)]
        rejected = [r for r in latest.values() if isinstance(r, Rejected)]
        loaded_ids = [r.pop("_record_id") for r in rows]
        summary.loaded, summary.updated = upsert_windows(conn, rows, update=True)
        summary.estimated = sum(1 for r in rows if r["any_component_estimated"])
        if loaded_ids:
            conn.execute(
                delete(Quarantine).where(
                    Quarantine.source_id == source_id, Quarantine.record_id.in_(loaded_ids)
                )
            )
        if rejected:
            loader = Loader(conn, source_id)
            loader.quarantine(rejected)
            loader.close()
    summary.quarantined = Counter(r.reason for r in rejected)
    return summary


def _usage_row(
    raw: dict[str, str],
    line: int,
    source_id: int,
    zones: frozenset[str],
    wh_per_request: float | None,
    team: str | None,
    zone: str | None,
    pue: float,
    period_s: float,
) -> dict[str, Any] | Rejected:
    cell = {k: (v or "").strip() for k, v in raw.items() if k is not None}
    model, version, when = cell.get("model", ""), cell.get("version", ""), cell.get("time", "")
    record_id = f"{model}:{version}@{when}" if model and version and when else f"line {line}"

    def reject(reason: str, detail: str) -> Rejected:
        return Rejected(record_id, reason, f"line {line}: {detail}", json_safe(dict(cell)))

    for key in REQUIRED_COLUMNS:
        if not cell.get(key):
            return reject("missing-field", f"{key} is empty")
    try:
        start = _parse_time(when)
        number = {k: _number(cell, k) for k in ("requests", "energy_kwh", "duration_s", "pue")}
        end = _parse_time(cell["end_time"]) if cell.get("end_time") else None
    except ValueError as exc:
        return reject("invalid-field", str(exc))
    if not version.isdigit():
        return reject("invalid-field", f"version {version!r} is not a version number")
    for key, value in number.items():
        if value is not None and (not math.isfinite(value) or value < 0):
            return reject("negative" if value < 0 else "non-finite", f"{key} is {value!r}")
    requests = number["requests"]
    assert requests is not None
    if requests != int(requests):
        return reject("invalid-field", f"requests {requests!r} is not a whole number")
    duration = (end - start).total_seconds() if end else number["duration_s"] or period_s
    if duration <= 0:
        return reject("invalid-field", "the window ends before it starts")
    energy, estimate = number["energy_kwh"], False
    if energy is None:
        if wh_per_request is None:
            return reject(
                "missing-field",
                "energy_kwh is empty and no --wh-per-request or --bench was given",
            )
        energy, estimate = requests * wh_per_request / 1000.0, True
    if c.average_power_w(energy, duration) > MAX_POWER_W:
        return reject("impossible", f"{energy:g} kWh in {duration:g} s is above 10 MW")
    row_pue = number["pue"] if number["pue"] is not None else pue
    if not 1.0 <= row_pue <= 5.0:
        return reject("impossible", f"PUE {row_pue:g} outside 1.0-5.0")
    try:  # a zone or country, spelled any way the rest of carbonledger accepts
        row_zone = ledger_zone(Location(grid_zone=cell.get("zone") or zone), shipped_zone=False)
    except UnknownLocationError as exc:
        return reject("unknown-zone", str(exc))
    if row_zone and zones and row_zone not in zones:
        return reject("unknown-zone", f"zone {row_zone!r} has no emission factor in the ledger")
    try:
        window_end = start + timedelta(seconds=duration)
    except OverflowError:
        return reject("invalid-field", f"a window of {duration:g} s from {when} ends after 9999")
    return {
        "_record_id": record_id,
        "source_id": source_id,
        "run_id": f"import:{model}:{version}",
        "model_name": model,
        "model_version": int(version),
        "team": cell.get("team") or team or "unassigned",
        "window_start": start,
        "window_end": window_end,
        "activity_year": start.year,
        "requests": int(requests),
        "rows": int(requests),
        "errors": 0,
        "metering": "imported",
        "any_component_estimated": estimate,
        "estimated_energy_kwh": energy if estimate else 0.0,
        "methods": f"{ESTIMATE_METHOD}:{wh_per_request:g}" if estimate else "imported",
        "energy_kwh": energy,
        "pue": row_pue,
        "facility_energy_kwh": energy * row_pue,
        "grid_zone": row_zone or None,
    }


def _number(cell: dict[str, str], key: str) -> float | None:
    value = cell.get(key)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{key} is {value!r}: expected a number") from None


def _parse_time(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"time {value!r} is not ISO 8601 (e.g. 2026-11-01T00:00:00Z)") from None
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"time {value!r} is outside the years 1-9999 in UTC") from None
