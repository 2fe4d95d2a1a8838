"""The tracking server is killed and restarted while 20 training processes flush."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_support import HERE, MlflowServer, child_env

N_PROCS = 20
FLUSH_S = 0.4
FLUSH_TIMEOUT_S = 2.0
POWER_W = 366.0  # FakeMeter: 300 W GPU + 60 W CPU + 6 W RAM

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.restart, pytest.mark.load]


def _wait(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_server_killed_and_restarted_under_20_flushing_runs_loses_nothing(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    """Injected: 20 real training processes (each ``import mlflow`` + the plugin, flushing every
    0.4 s, flush timeout 2 s) against one ``mlflow server``; the server is SIGKILLed
    mid-training, stays down for its whole restart (~15 s), and comes back on the same port and
    store.

    Checked: every process exits 0; no training step was delayed by more than the flush timeout
    and the plugin's share of ``end_run`` (its final flush, which waits for an in-flight
    periodic flush only within its own budget) stayed within one flush timeout; every run is
    FINISHED; ``carbonledger journal flush`` sends whatever the exited processes left (a final
    flush that outlived its timeout on a loaded machine included), leaving the journal empty;
    then every run has ``carbon.status=complete`` and final totals equal to power x duration
    (the FakeMeter's exact energy), and the metric history holds points flushed during the
    outage (they came back through the journal).
    """
    from mlflow import MlflowClient

    env = child_env(
        tmp_path,
        MLFLOW_TRACKING_URI=mlflow_server.url,
        CARBONLEDGER_FLUSH_S=str(FLUSH_S),
        CARBONLEDGER_FLUSH_TIMEOUT_S=str(FLUSH_TIMEOUT_S),
        CARBONLEDGER_INTENSITY_G_PER_KWH="400",
        CARBONLEDGER_PUE="1.2",
    )
    (tmp_path / "_powercap_empty").mkdir(exist_ok=True)
    names = [f"w{i:02d}" for i in range(N_PROCS)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "reliability_workers.py"), "train", str(tmp_path), n],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in names
    ]
    try:
        _wait(
            lambda: (
                len(list(tmp_path.glob("started-*"))) == N_PROCS
                or any(p.poll() is not None for p in procs)
            ),
            240,
            "20 runs to start",
        )
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(3 * FLUSH_S)  # a few flushes reach the server
        killed_ms = int(time.time() * 1000)
        mlflow_server.kill()
        time.sleep(4 * FLUSH_S)  # flushes fail and are journaled
        mlflow_server.start()
        restarted_ms = int(time.time() * 1000)
        time.sleep(8 * FLUSH_S)  # successful flushes, then the journal replays
        (tmp_path / "stop").write_text("x")
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    failed = [
        (n, p.returncode, o[1][-3000:]) for n, p, o in zip(names, procs, outputs, strict=True)
    ]
    assert all(rc == 0 for _, rc, _ in failed), [f for f in failed if f[1] != 0]

    client = MlflowClient(mlflow_server.url)
    results = [json.loads((tmp_path / f"result-{n}.json").read_text()) for n in names]
    complete_before_flush = 0
    for result in results:
        assert result["longest_step_overrun_s"] < FLUSH_TIMEOUT_S, result
        # The final flush waits for the run's in-flight periodic flush only within its own
        # budget: the plugin's share of end_run stays within one flush timeout.
        assert result["plugin_end_s"] < FLUSH_TIMEOUT_S + 0.5, result
        run = client.get_run(result["run_id"])
        assert run.info.status == "FINISHED"
        complete_before_flush += run.data.tags.get("carbon.status") == "complete"
    # On a loaded machine a final flush can outlive its timeout: it is then journaled, and
    # `carbonledger journal flush` (what an operator or the next plugin process runs) must send
    # everything the exited processes left, leaving the journal empty.
    flush = subprocess.run(
        [str(Path(sys.executable).with_name("carbonledger")), "journal", "flush"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert flush.returncode == 0, flush.stdout + flush.stderr
    assert "; 0 left" in flush.stdout
    leftover = [p for p in (tmp_path / "_journal").glob("journal-*.jsonl") if p.stat().st_size]
    assert leftover == [], "journal entries were never replayed"
    print(f"{complete_before_flush}/{N_PROCS} runs complete before `journal flush`")

    outage_points = 0
    for result in results:
        run = client.get_run(result["run_id"])
        assert run.data.tags["carbon.status"] == "complete", result
        metrics = run.data.metrics
        duration_s = metrics["carbon/duration_s"]
        assert duration_s * 1000 >= restarted_ms - killed_ms  # the run spanned the outage
        assert metrics["carbon/energy_kwh"] == pytest.approx(POWER_W * duration_s / 3.6e6, 0.02)
        assert metrics["carbon/co2e_kg"] == pytest.approx(
            metrics["carbon/energy_kwh"] * 1.2 * 0.4, 1e-6
        )
        history = client.get_metric_history(result["run_id"], "carbon/energy_kwh")
        outage_points += sum(killed_ms <= m.timestamp < restarted_ms for m in history)
        values = [m.value for m in sorted(history, key=lambda m: m.timestamp)]
        assert values == sorted(values), "cumulative energy went down"
    assert outage_points >= N_PROCS, "flushes from the outage were lost"
