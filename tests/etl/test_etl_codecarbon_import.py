"""`carbonledger import codecarbon emissions.csv` loads CodeCarbon output into the ledger."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from carbonledger.cli import app

FIELDS = [
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "on_cloud",
    "pue",
]


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in FIELDS})
    return path


def cc_row(run_id: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "timestamp": "2024-06-01T12:00:00",
        "project_name": "vision-train",
        "run_id": run_id,
        "experiment_id": "5b0fa12a",
        "duration": 3600.0,
        "emissions": 0.17,
        "cpu_energy": 0.1,
        "gpu_energy": 0.3,
        "ram_energy": 0.05,
        "energy_consumed": 0.45,
        "country_name": "France",
        "country_iso_code": "FRA",
        "codecarbon_version": "3.3.2",
        "cpu_count": 2,
        "cpu_model": "AMD EPYC",
        "ram_total_size": 24,
        "pue": 1.0,
        "tracking_mode": "machine",
    }
    row.update(extra)
    return row


def test_codecarbon_rows_become_imported_runs_recomputed_by_the_ledger(
    ledger: Engine, ledger_url: str, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "emissions.csv",
        [cc_row("cc-1"), cc_row("cc-2", gpu_energy="nan"), cc_row("cc-3", country_iso_code="ZZZ")],
    )

    result = CliRunner().invoke(
        app, ["import", "codecarbon", str(path), "--team", "vision", "--ledger-url", ledger_url]
    )

    assert result.exit_code == 0, result.output
    assert "loaded 1" in result.output and "quarantined 2" in result.output
    with ledger.connect() as conn:
        run = conn.execute(text("SELECT * FROM runs")).one()
        co2e = conn.execute(text("SELECT * FROM run_co2e")).one()
        reasons = set(conn.execute(text("SELECT reason FROM quarantine")).scalars())
    assert (run.run_id, run.metering, run.team, run.grid_zone) == (
        "cc-1",
        "imported",
        "vision",
        "FR",
    )
    assert run.energy_kwh == pytest.approx(0.45) and run.plugin_co2e_kg == pytest.approx(0.17)
    assert co2e.co2e_location_kg == pytest.approx(0.45 * 50 / 1000)
    assert reasons == {"non-finite", "unknown-zone"}

    again = CliRunner().invoke(
        app, ["import", "codecarbon", str(path), "--team", "vision", "--ledger-url", ledger_url]
    )
    assert "loaded 0, updated 0, unchanged 1" in again.output


def test_a_file_that_is_not_codecarbon_output_is_refused(
    ledger: Engine, ledger_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(
        app, ["import", "codecarbon", str(path), "--ledger-url", ledger_url]
    )
    assert result.exit_code == 1 and "not a CodeCarbon emissions.csv" in result.output
