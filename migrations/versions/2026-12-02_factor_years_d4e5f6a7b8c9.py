"""activity_co2e finds each record's factor year by a join to the zones' year ranges

``activity_co2e`` chose a record's factor year (the zone's latest location-based year up to
the record's year, else the zone's earliest) with two correlated sub-queries per record: a
day of 720,000 serving windows ran 1.4 million sub-plans (~6 s of a ~14 s rollup refresh).
Now the zones' factor years are read once into a small set of ranges (``fy``: per zone and
year, the record years it serves, ``from_year`` to ``to_year``; the earliest year also serves
every earlier record year and a record without a year) and each record joins its range.
Columns and figures are unchanged.

Revision ID: d4e5f6a7b8c9
Revises: c3d4e5f6a7b8
Create Date: 2026-12-02 14:00:00.000000
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "d4e5f6a7b8c9"
down_revision: str | None = "c3d4e5f6a7b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _previous(name: str, revision_id: str):  # type: ignore[no-untyped-def]
    """The module of an earlier migration of this folder (its view SQL)."""
    path = next(Path(__file__).parent.glob(f"*_{revision_id}.py"))
    spec = importlib.util.spec_from_file_location(f"_cl_migration_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The factor-year rule of 4b13c7d2e9a1 (one_truth's), as it stood.
_CORRELATED = """,
           COALESCE(
               (SELECT MAX(f.year) FROM emission_factors f
                WHERE f.zone = a.zone AND f.basis = 'location' AND f.year <= a.activity_year),
               (SELECT MIN(f.year) FROM emission_factors f
                WHERE f.zone = a.zone AND f.basis = 'location')
           ) AS factor_year
    FROM a
"""

# The same rule as ranges: a record of year Y in zone Z takes the year of Z whose range holds
# Y: [year, next year of Z), the earliest year's range open below (NULL from_year: it also
# serves a NULL record year, as MAX over no rows fell back to MIN), the latest's open above.
_FACTOR_YEARS = """
), fy AS (
    SELECT d.zone, d.year AS factor_year,
           CASE WHEN d.year > MIN(d.year) OVER (PARTITION BY d.zone) THEN d.year END
               AS from_year,
           LEAD(d.year) OVER (PARTITION BY d.zone ORDER BY d.year) AS to_year
    FROM (SELECT DISTINCT zone, year FROM emission_factors WHERE basis = 'location') d
), y AS ("""
_JOINED = """,
           fy.factor_year
    FROM a
    LEFT JOIN fy
        ON fy.zone = a.zone
       AND (fy.from_year IS NULL OR a.activity_year >= fy.from_year)
       AND (fy.to_year IS NULL OR a.activity_year < fy.to_year
            OR (a.activity_year IS NULL AND fy.from_year IS NULL))
"""


def _replace_once(sql: str, old: str, new: str) -> str:
    assert sql.count(old) == 1, old
    return sql.replace(old, new, 1)


def _sql(dialect: str, columns: list[str]) -> str:
    """The view of c3d4e5f6a7b8 with the factor years joined from ``fy``."""
    lateral = _previous("hours_lateral", "c3d4e5f6a7b8")
    sql = lateral._sql(dialect, columns)
    sql = _replace_once(sql, "\n), y AS (", _FACTOR_YEARS)
    return _replace_once(sql, _CORRELATED, _JOINED)


def upgrade() -> None:
    bind = op.get_bind()
    columns = [c["name"] for c in sa.inspect(bind).get_columns("activity_co2e")]
    lateral = _previous("hours_lateral", "c3d4e5f6a7b8")
    lateral._replace(_sql(bind.dialect.name, columns))


def downgrade() -> None:
    bind = op.get_bind()
    columns = [c["name"] for c in sa.inspect(bind).get_columns("activity_co2e")]
    lateral = _previous("hours_lateral", "c3d4e5f6a7b8")
    lateral._replace(lateral._sql(bind.dialect.name, columns))
