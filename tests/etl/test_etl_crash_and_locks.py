"""A load killed with SIGKILL leaves the ledger as it was; two ETLs at once never duplicate.

Real `carbonledger etl` subprocesses against a real MLflow store and both ledger engines.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from store_fixtures import metered_sqlite_store

N_RUNS = 600
API_RUNS = 60  # written through MLflow's API; the rest are copies of them
CLI = str(Path(sys.executable).with_name("carbonledger"))
pytestmark = [pytest.mark.slow, pytest.mark.load]


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float]]:
    """An MLflow store with ``N_RUNS`` metered runs; yields (uri, total facility kWh)."""
    # tmpfs when there is one: MLflow's SQLite store fsyncs each write (4x slower on disk)
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path_factory.mktemp("s")
    yield metered_sqlite_store(folder, N_RUNS, api_runs=API_RUNS)
    shutil.rmtree(folder, ignore_errors=True)


def etl(uri: str, ledger_url: str, read: str = "auto") -> subprocess.Popen[str]:
    env = {**os.environ, "CARBONLEDGER_DISABLE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["CARBONLEDGER_ETL_READ"] = read
    return subprocess.Popen(
        [CLI, "etl", "--mlflow-uri", uri, "--ledger-url", ledger_url, "-q", "-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def state(engine: Engine) -> tuple[int, int, int, float]:
    with engine.connect() as conn:
        runs, facility = conn.execute(
            text("SELECT count(*), COALESCE(sum(facility_energy_kwh), 0) FROM runs")
        ).one()
        energy = conn.execute(text("SELECT count(*) FROM run_energy")).scalar_one()
        cursors = conn.execute(text("SELECT count(*) FROM etl_state")).scalar_one()
    return int(runs), int(energy), int(cursors), float(facility)


def load_seconds(uri: str, folder: Path, read: str) -> float:
    """How long a clean load takes from the load lock to its commit (a scratch SQLite ledger)."""
    from cl_ledger_fixtures import TEST_FACTORS

    from carbonledger.ledger import create_ledger_engine, migrate, seed_emission_factors

    engine = create_ledger_engine(f"sqlite:///{folder / 'scratch.db'}")
    migrate.upgrade(engine)
    with engine.begin() as conn:
        seed_emission_factors(conn, factors=TEST_FACTORS)
    proc = etl(uri, str(engine.url), read)
    assert proc.stderr is not None
    while "load lock held" not in proc.stderr.readline():
        pass
    started = time.monotonic()
    while "etl: committing" not in proc.stderr.readline():
        pass
    elapsed = time.monotonic() - started
    proc.communicate(timeout=300)
    engine.dispose()
    return elapsed


@pytest.mark.parametrize("read", ["store", "client"])
def test_sigkill_at_any_point_leaves_the_ledger_as_it_was_and_the_next_load_converges(
    ledger: Engine, ledger_url: str, big_store: tuple[str, float], read: str, tmp_path: Path
) -> None:
    """Kill points are fractions of a clean load's duration (the direct read is ~5x faster)."""
    uri, total = big_store
    complete = (N_RUNS, 3 * N_RUNS, 1, pytest.approx(total))
    killed_mid_load = 0
    load_s = load_seconds(uri, tmp_path, read)
    for delay_s in (f * load_s for f in (0.0, 0.1, 0.25, 0.45, 0.7, 1.5)):
        before = state(ledger)
        proc = etl(uri, ledger_url, read)
        assert proc.stderr is not None
        while "load lock held" not in (line := proc.stderr.readline()):
            assert line, "the ETL ended before it took the load lock"
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
        rest = proc.stderr.read()
        proc.wait()
        after = state(ledger)
        if "committed" in rest:
            assert after == complete
        else:
            assert after == before, f"partial load after a kill {delay_s}s into the load"
            killed_mid_load += 1
    assert killed_mid_load >= 3

    proc = etl(uri, ledger_url, read)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert state(ledger) == (N_RUNS, 3 * N_RUNS, 1, pytest.approx(total))
    again = etl(uri, ledger_url, read)
    out, _ = again.communicate(timeout=300)
    # Nothing new: runs re-read inside the clock-skew lookback merge as unchanged.
    assert "loaded 0, updated 0, unchanged " in out


@pytest.mark.parametrize("read", ["store", "client"])
def test_two_etls_at_once_load_each_run_exactly_once(
    ledger: Engine, ledger_url: str, big_store: tuple[str, float], read: str
) -> None:
    uri, total = big_store
    procs = [etl(uri, ledger_url, read), etl(uri, ledger_url, read)]
    outputs = [p.communicate(timeout=300) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
    loaded = [int(o[0].split("loaded ")[1].split(",")[0]) for o in outputs]
    assert sorted(loaded) == [0, N_RUNS]
    assert state(ledger) == (N_RUNS, 3 * N_RUNS, 1, pytest.approx(total))
