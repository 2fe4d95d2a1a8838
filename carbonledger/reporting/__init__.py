"""Query functions over the ledger, shared by the Streamlit app and ``carbonledger report``.

Modules: ``periods`` (YYYY, YYYY-Qn, YYYY-MM), ``db`` (read-only engine, bound-parameter
queries), ``rollups`` (incremental refresh called by the ETL, run metrics), ``queries``
(organisation and team figures), ``lifecycle`` (models: lifecycle, burn-down, versions,
budgets), ``runs`` (runs table, run detail, Pareto efficiency), ``methodology`` (factors in
use, defaults, what-if) and ``report`` (the period report in md/csv/html).
"""

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
