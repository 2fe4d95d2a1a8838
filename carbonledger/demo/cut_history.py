"""Synthetic runs that show the practices the Cut page names: a blind sweep, a long run.

* ``risk`` runs a 12-child grid search (nested runs under one parent, each logging
  ``val_accuracy``) whose best child is the 4th: the 8 after it found nothing better.
* ``nlp`` fine-tunes for 20 epochs although its validation loss was best at epoch 12: the
  run logs ``val_loss`` and the plugin's cumulative ``carbon/energy_kwh`` every epoch, as
  a metered run does, so the ledger's history shows the energy spent after the best step.

Like ``history``, every run is tagged ``carbon.synthetic=true`` and written with the plugin
off; the figures come from the team profile's hardware and its zone's shipped factor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from carbonledger import contract
from carbonledger.demo.history import (
    PROFILES,
    carbon_metrics,
    intensity_of,
    plugin_off,
    synthetic_tags,
)
from carbonledger.demo.training import use_experiment

SWEEP_ACCURACY = (0.912, 0.927, 0.941, 0.968, 0.944, 0.951, 0.902, 0.958, 0.889, 0.93, 0.962, 0.915)
EPOCH_VAL_LOSS = tuple(
    [round(1.2 * 0.82**e, 4) for e in range(13)]
    + [round(0.093 + 0.004 * k, 4) for k in range(1, 8)]
)  # best at epoch 12, seven more epochs
CPU_W = 60.0
RAM_GB = 64.0


def _energy(gpus: int, gpu_w: float, hours: float) -> tuple[float, float, float]:
    from carbonledger.measure.ram import W_PER_GB

    s = hours * contract.S_PER_HOUR
    return (
        contract.energy_kwh_at(gpus * gpu_w * 0.8, s),
        contract.energy_kwh_at(CPU_W, s),
        contract.energy_kwh_at(W_PER_GB * RAM_GB, s),
    )


def write_cut_history(artifacts: Path, now: datetime | None = None) -> list[str]:
    """Write the sweep and the long fine-tune into the current tracking store; run ids."""
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    client = MlflowClient()
    profiles = {p.team: p for p in PROFILES}
    ids: list[str] = []

    def run(
        team: str,
        name: str,
        start: datetime,
        hours: float,
        gpus: int,
        step: int = 0,
        tags: dict[str, str] | None = None,
    ) -> str:
        p = profiles[team]
        intensity, source = intensity_of(p.zone, start.year)
        exp = use_experiment(p.experiment, p.team, artifacts)
        end = start + timedelta(hours=hours)
        run_id = client.create_run(
            exp, start_time=int(start.timestamp() * 1000), run_name=name
        ).info.run_id
        gpu, cpu, ram = _energy(gpus, p.gpu_power_w, hours)
        final = carbon_metrics(
            gpu, cpu, ram, pue=p.pue, intensity=intensity, duration_s=hours * 3600, end=end
        )
        all_tags = synthetic_tags(p, p.models[0], gpus, RAM_GB, source) | (tags or {})
        end_ms = int(end.timestamp() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), end_ms, step) for k, v in final.items()],
            tags=[RunTag(k, v) for k, v in all_tags.items()],
        )
        client.set_terminated(run_id, "FINISHED", end_time=end_ms)
        ids.append(run_id)
        return run_id

    with plugin_off():
        start = now - timedelta(days=20)
        parent = run("risk", "synthetic-risk-grid-search", start, 0.1, 1)
        for i, accuracy in enumerate(SWEEP_ACCURACY):
            child = run(
                "risk", f"synthetic-risk-grid-{i + 1:02d}", start + timedelta(hours=i),
                1.0, 1, tags={contract.MLFLOW_PARENT_RUN_ID: parent},
            )  # fmt: skip
            ts = int((start + timedelta(hours=i + 1)).timestamp() * 1000)
            client.log_batch(child, metrics=[Metric("val_accuracy", accuracy, ts, 0)])
        # The parent's MLflow figure is inclusive of its children (as the plugin's is).
        _inclusive_parent(client, parent, ids[1:])
        epochs = len(EPOCH_VAL_LOSS)
        long = run(
            "nlp", "synthetic-nlp-finetune-20-epochs", now - timedelta(days=9), epochs * 0.5, 8,
            step=epochs - 1,
        )  # fmt: skip
        p = profiles["nlp"]
        gpu, cpu, ram = _energy(8, p.gpu_power_w, 0.5)
        t0 = now - timedelta(days=9)
        points = []
        for epoch, loss in enumerate(EPOCH_VAL_LOSS):
            ts = int((t0 + timedelta(hours=0.5 * (epoch + 1))).timestamp() * 1000)
            points += [
                Metric("val_loss", loss, ts, epoch),
                Metric(contract.M_ENERGY_KWH, (gpu + cpu + ram) * (epoch + 1), ts, epoch),
            ]
        client.log_batch(long, metrics=points)
    return ids


def _inclusive_parent(client: object, parent: str, children: list[str]) -> None:
    """Re-log the parent's energy metrics as its own plus its children's."""
    from mlflow.entities import Metric

    keys = (
        contract.M_GPU_ENERGY_KWH, contract.M_CPU_ENERGY_KWH, contract.M_RAM_ENERGY_KWH,
        contract.M_ENERGY_KWH, contract.M_FACILITY_ENERGY_KWH, contract.M_CO2E_KG,
    )  # fmt: skip
    runs = [client.get_run(r) for r in (parent, *children)]  # type: ignore[attr-defined]
    end_ms = int(runs[0].info.end_time)
    totals = [Metric(k, sum(r.data.metrics[k] for r in runs), end_ms, 1) for k in keys]
    client.log_batch(parent, metrics=totals)  # type: ignore[attr-defined]
