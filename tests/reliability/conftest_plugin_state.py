"""Reset of the plugin's process state between tests (same as tests/mlflow_plugin)."""

from __future__ import annotations


def reset_plugin() -> None:
    from carbonledger.mlflow_plugin import accounting, factors, flusher, registry, safety, signals

    flusher.reset()
    accounting.reset()
    registry.reset()
    signals.reset()
    factors.reset()
    safety.reset_reports()
