"""Inference runs on MLflow: how they are created.

Each hosted version gets one MLflow run per UTC day and serving process (tag
``carbon.kind=inference``), so no run grows without bound; each window is one ``log_batch``
of ``carbon/inference/*`` metrics (names in :mod:`carbonledger.contract`) at ``step`` = the
window's number in the run and ``timestamp`` = its start, plus the run's cumulative
``carbon/*`` totals and ``carbon/heartbeat_ms`` (how the ETL finds live runs). Runs are
created and terminated through the plugin's tracking client
(:class:`carbonledger.mlflow_plugin.TrackingClient`), not through ``MlflowClient`` (whose
``create_run`` the training plugin meters): over REST with no retries and
``CARBONLEDGER_FLUSH_TIMEOUT_S`` like every other plugin send, so a server that is down costs
one timeout, never minutes. A run ends with a journal entry carrying ``status=FINISHED``
(sent, or journaled, in order with the windows before it).
"""

from __future__ import annotations

import getpass

from carbonledger import contract

# Re-exports of contract names that carbonledger.etl.inference reads through this module.
W_REQUESTS = contract.W_REQUESTS
W_ROWS = contract.W_ROWS
W_ERRORS = contract.W_ERRORS
W_WINDOW_S = contract.W_WINDOW_S
W_BUSY_S = contract.W_BUSY_S
W_COMPONENT = contract.W_COMPONENT_ENERGY_KWH
W_ACTIVE = contract.W_ACTIVE_ENERGY_KWH
W_PUE = contract.W_PUE
W_INTENSITY = contract.W_INTENSITY_G_PER_KWH
W_LATENCY = contract.W_LATENCY_MS
T_WINDOWS = contract.W_WINDOWS_TOTAL

DEFAULT_EXPERIMENT = "carbonledger-inference"

__all__ = [
    "DEFAULT_EXPERIMENT",
    "T_WINDOWS",
    "W_ACTIVE",
    "W_BUSY_S",
    "W_COMPONENT",
    "W_ERRORS",
    "W_INTENSITY",
    "W_LATENCY",
    "W_PUE",
    "W_REQUESTS",
    "W_ROWS",
    "W_WINDOW_S",
    "create_run",
]


def create_run(
    tracking_uri: str, *, experiment: str, run_name: str, start_ms: int, tags: dict[str, str]
) -> str:
    """Create a RUNNING run in ``experiment`` (created when missing); raises on any failure."""
    from carbonledger.mlflow_plugin.api import TrackingClient

    client = TrackingClient(tracking_uri)
    return client.create_run(
        experiment_id=client.experiment_id(experiment),
        user_id=_user(),
        start_ms=start_ms,
        run_name=run_name,
        tags=tags,
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"
