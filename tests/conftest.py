"""Fixtures shared by the whole suite: clean settings, an isolated MLflow store, the databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbonledger.settings import get_settings

PG_URL_ENV = "CARBONLEDGER_TEST_DATABASE_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots",
        metavar="DIR",
        default=None,
        help="where the browser test saves its page screenshots (default: a temp folder); "
        "--screenshots docs/img refreshes the README's",
    )


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts from default settings, an empty powercap tree and DMI folder, a private
    journal and a private GPU share registry (tests in parallel sessions never see each
    other's GPUs).

    No test reads this machine's real hardware unless it builds the tree itself: the RAPL
    root points at an empty folder, and NVML is absent on these machines.
    """
    for key in list(os.environ):
        if key.startswith("CARBONLEDGER_") and key != PG_URL_ENV:
            monkeypatch.delenv(key)
    for key in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(key, raising=False)
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    empty_powercap = tmp_path / "_powercap_empty"
    empty_powercap.mkdir()
    monkeypatch.setenv("CARBONLEDGER_RAPL_ROOT", str(empty_powercap))
    empty_dmi = tmp_path / "_dmi_empty"
    empty_dmi.mkdir()
    monkeypatch.setenv("CARBONLEDGER_DMI_ROOT", str(empty_dmi))
    monkeypatch.setenv("CARBONLEDGER_JOURNAL_PATH", str(tmp_path / "_journal"))
    monkeypatch.setenv("CARBONLEDGER_GPU_SHARE_DIR", str(tmp_path / "_gpu_share"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite MLflow tracking store for this test, set as the tracking URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    if mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL URL from ``CARBONLEDGER_TEST_DATABASE_URL`` (``make test`` exports it)."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.fail(f"{PG_URL_ENV} is not set: run the suite through `make test`")
    return url
