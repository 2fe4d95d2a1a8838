"""Fixtures of the reliability suite: one mlflow server for the module, both ledger engines.

The suite injects faults into real processes (training scripts, the ETL, the tracking server,
a private PostgreSQL). It starts one ``mlflow server`` for the whole session.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ledger"))
sys.path.insert(0, str(HERE.parent / "mlflow_plugin"))

from cl_ledger_fixtures import client, ledger, ledger_url  # noqa: E402, F401
from reliability_support import HERE, MlflowServer, child_env, free_port  # noqa: E402, F401

REPO = HERE.parents[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One mlflow server for the whole suite (one test kills and restarts it, same port)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow_server"))
    server.start()
    yield server
    server.kill()
