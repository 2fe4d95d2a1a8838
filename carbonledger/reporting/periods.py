"""Reporting periods: ``YYYY``, ``YYYY-Qn`` and ``YYYY-MM``, as ranges of UTC months."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from carbonledger.errors import ReportingError

_PERIOD = re.compile(r"^(\d{4})(?:-(?:Q([1-4])|(\d{2})))?$")


@dataclass(frozen=True, slots=True)
class Period:
    """A reporting period: its label and its first and last month (``YYYY-MM``, inclusive)."""

    label: str
    first_month: str
    last_month: str

    @property
    def months(self) -> list[str]:
        """Every month of the period, oldest first."""
        year, month = int(self.first_month[:4]), int(self.first_month[5:])
        out = []
        while True:
            key = f"{year:04d}-{month:02d}"
            out.append(key)
            if key == self.last_month:
                return out
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    @property
    def start(self) -> datetime:
        """First instant of the period (UTC)."""
        return month_start(self.first_month)

    @property
    def end(self) -> datetime:
        """First instant after the period (UTC)."""
        return next_month_start(self.last_month)


def month_start(month: str) -> datetime:
    """``YYYY-MM`` to the first instant of that month (UTC)."""
    return datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=UTC)


def next_month_start(month: str) -> datetime:
    """``YYYY-MM`` to the first instant of the following month (UTC)."""
    year, mon = int(month[:4]), int(month[5:7])
    year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return datetime(year, mon, 1, tzinfo=UTC)


def parse_period(text: str) -> Period:
    """Parse ``2026``, ``2026-Q3`` or ``2026-07`` into a :class:`Period`.

    Raises:
        ReportingError: the text is none of these forms; the message shows them.
    """
    match = _PERIOD.match(text.strip())
    if not match or (match.group(3) and not 1 <= int(match.group(3)) <= 12):
        raise ReportingError(
            f"period {text!r} is not understood: use YYYY (2026), YYYY-Qn (2026-Q3) or "
            "YYYY-MM (2026-07)"
        )
    year, quarter, month = match.group(1), match.group(2), match.group(3)
    if quarter:
        first = (int(quarter) - 1) * 3 + 1
        return Period(f"{year}-Q{quarter}", f"{year}-{first:02d}", f"{year}-{first + 2:02d}")
    if month:
        return Period(f"{year}-{month}", f"{year}-{month}", f"{year}-{month}")
    return Period(year, f"{year}-01", f"{year}-12")


def months_between(first_month: str, last_month: str) -> Period:
    """A period spanning ``first_month`` to ``last_month`` (the app's custom range).

    Raises:
        ReportingError: the range is reversed or not made of ``YYYY-MM`` months.
    """
    for m in (first_month, last_month):
        if not re.match(r"^\d{4}-(0[1-9]|1[0-2])$", m):
            raise ReportingError(f"month {m!r} is not YYYY-MM (e.g. 2026-07)")
    if first_month > last_month:
        raise ReportingError(f"the period starts ({first_month}) after it ends ({last_month})")
    label = first_month if first_month == last_month else f"{first_month}..{last_month}"
    return Period(label, first_month, last_month)
