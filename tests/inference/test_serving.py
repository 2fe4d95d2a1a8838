"""Metering `mlflow models serve`: the wrapped model, a real scoring server, SIGTERM; the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inference_helpers import inference_runs
from typer.testing import CliRunner

from carbonledger import contract
from carbonledger.cli import app

BODY = {"dataframe_split": {"columns": ["a", "b"], "data": [[0.1, 0.2], [0.9, 0.8], [0.2, 0.5]]}}


@pytest.fixture(scope="module")
def registered_store(
    tmp_path_factory: pytest.TempPathFactory, mlflow_sqlite_template: Path
) -> Iterator[Path]:
    """A SQLite MLflow store holding a scikit-learn model registered as `fraud` version 1.

    Logged once for the module (it took most of each test's set-up); each test copies it.
    The model's artifacts stay where MLflow put them, read by every copy.
    """
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    path = tmp_path_factory.mktemp("registered") / "mlflow.db"
    shutil.copyfile(mlflow_sqlite_template, path)
    uri = f"sqlite:///{path}"
    x = pd.DataFrame(np.random.default_rng(0).random((40, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(x, (x.a > 0.5).astype(int))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CARBONLEDGER_DISABLE", "1")
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        try:
            with mlflow.start_run():
                mlflow.sklearn.log_model(
                    model, name="model", registered_model_name="fraud", input_example=x.head(2)
                )
        finally:
            mlflow.set_tracking_uri(None)
    from mlflow.tracking._tracking_service.utils import _get_store

    _get_store(uri).engine.dispose()  # type: ignore[attr-defined]
    yield path


@pytest.fixture
def registered(mlflow_uri: str, registered_store: Path) -> str:
    """A scikit-learn model registered as `fraud` version 1, in the test's own store."""
    shutil.copyfile(registered_store, mlflow_uri.removeprefix("sqlite:///"))
    return "models:/fraud/1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_group_gone(pgid: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_wrap_writes_a_pyfunc_model_that_meters_its_version(
    registered: str, mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc
    import pandas as pd

    from carbonledger.inference import meter as meter_module
    from carbonledger.mlflow_plugin import plugin_state

    out = CliRunner().invoke(
        app, ["inference", "wrap", registered, "--output", str(tmp_path / "m"), "--team", "risk"]
    )
    assert out.exit_code == 0, out.output
    assert "mlflow models serve -m" in out.output
    again = CliRunner().invoke(
        app, ["inference", "wrap", registered, "--output", str(tmp_path / "m")]
    )
    assert again.exit_code == 1 and "exists" in again.output
    not_registry = CliRunner().invoke(
        app, ["inference", "wrap", "runs:/abc/model", "--output", str(tmp_path / "x")]
    )
    assert not_registry.exit_code == 1 and "--model NAME --version N" in not_registry.output

    from carbonledger.settings import get_settings

    monkeypatch.delenv("CARBONLEDGER_DISABLE")  # the ledger fixtures' switch
    get_settings.cache_clear()
    created: list[Any] = []
    assert plugin_state().inference_meter is None  # the process-wide meter is made on load
    real = meter_module.InferenceMeter

    def fake_devices(**kwargs: Any) -> Any:
        from carbonledger.testing import fake_meter

        kwargs.update(meter_factory=lambda: fake_meter({"cpu": 10.0}), start_thread=False)
        created.append(real(**kwargs))
        return created[-1]

    monkeypatch.setattr(meter_module, "InferenceMeter", fake_devices)
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    frame = pd.DataFrame(BODY["dataframe_split"]["data"], columns=["a", "b"])
    assert list(model.predict(frame)) == [0, 1, 0]
    [meter] = created
    try:
        [record] = meter.close_window()
        assert (record.model_name, record.model_version, record.requests, record.rows) == (
            "fraud",
            1,
            1,
            3,
        )
        [run] = inference_runs(mlflow_uri)
        assert run.data.tags["carbon.team"] == "risk"
    finally:
        meter.close()


@pytest.mark.slow
def test_mlflow_models_serve_meters_requests_and_ends_its_run_on_sigterm(
    registered: str, mlflow_uri: str, tmp_path: Path
) -> None:
    model_dir = tmp_path / "metered"
    out = CliRunner().invoke(
        app, ["inference", "wrap", registered, "--output", str(model_dir), "--window-s", "1"]
    )
    assert out.exit_code == 0, out.output
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLEDGER_")}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        MLFLOW_TRACKING_URI=mlflow_uri,
        CARBONLEDGER_INTENSITY_G_PER_KWH="400",
        CARBONLEDGER_JOURNAL_PATH=str(tmp_path / "journal"),
        CARBONLEDGER_RAPL_ROOT=str(tmp_path),
    )
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir),
         "--env-manager", "local", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the scoring server did not start"
                time.sleep(0.3)
        for _ in range(25):
            assert _post(f"http://127.0.0.1:{port}/invocations", BODY) == {"predictions": [0, 1, 0]}
        time.sleep(2.5)  # at least one window closes while serving
        assert [r.info.status for r in inference_runs(mlflow_uri)] == ["RUNNING"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the CLI and its uvicorn child
        server.wait(30)
        _wait_group_gone(server.pid)
        log.close()

    [run] = inference_runs(mlflow_uri)
    assert run.info.status == "FINISHED", (tmp_path / "serve.log").read_text()[-3000:]
    assert run.data.tags["carbon.status"] == "complete"
    assert run.data.tags["carbon.model_name"] == "fraud"
    assert (
        run.data.metrics[contract.W_REQUESTS_TOTAL] == 25.0
        and run.data.metrics[contract.W_ROWS_TOTAL] == 75.0
    )
    assert run.data.metrics[contract.W_WINDOWS_TOTAL] >= 2
    assert run.data.metrics["carbon/energy_kwh"] > 0  # the CPU estimate on this machine


def test_inference_bench_measures_wh_per_request_and_feeds_the_import(
    registered: str, tmp_path: Path
) -> None:
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(BODY))
    result = tmp_path / "bench.json"

    out = CliRunner().invoke(
        app,
        ["inference-bench", registered, "--input", str(sample), "--requests", "30",
         "--idle", "0.3", "--warmup", "1", "--output", str(result)],
    )  # fmt: skip

    assert out.exit_code == 0, out.output
    assert "per request" in out.output and "Wh at full load" in out.output
    data = json.loads(result.read_text())
    assert data["requests"] == 30 and data["rows_per_request"] == 3
    assert data["wh_per_request"] > 0 and data["energy_kwh"] > 0
    assert data["idle_power_w"] is not None and data["active_wh_per_request"] is not None
    assert data["latency_p99_ms"] >= data["latency_p50_ms"] > 0
    assert "estimate" in data["methods"] and data["measured"] is False  # no RAPL/GPU here
    from carbonledger.etl.inference import bench_wh_per_request

    assert bench_wh_per_request(result) == pytest.approx(data["wh_per_request"])


def test_inference_bench_input_formats(tmp_path: Path) -> None:
    from carbonledger.errors import ConfigError
    from carbonledger.inference.bench import load_input

    def load(value: Any) -> Any:
        path = tmp_path / "in.json"
        path.write_text(json.dumps(value))
        return load_input(path)

    assert load(BODY).shape == (3, 2)
    assert list(load({"dataframe_records": [{"a": 1}, {"a": 2}]}).a) == [1, 2]
    assert load({"instances": [[1, 2], [3, 4]]}).shape == (2, 2)
    assert load({"inputs": {"prompt": "hi"}}) == {"prompt": "hi"}
    assert list(load([{"a": 1}]).columns) == ["a"]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="cannot read the sample input"):
        load_input(tmp_path / "bad.json")
