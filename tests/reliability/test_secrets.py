"""Secrets never leak: not on stdout/stderr, in log records, MLflow tags/params/metrics, ledger
rows, exception texts or app pages.

Three known secrets are planted where operators put them: the ledger URL's password (a
PostgreSQL under trust auth takes any password), ``CARBONLEDGER_ELECTRICITYMAPS_TOKEN`` (with
live intensity on, asked of a closed port so the error path runs) and the password in
``CARBONLEDGER_WEBHOOK_URL`` (a closed port, so the budget alert's delivery fails and is
reported). A fourth, the password in an ``http://user:pass@host`` MLflow tracking URI, is
given to ``carbonledger doctor``, which prints the tracking URI.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest_plugin_state import reset_plugin
from sqlalchemy import MetaData, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from carbonledger.cli import app as cli_app
from carbonledger.ledger import create_ledger_engine

pytestmark = pytest.mark.postgres

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
APP = str(REPO / "app" / "streamlit_app.py")
PAGES = ["overview", "teams", "models", "runs", "efficiency", "whatif", "methodology"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A child Python's environment: the plugin on, a private journal, empty powercap."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLEDGER_")}
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        CARBONLEDGER_RAPL_ROOT=str(tmp_path / "_powercap_empty"),
        CARBONLEDGER_JOURNAL_PATH=str(tmp_path / "_journal"),
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


class Sweep:
    """Everything the user or an operator could see, with where it came from."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.seen: list[tuple[str, str]] = []

    def add(self, where: str, text: Any) -> None:
        self.seen.append((where, text if isinstance(text, str) else repr(text)))

    def leaks(self) -> list[str]:
        out = []
        for where, text in self.seen:
            for name, secret in self.secrets.items():
                if secret in text:
                    at = text.index(secret)
                    out.append(f"{name} in {where}: …{text[max(0, at - 120) : at + 40]!r}")
        return out


@pytest.fixture
def secrets() -> dict[str, str]:
    return {name: f"Sx{name[:2]}{uuid.uuid4().hex}" for name in ("db", "token", "hook", "mlflow")}


@pytest.fixture
def secret_ledger_url(postgres_url: str, secrets: dict[str, str]) -> Iterator[str]:
    """A fresh PostgreSQL schema reached through a URL whose password is the db secret."""
    base = make_url(postgres_url)
    schema = f"cl_secret_{uuid.uuid4().hex[:10]}"
    admin = create_ledger_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = base.set(password=secrets["db"]).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def secret_env(
    secrets: dict[str, str],
    secret_ledger_url: str,
    mlflow_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> dict[str, str]:
    closed = free_port()
    env = {
        "CARBONLEDGER_LEDGER_URL": secret_ledger_url,
        "CARBONLEDGER_MLFLOW_URIS": mlflow_uri,
        "CARBONLEDGER_LIVE_INTENSITY": "true",
        "CARBONLEDGER_GRID_ZONE": "DE",
        "CARBONLEDGER_ELECTRICITYMAPS_TOKEN": secrets["token"],
        "CARBONLEDGER_ELECTRICITYMAPS_URL": f"http://127.0.0.1:{closed}/v3",
        "CARBONLEDGER_LIVE_TIMEOUT_S": "1",
        "CARBONLEDGER_WEBHOOK_URL": f"http://alerts:{secrets['hook']}@127.0.0.1:{closed}/hook",
        "CARBONLEDGER_TEAM": "vision",
        "CARBONLEDGER_CPU_METHOD": "estimate",
        "CARBONLEDGER_ESTIMATE_INTERVAL_S": "0.2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CARBONLEDGER_DISABLE", raising=False)
    from carbonledger.settings import get_settings

    get_settings.cache_clear()
    return env


def _mlflow_texts(sweep: Sweep, mlflow_uri: str) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    for run in runs:
        sweep.add(f"run {run.info.run_id} tags", run.data.tags)
        sweep.add(f"run {run.info.run_id} params", run.data.params)
        sweep.add(f"run {run.info.run_id} metrics", run.data.metrics)
    for exp in client.search_experiments():
        sweep.add(f"experiment {exp.name} tags", exp.tags)
    return len(runs)


def _ledger_texts(sweep: Sweep, url: str) -> None:
    """Every row of every ledger table (alert delivery details, quarantine reasons...)."""
    engine = create_ledger_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                sweep.add(f"ledger table {table.name}", conn.execute(select(table)).all())
    finally:
        engine.dispose()


def _app_texts(sweep: Sweep, label: str) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    for page in PAGES:
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        if page != "overview":
            at.switch_page(f"app_pages/{page}.py").run()
        sweep.add(f"app {label} {page}", repr(at._tree))
        for kind in ("exception", "error", "warning", "info", "markdown", "caption", "code"):
            for element in at.get(kind):
                sweep.add(f"app {label} {page} {kind}", getattr(element, "value", element))
                sweep.add(f"app {label} {page} {kind}", getattr(element, "proto", ""))


def test_no_secret_in_any_output(
    secret_env: dict[str, str],
    secrets: dict[str, str],
    secret_ledger_url: str,
    mlflow_uri: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Injected: the four secrets above. Run: the plugin on a real run in-process (real CPU
    estimate meter, live intensity failing) and in a child training process; ``db upgrade``,
    ``etl`` (plain and -v), ``etl`` on an unreachable ledger host with the secret in its URL,
    ``report``, ``doctor``, ``budgets set``/``check`` (alert posted to a dead webhook), the app's
    seven pages on the ledger and on a dead ledger. Checked: no secret in stdout, stderr, any
    log record (DEBUG, every logger), exception text, MLflow tag/param/metric or ledger row."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="carbonledger")
    sweep = Sweep(secrets)
    runner = CliRunner()

    def cli(*args: str, env: dict[str, str] | None = None) -> Any:
        result = runner.invoke(cli_app, list(args), env=env)
        where = "carbonledger " + " ".join(args)
        sweep.add(f"{where} stdout", result.stdout)
        sweep.add(f"{where} stderr", result.stderr)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            sweep.add(f"{where} exception", repr(result.exception))
            sweep.add(f"{where} exception", str(result.exception))
        return result

    # 1. the plugin on a real run, in this process (hooks, real estimate meter) ...
    import mlflow

    from carbonledger.mlflow_plugin import hooks

    assert hooks.try_install()
    reset_plugin()
    try:
        with mlflow.start_run(run_name="secret-sweep") as run:
            mlflow.log_metric("loss", 0.5)
            mlflow.log_param("lr", 0.1)
            import time

            time.sleep(1.0)
    finally:
        reset_plugin()
    in_process_tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert in_process_tags.get("carbon.team") == "vision"

    # ... and in a child training process.
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import time, mlflow
            with mlflow.start_run(run_name="secret-child"):
                mlflow.log_metric("loss", 0.25)
                time.sleep(1.0)
            """
        )
    )
    env = child_env(tmp_path, **secret_env, MLFLOW_TRACKING_URI=mlflow_uri)
    child = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=180
    )
    sweep.add("child training stdout", child.stdout)
    sweep.add("child training stderr", child.stderr)
    assert child.returncode == 0, child.stderr[-2000:]
    assert _mlflow_texts(sweep, mlflow_uri) == 2

    # 2. the ledger commands
    assert cli("db", "upgrade").exit_code == 0
    etl = cli("etl", "--quiet")
    assert etl.exit_code == 0, etl.stderr
    assert "loaded 2" in etl.stdout
    assert cli("etl", "--quiet", "--verbose", "--full").exit_code == 0
    dead = make_url(secret_ledger_url).set(port=free_port()).render_as_string(hide_password=False)
    failed = cli("etl", "--quiet", "--verbose", "--ledger-url", dead)
    assert failed.exit_code == 1
    assert "error:" in failed.stderr
    failed_host = make_url(secret_ledger_url).set(host="ledger.invalid")
    failed = cli(
        "etl", "--quiet", "--ledger-url", failed_host.render_as_string(hide_password=False)
    )
    assert failed.exit_code == 1
    year = str(datetime.now(UTC).year)
    report = cli("report", "--period", year)
    assert report.exit_code == 0, report.stderr
    assert "vision" in report.stdout
    assert cli("report", "--period", year, "--ledger-url", dead).exit_code == 1

    # doctor, with the tracking URI carrying a password too
    mlflow_secret_uri = f"http://ci:{secrets['mlflow']}@127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_secret_uri)
    mlflow.set_tracking_uri(mlflow_secret_uri)
    try:
        doctor = cli("doctor", "--sample-s", "0.2")
        doctor_json = cli("doctor", "--sample-s", "0.2", "--json")
    finally:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
        mlflow.set_tracking_uri(mlflow_uri)
    assert doctor.exit_code == 0, doctor.stderr
    assert json.loads(doctor_json.stdout)["mlflow"]["tracking_uri"]

    # budgets: a tiny team budget, crossed, whose alert goes to the dead webhook
    assert cli("budgets", "set", "--team", "vision", "--period", "year", "--limit-kg", "1e-12")
    check = cli("budgets", "check", "--no-tags")
    assert check.exit_code == 2, check.stdout + check.stderr
    assert "not delivered" in check.stdout + caplog.text
    assert "Connection refused" in caplog.text  # the webhook was tried, not mis-resolved
    assert cli("budgets", "check", "--no-tags", "--json").exit_code == 2
    assert cli("budgets", "list", "--ledger-url", dead).exit_code == 1

    # 3. the app, on the ledger and on a dead one
    _app_texts(sweep, "live")
    monkeypatch.setenv("CARBONLEDGER_LEDGER_URL", dead)
    from carbonledger.settings import get_settings

    get_settings.cache_clear()
    _app_texts(sweep, "dead-ledger")
    assert any(w.startswith("app dead-ledger") and "rror" in t for w, t in sweep.seen)

    # 4. what was written and logged
    _ledger_texts(sweep, secret_ledger_url)
    out, err = capfd.readouterr()
    sweep.add("process stdout", out)
    sweep.add("process stderr", err)
    for record in caplog.records:
        sweep.add(f"log record {record.name}", record.getMessage())
        if record.exc_info:
            sweep.add(f"log record {record.name} exc", logging.Formatter().format(record))
    assert caplog.records, "nothing was logged: the sweep would prove nothing"
    assert len(sweep.seen) > 50
    leaks = sweep.leaks()
    assert not leaks, "\n".join(leaks)


def test_webhook_credentials_in_the_url_go_in_a_header_never_in_a_message(
    secrets: dict[str, str],
) -> None:
    """Injected: ``http://alerts:SECRET@127.0.0.1:PORT/hook`` for a live loopback webhook, then
    for a closed port. Checked: the POST arrives with HTTP Basic credentials (urllib alone
    would resolve ``alerts:SECRET@127.0.0.1`` as a host name and never deliver), the request
    line carries no secret, and the failure message for the closed port has no secret."""
    import base64
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from carbonledger.budgets.alerts import post_webhook

    got: list[tuple[str, str | None]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.requestline, self.headers.get("Authorization")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        post_webhook(f"http://alerts:{secrets['hook']}@127.0.0.1:{port}/hook", {"text": "x"})
    finally:
        server.shutdown()
        server.server_close()
    [(line, auth)] = got
    assert line == "POST /hook HTTP/1.1"
    assert auth == "Basic " + base64.b64encode(f"alerts:{secrets['hook']}".encode()).decode()
    with pytest.raises(OSError) as info:
        post_webhook(f"http://alerts:{secrets['hook']}@127.0.0.1:{free_port()}/h", {"text": "x"})
    assert "refused" in str(info.value)
    assert secrets["hook"] not in str(info.value)
