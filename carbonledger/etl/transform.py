"""Validate MLflow runs and turn them into ledger rows (or quarantine records).

A run with plugin metrics becomes a ``metered`` row with per-component energy; a run without
them is kept as ``unmetered`` (estimated from duration x ``unmetered_power_w`` when that is
configured, flagged as an estimate). NaN, negative or impossible values, missing fields and
unknown zones send the run to quarantine with the reason and its raw payload.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter, le
from pathlib import Path
from typing import Any

from sqlalchemy import String

from carbonledger import contract as c
from carbonledger.embodied.reservation import hardware_from_tags
from carbonledger.errors import EtlError, UnknownLocationError
from carbonledger.etl.content_hash import content_hash
from carbonledger.etl.teams import TeamRules, fallback_model_name, own_model_name, own_team_of
from carbonledger.intensity.place import zone_of_tags
from carbonledger.ledger.models import Run, RunEnergy

MAX_POWER_W = 10_000_000.0  # 10 MW: more than any single training job's average draw
MAX_ENERGY_KWH = MAX_POWER_W * 24 * 365 / 1000.0  # 10 MW for a year
INT32_MAX = 2**31 - 1
MAX_INTENSITY_G_PER_KWH = 3_000.0
MAX_PUE = 5.0
ESTIMATE_METHOD = "duration-x-configured-power"


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
    """A validated run: ``runs`` row (no ``source_id``), energy rows, tagged hardware.

    ``hardware`` is ``embodied.hardware_from_tags`` of its tags (empty: the row's columns).
    """

    row: dict[str, Any]
    energy: list[dict[str, Any]]
    hardware: dict[str, Any] = field(default_factory=dict)


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
    for name, value in values.items():  # the common case: finite floats within bounds
        if value.__class__ is not float or not 0.0 <= value <= _value_limit(name):
            _check_each(values)  # says which value is wrong, and how
            break
    for name in c.POWER_METRICS:
        if values.get(name, 0.0) > MAX_POWER_W:
            raise _Reject("impossible", f"{name} is {values[name]:g} W: above 10 MW")
    pue = values.get(c.M_PUE)
    if pue is not None and not 1.0 <= pue <= MAX_PUE:
        raise _Reject("impossible", f"{c.M_PUE} is {pue:g}: a PUE lies between 1.0 and {MAX_PUE:g}")
    intensity = values.get(c.M_INTENSITY_G_PER_KWH)
    if intensity is not None and intensity > MAX_INTENSITY_G_PER_KWH:
        raise _Reject("impossible", f"{c.M_INTENSITY_G_PER_KWH} is {intensity:g}: above 3000")
    duration = values.get(c.M_DURATION_S)
    energy = values.get(c.M_ENERGY_KWH)
    if duration and energy and c.average_power_w(energy, duration) > MAX_POWER_W:
        raise _Reject(
            "impossible",
            f"{c.M_ENERGY_KWH} {energy:g} over {duration:g} s is above 10 MW average power",
        )


@lru_cache(maxsize=1024)
def _value_limit(name: str) -> float:
    """The largest value ``check_values`` lets through unexamined (NaN and inf never pass)."""
    return MAX_ENERGY_KWH if name.endswith("_kwh") else sys.float_info.max


def _check_each(values: Mapping[str, float]) -> None:
    """Raise ``_Reject`` for the first value that is not a finite, possible figure."""
    for name, value in values.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise _Reject("non-finite", f"{name} is {value!r}: expected a finite number")
        if value < 0:
            raise _Reject("negative", f"{name} is {value}: energy and power cannot be negative")
        if name.endswith("_kwh") and value > MAX_ENERGY_KWH:
            raise _Reject("impossible", f"{name} is {value:g} kWh: above 10 MW for a year")


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


@lru_cache(maxsize=1)
def _text_limits() -> tuple[dict[str, int | None], int | None]:
    """The length limit of each ``runs`` column and of ``run_energy.method`` (None: no limit)."""
    runs = {c.name: getattr(c.type, "length", None) for c in Run.__table__.columns}
    return runs, getattr(RunEnergy.__table__.c["method"].type, "length", None)


@lru_cache(maxsize=64)
def _text_layout(order: tuple[str, ...]) -> tuple[Any, tuple[float, ...], Any]:
    """For a row with keys in ``order``: getters of its text and other ``runs`` columns.

    ``(text getter, their length limits, getter of the other columns)``: a text column is a
    ``String`` column of ``runs``; the others only ever hold a text by mistake.
    """
    limits, _ = _text_limits()
    text_types = {c.name for c in Run.__table__.columns if isinstance(c.type, String)}
    texts = [n for n in order if n in limits and n in text_types]
    others = [n for n in order if n in limits and n not in text_types]
    bounds = tuple(math.inf if limits[n] is None else float(limits[n] or 0) for n in texts)
    return _getter(texts), bounds, _getter(others)


def _getter(names: list[str]) -> Any:
    """``itemgetter`` of ``names`` that always returns a tuple."""
    if len(names) > 1:
        return itemgetter(*names)
    return lambda row: tuple(row[n] for n in names)


def _check_text(name: str, value: str, length: int | None) -> None:
    if "\x00" in value:
        raise _Reject("invalid-field", f"{name} contains a NUL character: remove it")
    if length is not None and len(value) > length:
        raise _Reject("invalid-field", f"{name} is {len(value)} characters long: at most {length}")


def check_row(row: Mapping[str, Any], energy: list[dict[str, Any]]) -> None:
    """Refuse text the ledger cannot store (NUL, longer than its column; raises ``_Reject``)."""
    texts, bounds, others = _text_layout(tuple(row))
    values = [v or "" for v in texts(row)]
    _, method_limit = _text_limits()
    methods = [e["method"] for e in energy if isinstance(e["method"], str)]
    try:  # the common case in a few C loops; a problem is then said in the row's order
        joined = "".join(values) + "".join(methods)
    except TypeError:  # a value that is no text where text belongs
        joined = "\x00"
    if (
        "\x00" not in joined
        and all(map(le, map(len, values), bounds))
        and all(len(m) <= (method_limit or math.inf) for m in methods)
        and not any(isinstance(v, str) for v in others(row))
    ):
        return
    limits, _ = _text_limits()
    for name, value in row.items():
        if isinstance(value, str) and name in limits:
            _check_text(name, value, limits[name])
    for e in energy:
        if isinstance(e["method"], str):
            _check_text(f"carbon.methods ({e['component']})", e["method"], method_limit)


def _float(value: str | None) -> float | None:
    try:
        out = None if value is None or value == "" else float(value)
    except ValueError:
        return None
    return out if out is not None and math.isfinite(out) else None


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
    metrics = {k: v for k, v in run.data.metrics.items() if k.startswith(c.METRIC_PREFIX)}
    check_values(metrics)
    kind = (tags.get(c.TAG_KIND) or c.KIND_TRAINING).strip().lower()
    if kind not in c.RUN_KINDS:
        raise _Reject("invalid-field", f"{c.TAG_KIND} is {kind!r}: use inference or leave it unset")
    exp_tags = experiment.tags if experiment else {}
    own_team = own_team_of(tags)
    fallback_team, fallback_rule = config.rules.fallback_team(
        experiment_tags=exp_tags,
        experiment_name=experiment.name if experiment else None,
        user=info.user_id,
    )
    own_model = own_model_name(tags)
    fallback_model = fallback_model_name(exp_tags)
    team, team_rule = own_team or (fallback_team, fallback_rule)
    model, model_rule = (
        (own_model, f"run:{c.TAG_MODEL_NAME}") if own_model else fallback_model or (None, None)
    )
    start, end = to_dt(info.start_time, "start_time"), to_dt(info.end_time, "end_time")
    when = start or end
    row: dict[str, Any] = {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "parent_run_id": tags.get(c.MLFLOW_PARENT_RUN_ID) or None,
        "kind": kind,
        "status": info.status,
        "lifecycle_stage": info.lifecycle_stage,
        "start_time": start,
        "end_time": end,
        "heartbeat_at": to_dt(metrics.get(c.M_HEARTBEAT_MS), c.M_HEARTBEAT_MS),
        "activity_year": when.year if when else None,
        "user_id": info.user_id,
        "team": team,
        "team_rule": team_rule,
        "model_name": model,
        "model_rule": model_rule,
        "own_team": own_team[0] if own_team else None,
        "own_model_name": own_model,
        "fallback_team": fallback_team,
        "fallback_team_rule": fallback_rule,
        "fallback_model_name": fallback_model[0] if fallback_model else None,
        "gpu_model": tags.get(c.TAG_GPU_MODEL),
        "gpu_count": _int(tags.get(c.TAG_GPU_COUNT)),
        "cpu_model": tags.get(c.TAG_CPU_MODEL),
        "cpu_count": _int(tags.get(c.TAG_CPU_COUNT)),
        "ram_gb": _float(tags.get(c.TAG_RAM_GB)),
        "node_count": _int(tags.get(c.TAG_NODE_COUNT)),
        "attribution": tags.get(c.TAG_ATTRIBUTION),
        "methods": tags.get(c.TAG_METHODS),
        "country": tags.get(c.TAG_COUNTRY),
        "cloud_provider": tags.get(c.TAG_CLOUD_PROVIDER),
        "cloud_region": tags.get(c.TAG_CLOUD_REGION),
        "grid_zone": None,
        "plugin_version": tags.get(c.TAG_PLUGIN_VERSION),
        "plugin_intensity_g_per_kwh": metrics.get(c.M_INTENSITY_G_PER_KWH),
        "plugin_intensity_source": tags.get(c.TAG_INTENSITY_SOURCE),
        "plugin_co2e_kg": metrics.get(c.M_CO2E_KG),
        "duration_s": metrics.get(c.M_DURATION_S),
        "avg_power_w": metrics.get(c.M_AVG_POWER_W),
        "peak_power_w": metrics.get(c.M_PEAK_POWER_W),
    }
    if any(name in metrics for name in c.ENERGY_METRICS):
        energy = _metered(row, metrics, tags)
    else:
        energy = _unmetered(row, info, config, covered=_covered_by_parent(tags))
    zone = row["grid_zone"]
    if zone is not None and config.known_zones and zone not in config.known_zones:
        raise _Reject(
            "unknown-zone",
            f"grid zone {zone!r} has no emission factor in the ledger: add one with "
            f"`carbonledger db add-factor` or fix the run's {c.TAG_GRID_ZONE} tag",
        )
    set_totals(row, energy)
    check_row(row, energy)
    hardware = hardware_from_tags(tags)
    row["content_hash"] = content_hash(row, [*energy, hardware])
    return RunRecord(row, energy, hardware)


def set_totals(row: dict[str, Any], energy: list[dict[str, Any]]) -> None:
    """Fill the inclusive and estimated figures of a run row from its energy rows.

    Until the ETL's attribution step subtracts nested children, a run's exclusive figures
    equal its inclusive ones (MLflow's).
    """
    for e in energy:
        e.setdefault("inclusive_energy_kwh", e["energy_kwh"])
    estimated = [e["energy_kwh"] for e in energy if e["is_estimate"]]
    row["any_component_estimated"] = bool(estimated)
    row["estimated_energy_kwh"] = sum(estimated) if row.get("energy_kwh") is not None else None
    row["inclusive_energy_kwh"] = row.get("energy_kwh")
    row["inclusive_facility_energy_kwh"] = row.get("facility_energy_kwh")


def _metered(
    row: dict[str, Any], metrics: dict[str, float], tags: Mapping[str, str]
) -> list[dict[str, Any]]:
    methods = c.parse_methods(tags.get(c.TAG_METHODS))
    energy: list[dict[str, Any]] = [
        {
            "component": comp,
            "energy_kwh": metrics[metric],
            "method": methods.get(comp),
            "is_estimate": c.method_is_estimate(methods.get(comp)),
        }
        for comp, metric in c.M_COMPONENT_ENERGY_KWH.items()
        if metric in metrics
    ]
    energy_kwh = metrics.get(c.M_ENERGY_KWH)
    if energy_kwh is None:
        energy_kwh = sum(e["energy_kwh"] for e in energy)
    pue = metrics.get(c.M_PUE)
    facility = metrics.get(c.M_FACILITY_ENERGY_KWH)
    if pue is None and facility is not None and energy_kwh > 0:
        pue = facility / energy_kwh
    if pue is None:
        raise _Reject("missing-field", f"{c.M_PUE} and {c.M_FACILITY_ENERGY_KWH} are both missing")
    try:
        zone = _zone(tags.get(c.TAG_GRID_ZONE), tags.get(c.TAG_COUNTRY))
    except UnknownLocationError as exc:
        raise _Reject("unknown-zone", str(exc)) from None
    row.update(
        metering="metered",
        energy_kwh=energy_kwh,
        pue=pue,
        facility_energy_kwh=facility if facility is not None else energy_kwh * pue,
        grid_zone=zone,
    )
    return energy


@lru_cache(maxsize=4096)
def _zone(grid_zone: str | None, country: str | None) -> str | None:
    """``zone_of_tags`` of the two tags it reads, once per distinct pair (errors are not kept)."""
    tags = {c.TAG_GRID_ZONE: grid_zone or "", c.TAG_COUNTRY: country or ""}  # "": unset
    return zone_of_tags(tags)


def _covered_by_parent(tags: Mapping[str, str]) -> bool:
    """A child the plugin did not meter because its parent's window already holds its energy.

    sklearn's GridSearch children are created after the fact inside a metered parent: an
    estimate from their duration would count the parent's energy again.
    """
    return bool(tags.get(c.MLFLOW_PARENT_RUN_ID)) and (
        tags.get(c.TAG_UNMETERED_REASON) == c.UNMETERED_AFTER_THE_FACT
    )


def _unmetered(
    row: dict[str, Any], info: Any, config: TransformConfig, *, covered: bool = False
) -> list[dict[str, Any]]:
    row.update(
        metering="unmetered",
        energy_kwh=None,
        pue=None,
        facility_energy_kwh=None,
        grid_zone=config.unmetered_zone,
    )
    if covered or config.unmetered_power_w is None or info.start_time is None:
        return []
    if info.end_time is None:
        return []
    duration_s = max(0.0, (info.end_time - info.start_time) / c.MS_PER_S)
    energy_kwh = c.energy_kwh_at(config.unmetered_power_w, duration_s)
    row.update(
        duration_s=duration_s,
        energy_kwh=energy_kwh,
        pue=config.unmetered_pue,
        facility_energy_kwh=energy_kwh * config.unmetered_pue,
        avg_power_w=config.unmetered_power_w,
        methods=f"{c.MACHINE}={ESTIMATE_METHOD}",
    )
    return [
        {
            "component": c.MACHINE,
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
