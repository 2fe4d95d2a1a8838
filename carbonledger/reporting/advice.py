"""Recommendations for the app's Cut page, the Overview tile and the report's "where to cut".

Thin wrappers over ``carbonledger.advise.advise`` that take the app's and the report's
filters (a :class:`Period`: its start opens the window; the window runs to the ledger's
latest activity, so savings are at the current rate) and return plain frames and numbers.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from carbonledger.advise import HOW, advice_frame, advise, total_saving_kg_per_year
from carbonledger.reporting.periods import Period

REPORT_COLUMNS = {
    "kind": "Kind",
    "team": "Team",
    "model_name": "Model",
    "title": "What to change",
    "saving_co2e_kg_per_year": "Saving (kg CO2e/yr)",
    "saving_energy_kwh_per_year": "Saving (kWh/yr)",
    "confidence": "Confidence",
    "evidence": "Evidence",
    "method": "How the saving is computed",
}


def recommendations(
    engine: Engine,
    *,
    period: Period | None = None,
    team: str | None = None,
    model_name: str | None = None,
) -> pd.DataFrame:
    """Every recommendation of the scope, largest saving first, with the practice's "how"."""
    found = advise(engine, team=team, model_name=model_name, since=period.start if period else None)
    df = advice_frame(found)
    df["how"] = [HOW[k] for k in df.kind]
    return df


def potential_saving_kg_per_year(
    engine: Engine, *, period: Period | None = None, team: str | None = None
) -> float:
    """The sum of the yearly savings of the scope (kinds may overlap: an upper bound)."""
    since = period.start if period else None
    return total_saving_kg_per_year(advise(engine, team=team, since=since))


def where_to_cut(engine: Engine, *, period: Period, top: int = 10) -> pd.DataFrame:
    """The report's "where to cut" section: the top recommendations, human column names."""
    df = recommendations(engine, period=period).head(top)
    return df[list(REPORT_COLUMNS)].rename(columns=REPORT_COLUMNS)
