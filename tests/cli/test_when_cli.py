"""``carbonledger when`` and ``estimate --start``, against values computed here from the CSV."""

from __future__ import annotations

import csv
import gzip
import json
import statistics
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carbonledger.cli import app

runner = CliRunner()
HOURLY = Path("/work/shared/data/intensity/hourly")
pytestmark = pytest.mark.skipif(not HOURLY.is_dir(), reason="shared hourly data not here")
LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"


def series(prefix: str, year: int) -> list[tuple[datetime, float]]:
    with gzip.open(HOURLY / f"{prefix}_{year}_hourly.csv.gz", "rt", encoding="utf-8") as fh:
        return [
            (datetime.fromisoformat(r["Datetime (UTC)"]).replace(tzinfo=UTC), float(r[LCA]))
            for r in csv.DictReader(fh)
        ]


def test_when_on_gb_in_june_matches_the_csv() -> None:
    rows = series("GB", 2023)
    hours = 6
    by_start: dict[int, list[float]] = {h: [] for h in range(24)}
    for i in range(len(rows) - hours + 1):
        t, _ = rows[i]
        if t.month == 6:
            by_start[t.hour].append(sum(v for _, v in rows[i : i + hours]) / hours)
    means = {h: sum(v) / len(v) for h, v in by_start.items()}
    best = min(means, key=means.__getitem__)
    median = statistics.median(means.values())

    result = runner.invoke(app, ["when", "--zone", "GB", "--hours", "6", "--month", "6", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["best_start_hour_utc"] == best
    assert got["best_intensity_g_per_kwh"] == pytest.approx(means[best], abs=1e-3)
    assert got["median_intensity_g_per_kwh"] == pytest.approx(median, abs=1e-3)
    assert got["worst_intensity_g_per_kwh"] == pytest.approx(max(means.values()), abs=1e-3)
    assert got["saving_vs_median_pct"] == pytest.approx(
        100 * (median - means[best]) / median, abs=0.01
    )
    assert got["best_start_local"].endswith("BST")  # British Summer Time in June


def test_when_with_flex_finds_the_best_start_within_the_window() -> None:
    result = runner.invoke(
        app, ["when", "--zone", "DE", "--hours", "4", "--flex-h", "24", "--json"]
    )
    assert result.exit_code == 0, result.output
    flex = json.loads(result.stdout)["flex"]
    assert flex["best_intensity_g_per_kwh"] <= flex["now_intensity_g_per_kwh"]
    assert flex["intensity_method"] == "hourly-profile-estimate"  # no open data after 2023


def test_when_refuses_a_zone_without_hourly_data() -> None:
    result = runner.invoke(app, ["when", "--zone", "FR", "--hours", "4"])
    assert result.exit_code == 2
    assert "no hourly data for zone 'FR'" in result.output


def test_estimate_start_uses_the_factors_of_those_hours() -> None:
    de = dict(series("DE-LU", 2023))
    hours = [datetime(2023, 6, 15, h, tzinfo=UTC) for h in (10, 11, 12, 13)]
    expected = sum(de[h] for h in hours) / 4 * 4.0 / 1000.0  # 1 kW for 4 h, PUE 1
    result = runner.invoke(
        app,
        ["estimate", "--power-w", "1000", "--hours", "4", "--zone", "DE", "--pue", "1",
         "--start", "2023-06-15T10:00Z", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["co2e_kg"] == pytest.approx(expected, abs=1e-9)
    assert got["intensity_method"] == "hourly"
