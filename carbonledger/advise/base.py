"""What a recommendation is, the scope it is computed over, and annualising a saving.

A saving is computed over the scope's window (``since`` to the ledger's latest activity)
and scaled to a year at the same rate: ``saving_per_year = saving_in_window x 365 / days``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from carbonledger import contract
from carbonledger.errors import ReportingError
from carbonledger.reporting.db import scalar
from carbonledger.reporting.periods import parse_period

DEFAULT_WINDOW_DAYS = contract.DAYS_PER_YEAR
"""Without ``since``, the window is the year before the ledger's latest activity."""


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One ranked, quantified change, with what it rests on.

    Attributes:
        kind: one of ``contract.ADVICE_KINDS``.
        team: the team it concerns.
        model_name: the registered model it concerns, if any.
        title: one line saying what to change.
        evidence: the facts behind it (run ids, versions, windows, dates), readable.
        saving_co2e_kg_per_year: location-based kg CO2e saved per year at the current rate.
        saving_energy_kwh_per_year: facility kWh saved per year at the current rate.
        method: how the saving was computed.
        confidence: ``measured`` (arithmetic on ledger rows) or ``estimate``.
        run_ids: runs it points at (for links).
        model_version: the version it points at, if any.
    """

    kind: str
    team: str
    model_name: str | None
    title: str
    evidence: str
    saving_co2e_kg_per_year: float
    saving_energy_kwh_per_year: float
    method: str
    confidence: str
    run_ids: tuple[str, ...] = field(default_factory=tuple)
    model_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``run_ids`` as a list)."""
        return {
            "kind": self.kind,
            "team": self.team,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "title": self.title,
            "evidence": self.evidence,
            "saving_co2e_kg_per_year": self.saving_co2e_kg_per_year,
            "saving_energy_kwh_per_year": self.saving_energy_kwh_per_year,
            "method": self.method,
            "confidence": self.confidence,
            "run_ids": list(self.run_ids),
        }


@dataclass(frozen=True, slots=True)
class Scope:
    """What the advice looks at: a team, a model, a window ``[since, until]`` (UTC)."""

    since: datetime
    until: datetime
    team: str | None = None
    model_name: str | None = None

    @property
    def days(self) -> float:
        """Length of the window in days (at least one)."""
        return max((self.until - self.since).total_seconds() / 86400.0, 1.0)

    def per_year(self, amount: float) -> float:
        """``amount`` spent over the window, as a yearly rate."""
        return amount * contract.DAYS_PER_YEAR / self.days

    def bind(self, engine: Engine) -> dict[str, Any]:
        """Bound parameters ``since``/``until``/``team``/``model`` for the backend."""
        return {
            "since": _ts(engine, self.since),
            "until": _ts(engine, self.until),
            "team": self.team,
            "model": self.model_name,
        }


TEAM_FILTER = "(CAST(:team AS VARCHAR(200)) IS NULL OR {col} = :team)"
MODEL_FILTER = "(CAST(:model AS VARCHAR(500)) IS NULL OR {col} = :model)"


def filters(team_col: str, model_col: str) -> str:
    """The SQL condition of a scope's team and model on the given columns."""
    return f"{TEAM_FILTER.format(col=team_col)} AND {MODEL_FILTER.format(col=model_col)}"


def run_filter(alias: str) -> str:
    """The scope's window (on ``start_time``), team and model on a runs view alias."""
    return f"{alias}.start_time >= :since AND {alias}.start_time <= :until AND " + filters(
        f"{alias}.team", f"{alias}.model_name"
    )


def latest_activity(engine: Engine) -> datetime | None:
    """The latest run end or serving window end in the ledger (UTC)."""
    values = [
        scalar(engine, "SELECT MAX(COALESCE(end_time, start_time)) FROM runs"),
        scalar(engine, "SELECT MAX(window_end) FROM inference_windows"),
    ]
    found = [v for v in (as_utc(v) for v in values) if v is not None]
    return max(found) if found else None


def make_scope(
    engine: Engine,
    *,
    team: str | None = None,
    model_name: str | None = None,
    since: datetime | timedelta | None = None,
) -> Scope:
    """The scope ending at the ledger's latest activity (now, for an empty ledger).

    ``since`` is an instant, or a length of time before that latest activity.
    """
    until = latest_activity(engine) or datetime.now(UTC)
    if isinstance(since, timedelta):
        start = until - since
    else:
        start = as_utc(since) or until - timedelta(days=DEFAULT_WINDOW_DAYS)
    return Scope(since=start, until=until, team=team, model_name=model_name)


_DURATION = re.compile(r"^(\d+)([dw])$")


def parse_since(text: str) -> datetime | timedelta:
    """``90d``/``12w`` (before the latest activity), a period (its start) or an ISO date.

    Raises:
        ReportingError: none of these.
    """
    value = text.strip()
    if match := _DURATION.match(value):
        n = int(match.group(1))
        return timedelta(days=n) if match.group(2) == "d" else timedelta(weeks=n)
    try:
        return parse_period(value).start
    except ReportingError:
        pass
    try:
        return as_utc(value) or datetime.now(UTC)
    except ValueError:
        raise ReportingError(
            f"--since {text!r} is not a duration (90d, 12w), a period (2026, 2026-Q3, "
            "2026-07) or a date (2026-07-01)"
        ) from None


def as_utc(value: Any) -> datetime | None:
    """A database timestamp (aware, naive UTC, or SQLite text) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _ts(engine: Engine, value: datetime) -> Any:
    if engine.dialect.name == "sqlite":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return value


def day(value: Any) -> str:
    """A timestamp as ``YYYY-MM-DD``."""
    when = as_utc(value)
    return when.strftime("%Y-%m-%d") if when else "?"


def listed(ids: list[str], limit: int = 5) -> str:
    """The first ``limit`` ids, comma separated, with how many more there are."""
    head = ", ".join(ids[:limit])
    return head + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
