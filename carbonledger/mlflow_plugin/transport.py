"""Talking to the tracking server without ever stalling: no retries, a hard timeout.

:class:`TrackingClient` is the one client the plugin and the inference meter use. For a REST
tracking URI every request goes straight to MLflow's REST API through MLflow's own
``http_request`` (same credentials as the user's client) with ``max_retries=0`` and
``timeout=settings.flush_timeout_s``: MLflow's default client would retry for minutes against
a server that is down. Local stores (SQLite, files) are called through the store.

:func:`deadline` bounds every request a thread makes inside it by one budget (the final
flush and the SIGTERM path): each request waits at most what is left, and none starts once it
is spent. :func:`send` logs one journal :class:`~carbonledger.mlflow_plugin.journal.Entry`;
an entry with a ``status`` also sets the run's terminal status (``/runs/update``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from carbonledger.contract import MS_PER_S
from carbonledger.mlflow_plugin.journal import Entry

LOG_BATCH_ENDPOINT = "/api/2.0/mlflow/runs/log-batch"
GET_RUN_ENDPOINT = "/api/2.0/mlflow/runs/get"
UPDATE_RUN_ENDPOINT = "/api/2.0/mlflow/runs/update"
CREATE_RUN_ENDPOINT = "/api/2.0/mlflow/runs/create"
EXPERIMENT_BY_NAME_ENDPOINT = "/api/2.0/mlflow/experiments/get-by-name"
CREATE_EXPERIMENT_ENDPOINT = "/api/2.0/mlflow/experiments/create"
GET_MODEL_ENDPOINT = "/api/2.0/mlflow/registered-models/get"

_budget = threading.local()  # monotonic deadline of the requests this thread makes, if any


def budget_left_s() -> float:
    """Seconds left of this thread's send budget (``flush_timeout_s`` outside a deadline)."""
    from carbonledger.settings import get_settings

    end = getattr(_budget, "deadline", None)
    if end is None:
        return get_settings().flush_timeout_s
    return max(0.0, end - time.monotonic())


def timeout_s() -> float:
    """The timeout of the next request: ``flush_timeout_s``, or less inside a deadline.

    Raises:
        TimeoutError: the deadline this thread is in has passed.
    """
    from carbonledger.settings import get_settings

    flush_timeout_s = get_settings().flush_timeout_s
    end = getattr(_budget, "deadline", None)
    if end is None:
        return flush_timeout_s
    left_s = end - time.monotonic()
    if left_s <= 0:
        raise TimeoutError("carbonledger flush budget (CARBONLEDGER_FLUSH_TIMEOUT_S) spent")
    return min(flush_timeout_s, left_s)


@contextmanager
def deadline(budget_s: float | None = None) -> Iterator[None]:
    """Bound every request of this thread inside the block by ``budget_s`` in all.

    Args:
        budget_s: seconds for all the requests together (default ``flush_timeout_s``). A
            nested block never extends an outer budget.
    """
    if budget_s is None:
        from carbonledger.settings import get_settings

        budget_s = get_settings().flush_timeout_s
    outer = getattr(_budget, "deadline", None)
    end = time.monotonic() + budget_s
    _budget.deadline = end if outer is None else min(outer, end)
    try:
        yield
    finally:
        _budget.deadline = outer


class TrackingClient:
    """One tracking URI, spoken to with no retries and the flush timeout.

    Every method raises on any failure (unreachable server, refused request, timeout); the
    callers decide what to keep (the journal, windows in memory).

    Args:
        tracking_uri: an MLflow tracking URI (REST, SQLite, file store).
    """

    def __init__(self, tracking_uri: str) -> None:
        from mlflow.store.tracking.rest_store import RestStore
        from mlflow.tracking._tracking_service.utils import _get_store

        self.tracking_uri = tracking_uri
        self.store: Any = _get_store(tracking_uri)
        self.creds: Any | None = (
            self.store.get_host_creds() if isinstance(self.store, RestStore) else None
        )

    def _call(
        self, endpoint: str, method: str, *, missing_ok: bool = False, **kwargs: Any
    ) -> dict[str, Any] | None:
        """One REST request (no retries, :func:`timeout_s`); its JSON (None: 404, missing_ok)."""
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        response = http_request(
            self.creds, endpoint, method, max_retries=0, timeout=timeout_s(), **kwargs
        )
        if missing_ok and response.status_code == 404:
            return None
        verify_rest_response(response, endpoint)
        body: dict[str, Any] = response.json()
        return body

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Sequence[float | str | int]],
        tags: Mapping[str, str],
    ) -> None:
        """Log ``[key, value, timestamp_ms, step]`` metric rows and tags to a run."""
        if self.creds is not None:
            body = {
                "run_id": run_id,
                "metrics": [
                    {"key": k, "value": float(v), "timestamp": int(ts), "step": int(step)}
                    for k, v, ts, step in metrics
                ],
                "tags": [{"key": k, "value": str(v)} for k, v in tags.items()],
            }
            self._call(LOG_BATCH_ENDPOINT, "POST", json=body)
            return
        from mlflow.entities import Metric, RunTag

        rows = [
            Metric(key=str(k), value=float(v), timestamp=int(ts), step=int(step))
            for k, v, ts, step in metrics
        ]
        run_tags = [RunTag(k, str(v)) for k, v in tags.items()]
        self.store.log_batch(run_id, metrics=rows, params=[], tags=run_tags)

    def terminate(self, run_id: str, status: str, end_ms: int) -> None:
        """Set a run's terminal status (``FINISHED``, ``FAILED``, ``KILLED``) and end time."""
        if self.creds is not None:
            body = {"run_id": run_id, "run_uuid": run_id, "status": status, "end_time": end_ms}
            self._call(UPDATE_RUN_ENDPOINT, "POST", json=body)
            return
        from mlflow.entities import RunStatus

        self.store.update_run_info(run_id, RunStatus.from_string(status), end_ms, None)

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """The run's latest metric values."""
        if self.creds is not None:
            body = self._call(GET_RUN_ENDPOINT, "GET", params={"run_id": run_id}) or {}
            data = body.get("run", {}).get("data", {})
            return {m["key"]: float(m["value"]) for m in data.get("metrics", [])}
        return dict(self.store.get_run(run_id).data.metrics)

    def experiment_id(self, name: str) -> str:
        """Id of the experiment ``name``, created when missing."""
        if self.creds is None:
            found = self.store.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            return str(self.store.create_experiment(name))
        params = {"experiment_name": name}
        found_body = self._call(EXPERIMENT_BY_NAME_ENDPOINT, "GET", missing_ok=True, params=params)
        if found_body is not None:
            return str(found_body["experiment"]["experiment_id"])
        created = self._call(CREATE_EXPERIMENT_ENDPOINT, "POST", json={"name": name}) or {}
        return str(created["experiment_id"])

    def create_run(
        self,
        *,
        experiment_id: str,
        user_id: str,
        start_ms: int,
        run_name: str,
        tags: Mapping[str, str],
    ) -> str:
        """Create a RUNNING run through the store (not ``MlflowClient``); returns its id."""
        if self.creds is None:
            from mlflow.entities import RunTag

            run = self.store.create_run(
                experiment_id=experiment_id,
                user_id=user_id,
                start_time=start_ms,
                tags=[RunTag(k, v) for k, v in tags.items()],
                run_name=run_name,
            )
            return str(run.info.run_id)
        body = {
            "experiment_id": experiment_id,
            "user_id": user_id,
            "start_time": start_ms,
            "run_name": run_name,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        created = self._call(CREATE_RUN_ENDPOINT, "POST", json=body) or {}
        return str(created["run"]["info"]["run_id"])

    def registered_model_tags(self, name: str) -> dict[str, str] | None:
        """A registered model's tags; ``None`` when there is no such model."""
        if self.creds is not None:
            body = self._call(GET_MODEL_ENDPOINT, "GET", missing_ok=True, params={"name": name})
            if body is None:
                return None
            tags = body.get("registered_model", {}).get("tags", [])
            return {t["key"]: t.get("value", "") for t in tags}
        from mlflow.exceptions import MlflowException
        from mlflow.tracking._model_registry.utils import _get_store

        try:
            model = _get_store(self.tracking_uri).get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return dict(model.tags or {})


def send(entry: Entry) -> None:
    """Log one batch of metrics and tags to its run (then its status); raises on any failure."""
    client = TrackingClient(entry.tracking_uri)
    if entry.metrics or entry.tags or not entry.status:
        client.log_batch(entry.run_id, entry.metrics, entry.tags)
    if entry.status:
        client.terminate(entry.run_id, str(entry.status), entry.end_time_ms or now_ms())


def latest_metrics(tracking_uri: str, run_id: str) -> dict[str, float]:
    """The run's latest metric values (used to sum the nodes of a distributed run)."""
    return TrackingClient(tracking_uri).latest_metrics(run_id)


def now_ms() -> int:
    """Epoch milliseconds."""
    return int(time.time() * MS_PER_S)
