"""Child processes for the subprocess tests: ``python plugin_workers.py MODE ARGS...``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _fake_meter() -> None:
    from plugin_fakes import FakeMeter

    from carbonledger.mlflow_plugin import accounting

    meter = FakeMeter()
    accounting.meter_factory = lambda: meter


def _wait_for(path: Path, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.02)
    time.sleep(0.02)
    return path.read_text().strip()


def _barrier(folder: Path, name: str, count: int) -> None:
    (folder / f"{name}-{os.environ.get('RANK', '0')}").write_text("x")
    deadline = time.monotonic() + 60
    while len(list(folder.glob(f"{name}-*"))) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(name)
        time.sleep(0.02)


def sigterm() -> None:
    """Start a run, print its id, then wait to be killed."""
    import mlflow

    _fake_meter()
    run = mlflow.start_run()
    print(run.info.run_id, flush=True)
    time.sleep(60)


def distributed(folder_s: str) -> None:
    """One rank of a 2 nodes x 2 ranks job: rank 0 owns the run, the others attach."""
    import mlflow

    import carbonledger

    _fake_meter()
    folder = Path(folder_s)
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    if rank == 0:
        run = mlflow.start_run()
        (folder / "run_id.tmp").write_text(run.info.run_id)
        os.replace(folder / "run_id.tmp", folder / "run_id")
        _barrier(folder, "attached", world)
        time.sleep(0.5)
        _barrier(folder, "trained", world)
        _barrier(folder, "closed", world)  # the others have written their finals
        mlflow.end_run()
    else:
        os.environ["MLFLOW_RUN_ID"] = _wait_for(folder / "run_id")
        with carbonledger.attach():  # run id from MLFLOW_RUN_ID
            _barrier(folder, "attached", world)
            time.sleep(0.5)
            _barrier(folder, "trained", world)
        _barrier(folder, "closed", world)


if __name__ == "__main__":
    {"sigterm": sigterm, "distributed": distributed}[sys.argv[1]](*sys.argv[2:])
