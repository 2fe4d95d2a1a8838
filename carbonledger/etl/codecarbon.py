"""Import CodeCarbon's ``emissions.csv`` into the ledger (teams that already use CodeCarbon).

Each CSV row is one CodeCarbon run: it becomes a ``runs`` row with ``metering='imported'``
under the source ``codecarbon`` (or the one given), keyed by CodeCarbon's ``run_id``.
Component energy is CodeCarbon's ``cpu_energy``/``gpu_energy``/``ram_energy`` (kWh), marked
with the method ``codecarbon``; CodeCarbon's own ``emissions`` figure is kept beside the
ledger's recomputation. Bad rows go to quarantine like MLflow runs.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from carbonledger.contract import COMPONENTS, average_power_w
from carbonledger.errors import UnknownLocationError
from carbonledger.etl.content_hash import content_hash
from carbonledger.etl.load import Loader
from carbonledger.etl.teams import TeamRules
from carbonledger.etl.transform import (
    INT32_MAX,
    Rejected,
    RunRecord,
    _Reject,
    check_row,
    check_values,
    json_safe,
    read_csv_rows,
    set_totals,
)
from carbonledger.intensity.factors import Location
from carbonledger.intensity.place import ledger_zone
from carbonledger.ledger import migrate
from carbonledger.ledger.repositories import get_or_create_source, known_zones

REQUIRED = ("run_id", "timestamp", "duration", "energy_consumed")


@dataclass(slots=True)
class ImportSummary:
    """What an import did."""

    source: str
    loaded: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)


def import_codecarbon(
    engine: Engine,
    path: Path,
    *,
    source: str = "codecarbon",
    team: str | None = None,
    rules: TeamRules | None = None,
) -> ImportSummary:
    """Load a CodeCarbon CSV; rows already loaded are updated or left unchanged.

    Raises:
        EtlError: the file cannot be read or is not a CodeCarbon CSV.
        LedgerError: the ledger schema is missing or outdated.
    """
    migrate.require_current(engine)
    raw_rows = read_csv_rows(
        path,
        REQUIRED,
        "it is not a CodeCarbon emissions.csv; pass the file CodeCarbon's EmissionsTracker wrote",
    )
    rules = rules or TeamRules()
    summary = ImportSummary(source=source)
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        source_id = get_or_create_source(conn, uri=source, kind="codecarbon")
        zones = known_zones(conn)
        latest: dict[str, RunRecord | Rejected] = {}
        for line, raw in enumerate(raw_rows, start=2):
            out = _row(raw, zones, team, rules, line=line)
            latest[out.record_id if isinstance(out, Rejected) else out.row["run_id"]] = out
        loader = Loader(conn, source_id)
        loader.stage([r for r in latest.values() if isinstance(r, RunRecord)])
        loader.resolve_quarantine()
        counts = loader.merge()
        loader.close()
        rejected = [r for r in latest.values() if isinstance(r, Rejected)]
        loader.quarantine(rejected)
    summary.loaded, summary.updated, summary.unchanged = (
        counts.loaded,
        counts.updated,
        counts.unchanged,
    )
    summary.quarantined = Counter(r.reason for r in rejected)
    return summary


def _num(raw: dict[str, str], key: str) -> float | None:
    value = (raw.get(key) or "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise _Reject("invalid-field", f"{key} is {value!r}: expected a number") from None


def _row(
    raw: dict[str, str], zones: frozenset[str], team: str | None, rules: TeamRules, *, line: int
) -> RunRecord | Rejected:
    # a row without run_id is named by its line: another row's run_id cannot replace it
    record_id = (raw.get("run_id") or "").strip() or f"line {line}"
    try:
        return _record(raw, record_id, zones, team, rules)
    except _Reject as rej:
        return Rejected(record_id, rej.reason, rej.detail, json_safe(dict(raw)))


def _record(
    raw: dict[str, str], record_id: str, zones: frozenset[str], team: str | None, rules: TeamRules
) -> RunRecord:
    for key in REQUIRED:
        if not (raw.get(key) or "").strip():
            raise _Reject("missing-field", f"{key} is empty")
    values = {k: _num(raw, k) for k in ("duration", "emissions", "energy_consumed", "pue")}
    comps = {c: _num(raw, f"{c}_energy") for c in COMPONENTS}
    check_values({k: v for k, v in {**values, **comps}.items() if v is not None})
    try:
        end = datetime.fromisoformat(raw["timestamp"].strip())
    except ValueError:
        raise _Reject("invalid-field", f"timestamp {raw['timestamp']!r} is not ISO 8601") from None
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    duration = values["duration"] or 0.0
    try:
        start = end - timedelta(seconds=duration)
    except OverflowError:
        raise _Reject(
            "invalid-field", f"duration {duration:g} s before {raw['timestamp']!r} is before year 1"
        ) from None
    total = values["energy_consumed"] or 0.0
    energy_kwh = sum(v for v in comps.values() if v is not None) or total
    if duration and average_power_w(energy_kwh, duration) > 1e7:
        raise _Reject("impossible", f"{energy_kwh:g} kWh in {duration:g} s is above 10 MW")
    pue = values["pue"] or 1.0
    try:
        zone = ledger_zone(Location(country=(raw.get("country_iso_code") or "").strip() or None))
    except UnknownLocationError as exc:
        raise _Reject("unknown-zone", f"country_iso_code: {exc}") from None
    if zone is not None and zones and zone not in zones:
        raise _Reject("unknown-zone", f"zone {zone!r} has no emission factor in the ledger")
    project = (raw.get("project_name") or "").strip() or None
    fallback_team, fallback_rule = rules.fallback_team(
        experiment_tags={}, experiment_name=project, user=None
    )
    chosen_team, team_rule = (team, "import:--team") if team else (fallback_team, fallback_rule)
    emissions = values["emissions"]
    row: dict[str, Any] = {
        "run_id": record_id,
        "experiment_id": (raw.get("experiment_id") or "").strip() or None,
        "run_name": project,
        "kind": "training",
        "status": "FINISHED",
        "lifecycle_stage": "active",
        "start_time": start,
        "end_time": end,
        "heartbeat_at": None,
        "activity_year": start.year,
        "user_id": None,
        "team": chosen_team,
        "team_rule": team_rule,
        "own_team": team,
        "fallback_team": fallback_team,
        "fallback_team_rule": fallback_rule,
        "model_name": None,
        "gpu_model": raw.get("gpu_model") or None,
        "gpu_count": _int(raw.get("gpu_count")),
        "cpu_model": raw.get("cpu_model") or None,
        "cpu_count": _int(raw.get("cpu_count")),
        "ram_gb": _num(raw, "ram_total_size"),
        "node_count": 1,
        "attribution": raw.get("tracking_mode") or None,
        "methods": ";".join(f"{c}=codecarbon" for c, v in comps.items() if v is not None),
        "country": zone,
        "cloud_provider": raw.get("cloud_provider") or None,
        "cloud_region": raw.get("cloud_region") or None,
        "grid_zone": zone,
        "metering": "imported",
        "duration_s": duration,
        "energy_kwh": energy_kwh,
        "pue": pue,
        "facility_energy_kwh": energy_kwh * pue,
        "avg_power_w": average_power_w(energy_kwh, duration) if duration else None,
        "peak_power_w": None,
        "plugin_version": f"codecarbon {raw.get('codecarbon_version', '')}".strip(),
        "plugin_intensity_g_per_kwh": emissions * 1000.0 / total if emissions and total else None,
        "plugin_intensity_source": "codecarbon",
        "plugin_co2e_kg": emissions,
    }
    energy = [
        {"component": c, "energy_kwh": v, "method": "codecarbon", "is_estimate": False}
        for c, v in comps.items()
        if v is not None
    ]
    set_totals(row, energy)
    check_row(row, energy)
    row["content_hash"] = content_hash(row, energy)
    return RunRecord(row, energy)


def _int(value: str | None) -> int | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    if number is None or not math.isfinite(number) or abs(number) > INT32_MAX:
        return None
    return int(number)
