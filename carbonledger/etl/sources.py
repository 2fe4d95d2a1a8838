"""Where one ETL pass reads a tracking source: MLflow's client, or MLflow's own tables.

:class:`Source` is what the pipeline, the registry sync and the inference windows call; two
readers implement it. :class:`ClientSource` goes through ``MlflowClient`` (any tracking URI:
http(s), ``databricks``, file stores, and databases). :class:`~carbonledger.etl.store_read.
StoreReader` reads a database tracking URI with SQL in one read-only snapshot, ten times and
more faster, and imports no MLflow. :func:`open_source` picks one per pass from the URI and
``CARBONLEDGER_ETL_READ`` (``auto``: SQL for a database URI at a tested MLflow schema
revision, else the client with one warning saying why; ``client``; ``store``: SQL or fail).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Protocol

from carbonledger.errors import EtlError, StoreReadError
from carbonledger.etl import extract
from carbonledger.etl.extract import PAGE_SIZE, RegisteredModelInfo
from carbonledger.etl.transform import ExperimentInfo

log = logging.getLogger(__name__)

ReadMode = Literal["auto", "client", "store"]


class Source(Protocol):
    """What the ETL reads from one tracking source during one pass.

    Runs are objects with MLflow's attribute names: ``info.run_id, experiment_id, run_name,
    status, start_time, end_time, user_id, lifecycle_stage``, ``data.metrics`` (latest value
    per key), ``data.tags`` and ``data._metric_objs`` (latest ``Metric`` per key, with
    ``step`` and ``timestamp``). Metric points have ``key, value, timestamp, step``.
    """

    uri: str
    kind: str
    """``client`` or ``store`` (for logs and summaries)."""

    def experiments(self) -> dict[str, ExperimentInfo]:
        """Every experiment (active and deleted) by id."""
        ...

    def changed_run_pages(
        self,
        experiment_ids: Sequence[str],
        *,
        end_time_ms: int | None,
        heartbeat_ms: int | None,
        lookback_ms: int = 0,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[list[Any]]:
        """Pages of runs that may have changed since the cursors (all runs without one)."""
        ...

    def metric_histories(
        self, run_ids: Iterable[str], keys: Sequence[str]
    ) -> Iterator[tuple[str, dict[str, list[Any]]]]:
        """``(run_id, {key: every logged point, in MLflow's order})`` for each run."""
        ...

    def metric_points(self, run_ids: Sequence[str], key: str) -> list[tuple[str, int, float]]:
        """Every logged point of one key: ``(run_id, timestamp_ms, value)``.

        Each run's points side by side, in MLflow's order (``metric_histories``' order).
        """
        ...

    def registered_models(self, *, updated_since_ms: int | None) -> list[RegisteredModelInfo]:
        """Registered models updated at or after ``updated_since_ms``, with their versions."""
        ...

    def logged_model_source_runs(self, model_ids: Sequence[str]) -> dict[str, str]:
        """``source_run_id`` of each (not deleted) LoggedModel id."""
        ...


class ClientSource:
    """A tracking source read through ``MlflowClient`` (``carbonledger.etl.extract``)."""

    kind = "client"

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.client = extract.open_client(uri)

    def experiments(self) -> dict[str, ExperimentInfo]:
        """Every experiment (active and deleted) by id."""
        return extract.experiments(self.client, self.uri)

    def changed_run_pages(
        self,
        experiment_ids: Sequence[str],
        *,
        end_time_ms: int | None,
        heartbeat_ms: int | None,
        lookback_ms: int = 0,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[list[Any]]:
        """``extract.changed_run_pages`` (MLflow's ``search_runs``)."""
        return extract.changed_run_pages(
            self.client,
            self.uri,
            list(experiment_ids),
            end_time_ms=end_time_ms,
            heartbeat_ms=heartbeat_ms,
            lookback_ms=lookback_ms,
            page_size=page_size,
        )

    def metric_histories(
        self, run_ids: Iterable[str], keys: Sequence[str]
    ) -> Iterator[tuple[str, dict[str, list[Any]]]]:
        """``MlflowClient.get_metric_history`` of each key of each run."""
        for run_id in run_ids:
            yield run_id, {key: self.client.get_metric_history(run_id, key) for key in keys}

    def metric_points(self, run_ids: Sequence[str], key: str) -> list[tuple[str, int, float]]:
        """``metric_histories`` of one key as ``(run_id, timestamp_ms, value)`` points."""
        return points_of(self.metric_histories(run_ids, [key]), key)

    def registered_models(self, *, updated_since_ms: int | None) -> list[RegisteredModelInfo]:
        """``extract.registered_models``."""
        return extract.registered_models(self.client, self.uri, updated_since_ms=updated_since_ms)

    def logged_model_source_runs(self, model_ids: Sequence[str]) -> dict[str, str]:
        """``extract.logged_model_source_runs``."""
        return extract.logged_model_source_runs(self.client, list(model_ids))

    def close(self) -> None:
        """Nothing to release (MLflow's client keeps no transaction)."""


def points_of(
    histories: Iterable[tuple[str, dict[str, list[Any]]]], key: str
) -> list[tuple[str, int, float]]:
    """``Source.metric_points`` from ``metric_histories``' answer."""
    return [(run_id, p.timestamp, p.value) for run_id, h in histories for p in h.get(key, [])]


GC_THRESHOLD = (100_000, 50, 1000)
"""CPython's cyclic GC thresholds during a pass (the default is 2000, 10, 10)."""


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Collect cyclic garbage rarely while a pass runs, as it was after.

    A pass allocates millions of short-lived, acyclic containers (runs, metric rows, ledger
    rows) that reference counting frees; with the default thresholds CPython's cyclic
    collector traverses each of them several times (a quarter of a full load's CPU).
    Objects from before the pass (imports) are frozen out of the collections meanwhile.
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


@contextmanager
def open_source(uri: str, *, read: ReadMode | None = None) -> Iterator[Source]:
    """The reader of ``uri`` for one pass; a store snapshot is released on exit.

    The pass runs with :func:`fewer_gc_passes`.

    Args:
        uri: the tracking URI.
        read: ``auto``, ``client`` or ``store`` (default: ``CARBONLEDGER_ETL_READ``).

    Raises:
        StoreReadError: a database URI that is no MLflow store (an empty database included),
            a store whose schema is too old or unknown to the installed MLflow (on either
            path: the client would create tables, or fail with a traceback), or (``store``)
            one the direct reader cannot read.
        EtlError: the store cannot be reached.
    """
    with fewer_gc_passes():
        with _open(uri, read) as source:
            yield source


@contextmanager
def _open(uri: str, read: ReadMode | None) -> Iterator[Source]:
    from carbonledger.etl.store_read import StoreReader
    from carbonledger.etl.store_schema import is_database_uri, schema_problem

    if read is None:
        from carbonledger.settings import get_settings

        read = get_settings().etl_read
    if not is_database_uri(uri):
        if read == "store":
            raise EtlError(
                f"CARBONLEDGER_ETL_READ=store reads database tracking URIs only (sqlite:///, "
                f"postgresql://, mysql://), not {uri.split(':', 1)[0]}: set it to auto"
            )
        yield ClientSource(uri)
        return
    # Checked on every path, read-only: MLflow's client would create its tables in a database
    # that is no store yet, and fail with a traceback on a schema it does not know.
    reader = StoreReader(uri).begin()
    try:
        problem = schema_problem(reader.schema_revision(), uri)
        if problem is None and read != "client" and reader.uses_workspaces():
            problem = (
                "the MLflow store keeps experiments in several workspaces, which the direct "
                "SQL reader does not read"
            )
    except BaseException:
        reader.close()
        raise
    if read == "client":
        reader.close()
        yield ClientSource(uri)
        return
    if problem is not None:
        reader.close()
        if read == "store":
            raise StoreReadError(f"{problem}: set CARBONLEDGER_ETL_READ=auto to use the client")
        log.warning(
            "%s; reading it through the MLflow client instead (slower; set "
            "CARBONLEDGER_ETL_READ=client to choose that without this warning)",
            problem,
        )
        yield ClientSource(uri)
        return
    log.info("etl: reading MLflow's tables directly (schema revision %s)", reader.revision)
    try:
        yield reader
    finally:
        reader.close()
