"""The MLflow plugin: every run carries its energy, CO2e and hardware, with no user code.

Modules:
    entrypoint: the ``mlflow.run_context_provider`` entry point (cheap, never raises).
    hooks: wraps ``MlflowClient.create_run`` / ``set_terminated`` and ``ActiveRun``.
    registry: run lifecycle (begin, end, unmetered runs); budget pre-flight seam.
    accounting: one meter window per process, split over concurrent and nested runs.
    tracker: one run's cumulative energy and its ``carbon/*`` metrics and ``carbon.*`` tags.
    flusher: the daemon thread for periodic flushes; transport: no-retry sends with timeout.
    journal: JSONL of unsent batches and their replay; distributed: node election and totals.
    signals: SIGTERM final flush; attach: ``carbonledger.attach(run_id)`` for non-owner ranks.

Importing this package imports neither MLflow nor any device library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carbonledger.mlflow_plugin.attach import Attachment

__all__ = ["Attachment", "attach"]


def attach(run_id: str | None = None, *, tracking_uri: str | None = None) -> Attachment:
    """Meter this process as part of a run owned by another process (see ``attach.attach``)."""
    from carbonledger.mlflow_plugin.attach import attach as _attach

    return _attach(run_id, tracking_uri=tracking_uri)


def __getattr__(name: str) -> Any:
    if name == "Attachment":
        from carbonledger.mlflow_plugin.attach import Attachment

        return Attachment
    raise AttributeError(name)
