"""Failed and abandoned training, and training past the best step.

*Failed*: the CO2e of failed and killed training runs, per team and experiment (all of it:
a failure caught in its first minutes costs next to nothing). *Past best*: a run whose
objective metric (``CARBONLEDGER_HISTORY_KEYS``; losses fall, accuracies rise) last improved
at least ``CARBONLEDGER_ADVISE_PATIENCE_STEPS`` logged steps before its end; the energy after
the best step is the run's cumulative energy history at its end minus at the best point
(linear between logged points), as a share of the run's energy times its ledger CO2e. Without
an energy history the share is the share of the run's time after the best point.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from carbonledger import contract
from carbonledger.advise.base import Recommendation, Scope, day, listed, run_filter
from carbonledger.reporting.db import frame, frame_in
from carbonledger.settings import get_settings

FAILED = ("FAILED", "KILLED")
HIGHER_IS_BETTER = ("acc", "f1", "auc", "precision", "recall", "score", "map", "bleu")


def higher_is_better(key: str) -> bool:
    """Whether a metric improves upward (accuracy, F1, AUC...) rather than down (a loss)."""
    name = key.lower()
    return any(word in name for word in HIGHER_IS_BETTER) and "loss" not in name


def objective_key(keys: list[str], patterns: list[str]) -> str | None:
    """The first key matching the configured patterns, in the patterns' order."""
    for pattern in patterns:
        for key in sorted(keys):
            if fnmatchcase(key.lower(), pattern):
                return key
    return None


def failed_training(engine: Engine, scope: Scope) -> list[Recommendation]:
    """One recommendation per team and experiment with failed or killed runs."""
    df = frame(
        engine,
        "SELECT e.run_id, e.team, e.model_name, e.status, e.start_time, "
        "e.facility_energy_kwh, e.co2e_location_kg, "
        "COALESCE(x.name, e.experiment_id) AS experiment FROM v_run_emissions e "
        "LEFT JOIN experiments x ON x.source_id = e.source_id "
        "AND x.experiment_id = e.experiment_id "
        "WHERE e.kind <> 'inference' AND e.status IN :failed AND e.co2e_location_kg > 0 "
        f"AND {run_filter('e')}",
        failed=list(FAILED),
        **scope.bind(engine),
    )
    if df.empty:
        return []
    # one sort and one grouped pass (a group per team and experiment: thousands at scale)
    df = df.sort_values("start_time", kind="stable")
    groups = df.groupby(["team", "experiment"], sort=True).agg(
        run_ids=("run_id", list),
        models=("model_name", lambda s: sorted({str(m) for m in s if m is not None and m == m})),
        first=("start_time", "first"),
        last=("start_time", "last"),
        kwh=("facility_energy_kwh", _plain_sum),
        kg=("co2e_location_kg", _plain_sum),
    )
    out = []
    for (team, experiment), g in groups.iterrows():
        out.append(
            Recommendation(
                kind=contract.ADVICE_FAILED_TRAINING,
                team=str(team),
                model_name=g.models[0] if len(g.models) == 1 else None,
                title=(
                    f"Fail fast in experiment {experiment}: {len(g.run_ids)} failed or killed "
                    + ("run" if len(g.run_ids) == 1 else "runs")
                ),
                evidence=(
                    f"runs {listed(g.run_ids)} ({day(g['first'])} to "
                    f"{day(g['last'])}): {g.kwh:,.1f} kWh"
                ),
                saving_co2e_kg_per_year=scope.per_year(float(g.kg)),
                saving_energy_kwh_per_year=scope.per_year(float(g.kwh)),
                method="the CO2e of the failed and killed runs (ledger factors), scaled to a year",
                confidence=contract.CONFIDENCE_MEASURED,
                run_ids=tuple(g.run_ids),
            )
        )
    return out


def _plain_sum(values: pd.Series) -> float:
    """A group's sum as ``Series.sum`` adds (the grouped sum compensates: other last bits)."""
    return float(values.sum())


def past_best(engine: Engine, scope: Scope) -> list[Recommendation]:
    """One recommendation per team and model whose runs trained on past their best step."""
    settings = get_settings()
    runs = frame(
        engine,
        "SELECT e.source_id, e.run_id, e.team, e.model_name, e.start_time, e.end_time, "
        "e.facility_energy_kwh, e.co2e_location_kg FROM v_run_emissions e "
        "WHERE e.kind <> 'inference' AND e.co2e_location_kg > 0 "
        "AND EXISTS (SELECT 1 FROM run_metric_history h WHERE h.source_id = e.source_id "
        "AND h.run_id = e.run_id) "
        f"AND {run_filter('e')}",
        **scope.bind(engine),
    )
    if runs.empty:
        return []
    history = frame_in(  # ordered within each run, the unit read below
        engine,
        "SELECT source_id, run_id, key, step, timestamp_ms, value FROM run_metric_history "
        "WHERE run_id IN :ids ORDER BY source_id, run_id, key, step",
        "ids",
        list(runs.run_id),
    )
    found = []
    for run in runs.itertuples():
        h = history[(history.source_id == run.source_id) & (history.run_id == run.run_id)]
        share = after_best_share(h, settings.history_keys, settings.advise_patience_steps)
        if share is not None and share[0] > 0:
            found.append((run, *share))
    out = []
    frame_ = pd.DataFrame(
        [
            {
                "team": r.team,
                "model_name": r.model_name if r.model_name == r.model_name else None,
                "run_id": r.run_id,
                "kg": r.co2e_location_kg * s,
                "kwh": r.facility_energy_kwh * s,
                "why": why,
                "start": r.start_time,
            }
            for r, s, why in found
        ]
    )
    if frame_.empty:
        return []
    for (team, model), g in frame_.groupby(["team", "model_name"], dropna=False):
        model_name = None if model is None or model != model else str(model)
        out.append(
            Recommendation(
                kind=contract.ADVICE_PAST_BEST,
                team=str(team),
                model_name=model_name,
                title=f"Stop {len(g)} run(s) early when the objective stops improving",
                evidence="; ".join(f"{r.run_id}: {r.why}" for r in g.head(5).itertuples()),
                saving_co2e_kg_per_year=scope.per_year(float(g.kg.sum())),
                saving_energy_kwh_per_year=scope.per_year(float(g.kwh.sum())),
                method=(
                    "energy after the best step (cumulative energy history) / the run's "
                    "energy x its CO2e (ledger factors), scaled to a year"
                ),
                confidence=contract.CONFIDENCE_MEASURED,
                run_ids=tuple(g.run_id),
            )
        )
    return out


def after_best_share(
    history: pd.DataFrame, patterns: list[str], patience_steps: int
) -> tuple[float, str] | None:
    """Share (0..1) of a run's energy spent after its best objective step, and why.

    ``None`` when the run has no objective history or stopped within the patience.
    """
    key = objective_key([k for k in set(history.key) if k != contract.M_ENERGY_KWH], patterns)
    if key is None:
        return None
    obj = history[history.key == key].sort_values("step")
    values = obj.value.tolist()
    best = values.index(max(values) if higher_is_better(key) else min(values))
    steps_after = len(values) - 1 - best
    if steps_after < patience_steps:
        return None
    best_ts = float(obj.timestamp_ms.iloc[best])
    energy = history[history.key == contract.M_ENERGY_KWH].sort_values("timestamp_ms")
    if len(energy) >= 2 and float(energy.value.iloc[-1]) > 0:
        at_best = _interpolate(energy.timestamp_ms.tolist(), energy.value.tolist(), best_ts)
        share = 1.0 - at_best / float(energy.value.iloc[-1])
        basis = "energy history"
    else:
        first, last = float(obj.timestamp_ms.iloc[0]), float(obj.timestamp_ms.iloc[-1])
        share = (last - best_ts) / (last - first) if last > first else 0.0
        basis = "time share, no energy history"
    step = int(obj.step.iloc[best])
    return max(share, 0.0), (
        f"best {key} {values[best]:.4g} at step {step}, {steps_after} more steps logged; "
        f"{share:.0%} of its energy after the best step ({basis})"
    )


def _interpolate(xs: list[Any], ys: list[Any], x: float) -> float:
    """Linear interpolation of ``ys`` over ``xs`` at ``x`` (clamped to the ends)."""
    if x <= xs[0]:
        return float(ys[0])
    for (x0, y0), (x1, y1) in zip(
        zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True), strict=False
    ):
        if x0 <= x <= x1:
            return (
                float(y0)
                if x1 == x0
                else float(y0) + (float(y1) - float(y0)) * (x - x0) / (x1 - x0)
            )
    return float(ys[-1])
