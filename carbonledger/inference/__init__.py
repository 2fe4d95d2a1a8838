"""Inference metering: windows of device energy and requests, charged to model versions.

Modules:
    wrapper: ``metered(model_or_uri)`` / ``MeteredModel``: count every ``predict`` call.
    counter: the hot path (a lock and a few additions per call; latency reservoir).
    meter: ``InferenceMeter``, one per serving process: closes a window every ``window_s``
        off the hot path, splits the devices' energy and logs one MLflow inference run per
        version and day (``carbon.kind=inference``); one elected meter per node.
    record: ``WindowRecord``, one window of one version and its ``carbon/inference/*`` metrics.
    split: idle energy by time share, active energy by request share; per-request figures.
    runs: inference run creation (no retries); the metric names live in ``contract``.
    serving: ``save_metered_model`` / ``MeteredPythonModel`` for ``mlflow models serve``.
    bench: Wh per request on this machine (``carbonledger inference-bench``).

The meter stands on the MLflow plugin's public interface (``carbonledger.mlflow_plugin.api``:
tracking client, window reader, tags, SIGTERM chaining, node election, process state).
The ETL loads the windows into the ledger's ``inference_windows`` (``carbonledger.etl``);
``carbonledger import inference`` brings request counts of models served elsewhere.
Importing this package imports neither MLflow nor any device library.
"""

from __future__ import annotations

from typing import Any

from carbonledger.inference.meter import InferenceMeter, inference_meter
from carbonledger.inference.record import WindowRecord
from carbonledger.inference.split import split_window
from carbonledger.inference.wrapper import MeteredModel, metered

__all__ = [
    "InferenceMeter",
    "MeteredModel",
    "WindowRecord",
    "inference_meter",
    "metered",
    "save_metered_model",
    "split_window",
]


def __getattr__(name: str) -> Any:
    if name == "save_metered_model":  # imports mlflow: only on use
        from carbonledger.inference.serving import save_metered_model

        return save_metered_model
    raise AttributeError(name)
