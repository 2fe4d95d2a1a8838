"""Every reporting view and each of its columns is documented in docs/sql.md."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, inspect

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"


def test_every_view_and_column_is_documented(ledger: Engine) -> None:
    text = DOC.read_text()
    sections = dict(re.findall(r"^## (v_\w+)\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    insp = inspect(ledger)
    views = [v for v in insp.get_view_names() if v.startswith("v_")]
    assert len(views) == 6
    missing = [v for v in views if v not in sections]
    assert not missing, f"views missing a '## <view>' section in docs/sql.md: {missing}"
    for view in views:
        cols = [c["name"] for c in insp.get_columns(view)]
        undocumented = [c for c in cols if f"| `{c}` |" not in sections[view]]
        assert not undocumented, f"{view}: columns missing from docs/sql.md: {undocumented}"
