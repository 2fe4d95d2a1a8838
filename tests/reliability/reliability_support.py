"""Helpers the reliability tests import (a uniquely named module: ``conftest`` names collide)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    """A real ``mlflow server --workers 1`` on a loopback port that a test may kill and restart
    (same port, same SQLite store)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> None:
        env = dict(
            os.environ,
            MLFLOW_DISABLE_TELEMETRY="true",
            CARBONLEDGER_DISABLE="1",
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",  # no huey workers to orphan
            # No connection pool: the server runs each request in one of anyio's 40 threads,
            # and SQLAlchemy's default pool (5 + 10 overflow) made a request wait for a
            # connection while others sat in SQLite's busy wait (MLflow sets 20 s). Past 30 s
            # the pool's TimeoutError reached the client as a 400, which it never retries, and
            # a training process failed under a loaded machine. Without a pool a request opens
            # its own SQLite connection and waits only on SQLite's lock, whose timeout MLflow
            # returns as 503, which the client retries.
            MLFLOW_SQLALCHEMYSTORE_POOLCLASS="NullPool",
        )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "mlflow", "server",
                    "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                    "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}",
                    "--default-artifact-root", str(self.root / "artifacts"),
                ],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        self.wait_healthy(timeout_s)

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text()[-2000:])
        raise RuntimeError(f"mlflow server not healthy in {timeout_s} s")

    def kill(self) -> None:
        """SIGKILL the server and its workers: no graceful shutdown, connections reset."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.proc = None


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment of a child Python with the plugin, simulated hardware and a private journal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLEDGER_")}
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        CARBONLEDGER_RAPL_ROOT=str(tmp_path / "_powercap_empty"),
        CARBONLEDGER_JOURNAL_PATH=str(tmp_path / "_journal"),
        PYTHONPATH=os.pathsep.join([str(REPO), str(HERE), str(HERE.parent / "mlflow_plugin")]),
    )
    env.update(extra)
    return env
