"""Carbon budgets: definitions (YAML and CLI), lifecycle totals, evaluation, projection, alerts.

Modules:
    lifecycle: a registered model's training + inference footprint (``model_lifecycle``,
        ``lifecycle_timeline``) from the ``run_co2e`` and ``inference_co2e`` views.
    usage: a scope's CO2e in a time range, from the views or (``source="rollups"``, the app
        and the report) the rollups for whole months and days and the views for the edges.
    lifecycle_rollups: ``model_lifecycle``/``lifecycle_by_month`` read from the rollups.
    definitions: ``budgets.yaml`` parsing and validation, ``set_budget``/``sync_budgets``.
    evaluate: ``evaluate_budgets(conn, now=...) -> list[BudgetStatus]``: usage, thresholds
        crossed, trailing 30-day burn rate and projected exhaustion; ``exit_code``.
    alerts: one ``budget_alerts`` row and one webhook POST per threshold crossing.
    writeback: ``carbon.budget_*`` status tags on the MLflow registered models.
    check: ``check_budgets(engine, ...)``, the pass run by ``budgets check`` and the ETL.

Every function takes a SQLAlchemy ``Connection`` (or ``Engine`` for ``check_budgets``) of a
ledger at the newest schema; CO2e is in kg on the budget's Scope 2 basis.
"""

from carbonledger.budgets.check import CheckReport, check_budgets
from carbonledger.budgets.definitions import (
    DEFAULT_THRESHOLDS_PCT,
    BudgetSpec,
    StoredBudget,
    list_budgets,
    load_budget_file,
    make_spec,
    remove_budget,
    set_budget,
    sync_budgets,
)
from carbonledger.budgets.evaluate import (
    NOT_AT_THIS_RATE,
    BudgetStatus,
    evaluate_budgets,
    exit_code,
    period_bounds,
)
from carbonledger.budgets.lifecycle import (
    Lifecycle,
    LifecyclePoint,
    lifecycle_timeline,
    model_lifecycle,
)

__all__ = [
    "DEFAULT_THRESHOLDS_PCT",
    "NOT_AT_THIS_RATE",
    "BudgetSpec",
    "BudgetStatus",
    "CheckReport",
    "Lifecycle",
    "LifecyclePoint",
    "StoredBudget",
    "check_budgets",
    "evaluate_budgets",
    "exit_code",
    "lifecycle_timeline",
    "list_budgets",
    "load_budget_file",
    "make_spec",
    "model_lifecycle",
    "period_bounds",
    "remove_budget",
    "set_budget",
    "sync_budgets",
]
