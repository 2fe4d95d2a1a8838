"""Benchmark of the ETL (docs/benchmarks.md, section "ETL and ledger").

1. Generate a SQLite MLflow store with N metered runs: ``--workers`` processes each create
   their share with ``MlflowClient.create_run`` + one ``log_batch`` (12 metrics, 12 tags) +
   ``set_terminated``, on tmpfs (/dev/shm) because MLflow's SQLite store fsyncs each write.
2. Full load into a fresh ledger (SQLite file and PostgreSQL schema): runs/s, end to end.
3. A no-change incremental pass: in-process time, and wall time of the CLI (imports included).
4. PostgreSQL write path: the same transformed rows through the ledger's staging COPY + upsert
   vs a raw COPY of the same rows into an index-free copy of the ``runs`` table.

Usage:
    .venv/bin/python bench/etl_bench.py --runs 20000 --workers 2 \
        --pg postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

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
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, end_ms, 0) for k, v in metrics.items()],
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


def fresh_ledger(url: str) -> tuple[object, str]:
    from sqlalchemy.engine import make_url

    from carbonledger.ledger import create_ledger_engine, migrate, seed_emission_factors
    from carbonledger.ledger.repositories import shipped_factors

    if url.startswith("postgresql"):
        schema = f"cl_bench_{uuid.uuid4().hex[:8]}"
        admin = create_ledger_engine(url)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        admin.dispose()
        url = (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    engine = create_ledger_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        seed_emission_factors(conn, factors=shipped_factors())
    return engine, url


def drop_schema(pg: str, url: str) -> None:
    from carbonledger.ledger import create_ledger_engine

    schema = url.split("search_path%3D")[-1].split("&")[0] if "search_path" in url else None
    if schema:
        admin = create_ledger_engine(pg)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def bench_load(uri: str, ledger: str, runs: int) -> dict[str, float]:
    from carbonledger.etl import run_etl

    engine, url = fresh_ledger(ledger)
    t = time.perf_counter()
    [full] = run_etl(engine, mlflow_uris=[uri])  # type: ignore[arg-type]
    full_s = time.perf_counter() - t
    assert full.loaded == runs, full
    passes = []
    for _ in range(5):
        t = time.perf_counter()
        [inc] = run_etl(engine, mlflow_uris=[uri])  # type: ignore[arg-type]
        passes.append(time.perf_counter() - t)
        assert inc.loaded == inc.updated == 0
    cli = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).with_name("carbonledger")),
                "etl",
                "-q",
                "--mlflow-uri",
                uri,
                "--ledger-url",
                url,
            ],
            check=True,
            capture_output=True,
        )
        cli.append(time.perf_counter() - t)
    return {
        "full_s": full_s,
        "runs_per_s": runs / full_s,
        "nochange_s": statistics.median(passes),
        "nochange_cli_s": statistics.median(cli),
        "url": url,  # type: ignore[dict-item]
    }


def bench_copy_ratio(uri: str, pg_url: str) -> dict[str, float]:
    """Ledger write path (staging COPY + upsert) vs a raw COPY of the same rows."""
    from carbonledger.etl import extract
    from carbonledger.etl.load import RUN_COLUMNS, Loader
    from carbonledger.etl.transform import RunRecord, TransformConfig, transform_run
    from carbonledger.ledger.repositories import get_or_create_source

    client = extract.open_client(uri)
    exps = extract.experiments(client, uri)
    records: list[RunRecord] = []
    t = time.perf_counter()
    for page in extract.changed_run_pages(
        client, uri, sorted(exps), end_time_ms=None, heartbeat_ms=None
    ):
        for run in page:
            out = transform_run(run, exps.get(run.info.experiment_id), TransformConfig())
            assert isinstance(out, RunRecord)
            records.append(out)
    extract_s = time.perf_counter() - t
    engine, url = fresh_ledger(pg_url)
    ledger_times, copy_times = [], []
    for _ in range(3):
        with engine.begin() as conn:  # type: ignore[attr-defined]
            conn.exec_driver_sql("TRUNCATE runs, run_energy")
            conn.exec_driver_sql("DROP TABLE IF EXISTS raw_runs")
            conn.exec_driver_sql("CREATE TABLE raw_runs (LIKE runs INCLUDING DEFAULTS)")
            conn.exec_driver_sql("ALTER TABLE raw_runs ALTER COLUMN id DROP NOT NULL")
            source_id = get_or_create_source(conn, uri=uri)
        t = time.perf_counter()
        with engine.begin() as conn:  # type: ignore[attr-defined]
            loader = Loader(conn, source_id)
            loader.stage(records)
            loader.merge()
            loader.close()
        ledger_times.append(time.perf_counter() - t)
        rows = [
            [{**r.row, "source_id": source_id, "is_stale": False}.get(c) for c in RUN_COLUMNS]
            for r in records
        ]
        t = time.perf_counter()
        with engine.begin() as conn:  # type: ignore[attr-defined]
            raw = conn.connection.driver_connection
            with (
                raw.cursor() as cur,
                cur.copy(f"COPY raw_runs ({', '.join(RUN_COLUMNS)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        copy_times.append(time.perf_counter() - t)
    n = len(records)
    ledger_s, copy_s = statistics.median(ledger_times), statistics.median(copy_times)
    drop_schema(pg_url, url)
    return {
        "extract_transform_s": extract_s,
        "ledger_rows_per_s": n / ledger_s,
        "raw_copy_rows_per_s": n / copy_s,
        "ratio": copy_s / ledger_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--api-runs",
        type=int,
        help="make only this many runs through MLflow's API and clone them in SQL up to --runs",
    )
    parser.add_argument("--store", type=Path, default=Path("/dev/shm/carbonledger-bench.db"))
    parser.add_argument("--sqlite-ledger", type=Path, default=Path("/tmp/cl-bench-ledger.db"))
    parser.add_argument("--pg", default=os.environ.get("CARBONLEDGER_TEST_DATABASE_URL"))
    args = parser.parse_args()

    uri = generate(args.store, args.runs, args.workers, args.api_runs)
    args.sqlite_ledger.unlink(missing_ok=True)
    targets = [("sqlite", f"sqlite:///{args.sqlite_ledger}")]
    if args.pg:
        targets.append(("postgresql", args.pg))
    for name, url in targets:
        r = bench_load(uri, url, args.runs)
        print(
            f"{name}: full load {args.runs} runs in {r['full_s']:.1f} s "
            f"({r['runs_per_s']:.0f} runs/s); no-change pass {r['nochange_s']:.3f} s in-process, "
            f"{r['nochange_cli_s']:.2f} s CLI wall (imports included)"
        )
        if name == "postgresql":
            drop_schema(args.pg, str(r["url"]))
    if args.pg:
        c = bench_copy_ratio(uri, args.pg)
        print(
            f"postgresql write path: ledger staging COPY + upsert {c['ledger_rows_per_s']:.0f} "
            f"rows/s vs raw COPY {c['raw_copy_rows_per_s']:.0f} rows/s "
            f"(ledger at {c['ratio']:.2f}x of raw COPY); MLflow read + transform "
            f"{c['extract_transform_s']:.1f} s"
        )


if __name__ == "__main__":
    main()
