"""The ``carbonledger`` command.

Each command group lives in its own module with a ``register(app)`` function; heavy imports
(mlflow, sqlalchemy, pandas) happen inside the commands so ``carbonledger --help`` is quick.
"""

from __future__ import annotations

import importlib

from carbonledger.cli._startup import bulk_imports

with bulk_imports():
    import typer

app = typer.Typer(
    name="carbonledger",
    help="Energy and carbon accounting for ML: measure, meter MLflow runs, load the ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules under carbonledger.cli that define ``register(app)``; each owns its commands.
COMMAND_MODULES: tuple[str, ...] = (
    "measure_cmd",
    "estimate_cmd",
    "plugin_cmd",
    "db_cmd",
    "etl_cmd",
    "import_cmd",
    "demo_cmd",
    "report_cmd",
    "app_cmd",
    "inference_cmd",
    "budgets_cmd",
    "advise_cmd",
    "when_cmd",
)

with bulk_imports():
    for _name in COMMAND_MODULES:
        importlib.import_module(f"carbonledger.cli.{_name}").register(app)


def main() -> None:
    """Entry point of the ``carbonledger`` console script."""
    app()
