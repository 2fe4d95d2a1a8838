"""The period report's "timing" section: the saving of the cleanest start, per team.

The same figures as the What-if page (``timing.shift_savings``), for the training runs that
started in the period, with the yearly-only figure beside the hourly-matched one.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from carbonledger.reporting import timing
from carbonledger.reporting.periods import Period

DEFAULT_FLEX_H = 24
LABELS = {
    "team": "Team",
    "runs": "Training runs",
    "co2e_actual_kg": "Actual CO2e, location-based (kg)",
    "co2e_best_kg": "CO2e at the cleanest start (kg)",
    "saving_kg": "Saving (kg CO2e)",
    "saving_pct": "Saving (%)",
    "co2e_location_yearly_kg": "CO2e with yearly factors only (kg)",
    "hourly_share_pct": "Energy priced hourly (%)",
}


def timing_section(engine: Engine, *, period: Period, flex_h: int = DEFAULT_FLEX_H) -> pd.DataFrame:
    """Per team: actual CO2e, at the cleanest start within ±``flex_h`` h, and the saving."""
    teams = timing.savings_by_team(timing.period_savings(engine, period=period, flex_h=flex_h))
    yearly = timing.yearly_by_team(engine, since=period.start, until=period.end)
    out = teams.merge(yearly, on="team", how="left")
    return out[list(LABELS)].rename(columns=LABELS)


def section_title(flex_h: int = DEFAULT_FLEX_H) -> str:
    """The section's heading in the report."""
    return f"Timing: each run at its cleanest start within ±{flex_h} h"
