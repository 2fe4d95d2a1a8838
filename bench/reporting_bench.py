"""Reporting at scale on PostgreSQL: generate, refresh rollups, time every page's queries.

    .venv/bin/python bench/reporting_bench.py --runs 1000000 --windows 100000000 \
        --versions 200 --new-day-versions 500 --schema cl_reporting_bench_100m
    .venv/bin/python bench/reporting_bench.py --reuse --schema cl_reporting_bench_100m \
        [--rebuild] [--new-day-versions 500] --repeat 5

Fills its own schema (``--schema``, dropped first) with server-side generate_series: 50 teams,
5,000 models, runs over 2025, one non-carbon metric per run, budgets, and 1-minute inference
windows of ``--versions`` model versions from 2025-01-01, one INSERT per monthly partition with
the keys and indexes built after the load, and ``activity_energy_hours`` as the ETL writes them
(one row per run or window and UTC hour it overlaps, the energy spread evenly), which
``activity_co2e`` joins. Then times the first full rollup build, a no-change
refresh, optionally one new day of windows for N versions and its incremental refresh, prints
the disk used per table, and times each page's reporting calls (p50/p95 over --repeat runs,
target p95 < 1.5 s; ``--pages`` picks some) and the period report (target < 5 s).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from carbonledger.ledger import create_ledger_engine, migrate, partitions, seed_emission_factors
from carbonledger.ledger.repositories import shipped_factors
from carbonledger.reporting import (
    advice,
    build_report,
    embodied,
    lifecycle,
    methodology,
    parse_period,
    queries,
    timing,
)
from carbonledger.reporting import runs as runs_q
from carbonledger.reporting.db import reporting_engine
from carbonledger.reporting.freshness import freshness
from carbonledger.reporting.periods import next_month_start
from carbonledger.reporting.rollups import refresh_rollups

SCHEMA = "cl_reporting_bench"
ZONES = "ARRAY['DE','FR','US-CAL-CISO','SE','PL','GB','IN-WE',NULL]"

GEN_RUNS = f"""
INSERT INTO runs (source_id, run_id, experiment_id, run_name, kind, status, is_stale,
    start_time, end_time, activity_year, team, model_name, gpu_model, gpu_count, cpu_model,
    cpu_count, metering, any_component_estimated, duration_s, energy_kwh, pue, facility_energy_kwh,
    grid_zone, methods, content_hash)
SELECT 1, 'r' || i, (i % 2000)::text, 'trial-' || i, 'training',
       CASE WHEN i % 13 = 0 THEN 'FAILED' ELSE 'FINISHED' END, false,
       ts, ts + interval '2 hours', 2025, 'team-' || (i % 50), 'model-' || (i % 5000),
       'NVIDIA H100 80GB HBM3', 1 + i % 8, 'AMD EPYC 7B13', 32, 'metered', i % 7 = 0, 7200,
       e, 1.2, e * 1.2, ({ZONES})[1 + i % 8], 'gpu=nvml-energy-counter;cpu=rapl', md5(i::text)
FROM (SELECT i, timestamptz '2025-01-01 00:00+00' + (i * interval '31 seconds') AS ts,
             (random() * 20)::double precision AS e
      FROM generate_series(1, :n) AS i) g
"""

# One month of windows into its partition: minute t of the year, version v (ids t*V + v + 1).
GEN_WINDOWS = f"""
INSERT INTO {{partition}} (id, source_id, run_id, model_name, model_version, team,
    window_start, window_end, activity_year, requests, energy_kwh, pue, facility_energy_kwh,
    grid_zone)
SELECT t * CAST(:versions AS bigint) + v + 1, 1, 'serve-' || v, 'model-' || (v % 40), 1 + v / 40,
       'team-' || (v % 50), ts, ts + interval '1 minute', 2025, (random() * 600)::int, e, 1.2,
       e * 1.2, ({ZONES})[1 + v % 7]
FROM (SELECT t, v, timestamptz '2025-01-01 00:00+00' + t * interval '1 minute' AS ts,
             (random() * 0.02)::double precision AS e
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS t,
           generate_series(0, CAST(:versions AS int) - 1) AS v) g
"""

# One new UTC day of windows for N versions (the incremental-refresh figure).
NEW_DAY = f"""
INSERT INTO inference_windows (source_id, run_id, model_name, model_version, team,
    window_start, window_end, activity_year, requests, energy_kwh, pue, facility_energy_kwh,
    grid_zone)
SELECT 1, 'serve-new-' || v, 'model-' || (v % 40), 100 + v / 40, 'team-' || (v % 50),
       ts, ts + interval '1 minute', 2025, (random() * 600)::int, e, 1.2, e * 1.2,
       ({ZONES})[1 + v % 7]
FROM (SELECT v, CAST(:day AS timestamptz) + t * interval '1 minute' AS ts,
             (random() * 0.02)::double precision AS e
      FROM generate_series(0, 1439) AS t, generate_series(0, CAST(:versions AS int) - 1) AS v) g
"""


# The ETL's hours (carbonledger.etl.hours): one row per record and UTC hour it overlaps, its
# energy spread evenly; profile_cell as carbonledger.intensity.hourly.profile_cells computes it.
_PROFILE_CELL = (
    "(CASE WHEN ((h / 24 + 3) % 7) >= 5 THEN 12 ELSE 0 END "
    "+ EXTRACT(MONTH FROM to_timestamp(h * 3600) AT TIME ZONE 'UTC')::int - 1) * 24 + h % 24"
)
_SHARE = (
    "COALESCE((LEAST(EXTRACT(EPOCH FROM e), (h + 1) * 3600.0) "
    "- GREATEST(EXTRACT(EPOCH FROM s), h * 3600.0)) / NULLIF(EXTRACT(EPOCH FROM e - s), 0), 1.0)"
)
GEN_HOURS = f"""
INSERT INTO activity_energy_hours (record_kind, record_pk, utc_hour, zone, profile_cell,
    energy_kwh, facility_energy_kwh)
SELECT kind, pk, h, zone, {_PROFILE_CELL}, energy * {_SHARE}, facility * {_SHARE}
FROM (SELECT kind, pk, zone, energy, facility, s, e, h
      FROM (SELECT {{kind}} AS kind, {{pk}} AS pk, COALESCE(grid_zone, 'WORLD') AS zone,
                   energy_kwh AS energy, facility_energy_kwh AS facility, {{start}} AS s,
                   {{end}} AS e
            FROM {{table}} WHERE {{where}}) r,
           generate_series(FLOOR(EXTRACT(EPOCH FROM s) / 3600)::bigint,
                           GREATEST(CEIL(EXTRACT(EPOCH FROM e) / 3600)::bigint - 1,
                                    FLOOR(EXTRACT(EPOCH FROM s) / 3600)::bigint)) AS h) x
"""


def _hours_sql(table: str, where: str = "true") -> str:
    """``GEN_HOURS`` for the windows (or runs) of ``table`` matching ``where``."""
    if table == "runs":
        cols = {"kind": "'run'", "pk": "id", "start": "start_time", "end": "end_time"}
    else:
        cols = {"kind": "'window'", "pk": "id", "start": "window_start", "end": "window_end"}
    return GEN_HOURS.format(table=table, where=where, **cols)


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return statistics.median(times), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--schema", default=SCHEMA)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--windows", type=int, default=10_000_000)
    parser.add_argument("--versions", type=int, default=20, help="model versions served")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--reuse", action="store_true", help="time the queries on the schema a run left"
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="with --reuse: time a full rollup build again"
    )
    parser.add_argument(
        "--new-day-versions",
        type=int,
        default=0,
        help="add one new UTC day of 1-minute windows for this many versions and time the "
        "incremental rollup refresh (500 -> 720,000 windows)",
    )
    parser.add_argument(
        "--pages", nargs="*", help="time only these pages (overview teams models runs ... report)"
    )
    parser.add_argument(
        "--no-pages", action="store_true", help="time no page (only generation and rollups)"
    )
    args = parser.parse_args()
    url = make_url(args.url).update_query_dict({"options": f"-csearch_path={args.schema}"})
    url_s = url.render_as_string(hide_password=False)
    if not args.reuse:
        generate(args, url_s)
    engine = create_ledger_engine(url_s)
    if not args.reuse or args.rebuild:
        build_rollups(engine)
    if args.new_day_versions:
        new_day(engine, args.new_day_versions)
    print_sizes(engine)
    engine.dispose()
    if not args.no_pages:
        time_pages(url_s, args.repeat, args.pages)


def _keys_and_indexes(conn: Any, table: str) -> tuple[list[str], list[str]]:
    """``ALTER TABLE ... ADD`` and ``CREATE INDEX`` statements of ``table``'s keys."""
    keys = [
        f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
        for name, definition in conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('p', 'u', 'f') "
                "AND conparentid = 0"
            ),
            {"t": table},
        )
    ]
    # pg_get_indexdef renders a partitioned table's index as ``ON ONLY`` (an index of the
    # parent alone, invalid until each partition's is attached): recreate it on every partition.
    indexes = [
        r[0].replace(" ON ONLY ", " ON ", 1)
        for r in conn.execute(
            text(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid = CAST(:t AS regclass) AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
            ),
            {"t": table},
        )
    ]
    return keys, indexes


def generate(args: argparse.Namespace, url_s: str) -> None:
    """Fill the bench schema (windows one partition at a time, keys after), printing timings."""
    admin = create_ledger_engine(args.url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {args.schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {args.schema}")
    admin.dispose()
    engine = create_ledger_engine(url_s)
    migrate.upgrade(engine)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        seed_emission_factors(conn, factors=shipped_factors())
        conn.execute(
            text(
                "INSERT INTO tracking_sources (id, uri, kind) VALUES (1, 'http://bench', 'mlflow')"
            )
        )
        conn.execute(text(GEN_RUNS), {"n": args.runs})
        first, last = conn.execute(text("SELECT MIN(start_time), MAX(end_time) FROM runs")).one()
        partitions.ensure_partitions(conn, first, last, ahead=0)
        conn.execute(text(_hours_sql("runs")))
        conn.execute(
            text(
                "INSERT INTO run_metrics (source_id, run_id, key, value) "
                "SELECT 1, run_id, 'accuracy', random() FROM runs"
            )
        )
        conn.execute(
            text(
                "INSERT INTO budgets (scope, scope_name, period, limit_co2e_kg, basis, "
                "thresholds_pct) SELECT 'model', 'model-' || i, 'lifecycle', 5000, 'location', "
                "'[50, 75, 90, 100]'::jsonb FROM generate_series(0, 19) i UNION ALL "
                "SELECT 'team', 'team-' || i, 'year', 100000, 'market', '[50, 75, 90, 100]' "
                "FROM generate_series(0, 49) i"
            )
        )
    print(f"generated {args.runs:,} runs in {time.perf_counter() - t0:.1f} s", flush=True)
    generate_windows(engine, args.windows, args.versions)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    print(f"generated and analysed in {time.perf_counter() - t0:.1f} s", flush=True)
    engine.dispose()


def generate_windows(engine: Any, windows: int, versions: int) -> None:
    """``windows`` one-minute windows of ``versions`` versions from 2025-01-01, per month."""
    minutes = windows // versions
    last = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes - 1)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        partitioned = partitions.is_partitioned(conn, "inference_windows")
        if partitioned:
            partitions.ensure_partitions(conn, datetime(2025, 1, 1, tzinfo=UTC), last, ahead=0)
        keys, indexes = [], []
        for table in ("inference_windows", "activity_energy_hours"):
            table_keys, table_indexes = _keys_and_indexes(conn, table)
            for name in [k.split()[5] for k in table_keys]:
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            for index in table_indexes:
                conn.exec_driver_sql(f"DROP INDEX {index.split()[2]}")
            keys, indexes = keys + table_keys, indexes + table_indexes
    month, first = "2025-01", 0
    while first < minutes:
        end = int((next_month_start(month) - datetime(2025, 1, 1, tzinfo=UTC)).total_seconds())
        end_minute = min(minutes, end // 60)
        target = partitions.partition_name("inference_windows", month)
        t1 = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            sql = GEN_WINDOWS.format(partition=target if partitioned else "inference_windows")
            conn.execute(text(sql), {"first": first, "last": end_minute - 1, "versions": versions})
            conn.execute(text(_hours_sql(target if partitioned else "inference_windows")))
        rows = (end_minute - first) * versions
        print(
            f"  {month}: {rows:,} windows and their hours in {time.perf_counter() - t1:.1f} s",
            flush=True,
        )
        first, month = end_minute, next_month_start(month).strftime("%Y-%m")
    t1 = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence('inference_windows', 'id'), :n)"),
            {"n": minutes * versions},
        )
        for statement in keys + indexes:
            conn.exec_driver_sql(statement)
    print(
        f"  keys and indexes {time.perf_counter() - t1:.1f} s; {minutes * versions:,} windows "
        f"in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )


def build_rollups(engine: Any) -> None:
    """Time the first full rollup build and a no-change refresh."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        refresh_rollups(conn, full=True)
    print(f"rollups full build: {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        summary = refresh_rollups(conn)
    print(f"rollups no-change refresh: {time.perf_counter() - t0:.3f} s ({summary.months})")


def new_day(engine: Any, versions: int) -> None:
    """Add one UTC day of windows for ``versions`` versions; time the incremental refresh."""
    with engine.begin() as conn:
        last = conn.execute(text("SELECT MAX(window_start) FROM inference_windows")).scalar()
        day = (last + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        partitions.ensure_partitions(conn, day, day)
        conn.execute(text(NEW_DAY), {"day": day, "versions": versions})
        day_windows = (
            "window_start >= CAST(:day AS timestamptz) "
            "AND window_start < CAST(:day AS timestamptz) + interval '1 day'"
        )
        conn.execute(text(_hours_sql("inference_windows", day_windows)), {"day": day})
        conn.exec_driver_sql("ANALYZE inference_windows")
        conn.exec_driver_sql("ANALYZE activity_energy_hours")
    t0 = time.perf_counter()
    with engine.begin() as conn:
        summary = refresh_rollups(conn)
    print(
        f"incremental refresh after {1440 * versions:,} new windows on {day:%Y-%m-%d}: "
        f"{time.perf_counter() - t0:.2f} s ({summary})",
        flush=True,
    )


def print_sizes(engine: Any) -> None:
    """Disk used by the bench schema, per table (partitions summed into their table)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT COALESCE(p.relname, c.relname), SUM(pg_total_relation_size(c.oid)) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid "
                "LEFT JOIN pg_class p ON p.oid = i.inhparent "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm') "
                "GROUP BY 1 ORDER BY 2 DESC LIMIT 8"
            )
        ).all()
        total = conn.execute(
            text(
                "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                "AND c.relkind IN ('r', 'm')"
            )
        ).scalar()
    print(
        f"disk: {int(total or 0) / 1e9:.2f} GB in all; "
        + ", ".join(f"{name} {int(size) / 1e9:.2f} GB" for name, size in rows)
    )


def page_calls(r: Any) -> dict[str, Callable[[], Any]]:
    """Each page's reporting calls, as app/app_pages/*.py and app/cl_ui.py make them.

    Every page first runs the sidebar (``filters``: filter options and freshness); the
    Overview, Teams and Models pages show ``scopes`` (``embodied.total_with_range``). Keep this
    in step with the pages: a call left out here is a call nobody times.
    """
    year, q3 = parse_period("2025"), parse_period("2025-Q3")
    team, model = "team-7", "model-7"

    def sidebar() -> Any:
        return queries.filter_options(r), freshness(r)

    return {
        "overview": lambda: (
            sidebar(),
            queries.totals(r, period=year),
            advice.potential_saving_kg_per_year(r, period=year),
            embodied.total_with_range(r, period=year),
            queries.monthly_trend(r, period=year),
            queries.by_team(r, period=year),
        ),
        "teams": lambda: (
            sidebar(),
            queries.totals(r, period=year, team=team),
            embodied.total_with_range(r, period=year, team=team),
            queries.by_model(r, period=year, team=team),
            embodied.embodied_by_team(r, period=year),
            lifecycle.budgets(r, team=team),
            queries.monthly_trend(r, period=year, team=team),
            runs_q.runs_table(r, period=year, team=team, limit=100),
        ),
        "models": lambda: (
            sidebar(),
            runs_q.model_mlflow_url(r, model_name=model),
            lifecycle.lifecycle(r, model_name=model),
            embodied.total_with_range(r, model=model),
            lifecycle.lifecycle_by_month(r, model_name=model),
            lifecycle.budgets(r, model_name=model),
            lifecycle.per_1000_requests(r, model_name=model, period=year),
            embodied.sci_by_version(r, model_name=model),
            lifecycle.versions(r, model_name=model),
        ),
        "runs": lambda: (
            sidebar(),
            runs_q.runs_table(r, period=year),
            runs_q.run_detail(r, run_id="r123456"),
        ),
        "efficiency": lambda: (
            sidebar(),
            runs_q.metric_keys(r, period=q3, team=team),
            runs_q.efficiency(r, metric="accuracy", period=q3, team=team),
        ),
        "cut": lambda: (sidebar(), advice.recommendations(r, period=year, team=team)),
        "whatif": lambda: (
            sidebar(),
            queries.totals(r, period=year),
            timing.period_savings(r, period=year, flex_h=24),
            timing.hourly_zones(r),
            methodology.zone_factors(r),
            methodology.what_if(r, period=year, zones=("FR", "SE", "PL")),
        ),
        "methodology": lambda: (
            sidebar(),
            methodology.estimate_counts(r, period=q3),
            methodology.factors_in_use(r, period=q3),
        ),
        "report 2025-Q3": lambda: build_report(r, period=q3),
    }


def time_pages(url_s: str, repeat: int, only: list[str] | None = None) -> None:
    """Time each page's reporting calls and the period report (a failing page says why)."""
    r = reporting_engine(url_s)
    print(f"{'page':<16}{'p50 s':>8}{'p95 s':>8}")
    for name, fn in page_calls(r).items():
        if only and name.split()[0] not in only:
            continue
        try:
            p50, p95 = _timed(fn, 3 if name.startswith("report") else repeat)
        except Exception as exc:  # noqa: BLE001 (a bench row, not a handler)
            print(f"{name:<16}  failed: {str(exc).splitlines()[0][:100]}", flush=True)
            continue
        over = "" if p95 < (5.0 if name.startswith("report") else 1.5) else "  over target"
        print(f"{name:<16}{p50:>8.3f}{p95:>8.3f}{over}", flush=True)
    r.dispose()


if __name__ == "__main__":
    main()
