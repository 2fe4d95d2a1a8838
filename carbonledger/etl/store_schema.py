"""MLflow's tracking-store tables as the direct path reads them, without MLflow.

The table constructs (only the columns read), the small row objects the ETL reads
(:class:`Run`, :class:`Metric`), opening a store read-only, and the schema revision check
(:func:`schema_problem`). :mod:`carbonledger.etl.store_read` reads through them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Engine,
    Float,
    Integer,
    String,
    column,
    select,
    table,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from carbonledger.errors import StoreReadError

log = logging.getLogger(__name__)

TESTED_REVISIONS: Final = frozenset({"dc11669786a5"})
"""MLflow schema revisions this reader was tested on: the head of mlflow 3.17.2."""
TESTED_MLFLOW: Final = "3.17.2"
DIALECTS: Final = ("sqlite", "postgresql", "mysql")
PAGE_SIZE: Final = 10_000
CHUNK: Final = 500  # model names/ids per IN list
ID_CHUNK: Final = 2000  # run ids per IN list (SQLite allows 32766 variables)
DEFAULT_WORKSPACE: Final = "default"
PROMPT_TAG: Final = "mlflow.prompt.is_prompt"
RUN_NAME_TAG: Final = "mlflow.runName"
DELETED_INTERNAL: Final = "Deleted_Internal"
LIFECYCLE_STAGES: Final = ("active", "deleted")  # ViewType.ALL
_NAN = float("nan")


# MLflow's tables, only the columns read (lightweight Core constructs: no MLflow import).
_TYPES: Final = {
    **dict.fromkeys(("experiment_id", "version"), Integer()),
    **dict.fromkeys(("start_time", "end_time", "timestamp", "step"), BigInteger()),
    **dict.fromkeys(("creation_time", "last_updated_time"), BigInteger()),
    "value": Float(),  # metric values; tag values are declared text below
    "is_nan": Boolean(),
}
_TEXT_VALUE: Final = ("tags", "experiment_tags", "registered_model_tags", "model_version_tags")


def _table(name: str, *columns: str) -> Any:
    def type_of(col: str) -> Any:
        if col == "value" and name in _TEXT_VALUE:
            return String()
        return _TYPES.get(col, String())

    return table(name, *(column(c, type_of(c)) for c in columns))


RUNS = _table(
    "runs",
    *("run_uuid", "name", "experiment_id", "user_id", "status", "start_time", "end_time"),
    *("lifecycle_stage", "artifact_uri"),
)
TAGS = _table("tags", "run_uuid", "key", "value")
LATEST = _table("latest_metrics", "run_uuid", "key", "value", "timestamp", "step", "is_nan")
METRICS = _table("metrics", "run_uuid", "key", "value", "timestamp", "step", "is_nan")
EXPERIMENTS = _table("experiments", "experiment_id", "name", "lifecycle_stage", "workspace")
EXPERIMENT_TAGS = _table("experiment_tags", "experiment_id", "key", "value")
MODELS = _table("registered_models", "workspace", "name", "creation_time", "last_updated_time")
MODEL_TAGS = _table("registered_model_tags", "workspace", "name", "key", "value")
VERSIONS = _table(
    "model_versions", "workspace", "name", "version", "run_id", "creation_time", "current_stage"
)
VERSION_TAGS = _table("model_version_tags", "workspace", "name", "key", "value")
LOGGED_MODELS = _table("logged_models", "model_id", "source_run_id", "lifecycle_stage")
ALEMBIC = _table("alembic_version", "version_num")
_RUN_ROW = tuple(
    RUNS.c[c]
    for c in (
        "run_uuid",
        "name",
        "experiment_id",
        "user_id",
        "status",
        "start_time",
        "end_time",
        "lifecycle_stage",
        "artifact_uri",
    )
)
_TAG_ROWS = select(TAGS.c.run_uuid, TAGS.c.key, TAGS.c.value)
_METRIC_ROWS = select(*(LATEST.c[c] for c in ("run_uuid", "key", "value", "timestamp", "step")))
_METRIC_ROWS = _METRIC_ROWS.add_columns(LATEST.c.is_nan)


class Metric(tuple):
    """A metric value with ``mlflow.entities.Metric``'s names: ``key, value, timestamp, step``.

    It is the row as read, ``(run_uuid, key, value, timestamp, step, is_nan)``, so making one
    is a tuple copy (a million runs carry tens of millions of them); ``value`` is NaN when
    MLflow stored a NaN (as 0 with ``is_nan``).
    """

    __slots__ = ()
    run_id = property(itemgetter(0))
    key = property(itemgetter(1))
    value = property(itemgetter(2))
    timestamp = property(itemgetter(3))
    step = property(itemgetter(4))


def _metric(row: Any) -> Metric:
    if row[5]:  # is_nan: MLflow stores 0 and returns NaN
        return Metric((row[0], row[1], _NAN, row[3], row[4], row[5]))
    return Metric(row)


@dataclass(slots=True)
class RunInfo:
    """The run attributes the ETL reads (``mlflow.entities.RunInfo``'s names)."""

    run_id: str
    experiment_id: str
    run_name: str | None
    user_id: str | None
    status: str | None
    start_time: int | None
    end_time: int | None
    lifecycle_stage: str | None
    artifact_uri: str | None


@dataclass(slots=True)
class RunData:
    """Latest metrics (by key) and tags; ``_metric_objs`` gives each metric's step/timestamp.

    ``metric_rows`` are the ``latest_metrics`` rows as read; their :class:`Metric` objects
    are made when asked for (most runs are only read for their values).
    """

    metrics: dict[str, float]
    tags: dict[str, str | None]
    metric_rows: list[Any]

    @property
    def _metric_objs(self) -> list[Metric]:
        return [_metric(row) for row in self.metric_rows]


@dataclass(slots=True)
class Run:
    """A run read from the store: ``info`` and ``data`` like ``mlflow.entities.Run``."""

    info: RunInfo
    data: RunData


def is_database_uri(uri: str) -> bool:
    """Whether ``uri`` is a database URI MLflow would open with its SQLAlchemy store."""
    scheme = uri.split(":", 1)[0].lower()
    return "://" in uri and scheme.split("+", 1)[0] in DIALECTS


def store_url(uri: str) -> URL:
    """The SQLAlchemy URL the reader opens for a tracking URI (SQLite: read-only file).

    Raises:
        StoreReadError: not a database URI, or a SQLite store file that does not exist.
    """
    from carbonledger.ledger.engine import redact_uri

    try:
        url = make_url(uri)
    except ArgumentError:
        raise StoreReadError(
            f"{redact_uri(uri)} is not a database URI: check --mlflow-uri"
        ) from None
    backend = url.get_backend_name()
    if backend == "postgresql" and url.drivername in ("postgresql", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3 is what carbonledger ships
    if backend != "sqlite":
        return url
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise StoreReadError(
            f"{uri} is not an MLflow store file: point --mlflow-uri at the SQLite file "
            "MLflow writes (sqlite:///path/to/mlflow.db)"
        )
    path = Path(url.database).expanduser().resolve()
    if not path.is_file():
        raise StoreReadError(
            f"no MLflow store at {path}: check --mlflow-uri (the ETL never creates a store)"
        )
    return URL.create("sqlite+pysqlite", database=f"file:{path}?mode=ro", query={"uri": "true"})


def open_engine(uri: str) -> Engine:
    """An engine with one connection for reading the store (SQLite: ``query_only``)."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    url = store_url(uri)
    engine = create_engine(url, poolclass=NullPool)
    if url.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # BEGIN is ours (see StoreReader.begin)
            dbapi_connection.execute("PRAGMA query_only = 1")
            dbapi_connection.execute("PRAGMA busy_timeout = 60000")

    return engine


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _group_tags(rows: Iterable[Any]) -> dict[str, dict[str, str | None]]:
    out: dict[str, dict[str, str | None]] = defaultdict(dict)
    for run_uuid, key, value in rows:
        out[run_uuid][key] = value
    return out


def _group_metrics(rows: Iterable[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for row in rows:  # the rows as read: this loop runs once per metric of every run
        out[row[0]].append(row)
    return out


def _run(row: Any, tags: dict[str, str | None] | None, metrics: list[Any] | None) -> Run:
    run_uuid, name, exp_id, user, status, start, end, stage, artifact_uri = row
    tags = tags if tags is not None else {}
    metrics = metrics if metrics is not None else []
    if not name:  # MLflow <= 1.29 kept the name only in a tag; MLflow falls back to it
        name = tags.get(RUN_NAME_TAG) or name
    info = RunInfo(run_uuid, str(exp_id), name, user, status, start, end, stage, artifact_uri)
    values = {m[1]: m[2] if not m[5] else _NAN for m in metrics}  # is_nan: MLflow's NaN
    return Run(info, RunData(values, tags, metrics))


# -- schema revisions ------------------------------------------------------------------------


def mlflow_revisions() -> tuple[str | None, dict[str, str | None]]:
    """The installed MLflow's schema head and its ``revision -> down_revision`` map.

    Read from its migration scripts as text (MLflow is not imported); ``(None, {})`` when
    MLflow is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.origin:
        return None, {}
    from carbonledger.ledger.migrate import script_revisions

    parents = script_revisions(Path(spec.origin).parent / "store" / "db_migrations" / "versions")
    children = {p for p in parents.values() if p}
    heads = [rev for rev in parents if rev not in children]
    return (heads[0] if len(heads) == 1 else None), parents


def schema_problem(revision: str | None, uri: str) -> str | None:
    """Why the direct path cannot read a store at ``revision`` (``None``: it can).

    Raises:
        StoreReadError: not an MLflow store, or a schema older than the installed MLflow's or
            unknown to it (MLflow itself would refuse it; the message gives the fix).
    """
    from carbonledger.ledger.engine import redact_uri

    if revision in TESTED_REVISIONS:
        return None
    shown = redact_uri(uri)
    if revision is None:
        raise StoreReadError(
            f"{shown} is not an MLflow tracking store (no alembic_version, experiments and runs "
            "tables): check --mlflow-uri, or create the store by starting MLflow on it once "
            "(mlflow server --backend-store-uri ...)"
        )
    head, parents = mlflow_revisions()
    ancestors, rev = set(), parents.get(head) if head else None
    while rev:
        ancestors.add(rev)
        rev = parents.get(rev)
    if revision in ancestors:
        raise StoreReadError(
            f"the MLflow store {shown} has schema revision {revision}, older than this MLflow "
            f"needs ({head or 'newer'}): back it up, then run `mlflow db upgrade {shown}`"
        )
    if parents and revision not in parents:  # MLflow's client would refuse it too
        raise StoreReadError(
            f"the MLflow store {shown} has schema revision {revision}, which the installed "
            f"MLflow does not know (its newest is {head}): a newer MLflow upgraded the store, "
            "so install the tracking server's MLflow version beside carbonledger "
            "(pip install 'mlflow==<server version>')"
        )
    return (
        f"the MLflow store {shown} has schema revision {revision}, which carbonledger's direct "
        f"SQL reader was not tested with (tested: {', '.join(sorted(TESTED_REVISIONS))}, the "
        f"schema of mlflow {TESTED_MLFLOW})"
    )
