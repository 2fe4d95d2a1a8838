"""Temporal matching: a run's energy meets the factor of each hour it ran (docs/methodology.md).

Expected factors are read from the shared Electricity Maps CSV files, not from the package.
"""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cl_ledger_fixtures import TEST_FACTORS, metered_tags
from sqlalchemy import Engine, text

from carbonledger.etl import run_etl
from carbonledger.ledger.hourly_factors import seed_hourly_factors

HOURLY = Path("/work/shared/data/intensity/hourly")
pytestmark = pytest.mark.skipif(not HOURLY.is_dir(), reason="shared hourly data not here")
LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"


def lca(prefix: str, year: int) -> dict[datetime, float]:
    """Hour -> LCA gCO2e/kWh of one shared file."""
    with gzip.open(HOURLY / f"{prefix}_{year}_hourly.csv.gz", "rt", encoding="utf-8") as fh:
        return {
            datetime.fromisoformat(r["Datetime (UTC)"]).replace(tzinfo=UTC): float(r[LCA])
            for r in csv.DictReader(fh)
        }


def yearly(zone: str, year: int) -> float:
    """The test ledger's yearly factor for ``zone``: its year, else the latest earlier one."""
    years = {f.year: f.intensity_g_per_kwh for f in TEST_FACTORS if f.zone == zone}
    return years[max(y for y in years if y is not None and y <= year)]


def ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp() * 1000)


def hourly_run(
    client: Any,
    exp: str,
    *,
    start: str,
    end: str,
    energy_kwh: float,
    zone: str = "DE",
    history: list[tuple[str, float]] | None = None,
) -> str:
    """A metered run (PUE 1.0) whose cumulative energy metric has ``history`` (or one point)."""
    from mlflow.entities import Metric, RunTag

    start_ms, end_ms = ms(start), ms(end)
    run_id = client.create_run(exp, start_time=start_ms).info.run_id
    totals = {
        "carbon/gpu_energy_kwh": energy_kwh,
        "carbon/cpu_energy_kwh": 0.0,
        "carbon/ram_energy_kwh": 0.0,
        "carbon/pue": 1.0,
        "carbon/facility_energy_kwh": energy_kwh,
        "carbon/duration_s": (end_ms - start_ms) / 1000.0,
    }
    points = history or [(end, energy_kwh)]
    metrics = [Metric(k, v, end_ms, 0) for k, v in totals.items()]
    metrics += [Metric("carbon/energy_kwh", v, ms(t), i) for i, (t, v) in enumerate(points)]
    tags = [RunTag(k, v) for k, v in metered_tags(zone).items()]
    client.log_batch(run_id, metrics=metrics, tags=tags)
    client.set_terminated(run_id, status="FINISHED", end_time=end_ms)
    return run_id


# The worked example: 1, 2, 3 and 4 kWh in the four hours from 2023-06-15 10:00 UTC.
FOUR_HOURS = [
    ("2023-06-15T11:00", 1.0),
    ("2023-06-15T12:00", 3.0),
    ("2023-06-15T13:00", 6.0),
    ("2023-06-15T14:00", 10.0),
]


def four_hour_run(client: Any, exp: str) -> str:
    """The DE run of the worked example (10 kWh, its cumulative history ``FOUR_HOURS``)."""
    return hourly_run(
        client,
        exp,
        start="2023-06-15T10:00",
        end="2023-06-15T14:00",
        energy_kwh=10.0,
        history=FOUR_HOURS,
    )


def emissions(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT run_id, co2e_location_kg, co2e_location_yearly_kg, intensity_method, "
                "facility_energy_kwh, location_factor_source, co2e_market_kg "
                "FROM v_run_emissions"
            )
        ).mappings()
        return {r["run_id"]: dict(r) for r in rows}


@pytest.fixture
def hourly_ledger(ledger: Engine) -> Engine:
    with ledger.begin() as conn:
        seed_hourly_factors(conn, zones=["DE"])
    return ledger


def test_history_puts_each_hours_energy_against_that_hours_factor(
    hourly_ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("hourly")
    run = four_hour_run(client, exp)
    run_etl(hourly_ledger, mlflow_uris=[mlflow_uri])

    de = lca("DE-LU", 2023)
    hours = [datetime(2023, 6, 15, h, tzinfo=UTC) for h in (10, 11, 12, 13)]
    expected = sum(kwh * de[h] for kwh, h in zip((1, 2, 3, 4), hours, strict=True)) / 1000.0
    got = emissions(hourly_ledger)[run]
    assert got["co2e_location_kg"] == pytest.approx(expected, abs=1e-9)
    assert got["intensity_method"] == "hourly"
    assert got["co2e_location_yearly_kg"] == pytest.approx(10.0 * yearly("DE", 2023) / 1000.0)
    assert got["co2e_market_kg"] == pytest.approx(expected, abs=1e-9)  # no contract: location
    even = sum(2.5 * de[h] for h in hours) / 1000.0
    assert abs(got["co2e_location_kg"] - even) > 1e-3  # the history, not an even spread


@pytest.mark.parametrize("contract_g_per_kwh", [None, 120.0])
def test_hourly_contractual_factors_match_their_hours_and_the_rest_falls_back(
    hourly_ledger: Engine,
    client: Any,
    mlflow_uri: str,
    tmp_path: Path,
    contract_g_per_kwh: float | None,
) -> None:
    """Market-based: hours with an imported hourly contractual factor meet it; the other
    hours take the yearly contract, else their own location-based (hourly) factor."""
    from carbonledger.intensity.factors import GridFactor
    from carbonledger.ledger import seed_emission_factors
    from carbonledger.ledger.factor_import import import_factor_file

    plain = tmp_path / "ppa.csv"
    plain.write_text(
        "zone,datetime_utc,intensity_g_per_kwh,basis\n"
        "DE,2023-06-15T10:00Z,50,market\n"
        "DE,2023-06-15T11:00Z,100,market\n",
        encoding="utf-8",
    )
    with hourly_ledger.begin() as conn:
        import_factor_file(conn, path=plain, source="acme-ppa")
        if contract_g_per_kwh is not None:
            contract = GridFactor(
                contract_g_per_kwh, "acme-green-tariff", year=2023, zone="DE", basis="market"
            )
            seed_emission_factors(conn, factors=[contract])
    exp = client.create_experiment("market-hourly")
    run = four_hour_run(client, exp)
    run_etl(hourly_ledger, mlflow_uris=[mlflow_uri])

    de = lca("DE-LU", 2023)
    at = {h: datetime(2023, 6, 15, h, tzinfo=UTC) for h in (12, 13)}
    if contract_g_per_kwh is None:
        rest_g = 3.0 * de[at[12]] + 4.0 * de[at[13]]
        source = "acme-ppa"
    else:
        rest_g = 7.0 * contract_g_per_kwh
        source = "acme-ppa+acme-green-tariff"
    expected = (1.0 * 50.0 + 2.0 * 100.0 + rest_g) / 1000.0
    with hourly_ledger.connect() as conn:
        got = (
            conn.execute(
                text(
                    "SELECT co2e_market_kg, market_intensity_g_per_kwh, market_factor_source, "
                    "market_is_location_fallback, co2e_location_kg FROM v_run_emissions "
                    "WHERE run_id = :r"
                ),
                {"r": run},
            )
            .mappings()
            .one()
        )
    assert got["co2e_market_kg"] == pytest.approx(expected, abs=1e-9)
    assert got["market_intensity_g_per_kwh"] == pytest.approx(expected * 100.0, abs=1e-6)
    assert got["market_factor_source"] == source
    assert got["market_is_location_fallback"] == 0
    location = (
        sum(
            k * de[datetime(2023, 6, 15, h, tzinfo=UTC)]
            for k, h in zip((1, 2, 3, 4), (10, 11, 12, 13), strict=True)
        )
        / 1000.0
    )
    assert got["co2e_location_kg"] == pytest.approx(location, abs=1e-9)  # location unchanged
    with hourly_ledger.connect() as conn:
        scope2 = conn.execute(
            text(
                "SELECT SUM(co2e_market_kg), SUM(co2e_location_yearly_kg), MIN(intensity_method) "
                "FROM rollup_scope2_month WHERE activity = 'training'"
            )
        ).one()
    assert scope2[0] == pytest.approx(expected, abs=1e-9)
    assert scope2[1] == pytest.approx(10.0 * yearly("DE", 2023) / 1000.0)
    assert scope2[2] == "hourly"


def test_hours_written_in_chunks_are_those_of_one_spread(
    hourly_ledger: Engine, client: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carbonledger.etl import hours

    exp = client.create_experiment("chunks")
    runs = [four_hour_run(client, exp) for _ in range(2)]
    runs += [
        hourly_run(
            client, exp, start=f"2023-06-1{d}T10:00", end=f"2023-06-1{d}T13:30", energy_kwh=d
        )
        for d in range(1, 4)
    ]
    monkeypatch.setattr(hours, "RUN_CHUNK", 2)  # 5 runs: chunks of 2, 2 and 1
    run_etl(hourly_ledger, mlflow_uris=[mlflow_uri])
    with hourly_ledger.connect() as conn:
        chunked = sorted(conn.execute(text(_HOURS)).all())
    with hourly_ledger.begin() as conn:
        conn.execute(text("DELETE FROM activity_energy_hours"))
        monkeypatch.setattr(hours, "RUN_CHUNK", 20_000)
        hours.write_run_hours(
            conn, _Histories(mlflow_uri), 1, "(SELECT run_id FROM runs)", use_history=True
        )
        whole = sorted(conn.execute(text(_HOURS)).all())
    assert len(chunked) == 4 * 2 + 4 * 3
    assert [r[:2] for r in chunked] == [r[:2] for r in whole]
    for got, one in zip(chunked, whole, strict=True):  # each record's curve: same shares
        assert got[2:] == pytest.approx(one[2:], rel=1e-12)
    assert {r[0] for r in chunked} == set(runs)


_HOURS = (
    "SELECT r.run_id, h.utc_hour, h.energy_kwh, h.facility_energy_kwh FROM activity_energy_hours h "
    "JOIN runs r ON r.id = h.record_pk WHERE h.record_kind = 'run'"
)


class _Histories:
    """The metric histories of a store, as the pass's source reads them."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def metric_histories(self, run_ids: list[str], keys: Any) -> Any:
        from carbonledger.etl.sources import open_source

        with open_source(self.uri) as source:
            return list(source.metric_histories(run_ids, keys))

    def metric_points(self, run_ids: list[str], key: str) -> Any:
        from carbonledger.etl.sources import open_source

        with open_source(self.uri) as source:
            return source.metric_points(run_ids, key)


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (
            "2023-06-15T22:00",
            "2023-06-16T02:00",
            ["2023-06-15T22", "2023-06-15T23", "2023-06-16T00", "2023-06-16T01"],
        ),
        ("2022-12-31T23:00", "2023-01-01T01:00", ["2022-12-31T23", "2023-01-01T00"]),
        ("2023-03-01T10:15", "2023-03-01T10:45", ["2023-03-01T10"]),
    ],
    ids=["across-midnight", "across-year-end", "shorter-than-an-hour"],
)
def test_without_history_the_energy_is_spread_evenly(
    hourly_ledger: Engine, client: Any, mlflow_uri: str, start: str, end: str, hours: list[str]
) -> None:
    exp = client.create_experiment("even")
    run = hourly_run(client, exp, start=start, end=end, energy_kwh=6.0)
    run_etl(hourly_ledger, mlflow_uris=[mlflow_uri])

    factors = {**lca("DE-LU", 2022), **lca("DE-LU", 2023)}
    stamps = [datetime.fromisoformat(h + ":00").replace(tzinfo=UTC) for h in hours]
    expected = sum(6.0 / len(stamps) * factors[s] for s in stamps) / 1000.0
    got = emissions(hourly_ledger)[run]
    assert got["co2e_location_kg"] == pytest.approx(expected, abs=1e-9)
    assert got["intensity_method"] == "hourly"


def test_a_zone_without_hourly_data_falls_back_to_the_yearly_factor_and_says_so(
    hourly_ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("fr")
    run = hourly_run(
        client, exp, start="2024-06-15T10:00", end="2024-06-15T12:00", energy_kwh=2.0, zone="FR"
    )
    run_etl(hourly_ledger, mlflow_uris=[mlflow_uri])

    got = emissions(hourly_ledger)[run]
    assert got["intensity_method"] == "yearly"
    assert got["co2e_location_kg"] == pytest.approx(2.0 * yearly("FR", 2024) / 1000.0)
    assert got["co2e_location_yearly_kg"] == got["co2e_location_kg"]


def test_a_2026_run_gets_the_profile_estimate_scaled_to_the_yearly_factor(
    hourly_ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    exp = client.create_experiment("profile")
    # Wednesday 2026-06-17, 10:00-12:00 UTC: two weekday June cells (hours 10 and 11).
    run = hourly_run(client, exp, start="2026-06-17T10:00", end="2026-06-17T12:00", energy_kwh=4.0)
    run_etl(hourly_ledger, mlflow_uris=[mlflow_uri])

    de = lca("DE-LU", 2023)  # the latest open year
    mean = sum(de.values()) / len(de)

    def cell(hour: int) -> float:
        vals = [v for t, v in de.items() if t.month == 6 and t.hour == hour and t.weekday() < 5]
        return sum(vals) / len(vals) / mean

    factor = yearly("DE", 2026)  # no 2026 factor: the latest earlier year's
    expected = (2.0 * cell(10) * factor + 2.0 * cell(11) * factor) / 1000.0
    got = emissions(hourly_ledger)[run]
    assert got["intensity_method"] == "hourly-profile-estimate"
    assert got["co2e_location_kg"] == pytest.approx(expected, abs=1e-9)
    assert got["co2e_location_yearly_kg"] == pytest.approx(4.0 * factor / 1000.0)


def test_shift_savings_finds_the_cleanest_start_within_the_window(
    hourly_ledger: Engine, client: Any, mlflow_uri: str
) -> None:
    from datetime import timedelta

    from carbonledger.reporting.timing import savings_by_team, shift_savings

    exp = client.create_experiment("shift")
    run = hourly_run(client, exp, start="2023-06-15T10:00", end="2023-06-15T14:00", energy_kwh=4.0)
    fr = hourly_run(
        client, exp, start="2024-06-15T10:00", end="2024-06-15T12:00", energy_kwh=2.0, zone="FR"
    )
    run_etl(hourly_ledger, mlflow_uris=[mlflow_uri])

    de = lca("DE-LU", 2023)
    start = datetime(2023, 6, 15, 10, tzinfo=UTC)
    by_shift = {
        k: sum(de[start + timedelta(hours=k + i)] for i in range(4)) / 1000.0 for k in range(-5, 6)
    }
    k_best = min(by_shift, key=by_shift.__getitem__)
    got = shift_savings(hourly_ledger, flex_h=5).set_index("run_id")
    assert list(got.reset_index().columns) == [
        "run_id", "team", "model_name", "zone", "start_utc", "energy_kwh", "co2e_actual_kg",
        "co2e_best_kg", "best_start_utc", "saving_kg", "intensity_method",
    ]  # fmt: skip
    row = got.loc[run]
    assert row["co2e_actual_kg"] == pytest.approx(by_shift[0], abs=1e-9)
    assert row["co2e_best_kg"] == pytest.approx(by_shift[k_best], abs=1e-9)
    assert row["saving_kg"] == pytest.approx(by_shift[0] - by_shift[k_best], abs=1e-9)
    assert row["best_start_utc"] == start + timedelta(hours=k_best)
    assert row["intensity_method"] == "hourly"
    assert got.loc[fr, "saving_kg"] == 0.0  # yearly factor only: timing changes nothing
    assert shift_savings(hourly_ledger, flex_h=0)["saving_kg"].max() == 0.0
    teams = savings_by_team(got.reset_index())
    assert teams["saving_kg"].sum() == pytest.approx(got["saving_kg"].sum())
    from carbonledger.reporting.periods import parse_period
    from carbonledger.reporting.report import build_report, render
    from carbonledger.reporting.timing_report import section_title

    report = build_report(hourly_ledger, period=parse_period("2023-06"))
    section = report.sections[section_title()]
    day = [sum(de[start + timedelta(hours=k + i)] for i in range(4)) for k in range(-24, 25)]
    assert section["Saving (kg CO2e)"].sum() == pytest.approx(
        by_shift[0] - min(day) / 1000.0, abs=1e-9
    )  # only the June 2023 run, shifted within ±24 h
    assert section["CO2e with yearly factors only (kg)"].sum() == pytest.approx(
        4.0 * yearly("DE", 2023) / 1000.0
    )
    assert section_title() in render(report, "md")
