"""``carbonledger advise``: ranked recommendations with the kg CO2e per year they save."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from carbonledger.cli._ledger_common import (
    LEDGER_URL_HELP,
    READ_URL_HELP,
    ledger_errors,
    resolve_read_url,
)

WIDE = 160
"""Columns of the table when stdout is not a terminal."""

if TYPE_CHECKING:
    from carbonledger.advise import Recommendation


def register(app: typer.Typer) -> None:
    """Add the ``advise`` command."""
    app.command("advise")(advise_cmd)


def advise_cmd(
    team: Annotated[str | None, typer.Option("--team", help="Only this team.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Only this registered model.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Window start: 90d or 12w before the latest activity, a period "
            "(2026, 2026-Q3, 2026-07) or a date. Default: the last 365 days.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    top: Annotated[int, typer.Option("--top", help="Show at most this many (0: all).")] = 0,
    ledger_url: Annotated[str | None, typer.Option("--ledger-url", help=LEDGER_URL_HELP)] = None,
    read_url: Annotated[str | None, typer.Option("--read-url", help=READ_URL_HELP)] = None,
) -> None:
    """What to change, per team and model, with the kg CO2e per year it saves."""
    url = resolve_read_url(read_url, ledger_url)
    with ledger_errors(url, option="--read-url"):
        from carbonledger.advise import advise
        from carbonledger.advise.base import parse_since
        from carbonledger.reporting import reporting_engine

        start = parse_since(since) if since else None
        engine = reporting_engine(url)
        try:
            found = advise(engine, team=team, model_name=model, since=start)
        finally:
            engine.dispose()
    shown = found[:top] if top > 0 else found
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in shown], indent=2))
        return
    print_table(shown)


def print_table(recommendations: list[Recommendation]) -> None:
    """The recommendations as a rich table (kind, team, model, saving, confidence, what)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Where to cut (kg CO2e per year at the current rate)")
    for name, justify in (
        ("Kind", "left"),
        ("Team", "left"),
        ("Model", "left"),
        ("Saving kg CO2e/yr", "right"),
        ("Saving kWh/yr", "right"),
        ("Confidence", "left"),
        ("What to change (evidence)", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in recommendations:
        table.add_row(
            r.kind,
            escape(r.team),
            escape(r.model_name or "-"),
            f"{r.saving_co2e_kg_per_year:,.1f}",
            f"{r.saving_energy_kwh_per_year:,.1f}",
            r.confidence,
            f"{escape(r.title)}\n[dim]{escape(r.evidence)}[/]",
        )
    # A terminal gets its own width; a pipe or a file a wide one, so rows stay readable.
    console = Console(width=None if sys.stdout.isatty() else WIDE)
    console.print(table)
    if not recommendations:
        console.print("no recommendations: nothing in the ledger's window to cut")
