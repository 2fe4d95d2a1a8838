"""Reset of the plugin's process state between tests (same as tests/mlflow_plugin)."""

from __future__ import annotations


def reset_plugin() -> None:
    from carbonledger.mlflow_plugin import reset

    reset()
