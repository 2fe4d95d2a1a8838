"""Docs are part of the feature: every CLI command and every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from carbonledger.cli import app
from carbonledger.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _command_paths(cmd: object, prefix: str = "carbonledger") -> list[str]:
    # Typer >= 0.29 vendors click, so duck-type groups instead of isinstance(click.Group).
    paths: list[str] = []
    commands = getattr(cmd, "commands", None)
    if isinstance(commands, dict):
        for name, sub in commands.items():
            if getattr(sub, "hidden", False):
                continue
            paths.append(f"{prefix} {name}")
            paths.extend(_command_paths(sub, f"{prefix} {name}"))
    return paths


def test_every_cli_command_has_a_section_in_docs_cli() -> None:
    text = (DOCS / "cli.md").read_text()
    headings = set(re.findall(r"^#{2,4} `?(carbonledger[^`\n]*?)`?\s*$", text, flags=re.M))
    commands = _command_paths(typer.main.get_command(app))
    assert commands, "the CLI registers no command"
    missing = [c for c in commands if c not in headings]
    assert not missing, (
        f"undocumented commands (add a '## <command>' section to docs/cli.md): {missing}"
    )


def test_every_setting_is_documented_in_docs_configuration() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [
        f"CARBONLEDGER_{name.upper()}"
        for name in Settings.model_fields
        if f"`CARBONLEDGER_{name.upper()}`" not in text
    ]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def test_settings_table_in_docs_is_current() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gen_config_docs", DOCS.parent / "scripts" / "gen_config_docs.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (DOCS / "configuration.md").read_text()
    assert module.updated_doc(text) == text, "run: .venv/bin/python scripts/gen_config_docs.py"
