"""Budget definitions: ``budgets.yaml`` (budgets-as-code) and the CLI, stored in ``budgets``.

A budget is a model's lifecycle (``model: NAME``, period ``lifecycle``) or a team per ``month``,
``quarter`` or ``year`` (``team: NAME``), with a limit in kg CO2e, a Scope 2 basis and alert
thresholds in percent (default 50/75/90/100)::

    budgets:
      - model: fraud-detector
        limit_co2e_kg: 500
      - team: vision
        period: quarter
        limit_co2e_kg: 1200
        thresholds_pct: [80, 100]
        basis: market
        note: agreed with sustainability, 2026-Q4

The file owns the budgets it defines: syncing it (the ETL does, ``budgets check`` does)
adds and updates them and removes the ones it no longer lists; budgets set with
``carbonledger budgets set`` are left alone unless the file defines the same one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from carbonledger.contract import DEFAULT_THRESHOLDS_PCT
from carbonledger.errors import ConfigError
from carbonledger.ledger.models import Budget

TEAM_PERIODS = ("month", "quarter", "year")
BASES = ("location", "market")
_KEYS = {"model", "team", "period", "limit_co2e_kg", "thresholds_pct", "basis", "note"}


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """One budget as defined in YAML or on the command line.

    Attributes:
        scope: ``model`` or ``team``.
        scope_name: the registered model's or the team's name.
        period: ``lifecycle`` for a model; ``month``, ``quarter`` or ``year`` for a team.
        limit_co2e_kg: the budget in kg CO2e (> 0).
        basis: ``location`` or ``market`` CO2e.
        thresholds_pct: alert thresholds in percent of the limit, ascending.
        note: free text.
    """

    scope: str
    scope_name: str
    period: str
    limit_co2e_kg: float
    basis: str = "location"
    thresholds_pct: tuple[float, ...] = DEFAULT_THRESHOLDS_PCT
    note: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """``(scope, scope_name, period)``: what identifies a budget."""
        return (self.scope, self.scope_name, self.period)

    @property
    def label(self) -> str:
        """``model fraud-detector`` or ``team vision (quarter)``."""
        suffix = "" if self.period == "lifecycle" else f" ({self.period})"
        return f"{self.scope} {self.scope_name}{suffix}"


@dataclass(frozen=True, slots=True)
class StoredBudget(BudgetSpec):
    """A budget as stored in the ledger (``origin``: ``cli`` or ``yaml``)."""

    id: int = 0
    origin: str = "cli"
    updated_at: datetime | None = None


@dataclass(slots=True)
class SyncResult:
    """What syncing ``budgets.yaml`` did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0


def make_spec(
    *,
    model: str | None = None,
    team: str | None = None,
    period: str | None = None,
    limit_co2e_kg: Any,
    basis: str = "location",
    thresholds_pct: Any = None,
    note: str | None = None,
    where: str = "budget",
) -> BudgetSpec:
    """Validate one budget definition.

    Raises:
        ConfigError: the definition is invalid; the message names ``where`` and the fix.
    """
    if (model is None) == (team is None):
        raise ConfigError(f"{where}: give exactly one of `model: NAME` or `team: NAME`")
    name = str(model if model is not None else team).strip()
    if not name:
        raise ConfigError(f"{where}: the model or team name is empty")
    if model is not None:
        if period not in (None, "lifecycle"):
            raise ConfigError(
                f"{where}: a model budget covers the model's whole lifecycle; remove "
                f"`period: {period}` (team budgets take month, quarter or year)"
            )
        scope, period = "model", "lifecycle"
    else:
        if period not in TEAM_PERIODS:
            raise ConfigError(
                f"{where}: a team budget needs `period: month`, `quarter` or `year` "
                f"(got {period!r})"
            )
        scope = "team"
    try:
        limit = float(limit_co2e_kg)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: limit_co2e_kg must be a number of kg CO2e (got {limit_co2e_kg!r})"
        ) from None
    if not math.isfinite(limit) or limit <= 0:
        raise ConfigError(f"{where}: limit_co2e_kg must be a positive number of kg CO2e")
    if basis not in BASES:
        raise ConfigError(f"{where}: basis must be location or market (got {basis!r})")
    return BudgetSpec(
        scope=scope,
        scope_name=name,
        period=period,
        limit_co2e_kg=limit,
        basis=basis,
        thresholds_pct=parse_thresholds(thresholds_pct, where=where),
        note=str(note) if note is not None else None,
    )


def parse_thresholds(value: Any, *, where: str = "budget") -> tuple[float, ...]:
    """Thresholds in percent from a list or ``"50,75,90,100"`` (default 50/75/90/100).

    Raises:
        ConfigError: a threshold is not a number in (0, 1000].
    """
    if value is None:
        return DEFAULT_THRESHOLDS_PCT
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(f"{where}: thresholds_pct must be a list of percentages, e.g. [50, 100]")
    out = set()
    for item in items:
        try:
            pct = float(item)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: threshold {item!r} is not a number of percent") from None
        if not 0 < pct <= 1000:
            raise ConfigError(f"{where}: threshold {pct:g}% must lie in (0, 1000]")
        out.add(pct)
    return tuple(sorted(out))


def load_budget_file(path: Path) -> list[BudgetSpec]:
    """Read and validate ``budgets.yaml``.

    Raises:
        ConfigError: the file is unreadable, not YAML, or an entry is invalid (entry number
            and fix in the message); two entries define the same budget.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the budgets file {path}: {exc.strerror} (CARBONLEDGER_BUDGETS_PATH)"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return []
    entries = data.get("budgets") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a top-level `budgets:` list of budgets")
    specs: dict[tuple[str, str, str], BudgetSpec] = {}
    for n, entry in enumerate(entries, start=1):
        where = f"{path}: budget {n}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping such as {{model: NAME, ...}}")
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(_KEYS)}")
        if "limit_co2e_kg" not in entry:
            raise ConfigError(f"{where}: limit_co2e_kg is missing")
        spec = make_spec(where=where, **entry)
        if spec.key in specs:
            raise ConfigError(f"{where}: {spec.label} is defined twice")
        specs[spec.key] = spec
    return list(specs.values())


def _values(spec: BudgetSpec) -> dict[str, Any]:
    return {
        "limit_co2e_kg": spec.limit_co2e_kg,
        "basis": spec.basis,
        "thresholds_pct": list(spec.thresholds_pct),
        "note": spec.note,
    }


def _stored(row: Any) -> StoredBudget:
    return StoredBudget(
        scope=row.scope,
        scope_name=row.scope_name,
        period=row.period,
        limit_co2e_kg=float(row.limit_co2e_kg),
        basis=row.basis,
        thresholds_pct=tuple(float(t) for t in (row.thresholds_pct or DEFAULT_THRESHOLDS_PCT)),
        note=row.note,
        id=int(row.id),
        origin=row.origin,
        updated_at=row.updated_at,
    )


def list_budgets(conn: Connection) -> list[StoredBudget]:
    """Every budget in the ledger, models first, then teams, by name and period."""
    rows = conn.execute(
        select(Budget).order_by(Budget.scope, Budget.scope_name, Budget.period)
    ).all()
    return [_stored(r) for r in rows]


def set_budget(
    conn: Connection, *, spec: BudgetSpec, origin: str = "cli", now: datetime | None = None
) -> tuple[str, StoredBudget]:
    """Create or update one budget; returns ``("added" | "updated" | "unchanged", budget)``.

    Raises:
        ConfigError: ``origin`` is ``cli`` and ``budgets.yaml`` owns this budget.
    """
    now = now or datetime.now(UTC)
    row = conn.execute(
        select(Budget).where(
            Budget.scope == spec.scope,
            Budget.scope_name == spec.scope_name,
            Budget.period == spec.period,
        )
    ).first()
    if row is None:
        conn.execute(insert(Budget).values(**spec_key(spec), **_values(spec), origin=origin))
        action = "added"
    elif origin == "cli" and row.origin == "yaml":
        raise ConfigError(
            f"{spec.label} is defined in budgets.yaml (CARBONLEDGER_BUDGETS_PATH): change it "
            "there; the next `carbonledger etl` or `budgets check` applies it"
        )
    elif _same(_stored(row), spec) and row.origin == origin:
        action = "unchanged"
    else:
        conn.execute(
            update(Budget)
            .where(Budget.id == row.id)
            .values(**_values(spec), origin=origin, updated_at=now)
        )
        action = "updated"
    stored = conn.execute(
        select(Budget).where(
            Budget.scope == spec.scope,
            Budget.scope_name == spec.scope_name,
            Budget.period == spec.period,
        )
    ).one()
    return action, _stored(stored)


def _same(stored: StoredBudget, spec: BudgetSpec) -> bool:
    return (
        stored.limit_co2e_kg,
        stored.basis,
        stored.thresholds_pct,
        stored.note,
    ) == (spec.limit_co2e_kg, spec.basis, spec.thresholds_pct, spec.note)


def spec_key(spec: BudgetSpec) -> dict[str, str]:
    """The key columns of a budget."""
    return {"scope": spec.scope, "scope_name": spec.scope_name, "period": spec.period}


def remove_budget(conn: Connection, *, scope: str, scope_name: str, period: str) -> bool:
    """Delete one budget and its alerts; False when there was none.

    Raises:
        ConfigError: ``budgets.yaml`` owns the budget (remove it from the file instead).
    """
    row = conn.execute(
        select(Budget.id, Budget.origin).where(
            Budget.scope == scope, Budget.scope_name == scope_name, Budget.period == period
        )
    ).first()
    if row is None:
        return False
    if row.origin == "yaml":
        raise ConfigError(
            f"{scope} {scope_name} ({period}) is defined in budgets.yaml "
            "(CARBONLEDGER_BUDGETS_PATH): remove it from the file"
        )
    conn.execute(delete(Budget).where(Budget.id == row.id))
    return True


def sync_budgets(
    conn: Connection, *, specs: list[BudgetSpec], now: datetime | None = None
) -> SyncResult:
    """Make the ledger's YAML budgets equal ``specs`` (in ``conn``'s transaction)."""
    result = SyncResult()
    wanted = {s.key: s for s in specs}
    for spec in specs:
        action, stored = set_budget(conn, spec=spec, origin="yaml", now=now)
        if action == "unchanged":
            result.unchanged += 1
        else:
            getattr(result, action).append(stored.label)
    for budget in list_budgets(conn):
        if budget.origin == "yaml" and budget.key not in wanted:
            conn.execute(delete(Budget).where(Budget.id == budget.id))
            result.removed.append(budget.label)
    return result
