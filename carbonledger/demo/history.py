"""A deterministic, clearly labelled synthetic history for the demo.

Six months of training runs across four teams, written to the demo's MLflow store the way the
plugin would have written them (the same ``carbon/*`` metrics and ``carbon.*`` tags), so trends,
budgets and the app have something to show. Every synthetic run carries the tag
``carbon.synthetic=true`` and a run name starting ``synthetic-``; the figures come from a
seeded generator (same seed, same history) and the real yearly grid factors of each team's
zone. The plugin is switched off while they are written: they are records, not measurements.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from carbonledger import contract
from carbonledger.demo.training import use_experiment
from carbonledger.footprint import co2e_kg
from carbonledger.measure.ram import W_PER_GB as RAM_W_PER_GB

SYNTHETIC_TAG = contract.TAG_SYNTHETIC
SEED = 20261123
MONTHS = 6
METHODS = "gpu=nvml-energy-counter;cpu=rapl;ram=ram-w-per-gb-estimate"  # carbon.methods
# Jobs are launched in the working day (UTC hours), as people start them: when the grid is
# rarely at its cleanest, so the What-if page shows what timing could save.
LAUNCH_HOURS_UTC = (7.0, 17.0)


@dataclass(frozen=True, slots=True)
class TeamProfile:
    """How one synthetic team trains: where, on what, how much."""

    team: str
    experiment: str
    zone: str
    cloud_provider: str
    cloud_region: str
    pue: float
    gpu_model: str
    gpu_power_w: float
    models: tuple[str, ...]
    runs_per_month: int
    gpus: tuple[int, ...]
    hours: tuple[float, float]


PROFILES: tuple[TeamProfile, ...] = (
    TeamProfile("vision", "vision/digits", "DE", "aws", "eu-central-1", 1.135,
                "NVIDIA A100-SXM4-40GB", 400.0, ("digits-classifier", "digits-mlp"), 10,
                (1, 2, 4), (0.5, 6.0)),
    TeamProfile("risk", "risk/credit", "FR", "gcp", "europe-west9", 1.10,
                "NVIDIA L4", 72.0, ("credit-scorer",), 8, (1,), (0.2, 2.0)),
    TeamProfile("forecasting", "forecasting/demand", "US-CAL-CISO", "aws", "us-west-1", 1.135,
                "NVIDIA A10G", 150.0, ("demand-regressor",), 6, (1, 2), (0.5, 3.0)),
    TeamProfile("nlp", "nlp/support-assistant", "PL", "azure", "polandcentral", 1.185,
                "NVIDIA H100 80GB HBM3", 700.0, ("support-assistant",), 5, (8,), (4.0, 20.0)),
)  # fmt: skip


@contextmanager
def plugin_off() -> Iterator[None]:
    """Switch the MLflow plugin off while synthetic records are written (not measured)."""
    from carbonledger.settings import get_settings

    before = os.environ.get("CARBONLEDGER_DISABLE")
    os.environ["CARBONLEDGER_DISABLE"] = "1"
    get_settings.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CARBONLEDGER_DISABLE", None)
        else:
            os.environ["CARBONLEDGER_DISABLE"] = before
        get_settings.cache_clear()


def _month_starts(now: datetime) -> list[datetime]:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out = []
    for back in range(MONTHS, 0, -1):
        year, month = first.year, first.month - back
        while month <= 0:
            year, month = year - 1, month + 12
        out.append(first.replace(year=year, month=month))
    return out


def intensity_of(zone: str, year: int) -> tuple[float, str]:
    """The shipped yearly intensity of ``zone`` and its provenance label."""
    from carbonledger.intensity import Location, resolve_place

    factor = resolve_place(location=Location(grid_zone=zone), year=year).grid
    return factor.intensity_g_per_kwh, factor.label


def planned_runs(now: datetime) -> list[dict[str, object]]:
    """The synthetic runs to write, in start-time order (pure: same ``now``, same runs)."""
    rng = random.Random(SEED)
    plans: list[dict[str, object]] = []
    for month_start in _month_starts(now):
        for p in PROFILES:
            intensity, source = intensity_of(p.zone, month_start.year)
            for i in range(p.runs_per_month):
                start = month_start + timedelta(
                    days=rng.uniform(0, 27), hours=rng.uniform(*LAUNCH_HOURS_UTC)
                )
                if start + timedelta(hours=p.hours[1]) >= now:
                    continue
                hours = rng.uniform(*p.hours)
                duration_s = hours * contract.S_PER_HOUR
                gpus = rng.choice(p.gpus)
                utilisation = rng.uniform(0.55, 0.95)
                gpu_kwh = contract.energy_kwh_at(gpus * p.gpu_power_w * utilisation, duration_s)
                cpu_kwh = contract.energy_kwh_at(2 * 120.0 * rng.uniform(0.3, 0.7), duration_s)
                ram_gb = 64.0 * max(1, gpus // 2)
                ram_kwh = contract.energy_kwh_at(RAM_W_PER_GB * ram_gb, duration_s)
                end = start + timedelta(hours=hours)
                plans.append(
                    {
                        "profile": p,
                        "model": p.models[i % len(p.models)],
                        "name": f"synthetic-{p.team}-{month_start:%Y%m}-{i:02d}",
                        "start": start,
                        "end": end,
                        "status": "FAILED" if rng.random() < 0.08 else "FINISHED",
                        "gpus": gpus,
                        "ram_gb": ram_gb,
                        "metrics": carbon_metrics(
                            gpu_kwh,
                            cpu_kwh,
                            ram_kwh,
                            pue=p.pue,
                            intensity=intensity,
                            duration_s=duration_s,
                            end=end,
                        ),
                        "source": source,
                    }
                )
    plans.sort(key=lambda plan: plan["start"])  # type: ignore[arg-type, return-value]
    return plans


def carbon_metrics(
    gpu_kwh: float,
    cpu_kwh: float,
    ram_kwh: float,
    *,
    pue: float,
    intensity: float,
    duration_s: float,
    end: datetime,
) -> dict[str, float]:
    """The plugin's final ``carbon/*`` metrics of a run with this energy, place and time."""
    energy = gpu_kwh + cpu_kwh + ram_kwh
    avg_power_w = contract.average_power_w(energy, duration_s)
    return {
        contract.M_GPU_ENERGY_KWH: gpu_kwh,
        contract.M_CPU_ENERGY_KWH: cpu_kwh,
        contract.M_RAM_ENERGY_KWH: ram_kwh,
        contract.M_ENERGY_KWH: energy,
        contract.M_PUE: pue,
        contract.M_FACILITY_ENERGY_KWH: energy * pue,
        contract.M_INTENSITY_G_PER_KWH: intensity,
        contract.M_CO2E_KG: co2e_kg(energy, pue, intensity),
        contract.M_DURATION_S: duration_s,
        contract.M_AVG_POWER_W: avg_power_w,
        contract.M_PEAK_POWER_W: avg_power_w * 1.3,
        contract.M_HEARTBEAT_MS: end.timestamp() * contract.MS_PER_S,
    }


def synthetic_tags(
    p: TeamProfile, model: str, gpus: int, ram_gb: float, source: str
) -> dict[str, str]:
    """The plugin's tags of a synthetic run of team profile ``p`` (marked synthetic)."""
    return {
        SYNTHETIC_TAG: "true",
        contract.TAG_MODEL_NAME: model,
        contract.TAG_PLUGIN_VERSION: "synthetic",
        contract.TAG_GPU_MODEL: p.gpu_model,
        contract.TAG_GPU_COUNT: str(gpus),
        contract.TAG_CPU_MODEL: "AMD EPYC 7R13",
        contract.TAG_CPU_COUNT: "2",
        contract.TAG_RAM_GB: f"{ram_gb:g}",
        contract.TAG_CLOUD_PROVIDER: p.cloud_provider,
        contract.TAG_CLOUD_REGION: p.cloud_region,
        contract.TAG_GRID_ZONE: p.zone,
        contract.TAG_INTENSITY_SOURCE: source,
        contract.TAG_METHODS: METHODS,
        contract.TAG_ATTRIBUTION: "device",
        contract.TAG_NODE_COUNT: "1",
    }


def write_history(artifacts: Path, now: datetime | None = None) -> list[str]:
    """Write the synthetic runs into the current tracking store; returns their run ids.

    The caller sets the tracking URI. Experiments are created when missing and tagged with
    their team (``carbon.team``), as the real demo training does.
    """
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    now = now or datetime.now(UTC)
    client = MlflowClient()
    run_ids: list[str] = []
    with plugin_off():
        experiments: dict[str, str] = {}
        for plan in planned_runs(now):
            p: TeamProfile = plan["profile"]  # type: ignore[assignment]
            if p.experiment not in experiments:
                experiments[p.experiment] = use_experiment(p.experiment, p.team, artifacts)
            start_ms = int(plan["start"].timestamp() * contract.MS_PER_S)  # type: ignore[attr-defined]
            end_ms = int(plan["end"].timestamp() * contract.MS_PER_S)  # type: ignore[attr-defined]
            run = client.create_run(
                experiments[p.experiment], start_time=start_ms, run_name=str(plan["name"])
            )
            tags = synthetic_tags(
                p,
                str(plan["model"]),
                int(plan["gpus"]),  # type: ignore[call-overload]
                float(plan["ram_gb"]),  # type: ignore[arg-type]
                str(plan["source"]),
            )
            metrics = plan["metrics"]
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, float(v), end_ms, 0) for k, v in metrics.items()],  # type: ignore[attr-defined]
                tags=[RunTag(k, v) for k, v in tags.items()],
            )
            client.set_terminated(run.info.run_id, status=str(plan["status"]), end_time=end_ms)
            run_ids.append(run.info.run_id)
        _register_synthetic_models(client, run_ids)
    return run_ids


def _register_synthetic_models(client: Any, run_ids: list[str]) -> None:
    """Register the synthetic-only models (no real training here), from their last good run.

    The version's source is the run's artifact folder: lineage for the ledger, no files.
    """
    real = {m.name for m in client.search_registered_models()}
    last: dict[str, Any] = {}
    for run_id in run_ids:
        run = client.get_run(run_id)
        name = run.data.tags.get(contract.TAG_MODEL_NAME)
        if name and name not in real and run.info.status == "FINISHED":
            last[name] = run
    for name, run in last.items():
        client.create_registered_model(name, tags={SYNTHETIC_TAG: "true"})
        client.create_model_version(
            name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
            tags={SYNTHETIC_TAG: "true"},
        )  # fmt: skip
