"""All the kinds, ranked: what ``carbonledger advise``, the Cut page and the report show."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine

from carbonledger import contract
from carbonledger.advise.base import Recommendation, Scope, make_scope
from carbonledger.advise.efficiency import model_efficiency
from carbonledger.advise.place import place
from carbonledger.advise.serving import idle_serving
from carbonledger.advise.sweeps import sweeps
from carbonledger.advise.timing import timing
from carbonledger.advise.training import failed_training, past_best

KINDS: dict[str, Callable[[Engine, Scope], list[Recommendation]]] = {
    contract.ADVICE_IDLE_SERVING: idle_serving,
    contract.ADVICE_FAILED_TRAINING: failed_training,
    contract.ADVICE_PAST_BEST: past_best,
    contract.ADVICE_SWEEP: sweeps,
    contract.ADVICE_TIMING: timing,
    contract.ADVICE_PLACE: place,
    contract.ADVICE_MODEL_EFFICIENCY: model_efficiency,
}

HOW: dict[str, str] = {
    contract.ADVICE_IDLE_SERVING: (
        "Scale to zero. A served model draws most of its power whether or not requests come "
        "(BLOOM's deployment drew most of its energy independent of load): let the serving "
        "platform scale this version to zero replicas in the hours that carry almost no "
        "requests, or batch those requests, and accept a cold start."
    ),
    contract.ADVICE_FAILED_TRAINING: (
        "Fail fast. Run a smoke test (a few steps on a small batch) before a long job, check "
        "data and configuration up front, checkpoint often so a failure resumes instead of "
        "restarting, and alert on divergence (NaN loss) so a doomed run is killed early."
    ),
    contract.ADVICE_PAST_BEST: (
        "Stop early. Use an early-stopping callback on the validation objective with a small "
        "patience, and keep the best checkpoint: the steps after the best one bought nothing."
    ),
    contract.ADVICE_SWEEP: (
        "Do not grid-search blindly. Use a sequential search (Bayesian optimisation, "
        "Hyperband or ASHA) that prunes poor trials and stops when the best stops improving, "
        "and start from the front of earlier sweeps instead of a full grid."
    ),
    contract.ADVICE_TIMING: (
        "Train when the grid is clean. Schedule deferrable jobs (longer than an hour, no one "
        "waiting) to start in the cleanest hours within half a day."
    ),
    contract.ADVICE_PLACE: (
        "Train where the grid is clean. Put deferrable training in the provider's "
        "low-carbon region when data residency and latency allow; the same work emits a "
        "fraction there."
    ),
    contract.ADVICE_MODEL_EFFICIENCY: (
        "Prefer the smaller model. Serve the smaller, quantised or distilled version when it "
        "is within the accuracy margin of the best: every request costs less energy."
    ),
}


def advise(
    engine: Engine,
    *,
    team: str | None = None,
    model_name: str | None = None,
    since: datetime | timedelta | None = None,
    kinds: tuple[str, ...] | None = None,
) -> list[Recommendation]:
    """Every recommendation of the scope, largest yearly saving first."""
    scope = make_scope(engine, team=team, model_name=model_name, since=since)
    out: list[Recommendation] = []
    for kind, compute in KINDS.items():
        if kinds is None or kind in kinds:
            out += compute(engine, scope)
    return sorted(out, key=lambda r: (-r.saving_co2e_kg_per_year, r.kind, r.team, r.title))


def advice_frame(recommendations: list[Recommendation]) -> pd.DataFrame:
    """The recommendations as a DataFrame (one row each, ``run_ids`` joined by commas)."""
    rows = [r.as_dict() | {"run_ids": ", ".join(r.run_ids)} for r in recommendations]
    columns = list(Recommendation.__dataclass_fields__)
    return pd.DataFrame(
        rows,
        columns=[
            "kind",
            "team",
            "model_name",
            "model_version",
            *[c for c in columns if c not in ("kind", "team", "model_name", "model_version")],
        ],
    )


def total_saving_kg_per_year(recommendations: list[Recommendation]) -> float:
    """The sum of the yearly savings (kinds may overlap: an upper bound)."""
    return sum(r.saving_co2e_kg_per_year for r in recommendations)
