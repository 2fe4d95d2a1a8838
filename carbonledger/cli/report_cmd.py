"""``carbonledger report``: the period report (md, csv or html) from the ledger's rollups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from carbonledger.cli._ledger_common import (
    LEDGER_URL_HELP,
    READ_URL_HELP,
    ledger_errors,
    resolve_ledger_url,
    resolve_read_url,
)


def register(app: typer.Typer) -> None:
    """Add the ``report`` command."""
    app.command("report")(report_cmd)


def report_cmd(
    period: Annotated[
        str, typer.Option("--period", help="YYYY, YYYY-Qn or YYYY-MM (UTC), e.g. 2026-Q3.")
    ],
    fmt: Annotated[str, typer.Option("--format", help="md, csv or html.")] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    top: Annotated[int, typer.Option("--top", help="How many top emitting runs to list.")] = 10,
    ledger_url: Annotated[str | None, typer.Option("--ledger-url", help=LEDGER_URL_HELP)] = None,
    read_url: Annotated[str | None, typer.Option("--read-url", help=READ_URL_HELP)] = None,
) -> None:
    """Totals by team and model, Scope 2 both bases, estimates, budgets, methodology."""
    url = resolve_read_url(read_url, ledger_url)
    replica = url != resolve_ledger_url(ledger_url)
    with ledger_errors(url, option="--read-url"):
        from carbonledger.errors import ReportingError
        from carbonledger.reporting import build_report, parse_period, render, reporting_engine
        from carbonledger.reporting.report import FORMATS

        parsed = parse_period(period)
        if fmt not in FORMATS:
            raise ReportingError(f"--format {fmt!r} is unknown: use one of {', '.join(FORMATS)}")
        engine = reporting_engine(url)
        try:
            text = render(build_report(engine, period=parsed, top=top, replica=replica), fmt)
        finally:
            engine.dispose()
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
