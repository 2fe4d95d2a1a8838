"""Read an MLflow tracking store's own tables with SQL (the ETL's direct path).

For a database tracking URI (``sqlite:///``, ``postgresql://``, ``mysql://``) this reads what
the ETL needs straight from MLflow's tables, without MLflow: experiments, changed runs with
their latest metrics and tags, metric histories, registered models and versions, and the
source runs of LoggedModels. It yields the same values MLflow's ``SqlAlchemyStore`` would
(same filters, NaN and run-name rules), as small objects with the attributes the ETL reads.

- **One snapshot per pass, read-only**: PostgreSQL ``REPEATABLE READ, READ ONLY``; SQLite one
  read transaction (the file opened with ``mode=ro``, ``PRAGMA query_only``); MySQL
  ``START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`` (untested). A run being written
  during a pass is read as committed at the snapshot (MLflow's ``log_batch`` commits metrics
  and tags in two transactions: docs/ledger.md).
- **Paging without OFFSET**, one page of runs in memory at a time: a full load walks ``runs``
  in physical order (PostgreSQL heap block ranges, SQLite rowid) so each page's tags and
  metrics lie close on disk; a cursor pass reads the matching ids, then pages of them. On a
  database server the next page is read in a helper thread while the pass transforms and
  loads the current one.
- **Schema check**: MLflow's ``alembic_version`` must be one of :data:`TESTED_REVISIONS`;
  :func:`schema_problem` tells an untested revision (the caller falls back to the client)
  from a store too old for this MLflow or a database that is no MLflow store.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Generator, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    bindparam,
    exists,
    false,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError

from carbonledger.contract import M_HEARTBEAT_MS
from carbonledger.errors import EtlError, first_line
from carbonledger.etl.extract import ModelVersionInfo, RegisteredModelInfo
from carbonledger.etl.store_schema import (
    _METRIC_ROWS,
    _NAN,
    _RUN_ROW,
    _TAG_ROWS,
    ALEMBIC,
    DEFAULT_WORKSPACE,
    DELETED_INTERNAL,
    EXPERIMENT_TAGS,
    EXPERIMENTS,
    ID_CHUNK,
    LATEST,
    LIFECYCLE_STAGES,
    LOGGED_MODELS,
    METRICS,
    MODEL_TAGS,
    MODELS,
    PAGE_SIZE,
    PROMPT_TAG,
    RUNS,
    VERSION_TAGS,
    VERSIONS,
    Metric,
    Run,
    _chunks,
    _group_metrics,
    _group_tags,
    _metric,
    _run,
    open_engine,
)
from carbonledger.etl.transform import ExperimentInfo

log = logging.getLogger(__name__)


class StoreReader:
    """One read-only snapshot of an MLflow store's tables; use as a context manager.

    Implements :class:`carbonledger.etl.sources.Source`.
    """

    kind = "store"

    def __init__(self, uri: str, engine: Engine | None = None) -> None:
        self.uri = uri
        self.engine = engine or open_engine(uri)
        self.conn: Connection | None = None
        self.revision: str | None = None
        self._experiment_ids: set[str] = set()

    # -- snapshot ------------------------------------------------------------------------------
    def begin(self) -> StoreReader:
        """Open the connection and the read-only snapshot transaction."""
        try:
            conn = self.engine.connect()
            dialect = conn.dialect.name
            if dialect == "postgresql":
                conn = conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
                conn.begin()
                conn.exec_driver_sql("SET LOCAL jit = off")  # compiling costs more than it saves
            elif dialect == "mysql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            else:
                conn.exec_driver_sql("BEGIN")  # deferred: the first read takes the snapshot
            self.conn = conn
        except SQLAlchemyError as exc:
            raise self._error(exc) from None
        return self

    def close(self) -> None:
        """End the snapshot (a rollback: nothing was written) and drop the connection."""
        if self.conn is not None:
            try:
                self.conn.rollback()
                self.conn.close()
            except SQLAlchemyError:
                pass
            self.conn = None
        self.engine.dispose()

    def __enter__(self) -> StoreReader:
        return self.begin()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, exc: BaseException) -> EtlError:
        from carbonledger.ledger.engine import redact_uri

        return EtlError(
            f"cannot read the MLflow store {redact_uri(self.uri)}: {first_line(exc)}. "
            "Check --mlflow-uri and that the database is up; the ledger was left as it was"
        )

    def _rows(self, stmt: Any, params: dict[str, Any] | None = None) -> list[Any]:
        assert self.conn is not None, "StoreReader.begin() first"
        try:
            return list(self.conn.execute(stmt, params or {}))
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    def _raw(self, stmt: Any, params: dict[str, Any] | None = None) -> list[Any]:
        """``_rows`` for the big reads: rows as the DBAPI cursor's plain tuples.

        SQLAlchemy compiles and executes the statement; fetching from its DBAPI cursor skips
        the per-row result processing (2-3x the fetch itself on SQLite).
        """
        assert self.conn is not None, "StoreReader.begin() first"
        try:
            result = self.conn.execute(stmt, params or {})
            try:
                return list(result.cursor.fetchall())
            finally:
                result.close()
        except SQLAlchemyError as exc:
            raise self._error(exc) from None
        except self.conn.dialect.loaded_dbapi.Error as exc:
            raise self._error(exc) from None

    # -- schema ------------------------------------------------------------------------------
    def schema_revision(self) -> str | None:
        """MLflow's schema revision of the store, or ``None`` when it is not an MLflow store."""
        from sqlalchemy import inspect

        assert self.conn is not None, "StoreReader.begin() first"
        try:
            names = set(inspect(self.conn).get_table_names())
        except SQLAlchemyError as exc:
            raise self._error(exc) from None
        if not {"alembic_version", "experiments", "runs"} <= names:
            return None
        rows = self._rows(select(ALEMBIC.c.version_num))
        self.revision = rows[0][0] if rows else None
        return self.revision

    def uses_workspaces(self) -> bool:
        """Whether experiments live outside MLflow's default workspace (multi-tenant store)."""
        stmt = (
            select(EXPERIMENTS.c.experiment_id)
            .where(EXPERIMENTS.c.workspace != DEFAULT_WORKSPACE)
            .limit(1)
        )
        return bool(self._rows(stmt))

    # -- experiments -------------------------------------------------------------------------
    def experiments(self) -> dict[str, ExperimentInfo]:
        """Every experiment (active and deleted) by id, with its tags."""
        e, t = EXPERIMENTS, EXPERIMENT_TAGS
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        for exp_id, key, value in self._rows(select(t.c.experiment_id, t.c.key, t.c.value)):
            tags[str(exp_id)][key] = value
        out = {}
        stmt = select(e.c.experiment_id, e.c.name).where(e.c.lifecycle_stage.in_(LIFECYCLE_STAGES))
        for exp_id, name in self._rows(stmt.order_by(e.c.experiment_id)):
            out[str(exp_id)] = ExperimentInfo(str(exp_id), name, tags.get(str(exp_id), {}))
        self._experiment_ids = set(out)
        return out

    # -- runs --------------------------------------------------------------------------------
    def changed_run_pages(
        self,
        experiment_ids: Sequence[str],
        *,
        end_time_ms: int | None,
        heartbeat_ms: int | None,
        lookback_ms: int = 0,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[list[Run]]:
        """The runs the client path's ``extract.changed_run_pages`` finds, in pages.

        Same filters (``end_time >= cursor - lookback``, then a non-NaN latest heartbeat
        ``>= cursor - lookback``; everything without a cursor), every lifecycle stage, pages
        in ``run_uuid`` order.
        """
        if not experiment_ids:
            return
        base = [RUNS.c.lifecycle_stage.in_(LIFECYCLE_STAGES), self._in_experiments(experiment_ids)]
        if end_time_ms is None:
            yield from self.run_pages(base, page_size, dense=True)
            return
        since_end = int(end_time_ms) - int(lookback_ms)
        yield from self.run_pages([*base, RUNS.c.end_time >= since_end], page_size)
        since = max(0, int(heartbeat_ms) - int(lookback_ms)) if heartbeat_ms is not None else 0
        hb = LATEST.alias("hb")  # its own name: the page queries join latest_metrics too
        beat = exists(
            select(hb.c.run_uuid).where(
                hb.c.run_uuid == RUNS.c.run_uuid,
                hb.c.key == M_HEARTBEAT_MS,
                hb.c.value >= float(since),
                hb.c.is_nan == false(),
            )
        )
        yield from self.run_pages([*base, beat], page_size)

    def _in_experiments(self, experiment_ids: Sequence[str]) -> Any:
        if self._experiment_ids and set(experiment_ids) >= self._experiment_ids:
            return RUNS.c.experiment_id.isnot(None)  # every experiment: no IN list
        return RUNS.c.experiment_id.in_([int(e) for e in experiment_ids])

    def run_pages(
        self, where: list[Any], page_size: int = PAGE_SIZE, *, dense: bool = False
    ) -> Iterator[list[Run]]:
        """Runs matching ``where`` (on ``runs``) in pages of about ``page_size``, no OFFSET.

        ``dense`` (a full load: every run matches) walks ``runs`` in physical order, so the
        tags and metrics of a page, written when its runs were, lie close together on disk:
        by ranges of heap blocks on PostgreSQL (TID range scans), by rowid on SQLite (by
        ``run_uuid`` elsewhere). A cursor pass (few runs match) first reads the matching run ids
        (one query the database plans freely: a sequential scan of ``runs``, not a walk of its
        primary key), then their rows in pages of ids, in ``run_uuid`` order. A page's tags and
        latest metrics are read by its run ids.
        """
        fetched = self._fetched_pages(where, page_size, dense)
        try:
            for rows, tag_rows, metric_rows in fetched:
                run_tags, run_metrics = _group_tags(tag_rows), _group_metrics(metric_rows)
                yield [_run(row, run_tags.get(row[0]), run_metrics.get(row[0])) for row in rows]
        finally:
            fetched.close()

    def _fetched_pages(
        self, where: list[Any], page_size: int, dense: bool
    ) -> Generator[tuple[list[Any], list[Any], list[Any]]]:
        """``(run rows, tag rows, metric rows)`` per page, the next one read ahead.

        On a database server the next page's queries run in a helper thread while the caller
        transforms and loads this one (the server works, the thread waits without the GIL);
        the connection is never used by two threads at once. SQLite reads in the caller's
        thread (its per-row GIL hand-offs would starve a helper thread).
        """
        assert self.conn is not None, "StoreReader.begin() first"
        pages = self._run_rows(where, page_size, dense)

        def fetch() -> tuple[list[Any], list[Any], list[Any]] | None:
            rows = next(pages, None)
            if rows is None:
                return None
            ids = [row[0] for row in rows]
            return rows, self._children(_TAG_ROWS, ids), self._children(_METRIC_ROWS, ids)

        if self.conn.dialect.name == "sqlite":
            while (page := fetch()) is not None:
                yield page
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="carbonledger-store-read") as pool:
            ahead = pool.submit(fetch)
            try:
                while (page := ahead.result()) is not None:
                    ahead = pool.submit(fetch)
                    yield page
            finally:
                ahead.cancel()
                try:
                    ahead.result()  # never leave a query running on the connection
                except Exception:  # noqa: S110 (the caller's error wins)
                    pass
                pages.close()

    def _run_rows(self, where: list[Any], page_size: int, dense: bool) -> Generator[list[Any]]:
        assert self.conn is not None, "StoreReader.begin() first"
        dialect = self.conn.dialect.name
        if dense and dialect == "postgresql":
            yield from self._block_ranges(where, page_size)
            return
        if not dense:  # a cursor pass: the ids that match first, then their rows by pages
            ids = sorted(row[0] for row in self._raw(select(RUNS.c.run_uuid).where(*where)))
            for chunk in _chunks(ids, page_size):
                yield sorted(self._by_ids(select(*_RUN_ROW), chunk), key=itemgetter(0))
            return
        key: Any = literal_column("runs.rowid") if dialect == "sqlite" else RUNS.c.run_uuid
        stmt = (
            select(*_RUN_ROW, key)
            .where(*where, key > bindparam("after"))
            .order_by(key)
            .limit(page_size)
        )
        after: Any = 0 if dialect == "sqlite" else ""
        while True:
            rows = self._raw(stmt, {"after": after})
            if rows:
                yield [row[:-1] for row in rows]
            if len(rows) < page_size:
                return
            after = rows[-1][-1]

    def _block_ranges(self, where: list[Any], page_size: int) -> Iterator[list[Any]]:
        """PostgreSQL: ``runs`` by ranges of heap blocks sized to about ``page_size`` runs."""
        [(blocks, per_block)] = self._rows(
            text(
                "SELECT pg_relation_size('runs') / current_setting('block_size')::int, "
                "CASE WHEN relpages > 0 AND reltuples > 0 THEN reltuples / relpages END "
                "FROM pg_class WHERE oid = 'runs'::regclass"
            )
        )
        step = max(1, int(page_size / (per_block or 30.0)))
        stmt = select(*_RUN_ROW).where(*where)
        bounded = stmt.where(text("runs.ctid >= CAST(:lo AS tid) AND runs.ctid < CAST(:hi AS tid)"))
        open_ended = stmt.where(text("runs.ctid >= CAST(:lo AS tid)"))
        start = 0
        while True:
            last = start + step >= blocks  # the last range is open: nothing is left behind
            params = {"lo": f"({start},0)"} | ({} if last else {"hi": f"({start + step},0)"})
            rows = self._raw(open_ended if last else bounded, params)
            if rows:
                yield rows
            if last:
                return
            start += step
            grow = page_size / len(rows) if rows else 4.0
            step = max(1, min(int(step * grow), step * 4))

    def _children(self, stmt: Any, ids: list[str]) -> list[Any]:
        """Rows of a run's child table (tags, latest metrics) for the runs ``ids``."""
        return self._by_ids(stmt, ids)

    def _by_ids(self, stmt: Any, ids: list[str]) -> list[Any]:
        """``stmt``'s rows whose first column (a ``run_uuid``) is one of ``ids``."""
        assert self.conn is not None, "StoreReader.begin() first"
        key = stmt.selected_columns[0]
        if self.conn.dialect.name == "postgresql":
            # One array parameter, joined as a set: PostgreSQL's row estimate for run_uuid
            # = ANY(array) is far too high on a big store and turns into a sequential scan
            # of the whole table; unnest() keeps it to one index probe per run.
            ids_param = bindparam("ids", type_=ARRAY(String))
            wanted = func.unnest(ids_param).table_valued("id").render_derived(name="wanted")
            joined = stmt.select_from(wanted.join(key.table, key == wanted.c.id))
            return self._raw(joined, {"ids": ids})
        out: list[Any] = []
        for chunk in _chunks(ids, ID_CHUNK):
            out += self._raw(stmt.where(key.in_(chunk)))
        return out

    # -- metric history ------------------------------------------------------------------------
    def metric_histories(
        self, run_ids: Iterable[str], keys: Sequence[str]
    ) -> Iterator[tuple[str, dict[str, list[Metric]]]]:
        """Every logged value of ``keys`` for each run, per key in MLflow's order.

        MLflow's ``get_metric_history`` orders by timestamp, step, value; so does this.
        """
        m = METRICS.c
        stmt = select(m.run_uuid, m.key, m.value, m.timestamp, m.step, m.is_nan).where(
            m.key.in_(list(keys))
        )
        ids = list(run_ids)
        for start in range(0, len(ids), ID_CHUNK):  # one query per chunk of runs, not per run
            chunk = ids[start : start + ID_CHUNK]
            grouped: dict[str, list[Any]] = defaultdict(list)
            for row in self._by_ids(stmt, chunk):
                grouped[row[0]].append(row)
            for run_id in chunk:
                history: dict[str, list[Metric]] = {key: [] for key in keys}
                rows = sorted(grouped.get(run_id, ()), key=lambda r: (r[1], r[3], r[4], r[2]))
                for row in rows:
                    history[row[1]].append(_metric(row))
                yield run_id, history

    def metric_points(self, run_ids: Sequence[str], key: str) -> list[tuple[str, int, float]]:
        """``metric_histories`` of one key as ``(run_id, timestamp_ms, value)``, in one read.

        The rows as read, sorted by run and then as MLflow orders a history (timestamp,
        step, stored value); no point objects.
        """
        m = METRICS.c
        stmt = select(m.run_uuid, m.timestamp, m.step, m.value, m.is_nan).where(m.key == key)
        rows = self._by_ids(stmt, list(run_ids))
        rows.sort(key=itemgetter(0, 1, 2, 3))
        return [(row[0], row[1], _NAN if row[4] else row[3]) for row in rows]

    # -- registry ------------------------------------------------------------------------------
    def registered_models(self, *, updated_since_ms: int | None) -> list[RegisteredModelInfo]:
        """Registered models (not prompts) updated at or after ``updated_since_ms``."""
        rm = MODELS.c
        prompt = exists(
            select(MODEL_TAGS.c.name).where(
                MODEL_TAGS.c.workspace == rm.workspace,
                MODEL_TAGS.c.name == rm.name,
                MODEL_TAGS.c.key == PROMPT_TAG,
                MODEL_TAGS.c.value == "true",
            )
        )
        stmt = select(rm.name, rm.creation_time, rm.last_updated_time).where(
            rm.workspace == DEFAULT_WORKSPACE, ~prompt
        )
        if updated_since_ms is not None:
            stmt = stmt.where(
                (rm.last_updated_time >= int(updated_since_ms)) | rm.last_updated_time.is_(None)
            )
        models = self._rows(stmt.order_by(rm.name))
        names = [row[0] for row in models]
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        versions: dict[str, list[ModelVersionInfo]] = defaultdict(list)
        t, v = MODEL_TAGS.c, VERSIONS.c
        prompt_versions = exists(
            select(VERSION_TAGS.c.name).where(
                VERSION_TAGS.c.workspace == v.workspace,
                VERSION_TAGS.c.name == v.name,
                VERSION_TAGS.c.key == PROMPT_TAG,
                VERSION_TAGS.c.value == "true",
            )
        )
        for chunk in _chunks(names):
            tag_stmt = select(t.name, t.key, t.value).where(
                t.workspace == DEFAULT_WORKSPACE, t.name.in_(chunk)
            )
            for name, key, value in self._rows(tag_stmt):
                tags[name][key] = value
            version_stmt = select(v.name, v.version, v.run_id, v.creation_time).where(
                v.workspace == DEFAULT_WORKSPACE,
                v.name.in_(chunk),
                v.current_stage != DELETED_INTERNAL,
                ~prompt_versions,
            )
            for name, version, run_id, created in self._rows(version_stmt.order_by(v.version)):
                versions[name].append(
                    ModelVersionInfo(name, int(version), run_id or None, None, created)
                )
        return [
            RegisteredModelInfo(name, created, updated, tags.get(name, {}), versions.get(name, []))
            for name, created, updated in models
        ]

    def logged_model_source_runs(self, model_ids: Sequence[str]) -> dict[str, str]:
        """``source_run_id`` of each LoggedModel id that is not deleted."""
        lm = LOGGED_MODELS.c
        out: dict[str, str] = {}
        for chunk in _chunks(list(model_ids)):
            stmt = select(lm.model_id, lm.source_run_id).where(
                lm.model_id.in_(chunk), lm.lifecycle_stage != "deleted"
            )
            out.update({model_id: run for model_id, run in self._rows(stmt) if run})
        return out
