"""A public name has one home: carbonledger/contract.py.

Walks every module of the package with ``ast``: outside ``contract.py`` no string spells a
``carbon/`` metric name or is a ``carbon.`` tag name, and no number is a J-per-kWh literal
(docstrings excepted: they may name what a function reads). Also checks that every metric and
tag of the contract is documented.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from carbonledger import contract

PACKAGE = Path(contract.__file__).resolve().parent
DOCS = PACKAGE.parent / "docs"
METRIC = re.compile(r"carbon/(?:[a-z]|$)")
TAG = re.compile(r"^carbon\.[a-z_]+$")
J_PER_KWH_LITERALS = {3.6e6}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            out.add(id(body[0].value))
    return out


def violations(source: str, name: str) -> list[str]:
    """Spellings of contract names or J-per-kWh literals in one module's source."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docs:
            continue
        value = node.value
        if isinstance(value, str) and (METRIC.search(value) or TAG.match(value)):
            found.append(f"{name}:{node.lineno}: {value!r}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value in J_PER_KWH_LITERALS:
                found.append(f"{name}:{node.lineno}: {value!r} (use contract.J_PER_KWH)")
    return found


def test_the_check_catches_what_it_must() -> None:
    assert violations('M = "carbon/energy_kwh"', "m")
    assert violations('T = "carbon.team"', "m")
    assert violations('F = f"carbon/{c}_energy_kwh"', "m")  # f-string parts too
    assert violations("x = e * 3.6e6", "m") and violations("x = e * 3_600_000", "m")
    assert not violations('"""Reads ``carbon/energy_kwh``."""\nx = 1', "m")  # docstring
    assert not violations('msg = "tag the run with carbon.team=nlp"', "m")  # prose
    assert not violations('pkg = "carbonledger.etl"', "m")


def test_no_module_outside_the_contract_spells_a_public_name() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "contract.py" or "__pycache__" in path.parts:
            continue
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    assert not found, "spell these through carbonledger.contract:\n" + "\n".join(found)


def test_every_contract_metric_and_tag_is_documented() -> None:
    text = (DOCS / "plugin.md").read_text() + (DOCS / "inference.md").read_text()
    names = [
        v
        for k, v in vars(contract).items()
        if isinstance(v, str) and (k.startswith(("M_", "W_", "TAG_")))
    ]
    names = [n for n in names if n.startswith(("carbon/", "carbon."))]
    assert names
    missing = [n for n in names if f"`{n}`" not in text]
    assert not missing, f"document these in docs/plugin.md or docs/inference.md: {missing}"
