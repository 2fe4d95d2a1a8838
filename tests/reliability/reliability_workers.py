"""Child processes of the reliability suite: ``python reliability_workers.py MODE ARGS...``."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _fake_meter() -> None:
    from plugin_fakes import FakeMeter

    from carbonledger.mlflow_plugin import accounting

    meter = FakeMeter()
    accounting.meter_factory = lambda: meter


def train(folder_s: str, name: str) -> None:
    """A metered training run that steps every 20 ms until ``folder/stop`` exists.

    Writes ``folder/started-<name>`` once its run exists, and ``folder/result-<name>.json``
    with the run id, the longest step, how long ``end_run`` took and the plugin's share of it
    (its final flush).
    """
    import mlflow

    from carbonledger.mlflow_plugin import registry

    _fake_meter()
    plugin_end_s = [0.0]
    orig_end = registry.Registry.end

    def timed_end(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.monotonic()
        try:
            return orig_end(self, *args, **kwargs)
        finally:
            plugin_end_s[0] += time.monotonic() - t0

    registry.Registry.end = timed_end  # type: ignore[method-assign]
    folder = Path(folder_s)
    run = mlflow.start_run(run_name=name)
    (folder / f"started-{name}").write_text(run.info.run_id)
    step_s = 0.02
    longest_s = 0.0
    steps = 0
    while not (folder / "stop").exists():
        t0 = time.monotonic()
        time.sleep(step_s)  # one "training step"
        longest_s = max(longest_s, time.monotonic() - t0 - step_s)
        steps += 1
    t0 = time.monotonic()
    mlflow.end_run()
    end_s = time.monotonic() - t0
    out = {"run_id": run.info.run_id, "longest_step_overrun_s": longest_s, "end_run_s": end_s}
    out["steps"] = steps
    out["plugin_end_s"] = plugin_end_s[0]
    (folder / f"result-{name}.json").write_text(json.dumps(out))


def train_short(seconds_s: str) -> None:
    """A metered run of a fixed length on the real meter (simulated hardware from the env)."""
    import mlflow

    with mlflow.start_run() as run:
        time.sleep(float(seconds_s))
    print(run.info.run_id, flush=True)


def etl_forker(out_s: str) -> None:
    """Import the ETL once, then fork ``carbonledger etl`` children on demand (no import cost).

    Reads commands on stdin: ``go TAG N ARGS...`` forks N children running
    ``carbonledger etl ARGS...`` (stderr to ``out/TAG-i.log``), prints their pids on one line,
    waits for them and prints ``TAG rc...`` (a negative rc is the killing signal).
    """
    from carbonledger.cli import main  # noqa: F401 - everything the ETL imports, imported now
    from carbonledger.etl import pipeline  # noqa: F401

    if os.environ.get("CARBONLEDGER_ETL_READ") == "client":  # the client path's import cost
        import mlflow.tracking  # noqa: F401

    out = Path(out_s)
    for line in sys.stdin:
        _, tag, n_s, *args = line.split()
        pids = []
        for i in range(int(n_s)):
            pid = os.fork()
            if pid == 0:  # child: the ETL command, stderr to its own file
                fd = os.open(out / f"{tag}-{i}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(fd, 2)
                os.dup2(fd, 1)
                sys.argv = ["carbonledger", "etl", *args]
                code = 1
                try:
                    main()
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            pids.append(pid)
        print(" ".join(map(str, pids)), flush=True)
        rcs = []
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            rcs.append(os.waitstatus_to_exitcode(status))
        print(tag, *rcs, flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    modes = {"train": train, "train_short": train_short, "etl_forker": etl_forker}
    modes[sys.argv[1]](*sys.argv[2:])
