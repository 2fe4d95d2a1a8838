"""Validate MLflow runs and turn them into ledger rows (or quarantine records).

A run with plugin metrics becomes a ``metered`` row with per-component energy; a run without
them is kept as ``unmetered`` (estimated from duration x ``unmetered_power_w`` when that is
configured, flagged as an estimate). NaN, negative or impossible values, missing fields and
unknown zones send the run to quarantine with the reason and its raw payload.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from carbonledger.errors import EtlError
from carbonledger.etl.teams import TeamRules
from carbonledger.ledger.models import Run, RunEnergy

MAX_POWER_W = 10_000_000.0  # 10 MW: more than any single training job's average draw
MAX_ENERGY_KWH = MAX_POWER_W * 24 * 365 / 1000.0  # 10 MW for a year
INT32_MAX = 2**31 - 1
MAX_INTENSITY_G_PER_KWH = 3_000.0
MAX_PUE = 5.0
COMPONENTS = ("gpu", "cpu", "ram")
ESTIMATE_METHOD = "duration-x-configured-power"

M = "carbon/"
ENERGY_METRICS = tuple(f"{M}{c}_energy_kwh" for c in COMPONENTS) + (f"{M}energy_kwh",)


@dataclass(frozen=True, slots=True)
class TransformConfig:
    """What transform needs from settings and the ledger, captured once per load."""

    rules: TeamRules = field(default_factory=TeamRules)
    known_zones: frozenset[str] = frozenset()
    unmetered_power_w: float | None = None
    unmetered_pue: float = 1.0
    unmetered_zone: str | None = None


@dataclass(slots=True)
class RunRecord:
    """A validated run: the ``runs`` row (without ``source_id``) and its energy rows."""

    row: dict[str, Any]
    energy: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record sent to quarantine: ``reason`` is a short code, ``detail`` says what is wrong."""

    record_id: str
    reason: str
    detail: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExperimentInfo:
    """The experiment fields transform needs."""

    experiment_id: str
    name: str
    tags: Mapping[str, str]


def ms_to_dt(value: int | None) -> datetime | None:
    """Epoch milliseconds to an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(value / 1000.0, tz=UTC)


def json_safe(value: Any) -> Any:
    """Make ``value`` storable as JSON in both engines.

    Non-finite floats (not valid JSON, refused by JSONB) become their string form, and NUL
    characters (refused by PostgreSQL) become the four characters backslash, x, 0, 0.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def run_payload(run: Any) -> dict[str, Any]:
    """The raw MLflow run as a JSON-safe dict (kept with a quarantined record)."""
    info = run.info
    return json_safe(
        {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "run_name": info.run_name,
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "user_id": info.user_id,
            "lifecycle_stage": info.lifecycle_stage,
            "metrics": dict(run.data.metrics),
            "tags": {k: v for k, v in run.data.tags.items() if k != "mlflow.log-model.history"},
        }
    )


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def check_values(values: Mapping[str, float]) -> None:
    """Refuse non-finite, negative and physically impossible figures (raises ``_Reject``)."""
    for name, value in values.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise _Reject("non-finite", f"{name} is {value!r}: expected a finite number")
        if value < 0:
            raise _Reject("negative", f"{name} is {value}: energy and power cannot be negative")
        if name.endswith("_kwh") and value > MAX_ENERGY_KWH:
            raise _Reject("impossible", f"{name} is {value:g} kWh: above 10 MW for a year")
    for name in (f"{M}avg_power_w", f"{M}peak_power_w"):
        if values.get(name, 0.0) > MAX_POWER_W:
            raise _Reject("impossible", f"{name} is {values[name]:g} W: above 10 MW")
    pue = values.get(f"{M}pue")
    if pue is not None and not 1.0 <= pue <= MAX_PUE:
        raise _Reject("impossible", f"{M}pue is {pue:g}: a PUE lies between 1.0 and {MAX_PUE:g}")
    intensity = values.get(f"{M}intensity_g_per_kwh")
    if intensity is not None and intensity > MAX_INTENSITY_G_PER_KWH:
        raise _Reject("impossible", f"{M}intensity_g_per_kwh is {intensity:g}: above 3000")
    duration = values.get(f"{M}duration_s")
    energy = values.get(f"{M}energy_kwh")
    if duration and energy and energy * 3.6e6 / duration > MAX_POWER_W:
        raise _Reject(
            "impossible",
            f"{M}energy_kwh {energy:g} over {duration:g} s is above 10 MW average power",
        )


def _int(value: str | None) -> int | None:
    try:
        out = None if value is None or value == "" else int(float(value))
    except (ValueError, OverflowError):
        return None
    return out if out is not None and abs(out) <= INT32_MAX else None


def to_dt(value: float | None, name: str) -> datetime | None:
    """Epoch milliseconds to a UTC datetime, or ``_Reject`` naming ``name`` when out of range."""
    try:
        return ms_to_dt(None if value is None else int(value))
    except (ValueError, OverflowError, OSError):
        raise _Reject(
            "invalid-field", f"{name} is {value!r} ms: not a time between the years 1 and 9999"
        ) from None


def check_row(row: Mapping[str, Any], energy: list[dict[str, Any]]) -> None:
    """Refuse text the ledger cannot store (NUL, longer than its column; raises ``_Reject``)."""
    columns = Run.__table__.c
    items = [(k, v, columns[k]) for k, v in row.items() if k in columns]
    method = RunEnergy.__table__.c["method"]
    items += [(f"carbon.methods ({e['component']})", e["method"], method) for e in energy]
    for name, value, column in items:
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            raise _Reject("invalid-field", f"{name} contains a NUL character: remove it")
        length = getattr(column.type, "length", None)
        if length is not None and len(value) > length:
            raise _Reject(
                "invalid-field", f"{name} is {len(value)} characters long: at most {length}"
            )


def _float(value: str | None) -> float | None:
    try:
        out = None if value is None or value == "" else float(value)
    except ValueError:
        return None
    return out if out is not None and math.isfinite(out) else None


def content_hash(row: Mapping[str, Any], energy: list[dict[str, Any]]) -> str:
    """A digest of everything loaded for a run, so unchanged runs are skipped."""
    text = repr(sorted(row.items())) + repr(energy)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def transform_run(
    run: Any, experiment: ExperimentInfo | None, config: TransformConfig
) -> RunRecord | Rejected:
    """Validate one MLflow run and build its ledger rows, or say why it is quarantined."""
    try:
        return _transform(run, experiment, config)
    except _Reject as rej:
        return Rejected(run.info.run_id, rej.reason, rej.detail, run_payload(run))


def _transform(run: Any, experiment: ExperimentInfo | None, config: TransformConfig) -> RunRecord:
    info, tags = run.info, run.data.tags
    metrics = {k: v for k, v in run.data.metrics.items() if k.startswith(M)}
    check_values(metrics)
    kind = (tags.get("carbon.kind") or "training").strip().lower()
    if kind not in ("training", "inference", "estimate"):
        raise _Reject("invalid-field", f"carbon.kind is {kind!r}: use inference or leave it unset")
    team, team_rule = config.rules.resolve(
        run_tags=tags,
        experiment_tags=experiment.tags if experiment else {},
        experiment_name=experiment.name if experiment else None,
        user=info.user_id,
    )
    start, end = to_dt(info.start_time, "start_time"), to_dt(info.end_time, "end_time")
    when = start or end
    row: dict[str, Any] = {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "parent_run_id": tags.get("mlflow.parentRunId") or None,
        "kind": kind,
        "status": info.status,
        "lifecycle_stage": info.lifecycle_stage,
        "start_time": start,
        "end_time": end,
        "heartbeat_at": to_dt(metrics.get(f"{M}heartbeat_ms"), f"{M}heartbeat_ms"),
        "activity_year": when.year if when else None,
        "user_id": info.user_id,
        "team": team,
        "team_rule": team_rule,
        "model_name": tags.get("carbon.model_name") or None,
        "gpu_model": tags.get("carbon.gpu_model"),
        "gpu_count": _int(tags.get("carbon.gpu_count")),
        "cpu_model": tags.get("carbon.cpu_model"),
        "cpu_count": _int(tags.get("carbon.cpu_count")),
        "ram_gb": _float(tags.get("carbon.ram_gb")),
        "node_count": _int(tags.get("carbon.node_count")),
        "attribution": tags.get("carbon.attribution"),
        "methods": tags.get("carbon.methods"),
        "country": tags.get("carbon.country"),
        "cloud_provider": tags.get("carbon.cloud_provider"),
        "cloud_region": tags.get("carbon.cloud_region"),
        "grid_zone": None,
        "plugin_version": tags.get("carbon.plugin_version"),
        "plugin_intensity_g_per_kwh": metrics.get(f"{M}intensity_g_per_kwh"),
        "plugin_intensity_source": tags.get("carbon.intensity_source"),
        "plugin_co2e_kg": metrics.get(f"{M}co2e_kg"),
        "duration_s": metrics.get(f"{M}duration_s"),
        "avg_power_w": metrics.get(f"{M}avg_power_w"),
        "peak_power_w": metrics.get(f"{M}peak_power_w"),
    }
    if any(name in metrics for name in ENERGY_METRICS):
        energy = _metered(row, metrics, tags)
    else:
        energy = _unmetered(row, info, config, covered=_covered_by_parent(tags))
    zone = row["grid_zone"]
    if zone is not None and config.known_zones and zone not in config.known_zones:
        raise _Reject(
            "unknown-zone",
            f"grid zone {zone!r} has no emission factor in the ledger: add one with "
            "`carbonledger db add-factor` or fix the run's carbon.grid_zone tag",
        )
    check_row(row, energy)
    row["content_hash"] = content_hash(row, energy)
    return RunRecord(row, energy)


def _metered(
    row: dict[str, Any], metrics: dict[str, float], tags: Mapping[str, str]
) -> list[dict[str, Any]]:
    methods = dict(
        part.split("=", 1) for part in (tags.get("carbon.methods") or "").split(";") if "=" in part
    )
    energy: list[dict[str, Any]] = [
        {
            "component": c,
            "energy_kwh": metrics[f"{M}{c}_energy_kwh"],
            "method": methods.get(c),
            "is_estimate": "estimate" in (methods.get(c) or ""),
        }
        for c in COMPONENTS
        if f"{M}{c}_energy_kwh" in metrics
    ]
    energy_kwh = metrics.get(f"{M}energy_kwh")
    if energy_kwh is None:
        energy_kwh = sum(e["energy_kwh"] for e in energy)
    pue = metrics.get(f"{M}pue")
    facility = metrics.get(f"{M}facility_energy_kwh")
    if pue is None and facility is not None and energy_kwh > 0:
        pue = facility / energy_kwh
    if pue is None:
        raise _Reject("missing-field", f"{M}pue and {M}facility_energy_kwh are both missing")
    zone = (tags.get("carbon.grid_zone") or tags.get("carbon.country") or "").strip()
    row.update(
        metering="metered",
        energy_is_estimate=any(e["is_estimate"] for e in energy),
        energy_kwh=energy_kwh,
        pue=pue,
        facility_energy_kwh=facility if facility is not None else energy_kwh * pue,
        grid_zone=zone or None,
    )
    return energy


def _covered_by_parent(tags: Mapping[str, str]) -> bool:
    """A child the plugin did not meter because its parent's window already holds its energy.

    sklearn's GridSearch children are created after the fact inside a metered parent: an
    estimate from their duration would count the parent's energy again.
    """
    return bool(tags.get("mlflow.parentRunId")) and (
        tags.get("carbon.unmetered_reason") == "created-after-the-fact"
    )


def _unmetered(
    row: dict[str, Any], info: Any, config: TransformConfig, *, covered: bool = False
) -> list[dict[str, Any]]:
    row.update(
        metering="unmetered",
        energy_is_estimate=False,
        energy_kwh=None,
        pue=None,
        facility_energy_kwh=None,
        grid_zone=config.unmetered_zone,
    )
    if covered or config.unmetered_power_w is None or info.start_time is None:
        return []
    if info.end_time is None:
        return []
    duration_s = max(0.0, (info.end_time - info.start_time) / 1000.0)
    energy_kwh = config.unmetered_power_w * duration_s / 3.6e6
    row.update(
        energy_is_estimate=True,
        duration_s=duration_s,
        energy_kwh=energy_kwh,
        pue=config.unmetered_pue,
        facility_energy_kwh=energy_kwh * config.unmetered_pue,
        avg_power_w=config.unmetered_power_w,
        methods=f"machine={ESTIMATE_METHOD}",
    )
    return [
        {
            "component": "machine",
            "energy_kwh": energy_kwh,
            "method": ESTIMATE_METHOD,
            "is_estimate": True,
        }
    ]


def read_csv_rows(path: str | Path, required: Iterable[str], fix: str) -> list[dict[str, str]]:
    """Every row of a CSV file as a dict, after checking its header has ``required``.

    Raises:
        EtlError: the file cannot be read, or a required column is missing (``fix`` says
            what the file should be).
    """
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise EtlError(f"{path} lacks the columns {missing}: {fix}")
            return list(reader)
    except OSError as exc:
        raise EtlError(f"cannot read {path}: {exc.strerror}; check the path") from None
    except UnicodeDecodeError:
        raise EtlError(f"{path} is not UTF-8 text: save it as a UTF-8 CSV") from None
    except csv.Error as exc:
        raise EtlError(f"{path} is not a readable CSV ({exc}): {fix}") from None
