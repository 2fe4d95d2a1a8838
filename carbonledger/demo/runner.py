"""The demo's steps in order, in one work folder that a second run reuses.

Everything lives under ``DemoPaths.root`` (default ``.carbonledger/demo`` in the current
folder): the SQLite MLflow store, its artifacts and the SQLite ledger. A second run finds the
trained runs there (``trained.json``) and does not train again; the ETL pass is incremental.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DemoPaths:
    """Where the demo keeps its MLflow store, artifacts and ledger."""

    root: Path

    @property
    def mlflow_uri(self) -> str:
        """SQLite tracking (and registry) store of the demo."""
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifacts(self) -> Path:
        """Artifact folder of the demo's experiments."""
        return self.root / "artifacts"

    @property
    def ledger_url(self) -> str:
        """SQLite ledger of the demo."""
        return f"sqlite:///{self.root / 'ledger.db'}"

    @property
    def marker(self) -> Path:
        """Record of what was already done, so a second run reuses it."""
        return self.root / "trained.json"

    @property
    def budgets(self) -> Path:
        """The demo's ``budgets.yaml`` (copied from the package on the first run)."""
        return self.root / "budgets.yaml"


@dataclass(slots=True)
class DemoResult:
    """What the demo did, for the caller (and the tests) to check."""

    paths: DemoPaths
    trained_run_ids: list[str] = field(default_factory=list)
    synthetic_run_ids: list[str] = field(default_factory=list)
    reused: bool = False
    requests_served: dict[str, int] = field(default_factory=dict)
    etl: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    budgets: list[Any] = field(default_factory=list)
    advice: list[Any] = field(default_factory=list)


def free_port(preferred: int) -> int:
    """``preferred`` when nothing listens on it on loopback, else the next free port."""
    import socket

    for port in range(preferred, preferred + 50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {preferred}-{preferred + 49}: pass --port")


_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")


@contextmanager
def _demo_mlflow(paths: DemoPaths) -> Iterator[None]:
    """Point MLflow at the demo's store, and put everything back afterwards.

    ``run_demo`` is also called in-process (tests, notebooks): the tracking URI, the active
    experiment and the environment it changes must not leak into the caller's MLflow.
    """
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    paths.root.mkdir(parents=True, exist_ok=True)
    paths.artifacts.mkdir(exist_ok=True)
    saved_env = {k: os.environ.get(k) for k in _MLFLOW_ENV}
    saved_uris = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    saved_experiment = fluent._active_experiment_id
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.set_tracking_uri(paths.mlflow_uri)
    mlflow.set_registry_uri(paths.mlflow_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_uris[0])  # type: ignore[arg-type]  # None unsets it
        registry_utils._registry_uri = saved_uris[1]
        fluent._active_experiment_id = saved_experiment
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _train(paths: DemoPaths, say: Say) -> tuple[dict[str, Any], bool]:
    if paths.marker.is_file():
        reused: dict[str, Any] = json.loads(paths.marker.read_text())
        say(f"reusing {len(reused['trained_run_ids'])} trained runs in {paths.root}")
        return reused, True
    from carbonledger.demo.cut_history import write_cut_history
    from carbonledger.demo.history import write_history
    from carbonledger.demo.serving import serve_traffic, write_inference_history
    from carbonledger.demo.training import train_all

    say("training small models with MLflow autolog (metered by the carbonledger plugin)")
    done: dict[str, Any] = {"trained_run_ids": train_all(paths.artifacts)}
    say("adding six months of synthetic history (runs tagged carbon.synthetic=true)")
    done["synthetic_run_ids"] = write_history(paths.artifacts)
    say("adding a blind grid search and a fine-tune run past its best epoch (synthetic)")
    done["synthetic_run_ids"] += write_cut_history(paths.artifacts)
    say("serving the registered models through the inference meter (bursts and idle time)")
    done["requests_served"] = serve_traffic()
    say("adding 60 days of synthetic serving windows (carbon.synthetic=true)")
    done["synthetic_run_ids"] += write_inference_history()
    paths.marker.write_text(json.dumps(done, indent=2))
    return done, False


def _load_ledger(paths: DemoPaths, say: Say) -> list[dict[str, Any]]:
    from carbonledger.etl import run_etl
    from carbonledger.ledger import (
        create_ledger_engine,
        migrate,
        seed_emission_factors,
        shipped_factors,
    )
    from carbonledger.ledger.hourly_factors import seed_hourly_factors

    engine = create_ledger_engine(paths.ledger_url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            seed_emission_factors(conn, factors=shipped_factors())
            seed_hourly_factors(conn)
        summaries = run_etl(engine, mlflow_uris=[paths.mlflow_uri])
    finally:
        engine.dispose()
    out = [s.as_dict() for s in summaries]
    for s in out:
        say(
            f"ETL: loaded {s['loaded']}, updated {s['updated']}, unchanged {s['unchanged']}, "
            f"quarantined {sum(s['quarantined'].values())}"
        )
    return out


def _check_budgets(paths: DemoPaths, say: Say) -> list[Any]:
    """Sync the demo's budgets.yaml, evaluate, record alerts, tag the registered models."""
    from importlib.resources import files

    from carbonledger.budgets import check_budgets
    from carbonledger.ledger import create_ledger_engine

    if not paths.budgets.is_file():
        paths.budgets.write_text(files("carbonledger.demo").joinpath("budgets.yaml").read_text())
    engine = create_ledger_engine(paths.ledger_url)
    try:
        report = check_budgets(engine, budgets_path=paths.budgets, webhook_url="")
    finally:
        engine.dispose()
    say(f"budgets: {len(report.statuses)} checked, {report.alerts_new} new alerts recorded")
    return list(report.statuses)


# Third-party loggers whose INFO/WARNING lines drown the demo's own (never touched outside it).
QUIET_LOGGERS = ("alembic", "mlflow", "urllib3", "git")


@contextmanager
def quiet_third_parties(say: Say) -> Iterator[None]:
    """Silence third-party warnings and chatter during the demo; say how many there were.

    Python warnings (scikit-learn FutureWarnings, MLflow's pickle warning) are recorded,
    third-party loggers raised to ERROR and their stray stderr prints captured; everything is
    put back afterwards, so a user's own training keeps its warnings.
    """
    import contextlib
    import io
    import warnings

    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    stderr = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stderr(stderr):
                yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
    lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
    kinds = sorted({w.category.__name__ for w in caught})
    if caught or lines:
        say(
            f"silenced {len(caught)} third-party warnings ({', '.join(kinds) or 'none'}) and "
            f"{len(lines)} lines of library output (MLflow, scikit-learn, Alembic)"
        )


def run_demo(paths: DemoPaths, *, say: Say = log.info) -> DemoResult:
    """Train (or reuse), load the ledger and read the totals back; returns what it did."""
    with quiet_third_parties(say):
        return _run_demo(paths, say)


def _run_demo(paths: DemoPaths, say: Say) -> DemoResult:
    from carbonledger.demo.summary import ledger_totals

    result = DemoResult(paths=paths)
    with _demo_mlflow(paths):
        done, result.reused = _train(paths, say)
    result.trained_run_ids = done["trained_run_ids"]
    result.synthetic_run_ids = done.get("synthetic_run_ids", [])
    result.requests_served = done.get("requests_served", {})
    result.etl = _load_ledger(paths, say)
    result.totals = ledger_totals(paths.ledger_url)
    with _demo_mlflow(paths):
        result.budgets = _check_budgets(paths, say)
    result.advice = _advise(paths)
    return result


def _advise(paths: DemoPaths) -> list[Any]:
    """Every recommendation on the demo's ledger, largest saving first."""
    from carbonledger.advise import advise
    from carbonledger.ledger import create_ledger_engine

    engine = create_ledger_engine(paths.ledger_url)
    try:
        return advise(engine)
    finally:
        engine.dispose()
