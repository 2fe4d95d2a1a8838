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

from carbonledger.demo.history import PROFILES, SEED, SYNTHETIC_TAG, plugin_off

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
    from carbonledger.inference import runs as n

    load = min(1.0, requests / (spec.requests_per_hour * 1.5))
    idle_share = 0.8  # BLOOM's deployment: ~80% of serving energy independent of load
    energy_kwh = spec.server_power_w * (idle_share + (1 - idle_share) * load) / 1000.0
    gpu, cpu, ram = energy_kwh * 0.7, energy_kwh * 0.22, energy_kwh * 0.08
    active = energy_kwh * (1 - idle_share) * load
    facility = energy_kwh * pue
    co2e = facility * intensity / 1000.0
    out = {
        n.W_REQUESTS: float(requests),
        n.W_ROWS: float(requests),
        n.W_ERRORS: 0.0,
        n.W_WINDOW_S: WINDOW_S,
        n.W_BUSY_S: WINDOW_S * load * 0.6,
        n.W_HOSTED_S: WINDOW_S,
        n.W_COMPONENT["gpu"]: gpu,
        n.W_COMPONENT["cpu"]: cpu,
        n.W_COMPONENT["ram"]: ram,
        n.W_ENERGY: energy_kwh,
        n.W_ACTIVE: active,
        n.W_IDLE: energy_kwh - active,
        n.W_PUE: pue,
        n.W_FACILITY: facility,
        n.W_INTENSITY: intensity,
        n.W_CO2E: co2e,
        n.W_LATENCY[50.0]: 4.0 + 10 * load,
        n.W_LATENCY[95.0]: 9.0 + 30 * load,
        n.W_LATENCY[99.0]: 15.0 + 60 * load,
    }
    if requests:
        out[n.W_WH_PER_REQUEST] = facility * 1000.0 / requests
        out[n.W_ACTIVE_WH_PER_REQUEST] = active * pue * 1000.0 / requests
        out[n.W_G_PER_REQUEST] = co2e * 1000.0 / requests
    return out


def write_inference_history(now: datetime | None = None) -> list[str]:
    """Write 60 days of hourly serving windows per served model; returns the run ids.

    One inference run per model version and UTC day, as the meter rotates them.
    """
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    from carbonledger.demo.history import intensity_of
    from carbonledger.inference import runs as n

    now = now or datetime.now(UTC)
    rng = random.Random(SEED + 1)
    client = MlflowClient()
    profiles = {p.team: p for p in PROFILES}
    run_ids: list[str] = []
    with plugin_off():
        exp = client.get_experiment_by_name(n.DEFAULT_EXPERIMENT)
        exp_id = exp.experiment_id if exp else client.create_experiment(n.DEFAULT_EXPERIMENT)
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
                start_ms = int(hours[0].timestamp() * 1000)
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
                    ts = int(hour.timestamp() * 1000)
                    metrics += [Metric(k, float(v), ts, step) for k, v in w.items()]
                    for c in totals:
                        totals[c] += w[n.W_COMPONENT[c]]
                    requests_total += requests
                end_ms = int((hours[-1] + timedelta(seconds=WINDOW_S)).timestamp() * 1000)
                energy = sum(totals.values())
                duration_s = WINDOW_S * len(hours)
                run_totals = {
                    "carbon/gpu_energy_kwh": totals["gpu"],
                    "carbon/cpu_energy_kwh": totals["cpu"],
                    "carbon/ram_energy_kwh": totals["ram"],
                    "carbon/energy_kwh": energy,
                    "carbon/pue": team.pue,
                    "carbon/facility_energy_kwh": energy * team.pue,
                    "carbon/intensity_g_per_kwh": intensity,
                    "carbon/co2e_kg": energy * team.pue * intensity / 1000.0,
                    "carbon/duration_s": duration_s,
                    "carbon/avg_power_w": energy * 3.6e6 / duration_s,
                    "carbon/peak_power_w": spec.server_power_w,
                    "carbon/heartbeat_ms": float(end_ms),
                    n.T_REQUESTS: float(requests_total),
                    n.T_ROWS: float(requests_total),
                    n.T_WINDOWS: float(len(hours)),
                }
                metrics += [Metric(k, v, end_ms, len(hours)) for k, v in run_totals.items()]
                tags = {
                    SYNTHETIC_TAG: "true",
                    "carbon.kind": "inference",
                    "carbon.model_name": spec.model_name,
                    "carbon.model_version": str(version),
                    "carbon.team": spec.team,
                    "carbon.plugin_version": "synthetic",
                    "carbon.metered": "true",
                    "carbon.status": "complete",
                    "carbon.window_s": f"{WINDOW_S:g}",
                    "carbon.idle_method": "synthetic-80pct-idle",
                    "carbon.attribution": "device",
                    "carbon.node_count": "1",
                    "carbon.methods": "cpu=rapl;gpu=nvml-energy-counter;ram=ram-w-per-gb-estimate",
                    "carbon.grid_zone": team.zone,
                    "carbon.cloud_provider": team.cloud_provider,
                    "carbon.cloud_region": team.cloud_region,
                    "carbon.intensity_source": source,
                }
                for i in range(0, len(metrics), 1000):
                    client.log_batch(run.info.run_id, metrics=metrics[i : i + 1000])
                client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
                client.set_terminated(run.info.run_id, "FINISHED", end_time=end_ms)
                run_ids.append(run.info.run_id)
    return run_ids
