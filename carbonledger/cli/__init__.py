"""The ``carbonledger`` command.

Each command group lives in its own module with a ``register(app)`` function; heavy imports
(mlflow, sqlalchemy, pandas) happen inside the commands so ``carbonledger --help`` is quick.
"""

from __future__ import annotations

import copy
import importlib
import sys

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
    only_command(app, sys.argv[1:])()


def only_command(whole: typer.Typer, argv: list[str]) -> typer.Typer:
    """``whole`` with only the command ``argv`` names, so typer builds that command alone.

    Typer builds the options of every registered command at each start (~0.1-0.3 s of a
    ``carbonledger etl`` with nothing to do); a process runs one command. Help, options and a
    name that is no command (typer's own error lists them all) get ``whole``.
    """
    if not argv or argv[0].startswith("-"):
        return whole
    name = argv[0]
    commands = [c for c in whole.registered_commands if _command_name(c) == name]
    groups = [g for g in whole.registered_groups if _group_name(g) == name]
    if not commands and not groups:
        return whole
    one = copy.copy(whole)
    one.registered_commands, one.registered_groups = commands, groups
    if whole.registered_callback is None:  # typer makes a lone command the whole program
        one.callback()(_group)
    return one


def _group() -> None:
    """Keeps ``carbonledger NAME`` a group with one command (no options of its own)."""


def _command_name(info: typer.models.CommandInfo) -> str | None:
    if isinstance(info.name, str):
        return info.name
    return typer.main.get_command_name(info.callback.__name__) if info.callback else None


def _group_name(info: typer.models.TyperInfo) -> str | None:
    for name in (info.name, info.typer_instance.info.name if info.typer_instance else None):
        if isinstance(name, str):
            return name
    return None
