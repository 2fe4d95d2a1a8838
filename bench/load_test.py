"""Load test (docs/reliability.md, section "Load"); run by hand, not part of the suite.

1. One real ``mlflow server --workers 1`` on a loopback port (its store: see below).
2. ``--processes`` concurrent training processes (default 50), each importing MLflow with the
   plugin (real CPU/RAM estimate meter, a flush every 2 s) and logging a step every 0.5 s for
   ``--run-s`` seconds. Checked: every process exits 0, every run is FINISHED with
   ``carbon.status=complete`` and energy metrics, and one ETL pass loads every run once.
3. A writer adding metered runs at ``--rate`` runs a minute for ``--minutes`` while
   ``carbonledger etl`` runs in a loop (a new CLI process each pass, as
   cron or a systemd timer would). Lag of a run = end of the ETL pass that first shows it in
   the ledger minus the run's end time. Reported: runs lost, duplicates, lag p50/p95/max.
   ``--write-via server`` sends the writer's runs through the server's REST API (three
   requests a run to its one worker); ``--write-via store`` (default) writes them straight into
   the server's backend store, as a fleet of clients would load it, so the figure is the ETL's
   (which always reads through the server's REST API), not the write capacity of one worker.
   With ``--ledger-url`` (PostgreSQL) the server's backend store is a PostgreSQL database of
   its own (created and dropped), else a SQLite file.

Usage:
    .venv/bin/python bench/load_test.py \
        --ledger-url postgresql+psycopg://postgres@127.0.0.1:5432/test  # own schema + store
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, store_uri: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ, CARBONLEDGER_DISABLE="1", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    log = open(root / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1",
            "--backend-store-uri", store_uri,
            "--default-artifact-root", str(root / "artifacts"),
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("mlflow server did not start")


TRAIN = textwrap.dedent(
    """
    import sys, time, mlflow
    t0 = time.monotonic()
    with mlflow.start_run(run_name=f"load-{sys.argv[1]}"):
        step = 0
        while time.monotonic() - t0 < float(sys.argv[2]):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            step += 1
            time.sleep(0.5)
    """
)


def phase_training(url: str, root: Path, processes: int, run_s: float) -> dict[str, object]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    exp = client.create_experiment(f"load-train-{uuid.uuid4().hex[:6]}")
    script = root / "train.py"
    script.write_text(TRAIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLEDGER_")}
    env.update(
        MLFLOW_TRACKING_URI=url,
        MLFLOW_EXPERIMENT_ID=exp,
        CARBONLEDGER_FLUSH_S="2",
        CARBONLEDGER_CPU_METHOD="estimate",
        CARBONLEDGER_INTENSITY_G_PER_KWH="400",
        CARBONLEDGER_PUE="1.2",
        CARBONLEDGER_JOURNAL_PATH=str(root / "journal"),
    )
    t0 = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), str(run_s)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(processes)
    ]
    codes = [p.wait(600) for p in procs]
    wall = time.monotonic() - t0
    runs = client.search_runs([exp], max_results=1000)
    complete = [
        r
        for r in runs
        if r.info.status == "FINISHED"
        and r.data.tags.get("carbon.status") == "complete"
        and r.data.metrics.get("carbon/energy_kwh", 0) > 0
    ]
    failed = [p.stderr.read().decode()[-500:] for p, c in zip(procs, codes, strict=True) if c]
    return {
        "experiment": exp,
        "processes": processes,
        "exit_0": codes.count(0),
        "runs": len(runs),
        "finished_complete_metered": len(complete),
        "wall_s": round(wall, 1),
        "failures": failed[:3],
    }


def etl_once(url: str, ledger_url: str) -> float:
    """One ``carbonledger etl`` CLI pass; returns its wall time."""
    t0 = time.monotonic()
    out = subprocess.run(
        [str(Path(sys.executable).with_name("carbonledger")), "etl", "--quiet", "--mlflow-uri", url,
         "--ledger-url", ledger_url, "--lock-timeout", "600"],
        capture_output=True, text=True, env=dict(os.environ, CARBONLEDGER_DISABLE="1"),
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return time.monotonic() - t0


def ledger_run_ids(engine: object, experiment_ids: list[str]) -> dict[str, int]:
    from sqlalchemy import bindparam, text

    query = text(
        "SELECT run_id, COUNT(*) FROM runs WHERE experiment_id IN :e GROUP BY run_id"
    ).bindparams(bindparam("e", expanding=True))
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(query, {"e": list(experiment_ids)}).all()
    return {run_id: n for run_id, n in rows}


def phase_etl_lag(
    url: str,
    ledger_url: str,
    engine: object,
    rate: float,
    minutes: float,
    writers: int,
    write_uri: str,
) -> dict[str, object]:
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    exp = MlflowClient(url).create_experiment(f"load-etl-{uuid.uuid4().hex[:6]}")
    total = int(rate * minutes)
    ended: dict[str, int] = {}  # run_id -> end_time ms (as MLflow stores it)
    lock = threading.Lock()
    next_slot = iter(range(total))
    t_start = time.time()
    behind = []

    def writer() -> None:
        client = MlflowClient(write_uri)
        while True:
            with lock:
                k = next(next_slot, None)
            if k is None:
                return
            due = t_start + k * 60.0 / rate
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            else:
                behind.append(-wait)
            now_ms = int(time.time() * 1000)
            run = client.create_run(exp, start_time=now_ms - 5000)
            rid = run.info.run_id
            energy = 0.001 + (k % 7) * 1e-4
            metrics = {
                "carbon/cpu_energy_kwh": energy, "carbon/energy_kwh": energy, "carbon/pue": 1.2,
                "carbon/facility_energy_kwh": energy * 1.2, "carbon/intensity_g_per_kwh": 400.0,
                "carbon/co2e_kg": energy * 0.48, "carbon/duration_s": 5.0,
                "carbon/heartbeat_ms": float(now_ms),
            }  # fmt: skip
            client.log_batch(
                rid,
                metrics=[Metric(m, v, now_ms, 0) for m, v in metrics.items()],
                tags=[RunTag("carbon.team", f"team-{k % 5}"),
                      RunTag("carbon.status", "complete"),
                      RunTag("carbon.methods", "cpu=cpu-tdp-estimate"),
                      RunTag("carbon.grid_zone", "DE")],
            )  # fmt: skip
            end_ms = int(time.time() * 1000)
            client.set_terminated(rid, status="FINISHED", end_time=end_ms)
            with lock:
                ended[rid] = end_ms

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(writers)]
    for t in threads:
        t.start()
    first_seen: dict[str, float] = {}
    passes: list[float] = []

    def one_pass() -> None:
        passes.append(etl_once(url, ledger_url))
        done_ms = time.time() * 1000
        for rid in ledger_run_ids(engine, [exp]):
            first_seen.setdefault(rid, done_ms)

    while any(t.is_alive() for t in threads):
        one_pass()
    write_s = time.time() - t_start
    one_pass()  # the pass after the writer stopped
    counts = ledger_run_ids(engine, [exp])
    lags = sorted((first_seen[r] - ended[r]) / 1000.0 for r in ended if r in first_seen)
    q = statistics.quantiles(lags, n=100) if len(lags) >= 2 else [float("nan")] * 99
    return {
        "runs_written": len(ended),
        "written_in_s": round(write_s, 1),
        "achieved_rate_per_min": round(len(ended) / write_s * 60, 1),
        "writer_max_behind_s": round(max(behind, default=0.0), 2),
        "runs_in_ledger": len(counts),
        "runs_lost": len(set(ended) - set(counts)),
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "etl_passes": len(passes),
        "etl_pass_s_median": round(statistics.median(passes), 2),
        "etl_pass_s_max": round(max(passes), 2),
        "lag_s_p50": round(q[49], 2),
        "lag_s_p95": round(q[94], 2),
        "lag_s_max": round(lags[-1], 2) if lags else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--run-s", type=float, default=6.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="new runs a minute")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--writers", type=int, default=3, help="writer threads")
    parser.add_argument("--ledger-url", default=None, help="PostgreSQL base URL (own schema)")
    parser.add_argument(
        "--write-via", choices=("store", "server"), default="store", help="how the writer adds runs"
    )
    args = parser.parse_args()

    from sqlalchemy.engine import make_url

    from carbonledger.ledger import create_ledger_engine, migrate

    root = Path(tempfile.mkdtemp(prefix="cl-load-"))
    schema = None
    if args.ledger_url:
        base = make_url(args.ledger_url)
        schema = f"cl_load_{uuid.uuid4().hex[:8]}"
        admin = create_ledger_engine(base)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        ledger_url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        ledger = ledger_url.render_as_string(hide_password=False)
    else:
        ledger = f"sqlite:///{root / 'ledger.db'}"
    engine = create_ledger_engine(ledger)
    migrate.upgrade(engine)
    store_db = None
    if args.ledger_url:
        store_db = f"cl_load_mlflow_{uuid.uuid4().hex[:8]}"
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {store_db}")
        store_uri = base.set(drivername="postgresql+psycopg", database=store_db)
        store = store_uri.render_as_string(hide_password=False)
    else:
        store = f"sqlite:///{root / 'mlflow.db'}"
    proc, url = start_server(root, store)
    write_uri = store if args.write_via == "store" else url
    results: dict[str, object] = {
        "ledger": engine.dialect.name,
        "tracking_store": store.split(":", 1)[0],
        "write_via": args.write_via,
        "cpus": os.cpu_count(),
    }
    try:
        t0 = time.monotonic()
        results["training"] = train = phase_training(url, root, args.processes, args.run_s)
        etl_once(url, ledger)
        counts = ledger_run_ids(engine, [str(train["experiment"])])
        train.update(ledger_runs=len(counts), ledger_duplicates=sum(n - 1 for n in counts.values()))
        results["etl_lag"] = phase_etl_lag(
            url, ledger, engine, args.rate, args.minutes, args.writers, write_uri
        )
        results["total_s"] = round(time.monotonic() - t0, 1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        engine.dispose()
        if schema:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        if store_db:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {store_db} WITH (FORCE)")
    print(json.dumps(results, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
