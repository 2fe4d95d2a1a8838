"""The image's scripts, run for real: entrypoint, ETL loop and its health check."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deploy_helpers import DOCKER, ROOT

VENV_BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLEDGER_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@pytest.mark.parametrize(
    "script",
    ["entrypoint.sh", "etl-loop.sh", "etl-healthcheck.sh", "postgres/10-carbonledger-init.sh"],
)
def test_shell_scripts_parse_and_are_executable(script: str) -> None:
    path = DOCKER / script
    assert os.access(path, os.X_OK), f"chmod +x docker/{script}"
    shell = "bash" if "init" in script else "sh"
    result = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_entrypoint_drops_empty_carbonledger_variables_only() -> None:
    env = _env(
        CARBONLEDGER_BUDGETS_PATH="",
        CARBONLEDGER_WEBHOOK_URL="",
        CARBONLEDGER_TEAM="vision",
        OTHER_EMPTY="",
    )
    out = subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh"), "env"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert "CARBONLEDGER_TEAM=vision" in out
    assert "OTHER_EMPTY=" in out
    assert not [
        line for line in out if line.startswith(("CARBONLEDGER_BUDGETS", "CARBONLEDGER_WEB"))
    ]


def _health(health_file: Path, max_age_s: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(DOCKER / "etl-healthcheck.sh")],
        env=_env(ETL_HEALTH_FILE=str(health_file), ETL_HEALTH_MAX_AGE_S=str(max_age_s)),
        capture_output=True,
        text=True,
    )


def test_etl_healthcheck_follows_the_age_of_the_last_success(tmp_path: Path) -> None:
    health = tmp_path / "etl-last-success"
    started = tmp_path / "etl-last-success.started"

    assert _health(health, 600).returncode == 1  # the loop never started

    started.write_text(f"{int(time.time())}\n")
    result = _health(health, 600)
    assert result.returncode == 0 and "no successful ETL pass yet" in result.stdout

    started.write_text(f"{int(time.time()) - 700}\n")
    assert _health(health, 600).returncode == 1  # no success within the limit

    health.touch()
    assert _health(health, 600).returncode == 0
    old = time.time() - 601
    os.utime(health, (old, old))
    result = _health(health, 600)
    assert result.returncode == 1 and "unhealthy" in result.stdout


def _loop(tmp_path: Path, mlflow_uri: str, passes: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(DOCKER / "etl-loop.sh")],
        env=_env(
            CARBONLEDGER_LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.db'}",
            CARBONLEDGER_MLFLOW_URIS=mlflow_uri,
            CARBONLEDGER_TEAM_RULES_PATH=str(DOCKER / "config" / "team_rules.yaml"),
            ETL_INTERVAL_S="1",
            ETL_MAX_PASSES=str(passes),
            ETL_HEALTH_FILE=str(tmp_path / "state" / "etl-last-success"),
            MLFLOW_DISABLE_TELEMETRY="true",
        ),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )


@pytest.mark.slow
def test_etl_loop_loads_marks_health_and_survives_a_failed_pass(tmp_path: Path) -> None:
    """The loop of the etl service against a real SQLite ledger and MLflow store."""
    import mlflow

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    subprocess.run(
        [str(VENV_BIN / "carbonledger"), "db", "upgrade", "--no-seed"],
        env=_env(CARBONLEDGER_LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.db'}"),
        check=True,
        capture_output=True,
    )
    client = mlflow.MlflowClient(store)
    exp = client.create_experiment("vision/resnet")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "carbon/energy_kwh", 1.5)
    client.set_terminated(run.info.run_id)

    health = tmp_path / "state" / "etl-last-success"
    # a tracking store that cannot be read: the pass fails, the loop goes on, no health mark
    garbage = tmp_path / "not-a-database.db"
    garbage.write_bytes(b"this is not an SQLite file" * 100)
    bad = _loop(tmp_path, f"sqlite:///{garbage}", passes=2)
    assert bad.returncode == 0, bad.stderr
    assert bad.stderr.count("pass failed") == 2, bad.stderr
    assert not health.exists()
    assert (tmp_path / "state" / "etl-last-success.started").exists()

    good = _loop(tmp_path, store, passes=1)
    assert good.returncode == 0, good.stderr
    assert "pass failed" not in good.stderr, good.stderr
    assert health.exists()
    assert "loaded 1" in good.stdout + good.stderr

    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    with engine.connect() as conn:
        team = conn.execute(sa.text("SELECT team FROM runs")).scalar_one()
    engine.dispose()
    assert team == "vision"  # docker/config/team_rules.yaml applied


def test_etl_loop_refuses_a_bad_interval(tmp_path: Path) -> None:
    result = subprocess.run(
        ["sh", str(DOCKER / "etl-loop.sh")],
        env=_env(ETL_INTERVAL_S="5m", ETL_HEALTH_FILE=str(tmp_path / "h")),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "ETL_INTERVAL_S" in result.stderr


def test_http_healthcheck_reports_up_and_down(tmp_path: Path) -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    script = str(DOCKER / "http-healthcheck.py")
    try:
        ok = subprocess.run([sys.executable, script, f"http://127.0.0.1:{port}/health"])
        bad = subprocess.run([sys.executable, script, f"http://127.0.0.1:{port}/other"])
    finally:
        server.shutdown()
        server.server_close()
    down = subprocess.run([sys.executable, script, f"http://127.0.0.1:{port}/health", "1"])
    assert (ok.returncode, bad.returncode, down.returncode) == (0, 1, 1)
    assert ROOT.joinpath("docker", "http-healthcheck.py").read_text().startswith("#!")
