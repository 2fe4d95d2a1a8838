"""The MLflow plugin: every run carries its energy, CO2e and hardware, with no user code.

Modules:
    api: the public interface other meters (the inference meter) build on; re-exported here.
    entrypoint: the ``mlflow.run_context_provider`` entry point (cheap, never raises).
    hooks: wraps ``MlflowClient.create_run`` / ``set_terminated`` and ``ActiveRun``.
    registry: run lifecycle (begin, end, unmetered runs); budget pre-flight seam.
    accounting: one meter window per process, split over concurrent and nested runs.
    windows: a meter window read as energy deltas per component.
    tracker: one run's cumulative energy and its batches; totals: the ``carbon/*`` totals;
        tags: the ``carbon.*`` tags; factors: grid intensity, PUE and location tags.
    flusher: the daemon thread for periodic flushes; transport: the tracking client (no
        retries, a timeout); journal: JSONL of unsent batches and their replay.
    distributed: per-node figures and totals; election: one leader per node (``flock``).
    signals: SIGTERM chaining and the final flush; attach: ``carbonledger.attach(run_id)``.
    safety: every hook guarded, each failure reported once; state: the process state in one
        object, its ``reset()`` and the fork handler.

Importing this package imports neither MLflow nor any device library: the names of
``__all__`` (the ``api`` module's, and ``attach``) are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carbonledger.mlflow_plugin.attach import Attachment

__all__ = [
    "Attachment",
    "Entry",
    "Factors",
    "NodeLock",
    "PluginState",
    "SignalChain",
    "TrackingClient",
    "Usage",
    "WindowDelta",
    "WindowReader",
    "attach",
    "chain_signal",
    "deadline",
    "deliver",
    "derived_metrics",
    "elect",
    "get_factors",
    "guarded",
    "metered_tags",
    "node_id",
    "now_ms",
    "plugin_state",
    "plugin_version",
    "report_once",
    "reset",
    "safe_name",
    "submit",
    "unmetered_tags",
    "warn_once",
]


def attach(run_id: str | None = None, *, tracking_uri: str | None = None) -> Attachment:
    """Meter this process as part of a run owned by another process (see ``attach.attach``)."""
    from carbonledger.mlflow_plugin.attach import attach as _attach

    return _attach(run_id, tracking_uri=tracking_uri)


def __getattr__(name: str) -> Any:
    if name == "Attachment":
        from carbonledger.mlflow_plugin.attach import Attachment

        return Attachment
    if name in __all__:
        return getattr(importlib.import_module("carbonledger.mlflow_plugin.api"), name)
    raise AttributeError(name)
