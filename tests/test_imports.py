"""No module of the package imports a private name or module of another subpackage.

A subpackage shares with the others through its public names only: ``from
carbonledger.X._y import z``, ``from carbonledger.X.y import _z``, ``from carbonledger.X
import _y`` and ``import carbonledger.X._y`` are refused when X is not the importing module's
own subpackage (``carbonledger/cli/_ledger_common.py`` is used inside ``cli``: allowed).
Every module is read with ``ast``, imports inside functions and relative imports included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "carbonledger"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _parts(module_path: Path) -> list[str]:
    """``['carbonledger', 'cli', 'etl_cmd']`` for ``carbonledger/cli/etl_cmd.py``."""
    return list(module_path.relative_to(PACKAGE.parent).with_suffix("").parts)


def _subpackage(parts: list[str]) -> str | None:
    """The subpackage a dotted name lies in (None: a top-level module or the root)."""
    return parts[1] if len(parts) > 2 else None


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def private_imports(text: str, module_path: Path) -> list[str]:
    """What ``text``, as the module at ``module_path``, imports from other subpackages' privates.

    Args:
        text: Python source.
        module_path: where the module lives in the package (gives its subpackage and the
            base of its relative imports).
    """
    importer = _parts(module_path)
    own = _subpackage(importer)
    found = []
    for node in ast.walk(ast.parse(text, filename=str(module_path))):
        if isinstance(node, ast.ImportFrom):
            base = importer[: len(importer) - node.level] if node.level else []
            target = [*base, *(node.module.split(".") if node.module else [])]
            reached = [[*target, alias.name] for alias in node.names]
        elif isinstance(node, ast.Import):
            reached = [alias.name.split(".") for alias in node.names]
        else:
            continue
        for name in reached:
            if name[0] != "carbonledger" or _subpackage([*name, "_"]) == own:
                continue
            if any(_private(part) for part in name[1:]):
                found.append(f"{module_path.relative_to(PACKAGE)}:{node.lineno}: {'.'.join(name)}")
    return found


def test_the_walk_sees_every_module() -> None:
    assert len(MODULES) > 50 and PACKAGE / "mlflow_plugin" / "api.py" in MODULES


@pytest.mark.parametrize(
    ("source", "where", "refused"),
    [
        ("from carbonledger.mlflow_plugin._safety import guarded", "inference/meter.py", True),
        ("from carbonledger.mlflow_plugin.transport import _store", "inference/runs.py", True),
        ("from carbonledger.mlflow_plugin import _safety", "inference/meter.py", True),
        ("import carbonledger.mlflow_plugin._safety", "etl/load.py", True),
        ("from ..mlflow_plugin._safety import guarded", "inference/meter.py", True),
        ("from carbonledger.cli._ledger_common import fail", "footprint.py", True),
        ("from carbonledger.cli._ledger_common import fail", "cli/etl_cmd.py", False),
        ("from ._ledger_common import fail", "cli/etl_cmd.py", False),
        ("from carbonledger.mlflow_plugin.state import _state", "mlflow_plugin/hooks.py", False),
        ("from carbonledger.mlflow_plugin.api import report_once", "inference/meter.py", False),
        ("from carbonledger import __version__", "inference/serving.py", False),
        ("from mlflow.tracking._tracking_service.utils import _get_store", "etl/x.py", False),
    ],
)
def test_the_rule(source: str, where: str, refused: bool) -> None:
    found = private_imports(source, PACKAGE / where)
    assert bool(found) is refused, found


def test_no_module_imports_another_subpackages_private_names() -> None:
    found = [hit for p in MODULES for hit in private_imports(p.read_text(encoding="utf-8"), p)]
    assert not found, "import public names instead (give the subpackage a public one):\n" + (
        "\n".join(found)
    )
