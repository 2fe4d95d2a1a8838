"""Inference for the demo: real traffic through the meter, and a synthetic serving history.

``serve_traffic`` loads registered demo models with ``carbonledger.inference.metered`` and
sends them bursts of requests with idle gaps between, in a dedicated ``InferenceMeter`` with
short windows; closing it logs the windows as MLflow inference runs (``carbon.kind=inference``),
idle time included. ``write_inference_history`` adds 60 days of hourly windows per served
version, written exactly as the meter writes them (same ``carbon/inference/*`` metrics, steps
and run totals), tagged ``carbon.synthetic=true``, from a seeded generator.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from carbonledger.contract import (
    G_PER_KG,
    KIND_INFERENCE,
    M_AVG_POWER_W,
    M_CO2E_KG,
    M_COMPONENT_ENERGY_KWH,
    M_DURATION_S,
    M_ENERGY_KWH,
    M_FACILITY_ENERGY_KWH,
    M_HEARTBEAT_MS,
    M_INTENSITY_G_PER_KWH,
    M_PEAK_POWER_W,
    M_PUE,
    MS_PER_S,
    STATUS_COMPLETE,
    TAG_ATTRIBUTION,
    TAG_CLOUD_PROVIDER,
    TAG_CLOUD_REGION,
    TAG_GRID_ZONE,
    TAG_IDLE_METHOD,
    TAG_INTENSITY_SOURCE,
    TAG_KIND,
    TAG_METERED,
    TAG_METHODS,
    TAG_MODEL_NAME,
    TAG_MODEL_VERSION,
    TAG_NODE_COUNT,
    TAG_PLUGIN_VERSION,
    TAG_STATUS,
    TAG_TEAM,
    TAG_WINDOW_S,
    W_ACTIVE_ENERGY_KWH,
    W_ACTIVE_WH_PER_REQUEST,
    W_BUSY_S,
    W_CO2E_G_PER_REQUEST,
    W_CO2E_KG,
    W_COMPONENT_ENERGY_KWH,
    W_ENERGY_KWH,
    W_ERRORS,
    W_FACILITY_ENERGY_KWH,
    W_HOSTED_S,
    W_IDLE_ENERGY_KWH,
    W_INTENSITY_G_PER_KWH,
    W_LATENCY_MS,
    W_PUE,
    W_REQUESTS,
    W_REQUESTS_TOTAL,
    W_ROWS,
    W_ROWS_TOTAL,
    W_WH_PER_REQUEST,
    W_WINDOW_S,
    W_WINDOWS_TOTAL,
    WH_PER_KWH,
    average_power_w,
    energy_kwh_at,
)
from carbonledger.demo.history import PROFILES, SEED, SYNTHETIC_TAG, plugin_off
from carbonledger.footprint import co2e_kg

HISTORY_DAYS = 60
WINDOW_S = 3600.0


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A registered demo model that serves predictions, and its traffic profile."""

    team: str
    model_name: str
    dataset: str
    requests_per_hour: int
    server_power_w: float


SERVED: tuple[ServedModel, ...] = (
    ServedModel("vision", "digits-classifier", "digits", 9_000, 180.0),
    ServedModel("risk", "credit-scorer", "breast_cancer", 2_500, 60.0),
    ServedModel("nlp", "support-assistant", "", 1_200, 2_100.0),
)


def latest_version(model_name: str) -> int:
    """The newest version of a registered model (the one the demo serves)."""
    from mlflow.tracking import MlflowClient

    versions = MlflowClient().search_model_versions(f"name='{model_name}'")
    return max(int(v.version) for v in versions)


def serve_traffic(*, seconds: float = 12.0, window_s: float = 4.0) -> dict[str, int]:
    """Serve the demo's scikit-learn models for ``seconds`` through the inference meter.

    Returns the requests sent per model. The caller sets the tracking URI.
    """
    import mlflow

    from carbonledger.demo.training import dataset
    from carbonledger.inference import InferenceMeter, metered

    meter = InferenceMeter(window_s=window_s, tracking_uri=mlflow.get_tracking_uri(), elect=False)
    models = []
    for spec in SERVED:
        if not spec.dataset:
            continue
        version = latest_version(spec.model_name)
        model = metered(f"models:/{spec.model_name}/{version}", team=spec.team, meter=meter)
        models.append((spec, model, dataset(spec.dataset)[0]))
    sent = {spec.model_name: 0 for spec, _, _ in models}
    deadline = time.monotonic() + seconds
    rng = random.Random(SEED)
    try:
        while time.monotonic() < deadline:
            for spec, model, x in models:  # a burst, then idle: the meter charges both
                for _ in range(rng.randint(5, 25)):
                    i = rng.randrange(len(x))
                    model.predict(x[i : i + 1])
                    sent[spec.model_name] += 1
            time.sleep(0.5)
    finally:
        meter.close()
    return sent


def _hour_windows(now: datetime) -> list[datetime]:
    end = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(days=HISTORY_DAYS)
    hours = int((end - start).total_seconds() // 3600)
    return [start + timedelta(hours=h) for h in range(hours)]


def _window_metrics(
    spec: ServedModel, requests: int, pue: float, intensity: float
) -> dict[str, Any]:
    load = min(1.0, requests / (spec.requests_per_hour * 1.5))
    idle_share = 0.8  # BLOOM's deployment: ~80% of serving energy independent of load
    power_w = spec.server_power_w * (idle_share + (1 - idle_share) * load)
    energy_kwh = energy_kwh_at(power_w, WINDOW_S)
    shares = {"gpu": 0.7, "cpu": 0.22, "ram": 0.08}
    active = energy_kwh * (1 - idle_share) * load
    facility = energy_kwh * pue
    co2e = co2e_kg(energy_kwh, pue, intensity)
    out = {
        W_REQUESTS: float(requests),
        W_ROWS: float(requests),
        W_ERRORS: 0.0,
        W_WINDOW_S: WINDOW_S,
        W_BUSY_S: WINDOW_S * load * 0.6,
        W_HOSTED_S: WINDOW_S,
        **{W_COMPONENT_ENERGY_KWH[c]: energy_kwh * share for c, share in shares.items()},
        W_ENERGY_KWH: energy_kwh,
        W_ACTIVE_ENERGY_KWH: active,
        W_IDLE_ENERGY_KWH: energy_kwh - active,
        W_PUE: pue,
        W_FACILITY_ENERGY_KWH: facility,
        W_INTENSITY_G_PER_KWH: intensity,
        W_CO2E_KG: co2e,
        W_LATENCY_MS[50.0]: 4.0 + 10 * load,
        W_LATENCY_MS[95.0]: 9.0 + 30 * load,
        W_LATENCY_MS[99.0]: 15.0 + 60 * load,
    }
    if requests:
        out[W_WH_PER_REQUEST] = facility * WH_PER_KWH / requests
        out[W_ACTIVE_WH_PER_REQUEST] = active * pue * WH_PER_KWH / requests
        out[W_CO2E_G_PER_REQUEST] = co2e * G_PER_KG / requests
    return out


def write_inference_history(now: datetime | None = None) -> list[str]:
    """Write 60 days of hourly serving windows per served model; returns the run ids.

    One inference run per model version and UTC day, as the meter rotates them.
    """
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    from carbonledger.demo.history import intensity_of
    from carbonledger.inference.runs import DEFAULT_EXPERIMENT

    now = now or datetime.now(UTC)
    rng = random.Random(SEED + 1)
    client = MlflowClient()
    profiles = {p.team: p for p in PROFILES}
    run_ids: list[str] = []
    with plugin_off():
        exp = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
        exp_id = exp.experiment_id if exp else client.create_experiment(DEFAULT_EXPERIMENT)
        by_day: dict[tuple[str, str], list[datetime]] = {}
        for hour in _hour_windows(now):
            for spec in SERVED:
                by_day.setdefault((spec.model_name, hour.date().isoformat()), []).append(hour)
        for spec in SERVED:
            team = profiles[spec.team]
            version = latest_version(spec.model_name)
            days = sorted(d for (m, d) in by_day if m == spec.model_name)
            for day in days:
                hours = by_day[(spec.model_name, day)]
                intensity, source = intensity_of(team.zone, hours[0].year)
                start_ms = int(hours[0].timestamp() * MS_PER_S)
                run = client.create_run(
                    exp_id,
                    start_time=start_ms,
                    run_name=f"synthetic-inference {spec.model_name} {day}",
                )
                totals: dict[str, float] = {"gpu": 0.0, "cpu": 0.0, "ram": 0.0}
                requests_total = 0
                metrics: list[Metric] = []
                for step, hour in enumerate(hours, start=1):
                    daily = 0.35 + 0.65 * max(0.0, 1 - abs(hour.hour - 14) / 10)  # daytime peak
                    growth = 1 + 0.6 * (1 - (now - hour).days / HISTORY_DAYS)
                    requests = int(spec.requests_per_hour * daily * growth * rng.uniform(0.8, 1.2))
                    w = _window_metrics(spec, requests, team.pue, intensity)
                    ts = int(hour.timestamp() * MS_PER_S)
                    metrics += [Metric(k, float(v), ts, step) for k, v in w.items()]
                    for c in totals:
                        totals[c] += w[W_COMPONENT_ENERGY_KWH[c]]
                    requests_total += requests
                end_ms = int((hours[-1] + timedelta(seconds=WINDOW_S)).timestamp() * MS_PER_S)
                energy = sum(totals.values())
                duration_s = WINDOW_S * len(hours)
                run_totals = {
                    **{M_COMPONENT_ENERGY_KWH[c]: v for c, v in totals.items()},
                    M_ENERGY_KWH: energy,
                    M_PUE: team.pue,
                    M_FACILITY_ENERGY_KWH: energy * team.pue,
                    M_INTENSITY_G_PER_KWH: intensity,
                    M_CO2E_KG: co2e_kg(energy, team.pue, intensity),
                    M_DURATION_S: duration_s,
                    M_AVG_POWER_W: average_power_w(energy, duration_s),
                    M_PEAK_POWER_W: spec.server_power_w,
                    M_HEARTBEAT_MS: float(end_ms),
                    W_REQUESTS_TOTAL: float(requests_total),
                    W_ROWS_TOTAL: float(requests_total),
                    W_WINDOWS_TOTAL: float(len(hours)),
                }
                metrics += [Metric(k, v, end_ms, len(hours)) for k, v in run_totals.items()]
                tags = {
                    SYNTHETIC_TAG: "true",
                    TAG_KIND: KIND_INFERENCE,
                    TAG_MODEL_NAME: spec.model_name,
                    TAG_MODEL_VERSION: str(version),
                    TAG_TEAM: spec.team,
                    TAG_PLUGIN_VERSION: "synthetic",
                    TAG_METERED: "true",
                    TAG_STATUS: STATUS_COMPLETE,
                    TAG_WINDOW_S: f"{WINDOW_S:g}",
                    TAG_IDLE_METHOD: "synthetic-80pct-idle",
                    TAG_ATTRIBUTION: "device",
                    TAG_NODE_COUNT: "1",
                    TAG_METHODS: "cpu=rapl;gpu=nvml-energy-counter;ram=ram-w-per-gb-estimate",
                    TAG_GRID_ZONE: team.zone,
                    TAG_CLOUD_PROVIDER: team.cloud_provider,
                    TAG_CLOUD_REGION: team.cloud_region,
                    TAG_INTENSITY_SOURCE: source,
                }
                for i in range(0, len(metrics), 1000):
                    client.log_batch(run.info.run_id, metrics=metrics[i : i + 1000])
                client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
                client.set_terminated(run.info.run_id, "FINISHED", end_time=end_ms)
                run_ids.append(run.info.run_id)
    return run_ids
