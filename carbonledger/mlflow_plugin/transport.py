"""Sending batches to the tracking server without ever stalling: no retries, a hard timeout.

For a REST tracking URI the batch goes straight to ``/api/2.0/mlflow/runs/log-batch`` through
MLflow's own ``http_request`` (same credentials as the user's client) with ``max_retries=0``
and ``timeout=settings.flush_timeout_s``: MLflow's default client would retry for minutes
against a server that is down. Local stores (SQLite, files) are written through the store.

:func:`deadline` bounds every send a thread makes inside it by one budget (the final flush and
the SIGTERM path): each request waits at most what is left, and none starts once it is spent.
An entry with a ``status`` also sets the run's terminal status (``/runs/update``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from carbonledger.mlflow_plugin.journal import Entry

LOG_BATCH_ENDPOINT = "/api/2.0/mlflow/runs/log-batch"
GET_RUN_ENDPOINT = "/api/2.0/mlflow/runs/get"
UPDATE_RUN_ENDPOINT = "/api/2.0/mlflow/runs/update"

_budget = threading.local()  # monotonic deadline of the sends this thread makes, if any


def _store(tracking_uri: str) -> Any:
    from mlflow.tracking._tracking_service.utils import _get_store

    return _get_store(tracking_uri)


def _rest_creds(store: Any) -> Any | None:
    from mlflow.store.tracking.rest_store import RestStore

    return store.get_host_creds() if isinstance(store, RestStore) else None


def budget_left_s() -> float:
    """Seconds left of this thread's send budget (``flush_timeout_s`` outside a deadline)."""
    from carbonledger.settings import get_settings

    end = getattr(_budget, "deadline", None)
    if end is None:
        return get_settings().flush_timeout_s
    return max(0.0, end - time.monotonic())


def _timeout_s() -> float:
    from carbonledger.settings import get_settings

    timeout_s = get_settings().flush_timeout_s
    end = getattr(_budget, "deadline", None)
    if end is None:
        return timeout_s
    left_s = end - time.monotonic()
    if left_s <= 0:
        raise TimeoutError("carbonledger flush budget (CARBONLEDGER_FLUSH_TIMEOUT_S) spent")
    return min(timeout_s, left_s)


@contextmanager
def deadline(budget_s: float | None = None) -> Iterator[None]:
    """Bound every send of this thread inside the block by ``budget_s`` in all.

    Args:
        budget_s: seconds for all the sends together (default ``flush_timeout_s``). A nested
            block never extends an outer budget.
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


def send(entry: Entry) -> None:
    """Log one batch of metrics and tags to its run (then its status); raises on any failure."""
    store = _store(entry.tracking_uri)
    creds = _rest_creds(store)
    if entry.metrics or entry.tags or not entry.status:
        _log_batch(store, creds, entry)
    if entry.status:
        _set_status(store, creds, entry)


def _log_batch(store: Any, creds: Any | None, entry: Entry) -> None:
    if creds is not None:
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        body = {
            "run_id": entry.run_id,
            "metrics": [
                {"key": k, "value": float(v), "timestamp": int(ts), "step": int(step)}
                for k, v, ts, step in entry.metrics
            ],
            "tags": [{"key": k, "value": str(v)} for k, v in entry.tags.items()],
        }
        response = http_request(
            creds, LOG_BATCH_ENDPOINT, "POST", max_retries=0, timeout=_timeout_s(), json=body
        )
        verify_rest_response(response, LOG_BATCH_ENDPOINT)
        return
    from mlflow.entities import Metric, RunTag

    metrics = [
        Metric(key=str(k), value=float(v), timestamp=int(ts), step=int(step))
        for k, v, ts, step in entry.metrics
    ]
    tags = [RunTag(k, str(v)) for k, v in entry.tags.items()]
    store.log_batch(entry.run_id, metrics=metrics, params=[], tags=tags)


def _set_status(store: Any, creds: Any | None, entry: Entry) -> None:
    end_ms = entry.end_time_ms or now_ms()
    if creds is not None:
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        body = {
            "run_id": entry.run_id,
            "run_uuid": entry.run_id,
            "status": entry.status,
            "end_time": end_ms,
        }
        response = http_request(
            creds, UPDATE_RUN_ENDPOINT, "POST", max_retries=0, timeout=_timeout_s(), json=body
        )
        verify_rest_response(response, UPDATE_RUN_ENDPOINT)
        return
    from mlflow.entities import RunStatus

    store.update_run_info(entry.run_id, RunStatus.from_string(str(entry.status)), end_ms, None)


def latest_metrics(tracking_uri: str, run_id: str) -> dict[str, float]:
    """The run's latest metric values (used to sum the nodes of a distributed run)."""
    store = _store(tracking_uri)
    creds = _rest_creds(store)
    if creds is not None:
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        response = http_request(
            creds,
            GET_RUN_ENDPOINT,
            "GET",
            max_retries=0,
            timeout=_timeout_s(),
            params={"run_id": run_id},
        )
        verify_rest_response(response, GET_RUN_ENDPOINT)
        data = response.json().get("run", {}).get("data", {})
        return {m["key"]: float(m["value"]) for m in data.get("metrics", [])}
    return dict(store.get_run(run_id).data.metrics)


def now_ms() -> int:
    """Epoch milliseconds."""
    return int(time.time() * 1000)
