"""``carbonledger etl``: load MLflow runs into the ledger, incrementally."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from carbonledger.cli._ledger_common import (
    LEDGER_URL_HELP,
    fail,
    ledger_errors,
    redact_uri,
    resolve_ledger_url,
)
from carbonledger.cli._startup import bulk_imports


def register(app: typer.Typer) -> None:
    """Add the ``etl`` command."""
    app.command("etl")(etl_cmd)


def etl_cmd(
    mlflow_uri: Annotated[
        list[str] | None,
        typer.Option(
            "--mlflow-uri",
            help="Tracking URI to read; repeat for several (default: CARBONLEDGER_MLFLOW_URIS, "
            "else MLFLOW_TRACKING_URI).",
        ),
    ] = None,
    ledger_url: Annotated[str | None, typer.Option("--ledger-url", help=LEDGER_URL_HELP)] = None,
    full: Annotated[
        bool,
        typer.Option("--full", help="Re-read every run (ignore cursors) and rebuild the rollups."),
    ] = False,
    lock_timeout: Annotated[
        float, typer.Option("--lock-timeout", help="Seconds to wait for another ETL.")
    ] = 60.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log each load step on stderr.")
    ] = False,
) -> None:
    """Load runs, energy, teams and lineage from MLflow into the ledger."""
    with _log_to_stderr(verbose):
        _etl(mlflow_uri, ledger_url, full=full, lock_timeout=lock_timeout, quiet=quiet)


def _etl(
    mlflow_uri: list[str] | None,
    ledger_url: str | None,
    *,
    full: bool,
    lock_timeout: float,
    quiet: bool,
) -> None:
    with bulk_imports():
        from carbonledger.etl import run_etl
        from carbonledger.ledger import create_ledger_engine
        from carbonledger.settings import get_settings

    uris = list(mlflow_uri or get_settings().mlflow_uris)
    if not uris and os.environ.get("MLFLOW_TRACKING_URI"):
        uris = [os.environ["MLFLOW_TRACKING_URI"]]
    url = resolve_ledger_url(ledger_url)
    if not uris:
        raise fail(
            "no MLflow tracking URI: pass --mlflow-uri, or set CARBONLEDGER_MLFLOW_URIS or "
            "MLFLOW_TRACKING_URI"
        )
    with ledger_errors(url):
        with bulk_imports():
            engine = create_ledger_engine(url)  # imports the driver (psycopg)
        with _progress(quiet) as report:
            summaries = run_etl(
                engine, mlflow_uris=uris, full=full, lock_timeout_s=lock_timeout, progress=report
            )
    for s in summaries:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.quarantined.items()))
        quarantined = sum(s.quarantined.values())
        typer.echo(
            f"{redact_uri(s.source)}: loaded {s.loaded}, updated {s.updated}, "
            f"unchanged {s.unchanged}, quarantined {quarantined}"
            + (f" ({reasons})" if reasons else "")
            + f", stale {s.stale}, models {s.models} in {s.duration_s:.2f} s"
        )
    if any(sum(s.quarantined.values()) for s in summaries):
        typer.echo("quarantined runs are listed in the ledger's quarantine table (docs/ledger.md)")


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int], None]]:
    """A spinner per source on stderr (``rich``, not imported with ``--quiet``)."""
    if quiet:
        yield lambda _uri, _seen: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} runs read"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def report(uri: str, seen: int) -> None:
            if uri not in tasks:
                tasks[uri] = progress.add_task(f"loading {redact_uri(uri)}", total=None)
            progress.update(tasks[uri], completed=seen)

        yield report


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (a CLI runner swaps it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


@contextmanager
def _log_to_stderr(verbose: bool) -> Iterator[None]:
    """Warnings (e.g. a store read through the client) on stderr; every step with ``-v``.

    For the command's duration only: the handler and level are restored after it, so a later
    command in the same process (tests, notebooks) is not changed by this one.
    """
    logger = logging.getLogger("carbonledger")
    handler = _StderrHandler()
    level = logger.level
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.setLevel(logging.INFO)
    else:
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        handler.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
