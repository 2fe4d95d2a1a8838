"""When to run: expected intensity of a job by start hour, from the shipped hourly data.

``start_hours`` answers ``carbonledger when``: for a job of ``hours`` hours in a zone (and a
month), the mean LCA intensity over the job for each UTC start hour of day, averaged over the
days of the latest open year (the mean of a rolling window, one vectorised pass).
``flexible_start`` answers ``--flex-h``: the best start within N hours of a moment, from the
hourly data where the moment has data, else the profile estimate (docs/methodology.md).
``job_intensity`` gives the intensity a job starting at a moment meets (``estimate --start``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from carbonledger import contract
from carbonledger.errors import IntensityError
from carbonledger.intensity import hourly

# IANA time zone of each zone with shipped hourly data (the zone's local time in `when`).
ZONE_TIMEZONES = {
    "AU-NSW": "Australia/Sydney",
    "AU-VIC": "Australia/Melbourne",
    "BR-CS": "America/Sao_Paulo",
    "CA-ON": "America/Toronto",
    "CL-SEN": "America/Santiago",
    "DE": "Europe/Berlin",
    "ES": "Europe/Madrid",
    "GB": "Europe/London",
    "IN-WE": "Asia/Kolkata",
    "JP-TK": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "NO": "Europe/Oslo",
    "SG": "Asia/Singapore",
    "US-CAL-CISO": "America/Los_Angeles",
    "US-MIDA-PJM": "America/New_York",
    "US-NY-NYIS": "America/New_York",
    "US-TEX-ERCO": "America/Chicago",
    "ZA": "Africa/Johannesburg",
}


@dataclass(frozen=True, slots=True)
class StartHours:
    """Mean intensity (gCO2e/kWh) over a job for each UTC start hour of day (index 0-23)."""

    zone: str
    year: int
    month: int | None
    hours: int
    intensity_g_per_kwh_by_start: np.ndarray

    @property
    def best_hour_utc(self) -> int:
        """UTC start hour with the lowest mean intensity."""
        return int(np.argmin(self.intensity_g_per_kwh_by_start))

    @property
    def best_g_per_kwh(self) -> float:
        """Mean intensity over the job at the best start."""
        return float(np.min(self.intensity_g_per_kwh_by_start))

    @property
    def median_g_per_kwh(self) -> float:
        """Median over the 24 start hours."""
        return float(np.median(self.intensity_g_per_kwh_by_start))

    @property
    def worst_g_per_kwh(self) -> float:
        """Mean intensity over the job at the worst start."""
        return float(np.max(self.intensity_g_per_kwh_by_start))

    @property
    def saving_pct(self) -> float:
        """Saving of the best start against the median start (percent)."""
        median = self.median_g_per_kwh
        return 100.0 * (median - self.best_g_per_kwh) / median if median > 0 else 0.0


def _table(zone: str) -> hourly.HourlyTable:
    table = hourly.hourly_table(zone)
    if table is None:
        raise IntensityError(
            f"no hourly data for zone {zone!r}: shipped zones are "
            f"{', '.join(hourly.hourly_zones())}"
        )
    return table


def _rolling_mean(values: np.ndarray, hours: int) -> np.ndarray:
    """Mean of ``values[i : i + hours]`` for every ``i`` with a whole window."""
    cum = np.concatenate([[0.0], np.cumsum(values)])
    return (cum[hours:] - cum[:-hours]) / hours


def start_hours(zone: str, *, hours: int, month: int | None = None) -> StartHours:
    """Expected intensity of a ``hours``-long job by UTC start hour (latest open year)."""
    if hours < 1:
        raise IntensityError("a job lasts at least one hour: pass --hours 1 or more")
    table = _table(zone)
    year = hourly.latest_full_year(table.utc_hour)
    assert year is not None
    years, months, hod, _ = hourly.calendar(table.utc_hour)
    means = _rolling_mean(table.lca_g_per_kwh, hours)
    n = len(means)
    starts = (years[:n] == year) & ((months[:n] == month) if month else True)
    by_start = np.array(
        [float(np.mean(means[starts & (hod[:n] == h)])) for h in range(24)], dtype=np.float64
    )
    return StartHours(zone, year, month, hours, by_start)


def local_hour(zone: str, utc_hour: int, *, year: int, month: int | None) -> str:
    """The zone's local time of ``utc_hour`` (mid-month, so daylight saving applies)."""
    tz = ZONE_TIMEZONES.get(zone)
    moment = datetime(year, month or 6, 15, utc_hour, tzinfo=UTC)
    if tz is None:
        return f"{utc_hour:02d}:00 UTC"
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local:%H:%M} {local.tzname()}"


def series(zone: str, first_hour: int, count: int, yearly_g_per_kwh: float | None) -> np.ndarray:
    """Intensity of ``count`` hours from ``first_hour``: hourly data, else profile x yearly."""
    hours = first_hour + np.arange(count, dtype=np.int64)
    out = np.full(count, np.nan)
    table = hourly.hourly_table(zone)
    if table is not None:
        pos = np.searchsorted(table.utc_hour, hours)
        pos = np.clip(pos, 0, len(table.utc_hour) - 1)
        hit = table.utc_hour[pos] == hours
        out[hit] = table.lca_g_per_kwh[pos[hit]]
    prof = hourly.profile(zone)
    missing = np.isnan(out)
    if missing.any() and prof is not None and yearly_g_per_kwh is not None:
        out[missing] = prof[1][hourly.profile_cells(hours[missing])] * yearly_g_per_kwh
    if yearly_g_per_kwh is not None:
        out[np.isnan(out)] = yearly_g_per_kwh
    return out


def method_of(zone: str, first_hour: int, count: int) -> str:
    """The intensity method of ``series`` over those hours (the coarsest among them)."""
    table = hourly.hourly_table(zone)
    if table is not None:
        lo, hi = first_hour, first_hour + count - 1
        if np.isin(np.arange(lo, hi + 1), table.utc_hour).all():
            return contract.INTENSITY_HOURLY
    if hourly.profile(zone) is not None:
        return contract.INTENSITY_HOURLY_PROFILE
    return contract.INTENSITY_YEARLY


@dataclass(frozen=True, slots=True)
class FlexibleStart:
    """The best start within a window of a moment, against starting at the moment."""

    now: datetime
    best_start: datetime
    now_g_per_kwh: float
    best_g_per_kwh: float
    intensity_method: str

    @property
    def saving_pct(self) -> float:
        """Saving of the best start against starting now (percent)."""
        if self.now_g_per_kwh <= 0:
            return 0.0
        return 100.0 * (self.now_g_per_kwh - self.best_g_per_kwh) / self.now_g_per_kwh


def flexible_start(
    zone: str, *, hours: int, flex_h: int, now: datetime, yearly_g_per_kwh: float | None
) -> FlexibleStart:
    """Best start hour within ``flex_h`` hours after ``now`` for a ``hours``-long job."""
    first = hourly.utc_hour_of(now.timestamp())
    values = series(zone, first, flex_h + hours, yearly_g_per_kwh)
    means = _rolling_mean(values, hours)[: flex_h + 1]
    best = int(np.argmin(means))
    start = datetime.fromtimestamp((first + best) * contract.S_PER_HOUR, tz=UTC)
    return FlexibleStart(
        now, start, float(means[0]), float(means[best]), method_of(zone, first, flex_h + hours)
    )


def job_intensity(
    zone: str, *, start: datetime, duration_s: float, yearly_g_per_kwh: float | None
) -> tuple[float, str]:
    """Time-weighted intensity a job from ``start`` meets, and the method behind it."""
    start_s = start.timestamp()
    end_s = start_s + max(duration_s, 0.0)
    first = hourly.utc_hour_of(start_s)
    count = max(hourly.utc_hour_of(max(end_s - 1e-9, start_s)) - first + 1, 1)
    edges = (first + np.arange(count + 1)) * contract.S_PER_HOUR
    overlap = np.minimum(edges[1:], end_s) - np.maximum(edges[:-1], start_s)
    weights = np.clip(overlap, 0.0, None)
    values = series(zone, first, count, yearly_g_per_kwh)
    if weights.sum() <= 0:
        return float(values[0]), method_of(zone, first, 1)
    return float(np.average(values, weights=weights)), method_of(zone, first, count)


def parse_start(text: str) -> datetime:
    """An ISO 8601 moment (``2023-06-15T10:00Z``); without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise IntensityError(f"{text!r} is not an ISO 8601 time, e.g. 2023-06-15T10:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


__all__ = [
    "ZONE_TIMEZONES",
    "FlexibleStart",
    "StartHours",
    "flexible_start",
    "job_intensity",
    "local_hour",
    "parse_start",
    "start_hours",
]
