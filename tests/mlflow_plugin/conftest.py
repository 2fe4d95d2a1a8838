"""Plugin fixtures: simulated hardware, fixed factors, clean plugin state, one mlflow server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from plugin_fakes import FakeMeter
from plugin_support import INTENSITY, PUE, read_run, subprocess_env  # noqa: F401


def reset_plugin() -> None:
    from carbonledger.mlflow_plugin import reset

    reset()


@pytest.fixture(autouse=True)
def plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMeter]:
    """Hooks installed, a fake meter, intensity 400 g/kWh and PUE 1.2; state reset after."""
    import mlflow  # noqa: F401 - the entry point installs the hooks

    from carbonledger.mlflow_plugin import accounting, hooks

    monkeypatch.setenv("CARBONLEDGER_INTENSITY_G_PER_KWH", str(INTENSITY))
    monkeypatch.setenv("CARBONLEDGER_PUE", str(PUE))
    monkeypatch.setenv("CARBONLEDGER_FLUSH_S", "30")
    assert hooks.try_install()
    meter = FakeMeter()
    monkeypatch.setattr(accounting, "meter_factory", lambda: meter)
    reset_plugin()
    yield meter
    reset_plugin()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``mlflow server --workers 1`` on a loopback port for the whole session."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    env = dict(
        os.environ,
        MLFLOW_DISABLE_TELEMETRY="true",
        CARBONLEDGER_DISABLE="1",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )  # no huey workers to orphan
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'server.db'}",
            "--default-artifact-root",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError((root / "server.log").read_text()[-2000:])
    else:
        proc.kill()
        raise RuntimeError("mlflow server did not become healthy in 90 s")
    yield url
    os.killpg(proc.pid, signal.SIGTERM)  # the server and its worker processes
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:  # a graceful shutdown waits on kept-alive connections
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    log.close()
