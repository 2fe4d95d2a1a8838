"""Hourly tables: versioned hourly emission factors, their profiles, energy per hour.

Hours are integers, ``utc_hour`` = hours since 1970-01-01T00:00Z (the hour from
``utc_hour`` x 3600 s to the next), so matching an activity's hours to factors is an integer
join on both engines. ``profile_cell`` is the (weekend, month, hour of day) cell 0..575 of
``carbonledger.intensity.hourly.profile_cells``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)

from carbonledger.ledger.models import Base, Col, Timestamp, column


class HourlyEmissionFactor(Base):
    """A grid factor valid for one UTC hour; the row with ``is_current`` is the one used.

    A changed value for a ``(zone, basis, utc_hour)`` is written as version + 1 and the older
    version keeps ``is_current = false`` (the audit trail), as yearly factors do.
    """

    __tablename__ = "hourly_emission_factors"
    __table_args__ = (
        UniqueConstraint("zone", "basis", "utc_hour", "version"),
        CheckConstraint("basis IN ('location', 'market')", name="basis"),
        CheckConstraint("intensity_g_per_kwh >= 0", name="intensity_nonnegative"),
        Index("ix_hourly_emission_factors_current", "zone", "basis", "utc_hour", "is_current"),
    )

    id: Col[int] = column(Integer, primary_key=True)
    zone: Col[str] = column(String(64))
    utc_hour: Col[int] = column(BigInteger)
    basis: Col[str] = column(String(16))
    intensity_g_per_kwh: Col[float] = column(Double)
    direct_intensity_g_per_kwh: Col[float | None] = column(Double)
    is_estimated: Col[bool] = column(Boolean)
    source: Col[str] = column(String(200))
    licence: Col[str | None] = column(String(200))
    version: Col[int] = column(Integer)
    is_current: Col[bool] = column(Boolean)
    valid_from: Col[datetime] = column(Timestamp, server_default=func.now())


class HourlyProfile(Base):
    """A zone's profile ratio for one (weekend, month, hour of day) cell, from one year.

    ``ratio`` = the cell's mean hourly intensity / the year's mean; the profile estimate of
    an hour is ``ratio x`` the zone's yearly factor (rebuilt whenever hourly factors load).
    """

    __tablename__ = "hourly_profiles"

    zone: Col[str] = column(String(64), primary_key=True)
    basis: Col[str] = column(String(16), primary_key=True)
    profile_cell: Col[int] = column(Integer, primary_key=True)
    ratio: Col[float] = column(Double)
    source_year: Col[int] = column(Integer)


class ActivityEnergyHour(Base):
    """The energy a run (``record_kind = 'run'``) or serving window used in one UTC hour.

    Written by the ETL once per load of the record; ``facility_energy_kwh`` sums to the
    record's exclusive facility energy.
    """

    __tablename__ = "activity_energy_hours"
    __table_args__ = (CheckConstraint("record_kind IN ('run', 'window')", name="record_kind"),)

    record_kind: Col[str] = column(String(8), primary_key=True)
    record_pk: Col[int] = column(BigInteger, primary_key=True)
    utc_hour: Col[int] = column(BigInteger, primary_key=True)
    zone: Col[str] = column(String(64))
    profile_cell: Col[int] = column(Integer)
    energy_kwh: Col[float] = column(Double)
    facility_energy_kwh: Col[float] = column(Double)
