"""Sweeps: parents with many children that kept searching after their best child.

A sweep is a run with at least ``CARBONLEDGER_ADVISE_SWEEP_MIN_CHILDREN`` nested training
runs that logged the same objective metric (``run_metrics``, the final value). In start
order, the children started after the best one found nothing better: their CO2e is the
saving of a search that stops when it converges (early-stopping or Bayesian search instead
of a full grid). The share of children *dominated* on the accuracy-vs-CO2e Pareto front
(another child at most as costly and at least as good) says how blind the grid was.
"""

from __future__ import annotations

from sqlalchemy import Engine

from carbonledger import contract
from carbonledger.advise.base import Recommendation, Scope, day, listed, run_filter
from carbonledger.advise.training import higher_is_better, objective_key
from carbonledger.reporting.db import frame
from carbonledger.reporting.runs import pareto_front
from carbonledger.settings import get_settings


def sweeps(engine: Engine, scope: Scope) -> list[Recommendation]:
    """One recommendation per sweep whose best child was not its last."""
    settings = get_settings()
    children = frame(
        engine,
        "SELECT c.source_id, c.parent_run_id, c.run_id, c.team, c.model_name, c.start_time, "
        "c.facility_energy_kwh, c.co2e_location_kg, m.key, m.value, "
        "COALESCE(p.run_name, c.parent_run_id) AS parent_name "
        "FROM v_run_emissions c JOIN run_metrics m "
        "ON m.source_id = c.source_id AND m.run_id = c.run_id "
        "LEFT JOIN runs p ON p.source_id = c.source_id AND p.run_id = c.parent_run_id "
        "WHERE c.parent_run_id IS NOT NULL AND c.kind <> 'inference' "
        "AND c.co2e_location_kg IS NOT NULL AND m.value IS NOT NULL "
        f"AND {run_filter('c')}",
        **scope.bind(engine),
    )
    out = []
    for (_, parent), g in children.groupby(["source_id", "parent_run_id"]):
        key = objective_key(sorted(set(g.key)), settings.history_keys)
        if key is None:
            continue
        g = g[g.key == key].sort_values(["start_time", "run_id"])
        if len(g) < settings.advise_sweep_min_children:
            continue
        values = g.value.tolist()
        up = higher_is_better(key)
        best = values.index(max(values) if up else min(values))
        after = g.iloc[best + 1 :]
        front = pareto_front(g.co2e_location_kg.tolist(), values, up)
        dominated = 1.0 - sum(front) / len(front)
        if after.empty:
            continue
        team = str(g.team.iloc[0])
        name = str(g.parent_name.iloc[0])
        models = sorted({str(m) for m in g.model_name if m is not None and m == m})
        out.append(
            Recommendation(
                kind=contract.ADVICE_SWEEP,
                team=team,
                model_name=models[0] if len(models) == 1 else None,
                title=(
                    f"Stop sweep {name} at convergence: {len(after)} of {len(g)} children "
                    "ran after the best"
                ),
                evidence=(
                    f"sweep {name} ({parent}, {day(g.start_time.iloc[0])}): best {key} "
                    f"{values[best]:.4g} from child {best + 1} of {len(g)} in start order "
                    f"({g.run_id.iloc[best]}); after it {listed(list(after.run_id), 3)}; "
                    f"{dominated:.0%} of the children dominated on {key} vs CO2e"
                ),
                saving_co2e_kg_per_year=scope.per_year(float(after.co2e_location_kg.sum())),
                saving_energy_kwh_per_year=scope.per_year(float(after.facility_energy_kwh.sum())),
                method=(
                    "CO2e of the children started after the best child (ledger factors), "
                    "scaled to a year"
                ),
                confidence=contract.CONFIDENCE_MEASURED,
                run_ids=(str(parent), *after.run_id),
            )
        )
    return out
