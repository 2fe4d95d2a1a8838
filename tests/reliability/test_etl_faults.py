"""The ETL under faults: SIGKILL at 20 random points, several ETLs at once, PostgreSQL restarted.

The ledger must always equal a clean single load (same rows, same totals) or be untouched.
Each case runs on both ways of reading MLflow: its tables directly (``store``) and its client
(``client``).
Builds on tests/etl/test_etl_crash_and_locks.py (its ``etl`` subprocess and ``state`` helpers);
to afford 20 kills, the ETL processes are forked from one process that imported the ETL once.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import HERE, free_port
from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(HERE.parent / "etl"))
from store_fixtures import metered_sqlite_store  # noqa: E402
from test_etl_crash_and_locks import etl, state  # noqa: E402

N_RUNS = 1000
API_RUNS = 100  # written through MLflow's API; the rest are copies of them
N_KILLS = 20
pytestmark = [pytest.mark.slow, pytest.mark.load]


@pytest.fixture(autouse=True)
def _plugin_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONLEDGER_DISABLE", "1")


@pytest.fixture(scope="module")
def big_store() -> Iterator[tuple[str, float]]:
    """An MLflow store with ``N_RUNS`` metered runs in 3 teams (tmpfs when there is one)."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else None))
    yield metered_sqlite_store(folder, N_RUNS, api_runs=API_RUNS, teams=3)
    shutil.rmtree(folder, ignore_errors=True)


RESTART_COPIES = 20


@pytest.fixture(scope="module")
def bigger_store(big_store: tuple[str, float]) -> Iterator[tuple[str, float, int]]:
    """``big_store`` copied inside its own tables to ``RESTART_COPIES`` x ``N_RUNS`` runs.

    The direct read loads 1,000 runs in well under a second: the restart test needs a load
    that is still running when the server goes down. Copies as bench/mlflow_stores.py makes
    them (new run ids, later times, same figures).
    """
    sys.path.insert(0, str(HERE.parents[1] / "bench"))
    from mlflow_stores import clone_runs

    uri, total = big_store
    folder = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    path = folder / "mlflow.db"
    shutil.copy(uri.removeprefix("sqlite:///"), path)
    clone_runs(path, RESTART_COPIES * N_RUNS)
    yield f"sqlite:///{path}", total * RESTART_COPIES, RESTART_COPIES * N_RUNS
    shutil.rmtree(folder, ignore_errors=True)


def snapshot(engine: Engine) -> tuple[object, ...]:
    """Counts, totals and every run's content hash and figures: what a clean load produces."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT run_id, content_hash, team, facility_energy_kwh FROM runs ORDER BY run_id")
        ).all()
        energy = conn.execute(
            text(
                "SELECT r.run_id, e.component, e.energy_kwh, e.method FROM run_energy e "
                "JOIN runs r ON r.id = e.run_pk ORDER BY r.run_id, e.component"
            )
        ).all()
    return (state(engine), [tuple(r) for r in rows], [tuple(r) for r in energy])


class Forker:
    """``reliability_workers.py etl_forker``: forks ``carbonledger etl`` children."""

    def __init__(self, out: Path, env: dict[str, str]) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "reliability_workers.py"), "etl_forker", str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def start(self, tag: str, n: int, *args: str) -> list[int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"go {tag} {n} {' '.join(args)}\n")
        self.proc.stdin.flush()
        return [int(p) for p in self.proc.stdout.readline().split()]

    def wait(self) -> list[int]:
        assert self.proc.stdout is not None
        return [int(rc) for rc in self.proc.stdout.readline().split()[1:]]

    def log(self, tag: str, i: int = 0) -> str:
        return (self.out / f"{tag}-{i}.log").read_text()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


@pytest.fixture(params=["store", "client"])
def forker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Forker]:
    """A forker whose ETLs read MLflow's tables (``store``) or through its client."""
    env = {**os.environ, "CARBONLEDGER_DISABLE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    f = Forker(tmp_path, {**env, "CARBONLEDGER_ETL_READ": request.param})
    yield f
    f.close()


def _wait_for(path: Path, needle: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and needle in path.read_text()):
        assert time.monotonic() < deadline, f"{needle!r} never appeared in {path}"
        time.sleep(0.005)


@pytest.mark.postgres
@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_sigkill_at_20_random_points_of_a_large_load_always_leaves_a_clean_ledger(
    ledger: Engine, ledger_url: str, big_store: tuple[str, float], forker: Forker
) -> None:
    """Injected: ``carbonledger etl`` of 1,000 runs SIGKILLed at 20 points drawn by a seeded RNG
    over the load's measured duration (from taking the load lock to committing, measured again
    whenever a load finishes before its kill point); while the
    ledger is empty each round is a first load, once a load committed the rounds are ``--full``
    reloads. Checked: after every kill the ledger is either exactly as before or exactly a
    clean single load (same run rows, content hashes, per-component energy, totals, one cursor);
    the final load converges; at least a third of the kills landed mid-load."""
    uri, total = big_store
    args = ("--mlflow-uri", uri, "--ledger-url", ledger_url, "-q", "-v")
    empty = snapshot(ledger)
    # The clean single load: its snapshot is the reference, its duration the kill window.
    forker.start("clean", 1, *args)
    # The kill window is what the docstring says: from taking the lock to committing, timed on
    # the clean load's own log as the rounds below see it (not the fork and the exit around it).
    _wait_for(forker.out / "clean-0.log", "load lock held")
    t0 = time.monotonic()
    _wait_for(forker.out / "clean-0.log", "etl: committed")
    load_s = time.monotonic() - t0
    assert forker.wait() == [0], forker.log("clean")
    clean = snapshot(ledger)
    assert clean[0] == (N_RUNS, 3 * N_RUNS, 1, pytest.approx(total))
    with ledger.begin() as conn:  # back to empty for the first-load rounds
        for table in (
            "rollup_team_month", "rollup_model_month", "rollup_inference_daily", "rollup_state",
            "run_metrics", "run_energy", "quarantine", "runs", "etl_state",
        ):  # fmt: skip
            conn.execute(text(f"DELETE FROM {table}"))
    assert snapshot(ledger) == empty

    rng = random.Random(20261123)
    killed_mid_load = 0
    for i in range(N_KILLS):
        before = snapshot(ledger)
        full = ("--full",) if before != empty else ()
        [pid] = forker.start(f"k{i}", 1, *args, *full)
        _wait_for(forker.out / f"k{i}-0.log", "load lock held")
        locked_at = time.monotonic()
        time.sleep(rng.uniform(0.0, load_s))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the load finished (and was reaped) before the kill point
        rc = forker.wait()
        after = snapshot(ledger)
        if "committed" in forker.log(f"k{i}") and rc == [0]:
            assert after == clean, f"kill {i}: a finished load differs from the clean load"
            # It beat its kill point: the machine is faster now than during the clean load
            # (a neighbouring test finished). Aim the next kills inside the loads it now runs.
            load_s = min(load_s, time.monotonic() - locked_at)
        else:
            assert rc == [-signal.SIGKILL]
            assert after in (before, clean), f"kill {i}: partial load"
            killed_mid_load += after == before
    assert killed_mid_load >= N_KILLS // 3

    forker.start("last", 1, *args)
    assert forker.wait() == [0]
    assert snapshot(ledger) == clean


@pytest.mark.parametrize("read", ["store", "client"])
@pytest.mark.parametrize("n_etls", [4])  # two at once: tests/etl/test_etl_crash_and_locks.py
def test_several_etls_at_once_equal_one_clean_load(
    n_etls: int,
    read: str,
    ledger: Engine,
    ledger_url: str,
    big_store: tuple[str, float],
    tmp_path: Path,
) -> None:
    """Injected: ``n_etls`` ETL processes started at the same instant on an empty ledger
    (SQLite and PostgreSQL; MLflow's tables read directly and through its client). Checked:
    all exit 0, exactly one loads the runs and the others find nothing new, and the ledger
    equals a clean single load (counts, totals, one cursor)."""
    env = {**os.environ, "CARBONLEDGER_DISABLE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    forker = Forker(tmp_path, {**env, "CARBONLEDGER_ETL_READ": read})
    try:
        _several_at_once(n_etls, ledger, ledger_url, big_store, forker)
    finally:
        forker.close()


def _several_at_once(
    n_etls: int, ledger: Engine, ledger_url: str, big_store: tuple[str, float], forker: Forker
) -> None:
    uri, total = big_store
    forker.start("par", n_etls, "--mlflow-uri", uri, "--ledger-url", ledger_url)
    rcs = forker.wait()
    logs = [forker.log("par", i) for i in range(n_etls)]
    assert rcs == [0] * n_etls, logs
    loaded = sorted(int(log.split("loaded ")[1].split(",")[0]) for log in logs)
    assert loaded == [0] * (n_etls - 1) + [N_RUNS]
    assert state(ledger) == (N_RUNS, 3 * N_RUNS, 1, pytest.approx(total))


# --- a private PostgreSQL, restarted during a load -------------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temp folder on a free port (never the shared one)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0  # initdb refuses root

    def _cmd(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        full = ["runuser", "-u", "postgres", "--", *cmd] if self.as_postgres else list(cmd)
        return subprocess.run(full, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.folder, "postgres")
        res = self._cmd(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E",
            "UTF8", "--no-sync",
        )  # fmt: skip
        if res.returncode != 0:
            pytest.skip(f"cannot initdb a private PostgreSQL here: {res.stderr[-500:]}")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        res = self._cmd(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
            str(self.folder / "pg.log"), "-w", "start",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr + res.stdout

    def stop(self, mode: str = "fast") -> None:
        self._cmd(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL 15 binaries in {PG_BIN}")
    folder = Path(tempfile.mkdtemp(prefix="cl_pg_"))
    pg = PrivatePostgres(folder)
    pg.init()
    pg.start()
    yield pg
    pg.stop("immediate")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.postgres
@pytest.mark.restart
@pytest.mark.parametrize("read", ["store", "client"])
def test_postgres_restarted_during_a_load_fails_cleanly_and_the_next_load_is_clean(
    read: str, private_pg: PrivatePostgres, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Injected: a private PostgreSQL (initdb in a temp folder, own port) is restarted with
    ``pg_ctl -m fast`` (connections terminated) while ``carbonledger etl`` loads 20,000 runs
    read directly, or 1,000 through MLflow's client (which takes longer). Checked: the ETL exits
    non-zero with a one-line ledger error (no traceback), the ledger holds nothing of the
    interrupted load, and the next load equals a clean single load."""
    from carbonledger.ledger import create_ledger_engine, migrate

    if read == "store":
        uri, total, n_runs = request.getfixturevalue("bigger_store")
    else:
        uri, total = request.getfixturevalue("big_store")
        n_runs = N_RUNS
    engine = create_ledger_engine(private_pg.url)
    migrate.upgrade(engine)
    engine.dispose()
    proc = etl(uri, private_pg.url, read)
    assert proc.stderr is not None
    while "load lock held" not in (line := proc.stderr.readline()):
        assert line, "the ETL ended before it took the load lock"
    time.sleep(0.3)
    private_pg.stop("fast")
    private_pg.start()
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.fail("the load finished before the restart: make RESTART_COPIES larger")
    assert "Traceback" not in err, err[-3000:]
    engine = create_engine(private_pg.url)
    try:
        assert state(engine)[:3] == (0, 0, 0)
        again = etl(uri, private_pg.url, read)
        _, err2 = again.communicate(timeout=300)
        assert again.returncode == 0, err2
        assert state(engine) == (n_runs, 3 * n_runs, 1, pytest.approx(total))
    finally:
        engine.dispose()
