"""Every view of the ledger and each of its columns is documented in docs/sql.md."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, inspect

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"


def test_every_view_and_column_is_documented(ledger: Engine) -> None:
    text = DOC.read_text()
    sections = dict(re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    insp = inspect(ledger)
    views = insp.get_view_names()
    assert {"activity_co2e", "v_lifecycle_runs", "v_run_emissions"} <= set(views)
    missing = [v for v in views if v not in sections]
    assert not missing, f"views missing a '## <view>' section in docs/sql.md: {missing}"
    # every column of the analysts' views and of the one CO2e fragment has a table row
    for view in [v for v in views if v.startswith("v_")] + ["activity_co2e"]:
        cols = [c["name"] for c in insp.get_columns(view)]
        undocumented = [c for c in cols if f"| `{c}` |" not in sections[view]]
        assert not undocumented, f"{view}: columns missing from docs/sql.md: {undocumented}"
