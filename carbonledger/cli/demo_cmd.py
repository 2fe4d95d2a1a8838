"""``carbonledger demo``: the whole product on embedded defaults (SQLite MLflow, SQLite ledger)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""
    app.command("demo")(demo_cmd)


def demo_cmd(
    directory: Annotated[
        Path, typer.Option("--dir", help="Work folder (MLflow store, artifacts, ledger).")
    ] = Path(".carbonledger/demo"),
    no_app: Annotated[
        bool, typer.Option("--no-app", help="Stop before the app (or CARBONLEDGER_DEMO_NO_APP=1).")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Port of the app (next free one).")] = 8501,
) -> None:
    """Train and serve real models with the plugin, load the ledger, print totals, start the app."""
    from rich.console import Console

    from carbonledger.demo import DemoPaths, run_demo
    from carbonledger.settings import get_settings

    console = Console()
    result = run_demo(DemoPaths(directory.resolve()), say=lambda m: console.print(f"[dim]{m}"))
    _print_totals(console, result.totals, result.budgets)
    _print_top_advice(console, result.advice)
    console.print(f"MLflow store: {result.paths.mlflow_uri}")
    console.print(f"ledger:       {result.paths.ledger_url}")
    _print_next(console, result.paths.ledger_url)
    if no_app or get_settings().demo_no_app:
        console.print("app not started (--no-app): run the `carbonledger app` command above")
        return
    _serve(console, result.paths.ledger_url, port)


def _print_top_advice(console: Any, advice: list[Any]) -> None:
    from carbonledger.cli.advise_cmd import print_table

    console.print("[bold]Where to cut: the top three recommendations[/]")
    print_table(advice[:3])


def next_commands(ledger_url: str) -> list[str]:
    """The commands the demo suggests, on its own ledger (each works as printed)."""
    from datetime import UTC, datetime

    year = datetime.now(UTC).year
    return [
        f"carbonledger advise --ledger-url {ledger_url}",
        f"carbonledger budgets check --ledger-url {ledger_url}",
        f"carbonledger report --period {year} --ledger-url {ledger_url}",
        f"carbonledger app --ledger-url {ledger_url}",
    ]


def _print_next(console: Any, ledger_url: str) -> None:
    console.print("next:")
    for command in next_commands(ledger_url):
        console.print(f"  {command}", soft_wrap=True, highlight=False)


def _serve(console: Any, ledger_url: str, port: int) -> None:
    from carbonledger.demo.runner import free_port
    from carbonledger.reporting.serve import start_app, wait_healthy

    port = free_port(port)
    url = f"http://127.0.0.1:{port}"
    process = start_app(ledger_url=ledger_url, port=port)
    try:
        if not wait_healthy(url, process=process):
            err = process.stderr.read().decode(errors="replace")[-2000:] if process.stderr else ""
            raise typer.Exit(_app_failed(err))
        console.print(f"[bold green]app: {url}[/] (Ctrl-C stops it)")
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def _app_failed(stderr: str) -> int:
    typer.echo(f"error: the app did not start:\n{stderr}", err=True)
    return 1


def _print_totals(console: Any, totals: dict[str, Any], budgets: list[Any]) -> None:
    from rich.table import Table

    columns = ("training_runs", "requests", "energy_kwh", "training_co2e_kg",
               "inference_co2e_kg", "co2e_kg")  # fmt: skip
    headers = ("runs", "requests", "kwh", "train_kg", "serve_kg", "co2e_kg")
    for title, key, first in (
        ("By team", "teams", "team"),
        ("By model (lifecycle: training + inference)", "models", "model_name"),
    ):
        table = Table(title=title)
        for col in (first, *headers):
            table.add_column(col, justify="left" if col == first else "right")
        for row in totals[key]:
            cells = [f"{row[c] or 0:,.0f}" if c in ("training_runs", "requests") else
                     f"{row[c] or 0.0:,.3f}" for c in columns]  # fmt: skip
            table.add_row(str(row[first]), *cells)
        console.print(table)
    table = Table(title="Budgets")
    for col in ("budget", "limit_kg", "used_kg", "used", "status", "projection"):
        table.add_column(col, justify="left" if col in ("budget", "status") else "right")
    for b in budgets:
        name = b.budget.scope_name
        scope = name if b.budget.scope == "model" else f"{name} per {b.budget.period}"
        colour = {"exceeded": "red", "warning": "yellow"}.get(b.status, "green")
        table.add_row(
            f"{b.budget.scope} {scope}", f"{b.budget.limit_co2e_kg:,.1f}",
            f"{b.used_co2e_kg:,.1f}", f"{b.used_pct:.0f}%", f"[{colour}]{b.status}[/]",
            b.projection,
        )  # fmt: skip
    console.print(table)
    console.print(
        f"total: {totals['co2e_kg']:.3f} kg CO2e (location-based, recomputed in the ledger); "
        f"{totals['runs']} runs, {totals['energy_kwh']:.3f} kWh facility energy"
    )
