"""``carbonledger db import-factors``: idempotent, versioned, all or nothing, line numbers."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from carbonledger.cli import app

runner = CliRunner()
SHARED = Path("/work/shared/data/intensity/hourly/NO_2023_hourly.csv.gz")


def _import(ledger: Engine, path: Path) -> tuple[int, str]:
    url = ledger.url.render_as_string(hide_password=False)
    result = runner.invoke(app, ["db", "import-factors", str(path), "--ledger-url", url])
    return result.exit_code, result.output


def _rows(ledger: Engine) -> list[tuple[object, ...]]:
    with ledger.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT zone, basis, utc_hour, intensity_g_per_kwh, version, is_current "
                    "FROM hourly_emission_factors ORDER BY zone, basis, utc_hour, version"
                )
            )
        ]


def test_plain_file_is_idempotent_and_a_changed_value_is_a_new_version(
    ledger: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "own.csv"
    path.write_text(
        "zone,datetime_utc,intensity_g_per_kwh,basis\n"
        "XX-OWN,2025-03-01T10:00Z,100,location\n"
        "XX-OWN,2025-03-01T10:30Z,200,location\n"  # sub-hourly: averaged into 10:00
        "XX-OWN,2025-03-01T11:00:00+00:00,50,\n"
        "XX-OWN,2025-03-01T11:00Z,20,market\n"
    )
    code, out = _import(ledger, path)
    assert code == 0, out
    assert "3 added" in out
    first = _rows(ledger)
    hour = 1_740_823_200 // 3600  # 2025-03-01T10:00Z
    assert first == [
        ("XX-OWN", "location", hour, 150.0, 1, True),
        ("XX-OWN", "location", hour + 1, 50.0, 1, True),
        ("XX-OWN", "market", hour + 1, 20.0, 1, True),
    ]
    code, out = _import(ledger, path)  # again: nothing changes
    assert code == 0 and "0 added, 0 restated, 3 unchanged" in out
    assert _rows(ledger) == first

    path.write_text("zone,datetime_utc,intensity_g_per_kwh\nXX-OWN,2025-03-01T11:00Z,60\n")
    code, out = _import(ledger, path)
    assert code == 0 and "1 restated" in out
    assert ("XX-OWN", "location", hour + 1, 50.0, 1, False) in _rows(ledger)
    assert ("XX-OWN", "location", hour + 1, 60.0, 2, True) in _rows(ledger)


def test_a_bad_row_refuses_the_whole_file_with_its_line_and_reason(
    ledger: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "zone,datetime_utc,intensity_g_per_kwh\n"
        "XX-OWN,2025-03-01T10:00Z,100\n"
        "XX-OWN,yesterday,100\n"
        "XX-OWN,2025-03-01T12:00Z,-5\n"
    )
    code, out = _import(ledger, path)
    assert code != 0
    assert "line 3: datetime is not an ISO 8601 time" in out
    assert "line 4: intensity is negative" in out
    assert _rows(ledger) == []  # nothing half-loaded


@pytest.mark.skipif(not SHARED.is_file(), reason="shared hourly data not here")
def test_portal_file_of_the_shared_data_loads_every_hour_with_its_flag(
    ledger: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "NO_2023.csv"
    with gzip.open(SHARED, "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    code, out = _import(ledger, path)
    assert code == 0, out
    assert "8760 hours: 8760 added" in out
    with ledger.connect() as conn:
        n, zone = conn.execute(
            text("SELECT COUNT(*), MIN(zone) FROM hourly_emission_factors")
        ).one()
        cells = conn.execute(text("SELECT COUNT(*) FROM hourly_profiles")).scalar_one()
    assert (n, zone) == (8760, "NO")
    assert cells == 576  # a whole year: every weekend x month x hour cell
