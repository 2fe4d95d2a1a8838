"""SQL fragments shared by the rollup refresh and the queries that read the rollups.

Periods are UTC ``YYYY-MM`` months and ``YYYY-MM-DD`` days (text keys of the rollups); a
refresh selects records by sargable time ranges (``column >= :start AND column < :end``) so
PostgreSQL prunes the monthly partitions and uses the time index, and renders keys with
:func:`month_sql`/:func:`day_sql` only in the select list.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any


def month_sql(dialect: str, column: str) -> str:
    """SQL rendering ``column`` (a timestamp) as its UTC ``YYYY-MM``."""
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
    return f"strftime('%Y-%m', {column})"


def day_sql(dialect: str, column: str) -> str:
    """SQL rendering ``column`` (a timestamp) as its UTC ``YYYY-MM-DD``."""
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return f"strftime('%Y-%m-%d', {column})"


def hour_sql(dialect: str, column: str) -> str:
    """SQL: the UTC hour of day (0-23, an integer) of ``column`` (a timestamp)."""
    if dialect == "postgresql":
        return f"CAST(EXTRACT(HOUR FROM {column} AT TIME ZONE 'UTC') AS INTEGER)"
    return f"CAST(strftime('%H', {column}) AS INTEGER)"


def weighted_intensity_sql(co2e: str, intensity: str) -> str:
    """SQL: the energy-weighted mean intensity of a group of records (or of rollup rows).

    With hourly factors every record has its own intensity, so Scope 2 groups by the factor's
    method and source and reports this mean (CO2e x 1000 / facility energy). Rollup rows hold
    their own group's mean, so the mean of a month follows from its days' rows the same way.
    """
    return (
        f"CASE WHEN SUM(facility_energy_kwh) > 0 THEN SUM({co2e}) * 1000.0 "
        f"/ SUM(facility_energy_kwh) ELSE MAX({intensity}) END"
    )


# Scope 2 figures of a group of records or of rollup rows (same column names), and the
# factor grouping they are reported by (with ``month`` or ``day`` before it).
SCOPE2_FIGURES = (
    "COALESCE(SUM(facility_energy_kwh), 0), "
    + weighted_intensity_sql("co2e_location_kg", "location_intensity_g_per_kwh")
    + ", location_factor_source, location_factor_version, COALESCE(SUM(co2e_location_kg), 0), "
    + weighted_intensity_sql("co2e_market_kg", "market_intensity_g_per_kwh")
    + ", market_factor_source, market_instrument, market_is_location_fallback, "
    "COALESCE(SUM(co2e_market_kg), 0), intensity_method, COALESCE(SUM(co2e_location_yearly_kg), 0)"
)
SCOPE2_MONTH_INSERT = """
INSERT INTO rollup_scope2_month (month, activity, team, zone, factor_year, records,
    unmetered_records, facility_energy_kwh, location_intensity_g_per_kwh,
    location_factor_source, location_factor_version, co2e_location_kg,
    market_intensity_g_per_kwh, market_factor_source, market_instrument,
    market_is_location_fallback, co2e_market_kg, intensity_method, co2e_location_yearly_kg)
"""
FACTOR_GROUP = (
    "team, zone, factor_year, intensity_method, location_factor_source, "
    "location_factor_version, market_factor_source, market_instrument, "
    "market_is_location_fallback"
)


def bind_time(dialect: str, when: datetime) -> Any:
    """A UTC instant as a bind parameter compared with a stored timestamp.

    SQLite stores timestamps as ``YYYY-MM-DD HH:MM:SS[.ffffff]`` text, so the bound value is
    that text (it sorts with them); PostgreSQL takes the datetime.
    """
    if dialect == "sqlite":
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return when


def day_start(day: str) -> datetime:
    """``YYYY-MM-DD`` to the first instant of that UTC day."""
    return datetime(int(day[:4]), int(day[5:7]), int(day[8:10]), tzinfo=UTC)


def day_ranges(days: Iterable[str]) -> list[tuple[str, str]]:
    """Days (``YYYY-MM-DD``) as runs of consecutive days: ``(first, last)`` inclusive, sorted."""
    out: list[tuple[str, str]] = []
    for day in sorted(set(days)):
        if out and f"{day_start(out[-1][1]) + timedelta(days=1):%Y-%m-%d}" == day:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def time_ranges_sql(
    dialect: str, column: str, ranges: list[tuple[str, str]], params: dict[str, Any], tag: str
) -> str:
    """Sargable SQL selecting ``column`` in the day ``ranges``, adding their bounds to ``params``.

    Each range is ``column >= :<tag>sN AND column < :<tag>eN`` (first instant of its first day,
    first instant after its last day); none selects nothing.
    """
    parts = []
    for i, (first, last) in enumerate(ranges):
        start, end = day_start(first), day_start(last) + timedelta(days=1)
        params[f"{tag}s{i}"], params[f"{tag}e{i}"] = (
            bind_time(dialect, start),
            bind_time(dialect, end),
        )
        parts.append(f"({column} >= :{tag}s{i} AND {column} < :{tag}e{i})")
    return f"({' OR '.join(parts)})" if parts else "1 = 0"


def key_ranges_sql(
    column: str, ranges: list[tuple[str, str]], params: dict[str, Any], tag: str
) -> str:
    """SQL selecting a text key ``column`` (``YYYY-MM-DD``/``YYYY-MM``) within inclusive ranges."""
    parts = []
    for i, (first, last) in enumerate(ranges):
        params[f"{tag}f{i}"], params[f"{tag}l{i}"] = first, last
        parts.append(f"({column} >= :{tag}f{i} AND {column} <= :{tag}l{i})")
    return f"({' OR '.join(parts)})" if parts else "1 = 0"
