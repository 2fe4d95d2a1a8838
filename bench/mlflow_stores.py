"""MLflow tracking stores for the ETL benchmarks, filled the way MLflow fills them.

``generate`` makes a SQLite store, ``generate_pg`` a PostgreSQL-backed one (a database of its
own, created by MLflow's migrations). Both write ``api_runs`` metered runs through MLflow's API
(``create_run`` + one ``log_batch`` of the 12 plugin metrics, three earlier flushes of
``carbon/energy_kwh``, and 12 tags + ``set_terminated``,
in ``workers`` processes), then copy them inside the store's own tables up to ``runs`` (new run
ids, times shifted past the previous copies): MLflow reads the copies as it reads its own.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("CARBONLEDGER_DISABLE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

T0_MS = 1_717_200_000_000


def _make_runs(args: tuple[str, str, int, int]) -> int:
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    uri, exp_id, start, count = args
    client = MlflowClient(uri)
    for i in range(start, start + count):
        gpu, cpu, ram, pue = 0.5 + (i % 100) / 100, 0.1, 0.02, 1.1
        energy = gpu + cpu + ram
        end_ms = T0_MS + i * 1000
        metrics = {
            "carbon/gpu_energy_kwh": gpu,
            "carbon/cpu_energy_kwh": cpu,
            "carbon/ram_energy_kwh": ram,
            "carbon/energy_kwh": energy,
            "carbon/pue": pue,
            "carbon/facility_energy_kwh": energy * pue,
            "carbon/intensity_g_per_kwh": 380.0,
            "carbon/co2e_kg": energy * pue * 0.38,
            "carbon/duration_s": 3600.0,
            "carbon/avg_power_w": energy * 1000,
            "carbon/peak_power_w": energy * 1500,
            "carbon/heartbeat_ms": float(end_ms),
        }
        tags = {
            "carbon.plugin_version": "0.1.0",
            "carbon.gpu_model": "NVIDIA H100",
            "carbon.gpu_count": "1",
            "carbon.cpu_model": "AMD EPYC",
            "carbon.cpu_count": "2",
            "carbon.ram_gb": "24",
            "carbon.country": "DE",
            "carbon.grid_zone": "DE",
            "carbon.intensity_source": "electricity-maps-yearly:2024:DE",
            "carbon.methods": "cpu=rapl;gpu=nvml-energy-counter;ram=ram-w-per-gb-estimate",
            "carbon.attribution": "device",
            "carbon.team": f"team-{i % 50}",
        }
        run = client.create_run(exp_id, start_time=end_ms - 3_600_000)
        # The plugin re-logs its cumulative totals at every flush (step = flush number):
        # three earlier carbon/energy_kwh points give the run an uneven hourly profile.
        flushes = [
            Metric("carbon/energy_kwh", energy * share, end_ms - ago_ms, step)
            for step, (share, ago_ms) in enumerate(
                ((0.1, 2_700_000), (0.5, 1_800_000), (0.7, 900_000))
            )
        ]
        client.log_batch(
            run.info.run_id,
            metrics=[*flushes, *(Metric(k, v, end_ms, len(flushes)) for k, v in metrics.items())],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        client.set_terminated(run.info.run_id, "FINISHED", end_time=end_ms)
    return count


def clone_runs(store: Path, target: int) -> None:
    """Copy the API-made runs inside the SQLite store until it holds ``target`` runs.

    Each copy gets a new run id and times shifted past the previous copies (as if the same
    workload ran again later), with its tags, params and metrics; MLflow reads the copies
    exactly as it reads runs it wrote itself.
    """
    import sqlite3

    con = sqlite3.connect(store)
    seed = [r[0] for r in con.execute("SELECT run_uuid FROM runs ORDER BY end_time")]
    con.execute("CREATE TEMP TABLE seed (run_uuid TEXT PRIMARY KEY)")
    con.executemany("INSERT INTO seed VALUES (?)", [(u,) for u in seed])
    copy = 0
    while (have := con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]) < target:
        copy += 1
        shift = copy * len(seed) * 1000
        con.execute("DROP TABLE IF EXISTS m")
        con.execute(
            "CREATE TEMP TABLE m AS SELECT run_uuid AS old, lower(hex(randomblob(16))) AS new "
            "FROM seed LIMIT ?",
            (target - have,),
        )
        con.execute(
            "INSERT INTO runs SELECT m.new, r.name, r.source_type, r.source_name, "
            "r.entry_point_name, r.user_id, r.status, r.start_time + :s, r.end_time + :s, "
            "r.source_version, r.lifecycle_stage, replace(r.artifact_uri, r.run_uuid, m.new), "
            "r.experiment_id, r.deleted_time FROM runs r JOIN m ON r.run_uuid = m.old",
            {"s": shift},
        )
        con.execute(
            'INSERT INTO tags SELECT t."key", t.value, m.new FROM tags t '
            "JOIN m ON t.run_uuid = m.old"
        )
        con.execute(
            'INSERT INTO params SELECT p."key", p.value, m.new FROM params p '
            "JOIN m ON p.run_uuid = m.old"
        )
        for table in ("latest_metrics", "metrics"):
            con.execute(
                f'INSERT INTO {table} ("key", value, timestamp, step, is_nan, run_uuid) '
                'SELECT x."key", CASE WHEN x."key" = \'carbon/heartbeat_ms\' '
                "THEN x.value + :s ELSE x.value END, x.timestamp + :s, x.step, x.is_nan, m.new "
                f"FROM {table} x JOIN m ON x.run_uuid = m.old",
                {"s": shift},
            )
        con.commit()
    con.close()


def generate(store: Path, runs: int, workers: int, api_runs: int | None = None) -> str:
    """A SQLite MLflow store at ``store`` with ``runs`` runs (reused when it has them)."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{store}"
    if store.exists():
        import sqlite3

        with sqlite3.connect(store) as con:
            have = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        if have == runs:
            print(f"reusing {store}")
            return uri
        store.unlink()
    exp_id = MlflowClient(uri).create_experiment("bench")  # creates the schema once
    assert exp_id == "1"
    made = min(runs, api_runs or runs)
    share = [made // workers + (1 if w < made % workers else 0) for w in range(workers)]
    starts = [sum(share[:w]) for w in range(workers)]
    t = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(_make_runs, [(uri, exp_id, s, n) for s, n in zip(starts, share, strict=True)])
    dt = time.perf_counter() - t
    print(f"generated {made} runs with {workers} processes in {dt:.1f} s ({made / dt:.0f} runs/s)")
    if made < runs:
        t = time.perf_counter()
        clone_runs(store, runs)
        print(f"cloned them to {runs} runs in SQL in {time.perf_counter() - t:.1f} s")
    return uri


def pg_store_uri(pg_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(drivername="postgresql+psycopg", database=database)
    return url.render_as_string(hide_password=False)


def generate_pg(pg_url: str, database: str, runs: int, workers: int, api_runs: int) -> str:
    """A PostgreSQL-backed MLflow store with ``runs`` runs (reused when it has them).

    MLflow's own migrations create the schema (``SqlAlchemyStore`` on the empty database);
    ``api_runs`` runs are written through MLflow's API, then copied server-side in SQL (new
    run ids, times shifted past the previous copies, tags/params/metrics copied) up to ``runs``.
    """
    import psycopg
    from sqlalchemy.engine import make_url

    uri = pg_store_uri(pg_url, database)
    admin = make_url(pg_url).set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(_libpq(dsn), autocommit=True) as con:
        exists = con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists:
            with psycopg.connect(_libpq(pg_store_uri(dsn, database))) as db:
                try:
                    have = db.execute("SELECT count(*) FROM runs").fetchone()[0]  # type: ignore[index]
                except psycopg.Error:
                    have = -1
            if have == runs:
                print(f"reusing the PostgreSQL store {database} ({runs} runs)")
                return uri
            con.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{database}"')
    from mlflow.tracking import MlflowClient

    exp_id = MlflowClient(uri).create_experiment("bench")  # MLflow's migrations, then one row
    made = min(runs, api_runs)
    share = [made // workers + (1 if w < made % workers else 0) for w in range(workers)]
    starts = [sum(share[:w]) for w in range(workers)]
    t = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(_make_runs, [(uri, exp_id, s, n) for s, n in zip(starts, share, strict=True)])
    print(f"generated {made} runs through MLflow's API in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    with psycopg.connect(_libpq(pg_store_uri(dsn, database))) as db:
        copy_runs_pg(db, runs)
    print(f"copied them to {runs} runs in SQL in {time.perf_counter() - t:.1f} s")
    return uri


_COPIED = ("runs", "tags", "params", "latest_metrics", "metrics")


def copy_runs_pg(db: Any, target: int) -> None:
    """Copy the API-made runs inside a PostgreSQL store up to ``target`` runs, in bulk.

    One ``INSERT ... SELECT`` per table over ``generate_series`` (copy ``g`` of each seed
    run: id ``md5(run, g)``, times shifted by ``g`` x the seed span, heap in copy order).
    MLflow's foreign keys and indexes on the copied tables are dropped first and re-created
    after, from their own definitions (``pg_get_constraintdef``/``pg_get_indexdef``): the
    schema ends as MLflow's migrations made it.
    """
    db.execute("SET synchronous_commit = off")
    db.execute("SET maintenance_work_mem = '512MB'")
    seed = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    copies = -(-target // seed) - 1
    if copies <= 0:
        return
    names = list(_COPIED)
    fks = db.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype IN ('f', 'p') AND (conrelid::regclass::text = ANY(%s) "
        "OR confrelid::regclass::text = ANY(%s)) ORDER BY contype DESC",
        (names, names),
    ).fetchall()  # primary keys first back (the foreign keys need them)
    indexes = db.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid::regclass::text = ANY(%s) AND NOT indisprimary",
        (names,),
    ).fetchall()
    for table, name, _ in reversed(fks):  # foreign keys first away
        db.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    db.execute(
        "CREATE TEMP TABLE m AS SELECT s.run_uuid AS old, g AS copy, "
        "md5(s.run_uuid || ':' || g) AS new FROM (SELECT run_uuid FROM runs) s "
        "CROSS JOIN generate_series(1, %s) g ORDER BY g, s.run_uuid LIMIT %s",
        (copies, target - seed),
    )
    shift = f"m.copy::bigint * {seed * 1000}"
    db.execute(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
        "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
        "artifact_uri, experiment_id, deleted_time) "
        f"SELECT m.new, r.name, r.source_type, r.source_name, r.entry_point_name, "
        f"r.user_id, r.status, r.start_time + {shift}, r.end_time + {shift}, "
        "r.source_version, r.lifecycle_stage, replace(r.artifact_uri, r.run_uuid, m.new), "
        "r.experiment_id, r.deleted_time FROM m JOIN runs r ON r.run_uuid = m.old "
        "ORDER BY m.copy, m.old"
    )
    for table in ("tags", "params"):
        db.execute(
            f'INSERT INTO {table} ("key", value, run_uuid) SELECT t."key", t.value, m.new '
            f"FROM m JOIN {table} t ON t.run_uuid = m.old ORDER BY m.copy, m.old"
        )
    for table in ("latest_metrics", "metrics"):
        db.execute(
            f'INSERT INTO {table} ("key", value, timestamp, step, is_nan, run_uuid) '
            'SELECT x."key", CASE WHEN x."key" = \'carbon/heartbeat_ms\' '
            f"THEN x.value + {shift} ELSE x.value END, x.timestamp + {shift}, x.step, "
            f"x.is_nan, m.new FROM m JOIN {table} x ON x.run_uuid = m.old ORDER BY m.copy, m.old"
        )
    for _, definition in indexes:
        db.execute(definition)
    for table, name, definition in fks:
        db.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    db.commit()
    db.execute("ANALYZE")
    db.commit()


def _libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as a libpq connection URI (psycopg.connect)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def drop_pg_store(pg_url: str, database: str) -> None:
    """Drop a store database made by ``generate_pg``."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(pg_url).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(_libpq(admin), autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="make an MLflow store for the ETL benchmark")
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--api-runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sqlite", type=Path, help="SQLite store file")
    parser.add_argument("--pg", help="PostgreSQL server URL (the store gets its own database)")
    parser.add_argument("--database", default="cl_mlflow_bench")
    args = parser.parse_args()
    if args.sqlite:
        generate(args.sqlite, args.runs, args.workers, args.api_runs)
    if args.pg:
        generate_pg(args.pg, args.database, args.runs, args.workers, args.api_runs)
