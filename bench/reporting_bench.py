"""Reporting at design scale on PostgreSQL: generate, refresh rollups, time every page's queries.

    .venv/bin/python bench/reporting_bench.py \
        --url postgresql+psycopg://postgres@127.0.0.1:5432/test --runs 1000000 --windows 10000000

Fills its own schema (``cl_reporting_bench``, dropped first) with server-side generate_series:
50 teams, 5,000 models, runs over 2025, 1-minute inference windows of 20 model versions, one
non-carbon metric per run, budgets. Then times the full rollup build, a no-change incremental
refresh, each page's reporting calls (p50/p95 over --repeat runs, target p95 < 1.5 s) and the
period report.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from carbonledger.ledger import create_ledger_engine, migrate, seed_emission_factors
from carbonledger.ledger.repositories import shipped_factors
from carbonledger.reporting import build_report, lifecycle, methodology, parse_period, queries
from carbonledger.reporting import runs as runs_q
from carbonledger.reporting.db import reporting_engine
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

GEN_WINDOWS = f"""
INSERT INTO inference_windows (source_id, run_id, model_name, model_version, team,
    window_start, window_end, activity_year, requests, energy_kwh, pue, facility_energy_kwh,
    grid_zone)
SELECT 1, 'serve-' || (i % 20), 'model-' || (i % 20), 1 + (i % 20) / 5, 'team-' || (i % 50),
       ts, ts + interval '1 minute', 2025, (random() * 600)::int, e, 1.2, e * 1.2,
       ({ZONES})[1 + i % 7]
FROM (SELECT i, timestamptz '2025-01-01 00:00+00' + ((i / 20) * interval '1 minute') AS ts,
             (random() * 0.02)::double precision AS e
      FROM generate_series(1, :n) AS i) g
"""


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
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--windows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--reuse", action="store_true", help="time the queries on the schema a run left"
    )
    args = parser.parse_args()
    url = make_url(args.url).update_query_dict({"options": f"-csearch_path={SCHEMA}"})
    url_s = url.render_as_string(hide_password=False)
    if not args.reuse:
        generate(args, url_s)
    time_pages(url_s, args.repeat)


def generate(args: argparse.Namespace, url_s: str) -> None:
    """Fill the bench schema and build the rollups, printing the timings."""

    admin = create_ledger_engine(args.url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
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
        conn.execute(text(GEN_WINDOWS), {"n": args.windows})
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
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    print(
        f"generated {args.runs:,} runs, {args.windows:,} windows in "
        f"{time.perf_counter() - t0:.1f} s"
    )

    t0 = time.perf_counter()
    with engine.begin() as conn:
        refresh_rollups(conn, full=True)
    print(f"rollups full build: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    with engine.begin() as conn:
        summary = refresh_rollups(conn)
    print(f"rollups no-change refresh: {time.perf_counter() - t0:.3f} s ({summary.months})")
    engine.dispose()


def time_pages(url_s: str, repeat: int) -> None:
    """Time each page's reporting calls and the period report."""
    r = reporting_engine(url_s)
    year, q3 = parse_period("2025"), parse_period("2025-Q3")
    pages: dict[str, Callable[[], Any]] = {
        "overview": lambda: (
            queries.filter_options(r),
            queries.totals(r, period=year),
            queries.monthly_trend(r, period=year),
            queries.by_team(r, period=year),
        ),
        "teams": lambda: (
            queries.totals(r, period=year, team="team-7"),
            queries.by_model(r, period=year, team="team-7"),
            lifecycle.budgets(r, team="team-7"),
            queries.monthly_trend(r, period=year, team="team-7"),
            runs_q.runs_table(r, period=year, team="team-7", limit=100),
        ),
        "models": lambda: (
            lifecycle.lifecycle(r, model_name="model-7"),
            lifecycle.lifecycle_by_month(r, model_name="model-7"),
            lifecycle.budgets(r, model_name="model-7"),
            lifecycle.per_1000_requests(r, model_name="model-7", period=year),
            lifecycle.versions(r, model_name="model-7"),
        ),
        "runs": lambda: (
            runs_q.runs_table(r, period=year),
            runs_q.run_detail(r, run_id="r123456"),
        ),
        "efficiency": lambda: (
            runs_q.metric_keys(r, period=q3, team="team-7"),
            runs_q.efficiency(r, metric="accuracy", period=q3, team="team-7"),
        ),
        "whatif": lambda: methodology.what_if(r, period=year, zones=["FR", "SE", "PL"]),
        "methodology": lambda: (
            methodology.estimate_counts(r, period=q3),
            methodology.factors_in_use(r, period=q3),
        ),
        "report 2025-Q3": lambda: build_report(r, period=q3),
    }
    print(f"{'page':<16}{'p50 s':>8}{'p95 s':>8}")
    for name, fn in pages.items():
        p50, p95 = _timed(fn, 3 if name.startswith("report") else repeat)
        print(f"{name:<16}{p50:>8.3f}{p95:>8.3f}{'' if p95 < 1.5 else '  over target'}")
    r.dispose()


if __name__ == "__main__":
    main()
