"""Read runs, experiments and the model registry from an MLflow tracking server.

Incremental reads use two filters MLflow can evaluate in its store: finished runs with
``attributes.end_time >= cursor`` and live runs with ``metrics.`carbon/heartbeat_ms` >= cursor``.
Rows exactly on a cursor are de-duplicated by the ids remembered with the cursor (see
``state.Cursor``). Pages come ordered by the cursor column so runs written during a read land
after the current page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from carbonledger.contract import M_HEARTBEAT_MS, metric_filter
from carbonledger.errors import EtlError, first_line
from carbonledger.etl.transform import ExperimentInfo

PAGE_SIZE = 10_000
HEARTBEAT = metric_filter(M_HEARTBEAT_MS)


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    """A registered model version and the run that produced it."""

    name: str
    version: int
    run_id: str | None
    model_id: str | None
    created_ms: int | None


@dataclass(frozen=True, slots=True)
class RegisteredModelInfo:
    """A registered model with its versions."""

    name: str
    created_ms: int | None
    updated_ms: int | None
    tags: dict[str, str]
    versions: list[ModelVersionInfo]


def open_client(uri: str) -> Any:
    """An ``MlflowClient`` on ``uri`` (tracking and registry)."""
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    except Exception as exc:  # MLflow opens a database store here (schema checks included)
        from carbonledger.ledger.engine import redact_uri

        raise _wrap(redact_uri(uri), exc) from None


def _wrap(uri: str, exc: Exception) -> EtlError:
    return EtlError(  # one line: MLflow's messages run to paragraphs
        f"cannot read the MLflow tracking server {uri!r}: {type(exc).__name__}: "
        f"{first_line(exc)}. "
        "Check --mlflow-uri (and MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN) and that the "
        "server is up; the ledger was left as it was"
    )


def experiments(client: Any, uri: str) -> dict[str, ExperimentInfo]:
    """Every experiment (active and deleted) by id."""
    from mlflow.entities import ViewType

    out: dict[str, ExperimentInfo] = {}
    token = None
    try:
        while True:
            page = client.search_experiments(
                view_type=ViewType.ALL, max_results=1000, page_token=token
            )
            for exp in page:
                out[exp.experiment_id] = ExperimentInfo(exp.experiment_id, exp.name, exp.tags)
            token = page.token
            if not token:
                return out
    except Exception as exc:  # MLflow raises many types (HTTP, SQL, REST)
        raise _wrap(uri, exc) from exc


def run_pages(
    client: Any,
    uri: str,
    experiment_ids: list[str],
    filter_string: str,
    order_by: list[str],
    page_size: int = PAGE_SIZE,
) -> Iterator[list[Any]]:
    """Pages of runs of every experiment that match ``filter_string``."""
    from mlflow.entities import ViewType

    if not experiment_ids:
        return
    token = None
    while True:
        try:
            page = client.search_runs(
                experiment_ids,
                filter_string=filter_string,
                run_view_type=ViewType.ALL,
                max_results=page_size,
                order_by=order_by,
                page_token=token,
            )
        except Exception as exc:
            raise _wrap(uri, exc) from exc
        if page:
            yield list(page)
        token = page.token
        if not token:
            return


def changed_run_pages(
    client: Any,
    uri: str,
    experiment_ids: list[str],
    *,
    end_time_ms: int | None,
    heartbeat_ms: int | None,
    lookback_ms: int = 0,
    page_size: int = PAGE_SIZE,
) -> Iterator[list[Any]]:
    """Runs that may have changed since the cursors; everything when the cursor is unset.

    ``end_time`` and the heartbeat come from the clocks of the machines that ran the runs, so a
    run can commit after the cursor has moved past its end time; both filters reach back
    ``lookback_ms`` before the cursors, and re-read runs that did not change merge as unchanged.
    The incremental reads keep MLflow's default order (start time, run id): ordering by end
    time or by a metric costs MLflow 3-15x more on a large store, and the cursor takes the
    maximum over every page of the pass anyway.
    """
    if end_time_ms is None:
        yield from run_pages(
            client, uri, experiment_ids, "", ["attributes.start_time ASC"], page_size
        )
        return
    yield from run_pages(
        client,
        uri,
        experiment_ids,
        f"attributes.end_time >= {int(end_time_ms) - int(lookback_ms)}",
        [],
        page_size,
    )
    since = max(0, int(heartbeat_ms) - int(lookback_ms)) if heartbeat_ms is not None else 0
    yield from run_pages(client, uri, experiment_ids, f"{HEARTBEAT} >= {since}", [], page_size)


def registered_models(client: Any, uri: str, *, updated_since_ms: int | None) -> list[Any]:
    """Registered models updated at or after ``updated_since_ms`` (all when ``None``)."""
    out: list[RegisteredModelInfo] = []
    token = None
    try:
        while True:
            page = client.search_registered_models(
                max_results=1000, order_by=["last_updated_timestamp DESC"], page_token=token
            )
            for rm in page:
                updated = rm.last_updated_timestamp
                if updated_since_ms is not None and updated is not None:
                    if updated < updated_since_ms:
                        return out
                out.append(_model_info(client, rm))
            token = page.token
            if not token:
                return out
    except EtlError:
        raise
    except Exception as exc:
        raise _wrap(uri, exc) from exc


def _model_info(client: Any, rm: Any) -> RegisteredModelInfo:
    escaped = rm.name.replace("'", "\\'")
    versions = [
        ModelVersionInfo(
            name=mv.name,
            version=int(mv.version),
            run_id=mv.run_id or None,
            model_id=getattr(mv, "model_id", None) or None,
            created_ms=mv.creation_timestamp,
        )
        for mv in client.search_model_versions(f"name='{escaped}'")
    ]
    return RegisteredModelInfo(
        name=rm.name,
        created_ms=rm.creation_timestamp,
        updated_ms=rm.last_updated_timestamp,
        tags=dict(rm.tags or {}),
        versions=versions,
    )


def logged_model_source_runs(client: Any, model_ids: list[str]) -> dict[str, str]:
    """``source_run_id`` of each LoggedModel id (MLflow 3), for versions without a run id."""
    out: dict[str, str] = {}
    for model_id in model_ids:
        try:
            logged = client.get_logged_model(model_id)
        except Exception:  # a deleted or foreign LoggedModel: no lineage, not an error
            continue
        if getattr(logged, "source_run_id", None):
            out[model_id] = logged.source_run_id
    return out
