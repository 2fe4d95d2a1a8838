"""Evaluate budgets: what each scope used, thresholds crossed, and when it runs out.

* A **model** budget covers the model's lifecycle (``budgets.lifecycle``): every training run
  that worked toward it plus every serving window of every version, all time.
* A **team** budget covers the team's training runs started in the current UTC month, quarter
  or year plus its serving windows starting in it.
* **Burn rate**: the scope's CO2e over the trailing 30 days / 30. **Projected exhaustion**:
  ``now + (limit - used) / rate``; "not at this rate" when nothing burns or, for a team, the
  date falls after the period ends.
* **Status**: ``exceeded`` when used >= limit, ``warning`` when a threshold is crossed, else
  ``ok``. ``exit_code`` turns statuses into ``budgets check``'s exit status (0/1/2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Connection

from carbonledger.budgets.definitions import StoredBudget, list_budgets
from carbonledger.budgets.lifecycle import Basis
from carbonledger.budgets.usage import Scope, Source, usage

BURN_WINDOW_DAYS = 30
NOT_AT_THIS_RATE = "not at this rate"
Status = Literal["ok", "warning", "exceeded"]
EXIT_CODES: dict[str, int] = {"ok": 0, "warning": 1, "exceeded": 2}


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget and where its scope stands at ``evaluated_at`` (CO2e in kg, on its basis).

    Attributes:
        budget: the budget definition.
        evaluated_at: when it was evaluated (UTC).
        period_start: start of the current period (``None`` for a lifecycle budget).
        period_end: end of the current period, exclusive (``None`` for a lifecycle budget).
        training_co2e_kg: training runs in scope.
        inference_co2e_kg: serving windows in scope.
        burn_rate_kg_per_day: CO2e of the trailing 30 days / 30.
        projected_exhaustion: when the budget runs out at that rate (``None``: see
            ``projection``).
        crossed_pct: thresholds at or below the used percentage.
    """

    budget: StoredBudget
    evaluated_at: datetime
    period_start: datetime | None
    period_end: datetime | None
    training_co2e_kg: float
    inference_co2e_kg: float
    burn_rate_kg_per_day: float
    projected_exhaustion: datetime | None
    crossed_pct: tuple[float, ...]

    @property
    def used_co2e_kg(self) -> float:
        """Training plus inference in scope."""
        return self.training_co2e_kg + self.inference_co2e_kg

    @property
    def used_pct(self) -> float:
        """Used CO2e in percent of the limit."""
        return 100.0 * self.used_co2e_kg / self.budget.limit_co2e_kg

    @property
    def remaining_co2e_kg(self) -> float:
        """What is left (negative when exceeded)."""
        return self.budget.limit_co2e_kg - self.used_co2e_kg

    @property
    def status(self) -> Status:
        """``exceeded`` (used >= limit), ``warning`` (a threshold crossed) or ``ok``."""
        if self.used_co2e_kg >= self.budget.limit_co2e_kg:
            return "exceeded"
        return "warning" if self.crossed_pct else "ok"

    @property
    def projection(self) -> str:
        """The projected exhaustion date (ISO), ``exceeded`` or ``not at this rate``."""
        if self.status == "exceeded":
            return "exceeded"
        if self.projected_exhaustion is None:
            return NOT_AT_THIS_RATE
        return self.projected_exhaustion.date().isoformat()

    @property
    def alert_period_start(self) -> datetime:
        """The period alerts are counted in (the Unix epoch for a lifecycle budget)."""
        return self.period_start or datetime(1970, 1, 1, tzinfo=UTC)


def period_bounds(period: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``[start, end)`` of the UTC month, quarter or year containing ``now``; lifecycle: None."""
    now = now.astimezone(UTC)
    if period == "lifecycle":
        return None, None
    if period == "month":
        start = datetime(now.year, now.month, 1, tzinfo=UTC)
        months = 1
    elif period == "quarter":
        start = datetime(now.year, (now.month - 1) // 3 * 3 + 1, 1, tzinfo=UTC)
        months = 3
    elif period == "year":
        start = datetime(now.year, 1, 1, tzinfo=UTC)
        months = 12
    else:
        raise ValueError(f"unknown budget period {period!r}")
    m = start.month - 1 + months
    return start, datetime(start.year + m // 12, m % 12 + 1, 1, tzinfo=UTC)


def project_exhaustion(
    *,
    used_kg: float,
    limit_kg: float,
    rate_kg_per_day: float,
    now: datetime,
    period_end: datetime | None,
) -> datetime | None:
    """When ``limit_kg`` is reached at ``rate_kg_per_day``; ``None`` if not at this rate.

    ``None`` also when the budget is already spent, or when the date falls at or after the
    end of the budget's period (the period ends first).
    """
    if used_kg >= limit_kg or rate_kg_per_day <= 0:
        return None
    when = now + timedelta(days=(limit_kg - used_kg) / rate_kg_per_day)
    if period_end is not None and when >= period_end:
        return None
    return when


def evaluate_budgets(
    conn: Connection,
    *,
    now: datetime | None = None,
    budgets: list[StoredBudget] | None = None,
    source: Source = "views",
) -> list[BudgetStatus]:
    """Evaluate every budget (or ``budgets``) at ``now`` (default: the current time).

    One grouped query per (scope, period, basis) for the usage and one for the burn rate, so
    thousands of budgets cost a handful of queries. ``source="rollups"`` reads whole months
    and days from the rollups (``budgets.usage``; the app and the report), the default reads
    the views alone (``budgets check``): both give the same figures.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    budgets = list_budgets(conn) if budgets is None else budgets
    burn_since = now - timedelta(days=BURN_WINDOW_DAYS)
    groups: dict[tuple[str, str, str], list[StoredBudget]] = {}
    for b in budgets:
        groups.setdefault((b.scope, b.period, b.basis), []).append(b)
    out: dict[int, BudgetStatus] = {}
    for (scope, period, basis_name), members in groups.items():
        names = [b.scope_name for b in members]
        basis: Basis = "market" if basis_name == "market" else "location"
        start, end = period_bounds(period, now)
        burn_until = now if end is None else min(now, end)
        scope_: Scope = "model" if scope == "model" else "team"
        train, infer = usage(
            conn, scope_, names, basis=basis, since=start, until=end, source=source
        )
        burn_t, burn_i = usage(
            conn, scope_, names, basis=basis, since=burn_since, until=burn_until, source=source
        )
        for b in members:
            training, inference = train.get(b.scope_name, 0.0), infer.get(b.scope_name, 0.0)
            used = training + inference
            burned = burn_t.get(b.scope_name, 0.0) + burn_i.get(b.scope_name, 0.0)
            rate = burned / float(BURN_WINDOW_DAYS)
            used_pct = 100.0 * used / b.limit_co2e_kg
            out[b.id] = BudgetStatus(
                budget=b,
                evaluated_at=now,
                period_start=start,
                period_end=end,
                training_co2e_kg=training,
                inference_co2e_kg=inference,
                burn_rate_kg_per_day=rate,
                projected_exhaustion=project_exhaustion(
                    used_kg=used,
                    limit_kg=b.limit_co2e_kg,
                    rate_kg_per_day=rate,
                    now=now,
                    period_end=end,
                ),
                crossed_pct=tuple(p for p in b.thresholds_pct if used_pct >= p),
            )
    return [out[b.id] for b in budgets]


def exit_code(statuses: list[BudgetStatus]) -> int:
    """0 when every budget is within, 1 when a threshold is crossed, 2 when one is exceeded."""
    return max((EXIT_CODES[s.status] for s in statuses), default=0)
