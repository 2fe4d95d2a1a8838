"""Real processes: import-time behaviour, a broken plugin, SIGTERM, and 2 nodes x 2 ranks."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from plugin_fakes import TcpProxy
from plugin_support import INTENSITY, PUE, read_run, subprocess_env

from carbonledger.measure.base import J_PER_KWH

HERE = Path(__file__).resolve().parent
WORKERS = HERE / "plugin_workers.py"

pytestmark = pytest.mark.slow


def _python(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_import_mlflow_starts_no_thread_no_nvml_and_installs_the_hooks(tmp_path: Path) -> None:
    code = (
        "import sys, threading, mlflow\n"
        "from carbonledger.mlflow_plugin import hooks\n"
        "assert hooks.installed(), 'hooks not installed'\n"
        "assert [t.name for t in threading.enumerate()] == ['MainThread'], threading.enumerate()\n"
        "assert 'pynvml' not in sys.modules, 'NVML imported at import time'\n"
        "assert 'carbonledger.measure.nvml' not in sys.modules\n"
        "print('ok')\n"
    )
    done = _python(code, subprocess_env(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
    # The plugin's own share of `import mlflow`: every carbonledger module it imports.
    own_us = sum(
        int(m.group(1))
        for m in re.finditer(r"import time:\s+(\d+) \|\s+\d+ \|\s+carbonledger", done.stderr)
    )
    assert 0 < own_us < 50_000, f"carbonledger adds {own_us} us to import mlflow"


def test_disable_env_installs_nothing(tmp_path: Path) -> None:
    code = (
        "import threading, mlflow\n"
        "from carbonledger.mlflow_plugin import hooks\n"
        "assert not hooks.installed()\n"
        "mlflow.set_tracking_uri('sqlite:///' + __import__('sys').argv[1])\n"
        "with mlflow.start_run() as r: pass\n"
        "assert not any(t.name.startswith('carbonledger') for t in threading.enumerate())\n"
        "tags = mlflow.get_run(r.info.run_id).data.tags\n"
        "assert not any(k.startswith('carbon') for k in tags), tags\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.db")],
        env=subprocess_env(tmp_path, CARBONLEDGER_DISABLE="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_a_broken_plugin_degrades_to_one_warning(tmp_path: Path) -> None:
    code = (
        "import warnings\n"
        "from carbonledger.mlflow_plugin import hooks\n"
        "def boom(): raise RuntimeError('forced failure')\n"
        "hooks.install_when_ready = boom\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import mlflow\n"
        "ours = [str(w.message) for w in caught if 'carbonledger' in str(w.message)]\n"
        "assert len(ours) == 1 and 'forced failure' in ours[0], ours\n"
        "mlflow.set_tracking_uri('sqlite:///' + __import__('sys').argv[1])\n"
        "with mlflow.start_run() as r: mlflow.log_metric('x', 1.0)\n"
        "print(r.info.status if False else 'ran')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.db")],
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ran")


def test_sigterm_gets_a_final_flush_and_killed_status(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    env = subprocess_env(
        tmp_path,
        MLFLOW_TRACKING_URI=uri,
        CARBONLEDGER_INTENSITY_G_PER_KWH=str(INTENSITY),
        CARBONLEDGER_PUE=str(PUE),
    )
    proc = subprocess.Popen(
        [sys.executable, str(WORKERS), "sigterm"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    assert proc.returncode == -signal.SIGTERM  # the default action still happens
    stored = read_run(uri, run_id)
    assert stored.info.status == "KILLED"
    assert stored.data.tags["carbon.status"] == "complete"
    assert stored.data.metrics["carbon/energy_kwh"] > 0


@pytest.mark.server
def test_sigterm_with_the_server_down_exits_fast_and_journals_killed(
    tmp_path: Path, mlflow_server: str
) -> None:
    from carbonledger.mlflow_plugin import journal, transport

    proxy = TcpProxy(urllib.parse.urlparse(mlflow_server).port or 0)
    try:
        env = subprocess_env(
            tmp_path,
            MLFLOW_TRACKING_URI=proxy.url,
            CARBONLEDGER_FLUSH_TIMEOUT_S="0.5",
            CARBONLEDGER_INTENSITY_G_PER_KWH=str(INTENSITY),
            CARBONLEDGER_PUE=str(PUE),
        )
        proc = subprocess.Popen(
            [sys.executable, str(WORKERS), "sigterm"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.stderr.read() if proc.stderr else ""
        proxy.set_mode("down")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("SIGTERM with the server down hung (MLflow retries in the handler?)")
        assert time.monotonic() - t0 < 5.0
        assert proc.returncode == -signal.SIGTERM
        pending = [e for _, e in journal.entries() if e.run_id == run_id]
        assert [e.status for e in pending][-1] == "KILLED"
        assert any(e.tags.get("carbon.status") == "complete" for e in pending)
        proxy.set_mode("up")
        sent, left = journal.replay(transport.send)
        assert left == 0 and sent == len(pending)
        stored = read_run(proxy.url, run_id)
        assert stored.info.status == "KILLED"
        assert stored.data.tags["carbon.status"] == "complete"
        assert stored.data.metrics["carbon/energy_kwh"] > 0
    finally:
        proxy.close()


def test_two_nodes_two_ranks_elect_one_meter_per_node(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    import mlflow

    mlflow.MlflowClient(uri).search_experiments()  # create the schema once, before 4 writers
    sync = tmp_path / "sync"
    sync.mkdir()
    procs = []
    for rank in range(4):
        env = subprocess_env(
            tmp_path,
            MLFLOW_TRACKING_URI=uri,
            RANK=str(rank),
            LOCAL_RANK=str(rank % 2),
            WORLD_SIZE="4",
            CARBONLEDGER_NODE_ID="node-a" if rank < 2 else "node-b",
            CARBONLEDGER_INTENSITY_G_PER_KWH=str(INTENSITY),
            CARBONLEDGER_PUE=str(PUE),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKERS), "distributed", str(sync)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
    run_id = (sync / "run_id").read_text().strip()
    stored = read_run(uri, run_id)
    m, tags = stored.data.metrics, stored.data.tags
    assert stored.info.status == "FINISHED"
    assert tags["carbon.node_count"] == "2"
    power_w = 366.0  # every process's fake meter draws this; a second meter would double it
    for node in ("node-a", "node-b"):
        e = m[f"carbon/node/{node}/energy_kwh"]
        d = m[f"carbon/node/{node}/duration_s"]
        assert d > 0.5
        assert e == pytest.approx(power_w * d / J_PER_KWH, rel=1e-6)
        assert m[f"carbon/node/{node}/avg_power_w"] == pytest.approx(power_w, rel=1e-6)
    total = m["carbon/node/node-a/energy_kwh"] + m["carbon/node/node-b/energy_kwh"]
    assert m["carbon/energy_kwh"] == pytest.approx(total, rel=1e-9)
    assert m["carbon/co2e_kg"] == pytest.approx(total * PUE * INTENSITY / 1000, rel=1e-9)
    assert m["carbon/gpu_energy_kwh"] == pytest.approx(
        m["carbon/node/node-a/gpu_energy_kwh"] + m["carbon/node/node-b/gpu_energy_kwh"]
    )
