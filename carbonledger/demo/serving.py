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

from carbonledger import contract
from carbonledger.demo.history import PROFILES, SEED, SYNTHETIC_TAG, plugin_off
from carbonledger.footprint import co2e_kg

HISTORY_DAYS = 60
WINDOW_S = 3600.0
METHODS = "cpu=rapl;gpu=nvml-energy-counter;ram=ram-w-per-gb-estimate"  # carbon.methods


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A registered demo model that serves predictions, and its traffic profile."""

    team: str
    model_name: str
    dataset: str
    requests_per_hour: int
    server_power_w: float
    version: int | None = None  # None: the newest version
    business_hours: tuple[int, int] | None = None  # UTC hours with traffic; None: all day


SERVED: tuple[ServedModel, ...] = (
    ServedModel("vision", "digits-classifier", "digits", 9_000, 180.0),
    # used in office hours only, served around the clock
    ServedModel("risk", "credit-scorer", "breast_cancer", 2_500, 60.0, business_hours=(7, 19)),
    # its first version still takes some traffic, on a smaller server: cheaper per request
    ServedModel(
        "risk", "credit-scorer", "breast_cancer", 1_250, 20.0, version=1, business_hours=(7, 19)
    ),
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
        if not spec.dataset or spec.version is not None:  # live traffic: the newest version
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
    energy_kwh = contract.energy_kwh_at(power_w, WINDOW_S)
    shares = {"gpu": 0.7, "cpu": 0.22, "ram": 0.08}
    active = energy_kwh * (1 - idle_share) * load
    facility = energy_kwh * pue
    co2e = co2e_kg(energy_kwh, pue, intensity)
    out = {
        contract.W_REQUESTS: float(requests),
        contract.W_ROWS: float(requests),
        contract.W_ERRORS: 0.0,
        contract.W_WINDOW_S: WINDOW_S,
        contract.W_BUSY_S: WINDOW_S * load * 0.6,
        contract.W_HOSTED_S: WINDOW_S,
        **{contract.W_COMPONENT_ENERGY_KWH[c]: energy_kwh * share for c, share in shares.items()},
        contract.W_ENERGY_KWH: energy_kwh,
        contract.W_ACTIVE_ENERGY_KWH: active,
        contract.W_IDLE_ENERGY_KWH: energy_kwh - active,
        contract.W_PUE: pue,
        contract.W_FACILITY_ENERGY_KWH: facility,
        contract.W_INTENSITY_G_PER_KWH: intensity,
        contract.W_CO2E_KG: co2e,
        contract.W_LATENCY_MS[50.0]: 4.0 + 10 * load,
        contract.W_LATENCY_MS[95.0]: 9.0 + 30 * load,
        contract.W_LATENCY_MS[99.0]: 15.0 + 60 * load,
    }
    if requests:
        out[contract.W_WH_PER_REQUEST] = facility * contract.WH_PER_KWH / requests
        out[contract.W_ACTIVE_WH_PER_REQUEST] = active * pue * contract.WH_PER_KWH / requests
        out[contract.W_CO2E_G_PER_REQUEST] = co2e * contract.G_PER_KG / requests
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
        by_day: dict[str, list[datetime]] = {}
        for hour in _hour_windows(now):
            by_day.setdefault(hour.date().isoformat(), []).append(hour)
        for spec in SERVED:
            team = profiles[spec.team]
            version = spec.version or latest_version(spec.model_name)
            for day, hours in sorted(by_day.items()):
                intensity, source = intensity_of(team.zone, hours[0].year)
                start_ms = int(hours[0].timestamp() * contract.MS_PER_S)
                run = client.create_run(
                    exp_id,
                    start_time=start_ms,
                    run_name=f"synthetic-inference {spec.model_name} v{version} {day}",
                )
                totals: dict[str, float] = {"gpu": 0.0, "cpu": 0.0, "ram": 0.0}
                requests_total = 0
                metrics: list[Metric] = []
                for step, hour in enumerate(hours, start=1):
                    daily = 0.35 + 0.65 * max(0.0, 1 - abs(hour.hour - 14) / 10)  # daytime peak
                    growth = 1 + 0.6 * (1 - (now - hour).days / HISTORY_DAYS)
                    requests = int(spec.requests_per_hour * daily * growth * rng.uniform(0.8, 1.2))
                    if spec.business_hours and not (
                        spec.business_hours[0] <= hour.hour < spec.business_hours[1]
                    ):
                        requests = 0
                    w = _window_metrics(spec, requests, team.pue, intensity)
                    ts = int(hour.timestamp() * contract.MS_PER_S)
                    metrics += [Metric(k, float(v), ts, step) for k, v in w.items()]
                    for c in totals:
                        totals[c] += w[contract.W_COMPONENT_ENERGY_KWH[c]]
                    requests_total += requests
                end_ms = int(
                    (hours[-1] + timedelta(seconds=WINDOW_S)).timestamp() * contract.MS_PER_S
                )
                energy = sum(totals.values())
                duration_s = WINDOW_S * len(hours)
                run_totals = {
                    **{contract.M_COMPONENT_ENERGY_KWH[c]: v for c, v in totals.items()},
                    contract.M_ENERGY_KWH: energy,
                    contract.M_PUE: team.pue,
                    contract.M_FACILITY_ENERGY_KWH: energy * team.pue,
                    contract.M_INTENSITY_G_PER_KWH: intensity,
                    contract.M_CO2E_KG: co2e_kg(energy, team.pue, intensity),
                    contract.M_DURATION_S: duration_s,
                    contract.M_AVG_POWER_W: contract.average_power_w(energy, duration_s),
                    contract.M_PEAK_POWER_W: spec.server_power_w,
                    contract.M_HEARTBEAT_MS: float(end_ms),
                    contract.W_REQUESTS_TOTAL: float(requests_total),
                    contract.W_ROWS_TOTAL: float(requests_total),
                    contract.W_WINDOWS_TOTAL: float(len(hours)),
                }
                metrics += [Metric(k, v, end_ms, len(hours)) for k, v in run_totals.items()]
                tags = {
                    SYNTHETIC_TAG: "true",
                    contract.TAG_KIND: contract.KIND_INFERENCE,
                    contract.TAG_MODEL_NAME: spec.model_name,
                    contract.TAG_MODEL_VERSION: str(version),
                    contract.TAG_TEAM: spec.team,
                    contract.TAG_PLUGIN_VERSION: "synthetic",
                    contract.TAG_METERED: "true",
                    contract.TAG_STATUS: contract.STATUS_COMPLETE,
                    contract.TAG_WINDOW_S: f"{WINDOW_S:g}",
                    contract.TAG_IDLE_METHOD: "synthetic-80pct-idle",
                    contract.TAG_ATTRIBUTION: "device",
                    contract.TAG_NODE_COUNT: "1",
                    contract.TAG_METHODS: METHODS,
                    contract.TAG_GRID_ZONE: team.zone,
                    contract.TAG_CLOUD_PROVIDER: team.cloud_provider,
                    contract.TAG_CLOUD_REGION: team.cloud_region,
                    contract.TAG_INTENSITY_SOURCE: source,
                }
                for i in range(0, len(metrics), 1000):
                    client.log_batch(run.info.run_id, metrics=metrics[i : i + 1000])
                client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
                client.set_terminated(run.info.run_id, "FINISHED", end_time=end_ms)
                run_ids.append(run.info.run_id)
    return run_ids
