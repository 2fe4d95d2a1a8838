"""The refresh's read of a day of windows equals ``activity_co2e``'s rows, on both databases.

The rollup refresh reads the days' windows with the view's rules but their hours as one set
(``carbonledger.ledger.co2e_sql.windows_sql``, migration a8b9c0d1e2f3); the view probes each
window's hours (PostgreSQL) or groups every record's (SQLite). Every case where the hours
matter: a window inside one hour with an hourly factor, one spanning two hours (hourly and
profile), one crossing midnight into the next day, hourly market factors with and without a
yearly contractual factor, a window with no hours written, one with an hour outside its own
(left over from a re-load: PostgreSQL's view ignores it, SQLite's counts it), the WORLD
default, a run whose ``record_pk`` equals a window's, and windows of the neighbouring days
(not selected). Each column of each window is compared with the view's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, text

from carbonledger.ledger import add_emission_factor
from carbonledger.ledger.co2e_sql import COLUMNS, windows_sql
from carbonledger.ledger.hourly_factors import load_hourly_factors
from carbonledger.reporting.rollup_sql import day_ranges, time_ranges_sql
from carbonledger.reporting.rollup_windows import days_grouped_sql, grouped_sql

DAY = datetime(2024, 6, 10, tzinfo=UTC)
H = 3600


def _epoch_hour(when: datetime) -> int:
    return int(when.timestamp()) // H


# (name, start offset from DAY, minutes, zone, [(hour offset from the start's hour, share)])
WINDOWS = [
    ("inside-one-hour", timedelta(hours=9, minutes=10), 1, "DE", [(0, 1.0)]),
    ("two-hours", timedelta(hours=9, minutes=50), 20, "DE", [(0, 0.5), (1, 0.5)]),
    ("profile-and-yearly", timedelta(hours=3, minutes=30), 60, "FR", [(0, 0.5), (1, 0.5)]),
    ("past-midnight", timedelta(hours=23, minutes=50), 20, "DE", [(0, 0.5), (1, 0.5)]),
    ("market-hourly-no-yearly", timedelta(hours=9, minutes=20), 1, "DE", [(0, 1.0)]),
    ("market-hourly-and-yearly", timedelta(hours=12, minutes=50), 20, "FR", [(0, 0.5), (1, 0.5)]),
    ("no-hours", timedelta(hours=14), 1, "DE", []),
    ("stray-hour", timedelta(hours=10, minutes=5), 1, "DE", [(0, 0.75), (5, 0.25)]),
    ("world", timedelta(hours=17), 1, None, [(0, 1.0)]),
    ("day-before", timedelta(hours=-1), 1, "DE", [(0, 1.0)]),
    ("day-after", timedelta(days=1, hours=1), 1, "DE", [(0, 1.0)]),
]
SELECTED = {name for name, offset, *_ in WINDOWS if timedelta(0) <= offset < timedelta(days=1)}


def _hourly_factors(conn: Connection) -> None:
    """DE: location factors for 09:00-10:59 and 23:00 (next day's 00:00 has none), market
    factors for 09:00; FR: a market factor for 12:00 and a yearly contractual one; a profile
    for FR's cells."""
    de9 = _epoch_hour(DAY + timedelta(hours=9))
    rows = [("DE", de9, "location", 120.0), ("DE", de9 + 1, "location", 140.0)]
    rows += [("DE", _epoch_hour(DAY + timedelta(hours=23)), "location", 90.0)]
    rows += [("DE", de9, "market", 10.0)]
    rows += [("FR", _epoch_hour(DAY + timedelta(hours=12)), "market", 5.0)]
    frame = pd.DataFrame(rows, columns=["zone", "utc_hour", "basis", "intensity_g_per_kwh"])
    frame = frame.assign(direct_intensity_g_per_kwh=frame["intensity_g_per_kwh"] / 2)
    load_hourly_factors(
        conn, frame=frame.assign(is_estimated=False), source="grid-operator", licence="cc-by"
    )
    conn.execute(text("DELETE FROM hourly_profiles WHERE zone = 'FR'"))
    conn.execute(
        text(
            "INSERT INTO hourly_profiles (zone, basis, profile_cell, ratio, source_year) "
            "VALUES ('FR', 'location', 7, 1.3, 2023)"
        )
    )
    add_emission_factor(
        conn, zone="FR", year=2024, intensity_g_per_kwh=20.0, source="ppa", basis="market"
    )


def _seed(ledger: Engine) -> dict[str, int]:
    ids: dict[str, int] = {}
    with ledger.begin() as conn:
        _hourly_factors(conn)
        conn.execute(text("INSERT INTO tracking_sources (id, uri, kind) VALUES (1, 'x', 'mlflow')"))
        for name, offset, minutes, zone, hours in WINDOWS:
            start = DAY + offset
            end = start + timedelta(minutes=minutes)
            ids[name] = conn.execute(
                text(
                    "INSERT INTO inference_windows (source_id, run_id, model_name, "
                    "model_version, team, window_start, window_end, activity_year, requests, "
                    "energy_kwh, estimated_energy_kwh, pue, facility_energy_kwh, grid_zone) "
                    "VALUES (1, :run, 'bert', 1, 'nlp', :s, :e, 2024, 3, 0.5, 0.1, 1.2, 0.6, "
                    ":zone) RETURNING id"
                ),
                {"run": name, "s": start, "e": end, "zone": zone},
            ).scalar_one()
            for hour, share in hours:
                _hour(conn, "window", ids[name], _epoch_hour(start) + hour, zone, 0.6 * share)
        # a run whose key equals a window's, with hours in the same hours (never the window's)
        run_pk = conn.execute(
            text(
                "INSERT INTO runs (id, source_id, run_id, kind, status, is_stale, team, "
                "start_time, end_time, activity_year, metering, any_component_estimated, "
                "energy_kwh, pue, facility_energy_kwh, grid_zone, content_hash) VALUES "
                "(:id, 1, 'r1', 'training', 'FINISHED', :f, 'nlp', :s, :e, 2024, 'metered', :f, "
                "1.0, 1.0, 1.0, 'DE', 'h') RETURNING id"
            ),
            {
                "id": ids["inside-one-hour"],
                "f": False,
                "s": DAY + timedelta(hours=9),
                "e": DAY + timedelta(hours=10),
            },
        ).scalar_one()
        _hour(conn, "run", run_pk, _epoch_hour(DAY + timedelta(hours=9)), "DE", 1.0)
    return ids


def _hour(conn: Connection, kind: str, pk: int, hour: int, zone: str | None, kwh: float) -> None:
    conn.execute(
        text(
            "INSERT INTO activity_energy_hours (record_kind, record_pk, utc_hour, zone, "
            "profile_cell, energy_kwh, facility_energy_kwh) VALUES (:k, :pk, :h, :z, 7, :e, :f)"
        ),
        {"k": kind, "pk": pk, "h": hour, "z": zone or "WORLD", "e": kwh / 1.2, "f": kwh},
    )


def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["record_pk"]: dict(r) for r in conn.execute(text(sql), params).mappings()}


def _same(got: dict[str, Any], want: dict[str, Any]) -> bool:
    return got.keys() == want.keys() and all(
        got[k] == pytest.approx(v, abs=1e-12) if isinstance(v, float) else got[k] == v
        for k, v in want.items()
    )


def test_a_days_windows_read_as_a_set_equal_the_views_rows(ledger: Engine) -> None:
    ids = _seed(ledger)
    dialect = ledger.dialect.name
    params: dict[str, Any] = {}
    ranges = day_ranges([f"{DAY:%Y-%m-%d}"])

    def windows(alias: str) -> str:
        return time_ranges_sql(dialect, f"{alias}.window_start", ranges, params, "w")

    params["lo"], params["hi"] = min(ids.values()), max(ids.values())
    sql = windows_sql(dialect, windows=windows, record_pks="eh.record_pk BETWEEN :lo AND :hi")
    columns = ", ".join((*COLUMNS, "co2e_market_kg", "estimated_co2e_market_kg"))
    view = (
        f"SELECT {columns} FROM activity_co2e WHERE record_kind = 'window' "  # noqa: S608
        f"AND {time_ranges_sql(dialect, 'start_time', ranges, params, 'w')}"
    )
    with ledger.connect() as conn:
        got = _rows(conn, f"SELECT {columns} FROM ({sql}) c", params)  # noqa: S608
        want = _rows(conn, view, params)
    assert set(want) == {ids[n] for n in SELECTED} == set(got)
    for pk, row in want.items():
        assert _same(got[pk], row), (pk, got[pk], row)
    by_name = {name: want[pk] for name, pk in ids.items() if pk in want}
    # the cases are what they claim to be
    assert by_name["inside-one-hour"]["intensity_method"] == "hourly"
    assert by_name["profile-and-yearly"]["intensity_method"] == "hourly-profile-estimate"
    assert by_name["no-hours"]["intensity_method"] == "yearly"
    assert by_name["world"]["intensity_method"] == "world-default"
    assert by_name["market-hourly-no-yearly"]["market_factor_source"] == "grid-operator"
    assert by_name["market-hourly-and-yearly"]["market_factor_source"] == "grid-operator+ppa"
    # an hour five hours after the window's own: outside it on PostgreSQL (bounded probe),
    # counted by SQLite's grouped view (an hour without an hourly factor: yearly)
    stray = "hourly" if dialect == "postgresql" else "yearly"
    assert by_name["stray-hour"]["intensity_method"] == stray


def test_the_days_refresh_groups_equal_the_views_groups(ledger: Engine) -> None:
    """The refresh's grouped read of the day (set) equals the same grouping of the view."""
    _seed(ledger)
    params: dict[str, Any] = {}
    ranges = day_ranges([f"{DAY:%Y-%m-%d}"])
    dialect = ledger.dialect.name
    with ledger.connect() as conn:
        got = conn.execute(text(days_grouped_sql(conn, ranges, params)), params).all()
        where = time_ranges_sql(dialect, "window_start", ranges, params, "v")
        want = conn.execute(text(grouped_sql(dialect, where)), params).all()
    key = lambda r: [str(v) for v in r[:12]]  # noqa: E731
    got, want = sorted(got, key=key), sorted(want, key=key)
    assert len(got) == len(want) > 1
    for g, w in zip(got, want, strict=True):
        assert tuple(g[:12]) == tuple(w[:12])
        assert [float(v) for v in g[12:]] == pytest.approx([float(v) for v in w[12:]], abs=1e-12)
