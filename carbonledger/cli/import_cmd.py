"""``carbonledger import``: bring other tools' records into the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from carbonledger.cli._ledger_common import LEDGER_URL_HELP, ledger_errors, resolve_ledger_url

import_app = typer.Typer(help="Import energy records from other tools into the ledger.")


def register(app: typer.Typer) -> None:
    """Add the ``import`` command group."""
    app.add_typer(import_app, name="import")


@import_app.command("codecarbon")
def codecarbon_cmd(
    file: Annotated[Path, typer.Argument(help="CodeCarbon's emissions.csv.")],
    team: Annotated[
        str | None, typer.Option(help="Team to charge (default: team rules on project_name).")
    ] = None,
    source: Annotated[str, typer.Option(help="Source name in the ledger.")] = "codecarbon",
    ledger_url: Annotated[str | None, typer.Option("--ledger-url", help=LEDGER_URL_HELP)] = None,
) -> None:
    """Load a CodeCarbon emissions.csv (one row per CodeCarbon run) into the ledger."""
    from carbonledger.etl.codecarbon import import_codecarbon
    from carbonledger.etl.teams import TeamRules
    from carbonledger.ledger import create_ledger_engine
    from carbonledger.settings import get_settings

    url = resolve_ledger_url(ledger_url)
    with ledger_errors(url):
        rules = TeamRules.load(get_settings().team_rules_path)
        s = import_codecarbon(
            create_ledger_engine(url), file, source=source, team=team, rules=rules
        )
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.quarantined.items()))
    typer.echo(
        f"{file}: loaded {s.loaded}, updated {s.updated}, unchanged {s.unchanged}, "
        f"quarantined {sum(s.quarantined.values())}" + (f" ({reasons})" if reasons else "")
    )
