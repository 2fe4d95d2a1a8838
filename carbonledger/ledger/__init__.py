"""The SQL ledger: every run of the organisation with its energy, and versioned factors.

Modules: ``models`` (the tables, typed Core tables of ``table_base``, with a constraint naming
convention), ``engine`` (engines; SQLite WAL and write lock), ``migrate`` (Alembic
upgrade/downgrade from code), ``repositories`` (keyword-only read/write functions: sources,
emission factors, lifecycle), ``embodied_models`` and ``embodied`` (versioned embodied factors,
per-run reservations, uncertainty tables), ``rollup_models`` (reporting rollups and run
metrics), ``access`` (team roles for PostgreSQL row-level security), ``co2e_sql`` (the SQL of
``activity_co2e``, the one per-record CO2e computation: the view and the rollup refresh's read
of a day of windows). CO2e is recomputed by the views from the current factor versions.
"""

from carbonledger.ledger import access as _access  # noqa: F401 (team_roles of Base)
from carbonledger.ledger import embodied_models as _embodied_models  # noqa: F401 (tables)
from carbonledger.ledger import hourly_models as _hourly_models  # noqa: F401 (tables of Base)
from carbonledger.ledger import rollup_models as _rollup_models  # noqa: F401 (tables of Base)
from carbonledger.ledger.engine import create_ledger_engine, redact
from carbonledger.ledger.migrate import current_revision, downgrade, head_revision, upgrade
from carbonledger.ledger.models import Base
from carbonledger.ledger.repositories import (
    add_emission_factor,
    lifecycle_runs,
    seed_emission_factors,
    shipped_factors,
)

__all__ = [
    "Base",
    "add_emission_factor",
    "create_ledger_engine",
    "current_revision",
    "downgrade",
    "head_revision",
    "lifecycle_runs",
    "redact",
    "seed_emission_factors",
    "shipped_factors",
    "upgrade",
]
