"""Query functions over the ledger, shared by the Streamlit app and ``carbonledger report``.

Modules: ``periods`` (YYYY, YYYY-Qn, YYYY-MM), ``db`` (read-only engine, bound-parameter
queries), ``rollups`` (incremental refresh called by the ETL, run metrics), ``queries``
(organisation and team figures), ``lifecycle`` (models: lifecycle, burn-down, versions,
budgets), ``runs`` (runs table, run detail, Pareto efficiency), ``methodology`` (factors in
use, defaults, what-if) and ``report`` (the period report in md/csv/html).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carbonledger.reporting.db import reporting_engine
    from carbonledger.reporting.periods import Period, months_between, parse_period
    from carbonledger.reporting.report import build_report, render
    from carbonledger.reporting.rollups import refresh_rollups

__all__ = [
    "Period",
    "build_report",
    "months_between",
    "parse_period",
    "refresh_rollups",
    "render",
    "reporting_engine",
]

# Imported on first use (PEP 562): the ETL imports ``reporting.rollups`` for every pass and
# must not pay for pandas, which ``db`` and ``report`` need.
_HOME = {
    "reporting_engine": "db",
    "Period": "periods",
    "months_between": "periods",
    "parse_period": "periods",
    "build_report": "report",
    "render": "report",
    "refresh_rollups": "rollups",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(f"carbonledger.reporting.{_HOME[name]}"), name)
    raise AttributeError(f"module 'carbonledger.reporting' has no attribute {name!r}")
