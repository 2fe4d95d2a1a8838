"""``carbonledger app``: the Streamlit app on the ledger (read-only)."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from carbonledger.cli._ledger_common import (
    LEDGER_URL_HELP,
    READ_URL_HELP,
    fail,
    resolve_ledger_url,
    resolve_read_url,
)


def register(app: typer.Typer) -> None:
    """Add the ``app`` command."""
    app.command("app")(app_cmd)


def app_cmd(
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8501,
    address: Annotated[
        str, typer.Option("--address", help="Address to bind (0.0.0.0 to share).")
    ] = "127.0.0.1",
    ledger_url: Annotated[str | None, typer.Option("--ledger-url", help=LEDGER_URL_HELP)] = None,
    read_url: Annotated[str | None, typer.Option("--read-url", help=READ_URL_HELP)] = None,
) -> None:
    """Serve the app (Overview, Teams, Models, Runs, Efficiency, What-if, Methodology)."""
    from carbonledger.reporting.serve import app_command, app_env, app_script

    script = app_script()
    if not script.is_file():
        raise fail(
            f"the app is not part of this installation ({script} is missing): reinstall "
            "carbonledger (pip install --force-reinstall carbonledger)"
        )
    env = app_env(resolve_ledger_url(ledger_url), resolve_read_url(read_url, ledger_url))
    raise typer.Exit(subprocess.call(app_command(port=port, address=address), env=env))
