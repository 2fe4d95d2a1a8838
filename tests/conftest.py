"""Fixtures shared by the whole suite: clean settings, an isolated MLflow store, the databases."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def mlflow_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite MLflow store, migrated once per session (per xdist worker).

    MLflow runs its own Alembic migrations when it first opens a store (1-2 s); tests copy
    this file instead (``fresh_mlflow_sqlite``). It is made the way a test's store used to
    be, through ``MlflowClient``, so the default experiment looks the same.
    """
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CARBONLEDGER_DISABLE", "1")
        MlflowClient(tracking_uri=uri).search_experiments()
    _dispose_mlflow_store(uri)
    return path


def _dispose_mlflow_store(uri: str) -> None:
    """Close the pooled connections MLflow keeps for ``uri`` (so the file can be copied)."""
    from mlflow.tracking._tracking_service.utils import _get_store

    store = _get_store(uri)
    engine = getattr(store, "engine", None)
    if engine is not None:
        engine.dispose()


def fresh_mlflow_sqlite(template: Path, path: Path) -> str:
    """Copy the migrated ``template`` to ``path``; returns its ``sqlite:///`` URI."""
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def ledger_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite ledger at the newest schema, migrated once per session (per worker).

    The ``ledger`` fixture copies it rather than running every migration for each test.
    """
    from carbonledger.ledger import create_ledger_engine, migrate

    path = tmp_path_factory.mktemp("ledger_template") / "ledger.db"
    engine = create_ledger_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def mlflow_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_sqlite_template: Path
) -> str:
    """A fresh SQLite MLflow tracking store for this test, set as the tracking URI."""
    uri = fresh_mlflow_sqlite(mlflow_sqlite_template, tmp_path / "mlflow.db")
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
