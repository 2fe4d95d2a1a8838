"""The shipped hourly intensity table and the hour-of-day profile estimate built from it.

``carbonledger/intensity/data/hourly/<ZONE>.csv.gz`` (built by
``scripts/build_intensity_tables.py`` from Electricity Maps' free hourly datasets 2021-2023,
ODbL 1.0, see ``data/hourly/ATTRIBUTION.md``): one row per UTC hour with the LCA and direct
intensity in gCO2e/kWh and Electricity Maps' estimated flag. Hours are integers, hours since
1970-01-01T00:00Z (``utc_hour``). Nothing is read at import; each zone is parsed once.

The **profile estimate** for an hour without data: the zone's mean LCA intensity by month,
hour of day (UTC) and weekday/weekend from the latest open year, divided by that year's mean,
so that a profile value is ``ratio x yearly factor`` (the mean over a year equals the yearly
factor, docs/methodology.md "Hourly intensity").
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

SOURCE_ELECTRICITY_MAPS_HOURLY = "electricity-maps-hourly"
SOURCE_PROFILE = "hourly-profile"
LICENCE_ELECTRICITY_MAPS = "ODbL-1.0 (Electricity Maps)"

_S_PER_HOUR = 3600
_HOURS_PER_DAY = 24


@dataclass(frozen=True, slots=True)
class HourlyTable:
    """One zone's hourly data: parallel arrays, ascending ``utc_hour``."""

    zone: str
    utc_hour: np.ndarray
    lca_g_per_kwh: np.ndarray
    direct_g_per_kwh: np.ndarray
    estimated: np.ndarray


def _data() -> Any:
    return resources.files("carbonledger.intensity").joinpath("data", "hourly")


@cache
def hourly_zones() -> tuple[str, ...]:
    """Zones with shipped hourly data (names as the yearly tables spell them)."""
    names = (p.name for p in _data().iterdir() if p.name.endswith(".csv.gz"))
    return tuple(sorted(n.removesuffix(".csv.gz") for n in names))


@cache
def hourly_table(zone: str) -> HourlyTable | None:
    """The shipped hourly data of ``zone``, or ``None`` when none ships."""
    if zone not in hourly_zones():
        return None
    raw = gzip.decompress(_data().joinpath(f"{zone}.csv.gz").read_bytes())
    arr = np.loadtxt(io.BytesIO(raw), delimiter=",", skiprows=1, ndmin=2)
    return HourlyTable(
        zone=zone,
        utc_hour=arr[:, 0].astype(np.int64),
        lca_g_per_kwh=arr[:, 1],
        direct_g_per_kwh=arr[:, 2],
        estimated=arr[:, 3].astype(bool),
    )


def calendar(utc_hour: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Year, month (1-12), hour of day (0-23) and weekend flag of UTC hours (vectorised)."""
    stamps = np.asarray(utc_hour, dtype=np.int64).astype("datetime64[h]")
    years = stamps.astype("datetime64[Y]")
    months = stamps.astype("datetime64[M]")
    year = years.astype(np.int64) + 1970
    month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    hour_of_day = np.asarray(utc_hour, dtype=np.int64) % _HOURS_PER_DAY
    days = np.asarray(utc_hour, dtype=np.int64) // _HOURS_PER_DAY
    weekend = ((days + 3) % 7) >= 5  # 1970-01-01 was a Thursday: Monday = 0
    return year, month, hour_of_day, weekend


def profile_cells(utc_hour: np.ndarray) -> np.ndarray:
    """Index 0..575 of each hour's (weekend, month, hour of day) profile cell."""
    _, month, hod, weekend = calendar(utc_hour)
    return (weekend.astype(np.int64) * 12 + (month - 1)) * _HOURS_PER_DAY + hod


def profile_ratios(utc_hour: np.ndarray, intensity_g_per_kwh: np.ndarray) -> np.ndarray:
    """The 576 ratios (cell mean / overall mean) of one year of hourly values; NaN if empty."""
    cells = profile_cells(utc_hour)
    sums = np.bincount(cells, weights=intensity_g_per_kwh, minlength=576)
    counts = np.bincount(cells, minlength=576)
    mean = float(np.mean(intensity_g_per_kwh))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts) / mean if mean > 0 else np.full(576, np.nan)


def latest_full_year(utc_hour: np.ndarray) -> int | None:
    """The latest year with at least 8,760 hours (a whole year) among ``utc_hour``."""
    year, *_ = calendar(utc_hour)
    if not len(year):
        return None
    values, counts = np.unique(year, return_counts=True)
    full = values[counts >= 8760]
    return int(full.max()) if len(full) else None


@cache
def profile(zone: str) -> tuple[int, np.ndarray] | None:
    """``(source year, 576 ratios)`` of the shipped data of ``zone``, or ``None``."""
    table = hourly_table(zone)
    if table is None:
        return None
    year = latest_full_year(table.utc_hour)
    if year is None:
        return None
    years, *_ = calendar(table.utc_hour)
    mask = years == year
    return year, profile_ratios(table.utc_hour[mask], table.lca_g_per_kwh[mask])


def utc_hour_of(epoch_s: float) -> int:
    """The UTC hour (hours since 1970-01-01T00:00Z) that contains ``epoch_s``."""
    return int(epoch_s // _S_PER_HOUR)


def clear_caches() -> None:
    """Forget the parsed hourly tables (tests that swap the data use this)."""
    for fn in (hourly_zones, hourly_table, profile):
        fn.cache_clear()
