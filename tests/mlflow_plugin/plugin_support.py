"""Helpers the plugin tests import (a uniquely named module: ``conftest`` names collide)."""

from __future__ import annotations

import os
from pathlib import Path

INTENSITY = 400.0
PUE = 1.2


def read_run(uri: str, run_id: str):  # type: ignore[no-untyped-def]
    """The run as stored (fresh client)."""
    from mlflow import MlflowClient

    return MlflowClient(uri).get_run(run_id)


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a child Python that imports mlflow with the plugin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLEDGER_")}
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        CARBONLEDGER_RAPL_ROOT=str(tmp_path / "_powercap_empty"),
        CARBONLEDGER_JOURNAL_PATH=str(tmp_path / "_journal"),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    env.update(extra)
    return env
