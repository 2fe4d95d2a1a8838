"""The ``rollup_ranges`` part of the rollup refresh: a total's parts by month, day, team, model.

``embodied.total_with_range`` (the Overview, Teams and Models pages, the report) sums these
rows instead of the per-record views. Each row is one part of
``carbonledger.reporting.range_parts`` (built by its builder, the same SQL the per-record
total runs) for one group of records:

* ``activity = 'training'``: training runs by month and team (every run once);
* ``activity = 'lifecycle'``: the same parts by month, team and registered model for the runs
  of each model's lifecycle (``v_lifecycle_runs``): a run in two lifecycles is in both;
* ``activity = 'inference'``: serving windows by month, UTC day, team and model.

The refresh follows the other rollups': training rows are rebuilt for the months being
recomputed, from the runs the refresh selected (``cl_rollup_runs``, the rows of
``v_run_emissions`` it reads once) and ``v_run_embodied`` by ``start_time`` range; serving
rows for the UTC days being recomputed, by ``window_start`` range. Runs without a start time
have no month and are not here (the total reads them from the views).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from carbonledger.reporting.range_parts import (
    MEASURES,
    PART_MEASURES,
    run_co2e_sql,
    run_embodied_sql,
    run_sigma_sql,
    window_co2e_sql,
    window_embodied_sql,
)
from carbonledger.reporting.rollup_sql import day_ranges, key_ranges_sql, time_ranges_sql

TABLE = "rollup_ranges"
RUNS_TEMP = "cl_rollup_runs"
SIGMA_TEMP = "cl_rollup_sigma"
_KEYS = ("month", "day", "team", "model_name")
_COUNTS = ("records", "records_without_embodied")
_GRAINS = (("training", ("month", "team")), ("lifecycle", ("month", "team", "model_name")))
WINDOW_GRAIN = ("month", "day", "team", "model_name")


def _insert(
    conn: Connection, part: str, sql: str, *, activity: str, grain: tuple[str, ...], params: Any
) -> None:
    """Insert the rows of one part's builder ``sql`` (grouped by ``grain``)."""
    have = PART_MEASURES[part]
    keys = [f"p.{k}" if k in grain else "NULL" for k in _KEYS]
    measures = [f"p.{m}" if m in have else "0" if m in _COUNTS else "NULL" for m in MEASURES]
    conn.execute(
        text(
            f"INSERT INTO {TABLE} (activity, part, {', '.join(_KEYS)}, {', '.join(MEASURES)}) "
            f"SELECT '{activity}', '{part}', {', '.join(keys + measures)} FROM ({sql}) p"
        ),
        params,
    )


def insert_training(conn: Connection, days: list[tuple[str, str]] | None) -> None:
    """Insert the training and lifecycle rows of the runs in ``cl_rollup_runs``.

    ``days`` are the day ranges of ``start_time`` that selected them (``None``: every run
    with a start time), with which ``v_run_embodied`` is read; the months' old rows are
    deleted by :func:`delete_training`.
    """
    dialect = conn.dialect.name
    params: dict[str, Any] = {}
    embodied = "m.month IS NOT NULL"
    if days is not None:
        embodied += f" AND {time_ranges_sql(dialect, 'm.start_time', days, params, 'm')}"
    # v_run_uncertainty is read once, whole: a filter on its run key is not pushed into it
    # (its two branches' run_pk types differ), and a join planned as a nested loop over it
    # ran for minutes at 200,000 runs. Both temporary tables are analysed for the joins.
    conn.execute(text(f"DROP TABLE IF EXISTS {SIGMA_TEMP}"))
    conn.execute(
        text(
            f"CREATE TEMPORARY TABLE {SIGMA_TEMP} AS "
            "SELECT run_pk, uncertainty_key, sigma_kg FROM v_run_uncertainty"
        )
    )
    if dialect == "postgresql":
        conn.execute(text(f"ANALYZE {SIGMA_TEMP}"))
        conn.execute(text(f"ANALYZE {RUNS_TEMP}"))
    for activity, grain in _GRAINS:
        sigma = run_sigma_sql(dialect, runs=RUNS_TEMP, where="1 = 1", grain=grain, sigma=SIGMA_TEMP)
        for part, sql in (
            ("run_co2e", run_co2e_sql(dialect, runs=RUNS_TEMP, where="1 = 1", grain=grain)),
            ("run_sigma", sigma),
            ("run_embodied", run_embodied_sql(dialect, where=embodied, grain=grain)),
        ):
            _insert(conn, part, sql, activity=activity, grain=grain, params=params)
    conn.execute(text(f"DROP TABLE {SIGMA_TEMP}"))


def delete_training(conn: Connection, months: str, params: dict[str, Any]) -> None:
    """Delete the training and lifecycle rows of the months ``months`` (a ``month`` filter)."""
    conn.execute(
        text(f"DELETE FROM {TABLE} WHERE activity IN ('training', 'lifecycle') AND {months}"),
        params,
    )


def refresh_windows(conn: Connection, days: list[str] | None) -> None:
    """Rebuild the serving rows of ``days`` (``YYYY-MM-DD``; ``None``: every day)."""
    if days is not None and not days:
        return
    dialect = conn.dialect.name
    params: dict[str, Any] = {}
    if days is None:
        keys, where_co2e, where_embodied = "1 = 1", "1 = 1", "1 = 1"
    else:
        ranges = day_ranges(days)
        keys = key_ranges_sql("day", ranges, params, "d")
        # the same windows through each relation joined, so PostgreSQL prunes every scan
        on = {a: time_ranges_sql(dialect, f"{a}.window_start", ranges, params, a) for a in "iwe"}
        where_co2e = " AND ".join(on.values())
        where_embodied = on["e"]
    conn.execute(text(f"DELETE FROM {TABLE} WHERE activity = 'inference' AND {keys}"), params)
    for part, sql in (
        ("window_co2e", window_co2e_sql(dialect, where=where_co2e, grain=WINDOW_GRAIN)),
        ("window_embodied", window_embodied_sql(dialect, where=where_embodied, grain=WINDOW_GRAIN)),
    ):
        _insert(conn, part, sql, activity="inference", grain=WINDOW_GRAIN, params=params)
