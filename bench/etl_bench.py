"""Benchmark of the ETL (docs/benchmarks.md, section "ETL and ledger"), side by side in one run.

Stores come from ``mlflow_stores.py``: runs written through MLflow's API, then copied inside
MLflow's own tables (SQLite file on tmpfs; PostgreSQL database created by MLflow's migrations).

1. **Full load vs MLflow's listing**: per store (SQLite -> SQLite ledger, PostgreSQL-backed
   MLflow -> PostgreSQL ledger), ``--reps`` interleaved rounds of (a) MLflow's own
   ``search_runs`` listing every run (pages of 10,000, every lifecycle stage, as the client
   path reads) and (b) a full load by the direct SQL path into a fresh ledger; medians and
   their ratio. One client-path full load for reference (``--client-load``). With
   ``--before DIR`` (an earlier tree from ``git archive``) each round also loads with that
   tree, both loads in fresh processes, alternating which goes first; ``--loads-only``
   stops there.
2. **No-change pass**: in-process and as a ``carbonledger etl`` CLI process (wall, imports
   included), direct path and client path, medians.
3. **PostgreSQL write path**: the same transformed rows through the ledger's ``Loader`` (stage +
   merge, fresh ledger each round) vs a raw COPY of the same rows into index-free copies of
   ``runs`` (text ``write_row``, as before, and binary) and, second figure, of ``runs`` +
   ``run_energy``.
5. **Hourly matching** (``--hourly-only``): full loads of the SQLite store with hourly matching
   (each run's ``carbon/energy_kwh`` history read and its energy spread over its hours) and
   without (``CARBONLEDGER_ETL_HOURLY=false``), interleaved; medians and their ratio.
4. **Big store** (``--big-pg-runs``): full load of a PostgreSQL-backed store as a CLI process,
   its wall time and peak memory (max RSS), then the no-change pass.

Usage:
    .venv/bin/python bench/etl_bench.py --runs 20000 --reps 3 \
        --pg postgresql+psycopg://postgres@127.0.0.1:5432/test --big-pg-runs 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("CARBONLEDGER_DISABLE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlflow_stores import generate, generate_pg  # noqa: E402

CLI = str(Path(sys.executable).with_name("carbonledger"))


def fresh_ledger(url: str) -> tuple[Any, str]:
    """A migrated, seeded ledger: a new SQLite file, or a new schema of a PostgreSQL URL."""
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
    else:
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = create_ledger_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        seed_emission_factors(conn, factors=shipped_factors())
        if os.environ.get("CARBONLEDGER_ETL_HOURLY", "true").lower() != "false":
            from carbonledger.ledger.hourly_factors import seed_hourly_factors

            seed_hourly_factors(conn, zones=["DE"])  # the stores' zone
    return engine, url


def drop_ledger(pg: str | None, url: str) -> None:
    """Drop the schema of a ledger made by ``fresh_ledger`` (PostgreSQL)."""
    from carbonledger.ledger import create_ledger_engine

    if pg and "search_path" in url:
        schema = url.split("search_path%3D")[-1].split("&")[0]
        admin = create_ledger_engine(pg)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def mlflow_listing(uri: str) -> tuple[float, int]:
    """MLflow's own ``search_runs`` over every run of the store (fresh client)."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    t, n, token = time.perf_counter(), 0, None
    while True:
        page = client.search_runs(
            exps, run_view_type=ViewType.ALL, max_results=10_000, page_token=token
        )
        n += len(page)
        token = page.token
        if not token:
            return time.perf_counter() - t, n


def full_load(uri: str, ledger: str, pg: str | None, read: str) -> tuple[float, int]:
    """A first load into a fresh ledger, in this process; seconds and runs loaded."""
    from carbonledger.etl import run_etl
    from carbonledger.settings import get_settings

    os.environ["CARBONLEDGER_ETL_READ"] = read
    get_settings.cache_clear()
    engine, url = fresh_ledger(ledger)
    t = time.perf_counter()
    [summary] = run_etl(engine, mlflow_uris=[uri])
    elapsed = time.perf_counter() - t
    engine.dispose()
    drop_ledger(pg, url)
    return elapsed, summary.loaded


def cli(args: list[str], read: str = "store") -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of ``carbonledger ARGS`` in a fresh process."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "w = time.perf_counter() - t; "
        "sys.exit(r.stderr[-2000:]) if r.returncode else "
        "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    env = {**os.environ, "CARBONLEDGER_ETL_READ": read}
    out = subprocess.run(
        [sys.executable, "-c", probe, CLI, *args], capture_output=True, text=True, env=env
    )
    if out.returncode:
        raise RuntimeError(f"carbonledger {' '.join(args)} failed: {out.stderr}")
    wall, rss = out.stdout.split()
    return float(wall), int(rss)


def child_load(tree: str | None, uri: str, ledger: str, pg: str | None) -> tuple[float, int]:
    """``full_load`` in a fresh process, carbonledger imported from ``tree`` (None: this one)."""
    env = {**os.environ, "PYTHONPATH": tree or str(Path(__file__).resolve().parents[1])}
    argv = [sys.executable, __file__, "--child-load", uri, ledger, pg or ""]
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"full load with {tree or 'this tree'} failed: {out.stderr[-2000:]}")
    seconds, loaded = out.stdout.split()[-2:]
    return float(seconds), int(loaded)


def compare(name: str, uri: str, ledger: str, pg: str | None, args: Any) -> dict[str, Any]:
    """Section 1 and 2 for one store (with ``--before``: both trees' loads, alternating)."""
    listings, loads, before = [], [], []
    for rep in range(args.reps):
        listings.append(mlflow_listing(uri)[0])
        if args.before is None:
            seconds, loaded = full_load(uri, ledger, pg, "store")
            loads.append(seconds)
            continue
        for tree in (None, str(args.before)) if rep % 2 else (str(args.before), None):
            seconds, loaded = child_load(tree, uri, ledger, pg)
            (loads if tree is None else before).append(seconds)
    out: dict[str, Any] = {
        "runs": loaded,
        "mlflow_search_runs_s": statistics.median(listings),
        "direct_full_load_s": statistics.median(loads),
        "listings_s": listings,
        "loads_s": loads,
    }
    out["ratio"] = out["mlflow_search_runs_s"] / out["direct_full_load_s"]
    if before:
        out["before_loads_s"] = before
        out["before_full_load_s"] = statistics.median(before)
        out["before_ratio"] = out["mlflow_search_runs_s"] / out["before_full_load_s"]
        print(
            f"{name}: before {out['before_full_load_s']:.2f} s "
            f"({out['before_ratio']:.1f}x), after {out['direct_full_load_s']:.2f} s",
            flush=True,
        )
    if args.loads_only:
        print(f"{name}: {json.dumps(out)}", flush=True)
        return out
    if args.client_load:
        out["client_full_load_s"] = full_load(uri, ledger, pg, "client")[0]
    engine, url = fresh_ledger(ledger)
    from carbonledger.etl import run_etl
    from carbonledger.settings import get_settings

    os.environ["CARBONLEDGER_ETL_READ"] = "store"
    get_settings.cache_clear()
    run_etl(engine, mlflow_uris=[uri])
    passes = []
    for _ in range(5):
        t = time.perf_counter()
        [summary] = run_etl(engine, mlflow_uris=[uri])
        passes.append(time.perf_counter() - t)
        assert summary.loaded == summary.updated == 0, summary
    out["nochange_in_process_s"] = statistics.median(passes)
    argv = ["etl", "-q", "--mlflow-uri", uri, "--ledger-url", url]
    for read in ("store", "client"):
        walls = [cli(argv, read)[0] for _ in range(5)]
        out[f"nochange_cli_{read}_s"] = statistics.median(walls)
    engine.dispose()
    drop_ledger(pg, url)
    print(
        f"{name}: {loaded} runs; MLflow search_runs listing {out['mlflow_search_runs_s']:.2f} s, "
        f"direct full load {out['direct_full_load_s']:.2f} s: {out['ratio']:.1f}x faster"
        + (f"; client-path full load {out['client_full_load_s']:.1f} s" if args.client_load else "")
        + f"\n  no-change pass: {out['nochange_in_process_s']:.3f} s in-process, CLI wall "
        f"{out['nochange_cli_store_s']:.2f} s (direct) / {out['nochange_cli_client_s']:.2f} s "
        "(client)",
        flush=True,
    )
    return out


def hourly_cost(uri: str, ledger: str, pg: str | None, reps: int) -> dict[str, Any]:
    """Full loads with hourly matching (hours + metric histories) vs without, interleaved."""
    times: dict[str, list[float]] = {"off": [], "on": []}
    loaded = 0
    for _ in range(reps):
        for mode in ("off", "on"):
            os.environ["CARBONLEDGER_ETL_HOURLY"] = "true" if mode == "on" else "false"
            seconds, loaded = full_load(uri, ledger, pg, "store")
            times[mode].append(seconds)
    os.environ.pop("CARBONLEDGER_ETL_HOURLY", None)
    out: dict[str, Any] = {
        "runs": loaded,
        "without_hourly_s": statistics.median(times["off"]),
        "with_hourly_s": statistics.median(times["on"]),
        "loads_s": times,
    }
    out["ratio"] = out["with_hourly_s"] / out["without_hourly_s"]
    print(
        f"hourly matching: {loaded} runs; full load {out['without_hourly_s']:.2f} s without, "
        f"{out['with_hourly_s']:.2f} s with: x{out['ratio']:.2f}",
        flush=True,
    )
    return out


def write_path(uri: str, pg: str, reps: int) -> dict[str, float]:
    """Section 3: the ledger's Loader vs raw COPYs of the same rows."""
    from carbonledger.etl.load import ENERGY_COLUMNS, RUN_COLUMNS, Loader
    from carbonledger.etl.sources import open_source
    from carbonledger.etl.transform import RunRecord, TransformConfig, transform_run
    from carbonledger.ledger.repositories import get_or_create_source

    records: list[RunRecord] = []
    with open_source(uri, read="store") as source:
        exps = source.experiments()
        for page in source.changed_run_pages(sorted(exps), end_time_ms=None, heartbeat_ms=None):
            for run in page:
                rec = transform_run(run, exps.get(run.info.experiment_id), TransformConfig())
                assert isinstance(rec, RunRecord)
                records.append(rec)
    engine, url = fresh_ledger(pg)
    with engine.begin() as conn:
        source_id = get_or_create_source(conn, uri=uri)
        for table in ("runs", "run_energy"):  # no index, key or constraint: a raw COPY
            conn.exec_driver_sql(f"CREATE TABLE raw_{table} (LIKE {table} INCLUDING DEFAULTS)")
        conn.exec_driver_sql("ALTER TABLE raw_runs ALTER COLUMN id DROP NOT NULL")
    run_rows = [
        [{**r.row, "source_id": source_id, "is_stale": False}.get(c) for c in RUN_COLUMNS]
        for r in records
    ]
    energy_cols = ["run_pk", *ENERGY_COLUMNS[1:]]
    energy_rows = [
        [i, *(e[c] for c in ENERGY_COLUMNS[1:])] for i, r in enumerate(records) for e in r.energy
    ]

    def raw_copy(binary: bool, with_energy: bool) -> float:
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE raw_runs, raw_run_energy")
        t = time.perf_counter()
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            jobs = [("raw_runs", RUN_COLUMNS, run_rows)]
            if with_energy:
                jobs.append(("raw_run_energy", energy_cols, energy_rows))
            for table, cols, rows in jobs:
                fmt = " (FORMAT BINARY)" if binary else ""
                with raw.cursor() as cur:
                    oids = dict(
                        cur.execute(
                            "SELECT attname, atttypid FROM pg_attribute WHERE "
                            "attrelid = %s::regclass AND attnum > 0",
                            (table,),
                        ).fetchall()
                    )
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN{fmt}") as copy:
                        if binary:
                            copy.set_types([oids[c] for c in cols])
                        for row in rows:
                            copy.write_row(row)
        return time.perf_counter() - t

    times: dict[str, list[float]] = {
        k: [] for k in ("ledger", "text", "binary", "text_energy", "binary_energy")
    }
    for _ in range(reps):
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE runs, run_energy, run_embodied")
        t = time.perf_counter()
        with engine.begin() as conn:
            loader = Loader(conn, source_id)
            loader.stage(records)
            counts = loader.merge()
            loader.close()
        times["ledger"].append(time.perf_counter() - t)
        assert counts.loaded == len(records)
        times["text"].append(raw_copy(False, False))
        times["binary"].append(raw_copy(True, False))
        times["text_energy"].append(raw_copy(False, True))
        times["binary_energy"].append(raw_copy(True, True))
    engine.dispose()
    drop_ledger(pg, url)
    med = {k: statistics.median(v) for k, v in times.items()}
    n = len(records)
    out = {"rows": n, **{f"{k}_s": v for k, v in med.items()}}
    out |= {f"ratio_vs_{k}": med[k] / med["ledger"] for k in med if k != "ledger"}
    print(
        f"postgresql write path, {n} runs ({len(energy_rows)} energy rows): ledger stage + merge "
        f"{med['ledger']:.2f} s ({n / med['ledger']:.0f} runs/s); raw COPY of the runs rows "
        f"{med['text']:.2f} s text / {med['binary']:.2f} s binary -> ledger at "
        f"{out['ratio_vs_text']:.2f}x / {out['ratio_vs_binary']:.2f}x; with the energy rows "
        f"{med['text_energy']:.2f} / {med['binary_energy']:.2f} s -> "
        f"{out['ratio_vs_text_energy']:.2f}x / {out['ratio_vs_binary_energy']:.2f}x",
        flush=True,
    )
    return out


def big(uri: str, pg: str) -> dict[str, Any]:
    """Section 4: a full load of a big store as a CLI process, then no-change passes."""
    engine, url = fresh_ledger(pg)
    engine.dispose()
    argv = ["etl", "-q", "--mlflow-uri", uri, "--ledger-url", url]
    wall, rss = cli(argv)
    passes = [cli(argv) for _ in range(3)]
    drop_ledger(pg, url)
    out = {
        "full_load_cli_s": wall,
        "full_load_peak_rss_mib": rss / 1024,
        "nochange_cli_s": statistics.median(p[0] for p in passes),
        "nochange_peak_rss_mib": max(p[1] for p in passes) / 1024,
    }
    print(
        f"big PostgreSQL store: full load {wall:.1f} s, peak RSS {rss / 1024:.0f} MiB; no-change "
        f"pass {out['nochange_cli_s']:.2f} s CLI wall, peak RSS {out['nochange_peak_rss_mib']:.0f} "
        "MiB",
        flush=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000, help="runs of the compared stores")
    parser.add_argument("--api-runs", type=int, default=200, help="runs made through the API")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--store", type=Path, default=Path("/dev/shm/carbonledger-bench.db"))
    parser.add_argument("--sqlite-ledger", type=Path, default=Path("/tmp/cl-bench-ledger.db"))
    parser.add_argument("--pg", default=os.environ.get("CARBONLEDGER_TEST_DATABASE_URL"))
    parser.add_argument("--pg-store", default="cl_mlflow_bench", help="database of the PG store")
    parser.add_argument("--big-pg-runs", type=int, default=0, help="e.g. 1000000 (0: skip)")
    parser.add_argument("--big-pg-store", default="cl_mlflow_bench_big")
    parser.add_argument("--client-load", action="store_true", help="also a client-path load")
    parser.add_argument("--skip", nargs="*", default=[], help="sqlite, postgresql, write, big")
    parser.add_argument(
        "--hourly-only",
        action="store_true",
        help="only the hourly-matching cost: SQLite store -> SQLite ledger, with vs without",
    )
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument(
        "--before", type=Path, help="tree of an earlier carbonledger (git archive): its loads too"
    )
    parser.add_argument(
        "--loads-only", action="store_true", help="section 1 only (no no-change passes)"
    )
    parser.add_argument("--child-load", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_load:  # one full load in this process (``child_load``)
        uri, ledger, pg = args.child_load
        seconds, loaded = full_load(uri, ledger, pg or None, "store")
        print(seconds, loaded)
        return

    results: dict[str, Any] = {"argv": sys.argv[1:]}
    if args.hourly_only:
        uri = generate(args.store, args.runs, args.workers, args.api_runs)
        ledger = f"sqlite:///{args.sqlite_ledger}"
        results["hourly"] = hourly_cost(uri, ledger, None, args.reps)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2, default=str))
        return
    if "sqlite" not in args.skip:
        uri = generate(args.store, args.runs, args.workers, args.api_runs)
        ledger = f"sqlite:///{args.sqlite_ledger}"
        results["sqlite"] = compare("SQLite -> SQLite", uri, ledger, None, args)
    if args.pg:
        pg_uri = generate_pg(args.pg, args.pg_store, args.runs, args.workers, args.api_runs)
        if "postgresql" not in args.skip:
            results["postgresql"] = compare(
                "PostgreSQL -> PostgreSQL", pg_uri, args.pg, args.pg, args
            )
        if "write" not in args.skip:
            results["write_path"] = write_path(pg_uri, args.pg, args.reps)
        if args.big_pg_runs and "big" not in args.skip:
            big_uri = generate_pg(
                args.pg, args.big_pg_store, args.big_pg_runs, args.workers, args.api_runs
            )
            results["big"] = {"runs": args.big_pg_runs, **big(big_uri, args.pg)}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
