"""How ``activity_co2e`` reads a record's hours: lateral (c3d4e5f6a7b8) vs grouped (before).

Builds a PostgreSQL ledger in its own schema with ``--windows`` one-minute serving windows in
DE from 2025-01-01 (one ``activity_energy_hours`` row each, as the ETL writes), then times, at
the newest migration and after downgrading to b2c3d4e5f6a7 (the grouped view), three queries:
one day of windows from ``inference_co2e`` (a refresh of a day, a page), every window (a full
rollup build), and one day of ``v_inference_daily``.

Usage:
    .venv/bin/python bench/activity_hours_bench.py --windows 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime

os.environ.setdefault("CARBONLEDGER_DISABLE", "1")

QUERIES = {
    "one day, inference_co2e": "SELECT SUM(co2e_location_kg), COUNT(*) FROM inference_co2e "
    "WHERE window_start >= '2025-01-15' AND window_start < '2025-01-16'",
    "every window, inference_co2e": "SELECT SUM(co2e_location_kg), COUNT(*) FROM inference_co2e",
    "one day, v_inference_daily": "SELECT SUM(co2e_location_kg) FROM v_inference_daily "
    "WHERE day = '2025-01-15'",
}


def main() -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from carbonledger.ledger import create_ledger_engine, migrate, seed_emission_factors
    from carbonledger.ledger.hourly_factors import seed_hourly_factors
    from carbonledger.ledger.partitions import ensure_partitions
    from carbonledger.ledger.repositories import shipped_factors

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--windows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--explain", action="store_true", help="print the one-day plan (lateral)")
    args = parser.parse_args()
    schema = "cl_bench_hours_lateral"
    admin = create_ledger_engine(args.pg)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = make_url(args.pg).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_ledger_engine(url.render_as_string(hide_password=False))
    migrate.upgrade(engine)
    minutes = args.windows - 1
    with engine.begin() as conn:
        seed_emission_factors(conn, factors=shipped_factors())
        seed_hourly_factors(conn, zones=["DE"])
        last = datetime.fromtimestamp(
            datetime(2025, 1, 1, tzinfo=UTC).timestamp() + 60 * minutes, UTC
        )
        ensure_partitions(conn, datetime(2025, 1, 1, tzinfo=UTC), last)
        conn.exec_driver_sql("INSERT INTO tracking_sources (uri, kind) VALUES ('bench', 'mlflow')")
        conn.exec_driver_sql(
            "INSERT INTO inference_windows (source_id, run_id, model_name, model_version, team, "
            "window_start, window_end, requests, energy_kwh, facility_energy_kwh, pue, grid_zone, "
            "metering, any_component_estimated) SELECT (SELECT MIN(id) FROM tracking_sources), "
            "'r' || (g %% 50), 'm' || (g %% 50), 1, 't', "
            "TIMESTAMPTZ '2025-01-01' + g * INTERVAL '1 minute', "
            "TIMESTAMPTZ '2025-01-01' + (g + 1) * INTERVAL '1 minute', 10, 0.01, 0.012, 1.2, "
            f"'DE', 'metered', false FROM generate_series(0, {minutes}) g"
        )
        conn.exec_driver_sql(
            "INSERT INTO activity_energy_hours (record_kind, record_pk, utc_hour, zone, "
            "profile_cell, energy_kwh, facility_energy_kwh) SELECT 'window', id, "
            "CAST(FLOOR(EXTRACT(EPOCH FROM window_start) / 3600) AS BIGINT), 'DE', 0, "
            "energy_kwh, facility_energy_kwh FROM inference_windows"
        )
        conn.exec_driver_sql("ANALYZE")

    def timings(label: str) -> None:
        with engine.connect() as conn:
            for name, sql in QUERIES.items():
                runs = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    conn.execute(text(sql)).all()
                    runs.append(time.perf_counter() - t0)
                print(f"{label:8} {name:30} median {statistics.median(runs):.3f} s", flush=True)

    timings("lateral")
    if args.explain:
        with engine.connect() as conn:
            sql = "EXPLAIN (ANALYZE, COSTS OFF) " + QUERIES["one day, inference_co2e"]
            print("\n".join(r[0] for r in conn.execute(text(sql))))
    migrate.downgrade(engine, "b2c3d4e5f6a7")
    timings("grouped")
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
