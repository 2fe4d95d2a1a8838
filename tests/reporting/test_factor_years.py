"""The factor year of a record: the zone's latest location-based year up to the record's year.

``activity_co2e`` reads the zones' factor years once as ranges (migration d4e5f6a7b8c9, it
was two correlated sub-queries per record). Every case of the rule, on both databases: a
record year before the zone's earliest (the earliest), equal to one, between two (the earlier),
after the latest (the latest), a zone with one year, a zone with none (no factor), a run
without a year (the earliest), a year with two versions (one range, the current value); each
figure equal to kWh x the chosen factor, by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text

from carbonledger.ledger import add_emission_factor

# zone -> year -> current factor (ZA's 2023 restated: version 2 is current)
FACTORS = {"ZA": {2021: 100.0, 2023: 300.0, 2025: 500.0}, "ZB": {2022: 40.0}}
FACILITY_KWH = 2.0
# (zone, activity year) -> the factor year the rule picks (None: the zone has no factor)
CASES = {
    ("ZA", 2019): 2021,
    ("ZA", 2021): 2021,
    ("ZA", 2022): 2021,
    ("ZA", 2023): 2023,
    ("ZA", 2024): 2023,
    ("ZA", 2025): 2025,
    ("ZA", 2031): 2025,
    ("ZB", 2010): 2022,
    ("ZB", 2022): 2022,
    ("ZB", 2030): 2022,
    ("ZC", 2024): None,
}


def _seed(ledger: Engine) -> None:
    with ledger.begin() as conn:
        for zone, years in FACTORS.items():
            for year, value in years.items():
                first = value * 2 if (zone, year) == ("ZA", 2023) else value
                add_emission_factor(
                    conn, zone=zone, year=year, intensity_g_per_kwh=first, source="test"
                )
                if first != value:  # a restatement: a second version of the same year
                    add_emission_factor(
                        conn, zone=zone, year=year, intensity_g_per_kwh=value, source="test"
                    )
        conn.execute(text("INSERT INTO tracking_sources (id, uri, kind) VALUES (1, 'x', 'mlflow')"))
        for i, (zone, year) in enumerate(CASES):
            start = datetime(2024, 3, 1, 10, i, tzinfo=UTC)
            conn.execute(
                text(
                    "INSERT INTO inference_windows (source_id, run_id, window_start, window_end, "
                    "activity_year, requests, energy_kwh, pue, facility_energy_kwh, grid_zone) "
                    "VALUES (1, :run, :s, :e, :y, 1, :kwh, 1.0, :kwh, :zone)"
                ),
                {
                    "run": f"w{i}",
                    "s": start,
                    "e": start,
                    "y": year,
                    "kwh": FACILITY_KWH,
                    "zone": zone,
                },
            )
        for run_id, zone in (("no-year-za", "ZA"), ("no-year-zb", "ZB")):
            conn.execute(
                text(
                    "INSERT INTO runs (source_id, run_id, kind, status, is_stale, team, "
                    "metering, any_component_estimated, energy_kwh, pue, facility_energy_kwh, "
                    "grid_zone, content_hash) VALUES (1, :run, 'training', 'FINISHED', :f, "
                    "'team-a', 'metered', :f, :kwh, 1.0, :kwh, :zone, 'h')"
                ),
                {"run": run_id, "kwh": FACILITY_KWH, "zone": zone, "f": False},
            )


def test_each_record_takes_the_latest_factor_year_up_to_its_own(ledger: Engine) -> None:
    _seed(ledger)
    with ledger.connect() as conn:
        windows = conn.execute(
            text(
                "SELECT zone, activity_year, factor_year, location_intensity_g_per_kwh, "
                "co2e_location_kg, co2e_location_yearly_kg FROM inference_co2e"
            )
        ).all()
        runs = conn.execute(
            text(
                "SELECT zone, activity_year, factor_year, co2e_location_kg FROM run_co2e "
                "ORDER BY zone"
            )
        ).all()
    got = {(r.zone, r.activity_year): r for r in windows}
    assert set(got) == set(CASES)
    for key, year in CASES.items():
        row = got[key]
        assert row.factor_year == year, key
        if year is None:
            assert row.location_intensity_g_per_kwh is None and row.co2e_location_kg is None
            continue
        factor = FACTORS[key[0]][year]
        assert row.location_intensity_g_per_kwh == factor, key
        assert row.co2e_location_kg == FACILITY_KWH * factor / 1000.0, key
        assert row.co2e_location_yearly_kg == FACILITY_KWH * factor / 1000.0, key
    # a run without a year: the zone's earliest factor year
    assert [(r.zone, r.activity_year, r.factor_year) for r in runs] == [
        ("ZA", None, 2021),
        ("ZB", None, 2022),
    ]
    assert [r.co2e_location_kg for r in runs] == [
        FACILITY_KWH * 100.0 / 1000.0,
        FACILITY_KWH * 40.0 / 1000.0,
    ]


def test_one_row_per_record_whatever_the_number_of_factor_years(ledger: Engine) -> None:
    _seed(ledger)
    with ledger.connect() as conn:
        n_windows = conn.execute(text("SELECT COUNT(*) FROM inference_windows")).scalar_one()
        n_runs = conn.execute(text("SELECT COUNT(*) FROM runs")).scalar_one()
        n_view = conn.execute(text("SELECT COUNT(*) FROM activity_co2e")).scalar_one()
    assert n_view == n_windows + n_runs == len(CASES) + 2
