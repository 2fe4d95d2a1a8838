"""Timing: deferrable runs (longer than an hour) started at dirty hours.

Reads ``carbonledger.reporting.timing.shift_savings`` (hourly factors): for each run, its
CO2e at the hourly factors of the hours it ran against the cleanest start within
``contract.TIMING_FLEX_H`` hours. Until the ledger has hourly factors (that module is
absent), the kind reports one row with no saving that says it needs hourly data.
"""

from __future__ import annotations

import importlib
import importlib.util

from sqlalchemy import Engine

from carbonledger import contract
from carbonledger.advise.base import Recommendation, Scope, day, listed
from carbonledger.reporting.db import frame_in

TIMING_MODULE = "carbonledger.reporting.timing"
NEEDS_HOURLY = (
    "needs hourly data: this ledger has no hourly emission factors yet, so the saving of "
    "moving deferrable runs to cleaner hours cannot be computed"
)


def hourly_available() -> bool:
    """Whether the hourly timing module is installed."""
    return importlib.util.find_spec(TIMING_MODULE) is not None


def timing(engine: Engine, scope: Scope) -> list[Recommendation]:
    """One recommendation per team and model whose long runs could start cleaner."""
    if not hourly_available():
        return [
            Recommendation(
                kind=contract.ADVICE_TIMING,
                team=scope.team or "all teams",
                model_name=scope.model_name,
                title="Start deferrable runs at clean hours (needs hourly data)",
                evidence=NEEDS_HOURLY,
                saving_co2e_kg_per_year=0.0,
                saving_energy_kwh_per_year=0.0,
                method=NEEDS_HOURLY,
                confidence=contract.CONFIDENCE_ESTIMATE,
            )
        ]
    module = importlib.import_module(TIMING_MODULE)
    with engine.connect() as conn:
        df = module.shift_savings(
            conn,
            flex_h=contract.TIMING_FLEX_H,
            team=scope.team,
            since=scope.since,
            hourly_zones_only=True,
        )
    if df.empty:
        return []
    long_runs = frame_in(
        engine,
        "SELECT run_id FROM runs WHERE duration_s > :hour AND run_id IN :ids",
        "ids",
        list(df.run_id),
        hour=contract.S_PER_HOUR,
    )
    df = df[df.run_id.isin(set(long_runs.run_id)) & (df.saving_kg > 0)]
    if scope.model_name is not None:
        df = df[df.model_name == scope.model_name]
    out = []
    for (team, model), g in df.groupby(["team", "model_name"], dropna=False):
        g = g.sort_values("saving_kg", ascending=False)
        top = g.iloc[0]
        out.append(
            Recommendation(
                kind=contract.ADVICE_TIMING,
                team=str(team),
                model_name=None if model is None or model != model else str(model),
                title=f"Start {len(g)} long run(s) at the cleanest hour within 12 h",
                evidence=(
                    f"runs {listed(list(g.run_id))}; e.g. {top.run_id} started "
                    f"{day(top.start_utc)} in {top.zone}: {top.co2e_actual_kg:.2f} kg, "
                    f"{top.co2e_best_kg:.2f} kg from {top.best_start_utc}"
                ),
                saving_co2e_kg_per_year=scope.per_year(float(g.saving_kg.sum())),
                saving_energy_kwh_per_year=0.0,
                method=(
                    "CO2e at the hourly factors of the hours run minus at the cleanest start "
                    f"within {contract.TIMING_FLEX_H} h (same energy), scaled to a year"
                ),
                confidence=contract.CONFIDENCE_ESTIMATE,
                run_ids=tuple(g.run_id),
            )
        )
    return out
