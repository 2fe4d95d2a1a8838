"""``carbonledger.attach(run_id)``: meter this process for a run another process owns.

For ranks of a distributed job (or any helper process) that do not own the MLflow run:
the process takes part in the node election, its node's figures go to
``carbon/node/<node_id>/*`` and the run totals sum the nodes. Closing the attachment writes a
final flush; it never changes the run's status (the owner does that).
"""

from __future__ import annotations

import os
from types import TracebackType

from carbonledger.errors import PluginError


class Attachment:
    """A live attachment; a context manager. ``close()`` is idempotent."""

    def __init__(self, run_id: str, tracking_uri: str) -> None:
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.closed = False

    def close(self) -> None:
        """Final flush for this process's share of the run."""
        if self.closed:
            return
        self.closed = True
        from carbonledger.mlflow_plugin.registry import registry
        from carbonledger.mlflow_plugin.safety import guarded

        guarded("attach close", registry().end, self.run_id)

    def __enter__(self) -> Attachment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def attach(run_id: str | None = None, *, tracking_uri: str | None = None) -> Attachment:
    """Meter this process as part of ``run_id`` (default: ``MLFLOW_RUN_ID``).

    Args:
        run_id: the MLflow run owned by another process (rank 0).
        tracking_uri: its tracking URI (default: MLflow's current one).

    Raises:
        PluginError: no run id given and ``MLFLOW_RUN_ID`` is not set.
    """
    run_id = run_id or os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        raise PluginError(
            "carbonledger.attach needs a run id: pass attach(run_id) or set MLFLOW_RUN_ID "
            "to the run that rank 0 created"
        )
    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    attachment = Attachment(run_id, uri)
    from carbonledger.settings import get_settings

    if get_settings().disable:
        attachment.closed = True
        return attachment
    from carbonledger.mlflow_plugin import hooks
    from carbonledger.mlflow_plugin.registry import registry

    hooks.install_when_ready()
    tracker = registry().begin(run_id, uri, distributed=True)
    tracker.attached = True
    return attachment
